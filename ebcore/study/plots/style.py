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

from ..kinds import RUN_KINDS

DPI = 150
NO_DATA = "no data"


class _FromRegistry(dict):
    """A live view of one field of the run-kind registry (ebcore.study.kinds.RUN_KINDS): kinds registered
    later (tests, plug-ins) get their label, marker and colour too."""

    def __init__(self, field: str, fallback: str | None = None) -> None:
        super().__init__()
        self.field, self.fallback = field, fallback

    def __getitem__(self, kind: str) -> Any:
        value = getattr(RUN_KINDS[kind], self.field)
        return value if value or self.fallback is None else getattr(RUN_KINDS[kind], self.fallback)

    def __contains__(self, kind: object) -> bool:
        return kind in RUN_KINDS

    def get(self, kind: str, default: Any = None) -> Any:
        return self[kind] if kind in RUN_KINDS else default


def kind_order() -> tuple[str, ...]:
    return tuple(RUN_KINDS)


KIND_ORDER = kind_order()        # at import; figures call kind_order() for kinds registered later
KIND_LABELS = _FromRegistry("label")
_KIND_MARKERS = _FromRegistry("marker")
_KIND_LINESTYLES = _FromRegistry("linestyle")
_KIND_SHORT = _FromRegistry("short", fallback="label")


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
    """Each kind's registry colour; a kind outside the registry gets a free colorblind-palette colour."""
    extra = iter(sns.color_palette("colorblind", 10)[5:] * 3)
    return {k: RUN_KINDS[k].colour if k in RUN_KINDS else next(extra) for k in kinds}


def _ratio_colors(ratios: Sequence[Any]) -> dict[float, Any]:
    """One distinct colour per pruning ratio (keyed by `_ratio_key`), in increasing ratio order; dense's black
    is never used."""
    keys = sorted({_ratio_key(r) for r in ratios if r is not None and np.isfinite(float(r))})
    palette = sns.color_palette("colorblind", 10)
    order = [0, 3, 2, 4, 8, 1, 5, 9, 6]  # blue, vermillion, green, purple, yellow, orange, ... (no grey)
    return {k: palette[order[i % len(order)]] for i, k in enumerate(keys)}


def _ordered_kinds(kinds: pd.Series) -> list[str]:
    present = list(dict.fromkeys(kinds.astype(str)))
    order = kind_order()
    return [k for k in order if k in present] + [k for k in present if k not in order]


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
