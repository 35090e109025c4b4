"""What `EarlyBirdCallback` puts into each checkpoint's trainer_state.json (it is a
`transformers.trainer_callback.ExportableState`) and how it reads it back. The layout is a file format:
checkpoints written by earlier versions must resume, so `state()` keeps its keys ("args": the constructor's
arguments; "attributes": the detector history, the ticket and the pruning record).
"""
from __future__ import annotations

import logging

from transformers.trainer_callback import ExportableState

from ..detector import EarlyBirdDetector
from ..watch import TicketWatch

logger = logging.getLogger("ebcore.hf")


class CheckpointState(ExportableState):
    """The checkpoint state of `EarlyBirdCallback` (a mixin: it reads and sets the callback's attributes).
    The Trainer rebuilds the callback as `EarlyBirdCallback(**state["args"])` and then sets each of
    `state["attributes"]` on it; `load_state` does the same for `prepare_resume`."""

    detector: EarlyBirdDetector
    ratio: float
    ratios: tuple[float, ...]
    check_every_steps: int | None
    action: str
    mask_file: str
    _family_threshold: bool
    ticket_step: int | None
    ticket_mask: dict | None
    pruned_step: int | None
    params_before: int | None
    params_after: int | None
    mask_path: str | None
    watch: TicketWatch

    def _args(self) -> dict:
        cfg = self.detector.config()
        return {"ratio": self.ratio, "ratios": list(self.ratios), "threshold": cfg["threshold"],
                "window": cfg["window"], "scope": cfg["scope"], "criterion": cfg["criterion"],
                "distance": cfg["distance"], "check_every_steps": self.check_every_steps, "action": self.action,
                "mask_file": self.mask_file, "gradient_sum": self.watch.gradient_sum}

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
        if saved_args and not _same_settings(saved_args, self._args()):
            logger.warning("EarlyBirdCallback: restoring a state saved with settings %s into a callback with %s",
                           saved_args, self._args())
        for key, value in state.get("attributes", {}).items():
            setattr(self, key, value)


def _same_settings(saved: dict, current: dict) -> bool:
    """Whether saved callback settings (`_args()`, read back from JSON) equal the current ones."""
    return {**saved, "ratios": [float(r) for r in saved.get("ratios", [])]} == current
