"""Results of one table of runs: test accuracy against training time and against pruning ratio (mean over
seeds with its 95 % CI, a published reference dashed), and the parameter / training-time bars."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from .style import (_KIND_MARKERS, _figure_and_axes, _is_fraction, _kind_colors, _kind_label, _new_figure, _no_data,
                    _numeric, _ordered_kinds, _percent_axis, _ratio_key, _require_columns, format_ratio)


# --- accuracy vs training time ---------------------------------------------------------------------
def accuracy_vs_time(table: pd.DataFrame, ax: Axes | None = None, title: str = "") -> Figure:
    """Test accuracy against total training time relative to the dense run, one marker style and colour
    per `kind` ("dense", "early_bird", "random", "converged", ...), points annotated with their ratio.
    `table`: columns `run`, `kind`, `ratio` (NaN for dense), `test_accuracy`, `time_rel_dense`."""
    if table is None or len(table) == 0:
        return _no_data(ax, title)
    _require_columns(table, ["kind", "ratio", "test_accuracy", "time_rel_dense"], "accuracy_vs_time")
    frame = table.assign(_x=_numeric(table["time_rel_dense"]), _y=_numeric(table["test_accuracy"]),
                         _r=_numeric(table["ratio"]), kind=table["kind"].astype(str))
    frame = frame[frame["_x"].notna() & frame["_y"].notna()]
    if frame.empty:
        return _no_data(ax, title)
    fig, ax = _figure_and_axes(ax, (6.6, 4.4))
    kinds = _ordered_kinds(frame["kind"])
    colors = _kind_colors(kinds)
    ax.axvline(1.0, ls=":", lw=1.0, color="0.5", zorder=1, gid="dense_time")
    for kind in kinds:
        g = frame[frame["kind"] == kind]
        ax.scatter(g["_x"], g["_y"], marker=_KIND_MARKERS.get(kind, "D"), s=70, color=colors[kind],
                   edgecolors="white", linewidths=0.6, label=_kind_label(kind), zorder=3)
        for _, row in g.iterrows():
            if np.isfinite(row["_r"]):
                ax.annotate(f"p={format_ratio(row['_r'])}", (row["_x"], row["_y"]), xytext=(5, 4),
                            textcoords="offset points", fontsize=8, color=colors[kind])
    _percent_axis(ax, _is_fraction(frame["_y"]))
    ax.margins(x=0.12, y=0.12)
    ax.set_xlabel("training time relative to dense")
    ax.set_ylabel("test accuracy")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    if title:
        ax.set_title(title)
    sns.despine(ax=ax)
    return fig


# --- accuracy vs ratio -----------------------------------------------------------------------------
def accuracy_vs_ratio(table: pd.DataFrame, ax: Axes | None = None, title: str = "",
                      reference: Mapping[float, float] | None = None,
                      reference_label: str = "study (published)") -> Figure:
    """Test accuracy against pruning ratio, one line per `kind`, the mean over seeds with its 95 %
    t-interval (ebcore.study.stats.summarize) as error bars, and shaded along kinds with several ratios;
    the dense run is a horizontal line at its mean with its interval shaded. Kinds sharing a ratio are
    dodged slightly so their bars stay apart. `reference` (ratio -> accuracy, e.g. the study's published
    numbers) is drawn as a dashed series. `table`: columns `kind`, `ratio` (NaN for dense), `test_accuracy`."""
    from ..stats import summarize
    has_table = table is not None and len(table) > 0
    if not has_table and not reference:
        return _no_data(ax, title)
    frame = pd.DataFrame(columns=["kind", "_r", "_y"])
    if has_table:
        _require_columns(table, ["kind", "ratio", "test_accuracy"], "accuracy_vs_ratio")
        frame = table.assign(_r=_numeric(table["ratio"]), _y=_numeric(table["test_accuracy"]),
                             kind=table["kind"].astype(str))
        frame = frame[frame["_y"].notna()]
    ref = {float(r): float(a) for r, a in (reference or {}).items() if a is not None and np.isfinite(a)}
    if frame.empty and not ref:
        return _no_data(ax, title)
    fig, ax = _figure_and_axes(ax, (6.6, 4.4))
    all_y = list(frame["_y"]) + list(ref.values())
    fraction = _is_fraction(np.asarray(all_y, dtype=float))
    kinds = _ordered_kinds(frame["kind"]) if not frame.empty else []
    colors = _kind_colors(kinds)
    ratios: set[float] = set()
    pruned = [k for k in kinds if not (k == "dense" or frame.loc[frame["kind"] == k, "_r"].isna().all())]
    all_r = sorted({_ratio_key(r) for r in frame["_r"].dropna()}) if not frame.empty else []
    gap = min(np.diff(all_r)) if len(all_r) > 1 else 0.2
    at_ratio = {r: [k for k in pruned if (frame.loc[frame["kind"] == k, "_r"].map(_ratio_key) == r).any()]
                for r in all_r}  # kinds sharing a ratio are spread around it; a kind alone stays on it
    dodge = lambda kind, r: (at_ratio[r].index(kind) - (len(at_ratio[r]) - 1) / 2) * 0.06 * gap  # noqa: E731
    for kind in kinds:
        g = frame[frame["kind"] == kind]
        if kind not in pruned:
            s = summarize(g["_y"])
            ax.axhline(s.mean, color=colors[kind], lw=1.8, zorder=2, gid="dense",
                       label=f"{_kind_label(kind)} ({_fmt_acc(s.mean, fraction)})")
            if s.n >= 2:
                ax.axhspan(s.lo, s.hi, color=colors[kind], alpha=0.08, lw=0, zorder=1, gid="dense_ci")
            continue
        g = g[g["_r"].notna()]
        keys = sorted(g["_r"].map(_ratio_key).unique())
        ratios.update(keys)
        stats = [summarize(g.loc[g["_r"].map(_ratio_key) == k, "_y"]) for k in keys]
        xs = np.asarray([k + dodge(kind, k) for k in keys])
        mean = np.array([s.mean for s in stats])
        lo = np.array([s.lo for s in stats])
        hi = np.array([s.hi for s in stats])
        has_ci = np.isfinite(lo)
        ax.plot(xs, mean, marker=_KIND_MARKERS.get(kind, "D"), ms=7, lw=1.6, color=colors[kind],
                label=_kind_label(kind), zorder=3, gid=f"kind_{kind}")
        if has_ci.any():
            bars = ax.errorbar(xs[has_ci], mean[has_ci], yerr=[(mean - lo)[has_ci], (hi - mean)[has_ci]], fmt="none",
                               ecolor=colors[kind], elinewidth=1.3, capsize=3, zorder=3)
            bars.lines[2][0].set_gid(f"ci_{kind}")  # the vertical bars: one segment per ratio, lo to hi
        if len(keys) > 1 and has_ci.all():
            ax.fill_between(xs, lo, hi, color=colors[kind], alpha=0.12, lw=0)
    if ref:
        xs = sorted(ref)
        ratios.update(_ratio_key(x) for x in xs)
        ax.plot(xs, [ref[x] for x in xs], ls="--", marker="d", ms=6, lw=1.3, color="0.45",
                label=reference_label, zorder=2, gid="reference")
    if ratios:
        ticks = sorted(ratios)
        ax.set_xticks(ticks, [format_ratio(t) for t in ticks])
    _percent_axis(ax, fraction)
    ax.margins(x=0.08, y=0.15)
    ax.set_xlabel("pruning ratio p")
    ax.set_ylabel("test accuracy")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False,
              title="mean; bars/bands:\n95% CI over seeds", title_fontsize=8)
    if title:
        ax.set_title(title)
    sns.despine(ax=ax)
    return fig


def _fmt_acc(acc: float, fraction: bool) -> str:
    return f"{acc * 100 if fraction else acc:.1f}%"


# --- parameters and time bars ----------------------------------------------------------------------
def memory_time_bars(table: pd.DataFrame, ax: Sequence[Axes] | None = None, title: str = "") -> Figure:
    """Two panels side by side: parameter count per run and training time relative to dense.
    `table`: columns `run`, `params`, `time_rel_dense`, and optionally `kind` (bar colours). `ax`: two
    axes to draw into, or None."""
    if ax is not None:
        axes = list(np.ravel(ax)) if not isinstance(ax, Axes) else [ax]
        if len(axes) != 2:
            raise ValueError(f"memory_time_bars draws two panels and needs two axes, got {len(axes)}")
    if table is None or len(table) == 0:
        return _no_data(None if ax is None else axes[0], title)
    _require_columns(table, ["run", "params", "time_rel_dense"], "memory_time_bars")
    frame = table.assign(_p=_numeric(table["params"]), _t=_numeric(table["time_rel_dense"]),
                         run=table["run"].astype(str))
    frame = frame[frame["_p"].notna() | frame["_t"].notna()]
    if frame.empty:
        return _no_data(None if ax is None else axes[0], title)
    if ax is None:
        fig, axes = _new_figure(2, (10.0, 0.45 * len(frame) + 1.8), sharey=True)
    else:
        fig = axes[0].get_figure(root=True)
    if "kind" in frame.columns:
        kinds = frame["kind"].astype(str)
        colors = _kind_colors(_ordered_kinds(kinds))
        bar_colors = [colors[k] for k in kinds]
    else:
        bar_colors = sns.color_palette("colorblind", len(frame))
    y = np.arange(len(frame))
    eng = EngFormatter(places=1, sep="")
    panels = [(axes[0], frame["_p"].fillna(0.0), "parameters", lambda v: eng(v)),
              (axes[1], frame["_t"].fillna(0.0), "training time relative to dense", lambda v: f"{v:.2f}×")]
    for (pax, values, label, fmt), raw in zip(panels, (frame["_p"], frame["_t"])):
        bars = pax.barh(y, values, color=bar_colors, edgecolor="white", height=0.7)
        pax.bar_label(bars, labels=[fmt(v) if np.isfinite(v) else "n/a" for v in raw], padding=3, fontsize=8)
        pax.set_xlabel(label)
        pax.set_yticks(y, frame["run"])
        if not pax.yaxis_inverted():  # first run on top (axes may share y)
            pax.invert_yaxis()
        pax.margins(x=0.18)
        pax.grid(axis="y", visible=False)
        sns.despine(ax=pax, left=True)
    axes[0].xaxis.set_major_formatter(EngFormatter(places=0, sep=""))
    axes[1].axvline(1.0, ls=":", lw=1.0, color="0.4", gid="dense_time")
    if title:
        fig.suptitle(title)
    return fig
