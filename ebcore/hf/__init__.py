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
  new parameters, the scheduler continuing at the same step; the optimizer state is carried over,
  every pruned weight's AdamW moments sliced to its kept rows / columns, step counts kept
  (`ebcore.optim_state`). Under DDP the DDP reducer is
  rebuilt around the new parameters (the DDP object stays the same).

Checks run every `check_every_steps` optimizer steps, or at epoch ends when it is None, until the ticket
has acted (for "save_mask": until every watched ratio has its ticket). Each check logs `eb/checks`,
`eb/distance@<ratio>` (largest distance from the new mask to the window, once the window is full) and
`eb/consecutive@<ratio>` through `trainer.log`, so every reporter and `trainer.state.log_history` see
them; the ticket adds `eb/ticket_step` (and `eb/ticket_step@<ratio>` per ratio), pruning `eb/params`
and `eb/param_ratio`; train end logs `eb/ticket_found` (1 or 0) and, without a ticket, a warning. A run
planned with fewer checks than the rule needs (`window`; 2 for the consecutive rule) is warned about at
train begin (logger "ebcore.hf"). Drawing masks leaves the RNG stream untouched (a run with checks trains exactly
like one without, until it prunes).

Criterion. "magnitude" (default) scores weights only: right for training from scratch, but on a pretrained
model the masks barely move, so the ticket is the pretrained model's one-shot mask. "taylor" (fine-tuning,
the study's choice; needs `check_every_steps`) scores |weight x gradient summed over every optimizer step
so far|; the sum is not checkpointed and restarts on resume.

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
`prepare_resume` also loads the checkpoint's weights itself, by name and shape (`checkpoint_weights`):
transformers 5 saves ViT and Swin under old key names that `Trainer`'s own non-strict load skips silently
(32 of ViT's 40 tensors would stay as initialised, even in a dense run); a `CheckpointError` names any
tensor left unmatched or of the wrong shape, and at train begin the callback checks that every tensor
equals the checkpoint's. Use `prepare_resume` for dense resumes too.
(`save_pretrained` output of a pruned model cannot be reloaded by `from_pretrained`: sizes mismatch.
Use `ebcore.io.save_pruned` / `load_pruned` for the final model.)

Layout: `callback` (the callback), `trainer_plumbing` (DDP ranks, wrappers, optimizer and scheduler
rebuild, logging), `resume` (checkpoints), `checkpoint_weights` (exact weight loading); the watching itself is `ebcore.watch.TicketWatch`.
"""
from __future__ import annotations

from . import resume, trainer_plumbing
from .callback import ACTIONS, MASK_FILE, EarlyBirdCallback, add_early_bird
from .resume import prepare_resume, read_saved_state

TRAINER_STATE_FILE = resume.TRAINER_STATE_FILE
masks_hash = trainer_plumbing.masks_hash

__all__ = ["ACTIONS", "MASK_FILE", "EarlyBirdCallback", "add_early_bird", "prepare_resume", "read_saved_state"]
