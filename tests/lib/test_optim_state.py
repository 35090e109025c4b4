"""Optimizer state through a prune (ebcore.optim_state): every kept weight keeps its Adam moments, sliced
like the weight; step counts are kept; and the next optimizer step on the pruned model equals the same step
on the soft-masked dense model, on every kept unit (AdamW, with and without amsgrad)."""
from __future__ import annotations

import copy

import pytest
import torch
import transformers as T

import ebcore as eb
from ebcore.errors import InvalidArgumentError, MaskMismatchError
from ebcore.graph import head_channels
from ebcore.hf import add_early_bird
from ebcore.optim_state import ParameterSlices
from ebcore.study.data import DictDataset
from conftest import FAMILIES, make_batch, make_model


def as_double(batch: dict) -> dict:
    return {k: v.double() if v.is_floating_point() else v for k, v in batch.items()}


def loss_of(model, batch) -> torch.Tensor:
    return model(**batch).logits.float().pow(2).mean()


def prepared(family: str, seed: int = 0) -> torch.nn.Module:
    return eb.prepare_model(make_model(family, seed))   # GPT-2: Conv1D -> Linear before the optimizer exists


def mask_of(model, ratio: float = 0.5, seed: int = 3) -> eb.Mask:
    """A random mask: kept units scattered over each layer (not a prefix), so wrong index order shows."""
    dense = eb.draw_mask(model, ratio)
    return eb.random_mask([(*s, hd) for s, hd in zip(dense.structure, dense.head_dims)], ratio, seed=seed,
                          group_sizes=dense.group_sizes)   # decoders: query heads kept evenly per KV group


def train_steps(model, optimizer, batch, steps: int) -> None:
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss_of(model, batch).backward()
        optimizer.step()


def assert_live(optimizer, model) -> None:
    held = [p for g in optimizer.param_groups for p in g["params"]]
    assert {id(p) for p in held} == {id(p) for p in model.parameters()}
    assert set(map(id, optimizer.state)) <= {id(p) for p in model.parameters()}


@pytest.mark.parametrize("family", FAMILIES)
def test_state_follows_the_weights(family):
    """Each state tensor is set to a function of its weight before the prune; afterwards it must be the same
    function of the pruned weight: the state is sliced exactly like the weights (which prune_model verifies
    against the mask), in the same order."""
    model, batch = prepared(family), make_batch(family)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, amsgrad=True)
    train_steps(model, opt, batch, 2)
    with torch.no_grad():
        for p in model.parameters():
            st = opt.state[p]
            st["exp_avg"].copy_(p)
            st["exp_avg_sq"].copy_(p * p + 1)
            st["max_exp_avg_sq"].copy_(p * 3)
    mask = mask_of(model)
    before = eb.count_parameters(model)
    eb.prune_with_optimizer(model, mask, opt)
    assert eb.count_parameters(model) < before
    assert_live(opt, model)
    for name, p in model.named_parameters():
        st = opt.state[p]
        assert float(st["step"]) == 2.0, name
        assert torch.equal(st["exp_avg"], p.detach()), name
        assert torch.equal(st["exp_avg_sq"], p.detach() * p.detach() + 1), name
        assert torch.equal(st["max_exp_avg_sq"], p.detach() * 3), name


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("family", FAMILIES)
def test_next_step_equals_soft_masked_dense_step(family, amsgrad):
    """Three AdamW steps dense, then one step on (a) the pruned model with the carried state and (b) a copy of
    the dense model under the soft mask with the same state: equal on every kept unit, and the carried state
    equals the slice of the dense state. Pruned heads / channels get zero gradient in (b) only because the
    soft mask zeroes their outputs (o_proj / fc2 inputs); kept units see the same gradients in both."""
    # float64: Adam divides by sqrt(v), so an element whose gradient nearly cancels turns float32 rounding
    # (pruned vs dense matmuls sum in other orders) into update differences of 1e-4 relative.
    model, batch = prepared(family).double(), as_double(make_batch(family))
    kw = dict(lr=1e-2, weight_decay=0.1, amsgrad=amsgrad)
    opt = torch.optim.AdamW(model.parameters(), **kw)
    train_steps(model, opt, batch, 3)
    mask = mask_of(model)
    dense = copy.deepcopy(model)
    dense_opt = torch.optim.AdamW(dense.parameters(), **kw)
    dense_opt.load_state_dict(opt.state_dict())
    slices = ParameterSlices.record(dense, mask)
    assert slices.kept, "the mask prunes something"

    eb.prune_with_optimizer(model, mask, opt)
    dense_params = dict(dense.named_parameters())
    for name, p in model.named_parameters():   # the carried state is the slice of the dense state
        for key, value in opt.state[p].items():
            old = dense_opt.state[dense_params[name]][key]
            expected = old if old.dim() == 0 else slices.slice_tensor(name, old)
            assert torch.equal(value, expected), (name, key)

    next_batch = as_double(make_batch(family, seed=5))
    train_steps(model, opt, next_batch, 1)
    with eb.soft_masked(dense, mask):
        train_steps(dense, dense_opt, next_batch, 1)
    for name, p in model.named_parameters():
        d = dense_params[name]
        assert float(opt.state[p]["step"]) == float(dense_opt.state[d]["step"]) == 4.0
        # float64; 1e-10 absolute against steps of about lr = 1e-3: the pruned and the soft-masked dense model sum
        # in different orders (and the order depends on torch's thread count), e.g. 1.3e-11 on GPT-2's c_attn bias
        torch.testing.assert_close(p.detach(), slices.slice_tensor(name, d.detach()), rtol=1e-9, atol=1e-10,
                                   msg=lambda m: f"{name}: {m}")
        for key in ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ()):
            torch.testing.assert_close(opt.state[p][key], slices.slice_tensor(name, dense_opt.state[d][key]),
                                       rtol=1e-9, atol=1e-13, msg=lambda m: f"{name} {key}: {m}")


