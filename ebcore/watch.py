"""Watching a training run for early-bird tickets, whatever drives the training: the core shared by the
study's training-loop watcher (`ebcore.study.dense_watch.DenseRunWatch`) and the Hugging Face Trainer
callback (`ebcore.hf.EarlyBirdCallback`).

A `TicketWatch` holds one or more detectors (e.g. the study's "consecutive" and "window" rules) and
one of them rules: at a check it scores the model once with the ruling detector's criterion, draws a
mask per ratio, and records those same masks in every detector. It knows when a check is due (every N
optimizer steps, or at epoch ends), can keep a sum of gradients for the Taylor criterion (by default
cumulative: over every step since training began, never reset; or "interval": over the steps since the
previous check), and never touches the training run's RNG stream.

    watch = TicketWatch({"consecutive": det2, "window": det5}, ruling="window", every_steps=50)
    ...                                           # after each optimizer step:
    if watch.due_after_step(step):
        event = watch.check(model, at=step)
        for ratio in event.ruled.new_tickets: ...   # the ruling detector's ticket appeared now
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
from torch import nn

from .detector import EarlyBirdDetector
from .masks import Mask

__all__ = ["CheckEvent", "DetectorUpdate", "GRADIENT_SUMS", "TicketWatch", "rng_untouched"]

# what the Taylor gradient sum spans: every step so far, or the steps since the last check
GRADIENT_SUMS = ("cumulative", "interval")


def rng_untouched() -> AbstractContextManager:
    """Context that restores the CPU RNG state on exit, so that scoring, tracing or pruning at a check
    cannot shift dropout and shuffling of the training run (a run with checks trains exactly like one
    without, and a resumed run like an uninterrupted one)."""
    return torch.random.fork_rng(devices=[])


@dataclass(frozen=True)
class DetectorUpdate:
    """What one check did to one detector, per ratio."""

    distances: dict[float, float | None]    # largest distance to the rest of the window (None: not full)
    consecutive: dict[float, float | None]  # distance to the previous check (None at the first)
    new_tickets: tuple[float, ...]          # ratios whose ticket appeared at this check, ascending


@dataclass(frozen=True)
class CheckEvent:
    """One check: the masks drawn (one per ratio) and what each detector made of them."""

    at: int | float | str
    masks: dict[float, Mask]
    updates: dict[str, DetectorUpdate]  # per detector name
    ruling: str                         # the name of the ruling detector

    @property
    def ruled(self) -> DetectorUpdate:
        """The ruling detector's update."""
        return self.updates[self.ruling]


