"""Tests of ebcore.study.train: learning, determinism, schedule, callbacks, checkpoints."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import Dataset
from transformers import ViTConfig, ViTForImageClassification

from ebcore.errors import CheckpointError
from ebcore.study.train import (
    Callback,
    DeviceUnavailableError,
    TrainConfig,
    TrainState,
    build_optimizer,
    evaluate,
    lr_factor,
    pick_device,
    train,
)


class Blobs(Dataset):
    """Linearly separable 1x8x8 'images': the class shifts every pixel's mean by +-0.8."""

    def __init__(self, n: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, 2, (n,), generator=g)
        self.x = torch.randn(n, 1, 8, 8, generator=g) + (self.labels * 2 - 1).view(n, 1, 1, 1) * 0.8

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.x[i], "labels": self.labels[i]}


def make_model(seed: int = 0, intermediate: int = 64, dropout: float = 0.0) -> ViTForImageClassification:
    torch.manual_seed(seed)
    cfg = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=intermediate,
                    image_size=8, patch_size=4, num_channels=1, num_labels=2,
                    hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return ViTForImageClassification(cfg)


def cfg(**kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=32, lr=3e-3, progress=False, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


LOSS_COLUMNS = ["epoch", "train_loss", "val_loss", "val_accuracy", "lr", "step"]


@pytest.fixture(scope="module")
def data() -> tuple[Blobs, Blobs]:
    return Blobs(192, seed=0), Blobs(96, seed=1)


# --------------------------------------------------------------------------- learning


def test_learns_separable_task(data):
    train_data, val_data = data
    result = train(make_model(), train_data, cfg(epochs=5), val_data=val_data)
    h = result.history
    assert list(h.columns) == ["epoch", "train_loss", "val_loss", "val_accuracy", "lr",
                               "epoch_seconds", "cumulative_seconds", "step"]
    assert list(h["epoch"]) == [0, 1, 2, 3, 4]
    assert list(h["step"]) == [6, 12, 18, 24, 30]
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0]
    assert h["val_accuracy"].iloc[-1] > 0.9
    assert (h["cumulative_seconds"].diff().dropna() > 0).all()
    assert not result.stopped_early
    assert result.peak_memory_kind == "cpu_max_rss" and result.peak_memory_bytes > 0
    assert result.total_seconds > 0
    ev = evaluate(result.model, val_data, 64, "cpu")
    assert ev["accuracy"] == pytest.approx(h["val_accuracy"].iloc[-1])
    assert ev["loss"] == pytest.approx(h["val_loss"].iloc[-1])


def test_same_seed_same_history_and_weights(data):
    train_data, val_data = data
    runs = [train(make_model(dropout=0.1), train_data, cfg(), val_data=val_data) for _ in range(2)]
    assert runs[0].history[LOSS_COLUMNS].equals(runs[1].history[LOSS_COLUMNS])
    assert same_weights(runs[0].model, runs[1].model)
    other = train(make_model(dropout=0.1), train_data, cfg(seed=1), val_data=val_data)
    assert not same_weights(runs[0].model, other.model)


# --------------------------------------------------------------------------- optimizer


def test_warmup_cosine_schedule():
    config = cfg(lr=1e-2, warmup_fraction=0.1)
    _, sched = build_optimizer(make_model(), config, total_steps=100)
    lrs = []
    for _ in range(100):
        lrs.append(sched.get_last_lr()[0])
        sched.optimizer.step()
        sched.step()
    assert lrs[0] == pytest.approx(1e-3)              # 1/10 of the peak at step 0
    assert lrs[9] == pytest.approx(1e-2)              # warm-up done
    assert max(lrs) == pytest.approx(1e-2)
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:10]))   # rising
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))    # falling
    assert lrs[-1] < 1e-4 and sched.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(55, 10, 100) == pytest.approx(0.5)        # cosine midpoint
    # A rebuilt optimizer continues at the same schedule position.
    _, later = build_optimizer(make_model(), config, total_steps=100, start_step=37)
    assert later.get_last_lr()[0] == pytest.approx(lrs[37])