def test_fresh_state_would_differ():
    """The comparison above can fail: with fresh state, the pruned model's next step differs from the dense one."""
    model, batch = prepared("vit"), make_batch("vit")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    train_steps(model, opt, batch, 3)
    mask = mask_of(model)
    dense = copy.deepcopy(model)
    dense_opt = torch.optim.AdamW(dense.parameters(), lr=1e-2)
    dense_opt.load_state_dict(opt.state_dict())
    slices = ParameterSlices.record(dense, mask)
    eb.prune_model(model, mask)
    fresh = torch.optim.AdamW(model.parameters(), lr=1e-2)
    train_steps(model, fresh, batch, 1)
    with eb.soft_masked(dense, mask):
        train_steps(dense, dense_opt, batch, 1)
    name = next(iter(slices.kept))
    assert not torch.allclose(dict(model.named_parameters())[name],
                              slices.slice_tensor(name, dict(dense.named_parameters())[name]), atol=1e-6)


def test_sgd_momentum_and_parameters_outside_the_model():
    """Any parameter-shaped state is sliced (SGD's momentum); a parameter the optimizer holds that is not the
    model's stays in its group with its state; frozen parameters stay out."""
    model, batch = prepared("bert"), make_batch("bert")
    extra = torch.nn.Parameter(torch.randn(4))
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    opt = torch.optim.SGD([{"params": [p for p in model.parameters() if p.requires_grad]},
                           {"params": [extra], "lr": 0.5}], lr=0.1, momentum=0.9)
    opt.zero_grad()
    (loss_of(model, batch) + extra.sum()).backward()
    opt.step()
    extra_state = opt.state[extra]["momentum_buffer"].clone()
    mask = mask_of(model)
    dense = copy.deepcopy(model)
    dense_opt_state = {n: opt.state[p]["momentum_buffer"].clone() for n, p in model.named_parameters()
                       if p.requires_grad}
    slices = ParameterSlices.record(dense, mask)
    eb.prune_with_optimizer(model, mask, opt)
    assert opt.param_groups[1]["params"] == [extra] and torch.equal(opt.state[extra]["momentum_buffer"], extra_state)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert [id(p) for p in opt.param_groups[0]["params"]] == [id(p) for p in trainable]
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert torch.equal(opt.state[p]["momentum_buffer"], slices.slice_tensor(name, dense_opt_state[name]))
    train_steps(model, opt, batch, 1)   # still trains


def test_accelerated_optimizer_is_rekeyed_inside():
    from accelerate import Accelerator
    from accelerate.optimizer import AcceleratedOptimizer
    from accelerate.state import AcceleratorState
    model, batch = prepared("roberta"), make_batch("roberta")
    try:
        wrapped = Accelerator(cpu=True).prepare_optimizer(torch.optim.AdamW(model.parameters(), lr=1e-3))
        assert isinstance(wrapped, AcceleratedOptimizer)
        train_steps(model, wrapped, batch, 1)
        eb.prune_with_optimizer(model, mask_of(model), wrapped)
        assert_live(wrapped.optimizer, model)
        assert all(float(wrapped.optimizer.state[p]["step"]) == 1.0 for p in model.parameters())
        train_steps(model, wrapped, batch, 1)
        assert all(float(wrapped.optimizer.state[p]["step"]) == 2.0 for p in model.parameters())
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)


