"""Precision helpers, and scoring that is cheap on an accelerator and works on half-precision models."""
import pytest
import torch

import ebcore as eb
from ebcore.graph import ModelGraph
from ebcore.study.precision import PRECISIONS, PrecisionError, autocast, autocast_dtype, check_precision, make_grad_scaler
from conftest import FAMILIES, make_batch, make_model


def test_check_precision():
    assert PRECISIONS == ("fp32", "bf16", "fp16")
    for p in PRECISIONS:
        assert check_precision(p) == p
    assert check_precision("bf16", "cpu") == "bf16"
    with pytest.raises(PrecisionError, match=r"precision must be one of .* got 'float16'"):
        check_precision("float16")
    with pytest.raises(PrecisionError, match="precision='fp16' needs a CUDA device, got device 'cpu'"):
        check_precision("fp16", torch.device("cpu"))
    assert autocast_dtype("fp32") is None and autocast_dtype("bf16") is torch.bfloat16


def test_autocast_and_scaler_on_cpu():
    lin = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with autocast("fp32", "cpu"):
        assert lin(x).dtype == torch.float32
    with autocast("bf16", "cpu"):
        assert lin(x).dtype == torch.bfloat16
    assert make_grad_scaler("fp32", "cpu") is None and make_grad_scaler("bf16", "cpu") is None
    with pytest.raises(PrecisionError):
        make_grad_scaler("fp16", "cpu")


def test_scoring_copies_to_host_once(monkeypatch):
    model = make_model("bert")
    graph = ModelGraph.build(model)
    expected = eb.score_model(graph)
    calls = []
    original = torch.Tensor.cpu

    def counting_cpu(self, *args, **kwargs):
        calls.append(tuple(self.shape))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "cpu", counting_cpu)
    scores = eb.score_model(graph)
    assert len(calls) == 1  # one device-to-host copy per pass, not one per block
    for a, b in zip(scores.layers, expected.layers):
        assert torch.equal(a.heads, b.heads) and torch.equal(a.channels, b.channels)


def test_cached_groups_read_current_weights():
    model = make_model("vit")
    graph = ModelGraph.build(model)
    first = eb.score_model(graph)
    block = graph.blocks[0]
    with torch.no_grad():
        block.fc1.weight[7] = 0
        block.fc1.bias[7] = 0
        block.fc2.weight[:, 7] = 0
    second = eb.score_model(graph)
    assert int(torch.argmin(second.layers[0].channels)) == 7
    assert not torch.equal(first.layers[0].channels, second.layers[0].channels)
    # After pruning in place, the same graph scores the new structure.
    mask = eb.mask_from_scores(second, 0.5, head_dims=[b.head_dim for b in graph.blocks])
    eb.prune_model(model, mask)
    assert ModelGraph.build(model).structure() == mask.kept_structure


@pytest.mark.parametrize("family", FAMILIES)  # Swin included: tracing inputs follow the model's dtype
def test_bf16_model_scores_and_prunes_with_alignment(family):
    model = make_model(family).to(torch.bfloat16)
    graph = ModelGraph.build(model)
    scores = eb.score_model(graph)
    assert all(s.heads.dtype == torch.float32 and torch.isfinite(s.channels).all() for s in scores.layers)
    mask = eb.mask_from_scores(scores, 0.5, head_dims=[b.head_dim for b in graph.blocks], align=8)
    batch = make_batch(family)
    if "pixel_values" in batch:
        batch["pixel_values"] = batch["pixel_values"].bfloat16()
    with torch.no_grad(), eb.soft_masked(model, mask):
        soft = model(**batch).logits.float()
    eb.prune_model(model, mask)
    with torch.no_grad():
        pruned = model(**batch).logits.float()
    assert (pruned - soft).abs().max().item() <= 1e-2
