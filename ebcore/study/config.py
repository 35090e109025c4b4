"""What one experiment runs: `ExperimentConfig`, the settings a user gives (every field is a notebook parameter
and a command-line option; `None` means the family's and profile's default), and `Settings`, the frozen,
validated record with a concrete value for everything, which every layer of the study receives.

    cfg = ExperimentConfig("vit", profile="cpu", ratios=[0.2, 0.4])   # checked field by field, no torch needed
    settings = cfg.resolve()          # Settings: sizes, ratios, control ratios, threshold, seeds, schedule ...
    settings.results_path()           # results/vit/cpu+<hash>/: a folder holds only runs made with its settings

A bad value is refused when the config is built, with one `SettingsError` that names the field, the value
and the valid range: before any folder, kernel or model exists. Strings (papermill's `-p NAME VALUE` without
YAML, `--set NAME=VALUE`) are parsed the same way everywhere (`parse_value`).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

from ..defaults import WINDOW
from . import paths
from .errors import SettingsError
from .families import FAMILIES, get_family
from .kinds import MODES, RUN_KINDS, control_names
from .profiles import PROFILES
from .specs import FamilySpec

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def parse_value(text: Any) -> Any:
    """A parameter value given as text, read as YAML: "[0.2,0.4]" -> [0.2, 0.4], "3" -> 3, "1e-4" -> 0.0001,
    "null" / "None" -> None, "true" -> True; anything else stays a string. Non-strings are returned as given."""
    if not isinstance(text, str):
        return text
    if text.strip() in ("None", "none"):
        return None
    if _NUMBER.match(text.strip()):  # YAML 1.1 reads "1e-4" as a string
        return int(text) if re.fullmatch(r"[+-]?\d+", text.strip()) else float(text)
    import yaml
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _help(text: str, default: Any = None, **kw: Any) -> Any:
    return field(default=default, metadata={"help": text}, **kw)


@dataclass
class ExperimentConfig:
    """What to run. `None` fields take the family's and profile's defaults (resolved by `resolve()`)."""

    family: str = _help("model family: " + ", ".join(FAMILIES))
    profile: str = _help("ci (a fast check), cpu (2 CPU cores, the default), gpu (full offline data, one GPU), "
                         "paper (the study's scale)", "cpu")
    seeds: tuple[int, ...] | None = _help("seeds, e.g. [0, 1, 2]; None: the profile's (3 in cpu and gpu)")
    workers: int | None = _help("seeds run as this many parallel processes; None: the profile's")
    threads: int | None = _help("torch's CPU threads in each seed's process; None: the profile's (1 in cpu, where "
                                "the seeds run side by side; torch's default elsewhere). It changes the numbers in "
                                "their last bits, so it names the run folders")
    ratios: tuple[float, ...] = _help("fractions of heads and of FFN channels pruned, each in [0, 1)", (0.1, 0.3, 0.5))
    control_ratios: tuple[float, ...] | None = _help("the controls run at these ratios (each one of `ratios`); "
                                                     "None: 0.3 when watched, else the middle ratio")
    controls: tuple[str, ...] | None = _help("controls: " + " / ".join(control_names()) + "; None: the family's")
    modes: tuple[str, ...] | None = _help("retrain modes: " + " / ".join(MODES) + "; None: the profile's "
                                          "(continue)")
    threshold: float | None = _help("mask-distance threshold in [0, 1]; None: the architecture's (0.1 vision, "
                                    "0.01 text, the study's)")
    window: int = _help("Early-Bird's window rule: masks in the window (the consecutive rule uses 2)", WINDOW)
    rule: str = _help('which ticket is retrained: "consecutive" (the study) or "window"', "consecutive")
    continue_schedule: str = _help('after the ticket, `continue` "follow"s the dense run\'s learning-rate schedule '
                                   "from the ticket's step with the kept weights' AdamW state, or \"restart\"s "
                                   "AdamW and warm-up + cosine over the rest of the budget", "follow")
    scope: str = _help('"layerwise" or "global" (one ranking over all layers)', "layerwise")
    criterion: str | None = _help('importance: "magnitude" or "taylor"; None: the family\'s')
    distance: str = _help('"combined" (heads weighted by head_dim), "heads" or "channels"', "combined")
    check_every_steps: int | None = _help("None: the profile's (epoch ends, or every N steps when fine-tuning)")
    epochs: int | None = _help("training budget in epochs; None: the profile's")
    batch_size: int | None = _help("None: the profile's")
    lr: float | None = _help("peak learning rate; None: the profile's")
    train_size: int | None = _help("training samples; None: the profile's")
    precision: str | None = _help("fp32 / bf16 / fp16 (CUDA); None: the profile's (bf16 in gpu)")
    align: int | None = _help("kept widths rounded to multiples of N (ebcore.align); None: the profile's (8 in gpu)")
    device: str | None = _help("auto / cpu / cuda / cuda:N; None: CUDA when available, else CPU")
    results_dir: str = _help("results folder (tables, figures, executed notebooks)", "results")
    runs_dir: str = _help("run folders; finished runs are reused", "runs")
    progress: bool = _help("progress bars per run and epoch", True)

    def __post_init__(self) -> None:
        for f in fields(self):
            setattr(self, f.name, _CHECKS[f.name](f.name, parse_value(getattr(self, f.name))))
        fam = FAMILIES[self.family]
        for m in self.modes or ():
            if MODES[m].start == "pretrained" and self.profile not in fam.pretrained_in:
                raise SettingsError(f"modes: retrain mode {m!r} starts from pretrained weights, which {self.family} "
                                    f"has none of in profile {self.profile!r}; use 'scratch' or 'continue'")
        if self.control_ratios is not None:
            unwatched = [r for r in self.control_ratios if r not in self.ratios]
            if unwatched:
                raise SettingsError(f"control_ratios = {list(self.control_ratios)}: {unwatched} not among ratios "
                                    f"{list(self.ratios)}; a control is compared with the ticket at its ratio: add "
                                    "them to ratios, or leave control_ratios unset")

    @classmethod
    def parameter_names(cls) -> tuple[str, ...]:
        """Every field of the config: each one is a notebook parameter and a CLI option."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def parameter_help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in fields(cls)}

    @classmethod
    def from_params(cls, params: Mapping[str, Any], strict: bool = False) -> "ExperimentConfig":
        """A config from a mapping of parameters (a notebook's globals, CLI options).

        Keys that are not config fields are ignored, or refused with `strict=True`."""
        names = set(cls.parameter_names())
        unknown = sorted(k for k in params if k not in names)
        if strict and unknown:
            raise SettingsError(f"unknown experiment parameter(s) {unknown}; valid names: {sorted(names)}")
        return cls(**{k: v for k, v in params.items() if k in names})

    def resolve(self) -> "Settings":
        """The frozen record with every default filled in (the family's, the profile's, the architecture's)."""
        return _resolve(self)


