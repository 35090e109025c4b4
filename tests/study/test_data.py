"""Tests of ebcore.study.data: offline loaders, splits, tokenizers and the paper-profile fallbacks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from ebcore.study import data
from ebcore.study.errors import DataNotFoundError


@pytest.fixture(autouse=True)
def _tokenizer_cache(tmp_path_factory, monkeypatch):
    """Keep tokenizer files out of the user's home during tests (one folder for the session)."""
    monkeypatch.setenv("EBCORE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "ebcore-cache"))


# ----------------------------------------------------------------------------- DictDataset


def test_dict_dataset_rows_and_collate():
    ds = data.DictDataset(pixel_values=torch.randn(6, 1, 4, 4), labels=torch.arange(6))
    assert len(ds) == 6
    row = ds[2]
    assert set(row) == {"pixel_values", "labels"}
    assert row["pixel_values"].shape == (1, 4, 4) and row["labels"].item() == 2
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["pixel_values"].shape == (4, 1, 4, 4)
    assert batch["labels"].tolist() == [0, 1, 2, 3]
    assert set(ds.tensors) == {"pixel_values", "labels"}


def test_dict_dataset_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="first dimension"):
        data.DictDataset(a=torch.zeros(3), b=torch.zeros(4))


# ----------------------------------------------------------------------------- Fashion-MNIST


