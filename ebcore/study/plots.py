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
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import EngFormatter, MaxNLocator, PercentFormatter

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
]

DPI = 150
NO_DATA = "no data"
KIND_ORDER = ("dense", "early_bird", "random", "late")
KIND_LABELS = {"dense": "dense", "early_bird": "early-bird", "random": "random", "late": "late ticket"}
_KIND_MARKERS = {"dense": "s", "early_bird": "o", "random": "X", "late": "^", "oneshot": "v"}
_TICKET_COLOR = "#d62728"
_MAX_TICKS = 12


# --- small helpers ------------------------------------------------------------------------------------
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


def _x_positions(at: pd.Series) -> tuple[np.ndarray, list[str] | None]:
    """x values for check labels: the numbers themselves, or positions 0..k-1 (with tick labels) when
    some labels are not numbers."""
    numeric = _numeric(at)
    if not (numeric.isna() & at.notna()).any():
        return numeric.to_numpy(), None
    categories = list(dict.fromkeys(at.astype(str)))
    index = {c: i for i, c in enumerate(categories)}
    return np.array([index[str(v)] for v in at], dtype=float), categories


def _tick_step(n: int, max_ticks: int = _MAX_TICKS) -> int:
    return max(1, math.ceil(n / max_ticks))


def _kind_colors(kinds: Sequence[str]) -> dict[str, Any]:
    palette = sns.color_palette("colorblind", 10)
    fixed = {"dense": (0.0, 0.0, 0.0), "early_bird": palette[0], "random": palette[1], "late": palette[2]}
    extra = iter(palette[3:] * 3)
    return {k: fixed[k] if k in fixed else next(extra) for k in kinds}


def _ordered_kinds(kinds: pd.Series) -> list[str]:
    present = list(dict.fromkeys(kinds.astype(str)))
    return [k for k in KIND_ORDER if k in present] + [k for k in present if k not in KIND_ORDER]


def _kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind.replace("_", " "))


def _ticket_index(ticket: Any) -> int | None:
    """An int, None, or anything with a `check_index` (ebcore.detector.Ticket)."""
    if ticket is None:
        return None
    index = getattr(ticket, "check_index", ticket)
    if index is None or (isinstance(index, float) and math.isnan(index)):
        return None
    return int(index)


def save_figure(fig: Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Write `fig` to `path` (PNG unless the suffix names another format, e.g. .pdf/.svg), creating
    parent folders; a path without a suffix gets ".png". Returns the path written."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", facecolor="white")
    return path


# --- 1. mask-distance heatmaps ------------------------------------------------------------------------
def _draw_heatmap(ax: Axes, matrix: np.ndarray, labels: Sequence[Any], ticket_index: int | None,
                  vmin: float, vmax: float, cmap: str, annotate: bool | None, axis_label: str,
                  window: int | None = None) -> Any:
    n = matrix.shape[0]
    cm = mpl.colormaps[cmap].with_extremes(bad="0.85")  # NaN cells grey
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap=cm, vmin=vmin, vmax=vmax, origin="upper",
                      interpolation="nearest", aspect="equal")
    step = _tick_step(n)
    ticks = list(range(0, n, step))
    names = [_fmt_at(labels[i]) for i in ticks]
    ax.set_xticks(ticks, names, rotation=90 if max((len(s) for s in names), default=0) > 3 else 0)
    ax.set_yticks(ticks, names)
    ax.set_xlabel(axis_label)
    ax.set_ylabel(axis_label)
    ax.grid(False)
    if annotate is None:
        annotate = n <= 10
    if annotate:
        mid = (vmin + vmax) / 2
        for i in range(n):
            for j in range(n):
                v = matrix[i, j]
                if i != j and np.isfinite(v):  # the diagonal is 0 by definition
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                            color="black" if v > mid else "white")
    if ticket_index is not None:
        if not 0 <= ticket_index < n:
            raise ValueError(f"ticket_index {ticket_index} is outside the {n} checks of the matrix")
        t = ticket_index
        if window is not None and window > 1:
            # The distances the rule compared: the ticket's mask against the other masks of its window.
            first = max(0, t - window + 1)
            ax.add_patch(Rectangle((first - 0.5, t - 0.5), t - first + 1, 1, fill=False, edgecolor=_TICKET_COLOR,
                                   lw=1.5, ls="--", gid="ticket_window"))
        ax.add_patch(Rectangle((t - 0.5, t - 0.5), 1, 1, fill=False, edgecolor=_TICKET_COLOR, lw=2.5,
                               gid="ticket_box"))
        ax.plot([t], [t], marker="*", ms=14, color=_TICKET_COLOR, mec="white", mew=0.8, ls="none",
                gid="ticket_marker", label=_ticket_note(labels[t], axis_label))
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(n - 0.5, -0.5)
    return image


