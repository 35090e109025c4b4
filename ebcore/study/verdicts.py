"""One verdict per claim of the study, computed from a multi-seed experiment table, never typed.

Every claim is decided by the one rule set of ebcore.study.verdict_rules (margin ±1 pt, smallest effect
+0.5 pt, at least 3 seeds, Bonferroni re-reading, detectable effect), the same for every family; the study's
own numbers appear in the reference column only.

    verdicts = claim_verdicts(table, family="vit", mode="continue", budget_epochs=10)   # one row per claim
    print(rule_set_markdown())

`table` is the experiment's per-seed table (ebcore.study.results.TABLE_COLUMNS): one row per (seed, run), with
the run kinds dense, early_bird and the controls random, converged, same_flops, small_dense (any may be absent:
its claim is "not run"). Accuracies are fractions in the table and points (%) in the verdicts. Importing this
module loads no torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from .stats import paired_difference, summarize
from .verdict_rules import (COST_LIMIT, EARLY_FRACTION, MARGIN_POINTS, MIN_SEEDS, SMALLEST_EFFECT_POINTS, VERDICTS,
                            all_or_none, detectable_effect, equivalence, familywise_confidence, familywise_summary,
                            interval, non_inferiority, points, rule_set_markdown, superiority)

__all__ = ["COLUMNS", "VERDICTS", "claim_verdicts", "rule_set_markdown", "study_gap"]

OURS = "ours (mean, 95% CI)"
COLUMNS = ("claim", "study / reference", OURS, "verdict", "family-wise (Bonferroni)", "detectable (pts)", "rule")

_EQUIV_RULE = (f"95% CI of the difference inside ±{MARGIN_POINTS:g} pt -> reproduced; wholly outside -> not "
               "reproduced; else inconclusive")
_NONINF_RULE = (f"95% CI lower bound ≥ −{MARGIN_POINTS:g} pt -> reproduced; upper bound < −{MARGIN_POINTS:g} pt -> "
                "not reproduced; else inconclusive")
_SUPER_RULE = (f"95% CI lower bound > +{SMALLEST_EFFECT_POINTS:g} pt -> reproduced; in (0, +{SMALLEST_EFFECT_POINTS:g}] "
               f"-> negligible edge; upper bound < +{SMALLEST_EFFECT_POINTS:g} pt -> not reproduced; else inconclusive")


@dataclass
class _Row:
    """One claim's row, plus what the family-wise and detectable columns are computed from."""

    claim: str
    reference: str
    ours: str
    verdict: str
    rule: str
    diffs: list[float] = field(default_factory=list)       # per-seed differences, points (interval claims)
    decide: Callable | None = None                           # Summary (points) -> verdict; None: not an interval

    @property
    def interval_based(self) -> bool:
        return self.decide is not None and len(self.diffs) >= MIN_SEEDS


def study_gap(family: str, ratio: float) -> float | None:
    """The study's accuracy change (points) of the ticket at `ratio` against dense, if published."""
    from .families import FAMILIES
    ref = FAMILIES[family].published if family in FAMILIES else None
    if not ref or ratio not in ref:
        return None
    return round(ref[ratio] - ref[0.0], 2)


# --- the table --------------------------------------------------------------------------------------

def _rows(table: pd.DataFrame, kind: str, ratio: float | None = None, mode: str | None = None) -> pd.DataFrame:
    rows = table[table["kind"] == kind]
    if ratio is not None:
        rows = rows[rows["ratio"].astype(float).round(6) == round(ratio, 6)]
    if mode is not None:
        rows = rows[rows["mode"] == mode]
    return rows


def _acc(rows: pd.DataFrame) -> dict[int, float]:
    acc = pd.to_numeric(rows["test_accuracy"], errors="coerce")
    return {int(s): float(a) for s, a in zip(rows["seed"], acc) if not math.isnan(a)}


def _found(rows: pd.DataFrame) -> pd.Series:
    """True where the row's detector found a ticket (missing / None: not found)."""
    if "ticket_found" not in rows:
        return pd.Series(False, index=rows.index)
    return rows["ticket_found"].map(lambda v: bool(v) if v is not None and not pd.isna(v) else False)


def _seeds_note(k: int, n: int) -> str:
    return f" ({k}/{n} seeds found a ticket)" if k < n else ""


def _no_ticket(claim: str, reference: str, rule: str, n: int) -> _Row:
    return _Row(claim, reference, f"0/{n} seeds found a ticket; the rows are the last check's mask",
                "no ticket found", rule)


def _interval_row(claim: str, reference: str, rule: str, label: str, eb_rows: pd.DataFrame | None,
                  other: dict[int, float], decide: Callable, eb_is_ticket: bool = True) -> _Row:
    """A paired-difference claim: EB (found tickets only) minus `other`, decided by `decide` on points."""
    if eb_rows is None or eb_rows.empty or not other:
        return _Row(claim, reference, "n/a", "not run", rule)
    n = eb_rows["seed"].nunique()
    found = eb_rows[_found(eb_rows)] if eb_is_ticket else eb_rows
    k = found["seed"].nunique()
    if k == 0:
        return _no_ticket(claim, reference, rule, n)
    eb = _acc(found)
    seeds = sorted(set(eb) & set(other))
    diffs = [100 * (eb[s] - other[s]) for s in seeds]
    d = points(paired_difference(eb, other))
    ours = (f"{label} {d.mean:+.3f} pts, 95% CI {interval(d)}, n = {d.n}" if d.n else "n/a (no paired seed)")
    return _Row(claim, reference, ours + _seeds_note(k, n), decide(d) if d.n else "not run", rule, diffs, decide)


