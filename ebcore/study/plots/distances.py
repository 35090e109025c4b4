"""Mask-distance figures: pairwise-distance heatmaps between checks (one matrix, or one panel per ratio on a
shared scale) with the ticket boxed and starred, and distance curves over training with the threshold."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from .style import (_figure_and_axes, _fmt_at, _new_figure, _no_data, _numeric, _ratio_key, _require_columns,
                    format_ratio)

_TICKET_COLOR = "#d62728"
_MAX_TICKS = 12


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


def _ticket_index(ticket: Any) -> int | None:
    """An int, None, or anything with a `check_index` (ebcore.detector.Ticket)."""
    if ticket is None:
        return None
    index = getattr(ticket, "check_index", ticket)
    if index is None or (isinstance(index, float) and math.isnan(index)):
        return None
    return int(index)


# --- mask-distance heatmaps ------------------------------------------------------------------------
def cell_decimals(threshold: float | None) -> int:
    """Decimals that keep the threshold's boundary readable: one more than the threshold has (0.01 -> 3,
    0.1 -> 2, 0.005 -> 4); 2 without a threshold."""
    if threshold is None or not np.isfinite(threshold) or threshold <= 0:
        return 2
    text = f"{float(threshold):.10f}".rstrip("0")
    return max(len(text.split(".")[1]) if "." in text else 0, 1) + 1


def _draw_heatmap(ax: Axes, matrix: np.ndarray, labels: Sequence[Any], ticket_index: int | None,
                  vmin: float, vmax: float, cmap: str, annotate: bool | None, axis_label: str,
                  window: int | None = None, threshold: float | None = None) -> Any:
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
        digits = cell_decimals(threshold)
        size = 7 if digits <= 2 else 6
        for i in range(n):
            for j in range(n):
                v = matrix[i, j]
                if i != j and np.isfinite(v):  # the diagonal is 0 by definition
                    within = threshold is not None and v <= threshold  # the rule's test: distance <= threshold
                    ax.text(j, i, f"{v:.{digits}f}", ha="center", va="center", fontsize=size,
                            fontweight="bold" if within else "normal", gid="within" if within else "above",
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
                     axis_label: str = "epoch", window: int | None = None, threshold: float | None = None) -> Figure:
    """Pairwise mask distances between checks (You et al. 2020, Fig. 2; the study's Fig. 3).

    `matrix`: (checks, checks), e.g. `EarlyBirdDetector.pairwise(ratio)`; `labels`: the epoch (or step)
    of each check, default 0..n-1 (every k-th is written when there are many). `ticket_index`: the
    position of the ticket's check (an int or a detector `Ticket`); its cell is boxed and starred, and
    with the detector's `window` the distances the rule compared (the ticket's row over the window) are
    outlined too. Colour scale from 0 to `vmax` (default the largest distance); cells
    are written out when `annotate` (default: 10 checks or fewer), with one decimal more than the
    detector's `threshold` has, and in bold where the distance is within it (<= threshold).
    """
    arr = _check_matrix(matrix)
    if arr.size == 0:
        return _no_data(ax, title)
    labels = _check_labels(labels, arr.shape[0])
    fig, ax = _figure_and_axes(ax, (5.6, 4.8), style="white")
    top = vmax if vmax is not None else _vmax([arr])
    image = _draw_heatmap(ax, arr, labels, _ticket_index(ticket_index), 0.0, top, cmap, annotate, axis_label,
                          window, threshold)
    if colorbar:
        fig.colorbar(image, ax=ax, label="mask distance", shrink=0.9)
    ticket = _ticket_index(ticket_index)
    lines = [title] if title else []
    if ticket is not None:
        lines.append(_ticket_note(labels[ticket], axis_label))
    if threshold is not None and (annotate if annotate is not None else arr.shape[0] <= 10):
        lines.append(_threshold_note(threshold))
    if lines:
        ax.set_title("\n".join(lines))
    return fig


def _threshold_note(threshold: float) -> str:
    return f"bold: distance \u2264 threshold {threshold:g}"


def _ticket_note(label: Any, axis_label: str = "epoch") -> str:
    return f"\u2605 ticket at {axis_label} {_fmt_at(label)}"


def distance_heatmaps(matrices: Mapping[float, np.ndarray], labels: Sequence[Any] | Mapping[float, Sequence[Any]]
                      | None = None, tickets: Mapping[float, int | None] | None = None, title_prefix: str = "",
                      *, cmap: str = "viridis", annotate: bool | None = None, axis_label: str = "epoch",
                      window: int | None = None, threshold: float | None = None) -> Figure:
    """One distance heatmap per ratio, side by side (panel titles "p = 0.3"), on a shared colour scale
    with one colour bar. `labels`: one list for all panels or a dict ratio -> list; `tickets`: ratio ->
    ticket check index (or `Ticket`, or None); `window`: the detector's window, to outline what the rule
    compared; `threshold`: the detector's, for the cells' decimals and bold (see `distance_heatmap`).
    `title_prefix` (e.g. "BERT / SST-2") heads the figure."""
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
        image = _draw_heatmap(ax, m, panel_labels, ticket, 0.0, top, cmap, annotate, axis_label, window, threshold)
        note = _ticket_note(panel_labels[ticket], axis_label) if ticket is not None else "no ticket"
        ax.set_title(f"p = {format_ratio(ratio)}\n{note}")
    for ax in axes[1:]:
        ax.set_ylabel("")
    fig.colorbar(image, ax=axes, label="mask distance", shrink=0.85)
    written = annotate if annotate is not None else max(m.shape[0] for _, m in items) <= 10
    heading = [title_prefix] if title_prefix else []
    if threshold is not None and written:
        heading.append(_threshold_note(threshold))
    if heading:
        fig.suptitle("\n".join(heading))
    return fig


def _ratio_groups(frame: pd.DataFrame) -> list[tuple[float, pd.DataFrame]]:
    keys = frame["ratio"].map(_ratio_key)
    return [(k, frame[keys == k]) for k in sorted(keys.dropna().unique())]


# --- distance curves -------------------------------------------------------------------------------
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
