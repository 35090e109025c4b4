"""How a run trains, decided before it starts (`retrain_plan`): where its weights come from, how many steps it
takes, where on which learning-rate schedule it starts, and whether it carries AdamW's state, for every run kind
(ebcore.study.kinds) and retrain mode.

    plan = retrain_plan(settings, data, "early_bird", "continue", ticket, eb_flops, dense_flops_per_sample)
    plan.schedule_start, plan.max_steps    # `continue` follows the dense schedule from the ticket's step

`continue` (with `continue_schedule = "follow"`) goes on from the ticket's global step on the dense run's
warm-up + cosine schedule, with the dense run's data order from that epoch and AdamW's moments of the kept
weights; "restart" rebuilds AdamW and restarts warm-up + cosine over the epochs left. Controls with a start of
their own train the full budget, a fine-tuning share of it, or exactly as many samples as give the EB pipeline's
total FLOPs at the cost ratio.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import Settings
from .kinds import FINETUNE_FRACTION, MODES, RUN_KINDS, retrain_epochs
from .splits import Data


@dataclass(frozen=True)
class RetrainPlan:
    """Where a pruned (or control) run's weights come from and how it trains."""

    start: str                  # "ticket", "init" (initial or pretrained), "fresh" (a new init) or "final"
    epochs: int                 # epochs of this call (the last may be partial: max_steps); 0: not trained
    max_steps: int | None = None
    schedule_start: int = 0     # the step of its schedule it starts at (follow: the ticket's step)
    schedule_steps: int | None = None   # its schedule's length (follow: the dense run's)
    first_epoch: int = 0        # data order continues at this epoch (follow)
    carry_optimizer: bool = False       # start AdamW from the dense run's state at the ticket (sliced)

    def as_params(self) -> dict:
        return {"start": self.start, "epochs": self.epochs, "max_steps": self.max_steps,
                "schedule_start": self.schedule_start, "schedule_steps": self.schedule_steps,
                "first_epoch": self.first_epoch, "carry_optimizer": self.carry_optimizer}


def _steps_per_epoch(s: Settings, data: Data) -> int:
    return -(-len(data.train) // s.spec.train.batch_size)


def _samples_to_steps(samples: float, train_size: int, batch_size: int) -> int:
    """Optimizer steps that see `samples` samples (rounded to the nearest step; the last batch of an epoch is
    short)."""
    per_epoch = -(-train_size // batch_size)
    full, rest = divmod(max(0.0, samples), train_size)
    return int(full) * per_epoch + min(per_epoch, int(round(rest / batch_size)))


def retrain_plan(s: Settings, data: Data, kind: str, mode: str, info: dict, eb_total_flops: float | None,
                 dense_flops_per_sample: float) -> RetrainPlan:
    """How run kind `kind` trains in `mode` (ebcore.study.kinds): its start, its steps and its schedule."""
    run_kind, budget = RUN_KINDS[kind], s.spec.train.epochs
    spe = _steps_per_epoch(s, data)
    if run_kind.start is None:
        retrain = MODES[mode]
        if retrain.start != "ticket":
            return RetrainPlan("init", budget)
        if s.continue_schedule == "restart":
            return RetrainPlan("ticket", retrain_epochs(retrain, budget, info["epoch_fraction"]))
        ticket_step = int(round(info["epoch_fraction"] * spe))   # the dense run's global step at the ticket
        left = budget * spe - ticket_step
        if left <= 0:
            return RetrainPlan("ticket", 0)
        return RetrainPlan("ticket", -(-left // spe), max_steps=left, schedule_start=ticket_step,
                           schedule_steps=budget * spe, first_epoch=ticket_step // spe, carry_optimizer=True)
    if run_kind.budget == "full":
        return RetrainPlan(run_kind.start, budget)
    if run_kind.budget == "finetune":
        return RetrainPlan(run_kind.start, max(1, round(FINETUNE_FRACTION * budget)))
    assert run_kind.budget == "eb_flops"
    if eb_total_flops is None:
        raise RuntimeError(f"run kind {kind!r} matches the EB pipeline's FLOPs at p = {s.cost_ratio:g}, but that "
                           "run is not among this seed's runs (the tickets run before the controls)")
    steps = _samples_to_steps(eb_total_flops / dense_flops_per_sample, len(data.train), s.spec.train.batch_size)
    steps = max(1, steps)
    return RetrainPlan(run_kind.start, -(-steps // spe), max_steps=steps)


def eb_total_flops(s: Settings, done: list[dict] | None) -> float | None:
    """The EB pipeline's total FLOPs at the cost ratio in the headline mode, from this seed's finished runs."""
    for rec in done or ():
        if rec.get("kind") in RUN_KINDS and RUN_KINDS[rec["kind"]].role == "ticket" \
                and rec.get("mode") == s.headline_mode and abs(rec.get("ratio", -1) - s.cost_ratio) < 1e-9:
            return float(rec["total_flops"])
    return None
