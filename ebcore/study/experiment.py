"""The early-bird pipeline for one family and profile over several seeds, with honest controls and
exact cost accounting.

    result = run_experiment(ExperimentConfig("vit", profile="cpu", seeds=(0, 1, 2)))
    result.table          # one row per (seed, run): dense, early-bird tickets, controls

Per seed:
(a) The dense baseline trains for the full budget while two detectors watch every check (epoch, or
    every N steps): the study's consecutive rule (window 2) and Early-Bird's window rule (window 5),
    for every ratio at once, from one scoring pass per check.
(b) Per ratio and retrain mode (`MODES`: scratch / continue / finetune, each saying where its weights
    come from and how long it trains), the ticket of the ruling detector (`rule`) is pruned physically
    and trained.
(c) Controls (`CONTROLS`) at the same ratio, retrained the same way: a random mask, the late ticket (the
    final dense mask), and the one-shot mask of the untrained (or pretrained) model.
(d) Costs. Training FLOPs are counted exactly: forward + backward FLOPs per sample (torch's
    FlopCounterMode) x samples trained on, plus the scoring passes. A run's total is what it pays
    before retraining (`search`: the dense training until the ticket when it starts from the ticket's
    weights, the whole dense run for the late ticket, nothing for a mask trained from the initial
    weights) plus its retraining. Wall time is kept as a secondary, noisy column.

Every run lives in `runs/<family>/<profile>/seed<k>/<kind>-<mode>-p<ratio>-<hash>`; a finished run
(result.json) is reused, an interrupted one resumes from its checkpoint. Tables go to
`results/<family>/<profile>/`.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file
from torch import nn

from . import data as D
from ..detector import EarlyBirdDetector
from ..io import save_pruned
from ..masks import Mask, check_ratio, draw_mask, random_mask
from ..measure import flops_per_sample, folder_bytes, scored_weight_elements, train_flops_per_sample, training_memory
from .paths import relative_to_repo
from .models import FamilySpec, build_model, get_spec
from ..surgery import count_parameters, prune_model
from .train import CHECKPOINT_NAME, TrainConfig, evaluate, pick_device, train
from .watching import EarlyBirdWatch

@dataclass(frozen=True)
class RetrainMode:
    """How a pruned network is retrained: where its weights come from and how long it trains."""

    name: str
    start: str          # "init": the dense run's initial weights (same seed); "ticket": the dense run's
                        # weights when the ticket appeared; "pretrained": the pretrained weights
    full_budget: bool   # train the whole budget, or only what is left after the ticket
    description: str


MODES: dict[str, RetrainMode] = {m.name: m for m in (
    RetrainMode("scratch", "init", True, "re-initialized with the dense run's initial weights, trained for the "
                "full budget (the study's vision protocol)"),
    RetrainMode("continue", "ticket", False, "the dense run's weights at the ticket, trained for the rest of the "
                "budget (Early-Bird's and EarlyBERT's protocol: the search is part of training)"),
    RetrainMode("finetune", "pretrained", True, "the pretrained weights, pruned, fine-tuned for the full budget "
                "(families that start from pretrained weights only)"),
)}


@dataclass(frozen=True)
class Control:
    """A mask that the early-bird ticket is compared with, at the same ratio."""

    name: str
    search: str         # what finding its mask costs: "none", "ticket" (dense training to the ticket when it
                        # starts from the ticket's weights), "dense" (the whole dense run), "oneshot" (one scoring)
    own_mode: str | None  # a control retrained its own way regardless of the experiment's modes
    description: str


CONTROLS: dict[str, Control] = {c.name: c for c in (
    Control("random", "ticket", None, "kept units drawn uniformly at random, layerwise, same counts"),
    Control("late", "dense", None, "the mask of the final dense model (the whole dense run pays for it)"),
    Control("oneshot", "oneshot", "init", "the magnitude mask of the model before any training (one-shot pruning "
            "of the initial or pretrained weights), then trained for the full budget"),
)}


@dataclass
class ExperimentConfig:
    """What to run. `None` fields take the profile's defaults (see ebcore.models)."""

    family: str
    profile: str = "cpu"
    ratios: tuple[float, ...] = (0.1, 0.3, 0.5)
    modes: tuple[str, ...] | None = None
    controls: tuple[str, ...] | None = None
    control_ratios: tuple[float, ...] = (0.3,)
    rule: str = "consecutive"          # which detector's ticket is retrained: "consecutive" or "window"
    window: int = 5                    # Early-Bird's window rule (You et al. 2020)
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
        for m in self.modes or ():
            if m not in MODES:
                raise ValueError(f"unknown retrain mode {m!r}; choose from {tuple(MODES)}")
        if isinstance(self.controls, str):
            self.controls = (self.controls,)
        for c in self.controls or ():
            if c not in CONTROLS:
                raise ValueError(f"unknown control {c!r}; choose from {tuple(CONTROLS)}")
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
        return self.check_every_steps if self.check_every_steps else self.spec().train.get("check_every_steps")

    def results_path(self) -> Path:
        return Path(self.results_dir) / self.family / self.profile


