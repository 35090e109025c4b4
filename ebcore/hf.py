"""Early-bird tickets inside a Hugging Face `Trainer`: a callback that draws masks while training, logs
their distances, and stops, saves the ticket, or prunes the model in place and trains on smaller.

    eb = add_early_bird(trainer, ratio=0.3, action="prune", check_every_steps=50)  # before train()
    trainer.train()       # resume: trainer.train(resume_from_checkpoint=prepare_resume(trainer, ckpt))

Actions when the ticket at `ratio` appears (the detector may watch several `ratios` at once); with
every action the ticket mask is written to `output_dir/early_bird_mask.json` (rank 0; `Mask.from_json`):
- "stop": stop training (a search run).
- "save_mask": keep training the dense model (restart later from the mask: `prune_model(model, mask)`).
- "prune": remove the pruned heads / FFN channels in place and keep training; the optimizer and the
  LR scheduler are rebuilt through the Trainer's own `create_optimizer` / `create_scheduler` for the
  new parameters, the scheduler continuing at the same step (AdamW moments are kept for the
  parameters pruning did not touch, fresh for the pruned layers). Under DDP the DDP reducer is
  rebuilt around the new parameters (the DDP object stays the same).

Checks run every `check_every_steps` optimizer steps, or at epoch ends when it is None, until the ticket
has acted (for "save_mask": until every watched ratio has its ticket). Each check logs `eb/checks`,
`eb/distance@<ratio>` (largest distance from the new mask to the window, once the window is full) and
`eb/consecutive@<ratio>` through `trainer.log`, so every reporter and `trainer.state.log_history` see
them; the ticket adds `eb/ticket_step` (and `eb/ticket_step@<ratio>` per ratio), pruning `eb/params`
and `eb/param_ratio`. Drawing masks leaves the RNG stream untouched (a run with checks trains exactly
like one without, until it prunes).

Caveats. The optimizer is rebuilt with the Trainer's `create_optimizer`, so an optimizer instance passed
as `Trainer(optimizers=...)` is replaced by one built from the TrainingArguments (or
`optimizer_cls_and_kwargs`). With `load_best_model_at_end`, a best checkpoint saved before pruning
cannot be loaded into the pruned model. GPT-2 is converted in place (Conv1D -> Linear, exact) when the
callback is attached, so its Trainer checkpoints hold Linear-layout (transposed) weights. DeepSpeed,
FSDP and other wrappers than DDP / DataParallel are refused for "prune" (use "save_mask").

Distributed (torchrun / DDP). Every rank draws its masks; at every check the mask hashes are compared
across ranks (`all_gather_object`; RuntimeError if they differ), so all ranks act at the same step with
the same mask. Only rank 0 writes the mask file; `trainer.log` runs on every rank as the Trainer's own
logging does (its reporters and printing act on rank 0 only). "prune" under DDP rebuilds the DDP
reducer in place around the pruned module (as DDP does when unpickled), then the optimizer.

Checkpoints and resume. The callback is a `transformers.trainer_callback.ExportableState`: its detector
history, ticket and whether/when it pruned go into each checkpoint's `trainer_state.json`. The Trainer
loads a checkpoint's weights *before* it restores callback states, so a pruned checkpoint must be
given a model of the pruned structure first:

    trainer = Trainer(model=fresh_dense_model, args=args, train_dataset=ds)
    add_early_bird(trainer, ratio=0.3, action="prune", check_every_steps=50)   # same settings
    ckpt = prepare_resume(trainer, "out/checkpoint-400")   # restores the detector, prunes the model
    trainer.train(resume_from_checkpoint=ckpt)

This works with either value of `TrainingArguments.restore_callback_states_from_checkpoint`.
(`save_pretrained` output of a pruned model cannot be reloaded by `from_pretrained`: sizes mismatch.
Use `ebcore.io.save_pruned` / `load_pruned` for the final model.)
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import get_last_checkpoint

from .adapters import get_adapter, prepare_model
from .defaults import default_threshold
from .detector import EarlyBirdDetector, Ticket
from .errors import MaskMismatchError
from .masks import Mask, check_ratio
from .surgery import prune_model

__all__ = ["ACTIONS", "MASK_FILE", "EarlyBirdCallback", "add_early_bird", "prepare_resume", "read_saved_state"]

logger = logging.getLogger(__name__)

ACTIONS = ("stop", "save_mask", "prune")
MASK_FILE = "early_bird_mask.json"
TRAINER_STATE_FILE = "trainer_state.json"


# --- distributed helpers --------------------------------------------------------------------------

def _world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _gather(value: Any) -> list[Any]:
    """`value` from every rank (a collective: every rank must call it at the same point)."""
    rank, world = _world()
    if world == 1:
        return [value]
    out: list[Any] = [None] * world
    dist.all_gather_object(out, value)
    return out


def masks_hash(masks: dict[float, Mask]) -> str:
    """One hash over the masks of all ratios of a check."""
    return ";".join(f"{r:g}:{masks[r].hash()}" for r in sorted(masks))


def _rng_untouched():
    """Context that restores the CPU RNG state on exit: the dependency-graph trace draws random example
    inputs from the global generator, which would shift dropout and shuffling of the training run (and
    make a resumed run differ from an uninterrupted one)."""
    return torch.random.fork_rng(devices=[])


def _trainable(model: nn.Module) -> list[nn.Parameter]:
    seen, out = set(), []
    for p in model.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def _optimizer_covers(optimizer: Any, model: nn.Module) -> bool:
    inner = getattr(optimizer, "optimizer", optimizer)
    held = {id(p) for g in inner.param_groups for p in g["params"]}
    return all(id(p) in held for p in _trainable(model))


# --- rebuilding the training machinery after pruning ----------------------------------------------

def _rebuild_ddp_reducer(ddp: nn.parallel.DistributedDataParallel) -> None:
    """Rebuild the reducer of a DDP wrapper around its (pruned in place) module.

    This is what DDP does itself when it is unpickled (`__setstate__`): collect the module's current
    parameters, bucket them, build a new Reducer (the old one and its autograd hooks go away).
    Parameter shapes are checked to agree across ranks first.
    """
    from torch.distributed.utils import _verify_param_shape_across_processes

    unsupported = [name for name, bad in (
        ("a communication hook", bool(getattr(ddp, "_comm_hooks", []))),
        ("mixed_precision", getattr(ddp, "mixed_precision", None) is not None),
        ("delay_all_reduce_named_params", bool(getattr(ddp, "_delay_all_reduce_params", []))),
        ("the compiled (python) reducer", bool(getattr(ddp, "_use_python_reducer", False))),
    ) if bad]
    if unsupported:
        raise NotImplementedError(
            f"EarlyBirdCallback(action='prune') cannot rebuild a DDP wrapper that uses {', '.join(unsupported)}; "
            "use action='save_mask' and restart training from the saved mask.")
    ddp._module_parameters = [p for n, p in ddp.module.named_parameters() if n not in ddp.parameters_to_ignore]
    parameters, expect_sparse_gradient = ddp._build_params_for_reducer()
    _verify_param_shape_across_processes(ddp.process_group, parameters)
    param_to_name_mapping = ddp._build_debug_param_to_name_mapping(parameters)
    ddp._ddp_init_helper(parameters, expect_sparse_gradient, param_to_name_mapping, ddp.static_graph)


def _rebuild_optimizer_and_scheduler(trainer: Trainer) -> None:
    """New optimizer and scheduler for the model's current parameters, built the way the Trainer builds
    them (`create_optimizer`, accelerate's `prepare_optimizer`, `create_scheduler`), continuing the
    schedule at the current step with the current learning rates. Optimizer state is carried over for
    the parameters that are still the same tensors with the same shapes."""
    from accelerate.optimizer import AcceleratedOptimizer

    old_opt, old_sched = trainer.optimizer, trainer.lr_scheduler
    old_inner = old_opt.optimizer if isinstance(old_opt, AcceleratedOptimizer) else old_opt
    old_lrs = [g["lr"] for g in old_inner.param_groups] if old_inner is not None else None

    trainer.optimizer = None
    new_inner = trainer.create_optimizer()
    if old_inner is not None:
        if len(new_inner.param_groups) != len(old_lrs):
            raise RuntimeError(f"the rebuilt optimizer has {len(new_inner.param_groups)} parameter groups, the old "
                               f"one {len(old_lrs)}; cannot continue its learning rates")
        for group in new_inner.param_groups:
            for p in group["params"]:
                st = old_inner.state.get(p)
                if st and all(not torch.is_tensor(v) or v.dim() == 0 or v.shape == p.shape for v in st.values()):
                    new_inner.state[p] = st
    new_opt = new_inner
    if isinstance(old_opt, AcceleratedOptimizer):
        acc = trainer.accelerator
        if hasattr(acc, "_optimizers"):
            acc._optimizers = [o for o in acc._optimizers if o is not old_opt]
        new_opt = acc.prepare_optimizer(new_inner)
    trainer.optimizer = new_opt

    if old_sched is not None:
        sched_state = old_sched.state_dict()
        trainer.lr_scheduler = None
        new_sched = trainer.create_scheduler(num_training_steps=trainer.state.max_steps, optimizer=new_opt)
        new_sched.load_state_dict(sched_state)  # same step count, base LRs, last LRs
    if old_lrs is not None:
        for group, lr in zip(new_inner.param_groups, old_lrs):
            group["lr"] = lr
    handler = trainer.callback_handler
    handler.optimizer, handler.lr_scheduler = trainer.optimizer, trainer.lr_scheduler


# --- the callback ---------------------------------------------------------------------------------

class EarlyBirdCallback(TrainerCallback, ExportableState):
    """Draw early-bird masks during `Trainer.train()` and act on the ticket at `ratio`.

    Args:
        ratio: the pruning ratio whose ticket acts (fraction of heads and of FFN channels removed).
        ratios: ratios the detector watches (their distances are logged); `ratio` is always among them.
        threshold: mask-distance threshold; None (default): the family's, from `ebcore.defaults` (0.1 for
            ViT/Swin, 0.01 for GPT-2/RoBERTa/BERT, the study's), resolved when training begins.
        window, scope, criterion, distance: passed to `EarlyBirdDetector`.
        check_every_steps: check every N optimizer steps; None = at every epoch end.
        action: "stop", "save_mask" or "prune" (see the module docstring).
        mask_file: file name of the ticket mask under `args.output_dir`.

    Use `add_early_bird(trainer, ...)` (or `callback.attach(trainer)`): "prune" and logging through
    `trainer.log` need the Trainer. Added only through `Trainer(callbacks=[...])`, "stop" and
    "save_mask" work and the distances go to `state.log_history` only (reporters do not see them).
    """

    def __init__(self, ratio: float = 0.3, ratios: list[float] | tuple[float, ...] | None = None,
                 threshold: float | None = None, window: int = 5, scope: str = "layerwise", criterion: str = "magnitude",
                 distance: str = "combined", check_every_steps: int | None = None, action: str = "prune",
                 mask_file: str = MASK_FILE) -> None:
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
        self.ratio = check_ratio(ratio)
        watched = [check_ratio(r) for r in (ratios if ratios is not None else [])]
        self.ratios = tuple(sorted(set(watched) | {self.ratio}))
        self.check_every_steps = None if check_every_steps is None else int(check_every_steps)
        self.action = action
        self.mask_file = mask_file
        # raises ValueError on a bad threshold / window / scope / criterion / distance
        self._family_threshold = threshold is None  # resolved from the model in on_train_begin
        self.detector = EarlyBirdDetector(ratios=self.ratios, threshold=0.1 if threshold is None else threshold,
                                          window=window, scope=scope, criterion=criterion, distance=distance)
        self.ticket_step: int | None = None     # global step at which the ticket at `ratio` appeared
        self.ticket_mask: dict | None = None    # Mask.to_dict() of that ticket
        self.pruned_step: int | None = None     # global step at which the model was pruned
        self.params_before: int | None = None
        self.params_after: int | None = None
        self.mask_path: str | None = None
        self._trainer: Trainer | None = None
        self._pending: dict[float, Mask] | None = None  # taylor: masks drawn before the optimizer step
        self._warned_unattached = False

    # --- state (ExportableState) ---------------------------------------------------------------
    def _args(self) -> dict:
        cfg = self.detector.config()
        return {"ratio": self.ratio, "ratios": list(self.ratios), "threshold": cfg["threshold"],
                "window": cfg["window"], "scope": cfg["scope"], "criterion": cfg["criterion"],
                "distance": cfg["distance"], "check_every_steps": self.check_every_steps, "action": self.action,
                "mask_file": self.mask_file}

    def state(self) -> dict:
        return {"args": self._args(), "attributes": {
            "detector_state": self.detector.state_dict(), "ticket_step": self.ticket_step,
            "ticket_mask": self.ticket_mask, "pruned_step": self.pruned_step, "params_before": self.params_before,
            "params_after": self.params_after, "mask_path": self.mask_path}}

    @property
    def detector_state(self) -> dict:
        return self.detector.state_dict()

    @detector_state.setter
    def detector_state(self, value: dict) -> None:  # the Trainer restores attributes with setattr
        self.detector.load_state_dict(value)

    def load_state(self, state: dict) -> None:
        """Restore from a `state()` dict (as stored in a checkpoint's trainer_state.json)."""
        saved_args = dict(state.get("args", {}))
        if self._family_threshold and "threshold" in saved_args:  # the saved run had resolved it already
            self.detector.threshold = float(saved_args["threshold"])
            self._family_threshold = False
        if saved_args and {**saved_args, "ratios": [float(r) for r in saved_args.get("ratios", [])]} != {
                **self._args(), "ratios": list(self.ratios)}:
            logger.warning("EarlyBirdCallback: restoring a state saved with settings %s into a callback with %s",
                           saved_args, self._args())
        for key, value in state.get("attributes", {}).items():
            setattr(self, key, value)

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
        others = [cb for cb in trainer.callback_handler.callbacks
                  if isinstance(cb, EarlyBirdCallback) and cb is not self]
        if others:
            raise ValueError("this Trainer already has an EarlyBirdCallback; use one per Trainer "
                             "(it can watch several ratios with `ratios=`)")
        model = trainer.model
        get_adapter(model)  # UnsupportedModelError early, naming the supported classes
        before = {id(p) for p in model.parameters()}
        prepare_model(model)
        if trainer.optimizer is not None and {id(p) for p in model.parameters()} != before:
            raise ValueError("making the model prunable (GPT-2: Conv1D -> Linear) replaced parameters that the "
                             "optimizer given to the Trainer holds; call ebcore.prepare_model(model) before "
                             "building the optimizer and the Trainer")
        self._trainer = trainer
        if self not in trainer.callback_handler.callbacks:
            trainer.add_callback(self)
        if not any(isinstance(cb, _TrainerLink) for cb in trainer.callback_handler.callbacks):
            trainer.add_callback(_TrainerLink(trainer))
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
            kept = Mask.from_dict(self.ticket_mask).kept_structure
            current = [(b.num_heads, b.num_channels) for b in get_adapter(model).blocks(prepare_model(model))]
            if current != kept:
                raise MaskMismatchError(
                    f"this run's state says the model was pruned at step {self.pruned_step} to {kept} (heads, "
                    f"channels) per layer, but the model has {current}; call prepare_resume(trainer, checkpoint) "
                    "before trainer.train(resume_from_checkpoint=checkpoint)")
        prepare_model(model)
        if optimizer is not None and not _optimizer_covers(optimizer, model):
            trainer = self._trainer
            if trainer is None:
                raise ValueError("the optimizer does not hold the model's parameters (GPT-2 had to be made prunable, "
                                 "Conv1D -> Linear, after the Trainer built its optimizer); use "
                                 "add_early_bird(trainer, ...) before train(), or call ebcore.prepare_model(model) "
                                 "before building the Trainer")
            if trainer.model_wrapped is not trainer.model:
                raise ValueError("GPT-2 must be made prunable before training under a wrapper: use "
                                 "add_early_bird(trainer, ...) before trainer.train()")
            _rebuild_optimizer_and_scheduler(trainer)
        if self.action == "prune" and not self.pruned:
            trainer = self._require_trainer("action='prune'")
            if getattr(trainer, "is_deepspeed_enabled", False) or getattr(trainer, "is_fsdp_enabled", False):
                raise NotImplementedError("EarlyBirdCallback(action='prune') does not support DeepSpeed or FSDP; "
                                          "use action='save_mask' and restart training from the saved mask")
            wrapped = trainer.model_wrapped
            if wrapped is not trainer.model and not isinstance(
                    wrapped, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
                raise NotImplementedError(
                    f"EarlyBirdCallback(action='prune') cannot prune through a {type(wrapped).__name__} wrapper; "
                    "use action='save_mask' and restart training from the saved mask")
        if self.action == "prune" and not self.pruned and args.load_best_model_at_end:
            logger.warning("EarlyBirdCallback(action='prune') with load_best_model_at_end: if the best checkpoint "
                           "was saved before pruning (dense), loading it into the pruned model will fail")
        if self._trainer is None and not self._warned_unattached:
            self._warned_unattached = True
            logger.warning("EarlyBirdCallback is not attached to its Trainer: distances go to state.log_history "
                           "only; use add_early_bird(trainer, ...) so that every reporter sees them")

    def on_pre_optimizer_step(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                              model: nn.Module | None = None, **kwargs: Any) -> None:
        # Taylor scores need this step's gradients, which are gone by on_step_end.
        if (self.detector.criterion == "taylor" and self.check_every_steps is not None and model is not None
                and self._checking() and (state.global_step + 1) % self.check_every_steps == 0):
            with _rng_untouched():
                self._pending = self.detector.draw_masks(model)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    model: nn.Module | None = None, **kwargs: Any) -> None:
        if self.check_every_steps is not None and state.global_step % self.check_every_steps == 0:
            self._check(args, state, control, model, at=state.global_step)

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     model: nn.Module | None = None, **kwargs: Any) -> None:
        if self.check_every_steps is None:
            self._check(args, state, control, model, at=int(round(state.epoch or 0)))

    # --- the check -----------------------------------------------------------------------------------
    def _checking(self) -> bool:
        if self.pruned or (self.action == "stop" and self.ticket_step is not None):
            return False
        return not self.detector.found_all

    def _check(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               model: nn.Module | None, at: int) -> None:
        if model is None or not self._checking():
            return
        with _rng_untouched():  # tracing the graph draws random example inputs: keep training's RNG stream
            masks, self._pending = (self._pending or self.detector.draw_masks(model)), None
        mine = masks_hash(masks)
        hashes = _gather(mine)
        if any(h != mine for h in hashes):
            raise RuntimeError(
                f"early-bird masks differ across ranks at step {state.global_step} (hash per rank: {hashes}): the "
                "model replicas have diverged, so ranks would prune differently. Check that every rank trains the "
                "same model under DDP (same initialization, synchronized gradients).")
        had = set(self.detector.tickets)
        distances = self.detector.add_masks(masks, at)
        consecutive = self.detector.history[-1].consecutive
        metrics: dict[str, float] = {"eb/checks": len(self.detector.history)}
        for r in self.ratios:
            if distances[r] is not None:
                metrics[f"eb/distance@{r:g}"] = float(distances[r])
            if consecutive[r] is not None:
                metrics[f"eb/consecutive@{r:g}"] = float(consecutive[r])
        for r in sorted(set(self.detector.tickets) - had):
            metrics[f"eb/ticket_step@{r:g}"] = state.global_step
        if self.ratio in self.detector.tickets and self.ratio not in had:
            self._act(args, state, control, model, metrics)
        self._log(state, control, metrics)

    def _act(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model: nn.Module,
             metrics: dict[str, float]) -> None:
        ticket = self.detector.ticket(self.ratio)
        mask = Mask(ticket.mask.layers, meta={**ticket.mask.meta, "ratio": self.ratio, "ticket_step":
                                              state.global_step, "ticket_at": ticket.at,
                                              "distance": ticket.distance})
        self.ticket_step, self.ticket_mask = state.global_step, mask.to_dict()
        metrics["eb/ticket_step"] = state.global_step
        metrics["eb/ticket_distance"] = float(ticket.distance)
        if args.output_dir:
            path = Path(args.output_dir) / self.mask_file
            self.mask_path = str(path)
            if state.is_world_process_zero:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(mask.to_dict(), indent=1))
                os.replace(tmp, path)
        if self.action == "stop":
            control.should_training_stop = True
            if state.is_world_process_zero:
                logger.info("early-bird ticket at ratio %g, step %d: stopping (mask in %s)", self.ratio,
                            state.global_step, self.mask_path)
        elif self.action == "prune":
            trainer = self._require_trainer("action='prune'")
            if model is not trainer.model:
                raise RuntimeError("the model given to the callback is not trainer.model; cannot prune safely")
            with _rng_untouched():
                report = prune_model(model, mask)
            if isinstance(trainer.model_wrapped, nn.parallel.DistributedDataParallel):
                _rebuild_ddp_reducer(trainer.model_wrapped)
            _rebuild_optimizer_and_scheduler(trainer)
            self.pruned_step = state.global_step
            self.params_before, self.params_after = report.params_before, report.params_after
            metrics["eb/params"] = report.params_after
            metrics["eb/param_ratio"] = report.param_ratio
            if state.is_world_process_zero:
                logger.info("early-bird ticket at ratio %g, step %d: pruned %d -> %d parameters", self.ratio,
                            state.global_step, report.params_before, report.params_after)

    def _log(self, state: TrainerState, control: TrainerControl, metrics: dict[str, float]) -> None:
        if self._trainer is not None:
            # trainer.log -> on_log clears control.should_log, which would drop the Trainer's own log of
            # this step (loss, learning rate): keep the flag as it was.
            should_log = control.should_log
            self._trainer.log(dict(metrics))
            control.should_log = should_log
            self._trainer.control.should_log = should_log
        else:
            state.log_history.append({**metrics, "epoch": state.epoch, "step": state.global_step})


