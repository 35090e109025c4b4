"""Checkpoints of the training loop: what one holds (weights, optimizer, scheduler, grad scaler, history,
RNG states, callback states, config), its atomic write, and the restore that makes a resumed run
continue exactly where the interrupted one stopped."""

from __future__ import annotations

import random
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ...errors import CheckpointError
from ...files import atomic_save
from .config import TrainConfig
from .state import Callback, TrainState

CHECKPOINT_NAME = "checkpoint.pt"
# Config fields that change the trajectory of a run; a resumed run warns when they differ.
_TRAJECTORY_FIELDS = (
    "epochs", "batch_size", "lr", "weight_decay", "warmup_fraction", "grad_clip", "seed", "precision",
    "max_steps", "schedule_steps", "schedule_start", "first_epoch",
)


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


def save_checkpoint(path: Path, state: TrainState, callbacks: Sequence[Callback]) -> None:
    """Write ``state`` and the callbacks' states to ``path`` (atomically: a crash leaves the old file)."""
    payload = {
        "format": 1,
        "model": state.model.state_dict(),
        "model_structure": model_structure(state.model),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "epoch": state.epoch,
        "global_step": state.global_step,
        "samples_seen": state.samples_seen,
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
            f"Checkpoint {path} is not a training checkpoint of ebcore.study.train (missing: {missing}). "
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


def restore_checkpoint(path: Path, state: TrainState, callbacks: Sequence[Callback]) -> int:
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
    state.samples_seen = int(ckpt.get("samples_seen", -1))   # -1: an older checkpoint; the loop fills it in
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