# --- data -----------------------------------------------------------------------------------------

@dataclass
class Data:
    train: D.DictDataset
    val: D.DictDataset
    test: D.DictDataset
    num_labels: int
    vocab_size: int | None = None
    pad_token_id: int | None = None

    def batch(self, n: int) -> dict:
        return {k: v[:n] for k, v in self.train.tensors.items()}


def _take(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    if n >= len(frame):
        return frame
    return frame.groupby("label", group_keys=False).sample(frac=n / len(frame), random_state=seed)


def load_data(spec: FamilySpec, seed: int = 0) -> Data:
    """Train/val/test splits for `spec` (val is held out of the train split; test is the test split)."""
    d = spec.data
    if spec.is_vision:
        kw = dict(image_size=d["image_size"], channels=d["channels"], seed=seed)
        if d["dataset"] == "cifar10":
            pool, test = D.load_cifar10("train", limit=d["train"] + d["val"], **kw), D.load_cifar10("test", limit=d["test"], **kw)
        else:
            pool = D.load_fashion_mnist("train", limit=d["train"] + d["val"], **kw)
            test = D.load_fashion_mnist("test", limit=d["test"], **kw)
        order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))
        val_idx, train_idx = order[: d["val"]], order[d["val"]:]
        split = lambda idx: D.DictDataset(**{k: v[idx] for k, v in pool.tensors.items()})  # noqa: E731
        return Data(split(train_idx), split(val_idx), test, num_labels=10)
    frames = D.load_imdb(seed=seed) if d["dataset"] == "imdb" else D.load_rotten_tomatoes(seed=seed)
    frames = {"train": _take(frames["train"], d["train"], seed), "val": _take(frames["val"], d["val"], seed),
              "test": _take(frames["test"], d["test"], seed)}
    tok = _tokenizer(spec)
    sets = {k: D.tokenize_texts(f, tok, d["max_length"]) for k, f in frames.items()}
    return Data(sets["train"], sets["val"], sets["test"], num_labels=2, vocab_size=len(tok),
                pad_token_id=tok.pad_token_id)


def _tokenizer(spec: FamilySpec):
    if spec.family == "bert":
        return D.minilm_tokenizer()
    if spec.hub_name:
        import transformers
        try:
            tok = transformers.AutoTokenizer.from_pretrained(spec.hub_name)
        except OSError as err:
            raise D.DataNotFoundError(f"the paper profile needs {spec.hub_name}'s tokenizer from the hub ({err}); "
                                      "offline, use profile 'cpu'") from None
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        return tok
    return D.gpt2_tokenizer() if spec.family == "gpt2" else D.roberta_tokenizer()


# --- runs -----------------------------------------------------------------------------------------

