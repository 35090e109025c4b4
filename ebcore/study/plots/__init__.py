"""Figures for the early-bird study: mask-distance heatmaps and curves, accuracy curves, accuracy vs
training time and vs pruning ratio, and parameter/time bars.

Every function returns a matplotlib `Figure` and accepts an optional `ax` to draw into (an existing
figure of yours). Without `ax` the figure is built with `matplotlib.figure.Figure` directly, not through
pyplot: nothing is registered in pyplot's global state, no backend is selected (so a notebook's inline
backend is left as it is), and scripts on machines without a display need no `matplotlib.use("Agg")`.
In a notebook, a returned figure shows as the value of the cell (or with `display(fig)`); elsewhere
write it with `save_figure`.

    det = EarlyBirdDetector(ratios=(0.3, 0.5), threshold=0.1, window=5)
    ...
    records = pd.DataFrame(det.records())
    fig = distance_curves(records, threshold=det.threshold)
    fig = distance_heatmaps({r: det.pairwise(r) for r in det.ratios}, [rec.at for rec in det.history],
                            {r: det.ticket(r) for r in det.ratios}, window=det.window)
    save_figure(fig, "results/figures/distances.png")

Inputs are tidy pandas frames (see each function). Empty inputs give a figure with a centred "no data"
note; NaN / None values are skipped; ratios are shown rounded ("0.30000000000000004" reads "p = 0.3").

Modules: `style` (kinds, colours, formatting, `save_figure`), `labels` (point labels that do not overlap),
`distances` (heatmaps, distance curves), `training` (accuracy curves on the global epoch axis), `results`
(accuracy vs time / ratio, bars), `seeds` (multi-seed figures), `verdicts` (claims x families overview).
"""
from __future__ import annotations

from .distances import distance_curves, distance_heatmap, distance_heatmaps
from .results import accuracy_vs_ratio, accuracy_vs_time, memory_time_bars
from .seeds import accuracy_by_run, accuracy_vs_cost, cost_bars
from .style import DPI, KIND_LABELS, KIND_ORDER, NO_DATA, format_ratio, save_figure
from .training import accuracy_curves, run_start_epoch, run_start_epochs
from .verdicts import VERDICT_COLORS, verdict_overview

__all__ = [
    "KIND_LABELS",
    "accuracy_curves",
    "accuracy_vs_ratio",
    "accuracy_vs_time",
    "distance_curves",
    "distance_heatmap",
    "distance_heatmaps",
    "format_ratio",
    "memory_time_bars",
    "save_figure",
    "accuracy_by_run",
    "accuracy_vs_cost",
    "cost_bars",
    "run_start_epoch",
    "run_start_epochs",
    "verdict_overview",
    "VERDICT_COLORS",
    "DPI",
    "KIND_ORDER",
    "NO_DATA",
]
