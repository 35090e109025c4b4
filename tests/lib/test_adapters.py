"""Adapters: supported families, clear error otherwise, exact GPT-2 Conv1D conversion."""
import pytest
import torch
import transformers as T

import ebcore as eb
from ebcore.adapters import conv1d_to_linear
from conftest import FAMILIES, logits, make_batch, make_model


def test_every_family_has_blocks():
    for family in FAMILIES:
        model = eb.prepare_model(make_model(family))
        blocks = eb.get_adapter(model).blocks(model)
        assert len(blocks) >= 2
        assert all(b.num_heads * b.head_dim == b.o_proj.in_features for b in blocks)


def test_unknown_model_names_the_supported_classes():
    model = T.DistilBertForSequenceClassification(T.DistilBertConfig(dim=32, n_layers=1, n_heads=2, hidden_dim=64,
                                                                     vocab_size=50))
    with pytest.raises(eb.UnsupportedModelError, match="ViTForImageClassification.*BertForSequenceClassification"):
        eb.get_adapter(model)
    with pytest.raises(eb.UnsupportedModelError):
        eb.prune_model(torch.nn.Linear(3, 3), eb.Mask.full([(1, 1)]))


def test_conv1d_to_linear_is_exact_and_idempotent():
    model = make_model("gpt2")
    batch = make_batch("gpt2")
    before = logits(model, batch)
    assert conv1d_to_linear(model) == 8  # 4 per block, 2 blocks
    assert conv1d_to_linear(model) == 0
    assert torch.allclose(logits(model, batch), before, atol=1e-6)


def test_tracing_does_not_touch_the_global_rng():
    from ebcore.graph import ModelGraph
    model = make_model("gpt2")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ModelGraph.build(model)
    assert torch.equal(torch.rand(3), expected)
