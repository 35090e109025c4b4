"""Property-based check of the core contracts on random shapes of every family (hypothesis): pruned ==
soft-masked, achieved structure == mask, save -> load exact, frozen parameters stay frozen.

Bounded for CI: a few dozen tiny models, derandomized (the same examples on every run), no example database.
"""
import tempfile

import pytest
import torch
import transformers as T
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ebcore as eb
from ebcore.graph import ModelGraph
from ebcore.io import load_pruned, save_pruned
from conftest import make_batch

FAMILIES = ("vit", "swin", "gpt2", "gpt2_lm", "roberta", "bert")


@st.composite
def model_cases(draw):
    family = draw(st.sampled_from(FAMILIES))
    heads = draw(st.integers(1, 4))
    head_dim = draw(st.sampled_from([2, 4, 6, 8]))
    layers = draw(st.integers(1, 3))
    ffn = draw(st.integers(2, 40))
    return {"family": family, "heads": heads, "head_dim": head_dim, "layers": layers, "ffn": ffn,
            "ratio": draw(st.floats(0.0, 0.9, allow_nan=False)),
            "scope": draw(st.sampled_from(["layerwise", "global"])),
            "frozen": draw(st.lists(st.booleans(), min_size=8, max_size=8)),
            "seed": draw(st.integers(0, 2**16))}


def build(case) -> torch.nn.Module:
    torch.manual_seed(case["seed"])
    family, h, hd, n, ffn = case["family"], case["heads"], case["head_dim"], case["layers"], case["ffn"]
    hidden = h * hd
    if family == "vit":
        cfg = T.ViTConfig(hidden_size=hidden, num_hidden_layers=n, num_attention_heads=h, intermediate_size=ffn,
                          image_size=16, patch_size=4, num_channels=1, num_labels=3)
        model = T.ViTForImageClassification(cfg)
    elif family == "swin":
        # Two stages; the second doubles width and heads, so every block has head dim `hd`.
        cfg = T.SwinConfig(image_size=16, patch_size=2, num_channels=1, embed_dim=hidden, depths=[n, 1],
                           num_heads=[h, 2 * h], window_size=4, num_labels=3, mlp_ratio=max(ffn, hidden) / hidden)
        model = T.SwinForImageClassification(cfg)
    elif family in ("gpt2", "gpt2_lm"):
        cfg = T.GPT2Config(n_embd=hidden, n_layer=n, n_head=h, vocab_size=101, n_positions=32, n_inner=ffn,
                           bos_token_id=0, eos_token_id=0, pad_token_id=0, num_labels=2)
        model = T.GPT2LMHeadModel(cfg) if family == "gpt2_lm" else T.GPT2ForSequenceClassification(cfg)
        eb.prepare_model(model)
    elif family == "roberta":
        cfg = T.RobertaConfig(hidden_size=hidden, num_hidden_layers=n, num_attention_heads=h, intermediate_size=ffn,
                              vocab_size=101, max_position_embeddings=40, num_labels=2)
        model = T.RobertaForSequenceClassification(cfg)
    else:
        cfg = T.BertConfig(hidden_size=hidden, num_hidden_layers=n, num_attention_heads=h, intermediate_size=ffn,
                           vocab_size=101, max_position_embeddings=40, num_labels=2)
        model = T.BertForSequenceClassification(cfg)
    return model.eval()


def out(model, batch) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=model_cases())
def test_contracts_hold_for_random_shapes(case):
    model = build(case)
    batch = make_batch(case["family"], batch=2)
    params = list(model.named_parameters())
    for (name, p), frozen in zip(params, case["frozen"] * (len(params) // 8 + 1)):
        p.requires_grad_(not frozen)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}

    mask = eb.draw_mask(model, case["ratio"], scope=case["scope"])
    graph = ModelGraph.build(model, prepare=False)
    assert mask.head_dims == [b.head_dim for b in graph.blocks]
    assert mask.structure == graph.structure()
    with eb.soft_masked(model, mask):
        soft = out(model, batch)

    report = eb.prune_model(model, mask)
    pruned = out(model, batch)
    assert (pruned - soft).abs().max().item() <= 1e-4 * max(1.0, soft.abs().max().item())
    assert report.structure_after == mask.kept_structure
    assert ModelGraph.build(model).structure() == mask.kept_structure
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags, "frozen parameters must stay frozen"

    with tempfile.TemporaryDirectory() as tmp:
        save_pruned(model, tmp, overwrite=True)
        back = load_pruned(tmp)
    assert not back.training
    assert torch.equal(out(back, batch), pruned)
    assert {k: v.shape for k, v in back.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
