"""Uniform masks and portable checkpoints (save_pruned(format="hf")): equal widths per layer, a round trip
through plain transformers in a process that cannot import ebcore, and clear errors where a stock config
cannot describe the pruned model."""
import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import ebcore as eb
from ebcore.adapters import needs_preparation
from ebcore.io import load_pruned, save_pruned
from ebcore.masks import LayerMask, Mask
from ebcore.scores import LayerScores, Scores
from ebcore.tiny import tiny_model
from conftest import FAMILIES, logits, make_batch, make_model

RATIOS = (0.1, 0.3, 0.5, 0.9)


def scores_of(*layers, head_dim=4):
    return Scores([LayerScores(torch.tensor(h, dtype=torch.float), torch.tensor(c, dtype=torch.float))
                   for h, c in layers], criterion="test", head_dims=[head_dim] * len(layers))


def dense_shapes(model):
    blocks = eb.get_adapter(model).blocks(eb.prepare_model(model))
    return [(b.num_heads, b.num_channels) for b in blocks]


# --- uniform masks ------------------------------------------------------------------------------------

@pytest.mark.parametrize("ratio", RATIOS)
@pytest.mark.parametrize("family", FAMILIES)
def test_uniform_masks_have_equal_widths_per_layer(family, ratio):
    model = eb.prepare_model(make_model(family))
    dense = dense_shapes(model)
    mask = eb.draw_mask(model, ratio, uniform=True)
    kept = mask.kept_structure
    assert mask.meta["uniform"] is True
    for (h, c), (kh, kc) in zip(dense, kept):
        same_heads = [kh2 for (h2, _), (kh2, _) in zip(dense, kept) if h2 == h]
        assert set(same_heads) == {kh}, "layers with the same head count keep the same count"
        assert kc * dense[0][1] == kept[0][1] * c, "every layer keeps the same fraction of its FFN channels"
    eb.prune_model(model, mask)
    assert dense_shapes(model) == kept


def test_uniform_on_swin_keeps_one_ffn_fraction_where_layerwise_does_not():
    model = make_model("swin")
    assert dense_shapes(model) == [(2, 72), (2, 72), (6, 144)]
    layerwise = eb.draw_mask(model, 0.3)
    uniform = eb.draw_mask(model, 0.3, uniform=True)
    assert [c for _, c in layerwise.kept_structure] == [50, 50, 101]
    assert [c for _, c in uniform.kept_structure] == [50, 50, 100]
    assert [h for h, _ in uniform.kept_structure] == [h for h, _ in layerwise.kept_structure] == [1, 1, 4]


def test_uniform_keeps_the_best_units_of_each_layer():
    s = scores_of(([3, 1, 2, 4], list(range(10))), ([1, 2, 3, 0], list(range(10, 0, -1))))
    m = eb.mask_from_scores(s, 0.5, uniform=True)
    assert m.layers[0].heads == (0, 3) and m.layers[1].heads == (1, 2)
    assert m.layers[0].channels == (5, 6, 7, 8, 9) and m.layers[1].channels == (0, 1, 2, 3, 4)
    # Layers of equal width: the same mask as the layerwise rule.
    model = make_model("bert")
    assert eb.draw_mask(model, 0.3, uniform=True).layers == eb.draw_mask(model, 0.3).layers


def test_uniform_with_different_widths_keeps_one_fraction_in_gcd_steps():
    s = scores_of(([1, 2], list(range(6))), ([1, 2], list(range(9))))   # FFN widths 6 and 9: gcd 3
    m = eb.mask_from_scores(s, 0.3, uniform=True)
    assert [c for _, c in m.kept_structure] == [4, 6]                    # 2 of 3 steps: the same 2/3 fraction
    assert m.layers[1].channels == (3, 4, 5, 6, 7, 8)