def _hash(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def seed_dir(cfg: ExperimentConfig, seed: int) -> Path:
    """Run folders of one seed: runs/<family>/<profile>/seed<k>/ (seeds never share a folder)."""
    return Path(cfg.runs_dir) / cfg.family / cfg.profile / f"seed{seed}"


def _train_config(cfg: ExperimentConfig, spec: FamilySpec, seed: int, epochs: int | None = None,
                  checks: bool = True) -> TrainConfig:
    t = {k: v for k, v in spec.train.items() if k != "check_every_steps"}
    if epochs is not None:
        t["epochs"] = epochs
    return TrainConfig(**t, seed=seed, device=cfg.device, progress=cfg.progress, precision=cfg.effective_precision,
                       check_every_steps=cfg.effective_check_every if checks else None)


def _measure(model: nn.Module, data: Data, spec: FamilySpec) -> dict:
    batch = data.batch(spec.train["batch_size"])
    mem, kind = training_memory(model, batch)
    return {"params": count_parameters(model), "flops_per_sample": flops_per_sample(model, batch),
            "train_flops_per_sample": train_flops_per_sample(model, batch),
            "train_memory_bytes": mem, "memory_kind": kind}


def _finish(run_dir: Path, model: nn.Module, result, data: Data, spec: FamilySpec, extra: dict,
            precision: str = "fp32") -> dict:
    device = next(model.parameters()).device
    test = evaluate(model, data.test, spec.train["batch_size"] * 2, device, precision=precision)
    if result is not None:
        hist = result.history
    else:  # not retrained: one row for the model as it is (no epoch trained, no time, no samples)
        val = evaluate(model, data.val, spec.train["batch_size"] * 2, device, precision=precision)
        hist = pd.DataFrame([{"epoch": -1, "train_loss": float("nan"), "val_loss": val["loss"],
                              "val_accuracy": val["accuracy"], "lr": 0.0, "epoch_seconds": 0.0,
                              "cumulative_seconds": 0.0, "step": 0}])
    trained = result is not None
    measured = _measure(model, data, spec)
    samples = len(hist) * len(data.train)
    record = {
        **extra,
        "test_accuracy": test["accuracy"], "test_loss": test["loss"], "test_size": len(data.test),
        "best_val_accuracy": float(hist["val_accuracy"].max()),
        "final_val_accuracy": float(hist["val_accuracy"].iloc[-1]),
        "train_seconds": float(hist["cumulative_seconds"].iloc[-1]),
        "epochs_trained": int(len(hist)) if trained else 0,
        "samples_seen": samples if trained else 0,
        "train_flops": (samples if trained else 0) * measured["train_flops_per_sample"],
        **measured,
        "disk_bytes": folder_bytes(save_pruned(model, run_dir / "model", overwrite=True)),
        "history": hist.to_dict(orient="list"),
    }
    (run_dir / "result.json").write_text(json.dumps(record, indent=1, default=float))
    (run_dir / CHECKPOINT_NAME).unlink(missing_ok=True)  # finished: the model is in run_dir/model
    return record


def _load_result(run_dir: Path) -> dict | None:
    path = run_dir / "result.json"
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return None
    return None


def _scoring_flops(criterion: str, elements: int) -> int:
    """FLOPs of one scoring pass over `elements` weight elements (see measure.scored_weight_elements)."""
    return (3 if criterion == "taylor" else 2) * elements


def run_dense(cfg: ExperimentConfig, spec: FamilySpec, data: Data, seed: int) -> dict:
    """Train the dense baseline while the detectors watch; reuse a finished run."""
    params = {"kind": "dense", "spec": asdict(spec), "seed": seed, "ratios": cfg.ratios,
              "threshold": cfg.effective_threshold, "window": cfg.window, "rule": cfg.rule, "scope": cfg.scope,
              "criterion": cfg.effective_criterion, "distance": cfg.distance, "check": cfg.effective_check_every,
              "precision": cfg.effective_precision, "align": cfg.effective_align}
    run_dir = seed_dir(cfg, seed) / f"dense-{_hash(params)}"
    done = _load_result(run_dir)
    if done is not None:
        return done | {"run_dir": str(run_dir)}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "params.json").write_text(json.dumps(params, indent=1, default=str))
    detectors = {
        "consecutive": EarlyBirdDetector(cfg.ratios, cfg.effective_threshold, 2, cfg.scope, cfg.effective_criterion,
                                         cfg.distance, align=cfg.effective_align),
        "window": EarlyBirdDetector(cfg.ratios, cfg.effective_threshold, cfg.window, cfg.scope,
                                    cfg.effective_criterion, cfg.distance, align=cfg.effective_align),
    }
    watch = EarlyBirdWatch(detectors, cfg.rule, run_dir / "tickets", cfg.effective_check_every,
                           train_size=len(data.train), batch_size=spec.train["batch_size"])
    model = build_model(spec, data.num_labels, data.vocab_size, data.pad_token_id, seed=seed)
    result = train(model, data.train, _train_config(cfg, spec, seed), data.val, [watch], checkpoint_dir=run_dir)
    elements = scored_weight_elements(result.model)
    scoring = _scoring_flops(cfg.effective_criterion, elements)
    state = watch.state_dict()
    state.pop("grad_sum")
    extra = {"kind": "dense", "mode": "dense", "ratio": 0.0, "seed": seed, "watch": state,
             "scoring_flops_per_check": scoring, "scored_elements": elements}
    record = _finish(run_dir, result.model, result, data, spec, extra, cfg.effective_precision)
    record["scoring_flops"] = scoring * len(watch.check_samples)
    record["total_flops"] = record["train_flops"] + record["scoring_flops"]
    (run_dir / "result.json").write_text(json.dumps(record, indent=1, default=float))
    return record | {"run_dir": str(run_dir)}


