"""The early-bird pipeline for one family and profile, with honest controls and cost accounting.

    result = run_experiment(ExperimentConfig("vit", profile="cpu"))
    result.table          # one row per run: dense, early-bird tickets, random and late controls

(a) The dense baseline trains for the full budget while two detectors watch every check (epoch, or
    every N steps): the study's consecutive rule (window 2) and Early-Bird's window rule (window 5),
    for every ratio at once, from one scoring pass per check. The search costs no extra training.
(b) Per ratio and retrain mode, the ticket (of the ruling detector, `rule`) is pruned physically and
    trained: `scratch` (re-initialized with the dense run's seed, i.e. the same initial weights, and
    trained for the full budget: the study's protocol for vision), `continue` (the ticket's weights,
    trained for the rest of the budget: Early-Bird's protocol) or `finetune` (pretrained weights,
    pruned, fine-tuned for the full budget).
(c) Controls at the same ratio, retrained the same way: a random mask, and the late ticket (the mask
    of the final dense model, which costs the whole dense run to find).
(d) Costs: wall time of each phase, total time relative to dense (a ticket's total = dense time until
    the ticket + its retraining), parameters, FLOPs per sample, training memory, size on disk.

Every run lives in a folder under `runs_dir` named from its parameters; a finished run (result.json)
is reused, an interrupted one resumes from its checkpoint. Tables go to `results/<family>/<profile>/`.
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
from safetensors.torch import load_file, save_file
from torch import nn

from . import data as D
from .detector import EarlyBirdDetector
from .io import save_pruned
from .masks import check_ratio, random_mask
from .measure import flops_per_sample, folder_bytes, training_memory
from .models import FamilySpec, build_model, get_spec
from .surgery import count_parameters, prune_model
from .train import CHECKPOINT_NAME, Callback, TrainConfig, TrainState, evaluate, train

MODES = ("scratch", "continue", "finetune")
CONTROLS = ("random", "late")


@dataclass
class ExperimentConfig:
    """What to run. `None` fields take the profile's defaults (see ebcore.models)."""

    family: str
    profile: str = "cpu"
    ratios: tuple[float, ...] = (0.1, 0.3, 0.5)
    modes: tuple[str, ...] | None = None
    controls: tuple[str, ...] = CONTROLS
    control_ratios: tuple[float, ...] = (0.3,)
    rule: str = "consecutive"          # which detector's ticket is retrained: "consecutive" or "window"
    window: int = 5                    # Early-Bird's window rule (You et al. 2020)
    threshold: float | None = None     # default: 0.1 vision, 0.01 text (the study's)
    scope: str = "layerwise"
    criterion: str = "magnitude"
    distance: str = "combined"
    check_every_steps: int | None = None
    seed: int = 0
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    train_size: int | None = None
    device: str | None = None
    results_dir: str = "results"
    runs_dir: str = "runs"
    progress: bool = False

    def __post_init__(self) -> None:
        self.ratios = tuple(check_ratio(r) for r in self.ratios)
        self.control_ratios = tuple(check_ratio(r) for r in self.control_ratios)
        if self.rule not in ("consecutive", "window"):
            raise ValueError(f"rule must be 'consecutive' or 'window', got {self.rule!r}")
        for m in self.modes or ():
            if m not in MODES:
                raise ValueError(f"unknown retrain mode {m!r}; choose from {MODES}")
        for c in self.controls:
            if c not in CONTROLS:
                raise ValueError(f"unknown control {c!r}; choose from {CONTROLS}")
        self.spec()  # validates family and profile

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


# --- the watching callback ------------------------------------------------------------------------

