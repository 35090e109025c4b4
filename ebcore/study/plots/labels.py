"""Point labels that do not overlap: a greedy placement in display space (no extra dependency).

Each label tries a ring of offsets around its point, nearest first, and takes the first whose box overlaps
no label placed before it, no point marker and stays inside the axes; when every offset collides, the one
with the least overlap wins.

    place_labels(ax, xs, ys, ["EB p=0.3", "random p=0.3"], colors)   # -> the Annotation artists
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox

# offsets in points (dx, dy), nearest first; the text is anchored on the side facing its point
_RING = [(6, 4), (6, -4), (-6, 4), (-6, -4), (0, 9), (0, -9), (12, 12), (12, -12), (-12, 12), (-12, -12),
         (0, 20), (0, -20), (22, 0), (-22, 0), (20, 22), (20, -22), (-20, 22), (-20, -22), (0, 32), (0, -32)]


def _alignment(dx: float, dy: float) -> tuple[str, str]:
    ha = "left" if dx > 0 else "right" if dx < 0 else "center"
    va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
    return ha, va


def _overlap(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def place_labels(ax: Axes, xs: Sequence[float], ys: Sequence[float], texts: Sequence[str],
                 colors: Sequence[Any] | None = None, fontsize: float = 8, marker_px: float = 9.0,
                 pad_px: float = 1.5, segments: Sequence[tuple[tuple[float, float], tuple[float, float]]] = (),
                 markers: Sequence[tuple[float, float]] = ()) -> list[Annotation]:
    """Annotate point i (data coordinates xs[i], ys[i]) with texts[i] so that no two labels overlap and no
    label covers a point (a square of `marker_px` pixels around each; `markers`: more points, unlabelled,
    to keep clear); `segments` (((x0, y0), (x1, y1)) in
    data coordinates, e.g. error bars) are avoided too where there is room. Call it after everything else
    is drawn into `ax` (the axes' limits are used as they are). Returns the annotations in input order."""
    if not (len(xs) == len(ys) == len(texts)):
        raise ValueError(f"place_labels: {len(xs)} xs, {len(ys)} ys and {len(texts)} texts must be as many")
    colors = list(colors) if colors is not None else ["black"] * len(texts)
    fig = ax.get_figure(root=True)
    fig.draw_without_rendering()  # settle the layout: display coordinates are final from here on
    to_px = ax.transData.transform
    points = [to_px((float(x), float(y))) for x, y in [*zip(xs, ys), *markers]]
    half = marker_px / 2
    obstacles = [Bbox([[px - half, py - half], [px + half, py + half]]) for px, py in points]
    for a, b in segments:  # a thin box around each segment (error bars are horizontal or vertical)
        (x0, y0), (x1, y1) = to_px(a), to_px(b)
        obstacles.append(Bbox([[min(x0, x1) - 1, min(y0, y1) - 1], [max(x0, x1) + 1, max(y0, y1) + 1]]))
    frame = ax.get_window_extent()
    scale = fig.dpi / 72.0
    placed: list[Bbox] = []
    labels = []
    for (x, y), text, color in zip(zip(xs, ys), texts, colors):
        note = ax.annotate(text, (float(x), float(y)), xytext=_RING[0], textcoords="offset points", fontsize=fontsize,
                           color=color, ha="left", va="bottom", zorder=6, annotation_clip=False,
                           bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.75))
        note.set_in_layout(False)  # a label must not move the axes it was placed in
        best, best_cost = None, np.inf
        for dx, dy in _RING:
            ha, va = _alignment(dx, dy)
            note.set_position((dx, dy))
            note.set_ha(ha)
            note.set_va(va)
            box = note.get_window_extent().padded(pad_px * scale)
            cost = sum(_overlap(box, b) for b in placed) + sum(_overlap(box, b) for b in obstacles)
            outside = max(frame.x0 - box.x0, 0) + max(box.x1 - frame.x1, 0) + max(frame.y0 - box.y0, 0) \
                + max(box.y1 - frame.y1, 0)
            cost += outside * box.height
            if cost < best_cost:
                best, best_cost = (dx, dy, ha, va, box), cost
            if cost == 0:
                break
        dx, dy, ha, va, box = best
        note.set_position((dx, dy))
        note.set_ha(ha)
        note.set_va(va)
        if abs(dx) + abs(dy) > 12:  # far from its point: a thin leader line says which point it names
            note.remove()
            note = ax.annotate(text, (float(x), float(y)), xytext=(dx, dy), textcoords="offset points",
                               fontsize=fontsize, color=color, ha=ha, va=va, zorder=6, annotation_clip=False,
                               bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.75),
                               arrowprops=dict(arrowstyle="-", lw=0.6, color=color, shrinkA=0, shrinkB=4))
            note.set_in_layout(False)
        placed.append(box)
        labels.append(note)
    return labels
