"""Save and load pruned models: the dense config, a small JSON of kept heads/channels per layer, and
the weights as safetensors. (`save_pretrained`/`from_pretrained` cannot hold a pruned model: loading
fails on sizes, or silently re-initializes with `ignore_mismatched_sizes=True`.)

    save_pruned(model, "runs/ticket")          # refuses to overwrite unless overwrite=True
    model = load_pruned("runs/ticket")         # rebuilt from config, shrunk, loaded strictly, eval mode
    save_pruned(model, "runs/hf", format="hf") # a plain Hugging Face checkpoint, where the config can hold it

Folder layout: config.json (transformers), ebcore_structure.json (with the sha256 of the weights, checked
at load: safetensors itself has no checksum), model.safetensors. The model passed to `save_pruned` is
never modified: an unprepared GPT-2 is converted on a copy. `format="hf"` writes what `from_pretrained` loads
without ebcore (uniform widths only, and heads only where the family's config can carry the head size):
see `ebcore.hf_export`.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import warnings
from pathlib import Path

import torch
import transformers
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from torch import nn

from .adapters import get_adapter, needs_preparation, prepare_model
from .errors import CheckpointError, CheckpointExistsError, InvalidArgumentError, MaskMismatchError, describe
from .files import atomic_folder
from .hf_export import write_hf
from .surgery import shrink_to_structure

STRUCTURE_FILE = "ebcore_structure.json"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "ebcore.pruned/1"
SAVE_FORMATS = ("ebcore", "hf")
CHECKSUM_KEY = "weights_sha256"


def _as_path(path: object, name: str = "path") -> Path:
    if not isinstance(path, (str, os.PathLike)) or str(path) == "":
        raise InvalidArgumentError(f"{name} must be a folder path (str or os.PathLike), got {describe(path)}")
    return Path(path)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_pruned(model: nn.Module, path: str | os.PathLike, overwrite: bool = False, extra: dict | None = None,
                format: str = "ebcore") -> Path:
    """Write `model` (pruned or dense) to folder `path`. Existing files are never replaced silently.

    `extra` is any JSON-serializable dict stored with the structure. The model is left untouched.
    `format`: "ebcore" (any widths; read back with load_pruned) or "hf" (an ordinary Hugging Face checkpoint
    that `from_pretrained` loads without ebcore; NotPortableError where the family's config cannot describe
    the pruned model, e.g. uneven widths: draw the mask with uniform=True).
    """
    adapter = get_adapter(model)
    path = _as_path(path)
    if not isinstance(format, str) or format not in SAVE_FORMATS:
        raise InvalidArgumentError(f"unknown format {describe(format)} for `format`; choose one of {SAVE_FORMATS}")
    if not isinstance(overwrite, bool):
        raise InvalidArgumentError(f"overwrite must be True or False, got {describe(overwrite)}")
    if format == "hf" and extra is not None:
        raise InvalidArgumentError("extra is stored only by format='ebcore' (a Hugging Face checkpoint has no place "
                                   "for it); leave extra out, or keep it in a file of your own beside the folder")
    if extra is not None and not isinstance(extra, dict):
        raise InvalidArgumentError(f"extra must be a dict (JSON-serializable) or None, got {describe(extra)}")
    try:
        json.dumps(extra or {})
    except (TypeError, ValueError) as err:
        raise InvalidArgumentError(f"extra must be JSON-serializable ({err}); got {describe(extra)}") from None
    if path.exists() and not path.is_dir():
        raise CheckpointExistsError(f"{path} exists and is a file; choose a folder path")
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise CheckpointExistsError(f"{path} exists and is not empty; choose another folder or pass overwrite=True")
    if format == "hf":
        return write_hf(model, path)
    if needs_preparation(model):
        # Convert a copy: converting in place would replace parameters an optimizer may hold.
        model = prepare_model(copy.deepcopy(model))
    blocks = adapter.blocks(model)
    structure = {
        "format": FORMAT, "family": adapter.family, "class": type(model).__name__,
        "transformers_version": transformers.__version__,
        "layers": [{"name": b.name, "heads": b.num_heads, "channels": b.num_channels,
                    **({"kv_heads": b.kv_heads} if b.grouped else {})} for b in blocks],
        "extra": extra or {},
    }

    def write(tmp: Path) -> None:
        model.config.to_json_file(tmp / CONFIG_FILE)
        save_model(model, str(tmp / WEIGHTS_FILE))
        structure[CHECKSUM_KEY] = file_sha256(tmp / WEIGHTS_FILE)
        (tmp / STRUCTURE_FILE).write_text(json.dumps(structure, indent=1))
    return atomic_folder(path, write)


def _validate_structure(structure: object, file: Path) -> dict:
    """Every key load_pruned reads, with its type; a CheckpointError naming the file and key otherwise."""
    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{file} is damaged: {what}; re-save the model with ebcore.io.save_pruned")
    if not isinstance(structure, dict):
        raise bad(f"expected a JSON object, got {describe(structure)}")
    if structure.get("format") != FORMAT:
        raise CheckpointError(f"{file} is not in format {FORMAT} (format: {describe(structure.get('format'))})")
    for key in ("family", "class"):
        if not isinstance(structure.get(key), str):
            raise bad(f"key {key!r} must be a string, got {describe(structure.get(key, '<missing>'))}")
    layers = structure.get("layers")
    if not isinstance(layers, list) or not layers:
        raise bad(f"key 'layers' must be a non-empty list, got {describe(layers if 'layers' in structure else '<missing>')}")
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict):
            raise bad(f"layers[{i}] must be an object, got {describe(layer)}")
        for key in ("heads", "channels", "kv_heads"):
            if key == "kv_heads" and key not in layer:
                continue  # grouped-query attention only
            value = layer.get(key, "<missing>")
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad(f"layers[{i}].{key} must be a positive integer, got {describe(value)}")
    if "extra" in structure and not isinstance(structure["extra"], dict):
        raise bad(f"key 'extra' must be an object, got {describe(structure['extra'])}")
    checksum = structure.get(CHECKSUM_KEY)
    if checksum is not None and not (isinstance(checksum, str) and len(checksum) == 64):
        raise bad(f"key {CHECKSUM_KEY!r} must be a 64-character hex string, got {describe(checksum)}")
    return structure


def read_structure(path: str | os.PathLike) -> dict:
    """The structure JSON of a saved model, validated."""
    path = _as_path(path)
    for name in (CONFIG_FILE, STRUCTURE_FILE, WEIGHTS_FILE):
        if not (path / name).is_file():
            raise CheckpointError(f"{path} is not an ebcore pruned model: {name} is missing "
                                  "(save with ebcore.io.save_pruned; a folder saved with format='hf' is a plain "
                                  "Hugging Face checkpoint: load it with transformers' from_pretrained)")
    try:
        structure = json.loads((path / STRUCTURE_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path / STRUCTURE_FILE} is corrupt ({err}); re-save the model") from None
    return _validate_structure(structure, path / STRUCTURE_FILE)


def load_pruned(path: str | os.PathLike, device: str | torch.device | None = None) -> nn.Module:
    """Rebuild a saved model: config -> model class -> shrink each layer -> strict safetensors load ->
    checksum check. Returned in eval mode, like `from_pretrained` (call `.train()` to fine-tune)."""
    path = _as_path(path)
    if device is not None:
        try:
            device = torch.device(device)
        except (TypeError, RuntimeError) as err:
            raise InvalidArgumentError(f"device must be None, a torch.device or a string such as 'cpu' or 'cuda', "
                                       f"got {describe(device)} ({err})") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise InvalidArgumentError(f"device {str(device)!r} was asked for but CUDA is not available here; "
                                       "pass device='cpu' (or None).")
    structure = read_structure(path)
    try:
        config = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path / CONFIG_FILE} cannot be read as a transformers config: {err}") from None
    cls = getattr(transformers, structure["class"], None)
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise CheckpointError(f"unknown model class {structure['class']!r} in {path / STRUCTURE_FILE}")
    try:
        model = cls(config)
        get_adapter(model)
    except Exception as err:  # a class that does not fit the config, or an unsupported one
        raise CheckpointError(f"{path}: cannot build {structure['class']} from {CONFIG_FILE} ({err})") from None
    layers = structure["layers"]
    n_blocks = len(get_adapter(model).blocks(prepare_model(model)))
    if len(layers) != n_blocks:
        raise CheckpointError(f"{path}: the structure lists {len(layers)} layers but config.json builds {n_blocks}; "
                              "the config does not match this pruned model")
    try:
        shrink_to_structure(model, [(l["heads"], l["channels"], *([l["kv_heads"]] if "kv_heads" in l else []))
                                    for l in layers])
    except MaskMismatchError as err:
        raise CheckpointError(f"{path}: the saved structure does not fit config.json ({err})") from None
    weights = path / WEIGHTS_FILE
    try:
        load_model(model, str(weights), strict=True, device=str(device) if device else "cpu")
    except SafetensorError as err:
        raise CheckpointError(f"{weights} is corrupt ({err}); re-save the model") from None
    except RuntimeError as err:
        raise CheckpointError(f"{weights} does not match the saved structure: {err}") from None
    expected = structure.get(CHECKSUM_KEY)
    if expected is None:
        warnings.warn(f"{path / STRUCTURE_FILE} records no checksum of {WEIGHTS_FILE} (saved by an older ebcore): "
                      "damaged weights cannot be detected; re-save it with ebcore.io.save_pruned.", UserWarning,
                      stacklevel=2)
    else:
        actual = file_sha256(weights)
        if actual != expected:
            raise CheckpointError(f"{weights} is corrupt: its sha256 {actual[:16]}... differs from the "
                                  f"{expected[:16]}... recorded in {STRUCTURE_FILE} at save time; the file was "
                                  "changed or damaged after saving. Restore it or re-save the model.")
    model = model.to(device) if device else model
    return model.eval()
