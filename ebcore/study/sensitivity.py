"""Ticket stability and threshold sensitivity from the masks the dense run's detectors stored, without
retraining.

Every check of an `EarlyBirdDetector` keeps one mask per ratio, so its rule can be replayed at any
threshold (and window) afterwards: `threshold_sensitivity` gives, per seed, rule, ratio and threshold,
where the ticket would have appeared. `ticket_stability` measures how far each ticket's mask is from the
mask of the last check (normalised Hamming distance). Two masks can differ at most where either prunes,
so the distance is at most the sum of their pruned fractions: 2p when each prunes exactly p (rounding of
kept sizes per layer, or `align`, moves it a little); `relative_distance_to_final` is the distance over
that bound, 0 = the ticket is the final mask, 1 = they share no pruned unit.

    dets = result.detectors                      # seed -> rule -> detector
    epochs = check_epochs(result)                # seed -> fractional epoch of each check
    stability = ticket_stability(dets, epochs)
    sens = threshold_sensitivity(dets, epochs=epochs)
    sensitivity_table(sens)                      # threshold x (ratio, rule): "2.5 (3/3)"

The replay is the detector's rule (ebcore.detector): with window w, check i is a ticket when i >= w-1
and the largest distance from its mask to the masks of the w-1 checks before it is <= threshold; the
first such check is the ticket.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..detector import EarlyBirdDetector
from ..masks import Mask, mask_distance

Detectors = Mapping[int, Mapping[str, EarlyBirdDetector]]
EpochsBySeed = Mapping[int, Sequence[float]]

STABILITY_COLUMNS = ["seed", "rule", "ratio", "window", "threshold", "found", "check", "at", "epoch",
                     "final_check", "final_epoch", "distance_to_final", "max_distance", "relative_distance_to_final"]
SENSITIVITY_COLUMNS = ["seed", "rule", "ratio", "window", "threshold", "found", "check", "at", "epoch"]
CURVE_COLUMNS = ["seed", "rule", "ratio", "check", "at", "epoch", "distance", "relative_distance"]


def default_thresholds(extra: Iterable[float] = (0.01, 0.1), low: float = 0.005, high: float = 0.3,
                       num: int = 13) -> tuple[float, ...]:
    """A geometric grid of `num` thresholds from `low` to `high` (rounded to 4 significant digits), with
    the `extra` thresholds (the study's) added; sorted, without duplicates."""
    grid = [float(f"{t:.4g}") for t in np.geomspace(low, high, num)]
    return tuple(sorted({*grid, *(float(t) for t in extra)}))


def window_distances(det: EarlyBirdDetector, ratio: float, window: int | None = None) -> np.ndarray:
    """Per check, the largest distance (the detector's distance kind) from its mask at `ratio` to the
    masks of the `window` - 1 checks before it; NaN while fewer checks came before. With the detector's
    own window these are its recorded `distances`."""
    w = det.window if window is None else int(window)
    if w < 2:
        raise ValueError(f"window must be an integer >= 2, got {window!r}")
    pair = det.pairwise(ratio)
    out = np.full(len(pair), np.nan)
    for i in range(w - 1, len(pair)):
        out[i] = pair[i, i - w + 1:i].max()
    return out


def first_ticket(distances: np.ndarray, threshold: float) -> int | None:
    """The first check whose window distance is <= `threshold` (the rule's test), or None."""
    hits = np.flatnonzero(np.nan_to_num(np.asarray(distances, dtype=float), nan=np.inf) <= threshold)
    return int(hits[0]) if hits.size else None


def _epochs_of(det: EarlyBirdDetector, epochs: Sequence[float] | None) -> list[float]:
    """The fractional epoch of every check; NaN for each when unknown."""
    if epochs is None:
        return [math.nan] * len(det.history)
    if len(epochs) != len(det.history):
        raise ValueError(f"{len(epochs)} check epochs for a detector with {len(det.history)} checks")
    return [float(e) for e in epochs]


def _seed_epochs(epochs: EpochsBySeed | None, seed: int) -> Sequence[float] | None:
    return None if epochs is None else epochs.get(seed)


def pruned_fraction(mask: Mask, kind: str = "combined") -> float:
    """The fraction of the model `mask` prunes, weighted as `mask_distance(kind)` weighs a decision (so
    the distance between two masks is at most the sum of their pruned fractions)."""
    heads = sum(lm.num_heads - len(lm.heads) for lm in mask.layers)
    channels = sum(lm.num_channels - len(lm.channels) for lm in mask.layers)
    if kind == "heads":
        return heads / sum(lm.num_heads for lm in mask.layers)
    if kind == "channels":
        return channels / sum(lm.num_channels for lm in mask.layers)
    attention = sum((lm.num_heads - len(lm.heads)) * lm.head_dim for lm in mask.layers)
    total = sum(lm.num_heads * lm.head_dim + lm.num_channels for lm in mask.layers)
    return (attention + channels) / total


def ticket_stability(detectors: Detectors, epochs: EpochsBySeed | None = None) -> pd.DataFrame:
    """One row per (seed, rule, ratio): the detector's ticket (`found`, `check`, `at`, `epoch`; NaN when
    none appeared) and the distance from its mask to the last check's mask (`distance_to_final`, in the
    detector's distance kind), its maximum (`max_distance`: the two masks' pruned fractions summed, 2p
    when both prune exactly p) and their ratio (`relative_distance_to_final`). `epochs`: seed ->
    fractional epoch of each check (`check_epochs`)."""
    rows = []
    for seed, dets in detectors.items():
        for rule, det in dets.items():
            ep = _epochs_of(det, _seed_epochs(epochs, seed))
            last = len(det.history) - 1
            for ratio in det.ratios:
                t = det.ticket(ratio)
                row = {"seed": seed, "rule": rule, "ratio": ratio, "window": det.window, "threshold": det.threshold,
                       "found": t is not None, "check": math.nan, "at": None, "epoch": math.nan,
                       "final_check": last, "final_epoch": ep[last] if last >= 0 else math.nan,
                       "distance_to_final": math.nan, "max_distance": math.nan,
                       "relative_distance_to_final": math.nan}
                if t is not None:
                    final = det.history[last].masks[ratio]
                    d = mask_distance(t.mask, final)[det.distance]
                    top = min(1.0, pruned_fraction(t.mask, det.distance) + pruned_fraction(final, det.distance))
                    row.update(check=t.check_index, at=t.at, epoch=ep[t.check_index], distance_to_final=d,
                               max_distance=top, relative_distance_to_final=d / top if top > 0 else 0.0)
                rows.append(row)
    return pd.DataFrame(rows, columns=STABILITY_COLUMNS)


def stability_summary(stability: pd.DataFrame) -> pd.DataFrame:
    """Per (ratio, rule) over seeds: `seeds`, `found` (seeds with a ticket), the mean and max of
    `distance_to_final` and of `relative_distance_to_final` (over the seeds with a ticket)."""
    g = stability.groupby(["ratio", "rule"], sort=True)
    out = g.agg(seeds=("seed", "nunique"), found=("found", "sum"),
                mean_distance_to_final=("distance_to_final", "mean"),
                max_distance_to_final=("distance_to_final", "max"),
                mean_relative_distance=("relative_distance_to_final", "mean"),
                max_relative_distance=("relative_distance_to_final", "max"))
    return out.reset_index().astype({"found": int})


def threshold_sensitivity(detectors: Detectors, thresholds: Iterable[float] | None = None,
                          windows: Mapping[str, int] | None = None,
                          epochs: EpochsBySeed | None = None) -> pd.DataFrame:
    """Replay each detector's rule over its stored masks at every threshold: one row per (seed, rule,
    ratio, threshold) with the ticket it would have found (`found`, `check`, `at`, `epoch`; NaN when
    none). `thresholds`: default `default_thresholds()` plus every detector's own threshold; `windows`:
    rule -> window to replay with (default: each detector's own, e.g. {"consecutive": 2, "window": 5})."""
    dets = [(seed, rule, det) for seed, by_rule in detectors.items() for rule, det in by_rule.items()]
    grid = default_thresholds() if thresholds is None else tuple(float(t) for t in thresholds)
    if thresholds is None:
        grid = tuple(sorted({*grid, *(float(d.threshold) for _, _, d in dets)}))
    rows = []
    for seed, rule, det in dets:
        window = (windows or {}).get(rule, det.window)
        ep = _epochs_of(det, _seed_epochs(epochs, seed))
        for ratio in det.ratios:
            distances = window_distances(det, ratio, window)
            for threshold in grid:
                i = first_ticket(distances, threshold)
                rows.append({"seed": seed, "rule": rule, "ratio": ratio, "window": window, "threshold": threshold,
                             "found": i is not None, "check": math.nan if i is None else i,
                             "at": None if i is None else det.history[i].at,
                             "epoch": math.nan if i is None else ep[i]})
    return pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS)