class _TrainerLink(TrainerCallback):
    """Gives the Trainer to its EarlyBirdCallback at train begin: with
    `restore_callback_states_from_checkpoint=True` the Trainer replaces the attached callback by a new
    instance built from the checkpoint (which cannot hold a reference to the Trainer)."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        for cb in self.trainer.callback_handler.callbacks:
            if isinstance(cb, EarlyBirdCallback):
                cb._trainer = self.trainer


# --- helpers ----------------------------------------------------------------------------------------

def add_early_bird(trainer: Trainer, **kwargs: Any) -> EarlyBirdCallback:
    """Create an `EarlyBirdCallback(**kwargs)`, attach it to `trainer` and return it."""
    return EarlyBirdCallback(**kwargs).attach(trainer)


def _find_callback(trainer: Trainer) -> EarlyBirdCallback:
    found = [cb for cb in trainer.callback_handler.callbacks if isinstance(cb, EarlyBirdCallback)]
    if not found:
        raise ValueError("the Trainer has no EarlyBirdCallback; call add_early_bird(trainer, ...) with the settings "
                         "of the run that wrote the checkpoint, then prepare_resume")
    return found[0]


def read_saved_state(checkpoint: str | os.PathLike) -> dict | None:
    """The EarlyBirdCallback state stored in a checkpoint's trainer_state.json (None if there is none)."""
    path = Path(checkpoint) / TRAINER_STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {checkpoint} is not a Trainer checkpoint folder")
    saved = json.loads(path.read_text()).get("stateful_callbacks") or {}
    entry = saved.get(EarlyBirdCallback.__name__)
    if isinstance(entry, list):
        entry = entry[-1] if entry else None
    return entry


