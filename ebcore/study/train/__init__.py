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

Continuing a longer run: ``TrainConfig.max_steps`` ends a call inside an epoch, ``schedule_steps`` /
``schedule_start`` place the call on a longer LR schedule, ``first_epoch`` continues its data order and
``train(..., optimizer_state=...)`` its AdamW state; a run cut at an epoch boundary and continued so gives
the uncut run's weights (without dropout, whose RNG state is not carried: each call reseeds).

Mixed precision: ``config.precision`` is ``"fp32"`` (default, unchanged behaviour), ``"bf16"``
(autocast on CUDA or CPU, no scaler) or ``"fp16"`` (autocast plus ``torch.amp.GradScaler``, CUDA
only); see :mod:`ebcore.study.precision`. Forward passes of training and evaluation run under the same
autocast; weights, gradients and AdamW's state stay float32. The grad scaler's state is saved in
checkpoints, so an fp16 run resumes exactly too. The loop uses hand-written autocast and scaler code
rather than Hugging Face Accelerate: it keeps this loop's own checkpoint format, RNG handling and
per-epoch data order (Accelerate's ``prepare`` wraps the data loader and its ``save_state`` has its
own layout), and multi-GPU training is the job of :mod:`ebcore.hf` under the Trainer.

Modules: :mod:`.config` (``TrainConfig``, device choice), :mod:`.optim` (AdamW and the LR schedule),
:mod:`.state` (``TrainState``, ``Callback``, ``TrainResult``), :mod:`.checkpoint` (checkpoints, RNG
states, exact resume), :mod:`.loop` (``train`` and ``evaluate``).
"""

from ..errors import DeviceUnavailableError
from .checkpoint import CHECKPOINT_NAME, model_structure
from .config import TrainConfig, pick_device
from .loop import evaluate, seed_everything, train
from .optim import build_optimizer, load_named_state, lr_factor, warmup_steps_for
from .state import HISTORY_COLUMNS, Callback, TrainResult, TrainState

__all__ = [
    "CHECKPOINT_NAME", "HISTORY_COLUMNS", "Callback", "DeviceUnavailableError", "TrainConfig", "TrainResult",
    "TrainState", "build_optimizer", "evaluate", "load_named_state", "lr_factor", "model_structure", "pick_device", "seed_everything",
    "train", "warmup_steps_for",
]