def test_uniform_with_align():
    model = make_model("bert")                                        # 6 heads of 32, 256 FFN channels
    m = eb.draw_mask(model, 0.3, uniform=True, align=64)
    assert m.kept_structure == [(4, 192), (4, 192)]                   # heads: units of 2 (2 * 32 = 64)
    s = scores_of(([1, 2], list(range(16))), ([1, 2], list(range(32))))  # FFN 16 and 32: u = 1, 2
    m = eb.mask_from_scores(s, 0.3, uniform=True, align=8)
    assert [c for _, c in m.kept_structure] == [8, 16], "11 of 16 rounds to 8 (16 of 32): one fraction, aligned"


@pytest.mark.parametrize("kv_groups", [False, True])
def test_uniform_under_grouped_query_attention_keeps_kv_groups_even(kv_groups):
    model = make_model("llama")                                       # 8 query heads on 2 KV heads, 2 layers
    m = eb.draw_mask(model, 0.5, uniform=True, kv_groups=kv_groups)
    assert m.meta["uniform"] is True and m.group_sizes == [4, 4]
    per_group = [lm.heads_per_group() for lm in m.layers]
    if kv_groups:
        assert all(sorted(g) == [0, 4] for g in per_group), "whole KV groups"
    else:
        assert per_group == [[2, 2], [2, 2]], "every KV group keeps the same number of query heads"
    eb.prune_model(model, m)
    blocks = eb.get_adapter(model).blocks(model)
    assert {(b.num_heads, b.kv_heads) for b in blocks} == {(4, 1) if kv_groups else (4, 2)}


def test_uniform_refuses_global_scope_and_non_bool():
    model = make_model("vit")
    with pytest.raises(eb.InvalidArgumentError, match="scope='layerwise'"):
        eb.draw_mask(model, 0.3, uniform=True, scope="global")
    with pytest.raises(eb.InvalidArgumentError, match="uniform must be True or False"):
        eb.draw_mask(model, 0.3, uniform="yes")


def test_random_uniform_mask_and_distances_between_rules():
    structure = [(2, 72, 12), (2, 72, 12), (6, 144, 12)]
    m = eb.random_mask(structure, 0.3, seed=1, uniform=True)
    assert [c for _, c in m.kept_structure] == [50, 50, 100]
    assert m.meta["uniform"] is True and m.meta["seed"] == 1
    gqa = eb.random_mask([(8, 10, 16)] * 2, 0.5, seed=1, group_sizes=[4, 4], uniform=True)
    assert [lm.heads_per_group() for lm in gqa.layers] == [[2, 2], [2, 2]]
    plain = eb.random_mask(structure, 0.3, seed=1)
    with pytest.raises(eb.MaskMismatchError, match="uniform"):
        eb.mask_distance(m, plain)
    assert eb.mask_distance(m, Mask.from_dict(m.to_dict()))["combined"] == 0.0


def test_detector_draws_uniform_masks_and_its_ticket_exports(tmp_path):
    from ebcore.detector import EarlyBirdDetector
    model = eb.prepare_model(make_model("swin"))
    det = EarlyBirdDetector(ratios=(0.3,), threshold=0.0, window=2, uniform=True)
    det.check(model)
    det.check(model)
    ticket = det.ticket(0.3)
    assert ticket is not None and ticket.mask.meta["uniform"] is True
    assert [c for _, c in ticket.mask.kept_structure] == [50, 50, 100]
    again = EarlyBirdDetector(ratios=(0.3,), threshold=0.0, window=2, uniform=True)
    again.load_state_dict(det.state_dict())
    assert again.ticket(0.3).mask == ticket.mask
    with pytest.raises(eb.InvalidArgumentError, match="saved with"):
        EarlyBirdDetector(ratios=(0.3,), threshold=0.0, window=2).load_state_dict(det.state_dict())
    with pytest.raises(eb.InvalidArgumentError, match="scope='layerwise'"):
        EarlyBirdDetector(uniform=True, scope="global")
    ffn_only = eb.mask_from_scores(eb.score_model(model), head_ratio=0.0, ffn_ratio=0.3, uniform=True)
    eb.prune_model(model, ffn_only)
    save_pruned(model, tmp_path / "m", format="hf")


# --- portable checkpoints: what is written, and a round trip without ebcore --------------------------

