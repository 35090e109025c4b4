"""The run profiles: the same experiment at different sizes, one typed entry each, holding every size it
sets in one place.

    PROFILES["cpu"].seeds                 # (0, 1, 2)
    PROFILES["cpu"].data["vision"]        # ImageData: Fashion-MNIST, 8,000 training images, all 10,000 test
    PROFILES["cpu"].models["text"]        # widths of the text models trained from scratch

A profile sets the run-wide defaults (seeds, parallel seed processes, precision, kept-width alignment) and
the sizes of each *size class*: data slices and training settings per domain ("vision", "text",
"finetune"), and model widths per architecture ("vit", "swin", "text", "minilm"). A family
(ebcore.study.families) names the size classes it uses, so adding a profile is one entry here, and a
family that reuses a size class (DeiT would use "vit"; BERT from scratch uses "text") adds nothing here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ..errors import InvalidArgumentError
from .specs import ALL, DataSlice, ImageData, TextData, TrainSettings


@dataclass(frozen=True)
class Profile:
    """Run-wide defaults and the sizes of one profile."""

    name: str
    description: str
    data: Mapping[str, DataSlice] = field(default_factory=dict)        # size class -> data slice
    train: Mapping[str, TrainSettings] = field(default_factory=dict)   # size class -> training settings
    models: Mapping[str, dict] = field(default_factory=dict)           # architecture -> model widths
    seeds: tuple[int, ...] = (0,)    # default seeds
    workers: int = 1                 # seeds run as this many parallel processes
    threads: int | None = None       # torch's CPU threads per seed process (None: torch's default)
    precision: str = "fp32"          # training precision (ebcore.study.precision): fp32, bf16 or fp16
    align: int = 1                   # kept heads x head_dim and FFN channels rounded to multiples of this
    scratch: bool = False            # results are git-ignored scratch, left out of results/README.md


def _fmnist(train: int, val: int, test: int) -> ImageData:
    return ImageData("fashion_mnist", train, val, test, image_size=28, channels=1)


def _text(hidden: int, layers: int, heads: int, ffn: int) -> dict:
    """Widths of a text model trained from scratch (each family maps them to its config's names)."""
    return dict(hidden=hidden, layers=layers, heads=heads, ffn=ffn)


def _vision(data: ImageData, swin_data: ImageData | None = None) -> dict[str, ImageData]:
    return {"vision": data, "vision_swin": swin_data or data}


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile(
        "ci", "tiny models and data slices: every notebook in a minute or two on 2 CPU cores (git-ignored scratch)",
        data={**_vision(_fmnist(512, 128, 256)), "text": TextData("rotten_tomatoes", 512, 128, 256, max_length=32),
              "finetune": TextData("rotten_tomatoes", 256, 64, 128, max_length=32)},
        train={"vision": TrainSettings(epochs=4, batch_size=64, lr=2e-3, weight_decay=0.05, warmup_fraction=0.1),
               "text": TrainSettings(epochs=4, batch_size=64, lr=1e-3, weight_decay=0.05, warmup_fraction=0.1),
               "finetune": TrainSettings(epochs=2, batch_size=32, lr=5e-5, weight_decay=0.01, warmup_fraction=0.1,
                                         check_every_steps=2)},
        models={"vit": dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=3, intermediate_size=96,
                            patch_size=7),
                "swin": dict(embed_dim=24, depths=[1, 1], num_heads=[2, 4], patch_size=2, window_size=7,
                             mlp_ratio=2.0),
                "text": _text(48, 2, 3, 96),
                "minilm": {"num_hidden_layers": 2}},   # the first 2 of MiniLM's 6 pretrained layers, to stay fast
        scratch=True),
    Profile(
        "cpu", "small models on real data: meaningful numbers on a 2-core machine (the default)",
        # every test image: one accuracy's standard error is about 0.4 points; text: the whole test split
        data={**_vision(_fmnist(8000, 1000, 10000)),
              "text": TextData("rotten_tomatoes", 3000, 600, ALL, max_length=48),
              "finetune": TextData("rotten_tomatoes", 1000, 200, ALL, max_length=40)},
        train={"vision": TrainSettings(epochs=10, batch_size=64, lr=2e-3, weight_decay=0.05, warmup_fraction=0.1),
               "text": TrainSettings(epochs=10, batch_size=64, lr=1e-3, weight_decay=0.05, warmup_fraction=0.1),
               # lr 1e-4: at 5e-5 one seed in three was still at the majority class after these 64 steps.
               "finetune": TrainSettings(epochs=2, batch_size=32, lr=1e-4, weight_decay=0.01, warmup_fraction=0.1,
                                         check_every_steps=4)},
        models={"vit": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256,
                            patch_size=7),
                # patch 4 on 28 px: 7x7 tokens in 4x4 windows (padded), then one 4x4 window.
                "swin": dict(embed_dim=48, depths=[2, 2], num_heads=[2, 4], patch_size=4, window_size=4,
                             mlp_ratio=4.0),
                "text": _text(128, 3, 4, 384),
                "minilm": {}},
        # These models are too small for two threads to help one process (ViT: 47 ms per step with 2 threads,
        # 51 with 1), so the three seeds run as three 1-thread processes: about 1.45x the throughput on 2 cores
        # (two 1-thread processes side by side: 65 ms per step each). The thread count is fixed whatever the
        # number of seeds, so a seed run alone computes the same numbers.
        seeds=(0, 1, 2), workers=3, threads=1),
    # On a GPU: 3 seed processes at once, bf16 autocast and kept widths in multiples of 8 (tensor-core
    # tiles; see bench/README.md, not yet measured on a GPU).
    Profile(
        "gpu", "the offline data at full size, models closer to the study's, bf16, 3 seeds as 3 processes; "
        "one H100-class GPU",
        data={**_vision(_fmnist(54000, 6000, 10000)),     # all of Fashion-MNIST
              "text": TextData("rotten_tomatoes", ALL, ALL, ALL, max_length=64),   # every snippet
              "finetune": TextData("rotten_tomatoes", ALL, ALL, ALL, max_length=64)},
        train={"vision": TrainSettings(epochs=20, batch_size=256, lr=1e-3, weight_decay=0.05, warmup_fraction=0.05),
               "text": TrainSettings(epochs=20, batch_size=64, lr=5e-4, weight_decay=0.05, warmup_fraction=0.05),
               "finetune": TrainSettings(epochs=3, batch_size=32, lr=5e-5, weight_decay=0.01, warmup_fraction=0.06,
                                         check_every_steps=20)},
        # ViT-S widths (384 wide, 6 heads, FFN 1536), 6 layers, patch 4 on 28 px (49 tokens); Swin-T's widths
        # and heads, three stages (28 px, patch 2: 14x14 -> 7x7 -> 4x4 tokens).
        models={"vit": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=6, intermediate_size=1536,
                            patch_size=4),
                "swin": dict(embed_dim=96, depths=[2, 2, 6], num_heads=[3, 6, 12], patch_size=2, window_size=7,
                             mlp_ratio=4.0),
                "text": _text(384, 6, 6, 1536),
                "minilm": {}},
        seeds=(0, 1, 2), workers=3, precision="bf16", align=8),
    Profile(
        "paper", "the study's scale (CIFAR-10, IMDB and hub checkpoints; needs the network and a GPU)",
        data={**_vision(ImageData("cifar10", 45000, 5000, 10000, image_size=32, channels=3),
                        ImageData("cifar10", 45000, 5000, 10000, image_size=224, channels=3)),  # Swin-T at 224 px
              "text": TextData("imdb", 22500, 2500, 25000, max_length=512),
              "finetune": TextData("imdb", 22500, 2500, 25000, max_length=256)},
        train={"vision": TrainSettings(epochs=100, batch_size=128, lr=1e-3, weight_decay=0.05, warmup_fraction=0.05),
               "text": TrainSettings(epochs=5, batch_size=16, lr=2e-5, weight_decay=0.01, warmup_fraction=0.06),
               "finetune": TrainSettings(epochs=3, batch_size=32, lr=5e-5, weight_decay=0.01, warmup_fraction=0.06,
                                         check_every_steps=100)},
        # A ViT for 32x32 CIFAR-10 from scratch (patch 4: 64 tokens), ViT-S widths; Swin-T's real sizes;
        # the text models: the hub checkpoints' sizes.
        models={"vit": dict(hidden_size=384, num_hidden_layers=7, num_attention_heads=6, intermediate_size=1536,
                            patch_size=4),
                "swin": dict(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], patch_size=4,
                             window_size=7, mlp_ratio=4.0),
                "text": _text(768, 12, 12, 3072),
                "minilm": {}}),
)}


def get_profile(name: str) -> Profile:
    """The profile called `name`; a clear error naming the profiles otherwise."""
    if name not in PROFILES:
        raise InvalidArgumentError(f"unknown profile {name!r}; choose one of {tuple(PROFILES)}")
    return PROFILES[name]


def report_order(names: list[str]) -> list[str]:
    """Profiles in the order results/README.md lists them: registry order, unknown names after, scratch last."""
    rank = {name: i for i, name in enumerate(PROFILES)}
    return sorted(names, key=lambda p: (p in PROFILES and PROFILES[p].scratch, rank.get(p, len(rank)), p))