# --- field checks: value (already parsed) -> normalized value, or SettingsError naming field, value, range ----

def _bad(name: str, value: Any, valid: str) -> SettingsError:
    return SettingsError(f"{name} = {value!r} is not valid; expected {valid}")


def _choice(options: Callable[[], Any], optional: bool = False) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if value is None and optional:
            return None
        choices = tuple(options())
        if not isinstance(value, str) or value not in choices:
            raise _bad(name, value, "one of " + ", ".join(map(str, choices)) + (" or None" if optional else ""))
        return value
    return check


def _integer(low: int, optional: bool = True) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise _bad(name, value, f"an integer >= {low}" + (" or None" if optional else ""))
        return value
    return check


def _real(low: float, high: float, low_open: bool, optional: bool = True) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if value is None and optional:
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
            and (value > low if low_open else value >= low) and value <= high
        if not ok:
            rng = f"{'(' if low_open else '['}{low:g}, {high:g}]" if math.isfinite(high) else f"> {low:g}"
            raise _bad(name, value, f"a number in {rng}" + (" or None" if optional else ""))
        return float(value)
    return check


def _as_tuple(value: Any) -> tuple | None:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return None


def _ratio_list(optional: bool) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if value is None and optional:
            return None
        items = (value,) if isinstance(value, (int, float)) and not isinstance(value, bool) else _as_tuple(value)
        valid = "a non-empty list of distinct ratios in [0, 1), e.g. [0.3, 0.5]" + (" or None" if optional else "")
        if not items or any(isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 <= r < 1
                            for r in items) or len(set(items)) != len(items):
            raise _bad(name, value, valid)
        return tuple(float(r) for r in items)
    return check


