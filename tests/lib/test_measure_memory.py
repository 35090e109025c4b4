"""Training memory on the CPU is measured (the CPU allocator's peak over AdamW steps, ebcore.cpu_memory), not
estimated: it bounds the training state from above, grows with the batch, drops with pruning, and leaves the
caller's model and RNG as they were."""
from __future__ import annotations

import pytest
import torch

import ebcore as eb
from ebcore.cpu_memory import measure_cpu_training_step
from ebcore.measure import count_parameters, estimated_training_memory, training_memory
from ebcore.tiny import tiny_labels

from conftest import make_batch, make_model


def _labelled(family: str, n: int) -> dict:
    batch = make_batch(family, n)
    return {**batch, "labels": tiny_labels(family, batch)}


def _param_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in {id(p): p for p in model.parameters()}.values())


@pytest.mark.parametrize("family", ["vit", "gpt2"])
def test_the_peak_holds_at_least_weights_gradients_and_both_moments(family):
    model = make_model(family)
    mem, kind = training_memory(model, _labelled(family, 4))
    assert mem >= 4 * _param_bytes(model)
    assert kind.startswith("cpu_allocator_peak") and "estimate" not in kind and "16 B" not in kind


def test_the_steps_parts_add_up():
    model = make_model("vit")
    batch = _labelled("vit", 4)
    m = measure_cpu_training_step(model, batch)
    batch_bytes = sum(t.untyped_storage().nbytes() for t in batch.values())
    assert m.resident == _param_bytes(model) + sum(b.untyped_storage().nbytes() for b in model.buffers()) + batch_bytes
    # two fp32 moments per parameter plus one step count per tensor
    assert 2 * _param_bytes(model) <= m.optimizer_state <= 2 * _param_bytes(model) + 64 * len(list(model.parameters()))
    assert m.peak_steady_step >= m.resident + m.optimizer_state + _param_bytes(model)   # + the gradients
    assert m.peak_first_step >= m.resident + m.optimizer_state   # the moments are made within the first step


def test_a_bigger_batch_measures_more():
    model = make_model("vit")
    small, _ = training_memory(model, _labelled("vit", 2))
    big, _ = training_memory(model, _labelled("vit", 16))
    assert big > small
    assert training_memory(model, _labelled("vit", 16))[0] == big   # repeatable to the byte


def test_a_pruned_model_measures_less_than_its_dense_original():
    dense = make_model("vit")
    pruned = make_model("vit")
    eb.prune_model(pruned, eb.draw_mask(pruned, 0.5))
    assert count_parameters(pruned) < count_parameters(dense)
    batch = _labelled("vit", 16)
    assert training_memory(pruned, batch)[0] < training_memory(dense, batch)[0]


def test_the_callers_model_rng_and_mode_are_untouched():
    model = make_model("gpt2").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    training_memory(model, _labelled("gpt2", 4))
    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)


def test_the_tied_embedding_counts_once():
    model = make_model("gpt2_lm")
    assert model.lm_head.weight is model.transformer.wte.weight
    batch = _labelled("gpt2_lm", 2)
    m = measure_cpu_training_step(model, batch)
    others = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in (*model.buffers(), *batch.values())}
    assert m.resident == _param_bytes(model) + sum(others.values())   # the embedding's storage once


def test_the_estimate_is_kept_apart():
    model = make_model("vit")
    batch = _labelled("vit", 4)
    assert estimated_training_memory(model, batch) >= 16 * count_parameters(model)
    assert training_memory(model, batch)[0] != estimated_training_memory(model, batch)


def test_a_batch_without_labels_is_refused():
    with pytest.raises(ValueError, match="labels"):
        training_memory(make_model("vit"), make_batch("vit", 2))