def _ticket_info(dense: dict, cfg: ExperimentConfig, ratio: float) -> dict:
    """The ruling ticket for `ratio`; when none appeared, the last check (flagged `found=False`)."""
    watch = dense["watch"]
    det = EarlyBirdDetector.from_state_dict(watch["detectors"][cfg.rule])
    other_rule = "window" if cfg.rule == "consecutive" else "consecutive"
    other = EarlyBirdDetector.from_state_dict(watch["detectors"][other_rule])
    t = det.ticket(ratio)
    index, found = (t.check_index, True) if t is not None else (len(det.history) - 1, False)
    rules = {cfg.rule: det.ticket(ratio), other_rule: other.ticket(ratio)}
    epochs_at = lambda t: watch["check_epochs"][t.check_index] if t else None  # noqa: E731
    return {
        "mask": det.history[index].masks[ratio], "check_index": index, "found": found,
        "at": det.history[index].at, "epoch_fraction": watch["check_epochs"][index],
        "seconds_to_ticket": watch["check_seconds"][index],
        "samples_to_ticket": watch["check_samples"][index],
        "ticket_epoch_consecutive": epochs_at(rules["consecutive"]),
        "ticket_epoch_window": epochs_at(rules["window"]),
        "late_mask": det.history[-1].masks[ratio],
    }


def _oneshot_mask(cfg: ExperimentConfig, spec: FamilySpec, data: Data, seed: int, ratio: float) -> Mask:
    """The magnitude mask of the model as built (initial or pretrained weights), before any training."""
    model = build_model(spec, data.num_labels, data.vocab_size, data.pad_token_id, seed=seed)
    return draw_mask(model, ratio, scope=cfg.scope, criterion="magnitude", align=cfg.effective_align)


