"""Save and load pruned models: the dense config, a small JSON of kept heads/channels per layer, and
the weights as safetensors. (`save_pretrained`/`from_pretrained` cannot hold a pruned model: loading
fails on sizes, or silently re-initializes with `ignore_mismatched_sizes=True`.)

    save_pruned(model, "runs/ticket")          # refuses to overwrite unless overwrite=True
    model = load_pruned("runs/ticket")         # rebuilt from config, shrunk, loaded strictly

Folder layout: config.json (transformers), ebcore_structure.json, model.safetensors.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import transformers
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from torch import nn

from .adapters import get_adapter, prepare_model
from .errors import CheckpointError, MaskMismatchError
from .surgery import shrink_to_structure

STRUCTURE_FILE = "ebcore_structure.json"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "ebcore.pruned/1"


def save_pruned(model: nn.Module, path: str | os.PathLike, overwrite: bool = False, extra: dict | None = None
                ) -> Path:
    """Write `model` (pruned or dense) to folder `path`. Existing files are never replaced silently."""
    path = Path(path)
    adapter = get_adapter(model)
    prepare_model(model)
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(f"{path} exists and is not empty; choose another folder or pass overwrite=True")
    blocks = adapter.blocks(model)
    structure = {
        "format": FORMAT, "family": adapter.family, "class": type(model).__name__,
        "transformers_version": transformers.__version__,
        "layers": [{"name": b.name, "heads": b.num_heads, "channels": b.num_channels} for b in blocks],
        "extra": extra or {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        model.config.to_json_file(tmp / CONFIG_FILE)
        (tmp / STRUCTURE_FILE).write_text(json.dumps(structure, indent=1))
        save_model(model, str(tmp / WEIGHTS_FILE))
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def read_structure(path: str | os.PathLike) -> dict:
    """The structure JSON of a saved model, validated."""
    path = Path(path)
    for name in (CONFIG_FILE, STRUCTURE_FILE, WEIGHTS_FILE):
        if not (path / name).is_file():
            raise CheckpointError(f"{path} is not an ebcore pruned model: {name} is missing "
                                  "(save with ebcore.io.save_pruned)")
    try:
        structure = json.loads((path / STRUCTURE_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path / STRUCTURE_FILE} is corrupt ({err}); re-save the model") from None
    if not isinstance(structure, dict) or structure.get("format") != FORMAT:
        raise CheckpointError(f"{path / STRUCTURE_FILE} is not in format {FORMAT}")
    return structure


def load_pruned(path: str | os.PathLike, device: str | None = None) -> nn.Module:
    """Rebuild a saved model: config -> model class -> shrink each layer -> strict safetensors load."""
    path = Path(path)
    structure = read_structure(path)
    try:
        config = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path / CONFIG_FILE} cannot be read as a transformers config: {err}") from None
    cls = getattr(transformers, structure["class"], None)
    if cls is None:
        raise CheckpointError(f"unknown model class {structure['class']!r} in {path / STRUCTURE_FILE}")
    model = cls(config)
    layers = structure["layers"]
    n_blocks = len(get_adapter(model).blocks(prepare_model(model)))
    if len(layers) != n_blocks:
        raise CheckpointError(f"{path}: the structure lists {len(layers)} layers but config.json builds {n_blocks}; "
                              "the config does not match this pruned model")
    try:
        shrink_to_structure(model, [(int(l["heads"]), int(l["channels"])) for l in layers])
    except MaskMismatchError as err:
        raise CheckpointError(f"{path}: the saved structure does not fit config.json ({err})") from None
    try:
        missing, unexpected = load_model(model, str(path / WEIGHTS_FILE), strict=True, device=device or "cpu")
    except SafetensorError as err:
        raise CheckpointError(f"{path / WEIGHTS_FILE} is corrupt ({err}); re-save the model") from None
    except RuntimeError as err:
        raise CheckpointError(f"{path / WEIGHTS_FILE} does not match the saved structure: {err}") from None
    return model.to(device) if device else model
