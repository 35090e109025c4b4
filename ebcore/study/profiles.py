"""The run profiles: the same experiment at different sizes, one typed entry each.

    PROFILES["cpu"].seeds        # (0, 1, 2)
    get_profile("gpu").precision # "bf16"

A profile sets the run-wide defaults here (seeds, parallel seed processes, precision, kept-width
alignment) and, per family, the model, data and training sizes (ebcore.study.families). Adding a
profile is one entry here plus its sizes in each family's table.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidArgumentError


@dataclass(frozen=True)
class Profile:
    """Run-wide defaults of one profile."""

    name: str
    description: str
    seeds: tuple[int, ...] = (0,)    # default seeds
    workers: int = 1                 # seeds run as this many parallel processes
    precision: str = "fp32"          # training precision (ebcore.study.precision): fp32, bf16 or fp16
    align: int = 1                   # kept heads x head_dim and FFN channels rounded to multiples of this
    scratch: bool = False            # results are git-ignored scratch, left out of results/README.md


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("ci", "tiny models and data slices: every notebook in a minute or two on 2 CPU cores", scratch=True),
    Profile("cpu", "small models on real data: meaningful numbers on a 2-core machine (the default)",
            seeds=(0, 1, 2)),
    # On a GPU: 3 seed processes at once, bf16 autocast and kept widths in multiples of 8 (tensor-core
    # tiles; see bench/README.md, not yet measured on a GPU).
    Profile("gpu", "the offline data at full size, models closer to the study's, bf16, 3 seeds as 3 processes; "
            "one H100-class GPU", seeds=(0, 1, 2), workers=3, precision="bf16", align=8),
    Profile("paper", "the study's scale (CIFAR-10, IMDB and hub checkpoints; needs the network and a GPU)"),
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
