"""What `EarlyBirdCallback` needs from inside `transformers.Trainer`: the ranks of a DDP run (agreeing on
the masks), the wrappers it can prune through, pruning the model in place with the DDP reducer, the
optimizer and the LR scheduler rebuilt around the new parameters (the Trainer's and accelerate's own
builders), logging through `trainer.log`, and the link that hands the Trainer to its callback.
"""
from __future__ import annotations

import logging
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from ..adapters import get_adapter, prepare_model
from ..masks import Mask
from ..optim_state import ParameterSlices
from ..surgery import PruneReport, prune_model
from ..watch import rng_untouched

logger = logging.getLogger("ebcore.hf")

# --- distributed: every rank must draw the same masks ---------------------------------------------

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


def check_masks_agree(masks: dict[float, Mask], step: int) -> None:
    """RuntimeError unless every rank drew the same `masks` at this check (a collective)."""
    mine = masks_hash(masks)
    hashes = _gather(mine)
    if any(h != mine for h in hashes):
        raise RuntimeError(
            f"early-bird masks differ across ranks at step {step} (hash per rank: {hashes}): the "
            "model replicas have diverged, so ranks would prune differently. Check that every rank trains the "
            "same model under DDP (same initialization, synchronized gradients).")


# --- what the Trainer holds --------------------------------------------------------------------------

def _trainable(model: nn.Module) -> list[nn.Parameter]:
    seen, out = set(), []
    for p in model.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def optimizer_covers(optimizer: Any, model: nn.Module) -> bool:
    """Whether `optimizer` (or the optimizer accelerate wraps) holds every trainable parameter of `model`."""
    inner = getattr(optimizer, "optimizer", optimizer)
    held = {id(p) for g in inner.param_groups for p in g["params"]}
    return all(id(p) in held for p in _trainable(model))


def prepare_model_at_attach(trainer: Trainer) -> None:
    """Make the Trainer's model prunable in place (GPT-2: Conv1D -> Linear) when the callback is attached;
    ValueError if that replaced parameters an optimizer given to the Trainer already holds."""
    model = trainer.model
    get_adapter(model)  # UnsupportedModelError early, naming the supported classes
    before = {id(p) for p in model.parameters()}
    prepare_model(model)
    if trainer.optimizer is not None and {id(p) for p in model.parameters()} != before:
        raise ValueError("making the model prunable (GPT-2: Conv1D -> Linear) replaced parameters that the "
                         "optimizer given to the Trainer holds; call ebcore.prepare_model(model) before "
                         "building the optimizer and the Trainer")


def make_prunable_in_trainer(trainer: Trainer | None, model: nn.Module, optimizer: Any) -> None:
    """At train begin: make `model` prunable in place; if that replaced parameters after the Trainer built
    its optimizer (GPT-2 not attached through `add_early_bird`), rebuild the optimizer and scheduler around
    the new parameters, or say how to avoid it."""
    prepare_model(model)
    if optimizer is None or optimizer_covers(optimizer, model):
        return
    if trainer is None:
        raise ValueError("the optimizer does not hold the model's parameters (GPT-2 had to be made prunable, "
                         "Conv1D -> Linear, after the Trainer built its optimizer); use "
                         "add_early_bird(trainer, ...) before train(), or call ebcore.prepare_model(model) "
                         "before building the Trainer")
    if trainer.model_wrapped is not trainer.model:
        raise ValueError("GPT-2 must be made prunable before training under a wrapper: use "
                         "add_early_bird(trainer, ...) before trainer.train()")
    rebuild_optimizer_and_scheduler(trainer)


