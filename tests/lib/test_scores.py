"""Importance scores: group magnitude by default, Taylor with gradients, no side effects."""
import pytest
import torch

import ebcore as eb
from ebcore.graph import ModelGraph
from conftest import FAMILIES, make_batch, make_model


@pytest.mark.parametrize("family", FAMILIES)
def test_scores_have_model_shape_and_do_not_touch_weights(family):
    model = make_model(family)
    graph = ModelGraph.build(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    s1 = eb.score_model(graph)
    s2 = eb.score_model(graph)
    assert s1.structure == graph.structure()
    for a, b in zip(s1.layers, s2.layers):
        assert torch.equal(a.heads, b.heads) and torch.equal(a.channels, b.channels)
        assert torch.all(a.heads > 0) and torch.all(a.channels > 0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("family", ["vit", "gpt2", "swin"])
def test_a_zeroed_head_and_channel_score_lowest(family):
    model = make_model(family)
    graph = ModelGraph.build(model)
    block = graph.blocks[-1]
    hd, h = block.head_dim, 1
    with torch.no_grad():
        rows = slice(h * hd, (h + 1) * hd)
        if block.fused_qkv:
            width = block.num_heads * hd
            for part in range(3):
                block.qkv[0].weight[part * width + h * hd: part * width + (h + 1) * hd] = 0
                block.qkv[0].bias[part * width + h * hd: part * width + (h + 1) * hd] = 0
        else:
            for lin in block.qkv:
                lin.weight[rows] = 0
                if lin.bias is not None:
                    lin.bias[rows] = 0
        block.o_proj.weight[:, rows] = 0
        block.fc1.weight[5] = 0
        block.fc1.bias[5] = 0
        block.fc2.weight[:, 5] = 0
    s = eb.score_model(graph).layers[-1]
    assert int(torch.argmin(s.heads)) == h
    assert int(torch.argmin(s.channels)) == 5
    mask = eb.mask_from_scores(eb.score_model(graph), 0.1, head_dims=[b.head_dim for b in graph.blocks])
    assert 5 not in mask.layers[-1].channels


def test_taylor_needs_gradients():
    model = make_model("bert")
    graph = ModelGraph.build(model)
    with pytest.raises(ValueError, match="backward"):
        eb.score_model(graph, "taylor")
    batch = make_batch("bert")
    model(**batch, labels=torch.tensor([0, 1, 2])).loss.backward()
    s = eb.score_model(graph, "taylor")
    assert s.criterion == "taylor" and s.structure == graph.structure()
    assert not torch.equal(s.layers[0].channels, eb.score_model(graph).layers[0].channels)
    with pytest.raises(ValueError, match="unknown importance"):
        eb.score_model(graph, "entropy")