def test_no_weight_decay_on_bias_and_layernorm():
    model = make_model()
    opt, _ = build_optimizer(model, cfg(weight_decay=0.05), total_steps=10)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    decay_names = {names[id(p)] for p in decay["params"]}
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    assert decay_names | no_decay_names == set(names.values()) and not decay_names & no_decay_names
    assert all(n.endswith(".bias") or "layernorm" in n.lower() for n in no_decay_names)
    assert not any(n.endswith(".bias") or "layernorm" in n.lower() for n in decay_names)
    assert any("layernorm" in n for n in no_decay_names)
    assert all(p.ndim >= 2 for p in decay["params"])


# --------------------------------------------------------------------------- callbacks


class Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[tuple[str, int, int]] = []
        self.eval_seen: list[dict] = []

    def _log(self, name: str, state: TrainState) -> None:
        self.events.append((name, state.epoch, state.global_step))

    def on_train_start(self, state): self._log("train_start", state)
    def on_step_end(self, state): self._log("step", state)
    def on_check(self, state): self._log("check", state)
    def on_train_end(self, state): self._log("train_end", state)

    def on_epoch_end(self, state):
        self._log("epoch_end", state)
        self.eval_seen.append(dict(state.last_eval))
        assert len(state.history) == state.epoch + 1 and state.history[-1]["epoch"] == state.epoch


def test_callback_order_and_counts(data):
    train_data, val_data = data
    rec = Recorder()
    train(make_model(), train_data, cfg(epochs=3, check_every_steps=5), val_data=val_data, callbacks=[rec])
    names = [e[0] for e in rec.events]
    assert names[0] == "train_start" and names[-1] == "train_end"
    assert names.count("step") == 18 and names.count("epoch_end") == 3
    assert [e[2] for e in rec.events if e[0] == "check"] == [5, 10, 15]
    assert [(e[1], e[2]) for e in rec.events if e[0] == "epoch_end"] == [(0, 6), (1, 12), (2, 18)]
    # on_check right after the matching on_step_end; epoch_end after the epoch's last step.
    for i, (name, _, step) in enumerate(rec.events):
        if name == "check":
            assert rec.events[i - 1] == ("step", rec.events[i][1], step)
        if name == "epoch_end":
            assert rec.events[i - 1][0] == "step" and rec.events[i - 1][2] == step
    # Validation ran before on_epoch_end.
    assert all(set(ev) == {"loss", "accuracy"} for ev in rec.eval_seen)


class StopAt(Callback):
    def __init__(self, epoch: int | None = None, step: int | None = None) -> None:
        self.epoch, self.step = epoch, step

    def on_step_end(self, state):
        if self.step is not None and state.global_step == self.step:
            state.stop_training = True

    def on_epoch_end(self, state):
        if self.epoch is not None and state.epoch == self.epoch:
            state.stop_training = True


def test_stop_training(data):
    train_data, _ = data
    rec = Recorder()
    result = train(make_model(), train_data, cfg(epochs=5), callbacks=[StopAt(epoch=1), rec])
    assert len(result.history) == 2 and result.stopped_early
    assert [e[0] for e in rec.events].count("step") == 12 and rec.events[-1][0] == "train_end"
    assert result.history["val_loss"].isna().all()    # no val_data
    # A stop in the middle of an epoch records the partial epoch.
    result = train(make_model(), train_data, cfg(epochs=5), callbacks=[StopAt(step=10)])
    assert list(result.history["step"]) == [6, 10] and result.stopped_early


# --------------------------------------------------------------------------- checkpoints


class Counter(Callback):
    def __init__(self) -> None:
        self.epochs = 0
        self.steps = 0
        self.trace = torch.zeros(0)

    def on_step_end(self, state):
        self.steps += 1

    def on_epoch_end(self, state):
        self.epochs += 1
        self.trace = torch.cat([self.trace, torch.tensor([state.history[-1]["train_loss"]])])

    def state_dict(self):
        return {"epochs": self.epochs, "steps": self.steps, "trace": self.trace}

    def load_state_dict(self, d):
        self.epochs, self.steps, self.trace = d["epochs"], d["steps"], d["trace"]


