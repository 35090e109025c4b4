"""The weights of a Trainer checkpoint, loaded and checked by name and shape.

transformers 5 saves some models under their old key names (ViT: `vit.encoder.layer.0.attention.attention.
query.weight` for `vit.encoder.layer.0.attention.q_proj.weight`; Swin likewise), reverting the conversion
mapping it applies in `from_pretrained`. `Trainer._load_from_checkpoint` loads the file with a plain
`load_state_dict(strict=False)`, so on resume every renamed tensor is silently left as initialised (ViT:
32 of 40 parameters). Here the saved keys are mapped back to the model's names with transformers' own
conversion mapping (`get_model_conversion_mapping` + `rename_source_key`), every model tensor must be
matched with the right shape, and a `CheckpointError` names whatever is left over.

    n = load_checkpoint_weights(model, "out/checkpoint-400")     # exact, or CheckpointError
    verify_checkpoint_weights(model, "out/checkpoint-400")       # every tensor equal, or CheckpointError
"""
from __future__ import annotations

import json
import logging
import os
import weakref
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from ..errors import CheckpointError

logger = logging.getLogger("ebcore.hf")

SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
TORCH_WEIGHTS = "pytorch_model.bin"
TORCH_INDEX = "pytorch_model.bin.index.json"

# Trainers that prepare_resume has loaded a checkpoint into: trainer -> checkpoint path. The callback
# checks the weights again at train begin (after the Trainer's own load); a weak map, as the callback
# instance itself may be replaced by the Trainer (restore_callback_states_from_checkpoint=True).
PREPARED: "weakref.WeakKeyDictionary[object, str]" = weakref.WeakKeyDictionary()


def read_checkpoint_tensors(checkpoint: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint folder's model weights, under the names the file holds (CPU)."""
    folder = Path(checkpoint)
    if (folder / SAFE_WEIGHTS).is_file():
        return load_file(str(folder / SAFE_WEIGHTS), device="cpu")
    for index, loader in ((SAFE_INDEX, lambda f: load_file(str(f), device="cpu")),
                          (TORCH_INDEX, lambda f: torch.load(f, map_location="cpu", weights_only=True))):
        if (folder / index).is_file():
            shards = sorted(set(json.loads((folder / index).read_text())["weight_map"].values()))
            out: dict[str, torch.Tensor] = {}
            for shard in shards:
                out.update(loader(folder / shard))
            return out
    if (folder / TORCH_WEIGHTS).is_file():
        return torch.load(folder / TORCH_WEIGHTS, map_location="cpu", weights_only=True)
    raise CheckpointError(f"{folder} holds no model weights ({SAFE_WEIGHTS}, {SAFE_INDEX}, {TORCH_WEIGHTS} or "
                          f"{TORCH_INDEX}); give a checkpoint folder written by Trainer.save_model / a save step")


def to_model_names(model: nn.Module, saved: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`saved` under `model`'s parameter names: transformers' conversion mapping for the model applied to
    each key (the renames its save reverted). CheckpointError if the mapping would transform a tensor
    (not just rename it), or if two saved keys land on one name."""
    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key

    try:
        conversions = get_model_conversion_mapping(model)
    except AttributeError:   # not a transformers PreTrainedModel: names are used as they are
        conversions = []
    renamings = [c for c in conversions if isinstance(c, WeightRenaming)]
    converters = [c for c in conversions if isinstance(c, WeightConverter)]
    out: dict[str, torch.Tensor] = {}
    source: dict[str, str] = {}
    for key, tensor in saved.items():
        name, converted = rename_source_key(key, renamings, converters)
        if converted is not None:
            raise CheckpointError(f"checkpoint key {key!r} needs transformers' tensor conversion {converted!r} "
                                  "(not a plain rename), which ebcore does not apply; this model family cannot be "
                                  "resumed exactly through ebcore.hf.prepare_resume")
        if name in out:
            raise CheckpointError(f"checkpoint keys {source[name]!r} and {key!r} both map to {name!r}")
        out[name], source[name] = tensor, key
    return out


def _match(model: nn.Module, checkpoint: str | os.PathLike) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """name -> (model tensor, checkpoint tensor) for every tensor of `model.state_dict()`; CheckpointError
    naming every model tensor without a checkpoint tensor, every leftover checkpoint tensor and every
    shape that differs. A tensor tied to another (GPT-2's lm_head) is covered by the one it shares."""
    saved = to_model_names(model, read_checkpoint_tensors(checkpoint))
    own = model.state_dict(keep_vars=True)
    pairs = {n: (t, saved[n]) for n, t in own.items() if n in saved}
    loaded_storage = {t.data_ptr() for t, _ in pairs.values()}
    missing = [n for n, t in own.items() if n not in saved and t.data_ptr() not in loaded_storage]
    leftover = [n for n in saved if n not in own]
    shapes = [f"{n}: model {tuple(t.shape)}, checkpoint {tuple(s.shape)}" for n, (t, s) in pairs.items()
              if t.shape != s.shape]
    if missing or leftover or shapes:
        parts = [f"{len(missing)} model tensors not in the checkpoint: {missing[:6]}" if missing else "",
                 f"{len(leftover)} checkpoint tensors the model does not have: {leftover[:6]}" if leftover else "",
                 f"{len(shapes)} shapes differ: {shapes[:4]}" if shapes else ""]
        raise CheckpointError(
            f"the weights in {checkpoint} do not fit {type(model).__name__} ({len(own)} tensors): "
            + "; ".join(p for p in parts if p) + ". Resume with a model of the same family and settings as the "
            "run that wrote the checkpoint (a pruned run: add_early_bird with its settings, then prepare_resume)")
    return pairs


def load_checkpoint_weights(model: nn.Module, checkpoint: str | os.PathLike) -> int:
    """Copy every tensor of `checkpoint`'s weights into `model` in place (names mapped back, shapes checked;
    CheckpointError otherwise); returns the number of tensors loaded."""
    pairs = _match(model, checkpoint)
    with torch.no_grad():
        for own, saved in pairs.values():
            own.copy_(saved.to(dtype=own.dtype))
    return len(pairs)


def verify_checkpoint_weights(model: nn.Module, checkpoint: str | os.PathLike) -> int:
    """CheckpointError unless every tensor of `model` equals its checkpoint tensor exactly; returns the count."""
    pairs = _match(model, checkpoint)
    differ = [n for n, (own, saved) in pairs.items()
              if not torch.equal(own.detach().cpu(), saved.to(dtype=own.dtype))]
    if differ:
        raise CheckpointError(f"after loading {checkpoint}, {len(differ)} of {len(pairs)} model tensors differ from "
                              f"the checkpoint: {differ[:6]}")
    return len(pairs)