def _search_cost(dense: dict, info: dict, search: str, oneshot_flops: int) -> tuple[float, float]:
    """(FLOPs, seconds) that a run pays before its retraining starts: see Control.search."""
    per_sample = dense["train_flops_per_sample"]
    score = dense["scoring_flops_per_check"]
    if search == "ticket":
        return info["samples_to_ticket"] * per_sample + score * (info["check_index"] + 1), info["seconds_to_ticket"]
    if search == "dense":
        return dense["total_flops"], dense["train_seconds"]
    if search == "oneshot":
        return oneshot_flops, 0.0
    return 0.0, 0.0


def run_pruned(cfg: ExperimentConfig, spec: FamilySpec, data: Data, dense: dict, kind: str, mode: str,
               ratio: float) -> dict:
    """Retrain one pruned network: kind 'early_bird' or a control's name; reuse a finished run."""
    seed = dense["seed"]
    info = _ticket_info(dense, cfg, ratio)
    structure = info["mask"].structure
    head_dims = [lm.head_dim for lm in info["mask"].layers]
    if kind == "early_bird":
        mask, search = info["mask"], "ticket"
    elif kind in CONTROLS:
        search = CONTROLS[kind].search
        if kind == "random":
            mask = random_mask(structure, ratio, seed=seed + 1, head_dims=head_dims, align=cfg.effective_align)
        elif kind == "late":
            mask = info["late_mask"]
        else:
            mask = _oneshot_mask(cfg, spec, data, seed, ratio)
    else:
        raise ValueError(f"unknown run kind {kind!r}; choose early_bird or one of {tuple(CONTROLS)}")
    retrain = MODES[mode]
    if kind != "early_bird" and retrain.start != "ticket" and search == "ticket":
        search = "none"  # a control trained from the initial weights needs no dense training
    epochs = spec.train["epochs"]
    if not retrain.full_budget:
        # What is left of the budget; 0 when the ticket came at the very end (or never: the fallback is the
        # last check), and then the pruned model is evaluated without retraining (no budget is left).
        epochs = max(0, epochs - math.ceil(info["epoch_fraction"] - 1e-9))
    params = {"kind": kind, "mode": mode, "ratio": ratio, "mask": mask.hash(), "spec": asdict(spec),
              "precision": cfg.effective_precision, "seed": seed, "epochs": epochs,
              "start": info["check_index"] if retrain.start == "ticket" else None,
              "dense": Path(dense["run_dir"]).name}
    run_dir = seed_dir(cfg, seed) / f"{kind}-{mode}-p{ratio}-{_hash(params)}"
    oneshot_flops = _scoring_flops("magnitude", dense["scored_elements"])
    search_flops, search_seconds = _search_cost(dense, info, search, oneshot_flops)
    extra = {"kind": kind, "mode": mode, "ratio": ratio, "seed": seed, "search": search,
             "search_seconds": search_seconds, "search_flops": search_flops,
             "mask_hash": mask.hash(), "sparsity": mask.sparsity()["combined"],
             "ticket_found": info["found"] if search == "ticket" else None}
    if kind == "early_bird":  # where the mask came from; controls have none
        extra.update(ticket_check=info["check_index"], ticket_at=info["at"],
                     ticket_epoch=info["epoch_fraction"], ticket_epoch_consecutive=info["ticket_epoch_consecutive"],
                     ticket_epoch_window=info["ticket_epoch_window"])
    done = _load_result(run_dir)
    if done is not None:  # costs are recomputed from the dense run, so accounting fixes need no retraining
        return done | extra | {"total_flops": done["train_flops"] + search_flops, "run_dir": str(run_dir)}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "params.json").write_text(json.dumps(params, indent=1, default=str))
    (run_dir / "mask.json").write_text(mask.to_json())
    model = build_model(spec, data.num_labels, data.vocab_size, data.pad_token_id, seed=seed)
    if retrain.start == "ticket":
        ticket_file = Path(dense["run_dir"]) / "tickets" / f"ticket-{ratio}.safetensors"
        if not ticket_file.is_file():
            raise FileNotFoundError(f"{ticket_file} is missing: mode 'continue' needs the weights saved when the "
                                    "ticket appeared (the dense run's folder was cleaned?); delete the dense run's "
                                    "folder to retrain it, or use mode 'scratch'")
        model.load_state_dict(load_file(str(ticket_file)), strict=True)
    prune_model(model, mask)
    if epochs == 0:
        result, model = None, model.to(pick_device(cfg.device))
    else:
        result = train(model, data.train, _train_config(cfg, spec, seed, epochs, checks=False), data.val,
                       checkpoint_dir=run_dir)
        model = result.model
    record = _finish(run_dir, model, result, data, spec, extra, cfg.effective_precision)
    record["total_flops"] = record["train_flops"] + search_flops
    (run_dir / "result.json").write_text(json.dumps(record, indent=1, default=float))
    return record | {"run_dir": str(run_dir)}