class EarlyBirdWatch(Callback):
    """Checks both detectors at every epoch end (or every N steps) and keeps a clock of training time.

    When the ruling detector's ticket first appears for a ratio, the model's weights at that moment
    are written to `ticket_dir` (needed by the `continue` mode).
    """

    def __init__(self, detectors: dict[str, EarlyBirdDetector], rule: str, ticket_dir: Path | None,
                 every_steps: int | None = None):
        self.detectors, self.rule, self.ticket_dir, self.every_steps = detectors, rule, ticket_dir, every_steps
        self.check_seconds: list[float] = []   # training clock at each check
        self.check_epochs: list[float] = []    # fractional epoch at each check
        self.search_seconds = 0.0              # time spent scoring and comparing masks
        self.elapsed = 0.0
        self._mark = None

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._mark is not None:
            self.elapsed += now - self._mark
        self._mark = now

    def on_train_start(self, state: TrainState) -> None:
        self._mark = time.perf_counter()

    def _check(self, state: TrainState, at: float) -> None:
        self._tick()
        start = time.perf_counter()
        ruling = self.detectors[self.rule]
        before = set(ruling.tickets)
        masks = ruling.draw_masks(state.model)
        for det in self.detectors.values():
            det.add_masks(masks, at)
        self.search_seconds += time.perf_counter() - start
        self.check_seconds.append(self.elapsed)
        self.check_epochs.append(state.global_step / state.steps_per_epoch)
        if self.ticket_dir is not None:
            for ratio in set(ruling.tickets) - before:
                self.ticket_dir.mkdir(parents=True, exist_ok=True)
                weights = {k: v.detach().cpu().contiguous() for k, v in state.model.state_dict().items()}
                save_file(_untie(weights), str(self.ticket_dir / f"ticket-{ratio}.safetensors"))
        self._mark = time.perf_counter()  # the search is accounted separately

    def on_check(self, state: TrainState) -> None:
        if self.every_steps:
            self._check(state, state.global_step)

    def on_epoch_end(self, state: TrainState) -> None:
        if not self.every_steps:
            self._check(state, state.epoch)
        else:
            self._tick()

    def state_dict(self) -> dict:
        self._tick()
        return {"detectors": {k: d.state_dict() for k, d in self.detectors.items()},
                "check_seconds": self.check_seconds, "check_epochs": self.check_epochs,
                "search_seconds": self.search_seconds, "elapsed": self.elapsed}

    def load_state_dict(self, state: dict) -> None:
        for k, d in self.detectors.items():
            d.load_state_dict(state["detectors"][k])
        self.check_seconds, self.check_epochs = list(state["check_seconds"]), list(state["check_epochs"])
        self.search_seconds, self.elapsed = state["search_seconds"], state["elapsed"]


