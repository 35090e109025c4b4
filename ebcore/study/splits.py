"""The train / val / test splits of one family's data for one seed, ready for the training loop.

    data = load_data(get_spec("gpt2", "cpu"), seed=0)    # Data: train, val, test, num_labels, vocab_size...

Data sets are looked up by name in `DATASETS` (image or text loaders of ebcore.study.data); a text
family's tokenizer is its registry entry's (ebcore.study.families), or the hub checkpoint's in `paper`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd
import torch

from . import data as D
from .families import get_family
from .specs import FamilySpec, ImageData, TextData

# name -> loader: images (split, limit, image_size, channels, seed) -> DictDataset; texts (seed) -> frames
DATASETS: dict[str, Callable[..., Any]] = {
    "fashion_mnist": D.load_fashion_mnist,
    "cifar10": D.load_cifar10,
    "rotten_tomatoes": D.load_rotten_tomatoes,
    "imdb": D.load_imdb,
}


SPLIT_SEED = 0  # the test rows (and the text corpora's train / val / test split) are chosen once, for every seed


@dataclass
class Data:
    train: D.DictDataset
    val: D.DictDataset
    test: D.DictDataset
    num_labels: int
    vocab_size: int | None = None
    pad_token_id: int | None = None

    def batch(self, n: int) -> dict:
        return {k: v[:n] for k, v in self.train.tensors.items()}


def _dataset(name: str) -> Callable[..., Any]:
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {tuple(DATASETS)}")
    return DATASETS[name]


def _take(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    if n >= len(frame):
        return frame
    return frame.groupby("label", group_keys=False).sample(frac=n / len(frame), random_state=seed)


def load_data(spec: FamilySpec, seed: int = 0) -> Data:
    """Train/val/test splits for `spec` (val is held out of the train split; test is the test split, the same
    rows for every seed: the official test split for images, one fixed split of the corpus for texts)."""
    d = spec.data
    load = _dataset(d.dataset)
    if isinstance(d, ImageData):
        kw = dict(image_size=d.image_size, channels=d.channels, seed=seed)
        pool = load("train", limit=d.train + d.val, **kw)
        test = load("test", limit=d.test, **(kw | {"seed": SPLIT_SEED}))  # the same test rows for every seed
        order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))
        val_idx, train_idx = order[: d.val], order[d.val:]
        split = lambda idx: D.DictDataset(**{k: v[idx] for k, v in pool.tensors.items()})  # noqa: E731
        return Data(split(train_idx), split(val_idx), test, num_labels=10)
    assert isinstance(d, TextData)
    # One split of the corpus for every seed (SPLIT_SEED): the test set is the same for all seeds, so the
    # seeds vary the model (initialization, data order, which training rows) and never the test rows.
    frames = load(seed=SPLIT_SEED)
    frames = {"train": _take(frames["train"], d.train, seed), "val": _take(frames["val"], d.val, seed),
              "test": _take(frames["test"], d.test, SPLIT_SEED)}
    tok = tokenizer_of(spec)
    sets = {k: D.tokenize_texts(f, tok, d.max_length) for k, f in frames.items()}
    return Data(sets["train"], sets["val"], sets["test"], num_labels=2, vocab_size=len(tok),
                pad_token_id=tok.pad_token_id)


def tokenizer_of(spec: FamilySpec) -> Any:
    """The tokenizer of a text family: the hub checkpoint's when the spec starts from one, else the
    offline one its registry entry names."""
    if spec.hub_name:
        import transformers
        try:
            tok = transformers.AutoTokenizer.from_pretrained(spec.hub_name)
        except OSError as err:
            raise D.DataNotFoundError(f"the paper profile needs {spec.hub_name}'s tokenizer from the hub ({err}); "
                                      "offline, use profile 'cpu'") from None
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        return tok
    make = get_family(spec.family).tokenizer
    if make is None:
        raise ValueError(f"family {spec.family!r} has no tokenizer: it is not a text family")
    return make()
