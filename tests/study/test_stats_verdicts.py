"""Statistics over seeds and the verdict rules, on hand-made tables whose answers are known."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from ebcore.study.stats import paired_difference, summarize, t_quantile
from ebcore.study.verdict_rules import equivalence, non_inferiority, points, superiority
from ebcore.study.verdicts import claim_verdicts, study_gap


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


# The rules read points and use the one margin (1 pt) and smallest effect (0.5 pt) of ebcore.study.verdict_rules.
@pytest.mark.parametrize("lo, hi, expected", [(-0.5, 0.8, "reproduced"), (-2.0, 0.5, "inconclusive"),
                                              (1.1, 3.0, "not reproduced"), (-5.0, -2.0, "not reproduced")])
def test_equivalence(lo, hi, expected):
    assert equivalence(_s(lo, hi)) == expected


@pytest.mark.parametrize("lo, hi, expected", [(-0.9, 1.0, "reproduced"), (-4.0, -0.5, "inconclusive"),
                                              (-6.0, -1.1, "not reproduced")])
def test_non_inferiority(lo, hi, expected):
    assert non_inferiority(_s(lo, hi)) == expected


@pytest.mark.parametrize("lo, hi, expected", [(0.6, 2.0, "reproduced"), (0.1, 2.0, "negligible edge"),
                                              (-1.0, 2.0, "inconclusive"), (-2.0, 0.4, "not reproduced")])
def test_superiority(lo, hi, expected):
    assert superiority(_s(lo, hi)) == expected


def test_too_few_seeds_is_inconclusive_never_a_win():
    assert superiority(_s(1.0, 2.0, n=1)) == "inconclusive"
    assert superiority(_s(1.0, 2.0, n=2)) == "inconclusive"
    assert equivalence(points(summarize([0.0]))) == "inconclusive"


def test_points_scales_every_field():
    p = points(summarize([0.01, 0.02, 0.03]))
    assert (p.mean, p.sd) == (pytest.approx(2.0), pytest.approx(1.0)) and p.lo == pytest.approx(2.0 - 2.4841, abs=1e-3)


def test_study_gap():
    assert study_gap("vit", 0.3) == -3.06 and study_gap("swin", 0.3) == -0.55 and study_gap("gpt2", 0.3) is None


def _table(eb: dict[float, list[float]], dense: list[float], controls: dict[str, list[float]],
           ticket_epochs: list[float], flops_05: list[float]) -> pd.DataFrame:
    modes = {"random": "continue", "converged": "final", "same_flops": "scratch", "small_dense": "scratch"}
    rows = []
    for seed, acc in enumerate(dense):
        rows.append(dict(seed=seed, kind="dense", mode="dense", ratio=0.0, test_accuracy=acc, ticket_found=None,
                         ticket_epoch_consecutive=None, ticket_epoch_window=None, flops_rel_dense=1.0,
                         memory_ratio=1.0, memory_kind="cpu_allocator_peak"))
        for ratio, accs in eb.items():
            rows.append(dict(seed=seed, kind="early_bird", mode="continue", ratio=ratio, test_accuracy=accs[seed],
                             ticket_found=True, ticket_epoch_consecutive=ticket_epochs[seed],
                             ticket_epoch_window=ticket_epochs[seed],
                             flops_rel_dense=flops_05[seed] if ratio == 0.5 else 0.8, memory_ratio=0.8,
                             memory_kind="cpu_allocator_peak"))
        for kind, accs in controls.items():
            rows.append(dict(seed=seed, kind=kind, mode=modes[kind], ratio=0.5 if kind == "same_flops" else 0.3,
                             test_accuracy=accs[seed], ticket_found=None, flops_rel_dense=0.8, memory_ratio=0.8,
                             memory_kind="cpu_allocator_peak"))
    return pd.DataFrame(rows)


def test_claim_verdicts_on_constructed_tables():
    dense = [0.850, 0.860, 0.855]
    good = _table({0.1: [0.851, 0.861, 0.856], 0.3: [0.849, 0.858, 0.853], 0.5: [0.846, 0.856, 0.851]}, dense,
                  {"random": [0.80, 0.81, 0.805], "converged": [0.850, 0.858, 0.854],
                   "same_flops": [0.80, 0.81, 0.80], "small_dense": [0.83, 0.84, 0.835]},
                  ticket_epochs=[2, 3, 2], flops_05=[0.6, 0.65, 0.6])
    v = claim_verdicts(good, "vit", "continue", budget_epochs=10)["verdict"].tolist()
    assert v == ["reproduced"] * 10
    bad = _table({0.1: [0.80, 0.81, 0.805], 0.3: [0.70, 0.71, 0.705], 0.5: [0.70, 0.71, 0.705]}, dense,
                 {"random": [0.75, 0.76, 0.755], "converged": [0.80, 0.81, 0.805], "same_flops": [0.75, 0.76, 0.75],
                  "small_dense": [0.75, 0.76, 0.755]},
                 ticket_epochs=[8, 9, 10], flops_05=[0.9, 0.95, 0.9])
    v = claim_verdicts(bad, "vit", "continue", budget_epochs=10)["verdict"].tolist()
    assert v[:9] == ["not reproduced"] * 9 and v[9] == "reproduced"  # memory still lower
    noisy = _table({0.1: [0.86, 0.84, 0.85], 0.3: [0.86, 0.84, 0.86], 0.5: [0.85, 0.85, 0.85]}, dense,
                   {"random": [0.85, 0.855, 0.85], "converged": [0.87, 0.83, 0.86], "same_flops": [0.85, 0.855, 0.85],
                    "small_dense": [0.85, 0.855, 0.85]}, ticket_epochs=[2, 5, 2], flops_05=[0.6, 0.8, 0.6])
    v = claim_verdicts(noisy, "vit", "continue", budget_epochs=10)["verdict"].tolist()
    assert v[:9] == ["inconclusive"] * 9
    # Every verdict prints the rule that decided it.
    assert claim_verdicts(noisy, "vit", "continue", 10)["rule"].str.len().gt(20).all()


def test_early_vs_converged_is_untestable_without_an_early_ticket():
    dense = [0.85, 0.86, 0.855]
    t = _table({0.1: dense, 0.3: dense, 0.5: dense}, dense, {"random": dense, "converged": dense},
               ticket_epochs=[10, 10, 10], flops_05=[1.2, 1.2, 1.2])
    t.loc[t.kind == "early_bird", ["ticket_found", "ticket_epoch_consecutive", "ticket_epoch_window"]] = [False, None, None]
    v = claim_verdicts(t, "vit", "continue", budget_epochs=10).set_index("claim")
    row = v.loc[[c for c in v.index if "convergence" in c][0]]
    assert row["verdict"] == "no ticket found" and "0/3 seeds found a ticket" in row["ours (mean, 95% CI)"]