def _early_claim(table: pd.DataFrame, mode: str, budget_epochs: float, column: str, name: str,
                 reference: str) -> _Row:
    claim = f"the ticket appears early, {name} rule (≤ {EARLY_FRACTION:.0%} of the budget)"
    limit = EARLY_FRACTION * budget_epochs
    rule = (f"every seed and ratio has its {name}-rule ticket by epoch {limit:g} ({EARLY_FRACTION:.0%} of "
            f"{budget_epochs:g}) -> reproduced; none -> not reproduced; mixed or < {MIN_SEEDS} seeds -> "
            "inconclusive; a ticket not found is not early")
    eb = _rows(table, "early_bird", mode=mode)
    eb = eb if not eb.empty else _rows(table, "early_bird")
    if eb.empty or column not in eb:
        return _Row(claim, reference, "n/a", "not run", rule)
    eb = eb.drop_duplicates(["seed", "ratio"])
    epochs = pd.to_numeric(eb[column], errors="coerce")
    found = epochs.notna()
    early = [bool(f and e <= limit + 1e-9) for f, e in zip(found, epochs)]
    ours = (f"{int(found.sum())}/{len(eb)} found, {sum(early)}/{len(eb)} early (seeds × ratios "
            f"{', '.join(f'{r:g}' for r in sorted(eb['ratio'].astype(float).unique()))})")
    if found.any():
        ours += f"; epochs {epochs.min():g}–{epochs.max():g} of {budget_epochs:g}"
    return _Row(claim, reference, ours, all_or_none(early, eb["seed"].nunique()), rule)


def _cost_claim(table: pd.DataFrame, dense: dict[int, float], cost_ratio: float) -> _Row:
    claim = (f"EB `continue` at p = {cost_ratio:g} costs ≤ {COST_LIMIT:g} of dense FLOPs, losing ≤ "
             f"{MARGIN_POINTS:g} pt")
    reference = "EarlyBERT: 35–45 % less training time"
    rule = (f"every seed's FLOPs ratio ≤ {COST_LIMIT:g} and non-inferior (95% CI lower bound ≥ −{MARGIN_POINTS:g} pt) "
            f"-> reproduced; every ratio > {COST_LIMIT:g} or upper bound < −{MARGIN_POINTS:g} pt -> not reproduced; "
            "else inconclusive")
    rows = _rows(table, "early_bird", cost_ratio, "continue")
    if rows.empty or not dense:
        return _Row(claim, reference, "n/a", "not run", rule)
    found = rows[_found(rows)]
    if found.empty:
        return _no_ticket(claim, reference, rule, rows["seed"].nunique())
    cost = pd.to_numeric(found["flops_rel_dense"], errors="coerce").dropna().tolist()
    cheap = [c <= COST_LIMIT for c in cost]

    def decide(d) -> str:
        acc = non_inferiority(d)
        if cheap and all(cheap) and acc == "reproduced":
            return "reproduced"
        if (cheap and not any(cheap)) or acc == "not reproduced":
            return "not reproduced"
        return "inconclusive"

    row = _interval_row(claim, reference, rule, "EB − dense", rows, dense, decide)
    if cost:
        row.ours = f"FLOPs {min(cost):.3f}–{max(cost):.3f} of dense; " + row.ours
    return row


def _is_estimate(kind: str) -> bool:
    k = kind.lower()
    return "estimate" in k or "b/param" in k


def _is_measured(kind: str) -> bool:
    k = kind.lower()
    return not _is_estimate(k) and any(w in k for w in ("peak", "max_allocated", "measured"))


def _memory_claim(table: pd.DataFrame, mode: str) -> _Row:
    claim = "post-ticket training memory is below dense"
    reference = "study: lower memory"
    rule = ("every found ticket's measured training memory below dense's -> reproduced; none -> not reproduced; "
            f"mixed, < {MIN_SEEDS} seeds or an estimate (true by construction) -> inconclusive")
    rows = _rows(table, "early_bird", mode=mode)
    if rows.empty or "memory_ratio" not in rows:
        return _Row(claim, reference, "n/a", "not run", rule)
    found = rows[_found(rows)]
    if found.empty:
        return _no_ticket(claim, reference, rule, rows["seed"].nunique())
    ratios = pd.to_numeric(found["memory_ratio"], errors="coerce")
    kinds = [str(k) for k in found.get("memory_kind", pd.Series("", index=found.index)).fillna("")]
    measured = bool(kinds) and all(_is_measured(k) for k in kinds)
    below = [bool(r < 1) for r in ratios if not math.isnan(r)]
    source = kinds[0].split(":")[0].strip() if kinds and kinds[0] else "unknown source"
    ours = (f"{ratios.min():.3f}–{ratios.max():.3f} of dense ({source}"
            f"{'' if measured else ', estimate'})"
            + _seeds_note(found["seed"].nunique(), rows["seed"].nunique()))
    if "pipeline_memory_ratio" in found:
        whole = pd.to_numeric(found["pipeline_memory_ratio"], errors="coerce").dropna()
        if len(whole):
            ours += f"; the whole pipeline's peak, its dense phase included: {whole.max():.3f} of dense"
    verdict = all_or_none(below, found["seed"].nunique())
    if not measured:
        verdict = "inconclusive"
    return _Row(claim, reference, ours, verdict, rule)


