"""Saved pruned models: load_pruned returns eval mode, damaged weights and structure files are checkpoint
errors, and bad save/load arguments are refused with the argument's name."""
import json
import warnings

import pytest
import torch
from transformers.pytorch_utils import Conv1D

import ebcore as eb
from ebcore.detector import EarlyBirdDetector
from ebcore.graph import ModelGraph
from ebcore.io import load_pruned, read_structure, save_pruned
from ebcore.masks import check_ratio
from ebcore.scores import LayerScores, Scores
from ebcore.surgery import shrink_to_structure
from conftest import FAMILIES, logits, make_batch, make_model


def flags(model):
    return {n: p.requires_grad for n, p in model.named_parameters()}


def has_conv1d(model):
    return any(isinstance(m, Conv1D) for m in model.modules())



# --- 6. load_pruned returns eval mode ---------------------------------------------------------------

def test_load_pruned_returns_eval_mode(tmp_path):
    model = make_model("roberta")
    eb.prune_model(model, eb.draw_mask(model, 0.3))
    save_pruned(model, tmp_path / "m")
    back = load_pruned(tmp_path / "m")
    assert not back.training and not any(m.training for m in back.modules())
    batch = make_batch("roberta")
    assert torch.equal(back(**batch).logits, logits(model, batch))


# --- 7. checksum of the weights ---------------------------------------------------------------------

def test_damaged_weights_are_detected_by_checksum(tmp_path):
    model = make_model("bert")
    save_pruned(model, tmp_path / "m")
    assert len(read_structure(tmp_path / "m")["weights_sha256"]) == 64
    path = tmp_path / "m" / "model.safetensors"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = b"\xff" * 4096  # NaN-ish garbage inside the tensor data; header intact
    path.write_bytes(bytes(data))
    with pytest.raises(eb.CheckpointError, match=r"model\.safetensors.*sha256"):
        load_pruned(tmp_path / "m")


def test_folder_without_checksum_loads_with_a_warning(tmp_path):
    model = make_model("vit")
    save_pruned(model, tmp_path / "m")
    path = tmp_path / "m" / "ebcore_structure.json"
    data = json.loads(path.read_text())
    del data["weights_sha256"]
    path.write_text(json.dumps(data))
    with pytest.warns(UserWarning, match="checksum"):
        back = load_pruned(tmp_path / "m")
    batch = make_batch("vit")
    assert torch.equal(logits(back, batch), logits(model, batch))


# --- 8. clear errors for bad arguments and damaged files ----------------------------------------------

@pytest.mark.parametrize("damage, match", [
    (lambda d: d.pop("layers"), "layers"),
    (lambda d: d.pop("class"), "class"),
    (lambda d: d["layers"][0].pop("heads"), "heads"),
    (lambda d: d["layers"][0].update(heads="three"), "three"),
    (lambda d: d["layers"][0].update(channels=None), "channels"),
    (lambda d: d["layers"][0].update(heads=2.5), "heads"),
    (lambda d: d.update(layers="all"), "layers"),
    (lambda d: d.update(weights_sha256=12), "weights_sha256"),
])
def test_damaged_structure_file_is_a_checkpoint_error(tmp_path, damage, match):
    save_pruned(make_model("bert"), tmp_path / "m")
    path = tmp_path / "m" / "ebcore_structure.json"
    data = json.loads(path.read_text())
    damage(data)
    path.write_text(json.dumps(data))
    with pytest.raises(eb.CheckpointError, match=match):
        load_pruned(tmp_path / "m")



def test_bad_save_and_load_arguments(tmp_path):
    model = make_model("vit")
    with pytest.raises(eb.InvalidArgumentError, match="path"):
        save_pruned(model, None)
    with pytest.raises(eb.InvalidArgumentError, match="extra"):
        save_pruned(model, tmp_path / "a", extra={"f": object()})
    assert not (tmp_path / "a").exists()
    with pytest.raises(eb.InvalidArgumentError, match="overwrite"):
        save_pruned(model, tmp_path / "b", overwrite="no")
    with pytest.raises(eb.UnsupportedModelError):
        save_pruned({"not": "a model"}, tmp_path / "c")
    save_pruned(model, tmp_path / "m")
    with pytest.raises(eb.CheckpointExistsError, match="overwrite=True"):
        save_pruned(model, tmp_path / "m")
    with pytest.raises(eb.InvalidArgumentError, match="path"):
        load_pruned(3)
    with pytest.raises(eb.InvalidArgumentError, match="device"):
        load_pruned(tmp_path / "m", device=3)
    if not torch.cuda.is_available():
        with pytest.raises(eb.InvalidArgumentError, match="CUDA"):
            load_pruned(tmp_path / "m", device="cuda")
