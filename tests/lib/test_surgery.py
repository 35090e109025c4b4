"""Physical pruning equals soft masking, achieves the mask's structure, and leaves a trainable model."""
import pytest
import torch
import torch_pruning as tp

import ebcore as eb
from ebcore.graph import ModelGraph
from ebcore.tiny import tiny_labels
from conftest import FAMILIES, logits, make_batch, make_model


def draw(model, ratio, scope="layerwise"):
    graph = ModelGraph.build(model)
    return eb.mask_from_scores(eb.score_model(graph), ratio, scope=scope, head_dims=[b.head_dim for b in graph.blocks])


@pytest.mark.parametrize("scope", ["layerwise", "global"])
@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.5, 0.7])
@pytest.mark.parametrize("family", FAMILIES)
def test_pruned_equals_soft_masked(family, scope, ratio):
    model = make_model(family)
    batch = make_batch(family)
    dense = logits(model, batch)
    mask = draw(model, ratio, scope)
    with eb.soft_masked(model, mask):
        soft = logits(model, batch)
    assert torch.equal(logits(model, batch), dense), "soft mask hooks must be removed on exit"
    report = eb.prune_model(model, mask)
    pruned = logits(model, batch)
    assert (pruned - soft).abs().max().item() <= 1e-4
    assert report.structure_after == mask.kept_structure
    assert ModelGraph.build(model).structure() == mask.kept_structure
    if mask.sparsity()["combined"] > 0:
        assert report.params_after < report.params_before
        assert count_changed(mask) and not torch.allclose(pruned, dense, atol=1e-6), "pruning must change outputs"


def count_changed(mask):
    return any(lm.pruned_heads or lm.pruned_channels for lm in mask.layers)


@pytest.mark.parametrize("family", FAMILIES)
def test_train_step_after_pruning(family):
    model = make_model(family).train()
    eb.prune_model(model, draw(model, 0.5))
    batch = make_batch(family)
    batch["labels"] = tiny_labels(family, batch)  # causal LMs: the input ids; classifiers: classes
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)  # rebuilt after surgery
    losses = []
    for _ in range(5):
        loss = model(**batch).loss
        loss.backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_gpt2_cached_generate_after_pruning():
    model = make_model("gpt2_lm")
    eb.prune_model(model, draw(model, 0.5))
    ids = make_batch("gpt2_lm")["input_ids"][:1]
    cached = model.generate(ids, max_new_tokens=6, do_sample=False, use_cache=True, pad_token_id=0)
    uncached = model.generate(ids, max_new_tokens=6, do_sample=False, use_cache=False, pad_token_id=0)
    assert cached.shape == (1, ids.shape[1] + 6)
    assert torch.equal(cached, uncached)


def test_swin_position_bias_table_is_sliced():
    model = make_model("swin")
    tables = [b.attention.relative_position_bias.relative_position_bias_table.detach().clone()
              for stage in model.swin.encoder.layers for b in stage.blocks]
    mask = draw(model, 0.5)
    eb.prune_model(model, mask)
    after = [b.attention.relative_position_bias.relative_position_bias_table
             for stage in model.swin.encoder.layers for b in stage.blocks]
    for old, new, lm in zip(tables, after, mask.layers):
        assert torch.equal(new, old[:, list(lm.heads)])


def test_pruning_twice_uses_current_structure():
    model = make_model("vit")
    eb.prune_model(model, draw(model, 0.3))
    second = draw(model, 0.3)
    report = eb.prune_model(model, second)
    assert report.structure_after == second.kept_structure


def test_mask_of_other_model_is_rejected():
    vit = make_model("vit")
    mask = draw(make_model("bert"), 0.3)
    with pytest.raises(eb.MaskMismatchError, match="drawn on a model"):
        eb.prune_model(vit, mask)


def test_mask_that_empties_a_layer_is_rejected():
    model = make_model("roberta")
    full = eb.Mask.full(ModelGraph.build(model).structure())
    layers = list(full.layers)
    layers[1] = eb.LayerMask((), layers[1].channels, layers[1].num_heads, layers[1].num_channels)
    before = logits(model, make_batch("roberta"))
    with pytest.raises(eb.InvalidRatioError, match="empties layer 1"):
        eb.prune_model(model, eb.Mask(tuple(layers)))
    assert torch.equal(before, logits(model, make_batch("roberta"))), "a rejected mask must not touch the model"


def test_silent_skip_is_detected(monkeypatch):
    """A Torch-Pruning group that prunes nothing (as 1.6.1 does silently in some cases) is an error."""
    model = make_model("vit")
    mask = draw(model, 0.5)
    monkeypatch.setattr(tp.dependency.Group, "prune", lambda self, *a, **k: None)
    with pytest.raises(eb.PruningError, match="does not match the mask"):
        eb.prune_model(model, mask)


def test_group_with_wrong_members_is_refused(monkeypatch):
    model = make_model("bert")
    mask = draw(model, 0.5)
    real = ModelGraph.head_group

    def shifted(self, block, idxs):  # as if the graph mapped the heads to other channels
        return real(self, block, [i + 1 if i + 1 < block.num_heads * block.head_dim else i for i in idxs])

    monkeypatch.setattr(ModelGraph, "head_group", shifted)
    before = logits(model, make_batch("bert"))
    with pytest.raises(eb.PruningError, match="group does not match"):
        eb.prune_model(model, mask)
    assert torch.equal(before, logits(model, make_batch("bert")))
