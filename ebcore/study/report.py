"""What a notebook shows and writes for one experiment: the summary table next to the study's numbers,
the paired differences and verdicts, the figures (results/README.md is gathered by ebcore.study.readme).

    summary = summary_table(result)          # one readable row per run
    figures = make_figures(result)           # name -> matplotlib Figure
    write_report(result, summary, figures)   # summary.csv, summary.md, *.png under results/<family>/<profile>/
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import plots
from . import paths
from .config import ExperimentConfig, Settings
from .kinds import RUN_KINDS
from .results import ExperimentResult
from .stats import Summary, paired_difference, summarize
from . import sensitivity
from .plots.sensitivity import threshold_sensitivity_figure
from .verdict_rules import MIN_SEEDS, SMALLEST_EFFECT_POINTS
from .verdicts import OURS, claim_verdicts


def _mean(values) -> float:
    v = pd.to_numeric(pd.Series(list(values)), errors="coerce").dropna()
    return float(v.mean()) if len(v) else float("nan")


def summary_table(result: ExperimentResult) -> pd.DataFrame:
    """One row per run, aggregated over seeds: test accuracy mean, sd and 95 % CI, ticket epochs (mean and
    range) with the ticket's stability (distance to the final mask, and as a share of its maximum 2p), costs
    (exact training FLOPs relative to dense first; wall time last, as a noisy secondary), and measured memory.
    A ticket row whose seeds found no ticket says so: its mask is the last check's, not a ticket."""
    t = result.table
    rows = []
    for run, g in t.groupby("run", sort=False):
        acc = summarize(g["test_accuracy"])
        te = pd.to_numeric(g["ticket_epoch"], errors="coerce").dropna()
        first = g.iloc[0]
        is_ticket = RUN_KINDS[first["kind"]].role == "ticket"
        found = int(g["ticket_found"].fillna(False).astype(bool).sum()) if is_ticket else 0
        with_ticket = g[g["ticket_found"].fillna(False).astype(bool)] if is_ticket else g.iloc[:0]
        stab = pd.to_numeric(with_ticket.get("ticket_to_final", pd.Series(dtype=float)), errors="coerce").dropna()
        ratio = float(first["ratio"])
        rows.append({
            "run": run + (" (no ticket found: last-check mask)" if is_ticket and found == 0 else ""),
            "ratio": first["ratio"], "seeds": acc.n,
            "test acc % (mean)": round(100 * acc.mean, 2),
            "sd": round(100 * acc.sd, 2) if acc.n > 1 else "",
            "95% CI": f"[{100 * acc.lo:.2f}, {100 * acc.hi:.2f}]" if acc.n > 1 else "",
            "ticket epoch (mean, range)": (f"{te.mean():.1f} ({te.min():g}–{te.max():g})"
                                           if len(te) and found else ""),
            "tickets found": f"{found}/{len(g)}" if is_ticket else "",
            "ticket → final mask (max, share of 2p)": (f"{stab.max():.3f} ({stab.max() / (2 * ratio):.0%})"
                                                       if is_ticket and len(stab) and ratio > 0 else ""),
            "params ratio": round(_mean(g["param_ratio"]), 3),
            "FLOPs/sample ratio": round(_mean(g["flops_ratio"]), 3),
            "training FLOPs vs dense": round(_mean(g["flops_rel_dense"]), 3),
            "train memory (MB)": round(_mean(g["train_memory_bytes"]) / 2**20, 1),
            "pipeline peak memory vs dense": round(_mean(g.get("pipeline_memory_ratio", g["memory_ratio"])), 2),
            "wall time vs dense": round(_mean(g["time_rel_dense"]), 2),
        })
    return pd.DataFrame(rows)


def threshold_table(result: ExperimentResult) -> pd.DataFrame:
    """Ticket epoch vs threshold, both rules, replayed from the stored masks (no retraining): one row per
    threshold, one column per ratio and rule ("mean epoch (k/n seeds found)")."""
    epochs = sensitivity.check_epochs(result)
    return sensitivity.sensitivity_table(sensitivity.threshold_sensitivity(result.detectors, epochs=epochs))


HALF_WIDTH_TARGET = 1.5   # points: the paired comparisons' 95 % half-width the seeds should reach


