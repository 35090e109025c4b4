"""The study loop's building blocks of "continue means continue": `TrainConfig.max_steps`, `schedule_steps`,
`schedule_start` and `first_epoch`, the dense watcher's optimizer file at a ticket (ebcore.study.carry), and
the proof that a continuation with an empty mask is exactly the dense run."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from transformers import ViTConfig, ViTForImageClassification

import ebcore as eb
from ebcore.errors import CheckpointError
from ebcore.graph import head_channels
from ebcore.optim_state import named_optimizer_state
from ebcore.study import paths
from ebcore.study.carry import load_ticket_optimizer_state, read_ticket_optimizer, save_optimizer_state
from ebcore.study.data import DictDataset
from ebcore.study.dense_watch import DenseRunWatch
from ebcore.study.train import CHECKPOINT_NAME, Callback, TrainConfig, lr_factor, train

SPE = 4   # steps per epoch: 60 samples in batches of 16 (the last one 12)


def vit(seed: int = 0) -> ViTForImageClassification:
    torch.manual_seed(seed)
    return ViTForImageClassification(ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=8,
        patch_size=4, num_channels=1, num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))


def blobs(n: int = 60) -> DictDataset:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (n,), generator=g)
    return DictDataset(pixel_values=torch.randn(n, 1, 8, 8, generator=g) + labels.view(n, 1, 1, 1), labels=labels)


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**(dict(epochs=4, batch_size=16, lr=3e-3, warmup_fraction=0.25, progress=False,
                               device="cpu") | kw))


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class LRs(Callback):
    """The LR each optimizer step used (read before the step: at train start, then after each step), the
    number of steps of the call, and the loop's optimizer."""

    def on_train_start(self, state) -> None:
        self.lrs = [state.optimizer.param_groups[0]["lr"]]
        self.steps = 0
        self.optimizer = state.optimizer

    def on_step_end(self, state) -> None:
        self.lrs.append(state.optimizer.param_groups[0]["lr"])
        self.steps += 1


class SaveAt(Callback):
    """At the end of epoch `epoch`: a copy of the weights and of the optimizer state by name, and (with
    `path`) the optimizer file of ebcore.study.carry, as the watcher writes it."""

    def __init__(self, epoch: int, path=None) -> None:
        self.epoch, self.path = epoch, path

    def on_epoch_end(self, state) -> None:
        if state.epoch == self.epoch:
            self.weights = weights(state.model)
            self.named = {n: {k: v.clone() for k, v in s.items()}
                          for n, s in named_optimizer_state(state.optimizer, state.model).items()}
            if self.path is not None:
                save_optimizer_state(self.path, state.optimizer, state.model, state.global_step,
                                     state.steps_per_epoch)


class StopAfter(Callback):
    """Stops training after epoch `epoch` (None: never), as an interruption would."""

    def __init__(self, epoch: int | None) -> None:
        self.epoch = epoch

    def on_epoch_end(self, state) -> None:
        if state.epoch == self.epoch:
            state.stop_training = True


# --------------------------------------------------------------------------- max_steps and the schedule


def test_max_steps_stops_exactly_and_the_lr_follows_the_longer_schedule():
    lrs = LRs()
    config = cfg(epochs=3, max_steps=7, schedule_steps=20, schedule_start=5)
    result = train(vit(), blobs(), config, callbacks=[lrs])
    assert lrs.steps == 7 and not result.stopped_early
    assert list(result.history["step"]) == [4, 7] and list(result.history["epoch"]) == [0, 1]
    assert result.samples_seen == 60 + 3 * 16                 # a full epoch, then 3 full batches
    warmup = round(0.25 * 20)
    expected = [3e-3 * lr_factor(5 + i, warmup, 20) for i in range(7)]
    assert lrs.lrs[:7] == pytest.approx(expected, rel=1e-12, abs=0)
    assert result.history["lr"].iloc[-1] == pytest.approx(expected[-1], rel=1e-12)
    # without them: a warm-up from the start of this call's own 12 steps
    plain = LRs()
    train(vit(), blobs(), cfg(epochs=3), callbacks=[plain])
    assert plain.lrs[:12] == pytest.approx([3e-3 * lr_factor(i, 3, 12) for i in range(12)], rel=1e-12)
    assert train(vit(), blobs(), cfg(epochs=2)).samples_seen == 120


