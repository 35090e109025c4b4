"""Typed records of one experiment's sizes: the data slice, the training settings, and `FamilySpec`,
everything that sizes one family under one profile (built by ebcore.study.families.get_spec).

`FamilySpec.key()` is the record that names run folders (ebcore.study.paths): two runs with the same
key share a folder and are reused. Its layout is kept stable: a training setting that is unset
(`check_every_steps=None`) is left out of it, so the keys of existing runs stay valid.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

ALL = 10**9  # a data size larger than any split: "every sample"


@dataclass(frozen=True)
class ImageData:
    """An image data set and the slice of it an experiment uses."""

    dataset: str       # a name in ebcore.study.splits.DATASETS
    train: int
    val: int           # held out of the train split
    test: int
    image_size: int
    channels: int


@dataclass(frozen=True)
class TextData:
    """A text classification data set, the slice used and the token length."""

    dataset: str
    train: int
    val: int
    test: int
    max_length: int


DataSlice = ImageData | TextData


@dataclass(frozen=True)
class TrainSettings:
    """Training defaults of a family under a profile (ebcore.study.train.TrainConfig fields)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_fraction: float
    check_every_steps: int | None = None   # early-bird checks every N steps (None: at epoch ends)

    def loop_kwargs(self) -> dict[str, Any]:
        """The fields the training loop takes (the check schedule is the watcher's, not the loop's)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "check_every_steps"}


def _key_fields(items: list[tuple[str, Any]]) -> dict[str, Any]:
    # The default controls choose which runs happen and the seed processes how they are scheduled, not what any
    # run computes, so neither names the run folders (adding a control orphans nothing). The thread count
    # changes the numbers in their last bits: it names each run through its own parameters (study.runners).
    skip = ("controls", "threads", "workers")
    return {k: v for k, v in items if not (k == "check_every_steps" and v is None) and k not in skip}


@dataclass(frozen=True)
class FamilySpec:
    """Everything that sizes one family's experiment under one profile."""

    family: str
    profile: str
    model: dict                      # config kwargs of the transformers model class
    data: DataSlice
    train: TrainSettings
    threshold: float                 # early-bird distance threshold (ebcore.defaults: 0.1 vision, 0.01 text)
    modes: tuple[str, ...]           # default retrain modes (ebcore.study.kinds.MODES)
    seeds: tuple[int, ...] = (0,)    # default seeds
    workers: int = 1                 # seeds run as parallel processes
    threads: int | None = None       # torch's CPU threads per seed process (None: torch's default)
    precision: str = "fp32"          # fp32, bf16 or fp16
    align: int = 1                   # kept widths rounded to multiples of this
    criterion: str = "magnitude"     # default importance criterion of the detectors
    controls: tuple[str, ...] = ("random", "converged", "same_flops", "small_dense")
    pretrained: bool = False         # starts from pretrained weights (MiniLM, or hub weights in `paper`)
    hub_name: str | None = None      # `paper` profile: hub checkpoint, when online
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def is_vision(self) -> bool:
        return isinstance(self.data, ImageData)

    def with_overrides(self, model: dict | None = None, data: dict | None = None, train: dict | None = None,
                       **kw: Any) -> "FamilySpec":
        """A copy with some model kwargs, data sizes or training settings replaced."""
        return replace(self, model={**self.model, **(model or {})}, data=replace(self.data, **(data or {})),
                       train=replace(self.train, **(train or {})), **kw)

    def key(self) -> dict[str, Any]:
        """The record that names this spec's run folders (stable layout: see the module docstring)."""
        return asdict(self, dict_factory=_key_fields)