def test_fashion_mnist_shapes_dtypes_normalization():
    ds = data.load_fashion_mnist("test", limit=500, seed=0)
    x, y = ds.tensors["pixel_values"], ds.tensors["labels"]
    assert x.shape == (500, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (500,) and y.dtype == torch.int64
    assert abs(x.mean().item()) < 0.15
    assert 0.8 < x.std().item() < 1.2
    assert int(y.min()) >= 0 and int(y.max()) <= 9


def test_fashion_mnist_resize_and_channels():
    ds = data.load_fashion_mnist("test", limit=12, image_size=32, channels=3)
    x = ds.tensors["pixel_values"]
    assert x.shape == (12, 3, 32, 32)
    assert torch.equal(x[:, 0], x[:, 2])


def test_fashion_mnist_limit_is_balanced():
    y = data.load_fashion_mnist("train", limit=95, seed=3).tensors["labels"]
    counts = torch.bincount(y, minlength=10)
    assert len(y) == 95
    assert (counts > 0).all()
    assert int(counts.max() - counts.min()) <= 1


def test_fashion_mnist_limit_deterministic():
    a = data.load_fashion_mnist("test", limit=40, seed=7)
    b = data.load_fashion_mnist("test", limit=40, seed=7)
    c = data.load_fashion_mnist("test", limit=40, seed=8)
    assert torch.equal(a.tensors["pixel_values"], b.tensors["pixel_values"])
    assert torch.equal(a.tensors["labels"], b.tensors["labels"])
    assert not torch.equal(a.tensors["pixel_values"], c.tensors["pixel_values"])


def test_fashion_mnist_invalid_split():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        data.load_fashion_mnist("validation")


def test_fashion_mnist_missing_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("EBCORE_FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(DataNotFoundError, match="dataset-fashion-mnist"):
        data.load_fashion_mnist("test", limit=10)
    with pytest.raises(FileNotFoundError):  # DataNotFoundError is also a FileNotFoundError
        data.load_fashion_mnist("test", limit=10)


# ----------------------------------------------------------------------------- Rotten Tomatoes


@pytest.fixture(scope="module")
def rt_splits():
    return data.load_rotten_tomatoes(seed=0)


def test_rotten_tomatoes_splits(rt_splits):
    assert set(rt_splits) == {"train", "val", "test"}
    sizes = {k: len(v) for k, v in rt_splits.items()}
    total = sum(sizes.values())
    assert total > 12000
    assert abs(sizes["val"] / total - 0.1) < 0.01 and abs(sizes["test"] / total - 0.1) < 0.01
    for frame in rt_splits.values():
        assert list(frame.columns) == ["text", "label"]
        assert frame["label"].dtype == np.int64
        assert set(frame["label"].unique()) == {0, 1}
        assert 0.4 < frame["label"].mean() < 0.65  # 58 % fresh in the source: roughly balanced
        assert (frame["text"].str.len() > 0).all()
    texts = [set(frame["text"]) for frame in rt_splits.values()]
    assert not (texts[0] & texts[1]) and not (texts[0] & texts[2]) and not (texts[1] & texts[2])
    assert sum(len(t) for t in texts) == total  # no duplicates inside a split either


def test_rotten_tomatoes_deterministic(rt_splits):
    again = data.load_rotten_tomatoes(seed=0)
    other = data.load_rotten_tomatoes(seed=1)
    for name in ("train", "val", "test"):
        pd.testing.assert_frame_equal(rt_splits[name], again[name])
    assert not rt_splits["val"]["text"].equals(other["val"]["text"])


def test_rotten_tomatoes_limit():
    small = data.load_rotten_tomatoes(seed=0, limit=200)
    assert [len(small[k]) for k in ("train", "val", "test")] == [200, 50, 50]
    assert 0.5 < small["train"]["label"].mean() < 0.65
    assert not set(small["train"]["text"]) & set(small["test"]["text"])


# ----------------------------------------------------------------------------- tokenizers


def test_gpt2_tokenizer_round_trip():
    tok = data.gpt2_tokenizer()
    assert len(tok) == 50257
    assert tok.pad_token == tok.eos_token == "<|endoftext|>"
    text = "The early bird catches the lottery ticket."
    ids = tok(text)["input_ids"]
    assert tok.decode(ids) == text
    assert tok("Hello world")["input_ids"] == [15496, 995]
    assert data.gpt2_tokenizer() is tok  # cached in-process


def test_roberta_tokenizer_special_tokens():
    tok = data.roberta_tokenizer()
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")}
    assert ids == {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 50261}  # RoBERTa's layout
    assert len(tok) == 50262
    enc = tok("Hello world")["input_ids"]
    assert enc[0] == tok.bos_token_id == 0 and enc[-1] == tok.eos_token_id == 2
    assert enc[1:-1] == [15496 + 4, 995 + 4]  # GPT-2's BPE ids shifted past the specials
    assert tok.pad_token_id == 1
    assert tok.decode(enc, skip_special_tokens=True) == "Hello world"


def test_minilm_tokenizer_cls():
    assert (data.minilm_model_path() / "config.json").is_file()
    tok = data.minilm_tokenizer()
    enc = tok("Hello world")["input_ids"]
    assert tok.convert_ids_to_tokens(enc) == ["[CLS]", "hello", "world", "[SEP]"]


@pytest.mark.parametrize("make", [data.gpt2_tokenizer, data.roberta_tokenizer, data.minilm_tokenizer])
def test_tokenize_texts_shapes(make):
    df = pd.DataFrame({"text": ["a fine film", "dull " * 50, ""], "label": [1, 0, 0]})
    ds = data.tokenize_texts(df, make(), max_length=16)
    ids, mask, labels = ds.tensors["input_ids"], ds.tensors["attention_mask"], ds.tensors["labels"]
    assert ids.shape == mask.shape == (3, 16)
    assert ids.dtype == mask.dtype == labels.dtype == torch.int64
    assert labels.tolist() == [1, 0, 0]
    assert mask[1].all()  # truncated long text fills the window
    assert mask[0].sum() < 16  # short text is padded


# ----------------------------------------------------------------------------- paper profile


@pytest.mark.parametrize("var", ["HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"])
def test_paper_loaders_fail_fast_offline(monkeypatch, var):
    monkeypatch.setenv(var, "1")
    with pytest.raises(DataNotFoundError, match="Rotten Tomatoes"):
        data.load_imdb()
    with pytest.raises(DataNotFoundError, match="Fashion-MNIST"):
        data.load_cifar10("train")
    with pytest.raises(DataNotFoundError, match="pip install datasets"):
        data.load_cifar10("test")


def test_paper_loaders_without_datasets_package(monkeypatch):
    import importlib.util

    if importlib.util.find_spec("datasets") is not None:
        pytest.skip("Hugging Face datasets is installed; this checks the missing-package message")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    with pytest.raises(DataNotFoundError, match="datasets. is not installed"):
        data.load_imdb()


class _FakeHFDataset:
    """Just enough of datasets.Dataset for the paper loaders: column access and row access."""

    def __init__(self, columns: dict):
        self._columns = columns

    def __len__(self):
        return len(next(iter(self._columns.values())))

    def __getitem__(self, key):
        if isinstance(key, str):
            return self._columns[key]
        return {name: values[key] for name, values in self._columns.items()}


def test_paper_loaders_convert_like_offline_ones(monkeypatch):
    """The real CIFAR-10 / IMDB conversion code, fed by a stand-in `datasets` module (no network)."""
    import sys
    import types

    from PIL import Image

    rng = np.random.default_rng(0)

    def load_dataset(repo, split):
        if "cifar" in repo:
            images = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(30)]
            return _FakeHFDataset({"img": images, "label": [i % 10 for i in range(30)]})
        return _FakeHFDataset({"text": [f"review {split} {i}" for i in range(40)], "label": [i % 2 for i in range(40)]})

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)

    ds = data.load_cifar10("train", limit=20, image_size=16)
    assert ds.tensors["pixel_values"].shape == (20, 3, 16, 16)
    assert ds.tensors["pixel_values"].dtype == torch.float32
    assert torch.bincount(ds.tensors["labels"], minlength=10).tolist() == [2] * 10

    splits = data.load_imdb(seed=0, val_fraction=0.25, limit=20)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [20, 5, 5]
    assert list(splits["train"].columns) == ["text", "label"]
    assert not set(splits["train"]["text"]) & set(splits["val"]["text"])
