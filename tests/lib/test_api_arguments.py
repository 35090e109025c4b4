"""Clear errors for bad arguments everywhere (the detector, ratios, masks, scores), and the one-call
`draw_mask` for the common case."""
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



@pytest.mark.parametrize("kwargs, match", [
    ({"ratios": "0.3"}, "ratios"), ({"ratios": None}, "ratios"), ({"ratios": ("0.3",)}, "ratio"),
    ({"ratios": (True,)}, "ratio"), ({"threshold": "0.1"}, "threshold"), ({"threshold": None}, "threshold"),
    ({"window": "5"}, "window"), ({"window": 2.5}, "window"), ({"window": True}, "window"),
    ({"scope": None}, "scope"), ({"distance": 3}, "distance"),
])
def test_bad_detector_arguments(kwargs, match):
    with pytest.raises(eb.EbcoreError, match=match):
        EarlyBirdDetector(**kwargs)


def test_bad_detector_calls():
    det = EarlyBirdDetector(ratios=(0.3,), window=2)
    with pytest.raises(eb.EbcoreError, match="source"):
        det.check("model")
    with pytest.raises(eb.EbcoreError, match="masks"):
        det.add_masks([eb.Mask.full([(2, 2)])])
    with pytest.raises(eb.EbcoreError, match="Mask"):
        det.add_masks({0.3: {"layers": []}})
    with pytest.raises(eb.EbcoreError, match="ratio"):
        det.masks(0.7)
    with pytest.raises(eb.EbcoreError, match="state"):
        det.load_state_dict({"history": []})
    with pytest.raises(eb.EbcoreError, match="kind"):
        det.pairwise(0.3, kind="hamming")


@pytest.mark.parametrize("bad", ["0.3", True, False, b"0.3", [0.3], None])
def test_check_ratio_refuses_strings_and_bools(bad):
    with pytest.raises(eb.InvalidRatioError, match="ratio"):
        check_ratio(bad)


def test_numbers_of_any_numeric_type_are_ratios():
    import numpy as np
    assert check_ratio(np.float32(0.25)) == 0.25 and check_ratio(0) == 0.0 and check_ratio(torch.tensor(0.5)) == 0.5


def test_bad_ratio_is_reported_under_its_own_name():
    s = Scores([LayerScores(torch.rand(3), torch.rand(5))], criterion="x", head_dims=[4])
    with pytest.raises(eb.InvalidRatioError, match=r"^ratio "):
        eb.mask_from_scores(s, "0.3")
    with pytest.raises(eb.InvalidRatioError, match=r"^ratio "):
        eb.mask_from_scores(s, 1.5)
    with pytest.raises(eb.InvalidRatioError, match=r"^ffn_ratio "):
        eb.mask_from_scores(s, 0.3, ffn_ratio=True)
    with pytest.raises(eb.InvalidRatioError, match=r"^ratio "):
        eb.random_mask([(3, 5, 4)], "0.3")


@pytest.mark.parametrize("bad", [None, {"layers": []}, "mask", 0.3])
def test_mask_of_wrong_type_is_refused_by_every_entry_point(bad):
    model = make_model("vit")
    for call in (lambda: eb.prune_model(model, bad), lambda: eb.apply_soft_mask(model, bad),
                 lambda: eb.soft_masked(model, bad).__enter__(), lambda: eb.mask_distance(bad, bad),
                 lambda: eb.pairwise_distances([bad, bad])):
        with pytest.raises(eb.InvalidArgumentError, match="mask"):
            call()


def test_other_bad_arguments():
    model = make_model("vit")
    graph = ModelGraph.build(model)
    with pytest.raises(eb.InvalidArgumentError, match="criterion"):
        eb.score_model(graph, "entropy")
    with pytest.raises(eb.InvalidArgumentError, match="graph"):
        eb.score_model("vit")
    with pytest.raises(eb.InvalidArgumentError, match="scores"):
        eb.mask_from_scores(model, 0.3)
    with pytest.raises(eb.InvalidArgumentError, match="scope"):
        eb.draw_mask(model, 0.3, scope="everywhere")
    with pytest.raises(eb.InvalidArgumentError, match="structure"):
        eb.random_mask("3x5", 0.3, head_dims=[4])
    with pytest.raises(eb.InvalidArgumentError, match="seed"):
        eb.random_mask([(3, 5, 4)], 0.3, seed="one")
    with pytest.raises(eb.InvalidArgumentError, match="head_dims"):
        eb.random_mask([(3, 5)], 0.3, head_dims=[4, 4])
    with pytest.raises(eb.InvalidArgumentError, match="kind"):
        eb.pairwise_distances([eb.Mask.full([(2, 2)])], kind="hamming")
    with pytest.raises(eb.InvalidArgumentError, match="verify"):
        eb.prune_model(model, eb.draw_mask(model, 0.3), verify="yes")
    with pytest.raises(eb.UnsupportedModelError):
        eb.count_parameters("model")
    with pytest.raises(eb.UnsupportedModelError):
        ModelGraph.build(None)
    with pytest.raises(eb.InvalidArgumentError, match="structure"):
        shrink_to_structure(model, [(1, "x"), (1, 1)])
    with pytest.raises(eb.MaskMismatchError, match="layers"):
        eb.Mask.from_dict({"format": "ebcore.mask/1", "layers": [{"heads": [0]}]})
    with pytest.raises(eb.InvalidArgumentError, match="layers"):
        eb.Mask(layers=[{"heads": [0]}])
    with pytest.raises(eb.InvalidArgumentError, match="heads"):
        eb.LayerMask("01", (0,), 2, 1)
    with pytest.raises(eb.InvalidArgumentError, match="num_heads"):
        eb.LayerMask((0,), (0,), "2", 1)



# --- one call for the common case ------------------------------------------------------------------

def test_draw_mask_is_the_chain_in_one_call():
    model = make_model("swin")
    graph = ModelGraph.build(model)
    chained = eb.mask_from_scores(eb.score_model(graph), 0.3, scope="global")
    assert eb.draw_mask(model, 0.3, scope="global") == chained
    assert eb.draw_mask(model, 0.3, scope="global").head_dims == [b.head_dim for b in graph.blocks]
    assert eb.draw_mask(model, head_ratio=0.5, ffn_ratio=0.1).kept_structure == \
        eb.mask_from_scores(eb.score_model(graph), head_ratio=0.5, ffn_ratio=0.1).kept_structure
    assert "draw_mask" in eb.__all__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eb.score_model(model)  # a model is accepted as well as a graph



def test_non_finite_scores_and_bad_check_labels_are_refused():
    s = Scores([LayerScores(torch.tensor([1.0, float("nan")]), torch.rand(4))], criterion="x", head_dims=[4])
    with pytest.raises(eb.InvalidArgumentError, match="NaN"):
        eb.mask_from_scores(s, 0.3)
    det = EarlyBirdDetector(ratios=(0.3,), window=2)
    with pytest.raises(eb.InvalidArgumentError, match="at"):
        det.add_masks({0.3: eb.Mask.full([(2, 2)])}, at=torch.tensor(1))
