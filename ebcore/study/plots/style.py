"""What every figure shares: the kind order, labels, markers and colours, ratio and label formatting, the
pyplot-free figure/axes set-up, the centred "no data" figure, column checks, percent axes and `save_figure`."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

DPI = 150
NO_DATA = "no data"
KIND_ORDER = ("dense", "early_bird", "random", "late")
KIND_LABELS = {"dense": "dense", "early_bird": "early-bird", "random": "random", "late": "late ticket"}
_KIND_MARKERS = {"dense": "s", "early_bird": "o", "random": "X", "late": "^", "oneshot": "v"}
_KIND_LINESTYLES = {"dense": "-", "early_bird": "-", "random": "--", "late": ":", "oneshot": "-."}
_KIND_SHORT = {"dense": "dense", "early_bird": "EB", "random": "random", "late": "late", "oneshot": "one-shot"}


def format_ratio(ratio: Any) -> str:
    """A pruning ratio as a short string: 0.30000000000000004 -> "0.3", 0.5 -> "0.5", NaN -> "-"."""
    try:
        value = float(ratio)
    except (TypeError, ValueError):
        return str(ratio)
    if math.isnan(value):
        return "-"
    return f"{round(value, 6):g}"


def _ratio_key(ratio: Any) -> float:
    """Ratios that differ only by float noise (0.3 vs 0.30000000000000004) map to the same key."""
    return round(float(ratio), 6)


def _fmt_at(value: Any) -> str:
    """A check label (epoch, step or any string) for annotations: 12.0 -> "12", 1.25 -> "1.25"."""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{f:g}"


def _new_figure(ncols: int = 1, figsize: tuple[float, float] = (6.4, 4.2), style: str = "whitegrid",
                **subplot_kw: Any) -> tuple[Figure, Any]:
    """A pyplot-free figure with `ncols` axes side by side (one Axes, or a list of them when
    ncols > 1), laid out without overlaps."""
    with sns.axes_style(style):
        fig = Figure(figsize=figsize, layout="constrained")
        axes = fig.subplots(1, ncols, squeeze=False, **subplot_kw)
    axes = list(axes[0])
    return fig, axes[0] if ncols == 1 else axes


def _figure_and_axes(ax: Axes | None, figsize: tuple[float, float], style: str = "whitegrid"
                     ) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.get_figure(root=True), ax
    return _new_figure(1, figsize, style)


def _no_data(ax: Axes | None, title: str = "", note: str = NO_DATA,
             figsize: tuple[float, float] = (6.4, 4.2)) -> Figure:
    """A figure (or the given axes) with a centred note instead of a plot."""
    fig, ax = _figure_and_axes(ax, figsize, style="white")
    ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", fontsize=12, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return fig


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; got {list(frame.columns)}")


def _numeric(series: pd.Series) -> pd.Series:
    """Floats with None / unparsable entries as NaN."""
    return pd.to_numeric(series, errors="coerce").astype(float)


def _is_fraction(values: pd.Series | np.ndarray) -> bool:
    """Accuracies in 0..1 (True) or already in percent (False)."""
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    return arr.size == 0 or float(np.max(arr)) <= 1.0 + 1e-9


def _percent_axis(ax: Axes, fraction: bool, axis: str = "y") -> None:
    formatter = PercentFormatter(xmax=1.0 if fraction else 100.0, decimals=None)
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(formatter)


def _kind_colors(kinds: Sequence[str]) -> dict[str, Any]:
    palette = sns.color_palette("colorblind", 10)
    fixed = {"dense": (0.0, 0.0, 0.0), "early_bird": palette[0], "random": palette[1], "late": palette[2]}
    extra = iter(palette[3:] * 3)
    return {k: fixed[k] if k in fixed else next(extra) for k in kinds}


def _ratio_colors(ratios: Sequence[Any]) -> dict[float, Any]:
    """One distinct colour per pruning ratio (keyed by `_ratio_key`), in increasing ratio order; dense's black
    is never used."""
    keys = sorted({_ratio_key(r) for r in ratios if r is not None and np.isfinite(float(r))})
    palette = sns.color_palette("colorblind", 10)
    order = [0, 3, 2, 4, 8, 1, 5, 9, 6]  # blue, vermillion, green, purple, yellow, orange, ... (no grey)
    return {k: palette[order[i % len(order)]] for i, k in enumerate(keys)}


def _ordered_kinds(kinds: pd.Series) -> list[str]:
    present = list(dict.fromkeys(kinds.astype(str)))
    return [k for k in KIND_ORDER if k in present] + [k for k in present if k not in KIND_ORDER]


def _kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind.replace("_", " "))


def save_figure(fig: Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Write `fig` to `path` (PNG unless the suffix names another format, e.g. .pdf/.svg), creating
    parent folders; a path without a suffix gets ".png". Returns the path written."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", facecolor="white")
    return path
