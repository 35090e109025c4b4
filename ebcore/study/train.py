"""A small, deterministic training loop for Hugging Face classification models.

Batches are dicts of tensors passed as ``model(**batch)`` (``pixel_values`` or ``input_ids`` /
``attention_mask``, plus ``labels``); the model returns an output with ``.loss`` and ``.logits``.
Data sets are ``torch.utils.data.Dataset`` objects whose items are dicts of tensors, so the default
collate function stacks them into dict batches.

Main pieces:

* :class:`TrainConfig` -- hyper-parameters, validated on construction.
* :func:`train` -- the loop: AdamW, linear warm-up then cosine decay to 0 (per optimizer step),
  gradient clipping, evaluation at every epoch end, callbacks, checkpoints and exact resume.
* :class:`Callback` -- hooks called by the loop; a callback can stop training
  (``state.stop_training = True``). The model keeps its structure for the whole run: the study
  prunes before it calls :func:`train` (``ebcore.study.experiment``), and the Hugging Face Trainer
  path prunes mid-run on its own (``ebcore.hf``).

Determinism: python, numpy and torch are seeded from ``config.seed`` when :func:`train` starts, and
each epoch's shuffling uses its own ``torch.Generator`` seeded from ``(seed, epoch)``, so data order
depends only on the seed and the epoch index. Checkpoints store the RNG states too (dropout), which
makes an interrupted-and-resumed run give the same weights as an uninterrupted one (on CPU bitwise;
on CUDA only as deterministic as the kernels are).

Mixed precision: ``config.precision`` is ``"fp32"`` (default, unchanged behaviour), ``"bf16"``
(autocast on CUDA or CPU, no scaler) or ``"fp16"`` (autocast plus ``torch.amp.GradScaler``, CUDA
only); see :mod:`ebcore.precision`. Forward passes of training and evaluation run under the same
autocast; weights, gradients and AdamW's state stay float32. The grad scaler's state is saved in
checkpoints, so an fp16 run resumes exactly too. The loop uses hand-written autocast and scaler code
rather than Hugging Face Accelerate: it keeps this loop's own checkpoint format, RNG handling and
per-epoch data order (Accelerate's ``prepare`` wraps the data loader and its ``save_state`` has its
own layout), and multi-GPU training is the job of :mod:`ebcore.hf` under the Trainer.
"""

from __future__ import annotations

import math
import os
import random
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from .progress import tqdm

from ..files import atomic_save
from ..errors import CheckpointError, DeviceUnavailableError
from .precision import PRECISIONS, autocast, check_precision, make_grad_scaler

CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_COLUMNS = (
    "epoch", "train_loss", "val_loss", "val_accuracy", "lr",
    "epoch_seconds", "cumulative_seconds", "step",
)
# Config fields that change the trajectory of a run; a resumed run warns when they differ.
_TRAJECTORY_FIELDS = (
    "epochs", "batch_size", "lr", "weight_decay", "warmup_fraction", "grad_clip", "seed", "precision",
)


