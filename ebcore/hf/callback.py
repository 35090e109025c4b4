"""`EarlyBirdCallback`: the `transformers.Trainer` callback that watches for the early-bird ticket (through
`ebcore.watch.TicketWatch`) and acts on it: stop, save the mask, or prune in place and train on.
The user documentation is the `ebcore.hf` package docstring.
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from torch import nn
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from ..adapters import get_adapter, prepare_model
from ..defaults import WINDOW, default_threshold
from ..detector import EarlyBirdDetector, Ticket
from ..errors import MaskMismatchError
from ..files import atomic_write_text
from ..masks import Mask, check_ratio
from ..watch import DetectorUpdate, TicketWatch
from .checkpoint_state import CheckpointState
from .checkpoint_weights import PREPARED, verify_checkpoint_weights
from .trainer_plumbing import (TrainerLink, check_masks_agree, check_prunable_setup, log_metrics,
                               make_prunable_in_trainer, prepare_model_at_attach, prune_in_trainer)

logger = logging.getLogger("ebcore.hf")

ACTIONS = ("stop", "save_mask", "prune")
MASK_FILE = "early_bird_mask.json"


class EarlyBirdCallback(TrainerCallback, CheckpointState):
    """Draw early-bird masks during `Trainer.train()` and act on the ticket at `ratio`.

    Args:
        ratio: the pruning ratio whose ticket acts (fraction of heads and of FFN channels removed).
        ratios: ratios the detector watches (their distances are logged); `ratio` is always among them.
        threshold: mask-distance threshold; None (default): the family's, from `ebcore.defaults` (0.1 for
            ViT/Swin, 0.01 for GPT-2/RoBERTa/BERT, the study's), resolved when training begins.
        window, scope, criterion, distance: passed to `EarlyBirdDetector`. "taylor" (for fine-tuning a
            pretrained model) scores with the gradient summed over every optimizer step so far.
        check_every_steps: check every N optimizer steps; None = at every epoch end.
        action: "stop", "save_mask" or "prune" (see the `ebcore.hf` docstring).
        mask_file: file name of the ticket mask under `args.output_dir`.
        gradient_sum: with "taylor", what the gradient sum spans: "cumulative" (default, every step so
            far) or "interval" (the steps since the previous check); see `ebcore.watch.TicketWatch`.

    Use `add_early_bird(trainer, ...)` (or `callback.attach(trainer)`): "prune" and logging through
    `trainer.log` need the Trainer. Added only through `Trainer(callbacks=[...])`, "stop" and
    "save_mask" work and the distances go to `state.log_history` only (reporters do not see them).
    """

    def __init__(self, ratio: float = 0.3, ratios: list[float] | tuple[float, ...] | None = None,
                 threshold: float | None = None, window: int = WINDOW, scope: str = "layerwise", criterion: str = "magnitude",
                 distance: str = "combined", check_every_steps: int | None = None, action: str = "prune",
                 mask_file: str = MASK_FILE, gradient_sum: str = "cumulative") -> None:
        _check_settings(action, check_every_steps, criterion, mask_file)
        self.ratio = check_ratio(ratio)
        self.ratios = tuple(sorted({check_ratio(r) for r in (ratios if ratios is not None else [])} | {self.ratio}))
        self.check_every_steps = None if check_every_steps is None else int(check_every_steps)
        self.action, self.mask_file = action, mask_file
        # raises ValueError on a bad threshold / window / scope / criterion / distance
        self._family_threshold = threshold is None  # resolved from the model in on_train_begin
        self.detector = EarlyBirdDetector(ratios=self.ratios, threshold=0.1 if threshold is None else threshold,
                                          window=window, scope=scope, criterion=criterion, distance=distance)
        # Taylor: scores from the gradient summed over every step so far, as the study does (one batch's
        # gradient is too noisy for masks to settle); the sum restarts on resume (it is not checkpointed).
        self.watch = TicketWatch({"detector": self.detector}, every_steps=self.check_every_steps,
                                 sum_gradients=criterion == "taylor", gradient_sum=gradient_sum)
        self.ticket_step: int | None = None     # global step at which the ticket at `ratio` appeared
        self.ticket_mask: dict | None = None    # Mask.to_dict() of that ticket
        self.pruned_step: int | None = None     # global step at which the model was pruned
        self.params_before: int | None = None
        self.params_after: int | None = None
        self.mask_path: str | None = None
        self._trainer: Trainer | None = None
        self._pending: dict[float, Mask] | None = None  # taylor: masks drawn before the optimizer step
        self._warned_unattached = False

    # --- results ---------------------------------------------------------------------------------
    @property
    def ticket(self) -> Ticket | None:
        """The detector's ticket at `ratio` (None until it appears)."""
        return self.detector.ticket(self.ratio)

    @property
    def mask(self) -> Mask | None:
        """The acting ticket's mask (None until it appears)."""
        return None if self.ticket_mask is None else Mask.from_dict(self.ticket_mask)

    @property
    def pruned(self) -> bool:
        return self.pruned_step is not None

    # --- attaching ---------------------------------------------------------------------------------
    def attach(self, trainer: Trainer) -> "EarlyBirdCallback":
        """Give the callback its Trainer (needed for "prune" and for logging through `trainer.log`) and
        add it to the Trainer's callbacks. Call before `trainer.train()`. Makes the model prunable in
        place first (GPT-2: Conv1D -> Linear), before the Trainer builds its optimizer."""
        if any(isinstance(cb, EarlyBirdCallback) and cb is not self for cb in trainer.callback_handler.callbacks):
            raise ValueError("this Trainer already has an EarlyBirdCallback; use one per Trainer "
                             "(it can watch several ratios with `ratios=`)")
        prepare_model_at_attach(trainer)
        self._trainer = trainer
        if self not in trainer.callback_handler.callbacks:
            trainer.add_callback(self)
        if not any(isinstance(cb, TrainerLink) for cb in trainer.callback_handler.callbacks):
            trainer.add_callback(TrainerLink(trainer, EarlyBirdCallback))
        return self

    def _require_trainer(self, what: str) -> Trainer:
        if self._trainer is None:
            raise ValueError(f"EarlyBirdCallback needs its Trainer for {what}: create it with "
                             "add_early_bird(trainer, ...) or call callback.attach(trainer) before trainer.train()")
        return self._trainer

    # --- Trainer events ----------------------------------------------------------------------------
    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       model: nn.Module | None = None, optimizer: Any = None, **kwargs: Any) -> None:
        if model is None:
            return
        if self._family_threshold and not self.detector.history:
            self.detector.threshold = default_threshold(model)
            self._family_threshold = False
        if self.pruned:
            _refuse_unpruned_model(model, Mask.from_dict(self.ticket_mask), self.pruned_step)
        make_prunable_in_trainer(self._trainer, model, optimizer)
        if self.action == "prune" and not self.pruned:
            check_prunable_setup(self._require_trainer("action='prune'"), args)
        if self._trainer is None and not self._warned_unattached:
            self._warned_unattached = True
            logger.warning("EarlyBirdCallback is not attached to its Trainer: distances go to state.log_history "
                           "only; use add_early_bird(trainer, ...) so that every reporter sees them")
        self._check_resumed_weights(state, model)
        if state.is_world_process_zero:
            self._warn_if_too_few_checks(state)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> None:
        found = self.ticket_step is not None
        if not found and state.is_world_process_zero:
            logger.warning("EarlyBirdCallback: no early-bird ticket at ratio %g after %d checks (training ended at "
                           "step %d; threshold %g, window %d): the model was not %s", self.ratio,
                           len(self.detector.history), state.global_step, self.detector.threshold,
                           self.detector.window, "pruned" if self.action == "prune" else "changed")
        log_metrics(self._trainer, state, control,
                    {"eb/ticket_found": int(found), "eb/checks": len(self.detector.history)})

    def _warn_if_too_few_checks(self, state: TrainerState) -> None:
        """A warning at train begin when the run as planned cannot reach a ticket: fewer checks than the
        rule needs (`window` checks: 2 for the consecutive rule)."""
        if self.ticket_step is not None or self.pruned:
            return
        planned = planned_checks(state, self.check_every_steps) + len(self.detector.history)
        needed = self.detector.window
        if planned < needed:
            when = (f"every {self.check_every_steps} steps of {state.max_steps}" if self.check_every_steps
                    else f"at the end of each of {state.num_train_epochs} epochs")
            logger.warning("EarlyBirdCallback: this run allows %d checks (%s), but a ticket needs %d (window %d): "
                           "no ticket can be found; lower check_every_steps or train longer", planned, when, needed,
                           needed)

    def _check_resumed_weights(self, state: TrainerState, model: nn.Module) -> None:
        """After the Trainer loaded a checkpoint: every tensor must equal the checkpoint's (prepare_resume
        loaded them by name and shape); without prepare_resume, a warning."""
        if self._trainer is not None and self._trainer in PREPARED:
            checkpoint = PREPARED.pop(self._trainer)
            n = verify_checkpoint_weights(model, checkpoint)
            logger.info("EarlyBirdCallback: all %d model tensors equal those of %s", n, checkpoint)
        elif state.global_step > 0 and self._trainer is not None:
            logger.warning("EarlyBirdCallback: training resumes at step %d without prepare_resume: transformers "
                           "may leave renamed weights (ViT, Swin) un-loaded; call ckpt = prepare_resume(trainer, "
                           "checkpoint) before trainer.train(resume_from_checkpoint=ckpt)", state.global_step)

    def on_pre_optimizer_step(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                              model: nn.Module | None = None, **kwargs: Any) -> None:
        # Taylor scores need this step's gradients (added to the running sum), which are gone by on_step_end.
        if self.detector.criterion != "taylor" or model is None:
            return
        if not self._checking():
            self.watch.grad_sum = {}
            return
        self.watch.accumulate_gradients(model)
        if self.watch.due_after_step(state.global_step + 1):
            self._pending = self.watch.draw(model)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    model: nn.Module | None = None, **kwargs: Any) -> None:
        if self.watch.due_after_step(state.global_step):
            self._check(args, state, control, model, at=state.global_step)

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     model: nn.Module | None = None, **kwargs: Any) -> None:
        if self.watch.due_at_epoch_end:
            self._check(args, state, control, model, at=int(round(state.epoch or 0)))

    # --- the check and the action --------------------------------------------------------------------
    def _checking(self) -> bool:
        if self.pruned or (self.action == "stop" and self.ticket_step is not None):
            return False
        return not self.detector.found_all

    def _check(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               model: nn.Module | None, at: int) -> None:
        if model is None or not self._checking():
            return
        masks, self._pending = (self._pending or self.watch.draw(model)), None
        check_masks_agree(masks, state.global_step)
        update = self.watch.record(masks, at).ruled
        metrics = _check_metrics(update, len(self.detector.history), state.global_step)
        if self.ratio in update.new_tickets:
            self._act(args, state, control, model, metrics)
        log_metrics(self._trainer, state, control, metrics)

    def _act(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model: nn.Module,
             metrics: dict[str, float]) -> None:
        ticket, step = self.detector.ticket(self.ratio), state.global_step
        mask = Mask(ticket.mask.layers, meta={**ticket.mask.meta, "ratio": self.ratio, "ticket_step": step,
                                              "ticket_at": ticket.at, "distance": ticket.distance})
        self.ticket_step, self.ticket_mask = step, mask.to_dict()
        metrics.update({"eb/ticket_step": step, "eb/ticket_distance": float(ticket.distance)})
        if args.output_dir:
            self.mask_path = str(Path(args.output_dir) / self.mask_file)
            if state.is_world_process_zero:
                atomic_write_text(self.mask_path, json.dumps(mask.to_dict(), indent=1))
        if self.action == "stop":
            control.should_training_stop = True
            if state.is_world_process_zero:
                logger.info("early-bird ticket at ratio %g, step %d: stopping (mask in %s)", self.ratio, step,
                            self.mask_path)
        elif self.action == "prune":
            report = prune_in_trainer(self._require_trainer("action='prune'"), model, mask)
            self.pruned_step, self.params_before, self.params_after = step, report.params_before, report.params_after
            metrics.update({"eb/params": report.params_after, "eb/param_ratio": report.param_ratio})
            if state.is_world_process_zero:
                logger.info("early-bird ticket at ratio %g, step %d: pruned %d -> %d parameters", self.ratio, step,
                            report.params_before, report.params_after)


