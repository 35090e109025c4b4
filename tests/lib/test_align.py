"""Aligned pruning: the rounding rule, masks drawn with `align`, distances and the detector."""
import itertools

import pytest
import torch

import ebcore as eb
from ebcore.align import AlignmentError, align_kept, aligned_count, check_align, head_unit
from ebcore.detector import EarlyBirdDetector
from ebcore.graph import ModelGraph
from ebcore.masks import Mask
from ebcore.scores import LayerScores, Scores
from conftest import FAMILIES, logits, make_batch, make_model


def test_aligned_count_examples():
    assert aligned_count(2150, 3072, 64) == 2176           # 33.6 units -> 34
    assert aligned_count(1536, 3072, 64) == 1536           # already aligned
    assert aligned_count(2150, 3072, 8) == 2152
    assert aligned_count(3, 3072, 64) == 64                # never below one unit
    assert aligned_count(100, 100, 64) == 100              # nothing pruned stays dense
    assert aligned_count(97, 100, 64) == 64                # never more than dense: 128 > 100
    assert aligned_count(30, 48, 64) == 48                 # layer narrower than a unit: kept whole
    assert aligned_count(7, 12, 1) == 7                    # align 1: unchanged
    assert aligned_count(96, 160, 64) == 128               # tie (1.5 units) rounds up: keep more
    assert head_unit(64, 64) == 1 and head_unit(64, 32) == 2 and head_unit(8, 12) == 2 and head_unit(64, 12) == 16


def test_aligned_count_never_empties_never_exceeds():
    for total, unit in itertools.product([1, 3, 7, 12, 48, 64, 100, 160, 288, 3072], [1, 2, 3, 8, 16, 64]):
        for kept in range(1, total + 1):
            a = aligned_count(kept, total, unit)
            assert 1 <= a <= total
            assert a >= min(unit, total)
            assert a % unit == 0 or a == total
            assert abs(a - kept) <= unit or a == total


def test_align_kept_resizes_by_score():
    scores = torch.tensor([0.9, 0.1, 0.5, 0.7, 0.3, 0.8, 0.2, 0.6])
    assert align_kept([0, 3, 5], scores, 4) == [0, 3, 5, 7]        # adds the best pruned one (0.6)
    assert align_kept([0, 2, 3, 5, 7], scores, 4) == [0, 3, 5, 7]  # drops the worst kept one (0.5)
    assert align_kept([0, 3], scores, 1) == [0, 3]


@pytest.mark.parametrize("bad", [0, -8, 2.0, "64", True, None])
def test_bad_align_is_refused(bad):
    with pytest.raises(AlignmentError, match="align must be an integer >= 1"):
        check_align(bad)