def _names(options: Callable[[], Any]) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if value is None:
            return None
        items = (value,) if isinstance(value, str) else _as_tuple(value)
        choices = tuple(options())
        if items is None or any(v not in choices for v in items) or len(set(items)) != len(items):
            raise _bad(name, value, f"a list of distinct names from {', '.join(choices)} (or None)")
        return items
    return check


def _seeds(name: str, value: Any) -> Any:
    if value is None:
        return None
    items = (value,) if isinstance(value, int) and not isinstance(value, bool) else _as_tuple(value)
    if not items or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in items) \
            or len(set(items)) != len(items):
        raise _bad(name, value, "a non-empty list of distinct integers >= 0, e.g. [0, 1, 2] (or None)")
    return items


def _device(name: str, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str) or not _DEVICE.match(value):
        raise _bad(name, value, "auto, cpu, cuda, cuda:N or mps (or None)")
    return value


def _folder(name: str, value: Any) -> Any:
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise _bad(name, value, "a folder path")
    return str(value)


def _flag(name: str, value: Any) -> Any:
    if not isinstance(value, bool):
        raise _bad(name, value, "true or false")
    return value


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "family": _choice(lambda: FAMILIES), "profile": _choice(lambda: PROFILES),
    "seeds": _seeds, "workers": _integer(1), "threads": _integer(1),
    "ratios": _ratio_list(optional=False), "control_ratios": _ratio_list(optional=True),
    "controls": _names(control_names), "modes": _names(lambda: MODES),
    "threshold": _real(0.0, 1.0, low_open=False), "window": _integer(2, optional=False),
    "rule": _choice(lambda: ("consecutive", "window")),
    "continue_schedule": _choice(lambda: ("follow", "restart")), "scope": _choice(lambda: ("layerwise", "global")),
    "criterion": _choice(lambda: ("magnitude", "taylor"), optional=True),
    "distance": _choice(lambda: ("combined", "heads", "channels")),
    "check_every_steps": _integer(1), "epochs": _integer(1), "batch_size": _integer(1),
    "lr": _real(0.0, math.inf, low_open=True), "train_size": _integer(1),
    "precision": _choice(lambda: ("fp32", "bf16", "fp16"), optional=True), "align": _integer(1),
    "device": _device, "results_dir": _folder, "runs_dir": _folder, "progress": _flag,
}


# --- the resolved record ----------------------------------------------------------------------------

# Settings that change what a run computes; the others (seeds, workers, device, folders, progress) do not
# name the results folder (seeds merge into one folder).
RESULT_SETTINGS = ("ratios", "control_ratios", "modes", "controls", "threshold", "window", "rule",
                   "continue_schedule", "scope",
                   "criterion", "distance", "check_every_steps", "epochs", "batch_size", "lr", "train_size",
                   "precision", "align", "threads")