# --- the whole experiment -------------------------------------------------------------------------

@dataclass
class ExperimentResult:
    config: ExperimentConfig
    table: pd.DataFrame                                   # one row per (seed, run)
    curves: pd.DataFrame
    distances: pd.DataFrame                               # one row per (seed, rule, check, ratio)
    detectors: dict[int, dict[str, EarlyBirdDetector]]    # seed -> rule -> detector
    out_dir: Path
    seconds: float = 0.0

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(sorted(self.detectors))

    def pairwise(self, ratio: float, rule: str = "consecutive", seed: int | None = None) -> np.ndarray:
        return self.detectors[self.seeds[0] if seed is None else seed][rule].pairwise(ratio)


TABLE_COLUMNS = ["family", "profile", "seed", "run", "kind", "mode", "ratio", "ticket_found", "ticket_epoch",
                 "ticket_epoch_consecutive", "ticket_epoch_window", "budget_epochs", "test_accuracy", "test_loss",
                 "test_size", "best_val_accuracy", "final_val_accuracy", "params", "param_ratio", "flops_per_sample",
                 "flops_ratio", "train_flops_per_sample", "samples_seen", "search_flops", "train_flops",
                 "total_flops", "flops_rel_dense", "search_seconds", "scoring_seconds", "train_seconds",
                 "total_seconds", "time_rel_dense", "train_memory_bytes", "memory_ratio", "memory_kind",
                 "disk_bytes", "epochs_trained", "sparsity"]


def run_label(kind: str, mode: str, ratio: float) -> str:
    if kind == "dense":
        return "dense"
    return f"{kind.replace('_', '-')} {mode} p={ratio:g}"


def _control_modes(cfg: ExperimentConfig, control: str, spec: FamilySpec) -> tuple[str, ...]:
    own = CONTROLS[control].own_mode
    if own is None:
        return cfg.effective_modes
    return ("finetune",) if spec.pretrained else ("scratch",)


def run_seed(cfg: ExperimentConfig, seed: int) -> tuple[list[dict], dict]:
    """Every run of one seed: the watched dense run, the tickets and the controls (reused when finished)."""
    spec = cfg.spec()
    torch.manual_seed(seed)
    data = load_data(spec, seed)
    dense = run_dense(cfg, spec, data, seed)
    records = [dense]
    for mode in cfg.effective_modes:
        for ratio in cfg.ratios:
            records.append(run_pruned(cfg, spec, data, dense, "early_bird", mode, ratio))
    for control in cfg.effective_controls:
        for mode in _control_modes(cfg, control, spec):
            for ratio in cfg.control_ratios:
                records.append(run_pruned(cfg, spec, data, dense, control, mode, ratio))
    return records, dense["watch"]["detectors"]


