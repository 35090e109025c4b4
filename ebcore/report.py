"""What a notebook shows and writes for one experiment: the summary table next to the study's numbers,
the figures, and `results/README.md` gathering every family's table.

    summary = summary_table(result)          # one readable row per run
    figures = make_figures(result)           # name -> matplotlib Figure
    write_report(result, summary, figures)   # summary.csv, summary.md, *.png under results/<family>/<profile>/
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from . import plots
from .experiment import ExperimentResult

# The study's published test accuracies (%), CIFAR-10 from scratch: dense / p = 0.1 / p = 0.3.
STUDY_ACCURACY = {
    "vit": {0.0: 85.11, 0.1: 84.3, 0.3: 82.05},
    "swin": {0.0: 89.5, 0.1: 89.54, 0.3: 88.95},
}
STUDY_TICKET_EPOCH = 20  # "ticket found around epoch 20" (vision)
NOTEBOOKS = {"vit": "vit", "swin": "swin", "gpt2": "gpt2", "roberta": "roberta", "bert": "bert_finetune"}


def find_project_root(start: str | Path | None = None) -> Path:
    """The folder holding pyproject.toml above `start` (default: the working directory)."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "ebcore").is_dir():
            return folder
    return here


def summary_table(result: ExperimentResult) -> pd.DataFrame:
    """Dense vs tickets vs controls, with the study's accuracy where it published one."""
    t = result.table
    ref = STUDY_ACCURACY.get(result.config.family, {})
    out = pd.DataFrame({
        "run": t["run"],
        "ratio": t["ratio"],
        "ticket epoch (consecutive)": t["ticket_epoch_consecutive"].astype(float).round(2),
        f"ticket epoch (window {result.config.window})": t["ticket_epoch_window"].astype(float).round(2),
        "ticket found": t["ticket_found"],
        "test acc %": (100 * t["test_accuracy"]).round(2),
        "best val acc %": (100 * t["best_val_accuracy"]).round(2),
        "params (M)": (t["params"] / 1e6).round(3),
        "params ratio": t["param_ratio"].round(3),
        "FLOPs ratio": t["flops_ratio"].round(3),
        "train memory (MB)": (t["train_memory_bytes"] / 2**20).round(1),
        "time vs dense": t["time_rel_dense"].round(3),
        "disk (MB)": (t["disk_bytes"] / 2**20).round(2),
    })
    if ref:
        study = [ref.get(0.0 if k == "dense" else r) if k in ("dense", "early_bird") else None
                 for k, r in zip(t["kind"], t["ratio"])]
        out["study acc % (CIFAR-10)"] = study
    return out


