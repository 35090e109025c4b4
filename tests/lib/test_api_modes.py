"""The public API under the conditions a new user brings: frozen layers, no_grad and inference_mode,
an unprepared GPT-2 (no silent Conv1D conversion), half precision."""
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



# --- 1. frozen parameters stay frozen ---------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_prune_model_keeps_requires_grad_and_parameter_attributes(family):
    model = eb.prepare_model(make_model(family))
    blocks = eb.get_adapter(model).blocks(model)
    for m in (*blocks[0].qkv, blocks[0].o_proj, blocks[0].fc1, blocks[0].fc2):
        for p in m.parameters():
            p.requires_grad_(False)
    blocks[1].fc1.weight.ebcore_test_tag = "keep me"  # an attribute a user (or a library) set on a parameter
    before = flags(model)
    assert not all(before.values())
    eb.prune_model(model, eb.draw_mask(model, 0.5))
    assert flags(model) == before
    assert getattr(eb.get_adapter(model).blocks(model)[1].fc1.weight, "ebcore_test_tag", None) == "keep me"


def test_shrink_to_structure_keeps_requires_grad():
    model = make_model("swin")
    for p in model.swin.encoder.layers[0].parameters():
        p.requires_grad_(False)
    before = flags(model)
    shrink_to_structure(model, [(1, 10), (1, 10), (3, 20)])
    assert flags(model) == before


def test_conv1d_conversion_keeps_bias_requires_grad():
    model = make_model("gpt2")
    for p in model.transformer.h[0].parameters():
        p.requires_grad_(False)
    before = flags(model)
    eb.prepare_model(model)
    assert flags(model) == before


# --- 2. frozen encoders and no_grad ---------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_frozen_encoder_is_scored_and_stays_frozen(family):
    model = eb.prepare_model(make_model(family))
    reference = eb.score_model(ModelGraph.build(model))
    for name, p in model.named_parameters():
        if "classifier" not in name and "score" not in name and "lm_head" not in name:
            p.requires_grad_(False)
    before = flags(model)
    scores = eb.score_model(ModelGraph.build(model))
    assert flags(model) == before, "tracing must restore every requires_grad exactly"
    for a, b in zip(scores.layers, reference.layers):
        assert torch.equal(a.heads, b.heads) and torch.equal(a.channels, b.channels)
    eb.prune_model(model, eb.mask_from_scores(scores, 0.3))
    assert flags(model) == before


@pytest.mark.parametrize("family", ["vit", "gpt2", "roberta"])
def test_scoring_and_pruning_inside_no_grad(family):
    model = eb.prepare_model(make_model(family))
    with torch.no_grad():
        mask = eb.draw_mask(model, 0.3)
        scores = eb.score_model(model)
        eb.prune_model(model, mask)
    assert scores.head_dims == mask.head_dims
    assert eb.get_adapter(model).blocks(model)[0].num_heads == len(mask.layers[0].heads)


# --- 3. no silent Conv1D -> Linear conversion ---------------------------------------------------

def test_save_pruned_leaves_an_unprepared_gpt2_alone(tmp_path):
    model = make_model("gpt2")
    params = [id(p) for p in model.parameters()]
    batch = make_batch("gpt2")
    save_pruned(model, tmp_path / "m")
    assert has_conv1d(model) and [id(p) for p in model.parameters()] == params
    back = load_pruned(tmp_path / "m")
    assert torch.allclose(logits(back, batch), logits(model, batch), atol=1e-5)


def test_soft_masked_leaves_an_unprepared_gpt2_alone():
    model = make_model("gpt2")
    params = [id(p) for p in model.parameters()]
    prepared = eb.prepare_model(make_model("gpt2"))
    mask = eb.draw_mask(prepared, 0.5)
    batch = make_batch("gpt2")
    with eb.soft_masked(model, mask):
        soft = logits(model, batch)
    assert has_conv1d(model) and [id(p) for p in model.parameters()] == params
    with eb.soft_masked(prepared, mask):
        expected = logits(prepared, batch)
    assert torch.allclose(soft, expected, atol=1e-5)
    assert not torch.allclose(soft, logits(model, batch), atol=1e-4), "the mask must act on Conv1D too"


def test_scoring_an_unprepared_gpt2_model_is_refused_not_converted():
    model = make_model("gpt2")
    with pytest.raises(eb.UnsupportedModelError, match="prepare_model"):
        eb.score_model(model)
    with pytest.raises(eb.UnsupportedModelError, match="prepare_model"):
        eb.draw_mask(model, 0.3)
    assert has_conv1d(model)


# --- 4. half precision ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("family", FAMILIES)
def test_half_precision_models_are_scored_and_pruned(family, dtype):
    if dtype == torch.float16 and family not in ("swin", "vit"):
        pytest.skip("one fp16 check per input kind is enough (text inputs are integer ids)")
    model = eb.prepare_model(make_model(family)).to(dtype)
    batch = {k: v.to(dtype) if v.is_floating_point() else v for k, v in make_batch(family).items()}
    mask = eb.draw_mask(model, 0.5)
    with eb.soft_masked(model, mask):
        soft = logits(model, batch).float()
    eb.prune_model(model, mask)
    assert next(model.parameters()).dtype == dtype
    pruned = logits(model, batch).float()
    assert (pruned - soft).abs().max().item() <= 0.05 * max(1.0, soft.abs().max().item())



def test_pruning_inside_inference_mode_leaves_a_trainable_model():
    model = make_model("bert").train()
    with torch.inference_mode():
        eb.prune_model(model, eb.draw_mask(model, 0.5))
    batch = make_batch("bert")
    loss = model(**batch, labels=torch.tensor([0, 1, 2])).loss
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
