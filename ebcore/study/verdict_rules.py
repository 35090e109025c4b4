"""The one rule set every verdict of the study is decided by, stated before any number is seen and the same for
every family: the margin, the smallest effect of interest, the seed rule, the multiplicity check and the
smallest detectable effect. ebcore.study.verdicts applies it to an experiment's table.

    equivalence(points(paired_difference(eb, dense)))   # "reproduced" / "not reproduced" / "inconclusive"
    print(rule_set_markdown())                          # the whole rule set, as printed above every verdict table

All numbers here are in accuracy points (%); `points` turns a Summary of fractions into points. Importing this
module loads no torch.
"""
from __future__ import annotations

import math
from typing import Sequence

from .stats import CONFIDENCE, Summary, summarize, t_quantile

MARGIN_POINTS = 1.0            # every "matches" / "loses at most" claim: the interval against ±1 point
SMALLEST_EFFECT_POINTS = 0.5   # every "beats" claim: a win must clear +0.5 point, an edge below it is negligible
MIN_SEEDS = 3                  # fewer seeds with a value -> "inconclusive", whatever the interval says
FAMILYWISE_ALPHA = 0.05        # Bonferroni: each of m interval claims is re-read at 1 - 0.05 / m
POWER = 0.80                   # the detectable effect: 80 % power, two-sided 5 % test
EARLY_FRACTION = 0.3           # "early": the ticket within the first 30 % of the training budget
COST_LIMIT = 0.7               # the cost claim: at most 0.7 of dense training FLOPs, every seed
VERDICTS = ("reproduced", "negligible edge", "not reproduced", "inconclusive", "no ticket found", "not run")


def points(s: Summary) -> Summary:
    """The same summary with every value in points (×100): verdicts compare points with the constants above."""
    return Summary(s.n, 100 * s.mean, 100 * s.sd, 100 * s.lo, 100 * s.hi)


def _decidable(d: Summary) -> bool:
    return d.n >= MIN_SEEDS and not math.isnan(d.lo)


def equivalence(d: Summary) -> str:
    """"matches": the whole interval inside [-margin, +margin] -> reproduced; wholly outside -> not reproduced."""
    if not _decidable(d):
        return "inconclusive"
    if -MARGIN_POINTS <= d.lo and d.hi <= MARGIN_POINTS:
        return "reproduced"
    if d.hi < -MARGIN_POINTS or d.lo > MARGIN_POINTS:
        return "not reproduced"
    return "inconclusive"


def non_inferiority(d: Summary) -> str:
    """"loses at most the margin": lower bound >= -margin -> reproduced; upper bound < -margin -> not reproduced."""
    if not _decidable(d):
        return "inconclusive"
    if d.lo >= -MARGIN_POINTS:
        return "reproduced"
    if d.hi < -MARGIN_POINTS:
        return "not reproduced"
    return "inconclusive"


def superiority(d: Summary) -> str:
    """"beats": lower bound > smallest effect -> reproduced; lower bound in (0, smallest effect] -> negligible
    edge (never a win); upper bound < smallest effect -> not reproduced; else inconclusive."""
    if not _decidable(d):
        return "inconclusive"
    if d.lo > SMALLEST_EFFECT_POINTS:
        return "reproduced"
    if d.lo > 0:
        return "negligible edge"
    if d.hi < SMALLEST_EFFECT_POINTS:
        return "not reproduced"
    return "inconclusive"


def all_or_none(flags: Sequence[bool], seeds: int) -> str:
    """A count-based claim: every item true -> reproduced; none -> not reproduced; mixed, or fewer than
    MIN_SEEDS seeds behind the items -> inconclusive."""
    if not flags or seeds < MIN_SEEDS:
        return "inconclusive"
    return "reproduced" if all(flags) else "not reproduced" if not any(flags) else "inconclusive"


def detectable_effect(d: Summary) -> float:
    """The smallest true difference (points if `d` is) this many seeds would detect with 80 % power in a
    two-sided 5 % paired t-test: (t_{0.975,n-1} + t_{0.80,n-1}) · sd / √n; NaN below two values."""
    if d.n < 2 or math.isnan(d.sd):
        return math.nan
    return (t_quantile(d.n, CONFIDENCE) + t_quantile(d.n, 2 * POWER - 1)) * d.sd / math.sqrt(d.n)


