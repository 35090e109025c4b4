"""Decoder LLMs with grouped-query attention (Llama, Qwen2, Mistral, Gemma): query heads pruned within KV
groups (or whole KV groups), the gated MLP's channels, config and attention attributes rewritten and checked,
KV cache and RoPE intact (cached generate with left padding), save/load, bf16."""
import pytest
import torch

import ebcore as eb
from ebcore.blocks import FamilyAdapter
from ebcore.graph import ModelGraph
from ebcore.io import load_pruned, read_structure, save_pruned
from ebcore.tiny import tiny_model
from conftest import logits, make_batch, make_model

DECODERS = ("llama", "llama_cls", "qwen2", "mistral", "gemma")
CAUSAL = ("llama", "qwen2", "mistral", "gemma")


def attention_modules(model):
    return [layer.self_attn for layer in model.base_model.layers]


def assert_gqa_consistent(model, mask):
    """Every KV group keeps the same number of query heads; the modules and config agree with the weights."""
    blocks = eb.get_adapter(model).blocks(model)
    for block, lm in zip(blocks, mask.layers):
        counts = [n for n in lm.heads_per_group() if n]
        assert len(set(counts)) == 1
        assert block.num_heads == len(lm.heads) and block.kv_heads == len(counts)
        assert block.attention.num_key_value_groups == counts[0] == block.group_size
        assert block.qkv[1].out_features == block.qkv[2].out_features == block.kv_heads * block.head_dim
    cfg = model.config
    assert cfg.num_key_value_heads == max(b.kv_heads for b in blocks)
    assert cfg.num_attention_heads == cfg.num_key_value_heads * max(b.group_size for b in blocks)
    assert cfg.head_dim == blocks[0].head_dim


@pytest.mark.parametrize("kv_groups", [False, True])
@pytest.mark.parametrize("scope", ["layerwise", "global"])
@pytest.mark.parametrize("family", DECODERS)
def test_pruned_equals_soft_masked_and_groups_stay_even(family, scope, kv_groups):
    model = make_model(family)
    batch = make_batch(family)
    groups = [b.group_size for b in ModelGraph.build(model).blocks]
    mask = eb.draw_mask(model, 0.5, scope=scope, kv_groups=kv_groups)
    assert mask.group_sizes == groups and all(g > 1 for g in groups)
    with eb.soft_masked(model, mask):
        soft = logits(model, batch)
    report = eb.prune_model(model, mask)
    assert (logits(model, batch) - soft).abs().max().item() <= 1e-5
    assert report.structure_after == mask.kept_structure and report.params_after < report.params_before
    assert_gqa_consistent(model, mask)
    if kv_groups and min(lm.kv_heads for lm in mask.layers) > 1:
        assert all(len(lm.kept_kv_groups) < lm.kv_heads for lm in mask.layers)  # whole groups went
        assert all(len(lm.heads) == len(lm.kept_kv_groups) * lm.group_size for lm in mask.layers)
    elif not kv_groups:
        assert all(len(lm.kept_kv_groups) == lm.kv_heads for lm in mask.layers)  # every KV group kept


def test_ratio_applies_within_each_group():
    model = make_model("llama")  # 8 query heads on 2 KV heads: groups {0..3}, {4..7}
    for ratio, per_group in [(0.25, 3), (0.5, 2), (0.75, 1), (0.9, 1)]:
        mask = eb.draw_mask(model, ratio)
        assert all(lm.heads_per_group() == [per_group, per_group] for lm in mask.layers), ratio
    scores = eb.score_model(model)
    with torch.no_grad():  # a head whose q rows and o columns are zero scores lowest in its group
        block = ModelGraph.build(model).blocks[0]
        block.qkv[0].weight[5 * 16:6 * 16] = 0
        block.o_proj.weight[:, 5 * 16:6 * 16] = 0
    assert int(torch.argmin(eb.score_model(model).layers[0].heads[4:])) == 1
    assert scores.group_sizes == [4, 4]


def test_random_mask_and_mask_full_follow_the_rule():
    model = make_model("qwen2")  # 6 heads on 2 KV heads
    mask = eb.draw_mask(model, 0.3)
    structure = [(*s, hd) for s, hd in zip(mask.structure, mask.head_dims)]
    for seed in range(5):
        rnd = eb.random_mask(structure, 0.5, seed=seed, group_sizes=mask.group_sizes)
        assert all(len({n for n in lm.heads_per_group()}) == 1 for lm in rnd.layers)
        eb.mask_distance(mask, rnd)
    groups = eb.random_mask(structure, 0.5, group_sizes=mask.group_sizes, kv_groups=True)
    assert all(len(lm.kept_kv_groups) == 1 and len(lm.heads) == 3 for lm in groups.layers)
    full = eb.Mask.full(structure, group_sizes=mask.group_sizes)
    assert eb.prune_model(model, full).params_after == eb.count_parameters(model)
    with pytest.raises(eb.MaskMismatchError, match="KV group sizes"):  # drawn as if there were no groups
        eb.prune_model(model, eb.random_mask(structure, 0.5))
    with pytest.raises(eb.MaskMismatchError, match="KV group sizes"):
        eb.mask_distance(mask, eb.random_mask(structure, 0.5))