def _claims(table: pd.DataFrame, family: str, mode: str, budget_epochs: float, cost_ratio: float,
            control_ratio: float) -> list[_Row]:
    from .families import FAMILIES
    fam = FAMILIES.get(family)
    epoch = getattr(fam, "published_ticket_epoch", None)
    early_ref = f"study: ≈ epoch {epoch}" if epoch else "not published"
    dense = _acc(_rows(table, "dense"))

    def eb(ratio: float) -> pd.DataFrame:
        return _rows(table, "early_bird", ratio, mode)

    def gap(ratio: float) -> str:
        g = study_gap(family, ratio)
        return f"study: {g:+.2f} pts (reference only)" if g is not None else "not published"

    def control(kind: str, ratio: float, same_mode: bool = True) -> dict[int, float]:
        return _acc(_rows(table, kind, ratio, mode if same_mode else None))

    p = control_ratio
    return [
        _early_claim(table, mode, budget_epochs, "ticket_epoch_consecutive", "consecutive", early_ref),
        _early_claim(table, mode, budget_epochs, "ticket_epoch_window", "window", early_ref),
        _interval_row(f"the p = 0.1 ticket matches dense (within ±{MARGIN_POINTS:g} pt)", gap(0.1), _EQUIV_RULE,
                      "EB − dense", eb(0.1), dense, equivalence),
        _interval_row(f"the p = 0.3 ticket loses at most {MARGIN_POINTS:g} pt to dense", gap(0.3), _NONINF_RULE,
                      "EB − dense", eb(0.3), dense, non_inferiority),
        _interval_row(f"the ticket beats a random mask of the same size (p = {p:g})", "study: EB > random",
                      _SUPER_RULE, "EB − random", eb(p), control("random", p), superiority),
        _interval_row(f"the ticket is as good as prune-at-convergence + fine-tune (p = {p:g})",
                      "study: EB ≈ late ticket", _EQUIV_RULE, "EB − converged", eb(p),
                      control("converged", p, same_mode=False), equivalence),
        _interval_row(f"the EB pipeline beats dense training of the same FLOPs (p = {cost_ratio:g})",
                      "not a study number (added control)", _SUPER_RULE, "EB − same-FLOPs dense", eb(cost_ratio),
                      control("same_flops", cost_ratio, same_mode=False), superiority),
        _interval_row(f"the ticket beats a small dense model of its widths (p = {p:g})",
                      "Rethinking the value of pruning: often not", _SUPER_RULE, "EB − small dense", eb(p),
                      control("small_dense", p, same_mode=False), superiority),
        _cost_claim(table, dense, cost_ratio),
        _memory_claim(table, mode),
    ]


def _familywise(row: _Row, m: int) -> str:
    if row.verdict in ("not run", "no ticket found"):
        return ""
    if row.decide is None:
        return "n/a (not an interval)"
    if not row.interval_based:
        return f"n/a (< {MIN_SEEDS} seeds)"
    wide = familywise_summary(row.diffs, m)
    again = row.decide(wide)
    level = f"{100 * familywise_confidence(m):.2f}% CI {interval(wide)}, m = {m}"
    return f"holds ({level})" if again == row.verdict else f"does not hold: {again} ({level})"


def _detectable(row: _Row) -> str:
    if row.decide is None or len(row.diffs) < 2:
        return ""
    value = detectable_effect(summarize(row.diffs))
    return "" if math.isnan(value) else f"{value:.3f}"


def claim_verdicts(table: pd.DataFrame, family: str, mode: str, budget_epochs: float, cost_ratio: float = 0.5,
                   control_ratio: float = 0.3) -> pd.DataFrame:
    """One row per claim (columns COLUMNS) for the experiment `table` (all seeds); `mode` is the headline
    retrain mode, `cost_ratio` the ratio of the cost and same-FLOPs claims, `control_ratio` that of the
    random, converged and small-dense controls. Every verdict is one of VERDICTS."""
    rows = _claims(table, family, mode, budget_epochs, cost_ratio, control_ratio)
    m = sum(r.interval_based for r in rows)
    out = [{"claim": r.claim, "study / reference": r.reference, OURS: r.ours, "verdict": r.verdict,
            "family-wise (Bonferroni)": _familywise(r, m), "detectable (pts)": _detectable(r), "rule": r.rule}
           for r in rows]
    assert all(o["verdict"] in VERDICTS for o in out)
    return pd.DataFrame(out, columns=list(COLUMNS))