def add_early_bird(trainer: Trainer, **kwargs: Any) -> EarlyBirdCallback:
    """Create an `EarlyBirdCallback(**kwargs)`, attach it to `trainer` and return it."""
    return EarlyBirdCallback(**kwargs).attach(trainer)


def planned_checks(state: TrainerState, every_steps: int | None) -> int:
    """How many checks the rest of the run (from `state.global_step` to `state.max_steps`) holds."""
    if every_steps:
        return state.max_steps // every_steps - state.global_step // every_steps
    return max(0, math.ceil(state.num_train_epochs or 0) - math.floor(state.epoch or 0))


def model_structure(model: nn.Module) -> list[tuple[int, int]]:
    """(heads, FFN channels) per layer of `model` (made prunable in place first)."""
    return [(b.num_heads, b.num_channels) for b in get_adapter(model).blocks(prepare_model(model))]


def _check_metrics(update: DetectorUpdate, checks: int, step: int) -> dict[str, float]:
    """What a check logs: its count, the distances per ratio (when known), the steps of new tickets."""
    metrics: dict[str, float] = {"eb/checks": checks}
    for r in update.distances:
        if update.distances[r] is not None:
            metrics[f"eb/distance@{r:g}"] = float(update.distances[r])
        if update.consecutive[r] is not None:
            metrics[f"eb/consecutive@{r:g}"] = float(update.consecutive[r])
    for r in update.new_tickets:
        metrics[f"eb/ticket_step@{r:g}"] = step
    return metrics