def test_bad_input_is_refused_before_anything_changes():
    model = make_model("gpt2")   # unprepared: Conv1D
    opt = torch.optim.AdamW(model.parameters())
    with pytest.raises(InvalidArgumentError, match="prepare_model"):
        eb.prune_with_optimizer(model, eb.draw_mask(eb.prepare_model(copy.deepcopy(model)), 0.5), opt)
    model = prepared("vit")
    with pytest.raises(InvalidArgumentError, match="optimizer"):
        eb.prune_with_optimizer(model, mask_of(model), object())
    other = mask_of(prepared("bert"))
    opt = torch.optim.AdamW(model.parameters())
    params = [id(p) for p in model.parameters()]
    with pytest.raises(MaskMismatchError):
        eb.prune_with_optimizer(model, other, opt)
    assert [id(p) for p in model.parameters()] == params == [id(p) for p in opt.param_groups[0]["params"]]


def test_state_of_another_shape_restarts_with_a_warning():
    model = prepared("vit")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train_steps(model, opt, make_batch("vit"), 1)
    mask = mask_of(model)
    slices = ParameterSlices.record(model, mask)
    name = next(iter(slices.kept))
    params = dict(model.named_parameters())
    opt.state[params[name]]["row_stats"] = torch.ones(3)   # a factored moment
    opt.state[params["classifier.weight"]]["row_stats"] = torch.ones(3)   # on a parameter the prune leaves alone
    with pytest.warns(UserWarning, match="restarts with empty optimizer state"):
        eb.prune_with_optimizer(model, mask, opt)
    params = dict(model.named_parameters())
    assert not opt.state.get(params[name])
    assert torch.equal(opt.state[params["classifier.weight"]]["row_stats"], torch.ones(3))


# --- inside transformers.Trainer (EarlyBirdCallback(action="prune")) --------------------------------------

class StateSpy(T.TrainerCallback):
    """Copies the Trainer's optimizer state (by parameter name) at every step end."""

    def __init__(self, trainer: T.Trainer) -> None:
        self.trainer, self.seen = trainer, {}

    def on_step_end(self, args, state, control, **kwargs) -> None:
        inner = self.trainer.optimizer.optimizer   # accelerate's AcceleratedOptimizer wraps the torch one
        self.seen[state.global_step] = {n: {k: v.clone() for k, v in inner.state[p].items()}
                                        for n, p in self.trainer.model.named_parameters() if p in inner.state}


def test_trainer_prune_carries_the_state(tmp_path):
    """EarlyBirdCallback(action="prune") inside a Trainer: right after the prune every parameter has state,
    each pruned weight's moments are the kept slices of its moments just before (written out from the mask
    here, independent of ebcore.optim_state), and step counts run on through the prune."""
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (96,), generator=g)
    ids = torch.randint(3, 101, (96, 9), generator=g)
    data = DictDataset(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)
    args = T.TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=16, learning_rate=1e-3,
                               max_steps=10, report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True,
                               seed=0, weight_decay=0.01, logging_steps=5)
    trainer = T.Trainer(model=make_model("bert"), args=args, train_dataset=data)
    before, after = StateSpy(trainer), StateSpy(trainer)
    trainer.add_callback(before)                       # runs before the early-bird callback at each step end
    cb = add_early_bird(trainer, ratio=0.5, threshold=1.0, window=2, check_every_steps=2, action="prune")
    trainer.add_callback(after)                        # ... and this one after it
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # tiny model: one thread is fastest on a shared machine
    try:
        trainer.train()
    finally:
        torch.set_num_threads(threads)
    step = cb.pruned_step
    assert step == 4 and trainer.state.global_step == 10
    old, new = before.seen[step], after.seen[step]
    assert set(new) == {n for n, _ in trainer.model.named_parameters()}   # every parameter has state
    layer0, config = cb.mask.layers[0], trainer.model.config
    assert layer0.pruned_heads and layer0.pruned_channels
    rows = torch.tensor(head_channels(layer0.heads, config.hidden_size // config.num_attention_heads))
    channels = torch.tensor(layer0.channels)
    expected = {
        "bert.encoder.layer.0.attention.self.query.weight": lambda t: t[rows],
        "bert.encoder.layer.0.attention.self.value.bias": lambda t: t[rows],
        "bert.encoder.layer.0.attention.output.dense.weight": lambda t: t[:, rows],
        "bert.encoder.layer.0.intermediate.dense.weight": lambda t: t[channels],
        "bert.encoder.layer.0.output.dense.weight": lambda t: t[:, channels],
        "bert.encoder.layer.0.output.dense.bias": lambda t: t,
        "classifier.weight": lambda t: t,
    }
    for name, cut in expected.items():
        assert new[name]["exp_avg"].abs().sum() > 0, name
        assert float(new[name]["step"]) == float(old[name]["step"]) == step, name
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(new[name][key], cut(old[name][key])), (name, key)
    assert all(float(s["step"]) == 10 for s in after.seen[10].values())