def _check_matrix(matrix: Any) -> np.ndarray:
    arr = np.asarray(matrix, dtype=float)
    if arr.size and (arr.ndim != 2 or arr.shape[0] != arr.shape[1]):
        raise ValueError(f"distance matrix must be square, got shape {arr.shape}")
    return arr.reshape(0, 0) if arr.size == 0 else arr


def _check_labels(labels: Sequence[Any] | None, n: int) -> list[Any]:
    if labels is None:
        return list(range(n))
    labels = list(labels)
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for a {n}x{n} distance matrix")
    return labels


def _vmax(matrices: Sequence[np.ndarray]) -> float:
    finite = [float(np.nanmax(m)) for m in matrices if m.size and np.isfinite(m).any()]
    top = max(finite, default=0.0)
    return top if top > 0 else 1.0


def distance_heatmap(matrix: np.ndarray, labels: Sequence[Any] | None = None, title: str = "",
                     ax: Axes | None = None, ticket_index: int | None = None, *, vmax: float | None = None,
                     cmap: str = "viridis", annotate: bool | None = None, colorbar: bool = True,
                     axis_label: str = "epoch", window: int | None = None) -> Figure:
    """Pairwise mask distances between checks (You et al. 2020, Fig. 2; the study's Fig. 3).

    `matrix`: (checks, checks), e.g. `EarlyBirdDetector.pairwise(ratio)`; `labels`: the epoch (or step)
    of each check, default 0..n-1 (every k-th is written when there are many). `ticket_index`: the
    position of the ticket's check (an int or a detector `Ticket`); its cell is boxed and starred, and
    with the detector's `window` the distances the rule compared (the ticket's row over the window) are
    outlined too. Colour scale from 0 to `vmax` (default the largest distance); cells
    are written out when `annotate` (default: 10 checks or fewer).
    """
    arr = _check_matrix(matrix)
    if arr.size == 0:
        return _no_data(ax, title)
    labels = _check_labels(labels, arr.shape[0])
    fig, ax = _figure_and_axes(ax, (5.6, 4.8), style="white")
    top = vmax if vmax is not None else _vmax([arr])
    image = _draw_heatmap(ax, arr, labels, _ticket_index(ticket_index), 0.0, top, cmap, annotate, axis_label,
                          window)
    if colorbar:
        fig.colorbar(image, ax=ax, label="mask distance", shrink=0.9)
    ticket = _ticket_index(ticket_index)
    lines = [title] if title else []
    if ticket is not None:
        lines.append(_ticket_note(labels[ticket], axis_label))
    if lines:
        ax.set_title("\n".join(lines))
    return fig


def _ticket_note(label: Any, axis_label: str = "epoch") -> str:
    return f"\u2605 ticket at {axis_label} {_fmt_at(label)}"