def _untie(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses shared storage (tied embeddings): clone duplicates."""
    seen, out = set(), {}
    for k, v in weights.items():
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape))
        out[k] = v.clone() if key in seen else v
        seen.add(key)
    return out


# --- runs -----------------------------------------------------------------------------------------

def _hash(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _train_config(cfg: ExperimentConfig, spec: FamilySpec, epochs: int | None = None, checks: bool = True
                  ) -> TrainConfig:
    t = {k: v for k, v in spec.train.items() if k != "check_every_steps"}
    if epochs is not None:
        t["epochs"] = epochs
    return TrainConfig(**t, seed=cfg.seed, device=cfg.device, progress=cfg.progress,
                       check_every_steps=cfg.effective_check_every if checks else None)


def _measure(model: nn.Module, data: Data, spec: FamilySpec) -> dict:
    batch = data.batch(spec.train["batch_size"])
    mem, kind = training_memory(model, batch)
    return {"params": count_parameters(model), "flops_per_sample": flops_per_sample(model, batch),
            "train_memory_bytes": mem, "memory_kind": kind}


def _finish(run_dir: Path, model: nn.Module, result, data: Data, spec: FamilySpec, extra: dict) -> dict:
    device = next(model.parameters()).device
    test = evaluate(model, data.test, spec.train["batch_size"] * 2, device)
    hist = result.history
    record = {
        **extra,
        "test_accuracy": test["accuracy"], "test_loss": test["loss"],
        "best_val_accuracy": float(hist["val_accuracy"].max()),
        "final_val_accuracy": float(hist["val_accuracy"].iloc[-1]),
        "train_seconds": float(hist["cumulative_seconds"].iloc[-1]),
        "epochs_trained": int(len(hist)),
        **_measure(model, data, spec),
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


def run_dense(cfg: ExperimentConfig, spec: FamilySpec, data: Data) -> dict:
    """Train the dense baseline while the detectors watch; reuse a finished run."""
    params = {"kind": "dense", "spec": asdict(spec), "seed": cfg.seed, "ratios": cfg.ratios,
              "threshold": cfg.effective_threshold, "window": cfg.window, "rule": cfg.rule, "scope": cfg.scope,
              "criterion": cfg.criterion, "distance": cfg.distance, "check": cfg.effective_check_every}
    run_dir = Path(cfg.runs_dir) / cfg.family / cfg.profile / f"dense-{_hash(params)}"
    done = _load_result(run_dir)
    if done is not None:
        return done | {"run_dir": str(run_dir)}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "params.json").write_text(json.dumps(params, indent=1, default=str))
    detectors = {
        "consecutive": EarlyBirdDetector(cfg.ratios, cfg.effective_threshold, 2, cfg.scope, cfg.criterion,
                                         cfg.distance),
        "window": EarlyBirdDetector(cfg.ratios, cfg.effective_threshold, cfg.window, cfg.scope, cfg.criterion,
                                    cfg.distance),
    }
    watch = EarlyBirdWatch(detectors, cfg.rule, run_dir / "tickets", cfg.effective_check_every)
    model = build_model(spec, data.num_labels, data.vocab_size, data.pad_token_id, seed=cfg.seed)
    result = train(model, data.train, _train_config(cfg, spec), data.val, [watch], checkpoint_dir=run_dir)
    extra = {"kind": "dense", "mode": "dense", "ratio": 0.0, "watch": watch.state_dict()}
    return _finish(run_dir, result.model, result, data, spec, extra) | {"run_dir": str(run_dir)}


def _ticket_info(dense: dict, cfg: ExperimentConfig, ratio: float) -> dict:
    """The ruling ticket for `ratio` (or the closest-to-stable mask when none appeared, flagged)."""
    watch = dense["watch"]
    det = EarlyBirdDetector.from_state_dict(watch["detectors"][cfg.rule])
    other = EarlyBirdDetector.from_state_dict(
        watch["detectors"]["window" if cfg.rule == "consecutive" else "consecutive"])
    t = det.ticket(ratio)
    if t is not None:
        index, found = t.check_index, True
    else:  # fallback: the check whose window distance was smallest (or the last one)
        dists = [rec.distances[ratio] for rec in det.history]
        valid = [(d, i) for i, d in enumerate(dists) if d is not None]
        index, found = (min(valid)[1] if valid else len(det.history) - 1), False
    other_rule = "window" if cfg.rule == "consecutive" else "consecutive"
    rules = {cfg.rule: det.ticket(ratio), other_rule: other.ticket(ratio)}
    epochs_at = lambda t: watch["check_epochs"][t.check_index] if t else None  # noqa: E731
    return {
        "mask": det.history[index].masks[ratio], "check_index": index, "found": found,
        "at": det.history[index].at, "epoch_fraction": watch["check_epochs"][index],
        "seconds_to_ticket": watch["check_seconds"][index],
        "ticket_epoch_consecutive": epochs_at(rules["consecutive"]),
        "ticket_epoch_window": epochs_at(rules["window"]),
        "late_mask": det.history[-1].masks[ratio],
    }


def run_pruned(cfg: ExperimentConfig, spec: FamilySpec, data: Data, dense: dict, kind: str, mode: str,
               ratio: float) -> dict:
    """Retrain one pruned network: kind 'early_bird', 'random' or 'late'; reuse a finished run."""
    info = _ticket_info(dense, cfg, ratio)
    structure = info["mask"].structure
    head_dims = [lm.head_dim for lm in info["mask"].layers]
    mask = {"early_bird": info["mask"], "late": info["late_mask"],
            "random": random_mask(structure, ratio, seed=cfg.seed + 1, head_dims=head_dims)}[kind]
    epochs = spec.train["epochs"]
    if mode == "continue":
        epochs = max(1, epochs - math.ceil(info["epoch_fraction"]))
    params = {"kind": kind, "mode": mode, "ratio": ratio, "mask": mask.hash(), "spec": asdict(spec),
              "seed": cfg.seed, "epochs": epochs, "start": info["check_index"] if mode == "continue" else None,
              "dense": Path(dense["run_dir"]).name}
    run_dir = Path(cfg.runs_dir) / cfg.family / cfg.profile / f"{kind}-{mode}-p{ratio}-{_hash(params)}"
    search = {"early_bird": info["seconds_to_ticket"], "random": 0.0, "late": dense["train_seconds"]}[kind]
    extra = {"kind": kind, "mode": mode, "ratio": ratio, "search_seconds": search,
             "mask_hash": mask.hash(), "sparsity": mask.sparsity()["combined"]}
    if kind == "early_bird":  # where the mask came from; controls have none
        extra.update(ticket_found=info["found"], ticket_check=info["check_index"], ticket_at=info["at"],
                     ticket_epoch=info["epoch_fraction"], ticket_epoch_consecutive=info["ticket_epoch_consecutive"],
                     ticket_epoch_window=info["ticket_epoch_window"])
    done = _load_result(run_dir)
    if done is not None:
        return done | {"run_dir": str(run_dir)}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "params.json").write_text(json.dumps(params, indent=1, default=str))
    (run_dir / "mask.json").write_text(mask.to_json())
    model = build_model(spec, data.num_labels, data.vocab_size, data.pad_token_id, seed=cfg.seed)
    if mode == "continue":
        ticket_file = Path(dense["run_dir"]) / "tickets" / f"ticket-{ratio}.safetensors"
        if not ticket_file.is_file():
            raise FileNotFoundError(f"{ticket_file} is missing: mode 'continue' needs the weights saved when the "
                                    "ticket appeared (no ticket was found for this ratio, or the dense run's "
                                    "folder was cleaned); use mode 'scratch'")
        model.load_state_dict(load_file(str(ticket_file)), strict=True)
    prune_model(model, mask)
    result = train(model, data.train, _train_config(cfg, spec, epochs, checks=False), data.val,
                   checkpoint_dir=run_dir)
    return _finish(run_dir, result.model, result, data, spec, extra) | {"run_dir": str(run_dir)}


# --- the whole experiment -------------------------------------------------------------------------

@dataclass
class ExperimentResult:
    config: ExperimentConfig
    table: pd.DataFrame
    curves: pd.DataFrame
    distances: pd.DataFrame
    detectors: dict[str, EarlyBirdDetector]
    out_dir: Path
    seconds: float = 0.0

    def pairwise(self, ratio: float, rule: str = "consecutive") -> np.ndarray:
        return self.detectors[rule].pairwise(ratio)


TABLE_COLUMNS = ["family", "profile", "run", "kind", "mode", "ratio", "ticket_found", "ticket_epoch",
                 "ticket_epoch_consecutive", "ticket_epoch_window", "test_accuracy", "test_loss", "best_val_accuracy",
                 "final_val_accuracy", "params", "param_ratio", "flops_per_sample", "flops_ratio",
                 "search_seconds", "scoring_seconds", "train_seconds", "total_seconds", "time_rel_dense", "train_memory_bytes",
                 "memory_ratio", "memory_kind", "disk_bytes", "epochs_trained", "sparsity"]


def _label(kind: str, mode: str, ratio: float) -> str:
    if kind == "dense":
        return "dense"
    return f"{kind.replace('_', '-')} {mode} p={ratio:g}"


def run_experiment(cfg: ExperimentConfig) -> ExperimentResult:
    """Run (or reuse) every run of the experiment and write its tables to `results/<family>/<profile>/`."""
    start = time.perf_counter()
    spec = cfg.spec()
    torch.manual_seed(cfg.seed)
    data = load_data(spec, cfg.seed)
    dense = run_dense(cfg, spec, data)
    records = [dense]
    for mode in cfg.effective_modes:
        for ratio in cfg.ratios:
            records.append(run_pruned(cfg, spec, data, dense, "early_bird", mode, ratio))
        for control in cfg.controls:
            for ratio in cfg.control_ratios:
                records.append(run_pruned(cfg, spec, data, dense, control, mode, ratio))
    table, curves = _tables(cfg, records, dense)
    detectors = {k: EarlyBirdDetector.from_state_dict(v) for k, v in dense["watch"]["detectors"].items()}
    distances = pd.concat([pd.DataFrame(d.records()).assign(rule=k) for k, d in detectors.items()],
                          ignore_index=True)
    out = cfg.results_path()
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "table.csv", index=False)
    table.to_json(out / "table.json", orient="records", indent=1)
    curves.to_csv(out / "curves.csv", index=False)
    distances.to_csv(out / "distances.csv", index=False)
    with gzip.open(out / "detectors.json.gz", "wt") as f:  # every mask of every check: compress
        json.dump({k: d.state_dict() for k, d in detectors.items()}, f)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1, default=str))
    return ExperimentResult(cfg, table, curves, distances, detectors, out, time.perf_counter() - start)


def _tables(cfg: ExperimentConfig, records: list[dict], dense: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, curves = [], []
    for rec in records:
        label = _label(rec["kind"], rec["mode"], rec["ratio"])
        total = rec["train_seconds"] + rec.get("search_seconds", 0.0) if rec["kind"] != "dense" else rec["train_seconds"]
        row = {k: rec.get(k) for k in TABLE_COLUMNS}
        row.update(family=cfg.family, profile=cfg.profile, run=label, total_seconds=total,
                   time_rel_dense=total / dense["train_seconds"], param_ratio=rec["params"] / dense["params"],
                   flops_ratio=rec["flops_per_sample"] / dense["flops_per_sample"],
                   memory_ratio=rec["train_memory_bytes"] / dense["train_memory_bytes"])
        if rec["kind"] == "dense":
            row.update(search_seconds=0.0, ticket_found=None, scoring_seconds=rec["watch"]["search_seconds"])
        rows.append(row)
        hist = pd.DataFrame(rec["history"])
        curves.append(hist.assign(run=label, kind=rec["kind"], mode=rec["mode"], ratio=rec["ratio"]))
    return pd.DataFrame(rows, columns=TABLE_COLUMNS), pd.concat(curves, ignore_index=True)
