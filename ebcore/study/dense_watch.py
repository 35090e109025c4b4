"""The study loop's watcher of the dense run (`DenseRunWatch`): a training-loop callback (ebcore.study.train.Callback) that checks
the detectors at every epoch end (or every N steps), keeps the training clock, counts the samples seen
until each check (for exact FLOP accounting) and saves the weights and AdamW's state at each ticket (for the
`continue` retrain mode).
"""
from __future__ import annotations

import time
from pathlib import Path

import torch
from safetensors.torch import save_file
from ..detector import EarlyBirdDetector
from ..watch import TicketWatch
from . import paths
from .carry import save_optimizer_state
from .train import Callback, TrainState


class DenseRunWatch(Callback):
    """Checks both detectors at every epoch end (or every N steps), keeps a clock of training time and
    counts the samples trained on until each check (for exact FLOP accounting).

    With the Taylor criterion each check scores |w · Σg|, Σg the gradient of every parameter summed over
    every optimizer step since training began, never reset (`gradient_sum="cumulative"`, the default;
    EarlyBERT-like: an importance gathered over training, not a few noisy batches); `"interval"` sums
    only the steps since the previous check. Side by side on one bert cpu run (bench/taylor_sum.py: seed
    0, 16 checks every 4 steps, both sums from the same gradients), at p=0.3 the interval masks moved by
    0.16-0.26 per check to the end; the cumulative ones by 0.10-0.14 in the first epoch and by 0.02-0.04
    in the last four checks (neither came under the threshold 0.01). Both ended about as far from a
    reference mask neither drew (Taylor scores of the trained model over one pass of the training split):
    0.136 cumulative, 0.154 interval. Part of the cumulative settling is mechanical (each check adds 4
    steps to the sum of all earlier ones), but the interval masks are batch noise that no threshold the
    study uses would call settled; so the cumulative sum. Training is not affected.
    When the ruling detector's ticket first appears for a ratio, the model's weights at that moment are
    written to `ticket_dir`, and AdamW's state by parameter name with the global step next to them
    (`paths.ticket_optimizer`, ebcore.study.carry; needed by the `continue` mode); at the end of training,
    ratios whose ticket never appeared get the final weights and state (the fallback ticket is the last check).
    The schedule, the drawing, the recording and the gradient sum are `ebcore.watch.TicketWatch`'s.
    """

    def __init__(self, detectors: dict[str, EarlyBirdDetector], rule: str, ticket_dir: Path | None,
                 every_steps: int | None = None, train_size: int = 0, batch_size: int = 1,
                 gradient_sum: str = "cumulative") -> None:
        self.ticket_dir = ticket_dir
        self.train_size, self.batch_size = train_size, batch_size
        self.check_seconds: list[float] = []   # training clock at each check
        self.check_epochs: list[float] = []    # fractional epoch at each check
        self.check_samples: list[int] = []     # training samples seen at each check
        self.search_seconds = 0.0              # time spent scoring and comparing masks
        self.elapsed = 0.0
        self.watch = TicketWatch(detectors, rule, every_steps, sum_gradients=detectors[rule].criterion == "taylor",
                                 gradient_sum=gradient_sum)
        self._mark = None

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._mark is not None:
            self.elapsed += now - self._mark
        self._mark = now

    def samples_at(self, step: int, steps_per_epoch: int) -> int:
        """Training samples seen after `step` optimizer steps (the last batch of an epoch may be short)."""
        full, rest = divmod(step, steps_per_epoch)
        return full * self.train_size + min(rest * self.batch_size, self.train_size)

    def on_train_start(self, state: TrainState) -> None:
        self._mark = time.perf_counter()

    def on_step_end(self, state: TrainState) -> None:
        self.watch.accumulate_gradients(state.model)

    def _check(self, state: TrainState, at: float) -> None:
        self._tick()
        start = time.perf_counter()
        event = self.watch.check(state.model, at)
        self.search_seconds += time.perf_counter() - start
        self.check_seconds.append(self.elapsed)
        self.check_epochs.append(state.global_step / state.steps_per_epoch)
        self.check_samples.append(self.samples_at(state.global_step, state.steps_per_epoch))
        for ratio in event.ruled.new_tickets:
            self._save_weights(state, ratio)
        self._mark = time.perf_counter()  # the search is accounted separately

    def _save_weights(self, state: TrainState, ratio: float) -> None:
        """The ticket's files: the weights, then AdamW's state and the global step (ebcore.study.carry)."""
        if self.ticket_dir is None:
            return
        self.ticket_dir.mkdir(parents=True, exist_ok=True)
        weights = {k: v.detach().cpu().contiguous() for k, v in state.model.state_dict().items()}
        save_file(_untie(weights), str(paths.ticket_weights(self.ticket_dir, ratio)))
        save_optimizer_state(paths.ticket_optimizer(self.ticket_dir, ratio), state.optimizer, state.model,
                             state.global_step, state.steps_per_epoch)

    def on_check(self, state: TrainState) -> None:
        if self.watch.due_after_step(state.global_step):
            self._check(state, state.global_step)

    def on_epoch_end(self, state: TrainState) -> None:
        if self.watch.due_at_epoch_end:
            self._check(state, state.epoch)
        else:
            self._tick()

    def on_train_end(self, state: TrainState) -> None:
        ruling = self.watch.ruling_detector
        for ratio in ruling.ratios:
            if ratio not in ruling.tickets:  # fallback ticket: the last check, i.e. the final weights
                self._save_weights(state, ratio)

    def state_dict(self) -> dict:
        self._tick()
        core = self.watch.state_dict()
        return {"detectors": core["detectors"],
                "check_seconds": self.check_seconds, "check_epochs": self.check_epochs,
                "check_samples": self.check_samples, "search_seconds": self.search_seconds,
                "elapsed": self.elapsed, "grad_sum": core["grad_sum"], "gradient_sum": core["gradient_sum"]}

    def load_state_dict(self, state: dict) -> None:
        self.watch.load_state_dict(state)
        self.check_seconds, self.check_epochs = list(state["check_seconds"]), list(state["check_epochs"])
        self.check_samples = list(state["check_samples"])
        self.search_seconds, self.elapsed = state["search_seconds"], state["elapsed"]


def ticket_summary(watch_state: dict, rule: str) -> str:
    """From a watch's `state_dict()` (as a dense run's record holds it), per watched ratio: where the
    `rule` detector's ticket appeared ("ticket at p=0.3 (consecutive rule), epoch 3, distance 0.081") or
    that none did; "; " between ratios."""
    det = EarlyBirdDetector.from_state_dict(watch_state["detectors"][rule])
    lines = []
    for ratio in det.ratios:
        t = det.ticket(ratio)
        if t is None:
            lines.append(f"no ticket at p={ratio:g} ({rule} rule) in {len(det.history)} checks")
        else:
            epoch = watch_state["check_epochs"][t.check_index]
            lines.append(f"ticket at p={ratio:g} ({rule} rule), epoch {epoch:.3g}, distance {t.distance:.3g}")
    return "; ".join(lines)


def _untie(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses shared storage (tied embeddings): clone duplicates."""
    seen, out = set(), {}
    for k, v in weights.items():
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape))
        out[k] = v.clone() if key in seen else v
        seen.add(key)
    return out