def run_experiment(cfg: ExperimentConfig) -> ExperimentResult:
    """Run (or reuse) every run of every seed and write the tables to `results/<family>/<profile>/`.

    Per-seed tables (`table-seed<k>.csv`) are written for each seed; the combined tables hold the seeds
    of this config only, so a run of one seed never overwrites another seed's results.
    """
    start = time.perf_counter()
    seeds = cfg.effective_seeds
    workers = cfg.workers or cfg.spec().workers
    if workers > 1 and len(seeds) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(min(workers, len(seeds)), mp_context=mp.get_context("spawn")) as pool:
            outcomes = list(pool.map(run_seed, [cfg] * len(seeds), seeds))
    else:
        outcomes = [run_seed(cfg, s) for s in seeds]
    tables, curves, distances, detectors = [], [], [], {}
    for seed, (records, det_states) in zip(seeds, outcomes):
        table, curve = _tables(cfg, records, records[0])
        tables.append(table)
        curves.append(curve)
        detectors[seed] = {k: EarlyBirdDetector.from_state_dict(v) for k, v in det_states.items()}
        distances += [pd.DataFrame(d.records()).assign(rule=k, seed=seed) for k, d in detectors[seed].items()]
    table = pd.concat(tables, ignore_index=True)
    curves_frame = pd.concat(curves, ignore_index=True)
    distances_frame = pd.concat(distances, ignore_index=True)
    out = cfg.results_path()
    out.mkdir(parents=True, exist_ok=True)
    for seed, t in zip(seeds, tables):
        t.to_csv(out / f"table-seed{seed}.csv", index=False)
    table.to_csv(out / "table.csv", index=False)
    table.to_json(out / "table.json", orient="records", indent=1)
    curves_frame.to_csv(out / "curves.csv", index=False)
    distances_frame.to_csv(out / "distances.csv", index=False)
    states = {str(s): {k: d.state_dict() for k, d in dets.items()} for s, dets in detectors.items()}
    with open(out / "detectors.json.gz", "wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:  # every mask of every check; mtime 0: same bytes
        f.write(json.dumps(states).encode())
    config = asdict(cfg) | {"results_dir": relative_to_repo(cfg.results_dir), "runs_dir": relative_to_repo(cfg.runs_dir),
                            "effective_seeds": list(seeds), "effective_modes": list(cfg.effective_modes),
                            "effective_controls": list(cfg.effective_controls),
                            "effective_criterion": cfg.effective_criterion,
                            "effective_precision": cfg.effective_precision, "effective_align": cfg.effective_align,
                            "effective_threshold": cfg.effective_threshold}
    (out / "config.json").write_text(json.dumps(config, indent=1, default=str))
    return ExperimentResult(cfg, table, curves_frame, distances_frame, detectors, out, time.perf_counter() - start)


def _tables(cfg: ExperimentConfig, records: list[dict], dense: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, curves = [], []
    budget = cfg.spec().train["epochs"]
    for rec in records:
        label = run_label(rec["kind"], rec["mode"], rec["ratio"])
        total = rec["train_seconds"] + rec.get("search_seconds", 0.0) if rec["kind"] != "dense" else rec["train_seconds"]
        row = {k: rec.get(k) for k in TABLE_COLUMNS}
        row.update(family=cfg.family, profile=cfg.profile, run=label, total_seconds=total, budget_epochs=budget,
                   time_rel_dense=total / dense["train_seconds"], param_ratio=rec["params"] / dense["params"],
                   flops_ratio=rec["flops_per_sample"] / dense["flops_per_sample"],
                   flops_rel_dense=rec["total_flops"] / dense["total_flops"],
                   memory_ratio=rec["train_memory_bytes"] / dense["train_memory_bytes"])
        if rec["kind"] == "dense":
            row.update(search_seconds=0.0, search_flops=0.0, ticket_found=None,
                       scoring_seconds=rec["watch"]["search_seconds"])
        rows.append(row)
        hist = pd.DataFrame(rec["history"])
        curves.append(hist.assign(seed=rec["seed"], run=label, kind=rec["kind"], mode=rec["mode"], ratio=rec["ratio"]))
    return pd.DataFrame(rows, columns=TABLE_COLUMNS), pd.concat(curves, ignore_index=True)
