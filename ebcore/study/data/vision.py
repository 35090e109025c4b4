"""Images: Fashion-MNIST read from the Debian package ``dataset-fashion-mnist`` (gzipped IDX files), and the
uint8 -> normalized ``pixel_values`` conversion that every image loader (CIFAR-10 too) ends with."""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataNotFoundError
from .base import DictDataset, _balanced_rows, _check_limit

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


# ---------------------------------------------------------------------------------------------
# Shared by the image loaders
# ---------------------------------------------------------------------------------------------


def _check_split(name: str, split: str) -> None:
    """Image data sets come as a ``train`` and a ``test`` split."""
    if split not in ("train", "test"):
        raise ValueError(f"{name} split must be 'train' or 'test', got {split!r}")


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


def _image_dataset(
    images: np.ndarray, labels: np.ndarray, image_size: int, channels: int,
    mean: tuple[float, ...], std: tuple[float, ...],
) -> DictDataset:
    """uint8 images (N, H, W[, C]) and labels (N,) -> ``DictDataset(pixel_values, labels int64)``."""
    return DictDataset(
        pixel_values=_to_pixel_values(images, image_size, channels, mean, std),  # (N, channels, size, size) float32
        labels=torch.tensor(labels, dtype=torch.int64),  # (N,)
    )


# ---------------------------------------------------------------------------------------------
# Fashion-MNIST (Debian package dataset-fashion-mnist)
# ---------------------------------------------------------------------------------------------


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


def load_fashion_mnist(split: str = "train", limit: int | None = None, image_size: int = 28, channels: int = 1,
                       seed: int = 0) -> DictDataset:
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
    _check_split("Fashion-MNIST", split)
    _check_limit(limit)
    if image_size <= 0 or channels <= 0:
        raise ValueError(f"image_size and channels must be positive, got {image_size} and {channels}")
    folder = os.environ.get("EBCORE_FASHION_MNIST_DIR", _FASHION_MNIST_DEFAULT_DIR)
    images, labels = _fashion_mnist_raw(str(Path(folder).expanduser()), split)  # (N, 28, 28), (N,)
    idx = _balanced_rows(labels, limit, seed)
    if idx is not None:
        images, labels = images[idx], labels[idx]  # (limit, 28, 28), (limit,)
    return _image_dataset(images, labels, image_size, channels, (FASHION_MNIST_MEAN,), (FASHION_MNIST_STD,))
