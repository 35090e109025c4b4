"""The training loop itself (:func:`train`) and the evaluation it runs at every epoch end
(:func:`evaluate`); see the package docstring for what it guarantees."""

from __future__ import annotations

import os
import random
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..precision import autocast, check_precision, make_grad_scaler
from ..progress import tqdm
from .checkpoint import CHECKPOINT_NAME, restore_checkpoint, save_checkpoint
from .config import TrainConfig, pick_device
from .optim import build_optimizer, load_named_state
from .state import HISTORY_COLUMNS, Callback, TrainResult, TrainState


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
    autocast (see :mod:`ebcore.study.precision`).
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


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    generator = torch.Generator()
    generator.manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]))
    return generator


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


def _optimizer_step(state: TrainState, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """One step on ``batch``: forward under autocast, backward (scaled for fp16), gradient clipping,
    AdamW step and scheduler step. Returns the batch's loss (a 0-d tensor, still attached)."""
    config, device, scaler = state.config, state.device, state.grad_scaler
    state.optimizer.zero_grad(set_to_none=True)
    with autocast(config.precision, device):
        loss = _loss_of(state.model(**batch))
    if scaler is None:
        loss.backward()
    else:
        scaler.scale(loss).backward()
        scaler.unscale_(state.optimizer)  # clip the true gradients
    if config.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(state.model.parameters(), config.grad_clip)
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
    return loss


def train(
    model: nn.Module,
    train_data: Dataset,
    config: TrainConfig,
    val_data: Dataset | None = None,
    callbacks: Iterable[Callback] = (),
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = True,
    optimizer_state: Mapping[str, dict] | None = None,
) -> TrainResult:
    """Train ``model`` on ``train_data`` for ``config.epochs`` epochs; see the module docstring.

    With ``checkpoint_dir``, ``checkpoint.pt`` there is (atomically) rewritten at every epoch end,
    after the ``on_epoch_end`` callbacks; with ``resume=True`` an existing checkpoint is restored
    (weights, optimizer, scheduler, history, RNG states, callback states) and training continues with
    the next epoch. Returns the trained model and the per-epoch history.

    ``optimizer_state`` (default None: AdamW starts empty) starts AdamW from a given state per parameter
    name, e.g. a dense run's moments and step counts carried through a prune (see
    :func:`~ebcore.study.train.optim.load_named_state`); a restored checkpoint replaces it.

    The call takes ``config.call_steps(steps_per_epoch)`` optimizer steps (``epochs`` epochs, or fewer with
    ``max_steps``: the last epoch is then partial and recorded as such; a checkpoint is written at that
    final step too, so resuming a finished run trains nothing). The LR follows a schedule of
    ``config.schedule_steps`` steps from ``config.schedule_start``; epoch ``i`` shuffles like epoch
    ``config.first_epoch + i`` (see :class:`TrainConfig`). History's ``epoch`` and ``step`` count this
    call's own epochs and steps.
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
    total_steps = config.call_steps(steps_per_epoch)   # ValueError when it runs past the schedule
    epochs = -(-total_steps // steps_per_epoch)           # the last one partial when max_steps cuts it
    eval_batch_size = config.eval_batch_size or config.batch_size

    model = model.to(device)
    model.train()
    optimizer, scheduler = build_optimizer(model, config, config.schedule_length(total_steps),
                                           start_step=config.schedule_start)
    if optimizer_state is not None:
        load_named_state(optimizer, model, optimizer_state)
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
        start_epoch = restore_checkpoint(ckpt_path, state, callbacks)
        if state.samples_seen < 0:   # a checkpoint from before samples were counted: always at an epoch's end
            state.samples_seen = start_epoch * len(train_data)

    cumulative = state.history[-1]["cumulative_seconds"] if state.history else 0.0
    fire("on_train_start")
    label = f"{config.description}: " if config.description else ""
    epoch_bar = tqdm(range(start_epoch, epochs), initial=start_epoch, total=epochs,
                     desc=f"{label}epochs", disable=not config.progress)
    for epoch in epoch_bar:
        if state.stop_training:
            break
        state.epoch = epoch
        epoch_start = time.perf_counter()
        state.model.train()
        loader = DataLoader(train_data, shuffle=True,
                            generator=_epoch_generator(config.seed, config.first_epoch + epoch), **loader_kwargs)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        seen, steps, last_lr = 0, 0, state.optimizer.param_groups[0]["lr"]
        step_bar = tqdm(loader, desc=f"{label}epoch {epoch + 1}/{epochs}", leave=False,
                        disable=not config.progress)
        for batch in step_bar:
            batch = _to_device(batch, device)
            last_lr = state.optimizer.param_groups[0]["lr"]
            loss = _optimizer_step(state, batch)
            state.global_step += 1
            steps += 1
            n = batch["labels"].shape[0]
            loss_sum += loss.detach().double() * n
            seen += n
            state.samples_seen += n
            if config.progress and state.global_step % 20 == 0:
                step_bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
            fire("on_step_end")
            if config.check_every_steps and state.global_step % config.check_every_steps == 0:
                fire("on_check")
            if state.stop_training or state.global_step >= total_steps:
                break
        step_bar.close()
        finished_epoch = steps == steps_per_epoch
        finished_run = state.global_step >= total_steps   # max_steps may end the run inside an epoch

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
        epoch_bar.set_postfix(loss=f"{state.history[-1]['train_loss']:.4f}", refresh=False,  # shown with the count
                              **({"val_acc": f"{state.last_eval['accuracy']:.3f}"} if state.last_eval else {}))
        fire("on_epoch_end")
        if ckpt_path is not None and (finished_epoch or finished_run):
            save_checkpoint(ckpt_path, state, callbacks)
        if state.stop_training:
            break
    epoch_bar.close()

    completed = bool(state.history) and state.history[-1]["step"] >= total_steps
    fire("on_train_end")
    peak, kind = _peak_memory(device)
    history = pd.DataFrame(state.history, columns=list(HISTORY_COLUMNS))
    return TrainResult(model=state.model, history=history, total_seconds=time.perf_counter() - start_time,
                       peak_memory_bytes=peak, peak_memory_kind=kind, stopped_early=not completed,
                       samples_seen=state.samples_seen)
