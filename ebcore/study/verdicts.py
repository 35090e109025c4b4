"""One verdict per claim of the study, computed from a multi-seed experiment table, never typed.

Each claim has a rule, printed beside its verdict: *reproduced*, *not reproduced* or *inconclusive*
(the 95 % interval straddles the claim's boundary, or there are too few seeds to tell). A difference
inside the noise is never a win.

    verdicts = claim_verdicts(table, family="vit", mode="continue")   # DataFrame, one row per claim

`table` is the experiment's per-seed table (ebcore.study.results.TABLE_COLUMNS): one row per (seed, run).
Accuracies are fractions in the table and points (%) in the verdicts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .stats import Summary, paired_difference, summarize

# The study's published numbers live in each family's entry (ebcore.study.families.Family.published); the
# epoch around which the study's (vision) tickets appeared is the reference of the "early" claim everywhere.
STUDY_TICKET_EPOCH = 20
EARLY_FRACTION = 0.3          # "early": the ticket within the first 30 % of the training budget
MATCH_POINTS = 1.0            # "matches": |difference| <= 1 point
ANCHOR_GAP_P03 = -1.0         # families without a study number: p = 0.3 may lose at most 1 point
COST_LIMIT = 0.7              # continue mode at p = 0.5: at most 0.7 of dense FLOPs ...
COST_LOSS_POINTS = -1.0       # ... losing at most 1 point
VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not run")


@dataclass(frozen=True)
class Verdict:
    claim: str
    reference: str
    ours: str
    verdict: str
    rule: str

    def as_dict(self) -> dict[str, str]:
        return {"claim": self.claim, "study / anchor": self.reference, "ours (mean ± 95% CI)": self.ours,
                "verdict": self.verdict, "rule": self.rule}


def study_gap(family: str, ratio: float) -> float | None:
    """The study's accuracy change (points) of the ticket at `ratio` against dense, if published."""
    from .families import FAMILIES
    ref = FAMILIES[family].published if family in FAMILIES else None
    if not ref or ratio not in ref:
        return None
    return round(ref[ratio] - ref[0.0], 2)


# --- interval rules -------------------------------------------------------------------------------

def within(diff: Summary, bound: float) -> str:
    """Equivalence: the whole interval inside [-bound, bound] -> reproduced; wholly outside -> not."""
    if diff.n < 2 or math.isnan(diff.lo):
        return "inconclusive"
    if -bound <= diff.lo and diff.hi <= bound:
        return "reproduced"
    if diff.hi < -bound or diff.lo > bound:
        return "not reproduced"
    return "inconclusive"


def at_least(diff: Summary, bound: float) -> str:
    """Non-inferiority: interval above `bound` -> reproduced; wholly below -> not; else inconclusive."""
    if diff.n < 2 or math.isnan(diff.lo):
        return "inconclusive"
    if diff.lo >= bound:
        return "reproduced"
    if diff.hi < bound:
        return "not reproduced"
    return "inconclusive"


def above_zero(diff: Summary) -> str:
    """Superiority: interval above 0 -> reproduced; at or below 0 entirely -> not; else inconclusive."""
    if diff.n < 2 or math.isnan(diff.lo):
        return "inconclusive"
    if diff.lo > 0:
        return "reproduced"
    if diff.hi <= 0:
        return "not reproduced"
    return "inconclusive"


def _pts(s: Summary) -> str:
    return s.format(scale=100, digits=2) + (" pts" if s.n else "")


# --- the table --------------------------------------------------------------------------------------

def _acc(table: pd.DataFrame, kind: str, mode: str | None, ratio: float) -> dict[int, float]:
    rows = table[(table["kind"] == kind) & (table["ratio"].round(6) == round(ratio, 6))]
    if mode is not None:
        rows = rows[rows["mode"] == mode]
    return dict(zip(rows["seed"].astype(int), rows["test_accuracy"].astype(float)))


def _early_claim(table: pd.DataFrame, budget_epochs: float, ratios: list[float]) -> Verdict:
    dense = table[table["kind"] == "dense"]
    eb = table[(table["kind"] == "early_bird")].drop_duplicates(["seed", "ratio"])
    fractions, missing = [], 0
    for _, row in eb.iterrows():
        if not bool(row.get("ticket_found", True)):
            missing += 1
            fractions.append(1.0)
        else:
            fractions.append(float(row["ticket_epoch"]) / budget_epochs)
    rule = (f"every seed and ratio finds its ticket within {EARLY_FRACTION:.0%} of the budget -> reproduced; "
            f"none does -> not reproduced; mixed -> inconclusive")
    if not fractions or dense.empty:
        return Verdict("the ticket appears early", f"≈ epoch {STUDY_TICKET_EPOCH}", "n/a", "not run", rule)
    s = summarize(fractions)
    ours = (f"{s.mean:.0%} of the budget (range {min(fractions):.0%}–{max(fractions):.0%}"
            f"{f', {missing} not found' if missing else ''}; ratios {', '.join(f'{r:g}' for r in ratios)})")
    early = [f <= EARLY_FRACTION + 1e-9 for f in fractions]
    verdict = "reproduced" if all(early) else "not reproduced" if not any(early) else "inconclusive"
    return Verdict(f"the ticket appears early (≤ {EARLY_FRACTION:.0%} of the budget)",
                   f"≈ epoch {STUDY_TICKET_EPOCH} of the study's run", ours, verdict, rule)