def distance_curves_frame(detectors: Detectors, epochs: EpochsBySeed | None = None,
                          rule: str = "consecutive") -> pd.DataFrame:
    """One row per (seed, ratio, check) of the `rule` detector: the distance to the previous check
    (`distance`, NaN at the first) and that distance over its maximum 2p (`relative_distance`)."""
    rows = []
    for seed, by_rule in detectors.items():
        det = by_rule[rule]
        ep = _epochs_of(det, _seed_epochs(epochs, seed))
        for i, rec in enumerate(det.history):
            for ratio in det.ratios:
                d = rec.consecutive[ratio]
                d = math.nan if d is None else float(d)
                rows.append({"seed": seed, "rule": rule, "ratio": ratio, "check": i, "at": rec.at, "epoch": ep[i],
                             "distance": d, "relative_distance": d / (2 * ratio) if ratio > 0 else math.nan})
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def _position(frame: pd.DataFrame) -> pd.Series:
    """Each row's ticket position: the fractional epoch, or the check label where epochs are unknown."""
    epoch = pd.to_numeric(frame["epoch"], errors="coerce")
    if epoch.notna().any() or frame["found"].sum() == 0:
        return epoch
    return pd.to_numeric(frame["at"], errors="coerce")


def sensitivity_table(sensitivity: pd.DataFrame) -> pd.DataFrame:
    """Compact: one row per threshold, one column per (ratio, rule) named "p=0.3 consecutive", each
    cell the mean ticket epoch over the seeds that found one and "k/n found", e.g. "2.5 (3/3)", or
    "- (0/3)". The position is the check label where epochs are unknown."""
    frame = sensitivity.assign(_pos=_position(sensitivity))
    cells = {}
    for (ratio, rule), g in frame.groupby(["ratio", "rule"], sort=True):
        column = {}
        for threshold, h in g.groupby("threshold", sort=True):
            k, n = int(h["found"].sum()), int(h["seed"].nunique())
            mean = h.loc[h["found"], "_pos"].mean()
            column[threshold] = f"{mean:.3g} ({k}/{n})" if k and np.isfinite(mean) else f"- ({k}/{n})"
        cells[f"p={round(float(ratio), 6):g} {rule}"] = column
    table = pd.DataFrame(cells)
    table.index.name = "threshold"
    return table.reset_index()


