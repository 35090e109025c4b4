"""The early-bird pipeline in the `ci` profile: every family end to end, reuse, resume, clear errors."""
from __future__ import annotations


import pandas as pd
import pytest

import ebcore.experiment as X
from ebcore.errors import DataNotFoundError
from ebcore.experiment import TABLE_COLUMNS, ExperimentConfig, run_experiment
from ebcore.models import FAMILIES, build_model, get_spec


@pytest.mark.parametrize("family", FAMILIES)
def test_ci_pipeline_table_is_sane(ci_results, family):
    res = ci_results[family]
    t = res.table
    assert list(t.columns) == TABLE_COLUMNS
    modes = res.config.effective_modes
    assert len(t) == 1 + len(modes) * (3 + 2)  # dense, tickets at 3 ratios, 2 controls at p=0.3
    dense = t[t.kind == "dense"].iloc[0]
    pruned = t[t.kind != "dense"]
    assert (pruned.params < dense.params).all() and (pruned.param_ratio < 1).all()
    assert (pruned.flops_ratio < 1).all() and (pruned.memory_ratio < 1).all()
    assert t.test_accuracy.between(0, 1).all() and t.best_val_accuracy.between(0, 1).all()
    eb = t[t.kind == "early_bird"]
    budget = res.config.spec().train["epochs"]
    assert eb.ticket_epoch.between(0, budget).all(), "the ticket lies within the training budget"
    assert (eb.time_rel_dense > 0).all() and dense.time_rel_dense == 1.0
    assert sorted(eb.ratio) == [0.1, 0.3, 0.5]
    assert (t.disk_bytes > 0).all() and (pruned.disk_bytes < dense.disk_bytes).all()
    # Written next to the notebooks' figures:
    for name in ("table.csv", "table.json", "curves.csv", "distances.csv", "detectors.json.gz"):
        assert (res.out_dir / name).is_file()
    assert pd.read_csv(res.out_dir / "table.csv").shape == t.shape
    curves = res.curves
    assert set(curves.run) == set(t.run)
    assert set(res.distances.rule) == {"consecutive", "window"}


def test_finished_runs_are_reused(ci_results, runs_root, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("a finished run was trained again")
    monkeypatch.setattr(X, "train", boom)
    again = run_experiment(ExperimentConfig("vit", profile="ci", runs_dir=str(runs_root / "runs"),
                                            results_dir=str(runs_root / "results")))
    pd.testing.assert_frame_equal(again.table, ci_results["vit"].table)


def test_interrupted_dense_run_resumes_to_the_same_ticket(tmp_path, monkeypatch):
    cfg = dict(family="vit", profile="ci", epochs=3, ratios=(0.3,), controls=(), results_dir=str(tmp_path / "r"))
    whole = run_experiment(ExperimentConfig(**cfg, runs_dir=str(tmp_path / "a")))

    real_train = X.train

    class Crash(X.Callback):
        def on_epoch_end(self, state):
            if state.epoch == 2:
                raise KeyboardInterrupt  # after the epoch-1 checkpoint, before epoch 2's

    def crashing(model, data, config, val, callbacks=(), **kw):
        return real_train(model, data, config, val, list(callbacks) + [Crash()], **kw)

    monkeypatch.setattr(X, "train", crashing)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(ExperimentConfig(**cfg, runs_dir=str(tmp_path / "b")))
    monkeypatch.setattr(X, "train", real_train)
    resumed = run_experiment(ExperimentConfig(**cfg, runs_dir=str(tmp_path / "b")))
    cols = ["run", "ticket_epoch", "test_accuracy", "test_loss", "params"]
    pd.testing.assert_frame_equal(resumed.table[cols], whole.table[cols])
    assert resumed.detectors["consecutive"].state_dict() == whole.detectors["consecutive"].state_dict()


def test_missing_data_set_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("EBCORE_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    import ebcore.data as D
    D._fashion_mnist_raw.cache_clear()
    with pytest.raises(DataNotFoundError, match="dataset-fashion-mnist"):
        run_experiment(ExperimentConfig("swin", profile="ci", runs_dir=str(tmp_path), results_dir=str(tmp_path)))
    D._fashion_mnist_raw.cache_clear()


@pytest.mark.parametrize("family, offline_default", [("vit", "Fashion-MNIST"), ("roberta", "Rotten Tomatoes")])
def test_paper_profile_offline_is_a_clear_error(tmp_path, monkeypatch, family, offline_default):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataNotFoundError, match=offline_default):
        run_experiment(ExperimentConfig(family, profile="paper", runs_dir=str(tmp_path), results_dir=str(tmp_path)))


@pytest.mark.parametrize("kwargs, match", [
    ({"family": "t5"}, "unknown model family"), ({"family": "vit", "profile": "huge"}, "unknown profile"),
    ({"family": "vit", "ratios": (0.3, 1.2)}, r"\[0, 1\)"), ({"family": "vit", "modes": ("prune",)}, "retrain mode"),
    ({"family": "vit", "rule": "best"}, "rule"), ({"family": "vit", "controls": ("magic",)}, "control"),
])
def test_bad_experiment_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExperimentConfig(**kwargs)


def test_paper_specs_use_the_studys_sizes():
    swin = get_spec("swin", "paper")
    assert swin.model["depths"] == [2, 2, 6, 2] and swin.model["num_heads"] == [3, 6, 12, 24]
    assert swin.model["embed_dim"] == 96
    assert get_spec("gpt2", "paper").model["n_layer"] == 12 and get_spec("roberta", "paper").model["hidden_size"] == 768
    assert get_spec("vit", "cpu").threshold == 0.1 and get_spec("roberta", "cpu").threshold == 0.01


def test_gpt2_is_built_prunable():
    model = build_model(get_spec("gpt2", "ci"), num_labels=2, vocab_size=100, pad_token_id=0)
    from ebcore.detector import EarlyBirdDetector
    EarlyBirdDetector(ratios=(0.3,)).check(model)  # would raise on an unconverted Conv1D model
    assert not any(type(m).__name__ == "Conv1D" for m in model.modules())


def test_continue_mode_trains_the_ticket_weights_for_the_rest_of_the_budget(tmp_path):
    cfg = ExperimentConfig("vit", profile="ci", epochs=4, ratios=(0.3,), controls=("random",), modes=("continue",),
                           threshold=1.0, runs_dir=str(tmp_path / "runs"), results_dir=str(tmp_path / "r"))
    res = run_experiment(cfg)
    eb = res.table[res.table.kind == "early_bird"].iloc[0]
    assert eb.ticket_found and eb.ticket_epoch == 2  # threshold 1.0: the first full window (2 checks)
    assert eb.epochs_trained == 4 - 2
    assert eb.time_rel_dense < 1, "continuing from the ticket costs less than the dense run"
    dense_dir = next((tmp_path / "runs" / "vit" / "ci").glob("dense-*"))
    assert (dense_dir / "tickets" / "ticket-0.3.safetensors").is_file()