def precision_note(result: ExperimentResult) -> str:
    """Whether the seeds reached the target precision: the 95 % half-width of every paired comparison against
    HALF_WIDTH_TARGET, and about how many seeds the widest one would need (half-width ~ t * sd / sqrt(n))."""
    widths = [100 * (d.hi - d.lo) / 2 for _, d in paired_differences(result) if d.n > 1]
    n = len(result.seeds)
    if not widths:
        return f"**Precision**: {n} seed(s), no interval (the target 95 % half-width is ≤ {HALF_WIDTH_TARGET:g} pts)."
    met = sum(w <= HALF_WIDTH_TARGET for w in widths)
    widest = max(widths)
    text = (f"**Precision**: {n} seeds; the paired comparisons' 95 % half-widths are {min(widths):.2f}–{widest:.2f} "
            f"pts, within the target ≤ {HALF_WIDTH_TARGET:g} pts for {met} of {len(widths)}")
    if met < len(widths):
        from .stats import t_quantile
        need = n
        while need < 200 and t_quantile(need) / t_quantile(n) * (n / need) ** 0.5 * widest > HALF_WIDTH_TARGET:
            need += 1
        text += (f"; the widest would need about {need} seeds at its sd, more than this profile's budget allows "
                 "(run_all.sh stays within 75 min on 2 cores)")
    return text + "."


def tickets_found(result: ExperimentResult) -> dict[float, tuple[int, int]]:
    """Per ratio of the headline mode's tickets: (seeds that found a ticket, seeds)."""
    t = result.table
    eb = t[(t["kind"].map(lambda k: RUN_KINDS[k].role == "ticket")) & (t["mode"] == result.settings.headline_mode)]
    return {float(r): (int(g["ticket_found"].fillna(False).astype(bool).sum()), len(g))
            for r, g in eb.groupby("ratio", sort=True)}


def headline(result: ExperimentResult) -> str:
    """What this run shows, first: every run at its training FLOPs, best accuracy per FLOPs first; when no seed
    found a ticket at a ratio, that is said before anything else (its rows are the last check's mask, and the
    claims that need a ticket are not run there)."""
    found = tickets_found(result)
    none = [r for r, (k, n) in found.items() if k == 0]
    lines = []
    if none:
        lines.append(f"**No ticket found** at p = {', '.join(f'{r:g}' for r in none)} (0 of "
                     f"{found[none[0]][1]} seeds, {result.settings.rule} rule): those early-bird rows are the last "
                     "check's mask, pruned (and retrained with what budget is left), not tickets, and the claims "
                     "that need a ticket read *no ticket found* there. What the data do show is below: every run "
                     "at its training FLOPs.")
    lines.append(precision_note(result))
    t = result.table
    rows = []
    for run, g in t.groupby("run", sort=False):
        acc = summarize(g["test_accuracy"])
        kind = RUN_KINDS[g["kind"].iloc[0]]
        rows.append({"run": run, "what": kind.label, "training FLOPs vs dense": round(_mean(g["flops_rel_dense"]), 3),
                     "test acc % (mean)": round(100 * acc.mean, 2),
                     "95% CI": f"[{100 * acc.lo:.2f}, {100 * acc.hi:.2f}]" if acc.n > 1 else ""})
    frame = pd.DataFrame(rows).sort_values(["training FLOPs vs dense", "run"]).reset_index(drop=True)
    lines.append("**Every run at its cost** (training FLOPs relative to the dense run, search included; "
                 "sorted by cost):\n\n" + to_markdown(frame))
    return "\n\n".join(lines) + "\n"


def paired_differences(result: ExperimentResult) -> list[tuple[str, Summary]]:
    """Per-seed paired differences of test accuracy (fractions): every ticket against what its run kind is
    compared with (dense), and every other run kind against the ticket of the same mode and ratio
    (ebcore.study.kinds.RunKind.compare_with); one (comparison, Summary) per pair."""
    t = result.table
    acc = lambda rows: dict(zip(rows["seed"].astype(int), rows["test_accuracy"].astype(float)))  # noqa: E731
    dense = acc(t[t["kind"].map(lambda k: RUN_KINDS[k].role == "dense")])
    out = []
    for ticket_kind in (k for k in RUN_KINDS.values() if k.role == "ticket"):
        eb = t[t["kind"] == ticket_kind.name]
        for (mode, ratio), g in eb.groupby(["mode", "ratio"], sort=False):
            pairs = [("dense", dense)]
            for other in (k for k in RUN_KINDS.values() if k.compare_with == ticket_kind.name):
                c = t[(t["kind"] == other.name) & (t["ratio"].round(6) == round(ratio, 6))]
                same_mode = c[c["mode"] == mode]
                c = same_mode if not same_mode.empty else c
                if not c.empty:
                    pairs.append((f"{other.name} {c['mode'].iloc[0]}", acc(c)))
            out += [(f"EB {mode} p={ratio:g} − {name}", paired_difference(acc(g), values)) for name, values in pairs]
    return out


def paired_table(result: ExperimentResult) -> pd.DataFrame:
    """`paired_differences` as a table, in points with 95 % CIs."""
    return pd.DataFrame([{"comparison": name, "seeds": d.n, "mean Δ (pts)": round(100 * d.mean, 3),
                          "95% CI (pts)": f"[{100 * d.lo:+.3f}, {100 * d.hi:+.3f}]" if d.n > 1 else "n=1: none",
                          "interval": ("above 0" if d.lo > 0 else "below 0" if d.hi < 0 else "includes 0")
                          if d.n > 1 else "no interval"}
                         for name, d in paired_differences(result)])


