"""Training curves: validation accuracy per epoch, one line per run (dense thick and black, random runs
dashed, late ones dotted)."""
from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .style import _figure_and_axes, _is_fraction, _no_data, _numeric, _percent_axis, _require_columns


def _line_style(run: str) -> str:
    name = run.lower()
    if "random" in name:
        return "--"
    if "late" in name:
        return ":"
    return "-"


def accuracy_curves(curves: pd.DataFrame, ax: Axes | None = None, title: str = "",
                    ylabel: str = "validation accuracy") -> Figure:
    """Validation accuracy per epoch, one line per run. `curves`: columns `run`, `epoch`,
    `val_accuracy` (0..1, or percent). The run named "dense" is drawn thick and black; runs whose name
    contains "random" are dashed, "late" dotted."""
    if curves is None or len(curves) == 0:
        return _no_data(ax, title)
    _require_columns(curves, ["run", "epoch", "val_accuracy"], "accuracy_curves")
    frame = curves.assign(_x=_numeric(curves["epoch"]), _y=_numeric(curves["val_accuracy"]))
    frame = frame[frame["_x"].notna() & frame["_y"].notna()]
    if frame.empty:
        return _no_data(ax, title)
    fig, ax = _figure_and_axes(ax, (7.0, 4.2))
    runs = list(dict.fromkeys(frame["run"].astype(str)))
    runs = [r for r in runs if r.lower() == "dense"] + [r for r in runs if r.lower() != "dense"]
    palette = iter(sns.color_palette("colorblind", max(len(runs), 1)))
    for run in runs:
        g = frame[frame["run"].astype(str) == run].sort_values("_x")
        if run.lower() == "dense":
            style = dict(color="black", lw=2.8, ls="-", zorder=4)
        else:
            style = dict(color=next(palette), lw=1.6, ls=_line_style(run), zorder=3)
        ax.plot(g["_x"], g["_y"], marker="o" if len(g) == 1 else None, label=run, **style)
    _percent_axis(ax, _is_fraction(frame["_y"]))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend(loc="lower right", fontsize=9, framealpha=0.9)
    if title:
        ax.set_title(title)
    sns.despine(ax=ax)
    return fig