def pruned(name, head_ratio, ffn_ratio, prepare=True, kv_groups=False, **overrides):
    model = tiny_model(name, **overrides)
    if prepare:
        eb.prepare_model(model)
    if head_ratio or ffn_ratio:
        eb.prune_model(model, eb.draw_mask(model, head_ratio=head_ratio, ffn_ratio=ffn_ratio, uniform=True,
                                           kv_groups=kv_groups))
    return model


# name -> (tiny model, head ratio, FFN ratio, config overrides (or kv_groups), prepare GPT-2)
CASES = {
    **{f"{f}-ffn": (f, 0.0, 0.3, {}, True) for f in FAMILIES},
    "vit-heads": ("vit", 0.34, 0.3, {}, True),                           # 2 of 3 heads
    "llama-heads": ("llama", 0.5, 0.5, {}, True),                        # 4 query heads on 2 KV heads
    "llama_cls-heads": ("llama_cls", 0.5, 0.3, {}, True),
    "llama-kv-groups": ("llama", 0.5, 0.3, {"kv_groups": True}, True),   # 4 query heads on 1 KV head
    "qwen2-heads": ("qwen2", 0.3, 0.3, {}, True),                        # 4 on 2 of 6 on 2
    "mistral-heads": ("mistral", 0.3, 0.3, {}, True),                    # 6 on 2 (128 % 6 != 0: accepted)
    "gemma-heads": ("gemma", 0.3, 0.3, {}, True),                        # 3 on 1 (multi-query)
    "vit6-heads": ("vit", 0.17, 0.5, {"num_attention_heads": 6}, True),  # 5 of 6 heads: 96 % 5 != 0
    "gpt2-unprepared-dense": ("gpt2", 0.0, 0.0, {}, False),              # Conv1D weights as they are
}
AUTO = {"ForImageClassification": "AutoModelForImageClassification", "LMHeadModel": "AutoModelForCausalLM",
        "ForCausalLM": "AutoModelForCausalLM", "ForSequenceClassification": "AutoModelForSequenceClassification"}