@pytest.mark.parametrize("bad, field", [
    (dict(max_steps=0), "max_steps"), (dict(schedule_steps=0), "schedule_steps"),
    (dict(schedule_start=-1), "schedule_start"), (dict(first_epoch=-1), "first_epoch"),
    (dict(max_steps=2.5), "max_steps"), (dict(schedule_start=3), "schedule_start=3 needs schedule_steps"),
    (dict(schedule_start=10, schedule_steps=10), r"schedule_start \(10\) must be < schedule_steps"),
    (dict(max_steps=6, schedule_start=5, schedule_steps=10), r"schedule_start \+ max_steps"),
])
def test_config_validation(bad, field):
    with pytest.raises(ValueError, match=f"Invalid TrainConfig: {field}"):
        cfg(**bad)


def test_a_call_past_the_schedule_is_refused():
    with pytest.raises(ValueError, match=r"schedule_start \+ this call's steps \(8 \+ 12.*schedule_steps \(16\)"):
        train(vit(), blobs(), cfg(epochs=3, schedule_start=8, schedule_steps=16))
    assert train(vit(), blobs(), cfg(epochs=3, max_steps=8, schedule_start=8, schedule_steps=16)).history[
        "step"].iloc[-1] == 8


# --------------------------------------------------------------------------- continue = the dense run


def test_continuing_with_an_empty_mask_is_the_dense_run(tmp_path):
    E, k = 4, 2
    state_file = tmp_path / "opt.safetensors"
    snap = SaveAt(k - 1, state_file)
    dense = train(vit(), blobs(), cfg(epochs=E), callbacks=[snap])
    assert read_ticket_optimizer(state_file).global_step == k * SPE

    def continued(**kw) -> dict[str, torch.Tensor]:
        model = vit(seed=7)
        model.load_state_dict(snap.weights)
        carried = load_ticket_optimizer_state(state_file, model, eb.draw_mask(model, 0.0))
        eb.prune_model(model, eb.draw_mask(model, 0.0))   # keeps everything
        args = dict(epochs=E - k, schedule_start=k * SPE, schedule_steps=E * SPE, first_epoch=k) | kw
        optimizer_state = args.pop("optimizer_state", carried)
        return weights(train(model, blobs(), cfg(**args), optimizer_state=optimizer_state).model)

    assert same(continued(), weights(dense.model))
    # each piece matters: the data order, the optimizer state, the schedule
    assert not same(continued(first_epoch=0), weights(dense.model))
    assert not same(continued(optimizer_state=None), weights(dense.model))
    assert not same(continued(schedule_start=0, schedule_steps=None), weights(dense.model))


def test_a_run_cut_by_max_steps_then_continued_is_the_uncut_run():
    E, k = 3, 1
    full = train(vit(), blobs(), cfg(epochs=E))
    grab = LRs()
    first = train(vit(), blobs(), cfg(epochs=E, max_steps=k * SPE, schedule_steps=E * SPE), callbacks=[grab])
    state = named_optimizer_state(grab.optimizer, first.model)
    rest = train(first.model, blobs(), cfg(epochs=E - k, schedule_start=k * SPE, schedule_steps=E * SPE,
                                           first_epoch=k), optimizer_state=state)
    assert same(weights(rest.model), weights(full.model))


# --------------------------------------------------------------------------- the ticket's optimizer file