def check_epochs(result: object) -> dict[int, list[float]]:
    """seed -> fractional epoch of each check of an `ExperimentResult`: from the dense run's record
    (`watch.check_epochs`) in the seed's run folder, matched to the result's detectors by their check
    labels; where no record is found and checks were at epoch ends, epochs completed (label + 1).
    Seeds with step checks and no record are left out (their epochs are unknown)."""
    s = result.settings
    out = {}
    for seed, by_rule in result.detectors.items():
        det = next(iter(by_rule.values()))
        labels = [rec.at for rec in det.history]
        found = _recorded_epochs(s.seed_dir(seed), labels, det.config())
        if found is not None:
            out[seed] = found
        elif not s.check_every_steps:
            out[seed] = [float(at) + 1.0 for at in labels]
    return out


def _recorded_epochs(seed_dir, labels: list, config: dict) -> list[float] | None:
    """The `check_epochs` of the finished dense run under `seed_dir` whose detectors checked at `labels`
    with this `config`; None when there is none."""
    from . import paths
    for record in sorted(seed_dir.glob(f"dense-*/{paths.RESULT_FILE}")) if seed_dir.is_dir() else []:
        try:
            watch = json.loads(record.read_text())["watch"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for state in watch.get("detectors", {}).values():
            same = ([h["at"] for h in state["history"]] == labels
                    and {"align": 1, **state["config"]} == {"align": 1, **config})
            if same and len(watch.get("check_epochs", [])) == len(labels):
                return [float(e) for e in watch["check_epochs"]]
    return None
