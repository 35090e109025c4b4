"""The early-bird detector: draws masks at every check, for several ratios from one scoring pass, keeps
a window of recent masks and declares the ticket when the newest mask is close to all others.

Framework-neutral: call `check(model)` wherever you like (epoch end, every N steps). The full history
of masks and distances is kept for plots; `state_dict()` / `load_state_dict()` make resumed runs
continue exactly.

    detector = EarlyBirdDetector(ratios=(0.1, 0.3), threshold=0.1, window=5)
    for epoch in range(epochs):
        train_one_epoch(model)
        detector.check(model, at=epoch)
        if detector.ticket(0.3): ...        # Ticket(at=..., mask=..., distance=...)

Rule (You et al. 2020): with window w, once w masks are held, the ticket is the newest mask when every
distance from it to the other w-1 masks is <= threshold. w = 2 is the study's consecutive-epoch rule.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numbers

import numpy as np
from torch import nn

from .errors import InvalidArgumentError, describe
from .align import check_align
from .defaults import WINDOW
from .graph import ModelGraph
from .masks import SCOPES, Mask, as_mask, check_ratio, mask_distance, mask_from_scores, pairwise_distances
from .scores import CRITERIA, Scores, score_model

DISTANCE_KINDS = ("combined", "heads", "channels")


@dataclass(frozen=True)
class Ticket:
    ratio: float
    at: int | float | str  # the label of the check that produced it (epoch or step)
    check_index: int       # position in the history
    mask: Mask
    distance: float        # largest distance to the other masks of the window


@dataclass
class CheckRecord:
    at: int | float | str
    masks: dict[float, Mask]
    distances: dict[float, float | None]       # largest distance newest -> rest of window (None: window not full)
    consecutive: dict[float, float | None]     # distance to the previous check (None at the first)


@dataclass
class EarlyBirdDetector:
    ratios: tuple[float, ...] = (0.1, 0.3, 0.5)
    threshold: float = 0.1
    window: int = WINDOW
    scope: str = "layerwise"
    criterion: str = "magnitude"
    distance: str = "combined"
    align: int = 1  # round kept sizes to multiples of N (ebcore.align); 1 = off
    uniform: bool = False  # one width per layer shape (ebcore.uniform): tickets save_pruned(format="hf") can write
    history: list[CheckRecord] = field(default_factory=list, init=False)
    tickets: dict[float, Ticket] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if isinstance(self.ratios, numbers.Real) and not isinstance(self.ratios, bool):
            self.ratios = (self.ratios,)
        if isinstance(self.ratios, (str, bytes, dict)) or not isinstance(self.ratios, (list, tuple, np.ndarray)):
            raise InvalidArgumentError(f"ratios must be a ratio or a list of ratios in [0, 1), got "
                                       f"{describe(self.ratios)}; pass e.g. ratios=(0.1, 0.3).")
        self.ratios = tuple(check_ratio(r, f"ratios[{i}]") for i, r in enumerate(self.ratios))
        if not self.ratios or len(set(self.ratios)) != len(self.ratios):
            raise InvalidArgumentError(f"ratios must be a non-empty list of distinct values, got {self.ratios}")
        if not isinstance(self.window, numbers.Integral) or isinstance(self.window, bool) or self.window < 2:
            raise InvalidArgumentError(f"window must be an integer >= 2 (2 = consecutive checks), got "
                                       f"{describe(self.window)}")
        self.window = int(self.window)
        if (not isinstance(self.threshold, numbers.Real) or isinstance(self.threshold, bool)
                or not 0 <= self.threshold <= 1):
            raise InvalidArgumentError(f"threshold is a normalized Hamming distance, a number in [0, 1], got "
                                       f"{describe(self.threshold)}")
        for name, allowed in (("scope", SCOPES), ("criterion", CRITERIA), ("distance", DISTANCE_KINDS)):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in allowed:
                raise InvalidArgumentError(f"unknown {name} {describe(value)}; choose one of {allowed}")
        self.align = check_align(self.align)
        if not isinstance(self.uniform, bool):
            raise InvalidArgumentError(f"uniform must be True or False, got {describe(self.uniform)}")
        if self.uniform and self.scope != "layerwise":
            raise InvalidArgumentError(f"uniform=True needs scope='layerwise', got scope={self.scope!r}")
        self._graph: ModelGraph | None = None

    # --- checks ---------------------------------------------------------------------------------
    def _graph_for(self, model: nn.Module) -> ModelGraph:
        g = self._graph
        if g is None or g.model is not model or g.structure() != [(b.num_heads, b.num_channels)
                                                                   for b in g.adapter.blocks(model)]:
            self._graph = ModelGraph.build(model, prepare=False)  # never swap parameters under an optimizer
        return self._graph

    def draw_masks(self, source: nn.Module | ModelGraph | Scores) -> dict[float, Mask]:
        """Masks at every ratio from one scoring pass (no state change). A model or graph is scored with
        the detector's criterion; Scores are used as given (they carry the head dims)."""
        if isinstance(source, Scores):
            scores = source
        elif isinstance(source, (ModelGraph, nn.Module)):
            graph = source if isinstance(source, ModelGraph) else self._graph_for(source)
            scores = score_model(graph, self.criterion)
        else:
            raise InvalidArgumentError(f"source must be a model, a ModelGraph or Scores (from score_model), got "
                                       f"{describe(source)}")
        return {r: mask_from_scores(scores, r, scope=self.scope, align=self.align, uniform=self.uniform)
                for r in self.ratios}

    def check(self, source: nn.Module | ModelGraph | Scores, at: int | float | str | None = None
              ) -> dict[float, float | None]:
        """Score the model, draw a mask per ratio, update windows and tickets.

        Returns, per ratio, the largest distance from the new mask to the rest of its window (None
        until the window is full).
        """
        return self.add_masks(self.draw_masks(source), at)

    def add_masks(self, masks: dict[float, Mask], at: int | float | str | None = None) -> dict[float, float | None]:
        """Record externally drawn masks (one per ratio) as a check."""
        if not isinstance(masks, dict):
            raise InvalidArgumentError(f"masks must be a dict {{ratio: Mask}} with one mask per ratio {self.ratios}, "
                                       f"got {describe(masks)}")
        if set(masks) != set(self.ratios):
            raise InvalidArgumentError(f"expected masks for ratios {self.ratios}, got {sorted(masks, key=repr)}")
        masks = {r: as_mask(m, f"masks[{r}]") for r, m in masks.items()}
        if at is not None and (isinstance(at, bool) or not isinstance(at, (int, float, str))):
            raise InvalidArgumentError(f"at must be an int, float or str label of the check (epoch, step), got "
                                       f"{describe(at)}")
        at = len(self.history) if at is None else at
        index = len(self.history)
        distances, consecutive = {}, {}
        for r in self.ratios:
            recent = [rec.masks[r] for rec in self.history[-(self.window - 1):]] if self.window > 1 else []
            window_d = [mask_distance(masks[r], m)[self.distance] for m in recent]
            consecutive[r] = window_d[-1] if window_d else None
            full = len(recent) == self.window - 1
            distances[r] = max(window_d) if full else None
            if full and r not in self.tickets and distances[r] <= self.threshold:
                self.tickets[r] = Ticket(r, at, index, masks[r], distances[r])
        self.history.append(CheckRecord(at, dict(masks), distances, consecutive))
        return distances

    # --- results --------------------------------------------------------------------------------
    def ticket(self, ratio: float) -> Ticket | None:
        return self.tickets.get(check_ratio(ratio))

    def _known_ratio(self, ratio: float) -> float:
        r = check_ratio(ratio)
        if r not in self.ratios:
            raise InvalidArgumentError(f"ratio {ratio} is not one of this detector's ratios {self.ratios}")
        return r

    @property
    def found_all(self) -> bool:
        return all(r in self.tickets for r in self.ratios)

    def masks(self, ratio: float) -> list[Mask]:
        ratio = self._known_ratio(ratio)
        return [rec.masks[ratio] for rec in self.history]

    def pairwise(self, ratio: float, kind: str | None = None) -> np.ndarray:
        """(checks, checks) matrix of mask distances at `ratio`."""
        return pairwise_distances(self.masks(ratio), kind or self.distance)

    def records(self) -> list[dict]:
        """One tidy record per (check, ratio), for pandas."""
        rows = []
        for i, rec in enumerate(self.history):
            for r in self.ratios:
                t = self.tickets.get(r)
                rows.append({"check": i, "at": rec.at, "ratio": r, "window_distance": rec.distances[r],
                             "consecutive_distance": rec.consecutive[r], "threshold": self.threshold,
                             "window": self.window, "is_ticket": bool(t and t.check_index == i)})
        return rows

    # --- state ----------------------------------------------------------------------------------
    def config(self) -> dict:
        return {"ratios": list(self.ratios), "threshold": self.threshold, "window": self.window,
                "scope": self.scope, "criterion": self.criterion, "distance": self.distance, "align": self.align,
                **({"uniform": True} if self.uniform else {})}

    def state_dict(self) -> dict:
        """JSON-serializable state; a detector loaded from it continues exactly."""
        return {
            "config": self.config(),
            "history": [{"at": rec.at, "masks": {str(r): m.to_dict() for r, m in rec.masks.items()}}
                        for rec in self.history],
        }

    def load_state_dict(self, state: dict) -> None:
        """Replay the saved history (distances and tickets are recomputed, so they are consistent)."""
        _check_state(state)
        if {"align": 1, **state["config"]} != self.config():  # saved before `align` existed: 1
            raise InvalidArgumentError(f"detector state was saved with {state['config']}, this detector has "
                                       f"{self.config()}")
        history, tickets = self.history, self.tickets
        self.history, self.tickets = [], {}
        try:
            for rec in state["history"]:
                self.add_masks({float(r): Mask.from_dict(m) for r, m in rec["masks"].items()}, rec["at"])
        except (ValueError, TypeError) as err:
            self.history, self.tickets = history, tickets
            raise InvalidArgumentError(f"the detector state's history is damaged ({err}); nothing was loaded") from None

    @classmethod
    def from_state_dict(cls, state: dict) -> "EarlyBirdDetector":
        _check_state(state)
        cfg = dict(state["config"])
        try:
            det = cls(**{**cfg, "ratios": tuple(cfg.get("ratios", ()))})
        except TypeError as err:
            raise InvalidArgumentError(f"the detector state's config {cfg} does not fit EarlyBirdDetector ({err})") from None
        det.load_state_dict(state)
        return det


def _check_state(state: object) -> None:
    """The shape of a detector state (from `state_dict()`), or InvalidArgumentError."""
    ok = (isinstance(state, dict) and isinstance(state.get("config"), dict) and isinstance(state.get("history"), list)
          and all(isinstance(rec, dict) and "at" in rec and isinstance(rec.get("masks"), dict)
                  for rec in state["history"]))
    if not ok:
        raise InvalidArgumentError(f"state must be a dict from EarlyBirdDetector.state_dict() with 'config' and "
                                   f"'history' ({{'at', 'masks'}} per check), got {describe(state)}")