def verdict_table(result: ExperimentResult) -> pd.DataFrame:
    """One row per claim of the study, with the rule that decided its verdict (ebcore.study.verdicts): the
    controls at 0.3 when they ran there (else the first control ratio), the cost claim at 0.5 (else the
    largest ratio)."""
    s = result.settings
    controls = tuple(s.control_ratios) or (0.3,)
    control_ratio = 0.3 if 0.3 in controls else controls[0]
    return claim_verdicts(result.table, s.family, s.headline_mode, s.epochs, cost_ratio=s.cost_ratio,
                          control_ratio=control_ratio)


def interpretation(result: ExperimentResult) -> str:
    """A few sentences generated from the verdicts: what came out, in words, under the rule set."""
    v = verdict_table(result)
    counts = v["verdict"].value_counts()
    s = result.settings
    lines = [f"**{s.family}, {s.profile} profile, seeds {list(result.seeds)}, headline retrain mode "
             f"`{s.headline_mode}`:** " + ", ".join(f"{n} {k}" for k, n in counts.items()) + "."]
    for _, row in v.iterrows():
        fw = row["family-wise (Bonferroni)"]
        note = f" (family-wise: {fw.split(' (')[0]})" if fw.startswith("does not hold") else ""
        lines.append(f"- {row['claim']}: **{row['verdict']}**{note} — ours: {row[OURS]}.")
    n = len(result.seeds)
    if n < MIN_SEEDS:
        lines.append(f"- With {n} seed(s) no claim is reproduced or refuted (the rules need at least {MIN_SEEDS} "
                     "seeds): the verdicts are inconclusive by rule.")
    lines.append("- *Inconclusive* means the 95 % interval straddles the claim's boundary (or too few seeds): the "
                 "data cannot tell, which is a result, not a failure. A *negligible edge* is above 0 but not "
                 f"clearly above the smallest effect of interest (+{SMALLEST_EFFECT_POINTS:g} pt): never a win.")
    return "\n".join(lines)