def distance_heatmaps(matrices: Mapping[float, np.ndarray], labels: Sequence[Any] | Mapping[float, Sequence[Any]]
                      | None = None, tickets: Mapping[float, int | None] | None = None, title_prefix: str = "",
                      *, cmap: str = "viridis", annotate: bool | None = None, axis_label: str = "epoch",
                      window: int | None = None) -> Figure:
    """One distance heatmap per ratio, side by side (panel titles "p = 0.3"), on a shared colour scale
    with one colour bar. `labels`: one list for all panels or a dict ratio -> list; `tickets`: ratio ->
    ticket check index (or `Ticket`, or None); `window`: the detector's window, to outline what the rule
    compared. `title_prefix` (e.g. "BERT / SST-2") heads the figure."""
    items = [(r, _check_matrix(m)) for r, m in matrices.items()]
    items = [(r, m) for r, m in items if m.size]
    if not items:
        return _no_data(None, title_prefix)
    tickets = {_ratio_key(r): t for r, t in (tickets or {}).items()}
    per_ratio = isinstance(labels, Mapping)
    label_map = {_ratio_key(r): v for r, v in labels.items()} if per_ratio else {}
    fig, axes = _new_figure(len(items), (4.0 * len(items) + 0.9, 4.7), style="white")
    axes = axes if isinstance(axes, list) else [axes]
    top = _vmax([m for _, m in items])
    image = None
    for ax, (ratio, m) in zip(axes, items):
        panel_labels = label_map.get(_ratio_key(ratio)) if per_ratio else labels
        panel_labels = _check_labels(panel_labels, m.shape[0])
        ticket = _ticket_index(tickets.get(_ratio_key(ratio)))
        image = _draw_heatmap(ax, m, panel_labels, ticket, 0.0, top, cmap, annotate, axis_label, window)
        note = _ticket_note(panel_labels[ticket], axis_label) if ticket is not None else "no ticket"
        ax.set_title(f"p = {format_ratio(ratio)}\n{note}")
    for ax in axes[1:]:
        ax.set_ylabel("")
    fig.colorbar(image, ax=axes, label="mask distance", shrink=0.85)
    if title_prefix:
        fig.suptitle(title_prefix)
    return fig


def _ratio_groups(frame: pd.DataFrame) -> list[tuple[float, pd.DataFrame]]:
    keys = frame["ratio"].map(_ratio_key)
    return [(k, frame[keys == k]) for k in sorted(keys.dropna().unique())]


# --- 2. distance curves -------------------------------------------------------------------------------
_DISTANCE_COLUMNS = {"consecutive_distance": "mask distance to previous check",
                     "window_distance": "largest mask distance in window"}


