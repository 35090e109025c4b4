"""Training curves: validation accuracy per epoch, one line per run, on the global epoch axis (a run that
starts from the ticket is drawn from the ticket on), the mean over seeds with its 95 % CI, and the tickets.

    start = run_start_epoch("early_bird", "continue", ticket_epoch=4, budget_epochs=10)   # -> 4.0
    starts = run_start_epochs(table)          # per table row; controls take their ticket from the EB row
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .style import (_KIND_LINESTYLES, _KIND_MARKERS, _figure_and_axes, _is_fraction, _no_data, _numeric, _percent_axis,
                    _ratio_colors, _ratio_key, _require_columns, format_ratio)


def run_start_epoch(kind: str, mode: str, ticket_epoch: float | None, budget_epochs: float) -> float:
    """Epochs of the dense schedule that have passed when a run's own training starts: 0 for dense and for
    a run that starts from the initial or pretrained weights (`scratch`, `finetune`, one-shot); the ticket's
    epoch for a run that starts from the ticket (`continue`: early-bird and the random control); the whole
    budget for a run that starts from the dense run's final weights (prune at convergence). Read from the run-kind
    registry (ebcore.study.kinds): a kind's starting weights and its search say where it starts."""
    from ..kinds import MODES, RUN_KINDS
    if kind == "dense" or mode == "dense" or (kind in RUN_KINDS and RUN_KINDS[kind].role == "dense"):
        return 0.0
    own = RUN_KINDS[kind].start if kind in RUN_KINDS else None
    if own is not None:  # its own start: after the whole dense run ("final"), else from the beginning
        return float(budget_epochs) if own == "final" else 0.0
    if mode not in MODES:
        raise ValueError(f"run_start_epoch: unknown retrain mode {mode!r}; choose from {tuple(MODES)}")
    if kind in RUN_KINDS and RUN_KINDS[kind].search(MODES[mode]) == "dense":
        return float(budget_epochs)
    if MODES[mode].start != "ticket":
        return 0.0
    if ticket_epoch is None or not math.isfinite(float(ticket_epoch)):
        raise ValueError(f"run_start_epoch: a {kind} run in mode {mode!r} starts at the ticket, but its "
                         f"ticket_epoch is {ticket_epoch!r}; pass the epoch of the ticket it started from")
    return float(ticket_epoch)


def run_start_epochs(table: pd.DataFrame) -> pd.Series:
    """`run_start_epoch` of every row of a results table (columns `seed`, `kind`, `mode`, `ratio`,
    `ticket_epoch`, `budget_epochs`; `epochs_trained` optional), indexed like `table`. A control that
    starts from the ticket has no ticket epoch of its own: it takes that of the early-bird run of the
    same seed, mode and ratio, or else budget - epochs trained (what `continue` leaves to train)."""
    _require_columns(table, ["kind", "mode", "ratio", "ticket_epoch", "budget_epochs"], "run_start_epochs")
    seed = table["seed"] if "seed" in table.columns else pd.Series(0, index=table.index)
    keys = list(zip(seed, table["mode"].astype(str), _numeric(table["ratio"]).map(_ratio_key)))
    ticket = _numeric(table["ticket_epoch"])
    eb = {k: t for k, t, kind in zip(keys, ticket, table["kind"]) if kind == "early_bird" and np.isfinite(t)}
    trained = _numeric(table["epochs_trained"]) if "epochs_trained" in table.columns else ticket * np.nan
    starts = []
    for key, kind, mode, t, budget, done in zip(keys, table["kind"].astype(str), table["mode"].astype(str), ticket,
                                                 _numeric(table["budget_epochs"]), trained):
        if not np.isfinite(t):
            t = eb.get(key, budget - done if np.isfinite(done) else np.nan)
        starts.append(run_start_epoch(kind, mode, t, budget))
    return pd.Series(starts, index=table.index, dtype=float)


def _line_style(run: str) -> str:
    name = run.lower()
    if "random" in name:
        return "--"
    if "converged" in name:
        return ":"
    return "-"


