"""The study's training loop rebuilt on Hugging Face `Trainer` (a prototype for bench/trainer_vs_loop.py; the
study itself still trains through ebcore.study.train).

    trainer = study_trainer(model, spec.train, seed, out_dir, data.train, data.val)   # same hyper-parameters
    eb = add_early_bird(trainer, ratio=0.3, ratios=(0.1, 0.3, 0.5), window=2, action="save_mask")
    trainer.train()
    curves = curves_from_log(trainer.state.log_history)    # the loop's history columns, from the Trainer's log

What had to change for the Trainer to train *exactly* like the loop (measured: final weights bitwise equal):
- weight decay groups: the Trainer decays every parameter whose name has no "bias"/"norm" (so Swin's
  `relative_position_bias_table` goes undecayed); the loop decays every parameter with more than one
  dimension that is not a bias or a LayerNorm one. `get_decay_parameter_names` takes the loop's rule.
- LR schedule: the Trainer's "cosine" warms up from 0 (`step / warmup`), the loop from `1 / warmup`
  (`(step + 1) / warmup`, ebcore.study.train.optim.lr_factor): one step apart; `create_scheduler` takes the loop's.
- data order: the Trainer shuffles with accelerate's seedable sampler (its own permutation per epoch);
  `EpochSampler` yields the loop's permutation of each epoch, and the loader gets its own generator so
  that it draws nothing from the global torch RNG (which drives dropout), as the loop's loaders do.
"""
from __future__ import annotations

import math
import os
import time
from typing import Any, Iterator

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from safetensors.torch import save_model
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

from transformers.utils import SAFE_WEIGHTS_NAME

from ebcore.study.specs import TrainSettings
from ebcore.study.train.loop import _epoch_generator  # the loop's per-epoch shuffling generator
from ebcore.study.train.optim import _no_decay, lr_factor


class EpochSampler(Sampler[int]):
    """The training loop's data order: in epoch e, the permutation that
    `DataLoader(shuffle=True, generator=_epoch_generator(seed, e))` yields (that loader draws its base seed
    from the generator first, then the permutation)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:  # called by the Trainer (through accelerate) at each epoch start
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        gen = _epoch_generator(self.seed, self.epoch)
        torch.empty((), dtype=torch.int64).random_(generator=gen)  # the loop's loader: its base seed
        yield from torch.randperm(self.size, generator=gen).tolist()


class StudyTrainer(Trainer):
    """`Trainer` with the study loop's weight-decay groups, warm-up + cosine schedule and data order."""

    def __init__(self, *args: Any, warmup_fraction: float = 0.1, native_keys: bool = False, **kwargs: Any) -> None:
        self.warmup_fraction, self.native_keys = warmup_fraction, native_keys
        super().__init__(*args, **kwargs)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """With `native_keys`, rewrite the checkpoint's weights under the model's own parameter names (the
        pinned transformers writes ViT/Swin under their old names, which its resume does not map back: the
        known defect this option works around, for measurement only)."""
        super()._save(output_dir, state_dict)
        if self.native_keys:
            out = output_dir if output_dir is not None else self.args.output_dir
            save_model(self.accelerator.unwrap_model(self.model), os.path.join(out, SAFE_WEIGHTS_NAME))

    def get_decay_parameter_names(self, model: nn.Module) -> list[str]:
        return [n for n, p in model.named_parameters() if not _no_decay(n, p)]

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None
                         ) -> torch.optim.lr_scheduler.LRScheduler:
        if self.lr_scheduler is None:
            warmup = int(round(self.warmup_fraction * num_training_steps))
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
                self.optimizer if optimizer is None else optimizer,
                lambda step: lr_factor(step, warmup, num_training_steps))
            self._created_lr_scheduler = True
        return self.lr_scheduler

    def get_train_dataloader(self) -> DataLoader:
        loader = DataLoader(self.train_dataset, batch_size=self._train_batch_size,
                            sampler=EpochSampler(len(self.train_dataset), self.args.seed),
                            generator=torch.Generator(),  # keep the global RNG (dropout) untouched
                            collate_fn=self.data_collator, num_workers=self.args.dataloader_num_workers,
                            pin_memory=self.args.dataloader_pin_memory)
        return self.accelerator.prepare(loader)


def accuracy(eval_pred: Any) -> dict[str, float]:
    """compute_metrics: argmax accuracy (the loop's `evaluate`)."""
    logits, labels = eval_pred
    return {"accuracy": float((np.asarray(logits).argmax(-1) == np.asarray(labels)).mean())}