class TicketWatch:
    """Checks a set of detectors from one scoring pass of the ruling one.

    Args:
        detectors: detectors by name; they must share ratios (the ruling one's masks go to all).
        ruling: the name of the detector whose criterion scores the model; optional with one detector.
        every_steps: a check is due after every N-th optimizer step; None (or 0): at epoch ends.
        sum_gradients: Taylor criterion with a gradient sum: `accumulate_gradients` after every step adds
            each parameter's gradient to a sum, and masks are drawn with that sum as the gradient (the real
            `.grad` is restored afterwards). Off: masks use `.grad` as it is.
        gradient_sum: what that sum spans. "cumulative" (default): every step since training began, never
            reset, so each check scores |w · Σg| over the whole run so far. "interval": the sum is emptied
            after each `draw`, so each check scores with the gradients summed since the previous check.
            On fine-tuned MiniLM (bench/taylor_sum.py, checks every 4 steps) interval masks moved by
            0.16-0.26 per check to the end of the run, cumulative ones by 0.02-0.04 at the end (partly
            mechanically: the sum grows); the study and the Trainer callback use the cumulative sum.
    """

    def __init__(self, detectors: dict[str, EarlyBirdDetector], ruling: str | None = None,
                 every_steps: int | None = None, sum_gradients: bool = False,
                 gradient_sum: str = "cumulative") -> None:
        if ruling is None:
            if len(detectors) != 1:
                raise ValueError(f"name the ruling detector among {sorted(detectors)}")
            ruling = next(iter(detectors))
        if ruling not in detectors:
            raise ValueError(f"the ruling detector {ruling!r} is not among {sorted(detectors)}")
        ratios = {name: tuple(d.ratios) for name, d in detectors.items()}
        if len(set(ratios.values())) > 1:
            raise ValueError(f"the detectors of one watch must share their ratios (the ruling one's masks go to "
                             f"all), got {ratios}")
        self.detectors, self.ruling = detectors, ruling
        self.every_steps = every_steps or None
        if gradient_sum not in GRADIENT_SUMS:
            raise ValueError(f"gradient_sum must be one of {GRADIENT_SUMS}, got {gradient_sum!r}")
        self.sum_gradients = sum_gradients
        self.gradient_sum = gradient_sum
        self.grad_sum: dict[str, torch.Tensor] = {}  # parameter name -> gradient summed (see `gradient_sum`)

    @property
    def ruling_detector(self) -> EarlyBirdDetector:
        return self.detectors[self.ruling]

    # --- the schedule ------------------------------------------------------------------------------
    def due_after_step(self, step: int) -> bool:
        """Whether a check is due once optimizer step number `step` (1-based, global) is done."""
        return self.every_steps is not None and step % self.every_steps == 0

    @property
    def due_at_epoch_end(self) -> bool:
        """Whether checks run at epoch ends (no step schedule)."""
        return self.every_steps is None

    # --- Taylor: the gradient sum ---------------------------------------------------------------
    @torch.no_grad()
    def accumulate_gradients(self, model: nn.Module) -> None:
        """Add every parameter's current gradient to the sum (no-op without `sum_gradients`)."""
        if not self.sum_gradients:
            return
        for name, p in model.named_parameters():
            if p.grad is not None:
                acc = self.grad_sum.get(name)
                self.grad_sum[name] = p.grad.detach().clone() if acc is None else acc.add_(p.grad)

    # --- a check -----------------------------------------------------------------------------------
    def draw(self, model: nn.Module) -> dict[float, Mask]:
        """Masks at every ratio from one scoring pass of the ruling detector; no detector changes, nor
        the RNG stream, nor (with `sum_gradients`) the parameters' `.grad`. With `sum_gradients` and
        `gradient_sum="interval"` the sum is emptied afterwards (the next check sums the steps from here)."""
        with rng_untouched():  # tracing the graph must not shift training's RNG stream
            if not self.sum_gradients:
                return self.ruling_detector.draw_masks(model)
            saved = {}
            for name, p in model.named_parameters():  # score with the gradient summed so far
                saved[name] = p.grad
                p.grad = self.grad_sum.get(name, torch.zeros_like(p)) if p.requires_grad else p.grad
            try:
                return self.ruling_detector.draw_masks(model)
            finally:
                for name, p in model.named_parameters():
                    p.grad = saved[name]
                if self.gradient_sum == "interval":
                    self.grad_sum = {}

    def record(self, masks: dict[float, Mask], at: int | float | str) -> CheckEvent:
        """Record `masks` as a check labelled `at` in every detector; returns what each made of it."""
        updates = {}
        for name, det in self.detectors.items():
            had = set(det.tickets)
            distances = det.add_masks(masks, at)
            new = tuple(sorted(set(det.tickets) - had))
            updates[name] = DetectorUpdate(distances, det.history[-1].consecutive, new)
        return CheckEvent(at, masks, updates, self.ruling)

    def check(self, model: nn.Module, at: int | float | str) -> CheckEvent:
        """Draw the masks of `model` and record them (`draw` then `record`)."""
        return self.record(self.draw(model), at)

    # --- state -------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The detectors' states by name, the gradient sum (tensors, not copied) and what it spans."""
        return {"detectors": {k: d.state_dict() for k, d in self.detectors.items()},
                "grad_sum": dict(self.grad_sum), "gradient_sum": self.gradient_sum}

    def load_state_dict(self, state: dict) -> None:
        """Restore from `state_dict()` (a missing "grad_sum" means none; a missing "gradient_sum", a
        state saved before the option existed, means "cumulative")."""
        mode = state.get("gradient_sum", "cumulative")
        if mode not in GRADIENT_SUMS:
            raise ValueError(f"gradient_sum must be one of {GRADIENT_SUMS}, got {mode!r}")
        for k, d in self.detectors.items():
            d.load_state_dict(state["detectors"][k])
        self.grad_sum = dict(state.get("grad_sum", {}))
        self.gradient_sum = mode