def claim_verdicts(table: pd.DataFrame, family: str, mode: str, budget_epochs: float) -> pd.DataFrame:
    """One row per claim for the experiment `table` (all seeds); `mode` is the headline retrain mode."""
    dense = _acc(table, "dense", None, 0.0)
    ratios = sorted(table.loc[table["kind"] == "early_bird", "ratio"].unique().tolist())
    out = [_early_claim(table[table["mode"].isin([mode, "dense"])], budget_epochs, ratios)]

    def vs_dense(ratio: float) -> Summary:
        return paired_difference(_acc(table, "early_bird", mode, ratio), dense)

    # p = 0.1 matches dense.
    d01 = vs_dense(0.1)
    gap01 = study_gap(family, 0.1)
    out.append(Verdict(f"the p = 0.1 ticket matches dense (|Δ| ≤ {MATCH_POINTS:g} pt)",
                       f"{gap01:+.2f} pts" if gap01 is not None else "not published (offline: no number)",
                       "EB − dense " + _pts(d01) if d01.n else "n/a",
                       within(d01, MATCH_POINTS / 100) if d01.n else "not run",
                       f"95% CI of EB − dense inside ±{MATCH_POINTS:g} pt -> reproduced; outside -> not reproduced; "
                       "straddling -> inconclusive"))
    # p = 0.3 within the study's gap.
    d03 = vs_dense(0.3)
    gap03 = study_gap(family, 0.3)
    bound = gap03 if gap03 is not None else ANCHOR_GAP_P03
    out.append(Verdict(f"the p = 0.3 ticket stays within the study's gap ({bound:+.2f} pts)",
                       f"{gap03:+.2f} pts (study)" if gap03 is not None else f"{ANCHOR_GAP_P03:+.2f} pts (anchor)",
                       "EB − dense " + _pts(d03) if d03.n else "n/a",
                       at_least(d03, bound / 100) if d03.n else "not run",
                       f"95% CI of EB − dense above {bound:+.2f} pts -> reproduced; below -> not reproduced; "
                       "straddling -> inconclusive"))
    # EB beats a random mask of the same size.
    for control, claim, ref in (
        ("random", "the ticket beats a random mask of the same size", "EB > random"),
        ("late", f"the early ticket is as good as the late one (|Δ| ≤ {MATCH_POINTS:g} pt)", "EB ≈ late"),
    ):
        ctrl_ratios = sorted(table.loc[table["kind"] == control, "ratio"].unique().tolist())
        r = 0.3 if 0.3 in ctrl_ratios else (ctrl_ratios[0] if ctrl_ratios else 0.3)
        d = paired_difference(_acc(table, "early_bird", mode, r), _acc(table, control, mode, r))
        if control == "random":
            verdict, rule = above_zero(d), "95% CI of EB − random above 0 -> reproduced; at/below 0 -> not; else inconclusive"
        else:
            verdict, rule = within(d, MATCH_POINTS / 100), (f"95% CI of EB − late inside ±{MATCH_POINTS:g} pt -> "
                                                             "reproduced; outside -> not; straddling -> inconclusive")
        ours = f"EB − {control} " + _pts(d) if d.n else "n/a"
        found = table.loc[(table["kind"] == "early_bird") & (table["mode"] == mode)
                          & (table["ratio"].round(6) == round(r, 6)), "ticket_found"]
        if control == "late" and len(found) and not found.fillna(False).astype(bool).any():
            verdict, ours = "inconclusive", ours + " (no ticket found: the EB mask is the last, i.e. late, one)"
        out.append(Verdict(f"{claim} (p = {r:g})", ref, ours, verdict if d.n else "not run", rule))
    out.append(_cost_claim(table, dense))
    out.append(_memory_claim(table, mode))
    return pd.DataFrame([v.as_dict() for v in out])


def _cost_claim(table: pd.DataFrame, dense: dict[int, float]) -> Verdict:
    claim = f"EB training in `continue` mode costs ≤ {COST_LIMIT} of dense FLOPs at p = 0.5, losing ≤ 1 pt"
    rule = (f"every seed's FLOPs ratio ≤ {COST_LIMIT} and 95% CI of EB − dense above {COST_LOSS_POINTS:+g} pt -> "
            f"reproduced; every seed's ratio > {COST_LIMIT} or CI below {COST_LOSS_POINTS:+g} pt -> not; else inconclusive")
    rows = table[(table["kind"] == "early_bird") & (table["mode"] == "continue") & (table["ratio"].round(6) == 0.5)]
    if rows.empty:
        return Verdict(claim, "EarlyBERT: 35–45 % less training time", "n/a", "not run", rule)
    cost = rows["flops_rel_dense"].astype(float).tolist()
    d = paired_difference(dict(zip(rows["seed"].astype(int), rows["test_accuracy"].astype(float))), dense)
    ours = f"FLOPs {min(cost):.2f}–{max(cost):.2f} of dense; EB − dense {_pts(d)}"
    cheap = [c <= COST_LIMIT for c in cost]
    acc = at_least(d, COST_LOSS_POINTS / 100)
    if all(cheap) and acc == "reproduced":
        verdict = "reproduced"
    elif not any(cheap) or acc == "not reproduced":
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    return Verdict(claim, "EarlyBERT: 35–45 % less training time", ours, verdict, rule)


def _memory_claim(table: pd.DataFrame, mode: str) -> Verdict:
    rule = "every pruned run's measured training memory below dense's -> reproduced; none -> not; else inconclusive"
    rows = table[(table["kind"] == "early_bird") & (table["mode"] == mode)]
    if rows.empty:
        return Verdict("pruned training memory is below dense", "study: lower memory", "n/a", "not run", rule)
    ratios = rows["memory_ratio"].astype(float)
    below = (ratios < 1).tolist()
    verdict = "reproduced" if all(below) else "not reproduced" if not any(below) else "inconclusive"
    kind = str(table["memory_kind"].iloc[0]).split(":")[0]
    return Verdict("pruned training memory is below dense", "study: lower memory",
                   f"{ratios.min():.2f}–{ratios.max():.2f} of dense ({kind})", verdict, rule)
