"""The one verdict rule set (ebcore.study.verdict_rules) applied by claim_verdicts to hand-made tables whose
answers are known: margin, smallest effect, seeds, multiplicity, detectable effect, no ticket, memory."""
from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from ebcore.study.stats import Summary
from ebcore.study.verdict_rules import (MARGIN_POINTS, SMALLEST_EFFECT_POINTS, detectable_effect, equivalence,
                                        non_inferiority, superiority)
from ebcore.study.verdicts import COLUMNS, OURS, VERDICTS, claim_verdicts, rule_set_markdown

DENSE = [0.850, 0.860, 0.855]
MEASURED = "cpu_allocator_peak (tracemalloc)"


def _row(seed, kind, mode, ratio, acc, found=True, epoch=2.0, window=2.0, flops=0.8, mem=0.8, mem_kind=MEASURED):
    ticket = kind == "early_bird"
    return dict(seed=seed, kind=kind, mode=mode, ratio=ratio, test_accuracy=acc,
                ticket_found=found if ticket else None,
                ticket_epoch=epoch if ticket and found else None,
                ticket_epoch_consecutive=epoch if ticket and found else math.nan,
                ticket_epoch_window=window if ticket and found else math.nan,
                flops_rel_dense=flops, train_memory_bytes=1e6 * mem, memory_ratio=mem, memory_kind=mem_kind)


def table(edge_pts=(0.0, 0.0, 0.0), seeds=3, found=True, mem_kind=MEASURED, flops=0.6, p03_pts=None,
          controls=("random", "converged", "same_flops", "small_dense")) -> pd.DataFrame:
    """EB = dense + 0.1 pt at every ratio; each control = EB − edge_pts[seed] (so EB − control = edge_pts)."""
    rows = []
    for s in range(seeds):
        d = DENSE[s]
        rows.append(_row(s, "dense", "dense", 0.0, d, mem=1.0))
        for r in (0.1, 0.3, 0.5):
            eb = d + (p03_pts[s] / 100 if r == 0.3 and p03_pts else 0.001)
            rows.append(_row(s, "early_bird", "continue", r, eb, found=found, flops=flops if r == 0.5 else 0.8,
                             mem_kind=mem_kind))
        eb03 = d + 0.001
        for kind in controls:
            ratio, mode = (0.5, "scratch") if kind == "same_flops" else (0.3, {"random": "continue",
                                                                               "converged": "final"}.get(kind, "scratch"))
            rows.append(_row(s, kind, mode, ratio, eb03 - edge_pts[s] / 100))
    return pd.DataFrame(rows)


def verdicts(t: pd.DataFrame, family: str = "vit") -> pd.DataFrame:
    return claim_verdicts(t, family, "continue", budget_epochs=10)


def by_claim(v: pd.DataFrame, word: str) -> pd.Series:
    rows = v[v["claim"].str.contains(word, regex=False)]
    assert len(rows) == 1, (word, v["claim"].tolist())
    return rows.iloc[0]


NEGLIGIBLE = (0.12, 0.14, 0.06)    # mean +0.107, 95% CI about [+0.003, +0.210] pts


def test_columns_and_vocabulary():
    v = verdicts(table(NEGLIGIBLE))
    assert tuple(v.columns) == COLUMNS and len(v) == 10
    assert set(v["verdict"]) <= set(VERDICTS)
    assert v["rule"].str.len().gt(20).all()


def test_a_tiny_edge_over_random_is_negligible_never_a_win():
    row = by_claim(verdicts(table(NEGLIGIBLE)), "random mask")
    assert row["verdict"] == "negligible edge"
    assert "[+0.003, +0.210] pts" in row[OURS]


@pytest.mark.parametrize("edge, expected", [
    ((2.0, 2.1, 1.9), "reproduced"),
    ((-0.02, 0.1, 0.22), "not reproduced"),    # 95% CI about [-0.198, +0.398]
    ((-1.0, 0.5, 2.0), "inconclusive"),        # wide
    ((0.12, 0.14, 0.06), "negligible edge"),
])
def test_beats_claims_use_the_smallest_effect(edge, expected):
    v = verdicts(table(edge))
    for word in ("random mask", "same FLOPs", "small dense"):
        assert by_claim(v, word)["verdict"] == expected, word


def test_equivalence_with_prune_at_convergence_uses_the_margin():
    assert by_claim(verdicts(table((0.1, 0.2, 0.0))), "convergence")["verdict"] == "reproduced"
    assert by_claim(verdicts(table((2.0, 2.1, 1.9))), "convergence")["verdict"] == "not reproduced"
    assert by_claim(verdicts(table((-1.0, 0.5, 2.0))), "convergence")["verdict"] == "inconclusive"


