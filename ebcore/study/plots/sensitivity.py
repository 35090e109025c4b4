"""Threshold-sensitivity figure: where the early-bird ticket appears as the detection threshold varies
(left), next to the consecutive mask distances over training on the scale of their maximum 2p, with each
ratio's threshold / 2p (right). Inputs come from ebcore.study.sensitivity."""
from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .style import _new_figure, _no_data, _numeric, _ratio_colors, _ratio_key, _require_columns, format_ratio

_RULE_STYLES = {"consecutive": "-", "window": "--"}


def _rule_style(rule: str, order: list[str]) -> str:
    extra = [":", "-."]
    return _RULE_STYLES.get(rule, extra[order.index(rule) % len(extra)])


def _positions(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    """The epoch column when known, else the check labels, with the axis label."""
    epoch = _numeric(frame["epoch"])
    if epoch.notna().any() or _numeric(frame["at"]).isna().all():
        return epoch, "epoch"
    return _numeric(frame["at"]), "check"


def threshold_sensitivity_figure(sensitivity: pd.DataFrame, curves: pd.DataFrame, threshold: float | None = None,
                                 title: str = "") -> Figure:
    """Two panels. Left: ticket epoch vs threshold (log x), one colour per ratio and one line style per
    rule; the line is the mean over the seeds that found a ticket, the band their min-max, a hollow
    marker where only some seeds found one. Right: each seed's consecutive mask distance over training
    divided by 2p (thin lines), with the threshold / 2p per ratio (dashed, the ratio's colour).

    `sensitivity`: `ebcore.study.sensitivity.threshold_sensitivity`; `curves`: its `distance_curves_frame`;
    `threshold`: the study's, marked on the left panel.
    """
    _require_columns(sensitivity, ["seed", "rule", "ratio", "threshold", "found", "epoch", "at"],
                     "threshold_sensitivity_figure")
    _require_columns(curves, ["seed", "ratio", "epoch", "at", "relative_distance"], "threshold_sensitivity_figure")
    if len(sensitivity) == 0:
        return _no_data(None, title)
    fig, (left, right) = _new_figure(2, (12.0, 4.4))
    colors = _ratio_colors(list(sensitivity["ratio"]) + list(curves["ratio"]))
    rules = list(dict.fromkeys(sensitivity["rule"]))
    position, unit = _positions(sensitivity)
    frame = sensitivity.assign(_pos=position, _key=sensitivity["ratio"].map(_ratio_key))
    for (key, rule), g in frame.groupby(["_key", "rule"], sort=True):
        found = g[g["found"].astype(bool)]
        stats = found.groupby("threshold")["_pos"].agg(["mean", "min", "max"])
        counts = g.groupby("threshold").agg(k=("found", "sum"), n=("seed", "nunique"))
        stats = stats.join(counts, how="right").sort_index()
        color, ls = colors[key], _rule_style(rule, rules)
        x, mean = stats.index.to_numpy(dtype=float), stats["mean"].to_numpy(dtype=float)
        left.plot(x, mean, color=color, ls=ls, lw=1.6, gid="ticket_epoch_line")
        left.fill_between(x, stats["min"].to_numpy(dtype=float), stats["max"].to_numpy(dtype=float), color=color,
                          alpha=0.12, lw=0)
        full = (stats["k"] == stats["n"]).to_numpy()
        left.scatter(x[full], mean[full], color=color, s=18, zorder=3)
        left.scatter(x[~full], mean[~full], facecolors="white", edgecolors=color, s=22, zorder=3)
    if threshold is not None:
        left.axvline(threshold, color="0.35", ls=":", lw=1.2, gid="study_threshold")
    left.set_xscale("log")
    left.set_xlabel("threshold (normalised Hamming distance)")
    left.set_ylabel(f"ticket {unit} (mean over seeds, band: min-max)")
    keys = sorted(frame["_key"].unique())
    handles = [Line2D([], [], color=colors[k], lw=2, label=f"p = {format_ratio(k)}") for k in keys]
    silent = set(rules) - set(frame.loc[frame["found"].astype(bool), "rule"])
    handles += [Line2D([], [], color="0.3", ls=_rule_style(r, rules),
                       label=f"{r} rule" + (" (no ticket at any threshold)" if r in silent else "")) for r in rules]
    handles += [Line2D([], [], marker="o", mfc="white", mec="0.3", ls="none", label="some seeds: no ticket")]
    if threshold is not None:
        handles.append(Line2D([], [], color="0.35", ls=":", label=f"study threshold {threshold:g}"))
    left.legend(handles=handles, fontsize=8, loc="best", framealpha=0.9)
    left.set_title("ticket vs threshold")

    curve = curves.assign(_y=_numeric(curves["relative_distance"]), _key=curves["ratio"].map(_ratio_key))
    curve["_x"], curve_unit = _positions(curve)
    for (key, seed), g in curve.groupby(["_key", "seed"], sort=True):
        valid = g[g["_y"].notna()].sort_values("_x")
        right.plot(valid["_x"], valid["_y"], color=colors.get(key, "0.3"), lw=0.9, alpha=0.6, marker="o", ms=2,
                   gid="relative_distance_line")
    if threshold is not None:
        for key in sorted(curve["_key"].unique()):
            if key > 0:
                right.axhline(threshold / (2 * key), color=colors.get(key, "0.3"), ls="--", lw=1.1,
                              gid="relative_threshold")
    right.set_ylim(bottom=0)
    right.set_xlabel(curve_unit)
    right.set_ylabel("distance to previous check / 2p")
    right.set_title("consecutive mask distance (dashed: threshold / 2p)")
    right.legend(handles=[Line2D([], [], color=colors.get(k, "0.3"), lw=1.5, label=f"p = {format_ratio(k)}")
                          for k in sorted(curve["_key"].unique())], fontsize=8, loc="best")
    for ax in (left, right):
        sns.despine(ax=ax)
    if title:
        fig.suptitle(title)
    return fig