def _refuse_unpruned_model(model: nn.Module, ticket: Mask, pruned_step: int) -> None:
    """MaskMismatchError unless `model` has the structure the run's state says it was pruned to."""
    kept, current = ticket.kept_structure, model_structure(model)
    if current != kept:
        raise MaskMismatchError(
            f"this run's state says the model was pruned at step {pruned_step} to {kept} (heads, "
            f"channels) per layer, but the model has {current}; call prepare_resume(trainer, checkpoint) "
            "before trainer.train(resume_from_checkpoint=checkpoint)")


def _check_settings(action: str, check_every_steps: int | None, criterion: str, mask_file: str) -> None:
    """ValueError on settings of the callback itself (the detector checks its own)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; choose one of {ACTIONS}")
    if check_every_steps is not None and (isinstance(check_every_steps, bool) or
                                          int(check_every_steps) != check_every_steps or check_every_steps < 1):
        raise ValueError(f"check_every_steps must be a positive integer or None (epoch ends), "
                         f"got {check_every_steps!r}")
    if criterion == "taylor" and check_every_steps is None:
        raise ValueError("criterion='taylor' needs gradients, which are cleared at epoch ends: "
                         "give check_every_steps (masks are then drawn just before the optimizer step)")
    if not mask_file or os.path.basename(mask_file) != mask_file:
        raise ValueError(f"mask_file must be a plain file name, got {mask_file!r}")