def _to_markdown(frame: pd.DataFrame) -> str:
    """A Markdown table without the optional `tabulate` dependency."""
    def cell(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        return f"{v:g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def make_figures(result: ExperimentResult) -> dict:
    """The notebook's figures: distance heatmaps and curves, accuracy curves, accuracy vs time/ratio.

    Epoch checks are labelled by epochs completed (the check after the first epoch is epoch 1), as
    the table's ticket epochs are; step checks by their step.
    """
    cfg, det = result.config, result.detectors["consecutive"]
    by_epoch = not cfg.effective_check_every
    shift = 1 if by_epoch else 0
    labels = [rec.at + shift for rec in det.history]
    tickets = {r: (det.ticket(r).check_index if det.ticket(r) else None) for r in cfg.ratios}
    records = pd.DataFrame(det.records()).assign(at=lambda f: f["at"] + shift)
    curves = result.curves.assign(epoch=lambda f: f["epoch"] + 1)
    title = f"{cfg.family} ({cfg.profile})"
    unit = "epoch" if by_epoch else "step"
    ref = STUDY_ACCURACY.get(cfg.family)
    table = result.table.copy()
    return {
        "mask_distance_heatmaps": plots.distance_heatmaps({r: det.pairwise(r) for r in cfg.ratios}, labels, tickets,
                                                          title_prefix=title, axis_label=unit),
        "mask_distance_curves": plots.distance_curves(
            records, threshold=det.threshold, title=f"{title}: consecutive mask distance", xlabel=unit),
        "accuracy_curves": plots.accuracy_curves(curves, title=f"{title}: validation accuracy"),
        "accuracy_vs_time": plots.accuracy_vs_time(table, title=f"{title}: accuracy vs training time"),
        "accuracy_vs_ratio": plots.accuracy_vs_ratio(
            table, title=f"{title}: accuracy vs pruning ratio",
            reference={k: v / 100 for k, v in ref.items()} if ref else None),
        "params_and_time": plots.memory_time_bars(table),
    }


def write_report(result: ExperimentResult, summary: pd.DataFrame, figures: dict) -> dict[str, Path]:
    """summary.csv, summary.md and one PNG per figure under the experiment's results folder."""
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    paths = {"summary_csv": out / "summary.csv", "summary_md": out / "summary.md"}
    summary.to_csv(paths["summary_csv"], index=False)
    cfg = result.config
    head = (f"### {cfg.family} ({cfg.profile} profile)\n\n"
            f"Data: {cfg.spec().data['dataset']}, {cfg.spec().data['train']} training samples, "
            f"{cfg.spec().train['epochs']} epochs; threshold {cfg.effective_threshold}, ratios {list(cfg.ratios)}, "
            f"retrain modes {list(cfg.effective_modes)}, seed {cfg.seed}. Memory: {result.table['memory_kind'].iloc[0]}.\n\n")
    paths["summary_md"].write_text(head + _to_markdown(summary))
    for name, fig in figures.items():
        paths[name] = plots.save_figure(fig, out / f"{name}.png")
    return paths


def run_and_report(config) -> dict[str, Path]:
    """Run (or reuse) the experiment of `config` and write its tables and figures: what a notebook does,
    without the display. The command line (`python -m ebcore run`) calls this."""
    from .experiment import run_experiment
    result = run_experiment(config)
    summary = summary_table(result)
    return write_report(result, summary, make_figures(result))


PROFILE_ORDER = ("cpu", "gpu", "paper")  # README sections in this order, other profiles after them, ci last
SCRATCH_PROFILES = ("ci",)                # git-ignored: in README.md only when asked (include_ci)


def profiles_on_disk(results_dir: str | Path) -> list[str]:
    """Profiles with at least one family's summary.md under `results_dir`, in README order."""
    found = {p.parent.name for p in Path(results_dir).glob("*/*/summary.md")}
    found |= {p.stem.removeprefix("timings-") for p in Path(results_dir).glob("timings-*.csv")}
    rank = {name: i for i, name in enumerate(PROFILE_ORDER)}
    return sorted(found, key=lambda p: (p in SCRATCH_PROFILES, rank.get(p, len(rank)), p))


def profile_section(results_dir: str | Path, profile: str) -> str | None:
    """The README section of one profile, from its files on disk: run times (timings-<profile>.csv) and
    every family's summary.md with links to its notebook and figures; None when nothing is there."""
    results_dir = Path(results_dir)
    order = list(NOTEBOOKS)
    families = sorted({p.parent.parent.name for p in results_dir.glob(f"*/{profile}/summary.md")},
                      key=lambda f: (order.index(f) if f in order else len(order), f))
    timings = results_dir / f"timings-{profile}.csv"
    if not families and not timings.is_file():
        return None
    parts = [f"## {profile} profile\n"]
    if timings.is_file():
        t = pd.read_csv(timings)
        if len(t):
            parts.append(f"### Notebook run times ({profile})\n\nSeconds per notebook in its last successful run "
                         "(a notebook whose runs are already finished reuses them and only re-renders).\n\n"
                         + _to_markdown(t))
    for family in families:
        folder = results_dir / family / profile
        notebook = NOTEBOOKS.get(family, family)
        links = [f"[{p.name}]({family}/{profile}/{p.name})" for p in sorted(folder.glob("*.png"))]
        tail = []
        if (folder / f"{notebook}.ipynb").is_file():
            tail.append(f"Notebook: [{notebook}.ipynb]({family}/{profile}/{notebook}.ipynb).")
        if links:
            tail.append("Figures: " + ", ".join(links))
        text = (folder / "summary.md").read_text().rstrip("\n")
        if not text.startswith("### "):
            text = f"### {family} ({profile} profile)\n\n" + text
        parts.append(text + ("\n\n" + " ".join(tail) if tail else "") + "\n")
    return "\n".join(parts)


def gather(results_dir: str | Path = "results", include_ci: bool = False) -> Path:
    """Rebuild `results_dir`/README.md from what is on disk, for every profile there (cpu first, then gpu
    and paper; ci, a git-ignored scratch profile, only with `include_ci`). Deterministic: the same files
    give the same README, so a call that changed no results changes no README."""
    results_dir = Path(results_dir)
    profiles = [p for p in profiles_on_disk(results_dir) if include_ci or p not in SCRATCH_PROFILES]
    sections = [s for s in (profile_section(results_dir, p) for p in profiles) if s]
    parts = ["# Results\n",
             "Rebuilt from the files under `results/` by `ebcore report` (also after `run_all.sh`, "
             "`ebcore notebooks` and `ebcore run`): every number below was computed by ebcore's pipeline (run "
             "folders under `runs/`) and rendered by the notebooks; nothing is typed in by hand. Profiles: "
             + (", ".join(f"`{p}`" for p in profiles) if profiles else "none yet") + ".\n"]
    path = results_dir / "README.md"
    tmp = results_dir / ".README.md.tmp"
    tmp.write_text("\n".join(parts + sections))
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> None:
    """`python -m ebcore.report [--results DIR] [--profile P] [--include-ci]`: same as `ebcore report`."""
    import sys

    from .cli import main as cli_main
    sys.exit(cli_main(["report", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    main()