def test_interrupted_run_resumes_exactly(data, tmp_path):
    train_data, val_data = data
    config = cfg(epochs=4)
    full_counter = Counter()
    full = train(make_model(dropout=0.1), train_data, config, val_data=val_data,
                 callbacks=[full_counter, StopAt()])

    first = train(make_model(dropout=0.1), train_data, config, val_data=val_data,
                  callbacks=[Counter(), StopAt(epoch=1)], checkpoint_dir=tmp_path)
    assert first.stopped_early and len(first.history) == 2
    assert (tmp_path / "checkpoint.pt").exists()
    assert not list(tmp_path.glob("*.tmp"))

    counter = Counter()
    resumed = train(make_model(seed=123, dropout=0.1), train_data, config, val_data=val_data,
                    callbacks=[counter, StopAt()], checkpoint_dir=tmp_path)
    assert not resumed.stopped_early
    assert resumed.history[LOSS_COLUMNS].equals(full.history[LOSS_COLUMNS])
    assert same_weights(resumed.model, full.model)
    assert (resumed.history["cumulative_seconds"].diff().dropna() > 0).all()
    # Callback state round-tripped through the checkpoint.
    assert counter.epochs == 4 and counter.steps == 24
    assert torch.equal(counter.trace, full_counter.trace)

    # Resuming a finished run trains nothing and returns the same result.
    again = train(make_model(seed=5, dropout=0.1), train_data, config, val_data=val_data,
                  callbacks=[Counter(), StopAt()], checkpoint_dir=tmp_path)
    assert again.history[LOSS_COLUMNS].equals(full.history[LOSS_COLUMNS])
    assert same_weights(again.model, full.model)
    # resume=False starts over.
    fresh = train(make_model(dropout=0.1), train_data, cfg(epochs=1), checkpoint_dir=tmp_path, resume=False)
    assert len(fresh.history) == 1


def test_corrupt_checkpoint_is_reported(data, tmp_path):
    train_data, _ = data
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="delete it") as err:
        train(make_model(), train_data, cfg(epochs=1), checkpoint_dir=tmp_path)
    assert str(path) in str(err.value)


def test_checkpoint_of_other_model_is_rejected(data, tmp_path):
    train_data, _ = data
    train(make_model(), train_data, cfg(epochs=1), checkpoint_dir=tmp_path)
    torch.manual_seed(0)
    other = ViTForImageClassification(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                intermediate_size=64, image_size=8, patch_size=4,
                                                num_channels=1, num_labels=3))
    with pytest.raises(CheckpointError, match="differently-shaped model.*classifier"):
        train(other, train_data, cfg(epochs=2), checkpoint_dir=tmp_path)


# --------------------------------------------------------------------------- config and device


def test_pick_device(monkeypatch):
    assert pick_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device(None) == torch.device("cpu")
    assert pick_device("auto") == torch.device("cpu")
    with pytest.raises(DeviceUnavailableError, match="CUDA is not available"):
        pick_device("cuda")
    with pytest.raises(ValueError, match="device"):
        pick_device("tpu")


@pytest.mark.parametrize("bad", [
    dict(epochs=0), dict(batch_size=0), dict(lr=-1.0), dict(weight_decay=-0.1), dict(warmup_fraction=1.5),
    dict(grad_clip=0.0), dict(seed=-1), dict(eval_batch_size=0), dict(check_every_steps=0),
    dict(num_workers=-1), dict(epochs=2.5), dict(precision="fp8"), dict(precision="fp16", device="cpu"),
])
def test_config_validation(bad):
    kwargs = dict(epochs=1) | bad
    with pytest.raises(ValueError, match=f"Invalid TrainConfig: {next(iter(bad))}"):
        TrainConfig(**kwargs)


