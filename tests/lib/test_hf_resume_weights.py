"""Resume through `Trainer` is exact for every tensor: transformers 5 saves ViT and Swin checkpoints under
old key names, which `Trainer`'s own non-strict load skips silently; `prepare_resume` loads them by name
and shape (ebcore.hf.checkpoint_weights). Pruned ViT and Swin (tiny models of ebcore.tiny), a dense ViT,
and the errors when a checkpoint does not fit.
"""
from __future__ import annotations

import logging

import pytest
import torch
import transformers as T

from ebcore.errors import CheckpointError
from ebcore.hf import add_early_bird, prepare_resume
from ebcore.hf.checkpoint_weights import load_checkpoint_weights, read_checkpoint_tensors, verify_checkpoint_weights
from ebcore.measure import count_parameters
from ebcore.study.data import DictDataset
from conftest import make_model
from ebcore.tiny import tiny_model

KW = dict(ratio=0.3, threshold=1.0, window=2, check_every_steps=2, action="prune")  # ticket and prune at step 4


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def image_data(n: int = 96, seed: int = 0) -> DictDataset:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    x = torch.randn(n, 1, 16, 16, generator=g) + labels.float()[:, None, None, None] / 5   # (n, 1, 16, 16)
    return DictDataset(pixel_values=x, labels=labels)


def make_args(out, restore: bool = False) -> T.TrainingArguments:
    return T.TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=16, learning_rate=1e-3, report_to=[], logging_steps=1,
        max_steps=8, save_strategy="steps", save_steps=2, use_cpu=True, disable_tqdm=True, seed=0, data_seed=0,
        dataloader_num_workers=0, restore_callback_states_from_checkpoint=restore)


class Snapshot(T.TrainerCallback):
    """Copies of every model tensor at each save (by step) and at train begin."""

    def __init__(self) -> None:
        self.saved: dict[int, dict[str, torch.Tensor]] = {}
        self.begin: dict[str, torch.Tensor] | None = None

    @staticmethod
    def copy(model) -> dict[str, torch.Tensor]:
        return {n: t.detach().clone() for n, t in model.state_dict().items()}

    def on_save(self, args, state, control, model=None, **kwargs):
        self.saved[state.global_step] = self.copy(model)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.begin = self.copy(model)


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert list(a) == list(b)
    differ = [n for n in a if a[n].shape != b[n].shape or not torch.equal(a[n], b[n])]
    assert not differ, f"{len(differ)} of {len(a)} tensors differ: {differ[:5]}"


def first_run(family: str, out) -> tuple[T.Trainer, Snapshot]:
    snap = Snapshot()
    trainer = T.Trainer(model=make_model(family), args=make_args(out), train_dataset=image_data(), callbacks=[snap])
    cb = add_early_bird(trainer, **KW)
    trainer.train()
    assert cb.pruned_step == 4
    return trainer, snap


@pytest.mark.parametrize("family,step,restore", [("vit", 6, False), ("vit", 6, True), ("swin", 6, False),
                                                  ("vit", 2, False)])
def test_resume_restores_every_tensor(tmp_path, family, step, restore):
    """Step 6: after the prune at step 4 (pruned checkpoint); step 2: before the ticket (dense checkpoint)."""
    first, snap1 = first_run(family, tmp_path)
    ckpt = tmp_path / f"checkpoint-{step}"
    saved_keys = set(read_checkpoint_tensors(ckpt))
    own_keys = set(snap1.saved[step])
    assert saved_keys != own_keys  # transformers wrote (some) old key names: the case this guards
    snap2 = Snapshot()
    second = T.Trainer(model=make_model(family, seed=7), args=make_args(tmp_path, restore), train_dataset=image_data(),
                       callbacks=[snap2])
    add_early_bird(second, **KW)
    prepare_resume(second, ckpt)
    second.train(resume_from_checkpoint=str(ckpt))
    assert_same_tensors(snap2.begin, snap1.saved[step])   # every tensor as the first run had it at `step`
    assert count_parameters(second.model) == count_parameters(first.model)
    assert_same_tensors(Snapshot.copy(second.model), Snapshot.copy(first.model))   # and training went on exactly


def test_plain_trainer_resume_loses_renamed_vit_weights(tmp_path):
    """What the fix is for: the Trainer's own load leaves ViT's attention and MLP weights as initialised."""
    _, snap1 = first_run("vit", tmp_path)
    ckpt = tmp_path / "checkpoint-2"   # dense
    model = make_model("vit", seed=7)
    T.Trainer(model=model, args=make_args(tmp_path), train_dataset=image_data())._load_from_checkpoint(str(ckpt))
    lost = [n for n, t in model.state_dict().items() if not torch.equal(t, snap1.saved[2][n])]
    assert len(lost) >= 8   # (transformers 5.23: 32 of 40)
    with pytest.raises(CheckpointError, match="differ from the checkpoint"):
        verify_checkpoint_weights(model, ckpt)
    assert load_checkpoint_weights(model, ckpt) == len(snap1.saved[2])
    assert_same_tensors(Snapshot.copy(model), snap1.saved[2])


def test_resume_without_prepare_warns(tmp_path, caplog):
    first_run("vit", tmp_path)
    second = T.Trainer(model=make_model("vit", seed=7), args=make_args(tmp_path), train_dataset=image_data())
    add_early_bird(second, **KW)
    with caplog.at_level(logging.WARNING, logger="ebcore.hf"):
        second.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))
    assert any("without prepare_resume" in r.getMessage() for r in caplog.records)


def test_checkpoint_that_does_not_fit_raises(tmp_path):
    first_run("vit", tmp_path)
    wider = tiny_model("vit", intermediate_size=200)
    with pytest.raises(CheckpointError, match="shapes differ"):
        load_checkpoint_weights(wider, tmp_path / "checkpoint-2")
    with pytest.raises(CheckpointError, match="not in the checkpoint"):
        load_checkpoint_weights(tiny_model("vit", num_hidden_layers=3), tmp_path / "checkpoint-2")
    with pytest.raises(CheckpointError, match="does not have"):
        load_checkpoint_weights(tiny_model("vit", num_hidden_layers=1), tmp_path / "checkpoint-2")
    with pytest.raises(CheckpointError, match="holds no model weights"):
        load_checkpoint_weights(make_model("vit"), tmp_path)