def test_mask_breaking_the_group_rule_is_refused():
    with pytest.raises(eb.MaskMismatchError, match="same number of query heads"):
        eb.LayerMask((0, 1, 2, 4), (0,), num_heads=8, num_channels=4, head_dim=16, group_size=4)
    with pytest.raises(eb.InvalidArgumentError, match="group_size"):
        eb.LayerMask((0,), (0,), num_heads=6, num_channels=4, head_dim=16, group_size=4)
    lm = eb.LayerMask((4, 6), (0,), num_heads=8, num_channels=4, head_dim=16, group_size=4)  # group 0 pruned
    assert lm.heads_per_group() == [0, 2] and lm.kept_kv_groups == [1]
    model = make_model("llama")
    bad = eb.draw_mask(model, 0.5).to_dict()
    bad["layers"][0]["heads"] = [0, 1, 2, 4]
    with pytest.raises(eb.MaskMismatchError, match="same number of query heads"):
        eb.Mask.from_dict(bad)
    good = eb.draw_mask(model, 0.5)
    assert eb.Mask.from_json(good.to_json()) == good and good.to_dict()["layers"][0]["group_size"] == 4


def test_attention_attributes_are_checked_against_the_weights(monkeypatch):
    model = make_model("llama")
    mask = eb.draw_mask(model, 0.5)
    monkeypatch.setattr(FamilyAdapter, "patch_after_head_pruning", lambda self, block, kept: None)
    with pytest.raises(eb.PruningError, match="num_key_value_groups=4"):
        eb.prune_model(model, mask)


@pytest.mark.parametrize("kv_groups", [False, True])
@pytest.mark.parametrize("family", CAUSAL)
def test_cached_generate_with_left_padding_after_pruning(family, kv_groups):
    model = make_model(family)
    dense = make_model(family)
    ids = make_batch(family, batch=2)["input_ids"]
    attention = torch.ones_like(ids)
    ids[0, :3], attention[0, :3] = 0, 0  # left padding
    mask = eb.draw_mask(model, 0.5, scope="global", kv_groups=kv_groups)
    eb.prune_model(model, mask)
    kwargs = dict(attention_mask=attention, max_new_tokens=8, do_sample=False, pad_token_id=0)
    cached = model.generate(ids, use_cache=True, **kwargs)
    uncached = model.generate(ids, use_cache=False, **kwargs)
    assert cached.shape == (2, ids.shape[1] + 8)
    assert torch.equal(cached, uncached)
    with eb.soft_masked(dense, mask):  # the dense model with the heads zeroed generates the same tokens
        assert torch.equal(dense.generate(ids, use_cache=True, **kwargs), cached)


@pytest.mark.parametrize("family", ["llama", "qwen2", "gemma"])
def test_save_load_exact_with_uneven_layers(family, tmp_path):
    model = make_model(family)
    mask = eb.draw_mask(model, 0.6, scope="global", kv_groups=family == "llama")
    eb.prune_model(model, mask)
    save_pruned(model, tmp_path / "m")
    back = load_pruned(tmp_path / "m")
    batch = make_batch(family)
    assert torch.equal(logits(back, batch), logits(model, batch))
    layers = read_structure(tmp_path / "m")["layers"]
    assert [(l["heads"], l["kv_heads"]) for l in layers] == [(len(lm.heads), len(lm.kept_kv_groups))
                                                             for lm in mask.layers]
    assert (back.config.num_attention_heads, back.config.num_key_value_heads) == \
        (model.config.num_attention_heads, model.config.num_key_value_heads)
    assert_gqa_consistent(back, mask)


@pytest.mark.parametrize("family", ["llama", "mistral"])
def test_bf16_forward_and_generate_after_pruning(family):
    model = make_model(family).to(torch.bfloat16)
    mask = eb.draw_mask(model, 0.5)
    batch = make_batch(family)
    with torch.no_grad(), eb.soft_masked(model, mask):
        soft = model(**batch).logits.float()
    eb.prune_model(model, mask)
    with torch.no_grad():
        pruned = model(**batch).logits.float()
    assert next(model.parameters()).dtype == torch.bfloat16 and torch.isfinite(pruned).all()
    assert (pruned - soft).abs().max().item() <= 1e-2 * max(1.0, soft.abs().max().item())
    out = model.generate(batch["input_ids"][:1], max_new_tokens=4, do_sample=False, pad_token_id=0)
    assert out.shape == (1, batch["input_ids"].shape[1] + 4)


def test_pruning_twice_and_mha_llama():
    model = make_model("llama")
    eb.prune_model(model, eb.draw_mask(model, 0.5))  # 4 heads on 2 KV heads
    second = eb.draw_mask(model, 0.5, kv_groups=True)  # then one KV group of 2
    eb.prune_model(model, second)
    assert [(b.num_heads, b.kv_heads) for b in ModelGraph.build(model).blocks] == [(2, 1), (2, 1)]
    mha = tiny_model("llama", num_key_value_heads=8)  # no grouping: any head may go, with its k/v rows
    batch = make_batch("llama")
    mask = eb.draw_mask(mha, 0.3)
    assert mask.group_sizes == [1, 1] and "group_size" not in mask.to_dict()["layers"][0]
    with eb.soft_masked(mha, mask):
        soft = logits(mha, batch)
    eb.prune_model(mha, mask)
    assert (logits(mha, batch) - soft).abs().max().item() <= 1e-5
    assert [(b.num_heads, b.kv_heads) for b in ModelGraph.build(mha).blocks] == [(6, 6), (6, 6)]