def test_ticket_files_hold_the_optimizer_state_sliced_for_the_pruned_model(tmp_path):
    ratio = 0.5
    detectors = {"consecutive": eb.EarlyBirdDetector(ratios=(ratio,), threshold=1.0, window=2)}
    watch, snap = DenseRunWatch(detectors, "consecutive", tmp_path, train_size=60, batch_size=16), SaveAt(1)
    train(vit(), blobs(), cfg(epochs=3), callbacks=[watch, snap])
    ticket = detectors["consecutive"].tickets[ratio]
    assert ticket.check_index == 1                                # the ticket appeared at the 2nd check
    weights_file, opt_file = paths.ticket_weights(tmp_path, ratio), paths.ticket_optimizer(tmp_path, ratio)
    assert weights_file.is_file() and opt_file.is_file()
    saved = read_ticket_optimizer(opt_file)
    assert saved.global_step == 2 * SPE and saved.steps_per_epoch == SPE
    assert saved.named.keys() == snap.named.keys()
    for name, state in snap.named.items():
        assert saved.named[name].keys() == {"exp_avg", "exp_avg_sq", "step"}
        assert all(torch.equal(saved.named[name][k], state[k]) for k in state), name

    model = vit(seed=3)
    model.load_state_dict(load_file(str(weights_file)))
    assert same(weights(model), snap.weights)
    mask = eb.draw_mask(model, ratio)
    carried = load_ticket_optimizer_state(opt_file, model, mask)
    eb.prune_model(model, mask)
    params = dict(model.named_parameters())
    assert carried.keys() == params.keys()
    for name, state in carried.items():
        assert state["exp_avg"].shape == params[name].shape and state["exp_avg_sq"].shape == params[name].shape
        assert float(state["step"]) == 2 * SPE
    # the kept slices, taken by hand: heads -> q rows and o_proj columns, channels -> fc1 rows, fc2 columns
    layer = "vit.layers.0"
    heads, channels = list(mask.layers[0].heads), list(mask.layers[0].channels)
    assert len(heads) < 4 and len(channels) < 64
    rows = torch.tensor(head_channels(heads, 8))
    moment = {name: state["exp_avg"] for name, state in saved.named.items()}
    pairs = {f"{layer}.attention.q_proj.weight": moment[f"{layer}.attention.q_proj.weight"][rows],
             f"{layer}.attention.v_proj.bias": moment[f"{layer}.attention.v_proj.bias"][rows],
             f"{layer}.attention.o_proj.weight": moment[f"{layer}.attention.o_proj.weight"][:, rows],
             f"{layer}.mlp.fc1.weight": moment[f"{layer}.mlp.fc1.weight"][channels],
             f"{layer}.mlp.fc1.bias": moment[f"{layer}.mlp.fc1.bias"][channels],
             f"{layer}.mlp.fc2.weight": moment[f"{layer}.mlp.fc2.weight"][:, channels],
             "classifier.weight": moment["classifier.weight"]}
    for name, expected in pairs.items():
        assert torch.equal(carried[name]["exp_avg"], expected), name
    train(model, blobs(), cfg(epochs=1), optimizer_state=carried)   # what the pruned run does with it


def test_a_missing_or_damaged_optimizer_file_says_what_to_do(tmp_path):
    model, mask = vit(), eb.draw_mask(vit(), 0.5)
    missing = tmp_path / "ticket-0.5-optimizer.safetensors"
    with pytest.raises(CheckpointError, match="is missing.*delete the dense run's folder") as err:
        load_ticket_optimizer_state(missing, model, mask)
    assert str(missing) in str(err.value)
    missing.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="damaged.*delete the dense run's folder"):
        load_ticket_optimizer_state(missing, model, mask)
    other = vit()
    train(other, blobs(), cfg(epochs=1), callbacks=[grab := LRs()])
    save_optimizer_state(missing, grab.optimizer, other, 4, SPE)
    eb.prune_model(other, mask)
    with pytest.raises(CheckpointError, match="already pruned"):
        load_ticket_optimizer_state(missing, other, mask)


# --------------------------------------------------------------------------- resume of a partial run


def test_a_resumed_partial_run_ends_at_the_same_step(tmp_path):
    config = cfg(epochs=3, max_steps=10)
    full = train(vit(), blobs(), config)

    cut = train(vit(), blobs(), config, callbacks=[LRs(), StopAfter(1)], checkpoint_dir=tmp_path)
    assert cut.stopped_early and list(cut.history["step"]) == [4, 8]
    counter = LRs()
    resumed = train(vit(seed=5), blobs(), config, callbacks=[counter, StopAfter(None)], checkpoint_dir=tmp_path)
    assert counter.steps == 2 and not resumed.stopped_early
    assert list(resumed.history["step"]) == [4, 8, 10] == list(full.history["step"])
    assert resumed.samples_seen == full.samples_seen == 120 + 2 * 16
    assert same(weights(resumed.model), weights(full.model))
    assert torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)["global_step"] == 10
    again_counter = LRs()   # the finished run: its checkpoint is at step 10, nothing is trained again
    again = train(vit(seed=6), blobs(), config, callbacks=[again_counter, StopAfter(None)], checkpoint_dir=tmp_path)
    assert again_counter.steps == 0 and not again.stopped_early and again.samples_seen == full.samples_seen
    assert same(weights(again.model), weights(full.model))
