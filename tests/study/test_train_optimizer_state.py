"""The study loop's `train(..., optimizer_state=...)`: AdamW starts from a given state per parameter name
(a dense run's moments carried through a prune by ebcore.optim_state); the default starts empty."""
from __future__ import annotations

import pytest
import torch
from transformers import ViTConfig, ViTForImageClassification

import ebcore as eb
from ebcore.optim_state import ParameterSlices, named_optimizer_state
from ebcore.study.data import DictDataset
from ebcore.study.train import Callback, TrainConfig, train


class Grab(Callback):
    """Keeps the loop's optimizer, and a copy of its state by name when training starts."""

    def on_train_start(self, state) -> None:
        self.optimizer = state.optimizer
        self.at_start = {n: {k: v.clone() for k, v in state.optimizer.state[p].items()}
                         for n, p in state.model.named_parameters() if p in state.optimizer.state}


def vit() -> ViTForImageClassification:
    torch.manual_seed(0)
    return ViTForImageClassification(ViTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64, image_size=8,
        patch_size=4, num_channels=1, num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))


def blobs(n: int = 64) -> DictDataset:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (n,), generator=g)
    return DictDataset(pixel_values=torch.randn(n, 1, 8, 8, generator=g) + labels.view(n, 1, 1, 1), labels=labels)


def config() -> TrainConfig:
    return TrainConfig(epochs=1, batch_size=16, lr=3e-3, progress=False, device="cpu")


def test_pruned_run_starts_from_the_carried_state():
    model, data, dense = vit(), blobs(), Grab()
    train(model, data, config(), callbacks=[dense])   # 4 AdamW steps
    named = named_optimizer_state(dense.optimizer, model)
    mask = eb.draw_mask(model, 0.5)
    slices = ParameterSlices.record(model, mask)
    eb.prune_model(model, mask)
    carried = slices.slice_named(named)
    with pytest.raises(ValueError, match="shape"):
        train(model, data, config(), optimizer_state=named)            # not sliced: refused
    with pytest.raises(ValueError, match="not a trainable parameter"):
        train(model, data, config(), optimizer_state={"nope.weight": {}})
    fresh = Grab()
    train(model, data, config(), callbacks=[fresh])
    assert fresh.at_start == {}                                          # the default: AdamW starts empty
    started = Grab()
    train(model, data, config(), callbacks=[started], optimizer_state=carried)
    assert set(started.at_start) == {n for n, _ in model.named_parameters()}
    for name, state in started.at_start.items():
        assert float(state["step"]) == 4.0
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(state[key], carried[name][key]), (name, key)
    assert float(started.optimizer.state[dict(model.named_parameters())["classifier.weight"]]["step"]) == 8.0
