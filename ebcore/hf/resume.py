"""Resuming a Trainer run that `EarlyBirdCallback` watched: read the callback's state from a checkpoint's
trainer_state.json, and get a fresh Trainer ready for `train(resume_from_checkpoint=...)` (restore the
detector, prune the dense model to the checkpoint's structure first).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from transformers import Trainer
from transformers.trainer_utils import get_last_checkpoint

from ..errors import MaskMismatchError
from ..masks import Mask
from ..surgery import prune_model
from .callback import EarlyBirdCallback, model_structure
from .checkpoint_weights import PREPARED, load_checkpoint_weights

logger = logging.getLogger("ebcore.hf")

TRAINER_STATE_FILE = "trainer_state.json"


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
    saved ticket mask; then loads the checkpoint's weights into it by name and shape (transformers 5
    saves ViT and Swin under old key names that `Trainer`'s own non-strict load skips silently), with a
    `CheckpointError` if any tensor is unmatched or of the wrong shape. The callback checks at train
    begin that every tensor still equals the checkpoint's. `True` means the last checkpoint in
    `args.output_dir`. Idempotent.
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
        return _load_weights(trainer, checkpoint)
    cb.load_state(entry)
    if cb.pruned:
        mask = Mask.from_dict(cb.ticket_mask)
        current = model_structure(trainer.model)
        if current == mask.structure:
            prune_model(trainer.model, mask)
        elif current != mask.kept_structure:
            raise MaskMismatchError(f"the checkpoint's model was pruned from {mask.structure} to {mask.kept_structure} "
                                    f"(heads, channels) per layer; this Trainer's model has {current}")
        if trainer.optimizer is not None or trainer.lr_scheduler is not None:
            logger.warning("prepare_resume: dropping the Trainer's optimizer and scheduler (they hold the dense "
                           "parameters); the Trainer builds new ones and loads their checkpoint state")
            trainer.optimizer, trainer.lr_scheduler = None, None
        trainer.model_wrapped = trainer.model
    return _load_weights(trainer, checkpoint)


def _load_weights(trainer: Trainer, checkpoint: str) -> str:
    """Load `checkpoint`'s weights into `trainer.model` exactly and remember it for the train-begin check."""
    n = load_checkpoint_weights(trainer.model, checkpoint)
    PREPARED[trainer] = checkpoint
    logger.info("prepare_resume: loaded all %d model tensors of %s by name and shape", n, checkpoint)
    return checkpoint