# --------------------------------------------------------------------------- mixed precision


def test_bf16_training_on_cpu(data):
    train_data, val_data = data
    model = make_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen_dtypes = set()
    handle = model.vit.layers[0].mlp.fc1.register_forward_hook(
        lambda module, args, out: seen_dtypes.add(out.dtype))
    result = train(model, train_data, cfg(epochs=2, precision="bf16"), val_data=val_data)
    handle.remove()
    h = result.history
    assert seen_dtypes == {torch.bfloat16}  # training and evaluation forwards ran under bf16 autocast
    assert h["train_loss"].map(math.isfinite).all() and h["val_loss"].map(math.isfinite).all()
    after = result.model.state_dict()
    assert all(v.dtype == torch.float32 for v in after.values() if v.is_floating_point())  # fp32 master weights
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0]


def test_bf16_resumes_exactly(data, tmp_path):
    train_data, _ = data
    config = cfg(epochs=3, precision="bf16")
    full = train(make_model(dropout=0.1), train_data, config, callbacks=[StopAt()])
    train(make_model(dropout=0.1), train_data, config, callbacks=[StopAt(epoch=0)], checkpoint_dir=tmp_path)
    resumed = train(make_model(seed=9, dropout=0.1), train_data, config, callbacks=[StopAt()],
                    checkpoint_dir=tmp_path)
    assert resumed.history[LOSS_COLUMNS].equals(full.history[LOSS_COLUMNS])
    assert same_weights(resumed.model, full.model)


def test_fp16_on_cpu_is_refused(data, monkeypatch):
    from ebcore.study.precision import PrecisionError
    train_data, _ = data
    with pytest.raises(ValueError, match="precision='fp16' needs a CUDA device"):
        TrainConfig(epochs=1, precision="fp16", device="cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = TrainConfig(epochs=1, precision="fp16", progress=False)  # device 'auto' -> cpu here
    with pytest.raises(PrecisionError, match="precision='fp16' needs a CUDA device, got device 'cpu'"):
        train(make_model(), train_data, config)
    with pytest.raises(PrecisionError, match="precision must be one of"):
        evaluate(make_model(), train_data, 32, "cpu", precision="half")


def test_grad_scaler_state_is_checkpointed(data, tmp_path, monkeypatch):
    """fp16 with a scaler, run on CPU by lifting the CUDA-only guard: a huge initial scale makes the
    scaler skip steps and shrink its scale, so a resume that forgot the scaler's state would differ."""
    import ebcore.study.precision as precision
    import ebcore.study.train.loop as train_module
    monkeypatch.setattr(precision, "check_precision", lambda p, device=None: p)
    monkeypatch.setattr(train_module, "check_precision", lambda p, device=None: p)
    scalers = []

    def scaler(p, device):
        scalers.append(torch.amp.GradScaler("cpu", init_scale=2.0 ** 40, growth_interval=3))
        return scalers[-1]

    monkeypatch.setattr(train_module, "make_grad_scaler", scaler)
    config = TrainConfig(epochs=3, batch_size=32, lr=3e-3, progress=False, precision="fp16")
    object.__setattr__(config, "device", "cpu")  # the config itself refuses fp16 with device='cpu'
    full = train(make_model(), train_data := data[0], config, callbacks=[StopAt()])
    assert scalers[-1].get_scale() < 2.0 ** 40  # steps were skipped
    train(make_model(), train_data, config, callbacks=[StopAt(epoch=0)], checkpoint_dir=tmp_path)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["grad_scaler"]
    assert saved is not None and saved["scale"] < 2.0 ** 40
    resumed = train(make_model(seed=3), train_data, config, callbacks=[StopAt()], checkpoint_dir=tmp_path)
    assert scalers[-1].get_scale() == scalers[0].get_scale()
    assert resumed.history[LOSS_COLUMNS].equals(full.history[LOSS_COLUMNS])
    assert same_weights(resumed.model, full.model)
