"""Tiny models of every supported family, with odd shapes (3 or 6 heads, hidden 96 or 192, a Swin whose
stages have different head counts), and matching example batches."""
from __future__ import annotations

import pytest
import torch
import transformers as T

FAMILIES = ("vit", "swin", "gpt2", "gpt2_lm", "roberta", "bert")


def make_model(family: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    if family == "vit":
        cfg = T.ViTConfig(hidden_size=96, num_hidden_layers=2, num_attention_heads=3, intermediate_size=192,
                          image_size=16, patch_size=4, num_channels=1, num_labels=10)
        model = T.ViTForImageClassification(cfg)
    elif family == "swin":
        cfg = T.SwinConfig(image_size=16, patch_size=2, num_channels=1, embed_dim=24, depths=[2, 1],
                           num_heads=[2, 6], window_size=4, num_labels=10, mlp_ratio=3.0)
        model = T.SwinForImageClassification(cfg)
    elif family in ("gpt2", "gpt2_lm"):
        cfg = T.GPT2Config(n_embd=192, n_layer=2, n_head=6, vocab_size=101, n_positions=32, n_inner=288,
                           bos_token_id=0, eos_token_id=0, pad_token_id=0, num_labels=2)
        model = T.GPT2LMHeadModel(cfg) if family == "gpt2_lm" else T.GPT2ForSequenceClassification(cfg)
    elif family == "roberta":
        cfg = T.RobertaConfig(hidden_size=96, num_hidden_layers=2, num_attention_heads=3, intermediate_size=160,
                              vocab_size=101, max_position_embeddings=40, num_labels=2)
        model = T.RobertaForSequenceClassification(cfg)
    elif family == "bert":
        cfg = T.BertConfig(hidden_size=192, num_hidden_layers=2, num_attention_heads=6, intermediate_size=256,
                           vocab_size=101, max_position_embeddings=40, num_labels=3)
        model = T.BertForSequenceClassification(cfg)
    else:
        raise ValueError(family)
    return model.eval()


def make_batch(family: str, batch: int = 3, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    if family in ("vit", "swin"):
        return {"pixel_values": torch.randn(batch, 1, 16, 16, generator=g)}
    ids = torch.randint(3, 101, (batch, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[0, -3:] = 0  # some padding
    return {"input_ids": ids, "attention_mask": mask}


def logits(model, batch) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


@pytest.fixture(params=FAMILIES)
def family(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory):
    """One folder per test session for pipeline runs, shared so later tests reuse finished runs."""
    return tmp_path_factory.mktemp("ebcore-runs")


@pytest.fixture(scope="session")
def ci_results(runs_root):
    """Every family's ci pipeline, run once per session (the notebook tests reuse these runs)."""
    from ebcore.study.experiment import ExperimentConfig, run_experiment
    from ebcore.study.families import FAMILIES as PIPELINE_FAMILIES
    return {family: run_experiment(ExperimentConfig(family, profile="ci", runs_dir=str(runs_root / "runs"),
                                                    results_dir=str(runs_root / "results")))
            for family in PIPELINE_FAMILIES}
