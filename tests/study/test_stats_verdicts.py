"""Statistics over seeds and the verdict rules, on hand-made tables whose answers are known."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from ebcore.study.stats import paired_difference, summarize, t_quantile
from ebcore.study.verdicts import above_zero, at_least, claim_verdicts, study_gap, within


def test_summary_matches_hand_computation():
    s = summarize([0.80, 0.82, 0.84])
    assert s.n == 3 and s.mean == pytest.approx(0.82) and s.sd == pytest.approx(0.02)
    half = 4.302652729696142 * 0.02 / math.sqrt(3)  # t(0.975, df=2)
    assert (s.lo, s.hi) == (pytest.approx(0.82 - half), pytest.approx(0.82 + half))
    assert t_quantile(2) == pytest.approx(12.7062047, rel=1e-6)


def test_one_value_has_no_interval_and_nan_is_dropped():
    s = summarize([0.5, float("nan")])
    assert s.n == 1 and s.mean == 0.5 and math.isnan(s.lo) and s.format(100) == "50.00 (n=1)"
    assert summarize([]).n == 0


def test_paired_difference_matches_seeds():
    d = paired_difference({0: 0.80, 1: 0.90, 2: 0.70}, {0: 0.79, 1: 0.89, 2: 0.69, 3: 0.1})
    assert d.n == 3 and d.mean == pytest.approx(0.01) and d.sd == pytest.approx(0.0, abs=1e-12)
    # Unpaired, these samples would be far too noisy to separate; paired, the difference is exact.
    assert summarize([0.80, 0.90, 0.70]).half_width > 0.2


def _s(lo, hi, n=3):
    from ebcore.study.stats import Summary
    return Summary(n, (lo + hi) / 2, 0.01, lo, hi)


@pytest.mark.parametrize("lo, hi, expected", [(-0.005, 0.008, "reproduced"), (-0.02, 0.005, "inconclusive"),
                                              (0.011, 0.03, "not reproduced"), (-0.05, -0.02, "not reproduced")])
def test_within(lo, hi, expected):
    assert within(_s(lo, hi), 0.01) == expected


@pytest.mark.parametrize("lo, hi, expected", [(-0.02, 0.01, "reproduced"), (-0.04, -0.01, "inconclusive"),
                                              (-0.06, -0.04, "not reproduced")])
def test_at_least(lo, hi, expected):
    assert at_least(_s(lo, hi), -0.03) == expected


@pytest.mark.parametrize("lo, hi, expected", [(0.001, 0.02, "reproduced"), (-0.01, 0.02, "inconclusive"),
                                              (-0.02, -0.001, "not reproduced")])
def test_above_zero(lo, hi, expected):
    assert above_zero(_s(lo, hi)) == expected


def test_too_few_seeds_is_inconclusive_never_a_win():
    assert above_zero(_s(0.01, 0.02, n=1)) == "inconclusive"
    assert within(summarize([0.0]), 0.01) == "inconclusive"


def test_study_gap():
    assert study_gap("vit", 0.3) == -3.06 and study_gap("swin", 0.3) == -0.55 and study_gap("gpt2", 0.3) is None


def _table(eb: dict[float, list[float]], dense: list[float], random: list[float], late: list[float],
           ticket_epochs: list[float], flops_05: list[float]) -> pd.DataFrame:
    rows = []
    for seed, acc in enumerate(dense):
        rows.append(dict(seed=seed, kind="dense", mode="dense", ratio=0.0, test_accuracy=acc, ticket_found=None,
                         ticket_epoch=None, flops_rel_dense=1.0, memory_ratio=1.0, memory_kind="cpu: x"))
        for ratio, accs in eb.items():
            rows.append(dict(seed=seed, kind="early_bird", mode="continue", ratio=ratio, test_accuracy=accs[seed],
                             ticket_found=True, ticket_epoch=ticket_epochs[seed],
                             flops_rel_dense=flops_05[seed] if ratio == 0.5 else 0.8, memory_ratio=0.8,
                             memory_kind="cpu: x"))
        for kind, accs in (("random", random), ("late", late)):
            rows.append(dict(seed=seed, kind=kind, mode="continue", ratio=0.3, test_accuracy=accs[seed],
                             ticket_found=True, ticket_epoch=None, flops_rel_dense=0.8, memory_ratio=0.8,
                             memory_kind="cpu: x"))
    return pd.DataFrame(rows)


def test_claim_verdicts_on_constructed_tables():
    dense = [0.850, 0.860, 0.855]
    good = _table({0.1: [0.851, 0.861, 0.856], 0.3: [0.849, 0.858, 0.853], 0.5: [0.846, 0.856, 0.851]}, dense,
                  random=[0.80, 0.81, 0.805], late=[0.850, 0.858, 0.854], ticket_epochs=[2, 3, 2],
                  flops_05=[0.6, 0.65, 0.6])
    v = claim_verdicts(good, "vit", "continue", budget_epochs=10).set_index("claim")["verdict"].tolist()
    assert v == ["reproduced"] * 7
    bad = _table({0.1: [0.80, 0.81, 0.805], 0.3: [0.70, 0.71, 0.705], 0.5: [0.70, 0.71, 0.705]}, dense,
                 random=[0.75, 0.76, 0.755], late=[0.80, 0.81, 0.805], ticket_epochs=[8, 9, 10],
                 flops_05=[0.9, 0.95, 0.9])
    v = claim_verdicts(bad, "vit", "continue", budget_epochs=10)["verdict"].tolist()
    assert v[:6] == ["not reproduced"] * 6 and v[6] == "reproduced"  # memory still lower
    noisy = _table({0.1: [0.86, 0.84, 0.85], 0.3: [0.86, 0.84, 0.86], 0.5: [0.85, 0.85, 0.85]}, dense,
                   random=[0.85, 0.855, 0.85], late=[0.87, 0.83, 0.86], ticket_epochs=[2, 5, 2],
                   flops_05=[0.6, 0.8, 0.6])
    v = claim_verdicts(noisy, "vit", "continue", budget_epochs=10)["verdict"].tolist()
    assert v[:6] == ["inconclusive"] * 6
    # Every verdict prints the rule that decided it.
    assert claim_verdicts(noisy, "vit", "continue", 10)["rule"].str.len().gt(20).all()


def test_early_vs_late_is_untestable_without_an_early_ticket():
    dense = [0.85, 0.86, 0.855]
    t = _table({0.1: dense, 0.3: dense, 0.5: dense}, dense, random=dense, late=dense, ticket_epochs=[10, 10, 10],
               flops_05=[1.2, 1.2, 1.2])
    t.loc[t.kind == "early_bird", "ticket_found"] = False
    v = claim_verdicts(t, "vit", "continue", budget_epochs=10).set_index("claim")
    late = v.loc[[c for c in v.index if "late" in c][0]]
    assert late["verdict"] == "inconclusive" and "no ticket found" in late["ours (mean ± 95% CI)"]