@pytest.mark.parametrize("family", ["vit", "swin", "gpt2", "roberta", "bert"])
def test_the_margin_does_not_depend_on_the_family(family):
    # p = 0.3 loses about 2 pts: under the old rules ViT (study gap -3.06) called that reproduced.
    t = table((0.12, 0.14, 0.06), p03_pts=(-2.0, -2.1, -1.9))
    v, ref = verdicts(t, family), verdicts(t, "vit")
    cols = ["claim", OURS, "verdict", "family-wise (Bonferroni)", "detectable (pts)", "rule"]
    pd.testing.assert_frame_equal(v[cols], ref[cols])
    assert by_claim(v, "loses at most")["verdict"] == "not reproduced"


def test_the_study_gap_is_a_reference_only():
    t = table(p03_pts=(-2.0, -2.1, -1.9))
    assert "-3.06" in by_claim(verdicts(t, "vit"), "loses at most")["study / reference"]
    assert by_claim(verdicts(t, "gpt2"), "loses at most")["study / reference"] == "not published"


@pytest.mark.parametrize("seeds", [1, 2])
def test_one_or_two_seeds_never_decide(seeds):
    v = verdicts(table((2.0, 2.1, 1.9), seeds=seeds))
    assert not v["verdict"].isin(["reproduced", "not reproduced", "negligible edge"]).any(), v["verdict"].tolist()
    assert (v["verdict"] == "inconclusive").all()


def test_memory_estimate_is_never_reproduced():
    row = by_claim(verdicts(table(mem_kind="cpu: 16 B/param training state + activations")), "memory")
    assert row["verdict"] == "inconclusive" and "estimate" in row[OURS]
    row = by_claim(verdicts(table(mem_kind="cpu estimate")), "memory")
    assert row["verdict"] == "inconclusive"
    assert by_claim(verdicts(table()), "memory")["verdict"] == "reproduced"  # measured peak, all below dense


def test_measured_memory_never_below_dense_is_not_reproduced():
    t = table()
    t.loc[t.kind == "early_bird", "memory_ratio"] = 1.05
    assert by_claim(verdicts(t), "memory")["verdict"] == "not reproduced"


def test_no_ticket_found_for_every_ticket_claim():
    v = verdicts(table((2.0, 2.1, 1.9), found=False))
    for word in ("p = 0.1", "p = 0.3 ticket", "random mask", "convergence", "same FLOPs", "small dense",
                 "costs", "memory"):
        row = by_claim(v, word)
        assert row["verdict"] == "no ticket found", word
        assert "0/3 seeds found a ticket" in row[OURS]
    assert (v.iloc[:2]["verdict"] == "not reproduced").all()  # no ticket is not early


def test_only_seeds_with_a_ticket_count():
    t = table((2.0, 2.1, 1.9))
    t.loc[(t.kind == "early_bird") & (t.seed == 0), "ticket_found"] = False
    v = verdicts(t)
    row = by_claim(v, "random mask")
    assert row["verdict"] == "inconclusive" and "(2/3 seeds found a ticket)" in row[OURS] and "n = 2" in row[OURS]


def test_early_rules_are_judged_separately():
    t = table()
    t.loc[t.kind == "early_bird", "ticket_epoch_window"] = 5.0  # > 30% of 10 epochs
    v = verdicts(t)
    cons, win = by_claim(v, "consecutive rule"), by_claim(v, "window rule")
    assert cons["verdict"] == "reproduced" and win["verdict"] == "not reproduced"
    assert "9/9 found, 9/9 early" in cons[OURS] and "0/9 early" in win[OURS]
    t.loc[(t.kind == "early_bird") & (t.seed == 1), "ticket_epoch_window"] = 2.0
    assert by_claim(verdicts(t), "window rule")["verdict"] == "inconclusive"


def test_cost_claim_needs_cheap_flops_and_non_inferiority():
    assert by_claim(verdicts(table(flops=0.6)), "costs")["verdict"] == "reproduced"
    assert by_claim(verdicts(table(flops=0.9)), "costs")["verdict"] == "not reproduced"


def test_missing_controls_are_not_run():
    v = verdicts(table(controls=()))
    for word in ("random mask", "convergence", "same FLOPs", "small dense"):
        row = by_claim(v, word)
        assert row["verdict"] == "not run" and row["family-wise (Bonferroni)"] == ""