def study_args(settings: TrainSettings, seed: int, out_dir: str | os.PathLike, *, evaluate: bool = True,
               epochs: int | None = None, save_steps: int | None = None, logging: str = "epoch",
               grad_clip: float | None = 1.0) -> TrainingArguments:
    """TrainingArguments with the loop's hyper-parameters (AdamW betas/eps are torch's defaults in both)."""
    save = dict(save_strategy="steps", save_steps=save_steps, save_only_model=False) if save_steps else \
        dict(save_strategy="no")
    return TrainingArguments(
        output_dir=str(out_dir), per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size, learning_rate=settings.lr,
        weight_decay=settings.weight_decay, num_train_epochs=epochs or settings.epochs,
        max_grad_norm=grad_clip if grad_clip is not None else 0.0, optim="adamw_torch", seed=seed, data_seed=seed,
        eval_strategy="epoch" if evaluate else "no", logging_strategy=logging, logging_steps=10,
        report_to="none", disable_tqdm=True, use_cpu=not torch.cuda.is_available(), dataloader_pin_memory=False,
        remove_unused_columns=False, **save)


def study_trainer(model: nn.Module, settings: TrainSettings, seed: int, out_dir: str | os.PathLike,
                  train_data: Dataset, val_data: Dataset | None = None, native_keys: bool = False,
                  **arg_kwargs: Any) -> StudyTrainer:
    """A StudyTrainer on `model` with the loop's hyper-parameters of `settings` (ebcore.study.specs)."""
    args = study_args(settings, seed, out_dir, evaluate=val_data is not None, **arg_kwargs)
    trainer = StudyTrainer(model=model, args=args, train_dataset=train_data, eval_dataset=val_data,
                           compute_metrics=accuracy if val_data is not None else None,
                           warmup_fraction=settings.warmup_fraction, native_keys=native_keys)
    trainer.remove_callback(PrinterCallback)  # no log lines on stdout (disable_tqdm prints them instead)
    return trainer


class StepClock(TrainerCallback):
    """Wall time between consecutive optimizer steps (the Trainer's on_step_end)."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.stamps.append(time.perf_counter())


class WeightsAtTicket(TrainerCallback):
    """A copy of the weights when the EarlyBirdCallback `eb` first has its ticket (the study's watcher saves
    these for the `continue` mode; the callback itself does not). Add it after `eb`."""

    def __init__(self, eb: Any) -> None:
        self.eb, self.weights, self.step, self.epoch = eb, None, None, None

    def _grab(self, state: Any, model: nn.Module | None) -> None:
        if self.weights is None and self.eb.ticket_step is not None and model is not None:
            self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self.step, self.epoch = state.global_step, state.epoch

    def on_step_end(self, args: Any, state: Any, control: Any, model: nn.Module | None = None, **kw: Any) -> None:
        self._grab(state, model)

    def on_epoch_end(self, args: Any, state: Any, control: Any, model: nn.Module | None = None, **kw: Any) -> None:
        self._grab(state, model)


def curves_from_log(log_history: list[dict], steps_per_epoch: int, settings: TrainSettings) -> pd.DataFrame:
    """The loop's per-epoch history (train_loss, val_loss, val_accuracy, lr, step) from a Trainer's
    `state.log_history` logged per epoch. The Trainer logs the LR *after* the scheduler step (the next
    step's); the loop records the LR of the epoch's last step, which `lr_factor` gives back exactly."""
    total = steps_per_epoch * settings.epochs
    warmup = int(round(settings.warmup_fraction * total))
    rows: dict[int, dict[str, float]] = {}
    for entry in log_history:
        if "epoch" not in entry or "step" not in entry:
            continue
        epoch = int(math.ceil(entry["epoch"] - 1e-9)) - 1
        row = rows.setdefault(epoch, {"epoch": epoch})
        if "loss" in entry:
            row["train_loss"] = entry["loss"]
            row["step"] = entry["step"]
            row["lr"] = settings.lr * lr_factor(entry["step"] - 1, warmup, total)
            row["lr_logged"] = entry.get("learning_rate")
        if "eval_loss" in entry:
            row["val_loss"], row["val_accuracy"] = entry["eval_loss"], entry.get("eval_accuracy")
    return pd.DataFrame([rows[e] for e in sorted(rows)])
