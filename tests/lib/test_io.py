"""Saving and loading pruned models: identical outputs, clear errors, nothing overwritten silently."""
import json

import pytest
import torch

import ebcore as eb
from ebcore.graph import ModelGraph
from ebcore.io import load_pruned, read_structure, save_pruned
from conftest import FAMILIES, logits, make_batch, make_model


def pruned(family, ratio=0.5):
    model = make_model(family)
    graph = ModelGraph.build(model)
    mask = eb.mask_from_scores(eb.score_model(graph), ratio, scope="global",
                               head_dims=[b.head_dim for b in graph.blocks])
    eb.prune_model(model, mask)
    return model, mask


@pytest.mark.parametrize("family", FAMILIES)
def test_save_load_gives_identical_outputs(family, tmp_path):
    model, mask = pruned(family)
    save_pruned(model, tmp_path / "m", extra={"ratio": 0.5})
    back = load_pruned(tmp_path / "m").eval()
    batch = make_batch(family)
    assert torch.equal(logits(back, batch), logits(model, batch))
    assert ModelGraph.build(back).structure() == mask.kept_structure
    assert read_structure(tmp_path / "m")["extra"] == {"ratio": 0.5}


def test_existing_folder_is_not_overwritten(tmp_path):
    model, _ = pruned("vit")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_pruned(model, tmp_path / "m")
    assert (tmp_path / "m" / "notes.txt").read_text() == "mine"
    save_pruned(model, tmp_path / "m", overwrite=True)
    assert not (tmp_path / "m" / "notes.txt").exists()


def test_corrupt_weights_file(tmp_path):
    model, _ = pruned("bert")
    save_pruned(model, tmp_path / "m")
    path = tmp_path / "m" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(eb.CheckpointError, match="corrupt"):
        load_pruned(tmp_path / "m")


def test_corrupt_structure_file(tmp_path):
    model, _ = pruned("bert")
    save_pruned(model, tmp_path / "m")
    (tmp_path / "m" / "ebcore_structure.json").write_text("{not json")
    with pytest.raises(eb.CheckpointError, match="corrupt"):
        load_pruned(tmp_path / "m")


def test_missing_file(tmp_path):
    with pytest.raises(eb.CheckpointError, match="config.json is missing"):
        load_pruned(tmp_path)


def test_structure_that_does_not_fit_the_config(tmp_path):
    model, _ = pruned("gpt2")
    save_pruned(model, tmp_path / "m")
    path = tmp_path / "m" / "ebcore_structure.json"
    data = json.loads(path.read_text())
    data["layers"][0]["heads"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(eb.CheckpointError, match="does not fit config.json"):
        load_pruned(tmp_path / "m")
    data["layers"] = data["layers"][:1]
    path.write_text(json.dumps(data))
    with pytest.raises(eb.CheckpointError, match="lists 1 layers"):
        load_pruned(tmp_path / "m")


def test_weights_of_another_structure(tmp_path):
    a, _ = pruned("roberta", 0.5)
    b, _ = pruned("roberta", 0.1)
    save_pruned(a, tmp_path / "a")
    save_pruned(b, tmp_path / "b")
    (tmp_path / "a" / "model.safetensors").write_bytes((tmp_path / "b" / "model.safetensors").read_bytes())
    with pytest.raises(eb.CheckpointError, match="does not match the saved structure"):
        load_pruned(tmp_path / "a")