def familywise_confidence(m: int) -> float:
    """The Bonferroni confidence of each of m intervals: 1 - 0.05 / m."""
    return 1 - FAMILYWISE_ALPHA / max(m, 1)


def familywise_summary(values: Sequence[float], m: int) -> Summary:
    return summarize(values, familywise_confidence(m))


def interval(d: Summary) -> str:
    """'[+0.004, +0.213] pts' (three decimals, so a verdict's distance from its boundary is visible)."""
    if d.n < 2 or math.isnan(d.lo):
        return "no interval (n < 2)"
    return f"[{d.lo:+.3f}, {d.hi:+.3f}] pts"


def rule_set_markdown() -> str:
    """The whole rule set as Markdown bullets: printed above every verdict table."""
    m, e = MARGIN_POINTS, SMALLEST_EFFECT_POINTS
    return "\n".join([
        "**Verdict rules** (fixed before the runs, the same for every family; `ebcore.study.verdict_rules`):",
        "",
        f"- **Margin ±{m:g} pt.** Each claim compares paired per-seed differences of test accuracy (points) and "
        f"reads their 95 % t-interval. *Matches* is equivalence: interval inside [−{m:g}, +{m:g}] → reproduced, "
        "wholly outside → not reproduced, else inconclusive. *Loses at most* is non-inferiority: lower bound "
        f"≥ −{m:g} → reproduced, upper bound < −{m:g} → not reproduced, else inconclusive. The study's own "
        "published gap is shown for reference only and never widens the margin.",
        f"- **Smallest effect of interest +{e:g} pt.** *Beats* needs the lower bound above +{e:g} → reproduced; "
        f"a lower bound in (0, +{e:g}] is a **negligible edge**, never a win; an upper bound below +{e:g} (with "
        "the lower bound ≤ 0) → not reproduced; else inconclusive.",
        f"- **Seeds.** A verdict other than inconclusive needs at least {MIN_SEEDS} seeds with a value (one or two "
        "seeds are never reproduced: with one degree of freedom two runs that happen to agree give a "
        "near-zero-width interval).",
        "- **Multiplicity.** Each family decides m interval claims at once (m counts the claims with enough "
        "seeds for an interval; each family is its own family of tests). The verdict uses each claim's own "
        f"95 % interval; the column *family-wise (Bonferroni)* re-reads it with intervals at 1 − {FAMILYWISE_ALPHA:g}/m "
        "and says whether the verdict still holds when the m claims are taken together (family-wise error "
        f"≤ {FAMILYWISE_ALPHA:g}). A verdict that does not hold there is suggestive, not established.",
        "- **Detectable effect.** *detectable (pts)* = (t(0.975, n−1) + t(0.80, n−1)) · sd_diff / √n: the smallest true "
        "difference the table would detect with 80 % power (two-sided 5 %). A not-reproduced or inconclusive "
        "verdict says little about effects smaller than it.",
        f"- **Ticket claims.** *Early*: every seed and ratio finds its ticket within {EARLY_FRACTION:.0%} of the "
        "budget → reproduced, none → not reproduced, mixed → inconclusive; a ticket not found counts as not "
        "early; the consecutive and the window rule are judged separately. The consecutive rule can first fire at "
        "the 2nd check and the window rule (window W) at the W-th, so with checks at epoch ends of a 10-epoch budget "
        "the earliest possible tickets are at 20 % and 50 % (window 5): the window rule cannot be early there by "
        "construction, which its verdict then records as a fact of the rule, not of the model. At ratio p two "
        "masks differ by at most about 2p, so a threshold near 2p (0.1 at p = 0.1) fires at the first possible "
        "check whatever training does; the threshold-sensitivity table shows every threshold.",
        "- **No ticket.** Claims about the ticket use only the seeds whose detector found one; no seed → "
        "**no ticket found** (the pruned runs then used the last check's mask and say nothing about early "
        "birds); fewer than the seed minimum → inconclusive; 'k/n seeds' is shown when some seeds found none.",
        f"- **Cost.** Every seed's training FLOPs ≤ {COST_LIMIT:g} of dense *and* non-inferior within the margin "
        "→ reproduced.",
        "- **Memory.** Only a measured peak (allocator or CUDA) can reproduce *memory below dense*; an estimate "
        "(bytes per parameter) is true by construction and reads inconclusive, marked (estimate).",
    ])