def test_intervals_have_three_decimals():
    v = verdicts(table(NEGLIGIBLE))
    shown = v[OURS].str.extract(r"95% CI (\[.*?\] pts)")[0].dropna()
    assert len(shown) >= 6
    assert shown.str.fullmatch(r"\[[+-]\d+\.\d{3}, [+-]\d+\.\d{3}\] pts").all()


def test_detectable_effect_by_hand():
    # diffs +0.12, +0.14, +0.06 pts: sd = sqrt(((0.04/3)^2 + (0.1/3)^2 + (0.14/3)^2) / 2) = 0.0416333
    # (t(0.975, 2) + t(0.80, 2)) * sd / sqrt(3) = (4.302653 + 1.060660) * 0.0416333 / 1.7320508 = 0.12892
    row = by_claim(verdicts(table(NEGLIGIBLE)), "random mask")
    assert row["detectable (pts)"] == "0.129"
    assert detectable_effect(Summary(3, 0.1, 0.0416333, 0, 0)) == pytest.approx(0.128918, abs=1e-5)
    assert math.isnan(detectable_effect(Summary(1, 0.1, math.nan, math.nan, math.nan)))


def test_bonferroni_column():
    v = verdicts(table(NEGLIGIBLE))
    m = 7  # p = 0.1, p = 0.3, random, converged, same FLOPs, small dense, cost
    neg = by_claim(v, "random mask")["family-wise (Bonferroni)"]
    # at 99.29 % the interval is about [-0.176, +0.390]: below the smallest effect, the edge is not even an edge
    assert neg.startswith("does not hold: not reproduced") and f"m = {m}" in neg
    assert f"{100 * (1 - 0.05 / m):.2f}% CI" in neg
    clear = by_claim(verdicts(table((2.0, 2.1, 1.9))), "random mask")["family-wise (Bonferroni)"]
    assert clear.startswith("holds")
    assert by_claim(v, "consecutive rule")["family-wise (Bonferroni)"] == "n/a (not an interval)"


@pytest.mark.parametrize("lo, hi, eq, ni, sup", [
    (-0.5, 0.8, "reproduced", "reproduced", "inconclusive"),
    (-1.5, 0.5, "inconclusive", "inconclusive", "inconclusive"),
    (-3.0, -1.2, "not reproduced", "not reproduced", "not reproduced"),
    (0.6, 2.0, "inconclusive", "reproduced", "reproduced"),
    (1.2, 2.0, "not reproduced", "reproduced", "reproduced"),
    (0.1, 0.4, "reproduced", "reproduced", "negligible edge"),
    (-1.0, 1.0, "reproduced", "reproduced", "inconclusive"),  # boundaries included
])
def test_rules_on_intervals(lo, hi, eq, ni, sup):
    d = Summary(3, (lo + hi) / 2, 0.1, lo, hi)
    assert (equivalence(d), non_inferiority(d), superiority(d)) == (eq, ni, sup)
    assert MARGIN_POINTS == 1.0 and SMALLEST_EFFECT_POINTS == 0.5


def test_rule_set_markdown_states_the_rules():
    text = rule_set_markdown()
    assert "±1 pt" in text and "+0.5 pt" in text and "Bonferroni" in text and "1 − 0.05/m" in text
    assert "negligible edge" in text and "no ticket found" in text and "estimate" in text and "at least 3 seeds" in text
    assert len(re.findall(r"^- ", text, flags=re.M)) >= 8


def test_report_passes_the_control_and_cost_ratios_and_explains_the_verdicts():
    from types import SimpleNamespace

    from ebcore.study.report import interpretation, verdict_table
    settings = SimpleNamespace(family="vit", profile="cpu", headline_mode="continue", epochs=10,
                               ratios=(0.1, 0.3, 0.5), control_ratios=(0.3,), cost_ratio=0.5)
    result = SimpleNamespace(table=table(NEGLIGIBLE), settings=settings, seeds=(0, 1, 2))
    v = verdict_table(result)
    assert tuple(v.columns) == COLUMNS and by_claim(v, "random mask")["verdict"] == "negligible edge"
    text = interpretation(result)
    assert "**negligible edge** (family-wise: does not hold: not reproduced)" in text and "+0.5 pt" in text
    result.seeds = (0, 1)
    assert "need at least 3" in interpretation(result)


def test_the_overview_figure_reads_the_new_columns():
    from ebcore.study import plots
    fig = plots.verdict_overview({"vit": verdicts(table(NEGLIGIBLE)), "bert": verdicts(table(found=False))})
    cells = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "[+0.003, +0.210] pts" in cells.replace("\n", " ") and "0/3 seeds found a ticket" in cells.replace("\n", " ")