@dataclass(frozen=True)
class Settings:
    """One experiment's settings with every default resolved: what every layer of the study receives."""

    family: str
    profile: str
    spec: FamilySpec                    # sizes (model, data, training) with this experiment's overrides
    ratios: tuple[float, ...]
    control_ratios: tuple[float, ...]
    modes: tuple[str, ...]
    controls: tuple[str, ...]
    threshold: float
    window: int
    rule: str
    continue_schedule: str              # "follow" the dense schedule and AdamW state after the ticket, or "restart"
    scope: str
    criterion: str
    distance: str
    check_every_steps: int | None       # None: checks at epoch ends
    seeds: tuple[int, ...]
    workers: int
    threads: int | None                 # torch's CPU threads per seed process (None: torch's default)
    precision: str
    align: int
    device: str | None
    results_dir: str
    runs_dir: str
    progress: bool
    overrides: tuple[tuple[str, Any], ...] = ()   # result settings that differ from the profile's defaults

    # -- derived values ------------------------------------------------------------------------------
    @property
    def epochs(self) -> int:
        return self.spec.train.epochs

    @property
    def batch_size(self) -> int:
        return self.spec.train.batch_size

    @property
    def lr(self) -> float:
        return self.spec.train.lr

    @property
    def train_size(self) -> int:
        return self.spec.data.train

    @property
    def headline_mode(self) -> str:
        """The retrain mode the verdicts are drawn from: `continue` when it runs, else the first mode."""
        return "continue" if "continue" in self.modes else self.modes[0]

    @property
    def cost_ratio(self) -> float:
        """The ratio at which the EB pipeline's cost is judged and the same-FLOPs dense baseline is matched to
        it: 0.5 when it is watched, else the largest ratio."""
        return 0.5 if 0.5 in self.ratios else max(self.ratios)

    def kind_ratios(self, kind: str) -> tuple[float, ...]:
        """The ratios a control kind runs at (ebcore.study.kinds.RunKind.at)."""
        return RUN_KINDS[kind].ratios(self.control_ratios, self.cost_ratio)

    @property
    def folder_name(self) -> str:
        """The results folder's name: the profile, plus a hash of the overrides when there are any."""
        if not self.overrides:
            return self.profile
        digest = hashlib.sha1(json.dumps(dict(self.overrides), sort_keys=True, default=str).encode()).hexdigest()
        return f"{self.profile}+{digest[:8]}"

    @property
    def canonical(self) -> bool:
        return not self.overrides

    def results_path(self) -> Path:
        return paths.results_folder(self.results_dir, self.family, self.folder_name)

    def seed_dir(self, seed: int) -> Path:
        return paths.seed_folder(self.runs_dir, self.family, self.profile, seed)

    def control_kinds(self) -> list[str]:
        return [c for c in self.controls if c in RUN_KINDS]

    def as_record(self) -> dict[str, Any]:
        """A JSON-able record (config.json): every resolved value, the overrides, folders relative to the repo."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("spec", "overrides")}
        out.update(results_dir=paths.relative_to_repo(self.results_dir), runs_dir=paths.relative_to_repo(self.runs_dir),
                   epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, train_size=self.train_size,
                   headline_mode=self.headline_mode, cost_ratio=self.cost_ratio, spec=asdict(self.spec), overrides=dict(self.overrides),
                   results_folder=self.folder_name)
        return json.loads(json.dumps(out, default=str))


def _spec(cfg: ExperimentConfig) -> FamilySpec:
    base = get_family(cfg.family).spec(cfg.profile)
    train = {k: v for k, v in {"epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr}.items()
             if v is not None}
    data = {"train": cfg.train_size} if cfg.train_size else {}
    return base.with_overrides(train=train, data=data)


def _values(cfg: ExperimentConfig) -> dict[str, Any]:
    spec = _spec(cfg)
    ratios = tuple(cfg.ratios)
    if cfg.control_ratios is not None:
        control_ratios = tuple(cfg.control_ratios)
    else:
        control_ratios = (0.3,) if 0.3 in ratios else (sorted(ratios)[(len(ratios) - 1) // 2],)
    return dict(
        family=cfg.family, profile=cfg.profile, spec=spec, ratios=ratios, control_ratios=control_ratios,
        modes=tuple(cfg.modes) if cfg.modes else spec.modes,
        controls=tuple(cfg.controls) if cfg.controls is not None else spec.controls,
        threshold=spec.threshold if cfg.threshold is None else cfg.threshold, window=cfg.window, rule=cfg.rule,
        continue_schedule=cfg.continue_schedule,
        scope=cfg.scope, criterion=cfg.criterion or spec.criterion, distance=cfg.distance,
        check_every_steps=cfg.check_every_steps or spec.train.check_every_steps,
        seeds=tuple(cfg.seeds) if cfg.seeds is not None else spec.seeds,
        workers=cfg.workers or spec.workers, threads=cfg.threads or spec.threads, precision=cfg.precision or spec.precision,
        align=cfg.align if cfg.align is not None else spec.align, device=cfg.device,
        results_dir=str(cfg.results_dir), runs_dir=str(cfg.runs_dir), progress=cfg.progress)


def _resolve(cfg: ExperimentConfig) -> Settings:
    values = _values(cfg)
    defaults = _values(ExperimentConfig(cfg.family, cfg.profile))
    chosen = {"epochs": values["spec"].train.epochs, "batch_size": values["spec"].train.batch_size,
              "lr": values["spec"].train.lr, "train_size": values["spec"].data.train}
    default_sizes = {"epochs": defaults["spec"].train.epochs, "batch_size": defaults["spec"].train.batch_size,
                     "lr": defaults["spec"].train.lr, "train_size": defaults["spec"].data.train}
    overrides = []
    for name in RESULT_SETTINGS:
        mine, theirs = (chosen[name], default_sizes[name]) if name in chosen else (values[name], defaults[name])
        if mine != theirs:
            overrides.append((name, list(mine) if isinstance(mine, tuple) else mine))
    return Settings(**values, overrides=tuple(overrides))
