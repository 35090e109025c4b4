"""The summary figure across families: claims x families, each cell coloured by its verdict and carrying our
effect with its 95 % interval, from each family's verdicts.csv (ebcore.study.verdicts).

    frames = {family: pd.read_csv(f"results/{family}/cpu/verdicts.csv") for family in ("vit", "bert")}
    fig = verdict_overview(frames, title="cpu profile")
"""
from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .style import _new_figure, _no_data, _require_columns

VERDICT_COLORS = {"reproduced": "#8fd19e", "negligible edge": "#f3e3a0", "not reproduced": "#f4a6a0",
                  "inconclusive": "#e3e3e3", "no ticket found": "#c9b8e0", "not run": "#f7f7f7"}
_MISSING_COLOR = "#ffffff"
# a claim's per-family part at its end: "(p = 0.3)" or the study's gap "(-1.00 pts)"
_CLAIM_BOUND = re.compile(r" \((p = [0-9.]+|[-+0-9.]+ pts)\)$")
_EFFECTS = ("ours (mean, 95% CI)", "ours (mean ± 95% CI)")   # the current name, then the one of older files


def _effect_column(frame: pd.DataFrame) -> str:
    return next((c for c in _EFFECTS if c in frame.columns), _EFFECTS[0])


def split_claim(claim: str) -> tuple[str, str]:
    """("the p = 0.3 ticket stays within the study's gap", "-1.00 pts") from the claim as a family writes
    it; the second part is "" when the claim has no per-family bound."""
    match = _CLAIM_BOUND.search(claim)
    return (claim[:match.start()], match.group(1)) if match else (claim, "")


def _wrap(text: str, width: int) -> str:
    """Lines of at most `width` characters, breaking after "; " first (one statement a line)."""
    parts = str(text).split("; ") if text else []
    return "\n".join(line for i, part in enumerate(parts)
                     for line in textwrap.wrap(part + (";" if i < len(parts) - 1 else ""), width=width,
                                               break_long_words=False))


def verdict_overview(verdicts_by_family: Mapping[str, pd.DataFrame], title: str = "",
                     cell_width: int = 28) -> Figure:
    """One row per claim, one column per family (in the mapping's order): the cell's colour is the verdict
    (VERDICT_COLORS: green reproduced, yellow negligible edge, red not reproduced, grey inconclusive, lilac no
    ticket found; white: the family has no such claim) and its text our effect with its 95 % interval (the
    `ours (mean, 95% CI)` column; older files: `ours (mean ± 95% CI)`) plus the family's own bound when the
    claim has one ("the study's gap (-1.00 pts)"). Each frame: columns `claim`, `verdict` and that column."""
    frames = {f: v for f, v in verdicts_by_family.items() if v is not None and len(v)}
    if not frames:
        return _no_data(None, title)
    for family, v in frames.items():
        _require_columns(v, ["claim", "verdict", _effect_column(v)], f"verdict_overview ({family})")
    cells: dict[tuple[str, str], tuple[str, str, str]] = {}  # (claim, family) -> (verdict, effect, bound)
    claims: list[str] = []
    for family, v in frames.items():
        for _, row in v.iterrows():
            claim, bound = split_claim(str(row["claim"]))
            claims.append(claim)
            cells[(claim, family)] = (str(row["verdict"]), str(row[_effect_column(v)]), bound)
    claims = list(dict.fromkeys(claims))
    families = list(frames)
    # a bound shared by every family belongs to the row label; a differing one goes into each cell
    shared = {c: {cells[(c, f)][2] for f in families if (c, f) in cells} for c in claims}
    row_labels = [_wrap(c + (f" ({next(iter(shared[c]))})" if len(shared[c]) == 1 and next(iter(shared[c])) else ""),
                        34) for c in claims]
    verdicts = list(VERDICT_COLORS)
    codes = np.full((len(claims), len(families)), len(verdicts), dtype=float)  # missing -> white
    fig, ax = _new_figure(1, (1.8 * len(families) + 3.2, 0.78 * len(claims) + 1.6), style="white")
    for i, claim in enumerate(claims):
        for j, family in enumerate(families):
            if (claim, family) not in cells:
                continue
            verdict, effect, bound = cells[(claim, family)]
            if verdict in verdicts:
                codes[i, j] = verdicts.index(verdict)
            text = _wrap(effect, cell_width)
            if bound and len(shared[claim]) > 1:
                text += f"\n[bound {bound}]"
            ax.text(j, i, text, ha="center", va="center", fontsize=6.5, linespacing=1.1, gid=f"cell_{i}_{j}")
    cmap = ListedColormap([*VERDICT_COLORS.values(), _MISSING_COLOR])
    ax.imshow(codes, cmap=cmap, vmin=-0.5, vmax=len(verdicts) + 0.5, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(families)), families, fontsize=9, fontweight="bold")
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(claims)), row_labels, fontsize=7.5)
    ax.set_xticks(np.arange(len(families) + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(len(claims) + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", lw=2)
    ax.tick_params(which="both", length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    handles = [Patch(color=c, label=v) for v, c in VERDICT_COLORS.items()]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=3, fontsize=8,
              frameon=False, title="verdict (cell text: ours, mean and 95% CI over seeds)", title_fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return fig
