"""The public API used the way a new user would (issue 9): frozen layers, bf16, unprepared GPT-2, head dims
that must travel with scores, damaged checkpoints and wrong argument types."""
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


# --- 6. load_pruned returns eval mode ---------------------------------------------------------------

def test_load_pruned_returns_eval_mode(tmp_path):
    model = make_model("roberta")
    eb.prune_model(model, eb.draw_mask(model, 0.3))
    save_pruned(model, tmp_path / "m")
    back = load_pruned(tmp_path / "m")
    assert not back.training and not any(m.training for m in back.modules())
    batch = make_batch("roberta")
    assert torch.equal(back(**batch).logits, logits(model, batch))


# --- 7. checksum of the weights ---------------------------------------------------------------------

def test_damaged_weights_are_detected_by_checksum(tmp_path):
    model = make_model("bert")
    save_pruned(model, tmp_path / "m")
    assert len(read_structure(tmp_path / "m")["weights_sha256"]) == 64
    path = tmp_path / "m" / "model.safetensors"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = b"\xff" * 4096  # NaN-ish garbage inside the tensor data; header intact
    path.write_bytes(bytes(data))
    with pytest.raises(eb.CheckpointError, match=r"model\.safetensors.*sha256"):
        load_pruned(tmp_path / "m")


def test_folder_without_checksum_loads_with_a_warning(tmp_path):
    model = make_model("vit")
    save_pruned(model, tmp_path / "m")
    path = tmp_path / "m" / "ebcore_structure.json"
    data = json.loads(path.read_text())
    del data["weights_sha256"]
    path.write_text(json.dumps(data))
    with pytest.warns(UserWarning, match="checksum"):
        back = load_pruned(tmp_path / "m")
    batch = make_batch("vit")
    assert torch.equal(logits(back, batch), logits(model, batch))


# --- 8. clear errors for bad arguments and damaged files ----------------------------------------------

@pytest.mark.parametrize("damage, match", [
    (lambda d: d.pop("layers"), "layers"),
    (lambda d: d.pop("class"), "class"),
    (lambda d: d["layers"][0].pop("heads"), "heads"),
    (lambda d: d["layers"][0].update(heads="three"), "three"),
    (lambda d: d["layers"][0].update(channels=None), "channels"),
    (lambda d: d["layers"][0].update(heads=2.5), "heads"),
    (lambda d: d.update(layers="all"), "layers"),
    (lambda d: d.update(weights_sha256=12), "weights_sha256"),
])
def test_damaged_structure_file_is_a_checkpoint_error(tmp_path, damage, match):
    save_pruned(make_model("bert"), tmp_path / "m")
    path = tmp_path / "m" / "ebcore_structure.json"
    data = json.loads(path.read_text())
    damage(data)
    path.write_text(json.dumps(data))
    with pytest.raises(eb.CheckpointError, match=match):
        load_pruned(tmp_path / "m")


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


def test_bad_save_and_load_arguments(tmp_path):
    model = make_model("vit")
    with pytest.raises(eb.InvalidArgumentError, match="path"):
        save_pruned(model, None)
    with pytest.raises(eb.InvalidArgumentError, match="extra"):
        save_pruned(model, tmp_path / "a", extra={"f": object()})
    assert not (tmp_path / "a").exists()
    with pytest.raises(eb.InvalidArgumentError, match="overwrite"):
        save_pruned(model, tmp_path / "b", overwrite="no")
    with pytest.raises(eb.UnsupportedModelError):
        save_pruned({"not": "a model"}, tmp_path / "c")
    save_pruned(model, tmp_path / "m")
    with pytest.raises(eb.CheckpointExistsError, match="overwrite=True"):
        save_pruned(model, tmp_path / "m")
    with pytest.raises(eb.InvalidArgumentError, match="path"):
        load_pruned(3)
    with pytest.raises(eb.InvalidArgumentError, match="device"):
        load_pruned(tmp_path / "m", device=3)
    if not torch.cuda.is_available():
        with pytest.raises(eb.InvalidArgumentError, match="CUDA"):
            load_pruned(tmp_path / "m", device="cuda")


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


def test_pruning_inside_inference_mode_leaves_a_trainable_model():
    model = make_model("bert").train()
    with torch.inference_mode():
        eb.prune_model(model, eb.draw_mask(model, 0.5))
    batch = make_batch("bert")
    loss = model(**batch, labels=torch.tensor([0, 1, 2])).loss
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_non_finite_scores_and_bad_check_labels_are_refused():
    s = Scores([LayerScores(torch.tensor([1.0, float("nan")]), torch.rand(4))], criterion="x", head_dims=[4])
    with pytest.raises(eb.InvalidArgumentError, match="NaN"):
        eb.mask_from_scores(s, 0.3)
    det = EarlyBirdDetector(ratios=(0.3,), window=2)
    with pytest.raises(eb.InvalidArgumentError, match="at"):
        det.add_masks({0.3: eb.Mask.full([(2, 2)])}, at=torch.tensor(1))
