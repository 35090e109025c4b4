"""Multi-seed figures: every seed's test accuracy with the mean and its 95 % t-interval per run, accuracy
against total training FLOPs, and parameter / FLOPs / memory bars relative to dense."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .labels import place_labels
from .style import (_KIND_MARKERS, _KIND_SHORT, _figure_and_axes, _kind_colors, _new_figure, _no_data, _numeric,
                    _ordered_kinds, _ratio_colors, _ratio_key, _require_columns, format_ratio)


def _seed_points(table: pd.DataFrame, value: str) -> pd.DataFrame:
    frame = table.assign(_y=_numeric(table[value]), run=table["run"].astype(str), kind=table["kind"].astype(str))
    return frame[frame["_y"].notna()]


def accuracy_by_run(table: pd.DataFrame, ax: Axes | None = None, title: str = "") -> Figure:
    """Test accuracy of every run: one dot per seed, the mean with its 95 % t-interval as a bar, and the
    dense mean as a vertical line. `table`: columns `run`, `kind`, `seed`, `test_accuracy`. The x axis
    spans the data and the intervals (not a zoom that hides them)."""
    from ..stats import summarize
    if table is None or len(table) == 0:
        return _no_data(ax, title)
    _require_columns(table, ["run", "kind", "test_accuracy"], "accuracy_by_run")
    frame = _seed_points(table, "test_accuracy")
    if frame.empty:
        return _no_data(ax, title)
    runs = list(dict.fromkeys(frame["run"]))
    fig, ax = _figure_and_axes(ax, (7.4, 0.45 * len(runs) + 1.6))
    colors = _kind_colors(_ordered_kinds(frame["kind"]))
    for i, run in enumerate(runs):
        g = frame[frame["run"] == run]
        color = colors[g["kind"].iloc[0]]
        jitter = np.linspace(-0.12, 0.12, len(g)) if len(g) > 1 else np.zeros(1)
        ax.scatter(100 * g["_y"], i + jitter, s=22, color=color, alpha=0.7, zorder=3, edgecolors="none")
        s = summarize(g["_y"])
        if s.n >= 2:
            ax.errorbar(100 * s.mean, i, xerr=100 * s.half_width, fmt="|", color="black", ms=14, capsize=4,
                        lw=1.4, zorder=4)
        else:
            ax.scatter(100 * s.mean, i, marker="|", s=200, color="black", zorder=4)
        if run == "dense":
            ax.axvline(100 * s.mean, color="black", lw=0.8, ls=":", zorder=1, gid="dense_mean",
                       label=f"dense mean ({100 * s.mean:.1f}%)")
    ax.set_yticks(range(len(runs)), runs)
    ax.invert_yaxis()
    ax.set_xlabel("test accuracy (%): dots = seeds, bar = mean ± 95% CI")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8, framealpha=0.9)
    ax.set_title(title)
    return fig


def _short_label(kind: str, ratio: float, mode: str, show_mode: bool) -> str:
    """"EB p=0.3", "random p=0.3" (plus the mode when one kind runs in several modes)."""
    text = f"{_KIND_SHORT.get(kind, kind.replace('_', ' '))} p={format_ratio(ratio)}"
    return f"{text} ({mode})" if show_mode and mode else text


def accuracy_vs_cost(table: pd.DataFrame, ax: Axes | None = None, title: str = "") -> Figure:
    """Test accuracy against total training FLOPs relative to dense (search + retraining): one small dot
    per seed and a large marker per run at the mean, with 95 % CIs as error bars. Marker = kind (dense,
    early-bird and each control), colour = pruning ratio; every pruned run is labelled ("EB p=0.3")
    and the labels are placed so that none overlaps another or a marker."""
    from ..stats import summarize
    if table is None or len(table) == 0:
        return _no_data(ax, title)
    _require_columns(table, ["run", "kind", "test_accuracy", "flops_rel_dense"], "accuracy_vs_cost")
    frame = _seed_points(table, "test_accuracy").assign(_x=lambda f: _numeric(f["flops_rel_dense"]))
    frame = frame[frame["_x"].notna()]
    if frame.empty:
        return _no_data(ax, title)
    frame = frame.assign(_r=_numeric(frame["ratio"]) if "ratio" in frame.columns else np.nan,
                         _m=frame["mode"].astype(str) if "mode" in frame.columns else "")
    fig, ax = _figure_and_axes(ax, (7.6, 4.8))
    kinds = _ordered_kinds(frame["kind"])
    ratio_colors = _ratio_colors(frame.loc[frame["kind"] != "dense", "_r"].dropna())
    color = lambda kind, ratio: ((0.0, 0.0, 0.0) if kind == "dense" or not np.isfinite(ratio)  # noqa: E731
                                 else ratio_colors[_ratio_key(ratio)])
    ax.axvline(1.0, ls=":", lw=1.0, color="0.5", zorder=1)
    span = max(float(frame["_x"].max() - frame["_x"].min()), 0.05)
    movable = [k for k in kinds if k != "dense"]  # dense stays at 1.0 exactly
    dodge = {k: (i - (len(movable) - 1) / 2) * 0.012 * span for i, k in enumerate(movable)} | {"dense": 0.0}
    frame = frame.assign(_x=frame["_x"] + frame["kind"].map(dodge))
    modes_per_kind = frame.groupby("kind")["_m"].nunique()
    label_x, label_y, label_text, label_color, bars, others = [], [], [], [], [], []
    for run, g in frame.groupby("run", sort=False):
        kind, ratio = g["kind"].iloc[0], float(g["_r"].iloc[0])
        c = color(kind, ratio)
        ax.scatter(g["_x"], 100 * g["_y"], s=14, color=c, alpha=0.45, zorder=2, edgecolors="none")
        sx, sy = summarize(g["_x"]), summarize(g["_y"])
        xerr = None if sx.n < 2 else sx.half_width
        yerr = None if sy.n < 2 else 100 * sy.half_width
        ax.errorbar(sx.mean, 100 * sy.mean, xerr=xerr, yerr=yerr, fmt=_KIND_MARKERS.get(kind, "D"), ms=8,
                    color=c, mec="white", capsize=3, lw=1.0, zorder=3, label=run)
        if xerr is not None:
            bars.append(((sx.mean - xerr, 100 * sy.mean), (sx.mean + xerr, 100 * sy.mean)))
        if yerr is not None:
            bars.append(((sx.mean, 100 * sy.mean - yerr), (sx.mean, 100 * sy.mean + yerr)))
        if kind == "dense" or not np.isfinite(ratio):
            others.append((sx.mean, 100 * sy.mean))
        else:
            label_x.append(sx.mean)
            label_y.append(100 * sy.mean)
            label_text.append(_short_label(kind, ratio, g["_m"].iloc[0], modes_per_kind.get(kind, 1) > 1))
            label_color.append(c)
    ax.set_xlabel("total training FLOPs / dense (search + retraining; kinds dodged slightly to stay visible)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
              title="marker: kind, colour: ratio\nbars: 95% CI over seeds", title_fontsize=7)
    place_labels(ax, label_x, label_y, label_text, label_color, fontsize=7.5, segments=bars, markers=others)
    return fig


def cost_bars(table: pd.DataFrame, ax: Sequence[Axes] | None = None, title: str = "") -> Figure:
    """Three panels, mean over seeds per run: parameters, total training FLOPs and measured training memory,
    each relative to dense. `table`: columns `run`, `param_ratio`, `flops_rel_dense`, `memory_ratio`."""
    if table is None or len(table) == 0:
        return _no_data(None, title)
    columns = {"param_ratio": "parameters / dense", "flops_rel_dense": "training FLOPs / dense",
               "memory_ratio": "training memory / dense"}
    _require_columns(table, ["run", *columns], "cost_bars")
    means = table.groupby("run", sort=False)[list(columns)].mean()
    if ax is None:
        fig, axes = _new_figure(3, figsize=(13.5, 0.35 * len(means) + 2.0))
    else:
        axes = list(np.ravel(ax))
        fig = axes[0].figure
    for a, (col, label) in zip(axes, columns.items()):
        sns.barplot(x=means[col].to_numpy(), y=list(means.index), ax=a, color="tab:blue", orient="h")
        a.axvline(1.0, color="black", lw=0.8, ls=":")
        a.set_xlabel(label)
        for i, v in enumerate(means[col]):
            a.annotate(f"{v:.2f}", (v, i), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
    for a in axes[1:]:
        a.set_yticklabels([])
    fig.suptitle(title or "cost relative to dense (mean over seeds)")
    return fig