def _random_scores(structure, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Scores([LayerScores(torch.rand(h, generator=g), torch.rand(c, generator=g)) for h, c in structure],
                  criterion="magnitude")


@pytest.mark.parametrize("scope", ["layerwise", "global"])
@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("align", [8, 64])
def test_mask_rounding_rules(scope, ratio, align):
    structure = [(12, 3072), (6, 1536), (3, 40), (24, 3072)]
    head_dims = [64, 32, 12, 32]
    scores = _random_scores(structure)
    mask = eb.mask_from_scores(scores, ratio, scope=scope, head_dims=head_dims, align=align)
    plain = eb.mask_from_scores(scores, ratio, scope=scope, head_dims=head_dims)
    assert mask.meta["align"] == align and plain.meta["align"] == 1
    assert Mask.from_json(mask.to_json()).meta["align"] == align
    for lm, plm, (h, c), hd in zip(mask.layers, plain.layers, structure, head_dims):
        kh, kc = len(lm.heads), len(lm.channels)
        assert 1 <= kh <= h and 1 <= kc <= c                       # never empty, never above dense
        assert kc % align == 0 or kc == c
        assert (kh * hd) % align == 0 or kh == h
        assert kc == aligned_count(len(plm.channels), c, align)
        assert kh == aligned_count(len(plm.heads), h, head_unit(align, hd))
        if scope == "layerwise":  # the aligned layer keeps the best units: a superset or subset of the plain one
            a, b = set(lm.channels), set(plm.channels)
            assert a <= b or b <= a
    if ratio == 0.0:
        assert mask.kept_structure == structure


def test_align_needs_head_dims_and_random_mask_records_it():
    scores = _random_scores([(6, 96)])
    with pytest.raises(eb.MaskMismatchError, match="head_dims"):  # hand-made scores without head dims
        eb.mask_from_scores(scores, 0.3, align=8)
    mask = eb.random_mask([(6, 96), (6, 96)], 0.3, seed=2, head_dims=[32, 32], align=16)
    assert mask.meta["align"] == 16 and mask.meta["seed"] == 2
    assert all(len(lm.channels) % 16 == 0 and (len(lm.heads) * 32) % 16 == 0 for lm in mask.layers)


def test_distance_refuses_different_align():
    structure = [(6, 96), (6, 96)]
    a = eb.random_mask(structure, 0.3, seed=0, head_dims=[32, 32], align=1)
    b = eb.random_mask(structure, 0.3, seed=1, head_dims=[32, 32], align=32)
    c = eb.random_mask(structure, 0.3, seed=2, head_dims=[32, 32], align=32)
    with pytest.raises(eb.MaskMismatchError, match="align=1 vs align=32"):
        eb.mask_distance(a, b)
    assert 0 <= eb.mask_distance(b, c)["combined"] <= 1
    legacy = Mask(a.layers, meta={})  # saved before alignment existed: counts as align 1
    assert eb.mask_distance(legacy, a)["combined"] == 0


def _draw(model, ratio, align):
    graph = ModelGraph.build(model)
    return eb.mask_from_scores(eb.score_model(graph), ratio, head_dims=[b.head_dim for b in graph.blocks],
                               align=align)


@pytest.mark.parametrize("align", [8, 64])
@pytest.mark.parametrize("ratio", [0.3, 0.5])
@pytest.mark.parametrize("family", FAMILIES)
def test_pruned_equals_soft_masked_with_alignment(family, ratio, align):
    model = make_model(family)
    batch = make_batch(family)
    mask = _draw(model, ratio, align)
    for lm, hd in zip(mask.layers, [lm.head_dim for lm in mask.layers]):
        assert len(lm.channels) % align == 0 or len(lm.channels) == lm.num_channels
        assert (len(lm.heads) * hd) % align == 0 or len(lm.heads) == lm.num_heads
    with eb.soft_masked(model, mask):
        soft = logits(model, batch)
    report = eb.prune_model(model, mask)
    assert (logits(model, batch) - soft).abs().max().item() <= 1e-4
    assert report.structure_after == mask.kept_structure


def test_detector_draws_aligned_masks_and_saves_align():
    model = make_model("bert")  # 6 heads of 32, FFN 256
    det = EarlyBirdDetector(ratios=(0.3, 0.5), window=2, align=64)
    det.check(model, at=0)
    det.check(model, at=1)
    for mask in det.history[-1].masks.values():
        assert mask.meta["align"] == 64
        assert all(len(lm.channels) % 64 == 0 and (len(lm.heads) * 32) % 64 == 0 for lm in mask.layers)
    state = det.state_dict()
    assert state["config"]["align"] == 64
    again = EarlyBirdDetector.from_state_dict(state)
    assert again.align == 64 and again.tickets.keys() == det.tickets.keys()
    with pytest.raises(ValueError, match="saved with"):
        EarlyBirdDetector(ratios=(0.3, 0.5), window=2).load_state_dict(state)
    old = {**state, "config": {k: v for k, v in state["config"].items() if k != "align"}}
    old["history"] = [{"at": r["at"], "masks": {k: {**m, "meta": {**m["meta"], "align": 1}}
                                                 for k, m in r["masks"].items()}} for r in state["history"]]
    EarlyBirdDetector(ratios=(0.3, 0.5), window=2).load_state_dict(old)  # a pre-align state loads as align 1
    with pytest.raises(AlignmentError):
        EarlyBirdDetector(align=0)