CHILD = textwrap.dedent("""
    import importlib.abc, json, sys
    class NoEbcore(importlib.abc.MetaPathFinder):      # as if ebcore were not installed
        def find_spec(self, name, path=None, target=None):
            if name == "ebcore" or name.startswith("ebcore."):
                raise ImportError("ebcore is not installed here")
    sys.meta_path.insert(0, NoEbcore())
    import torch, transformers
    jobs = json.load(open(sys.argv[1]))
    for job in jobs:
        config = transformers.AutoConfig.from_pretrained(job["path"], local_files_only=True)
        auto = job["auto"] or config.architectures[0]
        model = getattr(transformers, auto).from_pretrained(job["path"], local_files_only=True).eval()
        assert type(model).__name__ == config.architectures[0], (type(model).__name__, config.architectures)
        batch = torch.load(job["batch"])
        with torch.no_grad():
            torch.save(model(**batch).logits, job["out"])
    assert "ebcore" not in sys.modules and not any(m.startswith("ebcore.") for m in sys.modules)
    print("loaded", len(jobs), "checkpoints without ebcore")
""")


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    """Every case saved with format='hf' here, loaded back by a fresh Python that cannot import ebcore."""
    root = tmp_path_factory.mktemp("hf-export")
    jobs, expected = [], {}
    for name, (tiny, hr, fr, overrides, prepare) in CASES.items():
        model = pruned(tiny, hr, fr, prepare, **overrides)
        batch = make_batch(tiny)
        expected[name] = (logits(model, batch), model)
        save_pruned(model, root / name, format="hf")
        torch.save(batch, root / f"{name}.batch.pt")
        cls = type(model).__name__
        auto = next(a for end, a in AUTO.items() if cls.endswith(end)) if name != "vit-heads" else None
        jobs.append({"path": str(root / name), "batch": str(root / f"{name}.batch.pt"),
                     "out": str(root / f"{name}.logits.pt"), "auto": auto})
    (root / "jobs.json").write_text(json.dumps(jobs))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run([sys.executable, "-c", CHILD, str(root / "jobs.json")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"loaded {len(CASES)} checkpoints without ebcore" in done.stdout
    return root, expected


@pytest.mark.parametrize("case", CASES)
def test_hf_checkpoint_loads_without_ebcore_to_identical_logits(case, round_trip):
    root, expected = round_trip
    want, model = expected[case]
    got = torch.load(root / f"{case}.logits.pt")
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert sorted(p.name for p in (root / case).iterdir()) in (["config.json", "model.safetensors"],
                                                              ["config.json", "generation_config.json",
                                                               "model.safetensors"])
    config = json.loads((root / case / "config.json").read_text())
    blocks = eb.get_adapter(model).blocks(model, allow_conv1d=True)
    heads, channels = blocks[-1].num_heads, blocks[-1].num_channels
    if config["model_type"] == "vit":
        assert (config["num_attention_heads"], config["intermediate_size"]) == (heads, channels)
        assert config.get("head_dim", config["hidden_size"] // heads) == blocks[0].head_dim
    elif config["model_type"] == "gpt2":
        assert (config["n_head"], config["n_inner"]) == (heads, channels)
    elif config["model_type"] == "swin":
        assert all(int(config["mlp_ratio"] * b.fc1.in_features) == b.num_channels for b in blocks)
    elif blocks[0].grouped:
        assert (config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"],
                config["intermediate_size"]) == (heads, blocks[-1].kv_heads, blocks[0].head_dim, channels)
    else:
        assert (config["num_attention_heads"], config["intermediate_size"]) == (heads, channels)


def test_swin_ffn_export_writes_a_fractional_mlp_ratio(round_trip):
    root, _ = round_trip
    config = json.loads((root / "swin-ffn" / "config.json").read_text())
    assert config["mlp_ratio"] != 3.0 and int(config["mlp_ratio"] * 24) == 50 and int(config["mlp_ratio"] * 48) == 100
    assert config["num_heads"] == [2, 6]


def test_saving_leaves_the_model_and_the_rng_as_they_were(round_trip, tmp_path):
    _, expected = round_trip
    want, model = expected["gpt2-unprepared-dense"]
    assert needs_preparation(model), "the unprepared GPT-2 was not converted in place"
    assert torch.equal(logits(model, make_batch("gpt2")), want)
    model = pruned("bert", 0.0, 0.3).train()
    torch.manual_seed(7)
    state = torch.get_rng_state()
    save_pruned(model, tmp_path / "m", format="hf")
    assert torch.equal(torch.get_rng_state(), state), "building the stock model must not move the global RNG"
    assert model.training, "the model's training mode is restored"


# --- what a stock config cannot describe ------------------------------------------------------------

def prune_to(model, widths):
    """Prune `model` to (heads, channels) per layer, keeping the first units (uneven masks by hand)."""
    model = eb.prepare_model(model)
    blocks = eb.get_adapter(model).blocks(model)
    eb.prune_model(model, Mask(tuple(LayerMask(h if isinstance(h, tuple) else range(h), range(c), b.num_heads,
                                               b.num_channels, b.head_dim, b.group_size)
                                     for b, (h, c) in zip(blocks, widths))))
    return model


def test_uneven_widths_are_refused_naming_the_layer_and_width(tmp_path):
    model = prune_to(make_model("vit"), [(3, 150), (3, 140)])
    with pytest.raises(eb.NotPortableError, match=r"layer vit\.layers\.1 keeps 3 heads and 140 FFN channels.*"
                                                  r"ViTConfig has one width.*uniform=True.*format='ebcore'"):
        save_pruned(model, tmp_path / "m", format="hf")
    assert not (tmp_path / "m").exists(), "nothing is written when the export is refused"
    save_pruned(model, tmp_path / "m")                                  # the ebcore format holds any widths


def test_uneven_kv_heads_are_refused(tmp_path):
    model = prune_to(make_model("llama"), [(tuple(range(8)), 100), ((0, 1, 4, 5), 100)])
    with pytest.raises(eb.NotPortableError, match=r"layer model\.layers\.1 keeps 4 heads on 2 KV heads and 100 FFN "
                                                  r"channels, but layer model\.layers\.0 keeps 8 heads on 2 KV heads"):
        save_pruned(model, tmp_path / "m", format="hf")
    model = prune_to(make_model("llama"), [((0, 1, 2, 3), 100), ((0, 1, 4, 5), 100)])
    with pytest.raises(eb.NotPortableError, match=r"keeps 4 heads on 2 KV heads .* but layer model\.layers\.0 keeps "
                                                  r"4 heads on 1 KV heads"):
        save_pruned(model, tmp_path / "m", format="hf")


def test_head_counts_transformers_refuses_are_a_clear_error(tmp_path):
    model = pruned("llama", 0.3, 0.0)                                    # 6 query heads; hidden size 128
    with pytest.raises(eb.NotPortableError, match=r"layer model\.layers\.0 keeps 6 heads on 2 KV heads.*refuses a "
                                                  r"LlamaConfig.*hidden size \(128\) is not a multiple.*head_ratio=0"):
        save_pruned(model, tmp_path / "m", format="hf")
    assert not (tmp_path / "m").exists()


def test_swin_ffn_widths_without_one_mlp_ratio_are_refused(tmp_path):
    model = prune_to(make_model("swin"), [(2, 50), (2, 40), (6, 100)])
    with pytest.raises(eb.NotPortableError, match=r"swin\.encoder\.layers\.0\.blocks\.0 keeps 50 FFN channels of its "
                                                  r"width 24.*one mlp_ratio.*uniform=True"):
        save_pruned(model, tmp_path / "m", format="hf")
    # Truncation (int(mlp_ratio * width)) makes some uneven-looking widths expressible: 50 of 24 and 101 of 48.
    model = prune_to(make_model("swin"), [(2, 50), (2, 50), (6, 101)])
    save_pruned(model, tmp_path / "m", format="hf")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert int(config["mlp_ratio"] * 24) == 50 and int(config["mlp_ratio"] * 48) == 101


@pytest.mark.parametrize("family,rule", [("bert", "hidden_size / num_attention_heads = 192 / 4"),
                                         ("roberta", "hidden_size / num_attention_heads = 96 / 2"),
                                         ("gpt2", "n_embd / n_head = 192 / 4"),
                                         ("gpt2_lm", "n_embd / n_head = 192 / 4"),
                                         ("swin", r"stage width / num_heads\[0\] = 24 / 1")])
def test_pruned_heads_are_refused_where_the_config_derives_the_head_size(family, rule, tmp_path):
    model = eb.prepare_model(make_model(family))
    eb.prune_model(model, eb.draw_mask(model, head_ratio=0.34, ffn_ratio=0.3, uniform=True))
    first = eb.get_adapter(model).blocks(model)[0].name.replace(".", r"\.")
    with pytest.raises(eb.NotPortableError, match=rf"layer {first} keeps \d of \d attention heads \(head size \d+\).*"
                                                  rf"{rule}.*head_ratio=0.*format='ebcore'"):
        save_pruned(model, tmp_path / "m", format="hf")
    assert not (tmp_path / "m").exists()


def test_overwrite_semantics_and_arguments(tmp_path):
    model = pruned("vit", 0.34, 0.3)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "notes.txt").write_text("mine")
    with pytest.raises(eb.CheckpointExistsError, match="overwrite=True"):
        save_pruned(model, tmp_path / "m", format="hf")
    assert (tmp_path / "m" / "notes.txt").read_text() == "mine"
    save_pruned(model, tmp_path / "m", format="hf", overwrite=True)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    with pytest.raises(eb.InvalidArgumentError, match="unknown format 'huggingface'"):
        save_pruned(model, tmp_path / "n", format="huggingface")
    with pytest.raises(eb.InvalidArgumentError, match="extra is stored only by format='ebcore'"):
        save_pruned(model, tmp_path / "n", format="hf", extra={"a": 1})
    with pytest.raises(eb.CheckpointError, match="format='hf'.*from_pretrained"):
        load_pruned(tmp_path / "m")
    assert math.isfinite(float(logits(model, make_batch("vit")).sum()))