def to_markdown(frame: pd.DataFrame) -> str:
    """A Markdown table without the optional `tabulate` dependency."""
    def cell(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        return (f"{v:g}" if isinstance(v, float) else str(v)).replace("|", "\\|")  # "|Δ|" stays in its cell
    lines = ["| " + " | ".join(str(c).replace("|", "\\|") for c in frame.columns) + " |",
             "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def make_figures(result: ExperimentResult) -> dict:
    """The notebook's figures: distance heatmaps and curves (first seed), accuracy curves (every seed, on
    the global epoch axis), accuracy per run with every seed and its CI, accuracy vs training FLOPs,
    accuracy vs ratio, costs.

    Epoch checks are labelled by epochs completed (the check after the first epoch is epoch 1), as
    the table's ticket epochs are; step checks by their step.
    """
    cfg = result.settings
    seed = result.seeds[0]
    det = result.detectors[seed]["consecutive"]
    by_epoch = not cfg.check_every_steps
    shift = 1 if by_epoch else 0
    labels = [rec.at + shift for rec in det.history]
    tickets = {r: (det.ticket(r).check_index if det.ticket(r) else None) for r in cfg.ratios}
    records = pd.DataFrame(det.records()).assign(at=lambda f: f["at"] + shift)
    curves = result.curves.assign(epoch=lambda f: f["epoch"] + 1)  # epochs completed (-1, untrained: 0)
    data = cfg.spec.data.dataset.replace("_", "-")
    title = f"{cfg.family} on {data} ({cfg.profile} profile)"
    unit = "epoch" if by_epoch else "step"
    table = result.table.copy()
    headline = table[table["mode"].isin([cfg.headline_mode, "dense"])]
    seeds = f"{len(result.seeds)} seed{'s' if len(result.seeds) > 1 else ''}"
    epochs = sensitivity.check_epochs(result)
    sens = sensitivity.threshold_sensitivity(result.detectors, epochs=epochs)
    return {
        "mask_distance_heatmaps": plots.distance_heatmaps(
            {r: det.pairwise(r) for r in cfg.ratios}, labels, tickets,
            title_prefix=f"{title}, seed {seed}", axis_label=unit, threshold=det.threshold),
        "mask_distance_curves": plots.distance_curves(
            records, threshold=det.threshold, title=f"{title}: consecutive mask distance, seed {seed}", xlabel=unit),
        "accuracy_curves": plots.accuracy_curves(curves, table=result.table,
                                                 title=f"{title}: validation accuracy ({seeds})"),
        "accuracy_by_run": plots.accuracy_by_run(table, title=f"{title}: test accuracy per run ({seeds})"),
        "accuracy_vs_cost": plots.accuracy_vs_cost(table, title=f"{title}: accuracy vs training FLOPs ({seeds})"),
        "accuracy_vs_ratio": plots.accuracy_vs_ratio(
            headline, title=f"{title}: accuracy vs pruning ratio, mode {cfg.headline_mode} (ours; 95% CI)"),
        "cost_bars": plots.cost_bars(table, title=f"{title}: parameters, training FLOPs and memory vs dense"),
        "threshold_sensitivity": threshold_sensitivity_figure(
            sens, sensitivity.distance_curves_frame(result.detectors, epochs),
            threshold=cfg.threshold, title=f"{title}: ticket epoch vs threshold, both rules ({seeds})"),
    }


def write_report(result: ExperimentResult, summary: pd.DataFrame, figures: dict) -> dict[str, Path]:
    """summary.csv, paired.csv, verdicts.csv, summary.md and one PNG per figure under the results folder."""
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    written = {"summary_csv": out / paths.SUMMARY_CSV, "summary_md": out / paths.SUMMARY_MD,
               "paired_csv": out / paths.PAIRED_CSV, "verdicts_csv": out / paths.VERDICTS_CSV}
    summary.to_csv(written["summary_csv"], index=False)
    paired, verdicts = paired_table(result), verdict_table(result)
    paired.to_csv(written["paired_csv"], index=False)
    verdicts.to_csv(written["verdicts_csv"], index=False)
    cfg = result.settings
    spec = cfg.spec
    test_size = int(result.table["test_size"].iloc[0])
    p = float(result.table.loc[result.table["kind"] == "dense", "test_accuracy"].mean())
    se = 100 * np.sqrt(p * (1 - p) / test_size)
    head = (f"### {cfg.family} ({cfg.profile} profile)\n\n"
            f"Data: {spec.data.dataset}, {int(result.table['samples_seen'].iloc[0]) // spec.train.epochs} "
            f"training samples, {test_size} test samples, the same for every seed (one accuracy's standard error ≈ {se:.2f} pts), "
            f"{spec.train.epochs} epochs; seeds {list(result.seeds)}; threshold {cfg.threshold}, "
            f"criterion {cfg.criterion}, ratios {list(cfg.ratios)}, retrain modes "
            f"{list(cfg.modes)} (`continue` {cfg.continue_schedule}s the dense schedule after the ticket), controls "
            + ", ".join(f"{c} at {list(cfg.kind_ratios(c))}" for c in cfg.controls) + ". "
            f"Training FLOPs: forward + backward per sample (counted) × samples, plus scoring passes; a ticket "
            f"pays the dense training until it appeared. Memory: {result.table['memory_kind'].iloc[0]}.\n\n")
    text = (head + headline(result) + "\n" + to_markdown(summary) + "\n**Paired differences** (per seed, test accuracy):\n\n"
            + to_markdown(paired) + "\n**Verdicts** (computed from the table above by `ebcore.study.verdicts`):\n\n"
            + to_markdown(verdicts) + "\n" + interpretation(result) + "\n"
            + "\n**Ticket epoch vs threshold** (both rules replayed on the stored masks, no retraining; mean epoch "
              "and seeds that found a ticket):\n\n" + to_markdown(threshold_table(result)))
    written["summary_md"].write_text(text)
    for name, fig in figures.items():
        written[name] = plots.save_figure(fig, out / paths.figure_file(name))
    return written


def notebook_settings(params: dict) -> Settings:
    """The resolved settings of a notebook's parameters (its globals): every ExperimentConfig field is a
    parameter; relative `results_dir` / `runs_dir` (the defaults) resolve against the project's folder, since
    the notebooks run in notebooks/. Strings (papermill -p without YAML) are parsed as on the command line."""
    root = paths.repo_root()
    names = ExperimentConfig.parameter_names()
    chosen = {k: params[k] for k in names if k in params}
    for key, default in (("results_dir", "results"), ("runs_dir", "runs")):
        value = chosen.get(key)
        chosen[key] = str(root / default) if value is None else str(root / value) if not Path(value).is_absolute() \
            else str(value)
    return ExperimentConfig.from_params(chosen).resolve()


def run_and_report(settings: Settings | ExperimentConfig, redo: bool = False) -> dict[str, Path]:
    """Run (or reuse) the experiment of `settings` and write its tables and figures: what a notebook does,
    without the display. The command line (`python -m ebcore run`) calls this; `redo` retrains finished runs."""
    from .experiment import run_experiment
    result = run_experiment(settings, redo=redo)
    summary = summary_table(result)
    return write_report(result, summary, make_figures(result))
