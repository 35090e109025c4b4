"""What one experiment runs: `ExperimentConfig`, whose `None` fields take the family's and profile's
defaults. Every field is a notebook parameter and a command-line option.

    cfg = ExperimentConfig("vit", profile="cpu", seeds=(0, 1, 2))
    cfg.spec()                 # the FamilySpec with this config's overrides (epochs, batch size, lr, data size)
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from ..defaults import WINDOW
from ..masks import check_ratio
from . import paths
from .families import get_spec
from .retrain import MODES, check_names
from .specs import FamilySpec


@dataclass
class ExperimentConfig:
    """What to run. `None` fields take the profile's defaults (ebcore.study.families, ebcore.study.profiles)."""

    family: str
    profile: str = "cpu"
    ratios: tuple[float, ...] = (0.1, 0.3, 0.5)
    modes: tuple[str, ...] | None = None
    controls: tuple[str, ...] | None = None
    control_ratios: tuple[float, ...] = (0.3,)
    rule: str = "consecutive"          # which detector's ticket is retrained: "consecutive" or "window"
    window: int = WINDOW               # Early-Bird's window rule (You et al. 2020)
    threshold: float | None = None     # default: 0.1 vision, 0.01 text (the study's)
    scope: str = "layerwise"
    criterion: str | None = None       # default: the profile's (magnitude; Taylor when fine-tuning)
    distance: str = "combined"
    check_every_steps: int | None = None
    seeds: tuple[int, ...] | None = None   # default: the profile's (3 seeds in cpu and gpu)
    workers: int | None = None         # seeds run as this many parallel processes (default: the profile's)
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    train_size: int | None = None
    precision: str | None = None       # fp32 / bf16 / fp16 (default: the profile's; bf16 in gpu)
    align: int | None = None           # round kept sizes to multiples of N (default: the profile's; 8 in gpu)
    device: str | None = None
    results_dir: str = "results"
    runs_dir: str = "runs"
    progress: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.ratios, (int, float)):
            self.ratios = (self.ratios,)
        self.ratios = tuple(check_ratio(r) for r in self.ratios)
        self.control_ratios = tuple(check_ratio(r) for r in self.control_ratios)
        if self.rule not in ("consecutive", "window"):
            raise ValueError(f"rule must be 'consecutive' or 'window', got {self.rule!r}")
        if isinstance(self.modes, str):
            self.modes = (self.modes,)
        if isinstance(self.controls, str):
            self.controls = (self.controls,)
        check_names(self.modes, self.controls)
        if self.seeds is not None:
            seeds = (self.seeds,) if isinstance(self.seeds, int) and not isinstance(self.seeds, bool) else self.seeds
            try:
                seeds = tuple(seeds)
            except TypeError:
                raise ValueError(f"seeds must be a list of integers >= 0, got {self.seeds!r}") from None
            if not seeds or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds) \
                    or len(set(seeds)) != len(seeds):
                raise ValueError(f"seeds must be a non-empty list of distinct integers >= 0, got {self.seeds!r}")
            self.seeds = seeds
        if self.workers is not None and (not isinstance(self.workers, int) or isinstance(self.workers, bool)
                                         or self.workers < 1):
            raise ValueError(f"workers must be an integer >= 1, got {self.workers!r}")
        spec = self.spec()  # validates family and profile
        for m in self.effective_modes:
            if MODES[m].start == "pretrained" and not spec.pretrained:
                raise ValueError(f"retrain mode 'finetune' starts from pretrained weights, which {self.family} has "
                                 f"none of in profile {self.profile!r}; use 'scratch' or 'continue'")

    @classmethod
    def parameter_names(cls) -> tuple[str, ...]:
        """Every field of the config: each one is a notebook parameter and a CLI option."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_params(cls, params: Mapping[str, Any], strict: bool = False) -> "ExperimentConfig":
        """A config from a mapping of parameters (a notebook's globals, CLI options).

        Keys that are not config fields are ignored, or refused with `strict=True`; lists become tuples.
        """
        names = set(cls.parameter_names())
        unknown = sorted(k for k in params if k not in names)
        if strict and unknown:
            raise ValueError(f"unknown experiment parameter(s) {unknown}; valid names: {sorted(names)}")
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items() if k in names}
        return cls(**kw)

    def spec(self) -> FamilySpec:
        base = get_spec(self.family, self.profile)
        train = {k: v for k, v in {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr}.items()
                 if v is not None}
        data = {"train": self.train_size} if self.train_size else {}
        return base.with_overrides(train=train, data=data)

    @property
    def effective_threshold(self) -> float:
        return self.spec().threshold if self.threshold is None else self.threshold

    @property
    def effective_modes(self) -> tuple[str, ...]:
        return tuple(self.modes) if self.modes else self.spec().modes

    @property
    def effective_controls(self) -> tuple[str, ...]:
        return tuple(self.controls) if self.controls is not None else self.spec().controls

    @property
    def effective_criterion(self) -> str:
        return self.criterion or self.spec().criterion

    @property
    def effective_precision(self) -> str:
        return self.precision or self.spec().precision

    @property
    def effective_align(self) -> int:
        return self.align if self.align is not None else self.spec().align

    @property
    def effective_seeds(self) -> tuple[int, ...]:
        return tuple(self.seeds) if self.seeds is not None else self.spec().seeds

    @property
    def headline_mode(self) -> str:
        """The retrain mode the verdicts are drawn from: `continue` when it ran, else the first mode."""
        modes = self.effective_modes
        return "continue" if "continue" in modes else modes[0]

    @property
    def effective_check_every(self) -> int | None:
        return self.check_every_steps if self.check_every_steps else self.spec().train.check_every_steps

    def results_path(self) -> Path:
        return paths.results_folder(self.results_dir, self.family, self.profile)

    def seed_dir(self, seed: int) -> Path:
        return paths.seed_folder(self.runs_dir, self.family, self.profile, seed)