def distance_curves(records: pd.DataFrame, threshold: float | None = None, ax: Axes | None = None,
                    title: str = "", column: str = "consecutive_distance", logy: bool = False,
                    xlabel: str = "epoch") -> Figure:
    """Mask distance over training, one line per ratio, with the detection threshold and the tickets.

    `records`: columns `at` (epoch or step), `ratio`, `consecutive_distance` and/or `window_distance`
    (NaN/None where undefined) and `is_ticket` (optional), as `pd.DataFrame(detector.records())`.
    `threshold` defaults to the frame's `threshold` column. `column` picks the distance to plot;
    `logy` uses a log y axis (symlog near 0 when some distances are exactly 0). Tickets are stars
    annotated with their check label.
    """
    if column not in _DISTANCE_COLUMNS:
        raise ValueError(f"column must be one of {list(_DISTANCE_COLUMNS)}, got {column!r}")
    if records is None or len(records) == 0:
        return _no_data(ax, title)
    _require_columns(records, ["at", "ratio", column], "distance_curves")
    if threshold is None and "threshold" in records.columns:
        given = _numeric(records["threshold"]).dropna()
        threshold = float(given.iloc[0]) if len(given) else None
    frame = records.copy()
    frame["_x"], categories = _x_positions(frame["at"])
    frame["_y"] = _numeric(frame[column])
    frame["_ticket"] = frame["is_ticket"].fillna(False).astype(bool) if "is_ticket" in frame.columns else False
    frame = frame[frame["ratio"].notna()].sort_values("_x", kind="stable")
    if frame["_y"].notna().sum() == 0 and not frame["_ticket"].any():
        return _no_data(ax, title, note=f"no data ({column} undefined at every check)")

    fig, ax = _figure_and_axes(ax, (7.0, 4.2))
    groups = _ratio_groups(frame)
    colors = dict(zip([k for k, _ in groups], sns.color_palette("colorblind", max(len(groups), 1))))
    star_x, star_y, star_c = [], [], []
    notes: dict[float, tuple[float, str, list]] = {}
    for key, g in groups:
        valid = g[g["_y"].notna()]
        ax.plot(valid["_x"], valid["_y"], marker="o", ms=3.5, lw=1.6, color=colors[key],
                label=f"p = {format_ratio(key)}", gid="distance_line")
        for _, row in g[g["_ticket"]].iterrows():
            y = row["_y"] if np.isfinite(row["_y"]) else (threshold if threshold is not None else 0.0)
            star_x.append(row["_x"])
            star_y.append(y)
            star_c.append(colors[key])
            at = categories[int(row["_x"])] if categories else _fmt_at(row["at"])
            previous = notes.get(row["_x"])
            notes[row["_x"]] = (max(y, previous[0]) if previous else y, at,
                                (previous[2] if previous else []) + [colors[key]])
    for x, (y, at, note_colors) in notes.items():  # one label per check, even when ratios share it
        color = note_colors[0] if len(set(note_colors)) == 1 else "black"
        ax.annotate(f"{xlabel} {at}", (x, y), xytext=(7, 9), textcoords="offset points",
                    fontsize=8, color=color, fontweight="bold", zorder=6,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
    if threshold is not None:
        ax.axhline(threshold, ls="--", lw=1.2, color="0.35", label=f"threshold = {threshold:g}",
                   gid="threshold")
    if star_x:
        ax.scatter(star_x, star_y, marker="*", s=220, c=star_c, edgecolors="black", linewidths=0.7,
                   zorder=5, label="ticket", gid="tickets", clip_on=False)
    if logy:
        ys = frame["_y"].to_numpy()
        ys = ys[np.isfinite(ys)]
        if (ys <= 0).any():
            positive = ys[ys > 0]
            floor = float(positive.min()) if positive.size else (threshold or 1e-3)
            ax.set_yscale("symlog", linthresh=10 ** math.floor(math.log10(floor)))
        else:
            ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    if categories:
        step = _tick_step(len(categories))
        ax.set_xticks(range(0, len(categories), step), categories[::step])
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no half epochs or half steps
    ax.set_xlabel(xlabel)
    ax.set_ylabel(_DISTANCE_COLUMNS[column])
    handles, names = ax.get_legend_handles_labels()
    handles = [Line2D([], [], marker="*", ms=13, color="0.6", mec="black", mew=0.7, ls="none")
               if name == "ticket" else h for h, name in zip(handles, names)]
    ax.legend(handles, names, loc="best", fontsize=9, framealpha=0.9)
    if title:
        ax.set_title(title)
    sns.despine(ax=ax)
    return fig


# --- 3. accuracy curves -------------------------------------------------------------------------------
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


# --- 4. accuracy vs training time ---------------------------------------------------------------------
def accuracy_vs_time(table: pd.DataFrame, ax: Axes | None = None, title: str = "") -> Figure:
    """Test accuracy against total training time relative to the dense run, one marker style and colour
    per `kind` ("dense", "early_bird", "random", "late"), points annotated with their ratio.
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


# --- 5. accuracy vs ratio -----------------------------------------------------------------------------
def accuracy_vs_ratio(table: pd.DataFrame, ax: Axes | None = None, title: str = "",
                      reference: Mapping[float, float] | None = None,
                      reference_label: str = "study (published)") -> Figure:
    """Test accuracy against pruning ratio, one line per `kind`; the dense run is a horizontal line at
    its accuracy. Several rows of one (kind, ratio) (seeds) are averaged, their range shaded.
    `reference` (ratio -> accuracy, e.g. the study's published numbers) is drawn as a dashed series.
    `table`: columns `kind`, `ratio` (NaN for dense), `test_accuracy`."""
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
    for kind in kinds:
        g = frame[frame["kind"] == kind]
        if kind == "dense" or g["_r"].isna().all():
            acc = float(g["_y"].mean())
            ax.axhline(acc, color=colors[kind], lw=1.8, label=f"{_kind_label(kind)} ({_fmt_acc(acc, fraction)})",
                       zorder=2, gid="dense")
            continue
        g = g[g["_r"].notna()]
        stats = g.assign(_k=g["_r"].map(_ratio_key)).groupby("_k")["_y"].agg(["mean", "min", "max", "count"])
        ratios.update(stats.index)
        ax.plot(stats.index, stats["mean"], marker=_KIND_MARKERS.get(kind, "D"), ms=7, lw=1.6,
                color=colors[kind], label=_kind_label(kind), zorder=3)
        if (stats["count"] > 1).any():
            ax.fill_between(stats.index, stats["min"], stats["max"], color=colors[kind], alpha=0.15, lw=0)
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
    ax.legend(loc="best", fontsize=9, framealpha=0.9)
    if title:
        ax.set_title(title)
    sns.despine(ax=ax)
    return fig


def _fmt_acc(acc: float, fraction: bool) -> str:
    return f"{acc * 100 if fraction else acc:.1f}%"


# --- 6. parameters and time bars ----------------------------------------------------------------------
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


# --- multi-seed figures ---------------------------------------------------------------------------

def _seed_points(table: pd.DataFrame, value: str) -> pd.DataFrame:
    frame = table.assign(_y=_numeric(table[value]), run=table["run"].astype(str), kind=table["kind"].astype(str))
    return frame[frame["_y"].notna()]


def accuracy_by_run(table: pd.DataFrame, ax: Axes | None = None, title: str = "") -> Figure:
    """Test accuracy of every run: one dot per seed, the mean with its 95 % t-interval as a bar, and the
    dense mean as a vertical line. `table`: columns `run`, `kind`, `seed`, `test_accuracy`. The x axis
    spans the data and the intervals (not a zoom that hides them)."""
    from .stats import summarize
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
            ax.axvline(100 * s.mean, color="black", lw=0.8, ls=":", zorder=1)
    ax.set_yticks(range(len(runs)), runs)
    ax.invert_yaxis()
    ax.set_xlabel("test accuracy (%): dots = seeds, bar = mean ± 95% CI")
    ax.set_title(title)
    return fig


def accuracy_vs_cost(table: pd.DataFrame, ax: Axes | None = None, title: str = "") -> Figure:
    """Test accuracy against total training FLOPs relative to dense (search + retraining): one small dot
    per seed and a large marker per run at the mean, with 95 % CIs as error bars."""
    from .stats import summarize
    if table is None or len(table) == 0:
        return _no_data(ax, title)
    _require_columns(table, ["run", "kind", "test_accuracy", "flops_rel_dense"], "accuracy_vs_cost")
    frame = _seed_points(table, "test_accuracy").assign(_x=lambda f: _numeric(f["flops_rel_dense"]))
    frame = frame[frame["_x"].notna()]
    if frame.empty:
        return _no_data(ax, title)
    fig, ax = _figure_and_axes(ax, (7.2, 4.6))
    kinds = _ordered_kinds(frame["kind"])
    colors = _kind_colors(kinds)
    ax.axvline(1.0, ls=":", lw=1.0, color="0.5", zorder=1)
    span = max(float(frame["_x"].max() - frame["_x"].min()), 0.05)
    movable = [k for k in kinds if k != "dense"]  # dense stays at 1.0 exactly
    dodge = {k: (i - (len(movable) - 1) / 2) * 0.012 * span for i, k in enumerate(movable)} | {"dense": 0.0}
    frame = frame.assign(_x=frame["_x"] + frame["kind"].map(dodge))
    for run, g in frame.groupby("run", sort=False):
        kind = g["kind"].iloc[0]
        ax.scatter(g["_x"], 100 * g["_y"], s=14, color=colors[kind], alpha=0.45, zorder=2, edgecolors="none")
        sx, sy = summarize(g["_x"]), summarize(g["_y"])
        xerr = None if sx.n < 2 else sx.half_width
        yerr = None if sy.n < 2 else 100 * sy.half_width
        ax.errorbar(sx.mean, 100 * sy.mean, xerr=xerr, yerr=yerr, fmt=_KIND_MARKERS.get(kind, "D"), ms=8,
                    color=colors[kind], mec="white", capsize=3, lw=1.0, zorder=3, label=run)
        ratio = _numeric(g["ratio"]).iloc[0] if "ratio" in g.columns else float("nan")
        if kind != "dense" and np.isfinite(ratio):
            ax.annotate(f"p={format_ratio(ratio)}", (sx.mean, 100 * sy.mean), xytext=(6, 5),
                        textcoords="offset points", fontsize=8, color=colors[kind])
    ax.set_xlabel("total training FLOPs / dense (search + retraining; kinds dodged slightly to stay visible)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="best", frameon=True)
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