def check_prunable_setup(trainer: Trainer, args: TrainingArguments) -> None:
    """NotImplementedError when the Trainer wraps the model in something "prune" cannot rebuild
    (DeepSpeed, FSDP, wrappers other than DDP / DataParallel); a warning with `load_best_model_at_end`."""
    if getattr(trainer, "is_deepspeed_enabled", False) or getattr(trainer, "is_fsdp_enabled", False):
        raise NotImplementedError("EarlyBirdCallback(action='prune') does not support DeepSpeed or FSDP; "
                                  "use action='save_mask' and restart training from the saved mask")
    wrapped = trainer.model_wrapped
    if wrapped is not trainer.model and not isinstance(
            wrapped, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        raise NotImplementedError(
            f"EarlyBirdCallback(action='prune') cannot prune through a {type(wrapped).__name__} wrapper; "
            "use action='save_mask' and restart training from the saved mask")
    if args.load_best_model_at_end:
        logger.warning("EarlyBirdCallback(action='prune') with load_best_model_at_end: if the best checkpoint "
                       "was saved before pruning (dense), loading it into the pruned model will fail")


# --- pruning in place and rebuilding the training machinery -------------------------------------------

def prune_in_trainer(trainer: Trainer, model: nn.Module, mask: Mask) -> PruneReport:
    """Prune `model` (which must be `trainer.model`) in place with `mask`, RNG untouched, then rebuild the
    DDP reducer (under DDP), the optimizer and the LR scheduler around the new parameters; the optimizer
    state of every pruned parameter is sliced to its kept rows / columns (`ebcore.optim_state`)."""
    if model is not trainer.model:
        raise RuntimeError("the model given to the callback is not trainer.model; cannot prune safely")
    slices = ParameterSlices.record(model, mask)
    with rng_untouched():
        report = prune_model(model, mask)
    if isinstance(trainer.model_wrapped, nn.parallel.DistributedDataParallel):
        rebuild_ddp_reducer(trainer.model_wrapped)
    rebuild_optimizer_and_scheduler(trainer, slices)
    return report


def rebuild_ddp_reducer(ddp: nn.parallel.DistributedDataParallel) -> None:
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


def rebuild_optimizer_and_scheduler(trainer: Trainer, slices: ParameterSlices | None = None) -> None:
    """New optimizer and scheduler for the model's current parameters, built the way the Trainer builds
    them (`create_optimizer`, accelerate's `prepare_optimizer`, `create_scheduler`), continuing the
    schedule at the current step with the current learning rates. With `slices` (recorded before a
    prune), every parameter's optimizer state is carried over, a pruned parameter's sliced to its kept
    entries; without, only for the parameters that are still the same tensors with the same shapes."""
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
        carried = slices.slice_state(old_inner.state, trainer.model) if slices is not None else {}
        for group in new_inner.param_groups:
            for p in group["params"]:
                if p in carried:
                    new_inner.state[p] = carried[p]
                    continue
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


# --- logging and the Trainer link ----------------------------------------------------------------------

def log_metrics(trainer: Trainer | None, state: TrainerState, control: TrainerControl,
                metrics: dict[str, float]) -> None:
    """Log `metrics` through `trainer.log` (every reporter sees them); without a Trainer, append them to
    `state.log_history` only."""
    if trainer is not None:
        # trainer.log -> on_log clears control.should_log, which would drop the Trainer's own log of
        # this step (loss, learning rate): keep the flag as it was.
        should_log = control.should_log
        trainer.log(dict(metrics))
        control.should_log = should_log
        trainer.control.should_log = should_log
    else:
        state.log_history.append({**metrics, "epoch": state.epoch, "step": state.global_step})


class TrainerLink(TrainerCallback):
    """Gives the Trainer to its callbacks of class `linked` at train begin: with
    `restore_callback_states_from_checkpoint=True` the Trainer replaces the attached callback by a new
    instance built from the checkpoint (which cannot hold a reference to the Trainer)."""

    def __init__(self, trainer: Trainer, linked: type) -> None:
        self.trainer, self.linked = trainer, linked

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        for cb in self.trainer.callback_handler.callbacks:
            if isinstance(cb, self.linked):
                cb._trainer = self.trainer
