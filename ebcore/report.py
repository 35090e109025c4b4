"""What a notebook shows and writes for one experiment: the summary table next to the study's numbers,
the figures, and `results/README.md` gathering every family's table.

    summary = summary_table(result)          # one readable row per run
    figures = make_figures(result)           # name -> matplotlib Figure
    write_report(result, summary, figures)   # summary.csv, summary.md, *.png under results/<family>/<profile>/
"""
from __future__ import annotations

import argparse
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


def gather(results_dir: str | Path, profile: str, timings: str | Path | None = None) -> Path:
    """Write results/README.md with every family's summary table for `profile`."""
    results_dir = Path(results_dir)
    parts = [f"# Results ({profile} profile)\n",
             "Regenerated by `run_all.sh`: every number below was computed by ebcore's pipeline (run folders under "
             "`runs/`) and rendered by the notebooks; nothing is typed in by hand.\n"]
    if timings and Path(timings).is_file():
        t = pd.read_csv(timings)
        parts.append("## Notebook run times\n\nSeconds per notebook in the run that trained its models on this "
                     "machine (a notebook whose runs are already finished reuses them and only re-renders).\n\n"
                     + _to_markdown(t))
    for family, notebook in NOTEBOOKS.items():
        md = results_dir / family / profile / "summary.md"
        if md.is_file():
            figs = sorted(p.name for p in (results_dir / family / profile).glob("*.png"))
            links = ", ".join(f"[{f}]({family}/{profile}/{f})" for f in figs)
            parts.append(md.read_text().replace("### ", "## ", 1) +
                         f"\nNotebook: [{notebook}.ipynb]({family}/{profile}/{notebook}.ipynb). Figures: {links}\n")
    path = results_dir / "README.md"
    path.write_text("\n".join(parts))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Gather every family's table into results/README.md")
    parser.add_argument("--results", default="results")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--timings", default=None)
    args = parser.parse_args(argv)
    print(gather(args.results, args.profile, args.timings))


if __name__ == "__main__":
    main()