# --------------------------------------------------------------------------- configuration


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train`.

    ``check_every_steps``: when set, ``Callback.on_check`` fires after every N-th optimizer step
    (counted globally over the run); ``on_epoch_end`` fires at epoch ends either way.
    ``device``: ``None``/``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    ``eval_batch_size``: defaults to ``batch_size``.
    ``precision``: ``"fp32"`` (default), ``"bf16"`` or ``"fp16"`` (CUDA only); see :mod:`ebcore.precision`.
    """

    epochs: int
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_fraction: float = 0.1
    grad_clip: float | None = 1.0
    seed: int = 0
    eval_batch_size: int | None = None
    check_every_steps: int | None = None
    num_workers: int = 0
    progress: bool = True
    device: str | None = None
    precision: str = "fp32"

    def __post_init__(self) -> None:
        def is_int(x: Any) -> bool:
            return isinstance(x, (int, np.integer)) and not isinstance(x, bool)

        def is_num(x: Any) -> bool:
            return isinstance(x, (int, float, np.number)) and not isinstance(x, bool)

        problems = []
        if not is_int(self.epochs) or self.epochs < 1:
            problems.append(f"epochs must be an integer >= 1, got {self.epochs!r}")
        if not is_int(self.batch_size) or self.batch_size < 1:
            problems.append(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if not is_num(self.lr) or not math.isfinite(self.lr) or self.lr <= 0:
            problems.append(f"lr must be a finite number > 0, got {self.lr!r}")
        if not is_num(self.weight_decay) or not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            problems.append(f"weight_decay must be a finite number >= 0, got {self.weight_decay!r}")
        if not is_num(self.warmup_fraction) or not 0 <= self.warmup_fraction <= 1:
            problems.append(f"warmup_fraction must be in [0, 1], got {self.warmup_fraction!r}")
        if self.grad_clip is not None and (not is_num(self.grad_clip) or not self.grad_clip > 0):
            problems.append(f"grad_clip must be None or a number > 0, got {self.grad_clip!r}")
        if not is_int(self.seed) or self.seed < 0:
            problems.append(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.eval_batch_size is not None and (not is_int(self.eval_batch_size) or self.eval_batch_size < 1):
            problems.append(f"eval_batch_size must be None or an integer >= 1, got {self.eval_batch_size!r}")
        if self.check_every_steps is not None and (
            not is_int(self.check_every_steps) or self.check_every_steps < 1
        ):
            problems.append(f"check_every_steps must be None or an integer >= 1, got {self.check_every_steps!r}")
        if not is_int(self.num_workers) or self.num_workers < 0:
            problems.append(f"num_workers must be an integer >= 0, got {self.num_workers!r}")
        if self.device is not None and not isinstance(self.device, str):
            problems.append(f"device must be None or a string like 'cpu'/'cuda'/'auto', got {self.device!r}")
        if not isinstance(self.precision, str) or self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        elif self.precision == "fp16" and self.device == "cpu":
            problems.append("precision='fp16' needs a CUDA device but device='cpu': use precision='bf16' or 'fp32' on CPU")
        if problems:
            raise ValueError("Invalid TrainConfig: " + "; ".join(problems))
        # Plain python numbers, so the config stores cleanly in checkpoints.
        for name in ("epochs", "batch_size", "seed", "num_workers", "eval_batch_size", "check_every_steps"):
            if getattr(self, name) is not None:
                setattr(self, name, int(getattr(self, name)))
        for name in ("lr", "weight_decay", "warmup_fraction", "grad_clip"):
            if getattr(self, name) is not None:
                setattr(self, name, float(getattr(self, name)))


def pick_device(preference: str | None = None) -> torch.device:
    """Return the device to train on.

    ``None`` or ``"auto"``: CUDA when available, else CPU. ``"cpu"``: CPU. ``"cuda"``/``"cuda:N"``:
    that GPU, or :class:`DeviceUnavailableError` when CUDA is not available.
    """
    if preference is None or preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(preference)
    except RuntimeError as exc:
        raise ValueError(f"Unknown device {preference!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'.") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"Device {preference!r} was requested but CUDA is not available on this machine "
                "(no GPU, or torch was built without CUDA). Use device='cpu' or 'auto'."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"Device {preference!r} was requested but only {torch.cuda.device_count()} GPU(s) exist."
            )
    elif device.type != "cpu":
        raise ValueError(f"Unsupported device {preference!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'.")
    return device


# --------------------------------------------------------------------------- optimizer


def warmup_steps_for(config: TrainConfig, total_steps: int) -> int:
    """Number of linear warm-up steps: ``round(warmup_fraction * total_steps)``."""
    return int(round(config.warmup_fraction * total_steps))


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the base LR at optimizer step ``step`` (0-based).

    Linear warm-up ``(step + 1) / warmup_steps`` for the first ``warmup_steps`` steps, then cosine
    decay from 1 down to 0, which is reached at ``step == total_steps``.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _no_decay(name: str, param: nn.Parameter) -> bool:
    lowered = name.lower()
    return param.ndim <= 1 or lowered.endswith(".bias") or "layernorm" in lowered or "layer_norm" in lowered


def build_optimizer(
    model: nn.Module, config: TrainConfig, total_steps: int, start_step: int = 0
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW plus a warm-up + cosine ``LambdaLR`` over ``total_steps`` optimizer steps.

    Two parameter groups, always in this order: [with weight decay, without weight decay]; biases,
    LayerNorm parameters and every 1-D parameter get no weight decay. Parameters with
    ``requires_grad=False`` are left out. ``start_step`` places the schedule at that global step,
    so the first LR is ``lr * lr_factor(start_step)``.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if not 0 <= start_step <= total_steps:
        raise ValueError(f"start_step must be in [0, total_steps={total_steps}], got {start_step}")
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if _no_decay(name, param) else decay).append(param)
    if not decay and not no_decay:
        raise ValueError("The model has no trainable parameters.")
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
    )
    warmup = warmup_steps_for(config, total_steps)

    def schedule(step: int) -> float:
        return lr_factor(step, warmup, total_steps)

    if start_step == 0:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    else:
        for group in optimizer.param_groups:
            group["initial_lr"] = config.lr
        # LambdaLR takes one step on construction: last_epoch becomes start_step.
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule, last_epoch=start_step - 1)
    return optimizer, scheduler


# --------------------------------------------------------------------------- evaluation


def _to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    if not isinstance(batch, dict):
        raise TypeError(f"Batches must be dicts of tensors (dataset items must be dicts), got {type(batch).__name__}.")
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def _loss_of(outputs: Any) -> torch.Tensor:
    loss = getattr(outputs, "loss", None)
    if loss is None:
        raise ValueError("The model returned no loss: batches must contain 'labels'.")
    return loss


@torch.no_grad()
def evaluate(
    model: nn.Module, dataset: Dataset, batch_size: int, device: torch.device | str | None = None,
    precision: str = "fp32",
) -> dict[str, float]:
    """Mean loss (weighted by batch size) and accuracy (argmax of logits) over ``dataset``.

    Runs the model in eval mode and restores its previous train/eval mode afterwards. ``device``
    defaults to the device of the model's first parameter; forward passes run under ``precision``'s
    autocast (see :mod:`ebcore.precision`).
    """
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    check_precision(precision, device)
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    count = 0
    try:
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            batch = _to_device(batch, device)
            with autocast(precision, device):
                outputs = model(**batch)
            labels = batch["labels"]
            loss_sum += _loss_of(outputs).double() * labels.shape[0]
            correct += (outputs.logits.argmax(dim=-1) == labels).sum()
            count += labels.shape[0]
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("Cannot evaluate on an empty data set.")
    return {"loss": loss_sum.item() / count, "accuracy": correct.item() / count}


# --------------------------------------------------------------------------- callbacks and state


@dataclass
class TrainState:
    """What the loop exposes to callbacks. ``epoch`` is the 0-based index of the current (or just
    finished) epoch; ``global_step`` counts optimizer steps taken so far; ``history`` holds one dict
    per finished epoch (same columns as :attr:`TrainResult.history`), already including the epoch
    that ``on_epoch_end`` is called for; ``last_eval`` is that epoch's validation result (``{}``
    without validation data)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    epoch: int
    global_step: int
    steps_per_epoch: int
    total_steps: int
    history: list[dict[str, Any]]
    device: torch.device
    config: TrainConfig
    stop_training: bool = False
    grad_scaler: torch.amp.GradScaler | None = None
    last_eval: dict[str, float] = field(default_factory=dict)


class Callback:
    """Base class of training callbacks; every hook is a no-op by default.

    Order per run: ``on_resume`` (only when resuming from a checkpoint), ``on_train_start``, then
    per optimizer step ``on_step_end`` and, every ``check_every_steps`` steps, ``on_check``; per
    epoch (after validation, so ``state.last_eval`` is fresh) ``on_epoch_end``; then the checkpoint
    is written; finally ``on_train_end``.

    A hook may set ``state.stop_training = True`` (the loop stops after that hook; a stop during an
    epoch still evaluates and records the partial epoch, but writes no checkpoint for it).

    ``state_dict``/``load_state_dict`` save and restore the callback's own state in checkpoints
    (store only tensors and plain python values). ``on_resume`` runs after ``load_state_dict`` and
    before the model weights, optimizer and RNG states are loaded.
    """

    def on_resume(self, state: TrainState) -> None: ...
    def on_train_start(self, state: TrainState) -> None: ...
    def on_step_end(self, state: TrainState) -> None: ...
    def on_check(self, state: TrainState) -> None: ...
    def on_epoch_end(self, state: TrainState) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


@dataclass
class TrainResult:
    """Outcome of :func:`train`. ``history`` has one row per epoch (``epoch`` is 0-based and
    ``step`` is the global step at that epoch's end; ``lr`` is the LR used by the epoch's last
    step; ``cumulative_seconds`` adds up across resumed runs, while ``total_seconds`` is this call's
    wall time). ``peak_memory_kind`` is ``"cuda_max_allocated"`` (``torch.cuda.max_memory_allocated``
    during this call) or ``"cpu_max_rss"`` (the process's lifetime peak resident set size, in
    bytes, from ``resource.getrusage``; ``"unavailable"`` where that module is missing)."""

    model: nn.Module
    history: pd.DataFrame
    total_seconds: float
    peak_memory_bytes: int
    peak_memory_kind: str
    stopped_early: bool


# --------------------------------------------------------------------------- helpers


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    generator = torch.Generator()
    generator.manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]))
    return generator


def model_structure(model: nn.Module) -> dict[str, list[int]]:
    """Parameter/buffer name -> shape, as stored in checkpoints."""
    return {name: list(t.shape) for name, t in model.state_dict().items()}


def _rng_states() -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": np_state["state"]["key"].tolist(),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": random.getstate(),
    }


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"][: torch.cuda.device_count()])
    np_state = states["numpy"]
    np.random.set_state({
        "bit_generator": np_state["bit_generator"],
        "state": {"key": np.asarray(np_state["key"], dtype=np.uint32), "pos": np_state["pos"]},
        "has_gauss": np_state["has_gauss"],
        "gauss": np_state["gauss"],
    })
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _save_checkpoint(path: Path, state: TrainState, callbacks: Sequence[Callback]) -> None:
    payload = {
        "format": 1,
        "model": state.model.state_dict(),
        "model_structure": model_structure(state.model),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "epoch": state.epoch,
        "global_step": state.global_step,
        "steps_per_epoch": state.steps_per_epoch,
        "history": state.history,
        "rng": _rng_states(),
        "callbacks": [{"class": type(cb).__qualname__, "state": cb.state_dict()} for cb in callbacks],
        "config": asdict(state.config),
        "grad_scaler": state.grad_scaler.state_dict() if state.grad_scaler is not None else None,
    }
    atomic_save(path, lambda tmp: torch.save(payload, tmp))


def _load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"Checkpoint {path} could not be read ({type(exc).__name__}: {exc}). It is probably "
            f"corrupt or truncated; delete it to start training from scratch, or pass resume=False."
        ) from exc
    required = {"model", "model_structure", "optimizer", "scheduler", "epoch", "global_step",
                "history", "rng", "callbacks"}
    if not isinstance(payload, dict) or not required <= payload.keys():
        missing = sorted(required - payload.keys()) if isinstance(payload, dict) else "everything"
        raise CheckpointError(
            f"Checkpoint {path} is not a training checkpoint of ebcore.train (missing: {missing}). "
            "Delete it, or pass resume=False."
        )
    return payload


def _check_structure(path: Path, saved: dict[str, list[int]], model: nn.Module) -> None:
    current = model_structure(model)
    if saved == current:
        return
    differences = []
    for name in sorted(saved.keys() | current.keys()):
        a, b = saved.get(name), current.get(name)
        if a != b:
            differences.append(f"{name}: checkpoint {a if a is not None else 'absent'}, "
                               f"model {b if b is not None else 'absent'}")
    shown = "; ".join(differences[:5]) + (f"; ... ({len(differences)} in all)" if len(differences) > 5 else "")
    raise CheckpointError(
        f"Checkpoint {path} belongs to a differently-shaped model: {shown}. Use another "
        "checkpoint_dir or resume=False."
    )


def _warn_config_changes(
    path: Path, saved: dict[str, Any] | None, config: TrainConfig, steps: int, saved_steps: int | None
) -> None:
    changed = [f"{k}: {saved[k]!r} -> {getattr(config, k)!r}"
               for k in _TRAJECTORY_FIELDS if saved is not None and k in saved and saved[k] != getattr(config, k)]
    if saved_steps is not None and saved_steps != steps:
        changed.append(f"steps_per_epoch: {saved_steps} -> {steps}")
    if changed:
        warnings.warn(f"Resuming from {path} with a different setup ({'; '.join(changed)}); the "
                      "result will differ from an uninterrupted run.", stacklevel=3)


def _restore(path: Path, state: TrainState, callbacks: Sequence[Callback]) -> int:
    """Load a checkpoint into ``state`` and the callbacks; return the epoch to continue with.

    Order: callback states, ``Callback.on_resume``, shape check, model weights, the saved states of
    the optimizer, scheduler and grad scaler, RNG states.
    """
    ckpt = _load_checkpoint(path)
    saved_callbacks = ckpt["callbacks"]
    if len(saved_callbacks) != len(callbacks):
        warnings.warn(f"Checkpoint {path} holds {len(saved_callbacks)} callback state(s) but "
                      f"{len(callbacks)} callback(s) were given; states are matched by index and "
                      "class name.", stacklevel=3)
    for i, (cb, saved) in enumerate(zip(callbacks, saved_callbacks)):
        if saved["class"] != type(cb).__qualname__:
            warnings.warn(f"Callback {i} is a {type(cb).__qualname__} but the checkpoint holds the "
                          f"state of a {saved['class']}; its state is not restored.", stacklevel=3)
            continue
        cb.load_state_dict(saved["state"])
    state.epoch, state.global_step = ckpt["epoch"], ckpt["global_step"]
    state.history = list(ckpt["history"])
    for cb in callbacks:
        cb.on_resume(state)
    _check_structure(path, ckpt["model_structure"], state.model)
    state.model.load_state_dict(ckpt["model"])
    state.optimizer.load_state_dict(ckpt["optimizer"])
    state.scheduler.load_state_dict(ckpt["scheduler"])
    if state.grad_scaler is not None and ckpt.get("grad_scaler"):
        state.grad_scaler.load_state_dict(ckpt["grad_scaler"])
    _set_rng_states(ckpt["rng"])
    _warn_config_changes(path, ckpt.get("config"), state.config, state.steps_per_epoch,
                         ckpt.get("steps_per_epoch"))
    state.epoch = ckpt["epoch"] + 1
    state.last_eval = {}
    return state.epoch


def _peak_memory(device: torch.device) -> tuple[int, str]:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), "cuda_max_allocated"
    try:
        import resource
        import sys
    except ImportError:
        return 0, "unavailable"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return int(rss if sys.platform == "darwin" else rss * 1024), "cpu_max_rss"


# --------------------------------------------------------------------------- the loop


def train(
    model: nn.Module,
    train_data: Dataset,
    config: TrainConfig,
    val_data: Dataset | None = None,
    callbacks: Iterable[Callback] = (),
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = True,
) -> TrainResult:
    """Train ``model`` on ``train_data`` for ``config.epochs`` epochs; see the module docstring.

    With ``checkpoint_dir``, ``checkpoint.pt`` there is (atomically) rewritten at every epoch end,
    after the ``on_epoch_end`` callbacks; with ``resume=True`` an existing checkpoint is restored
    (weights, optimizer, scheduler, history, RNG states, callback states) and training continues with
    the next epoch. Returns the trained model and the per-epoch history.
    """
    start_time = time.perf_counter()
    callbacks = list(callbacks)
    device = pick_device(config.device)
    check_precision(config.precision, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seed_everything(config.seed)

    loader_kwargs = dict(batch_size=config.batch_size, num_workers=config.num_workers,
                         pin_memory=device.type == "cuda")
    steps_per_epoch = len(DataLoader(train_data, **loader_kwargs))
    if steps_per_epoch == 0:
        raise ValueError("The training data set is empty.")
    total_steps = config.epochs * steps_per_epoch
    eval_batch_size = config.eval_batch_size or config.batch_size

    model = model.to(device)
    model.train()
    optimizer, scheduler = build_optimizer(model, config, total_steps)
    state = TrainState(model=model, optimizer=optimizer, scheduler=scheduler, epoch=0, global_step=0,
                       steps_per_epoch=steps_per_epoch, total_steps=total_steps, history=[],
                       device=device, config=config,
                       grad_scaler=make_grad_scaler(config.precision, device))

    def fire(hook: str) -> None:
        for cb in callbacks:
            getattr(cb, hook)(state)

    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    start_epoch = 0
    if ckpt_path is not None and resume and ckpt_path.exists():
        start_epoch = _restore(ckpt_path, state, callbacks)

    cumulative = state.history[-1]["cumulative_seconds"] if state.history else 0.0
    fire("on_train_start")
    epoch_bar = tqdm(range(start_epoch, config.epochs), initial=start_epoch, total=config.epochs,
                     desc="epochs", disable=not config.progress)
    for epoch in epoch_bar:
        if state.stop_training:
            break
        state.epoch = epoch
        epoch_start = time.perf_counter()
        state.model.train()
        loader = DataLoader(train_data, shuffle=True, generator=_epoch_generator(config.seed, epoch),
                            **loader_kwargs)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        seen, steps, last_lr = 0, 0, state.optimizer.param_groups[0]["lr"]
        step_bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not config.progress)
        for batch in step_bar:
            batch = _to_device(batch, device)
            state.optimizer.zero_grad(set_to_none=True)
            with autocast(config.precision, device):
                loss = _loss_of(state.model(**batch))
            scaler = state.grad_scaler
            if scaler is None:
                loss.backward()
            else:
                scaler.scale(loss).backward()
                scaler.unscale_(state.optimizer)  # clip the true gradients
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(state.model.parameters(), config.grad_clip)
            last_lr = state.optimizer.param_groups[0]["lr"]
            if scaler is None:
                state.optimizer.step()
                state.scheduler.step()
            else:
                scaler.step(state.optimizer)  # skipped when the gradients hold inf/nan
                scaler.update()
                with warnings.catch_warnings():
                    # A step skipped by the scaler makes LambdaLR warn about the call order; the
                    # schedule still follows the global step, as intended.
                    warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step",
                                            category=UserWarning)
                    state.scheduler.step()
            state.global_step += 1
            steps += 1
            n = batch["labels"].shape[0]
            loss_sum += loss.detach().double() * n
            seen += n
            if config.progress and state.global_step % 20 == 0:
                step_bar.set_postfix(loss=f"{loss.item():.4f}")
            fire("on_step_end")
            if config.check_every_steps and state.global_step % config.check_every_steps == 0:
                fire("on_check")
            if state.stop_training:
                break
        step_bar.close()
        finished_epoch = steps == steps_per_epoch

        state.last_eval = (evaluate(state.model, val_data, eval_batch_size, device, config.precision)
                           if val_data is not None else {})
        state.model.train()
        epoch_seconds = time.perf_counter() - epoch_start
        cumulative += epoch_seconds
        state.history.append({
            "epoch": epoch,
            "train_loss": loss_sum.item() / max(seen, 1),
            "val_loss": state.last_eval.get("loss", float("nan")),
            "val_accuracy": state.last_eval.get("accuracy", float("nan")),
            "lr": float(last_lr),
            "epoch_seconds": epoch_seconds,
            "cumulative_seconds": cumulative,
            "step": state.global_step,
        })
        epoch_bar.set_postfix(loss=f"{state.history[-1]['train_loss']:.4f}",
                              **({"val_acc": f"{state.last_eval['accuracy']:.3f}"} if state.last_eval else {}))
        fire("on_epoch_end")
        if ckpt_path is not None and finished_epoch:
            _save_checkpoint(ckpt_path, state, callbacks)
        if state.stop_training:
            break
    epoch_bar.close()

    completed = bool(state.history) and state.history[-1]["step"] >= total_steps
    fire("on_train_end")
    peak, kind = _peak_memory(device)
    history = pd.DataFrame(state.history, columns=list(HISTORY_COLUMNS))
    return TrainResult(model=state.model, history=history, total_seconds=time.perf_counter() - start_time,
                       peak_memory_bytes=peak, peak_memory_kind=kind, stopped_early=not completed)
