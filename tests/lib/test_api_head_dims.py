"""Head dims travel with scores, masks and structure: the detector fed scores equals the detector fed the
model, distances are symmetric, and masks with other head dims do not fit."""
import json
import warnings

import pytest
import torch
from transformers.pytorch_utils import Conv1D

import ebcore as eb
from ebcore.detector import EarlyBirdDetector
from ebcore.graph import ModelGraph
from ebcore.io import load_pruned, read_structure, save_pruned
from ebcore.masks import check_ratio
from ebcore.scores import LayerScores, Scores
from ebcore.surgery import shrink_to_structure
from conftest import FAMILIES, logits, make_batch, make_model


def flags(model):
    return {n: p.requires_grad for n, p in model.named_parameters()}


def has_conv1d(model):
    return any(isinstance(m, Conv1D) for m in model.modules())



# --- 5. head dims travel with scores and structure --------------------------------------------------

@pytest.mark.parametrize("family", ["vit", "swin", "gpt2"])
def test_scores_carry_head_dims_and_masks_use_them(family):
    model = eb.prepare_model(make_model(family))
    graph = ModelGraph.build(model)
    scores = eb.score_model(graph)
    assert scores.head_dims == [b.head_dim for b in graph.blocks]
    mask = eb.mask_from_scores(scores, 0.3)
    assert mask.head_dims == scores.head_dims
    assert mask == eb.mask_from_scores(scores, 0.3, head_dims=scores.head_dims)
    assert mask.hash() == eb.draw_mask(model, 0.3).hash()
    with pytest.raises(eb.MaskMismatchError, match="head_dims"):
        eb.mask_from_scores(scores, 0.3, head_dims=[1] * len(graph.blocks))


def test_scores_without_head_dims_are_refused():
    s = Scores([LayerScores(torch.rand(3), torch.rand(5))], criterion="hand-made")
    with pytest.raises(eb.MaskMismatchError, match="head_dims"):
        eb.mask_from_scores(s, 0.3)
    assert eb.mask_from_scores(s, 0.3, head_dims=[8]).head_dims == [8]
    with pytest.raises(eb.MaskMismatchError, match="head_dims"):
        eb.random_mask([(3, 5)], 0.3)
    assert eb.random_mask([(3, 5, 8)], 0.3) == eb.random_mask([(3, 5)], 0.3, head_dims=[8])


def test_detector_fed_scores_equals_detector_fed_the_model():
    torch.manual_seed(0)
    model = make_model("vit").train()
    by_model = EarlyBirdDetector(ratios=(0.3, 0.5), threshold=0.1, window=2)
    by_scores = EarlyBirdDetector(ratios=(0.3, 0.5), threshold=0.1, window=2)
    graph = ModelGraph.build(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(32, 1, 16, 16), torch.randint(0, 10, (32,))
    for epoch in range(6):
        for i in range(0, 32, 8):
            model(pixel_values=x[i:i + 8], labels=y[i:i + 8]).loss.backward()
            opt.step()
            opt.zero_grad()
        by_model.check(model, at=epoch)
        by_scores.check(eb.score_model(graph), at=epoch)
    assert by_model.state_dict() == by_scores.state_dict()
    assert [r.distances for r in by_model.history] == [r.distances for r in by_scores.history]
    for r in (0.3, 0.5):
        a, b = by_model.ticket(r), by_scores.ticket(r)
        assert (a and (a.at, a.mask.hash())) == (b and (b.at, b.mask.hash()))


def test_distance_is_symmetric_and_head_dims_must_agree():
    a = eb.random_mask([(4, 8), (6, 8)], 0.5, seed=0, head_dims=[8, 4])
    b = eb.random_mask([(4, 8), (6, 8)], 0.5, seed=1, head_dims=[8, 4])
    assert eb.mask_distance(a, b) == eb.mask_distance(b, a)
    c = eb.Mask(tuple(eb.LayerMask(lm.heads, lm.channels, lm.num_heads, lm.num_channels, 1) for lm in b.layers))
    with pytest.raises(eb.MaskMismatchError, match="head dims"):
        eb.mask_distance(a, c)
    with pytest.raises(eb.MaskMismatchError, match="head dims"):
        eb.mask_distance(c, a)
    assert c != b and c.hash() != b.hash()


def test_mask_with_wrong_head_dims_does_not_fit_the_model():
    model = make_model("bert")
    mask = eb.draw_mask(model, 0.3)
    wrong = eb.Mask(tuple(eb.LayerMask(lm.heads, lm.channels, lm.num_heads, lm.num_channels, 1)
                          for lm in mask.layers))
    with pytest.raises(eb.MaskMismatchError, match="head dims"):
        eb.prune_model(model, wrong)
    with pytest.raises(eb.MaskMismatchError, match="head dims"):
        with eb.soft_masked(model, wrong):
            pass