def _run_meta(curves: pd.DataFrame, table: pd.DataFrame | None) -> pd.DataFrame:
    """Per run: kind and ratio (from the curves or the table) for colours and line styles."""
    source = table if table is not None and {"kind", "ratio"} <= set(table.columns) else curves
    if not {"kind", "ratio"} <= set(source.columns):
        return pd.DataFrame(columns=["kind", "ratio"])
    return source.groupby(source["run"].astype(str), sort=False)[["kind", "ratio"]].first()


def _with_global_epoch(curves: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """`curves` with `_x` = the run's start epoch (from `table`, matched on run and seed) + its own epoch."""
    _require_columns(table, ["run"], "accuracy_curves table")
    t = table.assign(_start=run_start_epochs(table), run=table["run"].astype(str))
    on = ["run", "seed"] if "seed" in curves.columns and "seed" in t.columns else ["run"]
    starts = t.drop_duplicates(on).set_index(on)["_start"]
    index = pd.MultiIndex.from_frame(curves[on]) if len(on) > 1 else pd.Index(curves["run"])
    start = pd.Series(starts.reindex(index).to_numpy(), index=curves.index).fillna(0.0)
    return curves.assign(_x=curves["_x"] + start)


def _draw_tickets(ax: Axes, table: pd.DataFrame, colors: dict) -> None:
    """A vertical line per ratio at the early-bird ticket's epoch (mean over seeds; seeds' range shaded)."""
    eb = table[table["kind"].astype(str) == "early_bird"]
    eb = eb.assign(_r=_numeric(eb["ratio"]).map(_ratio_key), _t=_numeric(eb["ticket_epoch"]))
    found = eb["ticket_found"].fillna(False).astype(bool) if "ticket_found" in eb.columns else eb["_t"].notna()
    for key, g in eb[eb["_t"].notna()].groupby("_r"):
        t = g["_t"]
        n_found = int(found[g.index].sum())
        what = f"ticket p={format_ratio(key)}: epoch {t.mean():.3g}"
        if t.nunique() > 1:
            what += f" ({t.min():g}–{t.max():g})"
            ax.axvspan(t.min(), t.max(), color=colors.get(key, "0.5"), alpha=0.07, lw=0, zorder=0)
        if n_found < len(g):
            what += f", {len(g) - n_found}/{len(g)} not found (last check)"
        ax.axvline(t.mean(), color=colors.get(key, "0.5"), ls="-", lw=1.0, alpha=0.8, zorder=1, gid="ticket",
                   label=what, marker="v", markevery=[1], ms=7)  # the triangle sits at the top of the axes


def accuracy_curves(curves: pd.DataFrame, ax: Axes | None = None, title: str = "",
                    ylabel: str = "validation accuracy", *, table: pd.DataFrame | None = None) -> Figure:
    """Validation accuracy per epoch, one line per run. `curves`: columns `run`, `epoch` (epochs completed
    within the run; 0 = evaluated before any training), `val_accuracy` (0..1, or percent), and `seed`
    when there are several seeds: then the mean over seeds is drawn with its 95 % t-interval shaded (the
    y axis spans the seeds' values; a wider interval is cut there). With `table` (the results table: `run`, `seed`, `kind`, `mode`, `ratio`,
    `ticket_epoch`, `budget_epochs`) every run is drawn on the global epoch axis (`run_start_epoch` +
    its epoch), the tickets are vertical lines (one per ratio) and the dense budget's end is marked.
    The run named "dense" is drawn thick and black; colour = ratio, line style = kind (random dashed,
    converged dotted, one-shot dash-dotted) when kinds and ratios are known, else by name."""
    from ..stats import summarize
    if curves is None or len(curves) == 0:
        return _no_data(ax, title)
    _require_columns(curves, ["run", "epoch", "val_accuracy"], "accuracy_curves")
    frame = curves.assign(_x=_numeric(curves["epoch"]), _y=_numeric(curves["val_accuracy"]),
                          run=curves["run"].astype(str))
    frame = frame[frame["_x"].notna() & frame["_y"].notna()]
    if frame.empty:
        return _no_data(ax, title)
    if table is not None and len(table):
        frame = _with_global_epoch(frame, table)
    fig, ax = _figure_and_axes(ax, (8.6, 4.6))
    runs = list(dict.fromkeys(frame["run"]))
    runs = [r for r in runs if r.lower() == "dense"] + [r for r in runs if r.lower() != "dense"]
    meta = _run_meta(frame, table)
    ratio_colors = _ratio_colors(_numeric(meta.loc[meta["kind"].astype(str) != "dense", "ratio"]).dropna()
                                 if len(meta) else [])
    palette = iter(sns.color_palette("colorblind", max(len(runs), 1)))
    seeds = frame["seed"].nunique() if "seed" in frame.columns else 1
    # runs with one point (evaluated, not trained) that share an epoch are dodged apart, like error bars
    singles = [r for r in runs if frame.loc[frame["run"] == r, "_x"].nunique() == 1 and r.lower() != "dense"]
    span = max(float(frame["_x"].max() - frame["_x"].min()), 1.0)
    by_x: dict[float, list[str]] = {}
    for r in singles:
        by_x.setdefault(float(frame.loc[frame["run"] == r, "_x"].iloc[0]), []).append(r)
    shift = {r: (i - (len(rs) - 1) / 2) * 0.025 * span for rs in by_x.values() for i, r in enumerate(rs)}
    for run in runs:
        g = frame[frame["run"] == run].sort_values("_x")
        g = g.assign(_x=g["_x"] + shift.get(run, 0.0))
        kind = str(meta.loc[run, "kind"]) if run in meta.index else ""
        ratio = float(_numeric(pd.Series([meta.loc[run, "ratio"]])).iloc[0]) if run in meta.index else np.nan
        if run.lower() == "dense":
            style = dict(color="black", lw=2.8, ls="-", zorder=4)
        elif kind in _KIND_LINESTYLES and np.isfinite(ratio) and _ratio_key(ratio) in ratio_colors:
            style = dict(color=ratio_colors[_ratio_key(ratio)], lw=1.6, ls=_KIND_LINESTYLES[kind], zorder=3)
        else:
            style = dict(color=next(palette), lw=1.6, ls=_line_style(run), zorder=3)
        if seeds > 1:
            agg = [(x, summarize(v["_y"])) for x, v in g.groupby("_x")]
            xs = np.array([x for x, _ in agg])
            mean = np.array([s.mean for _, s in agg])
            lo, hi = np.array([s.lo for _, s in agg]), np.array([s.hi for _, s in agg])
            ax.fill_between(xs, lo, hi, where=np.isfinite(lo), color=style["color"], alpha=0.1, lw=0, zorder=1)
            if len(xs) == 1 and np.isfinite(lo[0]):  # one point (a run evaluated, not trained): a bar, not a band
                ax.errorbar(xs, mean, yerr=[mean - lo, hi - mean], color=style["color"], capsize=3, lw=1.0,
                            zorder=3, gid="ci_bar")
        else:
            xs, mean = g["_x"].to_numpy(), g["_y"].to_numpy()
        ax.plot(xs, mean, marker=_KIND_MARKERS.get(kind, "o") if len(xs) <= 2 else None, ms=5, label=run, **style)
    if table is not None and len(table):
        _draw_tickets(ax, table, ratio_colors)
        budget = _numeric(table["budget_epochs"]).dropna() if "budget_epochs" in table.columns else pd.Series([])
        if len(budget) and frame["_x"].max() > budget.max():  # something (prune at convergence) trains after it
            ax.axvline(budget.max(), color="0.3", lw=1.6, ls=(0, (6, 2, 1, 2)), zorder=1, gid="budget",
                       label="end of the dense budget")
    low, high = float(frame["_y"].min()), float(frame["_y"].max())  # fit the seeds, not the widest band
    pad = 0.08 * max(high - low, 1e-3)
    ax.set_ylim(low - pad, high + pad)
    _percent_axis(ax, _is_fraction(frame["_y"]))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch (global: a retrained run starts where its weights and mask came from)"
                  if table is not None and len(table) else "epoch")
    ax.set_ylabel(ylabel)
    legend_title = (f"mean of {seeds} seeds;\nband: 95% CI (cut at the seeds' range)"
                    if seeds > 1 else None)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, title=legend_title,
              title_fontsize=8)
    if title:
        ax.set_title(title)
    sns.despine(ax=ax)
    return fig