def prepare_resume(trainer: Trainer, checkpoint: str | os.PathLike | bool = True) -> str:
    """Get `trainer` ready for `trainer.train(resume_from_checkpoint=checkpoint)`; returns the checkpoint path.

    Restores the attached EarlyBirdCallback's detector history, ticket and pruning record from the
    checkpoint, and if the run had pruned, prunes `trainer.model` (a freshly built dense model) with the
    saved ticket mask, so that the Trainer can then load the checkpoint's weights into it. `True`
    means the last checkpoint in `args.output_dir`. Idempotent.
    """
    if checkpoint is True:
        checkpoint = get_last_checkpoint(trainer.args.output_dir)
        if checkpoint is None:
            raise ValueError(f"no checkpoint found in {trainer.args.output_dir}")
    elif checkpoint is False or checkpoint is None:
        raise ValueError("give the checkpoint folder (or True for the last one in output_dir)")
    checkpoint = str(checkpoint)
    cb = _find_callback(trainer)
    entry = read_saved_state(checkpoint)
    if entry is None:
        logger.warning("%s holds no EarlyBirdCallback state: the run that wrote it had no callback; "
                       "the detector starts afresh", checkpoint)
        return checkpoint
    cb.load_state(entry)
    if cb.pruned:
        mask = Mask.from_dict(cb.ticket_mask)
        model = prepare_model(trainer.model)
        current = [(b.num_heads, b.num_channels) for b in get_adapter(model).blocks(model)]
        if current == mask.structure:
            prune_model(model, mask)
        elif current != mask.kept_structure:
            raise MaskMismatchError(f"the checkpoint's model was pruned from {mask.structure} to {mask.kept_structure} "
                                    f"(heads, channels) per layer; this Trainer's model has {current}")
        if trainer.optimizer is not None or trainer.lr_scheduler is not None:
            logger.warning("prepare_resume: dropping the Trainer's optimizer and scheduler (they hold the dense "
                           "parameters); the Trainer builds new ones and loads their checkpoint state")
            trainer.optimizer, trainer.lr_scheduler = None, None
        trainer.model_wrapped = trainer.model
    return checkpoint
