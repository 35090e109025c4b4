"""Paper-scale data for the ``paper`` profile: CIFAR-10 and IMDB through Hugging Face ``datasets``, which
needs that package and network access; without them a `DataNotFoundError` names the offline default
(Fashion-MNIST, Rotten Tomatoes). Both come out in the offline loaders' shapes."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataNotFoundError
from .base import DictDataset, _balanced_rows, _check_limit, _proportional_subset, _split_caps, _stratified_split
from .vision import _check_split, _image_dataset

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
_TRUE = {"1", "true", "yes", "on"}


def _paper_data_error(name: str, offline_default: str, reason: str) -> DataNotFoundError:
    return DataNotFoundError(
        f"{name} ({reason}) is only for the `paper` profile, which needs `pip install datasets` plus "
        f"network access to the Hugging Face Hub; the offline default is {offline_default}."
    )


def _hf_load(repo: str, split: str, name: str, offline_default: str) -> Any:
    """``datasets.load_dataset(repo, split=split)``, or a DataNotFoundError naming the offline default."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            raise _paper_data_error(name, offline_default, f"{var} is set")
    try:
        import datasets
    except ImportError as exc:
        raise _paper_data_error(name, offline_default, "Hugging Face `datasets` is not installed") from exc
    try:
        return datasets.load_dataset(repo, split=split)
    except Exception as exc:  # connection errors come as OSError, httpx or hub errors depending on versions
        raise _paper_data_error(name, offline_default, f"loading {repo!r} failed: {type(exc).__name__}: {exc}") from exc


def load_cifar10(split: str = "train", limit: int | None = None, image_size: int = 32, channels: int = 3,
                 seed: int = 0) -> DictDataset:
    """CIFAR-10 (``uoft-cs/cifar10``) as ``DictDataset(pixel_values (N, 3, image_size, image_size)
    float32, labels (N,) int64)``, normalized with the CIFAR-10 mean/std and resized like
    :func:`load_fashion_mnist`; ``limit`` takes a class-balanced seeded subset. Needs Hugging Face
    ``datasets`` and network access (``paper`` profile); offline use :func:`load_fashion_mnist`."""
    _check_split("CIFAR-10", split)
    if channels != 3:
        raise ValueError(f"CIFAR-10 images are RGB: channels must be 3, got {channels}")
    _check_limit(limit)
    ds = _hf_load("uoft-cs/cifar10", split, "CIFAR-10", "Fashion-MNIST (load_fashion_mnist)")
    labels = np.asarray(list(ds["label"]), dtype=np.int64)  # (N,)
    idx = _balanced_rows(labels, limit, seed)
    if idx is None:
        idx = np.arange(len(labels))
    images = np.stack([np.asarray(ds[int(i)]["img"].convert("RGB"), dtype=np.uint8) for i in idx])  # (N, 32, 32, 3)
    return _image_dataset(images, labels[idx], image_size, channels, CIFAR10_MEAN, CIFAR10_STD)


def load_imdb(
    seed: int = 0,
    val_fraction: float = 0.1,
    limit: int | None = None,
) -> dict[str, pd.DataFrame]:
    """IMDB reviews (``stanfordnlp/imdb``) as ``{"train", "val", "test"}`` DataFrames with columns
    ``text``, ``label`` (1 = positive): val is a stratified seeded slice of the official train split,
    test is the official test split; ``limit`` caps like :func:`load_rotten_tomatoes`. Needs Hugging
    Face ``datasets`` and network access (``paper`` profile); offline use :func:`load_rotten_tomatoes`."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    _check_limit(limit)
    offline_default = "Rotten Tomatoes (load_rotten_tomatoes)"
    frames = {}
    for split in ("train", "test"):
        ds = _hf_load("stanfordnlp/imdb", split, "IMDB", offline_default)
        frames[split] = pd.DataFrame(
            {"text": [str(t) for t in ds["text"]], "label": np.asarray(list(ds["label"]), dtype=np.int64)}
        )
    rng = np.random.default_rng(seed)
    train_frame = frames["train"]
    val_idx, train_idx = _stratified_split(train_frame["label"].to_numpy(), (val_fraction,), rng)
    out = {
        "train": train_frame.iloc[train_idx].reset_index(drop=True),
        "val": train_frame.iloc[val_idx].reset_index(drop=True),
        "test": frames["test"],
    }
    if limit is not None:
        caps = _split_caps(limit)
        for name, frame in out.items():
            if caps[name] < len(frame):
                keep = _proportional_subset(frame["label"].to_numpy(), caps[name], rng)
                out[name] = frame.iloc[keep].reset_index(drop=True)
    return out
