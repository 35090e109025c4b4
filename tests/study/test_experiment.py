"""The early-bird pipeline in the `ci` profile: every family end to end, reuse, resume, clear errors."""
from __future__ import annotations


import pandas as pd

from ebcore.study.kinds import RUN_KINDS
import pytest

import ebcore.study.runners as R
from ebcore.study.train import Callback
from ebcore.study.errors import DataNotFoundError
from ebcore.study.experiment import TABLE_COLUMNS, ExperimentConfig, run_experiment
from ebcore.study.families import FAMILIES, build_model, get_spec


@pytest.mark.parametrize("study_family", FAMILIES)
def test_ci_pipeline_table_is_sane(ci_results, study_family):
    res = ci_results[study_family]
    t = res.table
    assert list(t.columns) == TABLE_COLUMNS
    modes, controls = res.settings.modes, res.settings.controls
    s = res.settings
    expected = 1 + len(modes) * 3 + sum(len(RUN_KINDS[c].modes(modes, s.spec.pretrained)) * len(s.kind_ratios(c))
                                        for c in controls)   # dense, tickets at 3 ratios, each control at its ratios
    assert len(t) == expected
    dense = t[t.kind == "dense"].iloc[0]
    pruned = t[t.kind.map(lambda k: RUN_KINDS[k].mask is not None)]
    at_dense_widths = t[(t.kind != "dense") & ~t.index.isin(pruned.index)]
    assert (at_dense_widths.params == dense.params).all() and (at_dense_widths.flops_rel_dense < 1.2).all()
    assert (pruned.params < dense.params).all() and (pruned.param_ratio < 1).all()
    assert (pruned.flops_ratio < 1).all() and (pruned.memory_ratio < 1).all()
    assert t.test_accuracy.between(0, 1).all() and t.best_val_accuracy.between(0, 1).all()
    eb = t[t.kind == "early_bird"]
    budget = res.settings.epochs
    assert eb.ticket_epoch.between(0, budget).all(), "the ticket lies within the training budget"
    assert (eb.time_rel_dense > 0).all() and dense.time_rel_dense == 1.0  # wall time: only its sign is testable
    assert dense.flops_rel_dense == 1.0 and (t.total_flops >= t.train_flops).all()
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
    monkeypatch.setattr(R, "train", boom)
    again = run_experiment(ExperimentConfig("vit", profile="ci", runs_dir=str(runs_root / "runs"),
                                            results_dir=str(runs_root / "results")))
    pd.testing.assert_frame_equal(again.table, ci_results["vit"].table)


def test_interrupted_dense_run_resumes_to_the_same_ticket(tmp_path, monkeypatch):
    cfg = dict(family="vit", profile="ci", epochs=3, ratios=(0.3,), controls=(), results_dir=str(tmp_path / "r"))
    whole = run_experiment(ExperimentConfig(**cfg, runs_dir=str(tmp_path / "a")))

    real_train = R.train

    class Crash(Callback):
        def on_epoch_end(self, state):
            if state.epoch == 2:
                raise KeyboardInterrupt  # after the epoch-1 checkpoint, before epoch 2's

    def crashing(model, data, config, val, callbacks=(), **kw):
        return real_train(model, data, config, val, list(callbacks) + [Crash()], **kw)

    monkeypatch.setattr(R, "train", crashing)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(ExperimentConfig(**cfg, runs_dir=str(tmp_path / "b")))
    monkeypatch.setattr(R, "train", real_train)
    resumed = run_experiment(ExperimentConfig(**cfg, runs_dir=str(tmp_path / "b")))
    cols = ["run", "ticket_epoch", "test_accuracy", "test_loss", "params"]
    pd.testing.assert_frame_equal(resumed.table[cols], whole.table[cols])
    assert resumed.detectors[0]["consecutive"].state_dict() == whole.detectors[0]["consecutive"].state_dict()


def test_missing_data_set_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("EBCORE_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    import ebcore.study.data as D
    D._fashion_mnist_raw.cache_clear()
    with pytest.raises(DataNotFoundError, match="dataset-fashion-mnist"):
        run_experiment(ExperimentConfig("swin", profile="ci", runs_dir=str(tmp_path), results_dir=str(tmp_path)))
    D._fashion_mnist_raw.cache_clear()


@pytest.mark.parametrize("study_family, offline_default", [("vit", "Fashion-MNIST"), ("roberta", "Rotten Tomatoes")])
def test_paper_profile_offline_is_a_clear_error(tmp_path, monkeypatch, study_family, offline_default):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataNotFoundError, match=offline_default):
        run_experiment(ExperimentConfig(study_family, profile="paper", runs_dir=str(tmp_path), results_dir=str(tmp_path)))


@pytest.mark.parametrize("kwargs, match", [
    ({"family": "t5"}, "family = 't5'"), ({"family": "vit", "profile": "huge"}, "profile = 'huge'"),
    ({"family": "vit", "ratios": (0.3, 1.2)}, r"\[0, 1\)"), ({"family": "vit", "modes": ("prune",)}, "modes = "),
    ({"family": "vit", "rule": "best"}, "rule"), ({"family": "vit", "controls": ("magic",)}, "control"),
    ({"family": "vit", "seeds": (0, 0)}, "seeds"), ({"family": "vit", "seeds": ("a",)}, "seeds"),
    ({"family": "vit", "modes": ("finetune",)}, "pretrained"), ({"family": "vit", "workers": 0}, "workers"),
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
    assert eb.flops_rel_dense < 1, "continuing from the ticket costs less than the dense run (FLOPs, not noisy time)"
    dense_dir = next((tmp_path / "runs" / "vit" / "ci" / "seed0").glob("dense-*"))
    assert (dense_dir / "tickets" / "ticket-0.3.safetensors").is_file()
    # Exact FLOPs: the ticket pays 2 epochs of dense training plus 2 scoring passes, then 2 pruned epochs;
    # the random control starts from the same weights, so it pays the same search.
    dense = res.table[res.table.kind == "dense"].iloc[0]
    n = dense.samples_seen // 4
    assert dense.train_flops == 4 * n * dense.train_flops_per_sample
    scoring = (dense.total_flops - dense.train_flops) / 4  # 4 checks (one per epoch)
    assert eb.search_flops == 2 * n * dense.train_flops_per_sample + 2 * scoring
    assert eb.train_flops == 2 * n * eb.train_flops_per_sample
    assert eb.total_flops == eb.search_flops + eb.train_flops
    assert eb.flops_rel_dense == pytest.approx(eb.total_flops / dense.total_flops)
    rnd = res.table[res.table.kind == "random"].iloc[0]
    assert rnd.search_flops == eb.search_flops and rnd.flops_rel_dense == pytest.approx(eb.flops_rel_dense)
    assert eb.train_flops_per_sample < dense.train_flops_per_sample


def test_seeds_never_share_run_folders_or_result_files(tmp_path):
    cfg = dict(family="vit", profile="ci", epochs=2, ratios=(0.3,), controls=("converged",), modes=("scratch",),
               runs_dir=str(tmp_path / "runs"), results_dir=str(tmp_path / "r"))
    both = run_experiment(ExperimentConfig(**cfg, seeds=(0, 1)))
    assert sorted(p.name for p in (tmp_path / "runs" / "vit" / "ci").iterdir()) == ["seed0", "seed1"]
    assert set(both.table.seed) == {0, 1} and len(both.table) == 2 * 3
    seed1 = pd.read_csv(both.out_dir / "table-seed1.csv")
    # A later call for seed 0 alone reuses its runs and leaves seed 1's result file as it was.
    alone = run_experiment(ExperimentConfig(**cfg, seeds=(0,)))
    pd.testing.assert_frame_equal(pd.read_csv(alone.out_dir / "table-seed1.csv"), seed1)
    pd.testing.assert_frame_equal(alone.table, both.table[both.table.seed == 0].reset_index(drop=True))
    # Scratch mode: prune-at-convergence pays the whole dense run, then its fine-tuning (30 % of 2 epochs: 1);
    # nothing else pays for a search.
    t = both.table
    conv, dense = t[(t.kind == "converged") & (t.seed == 0)].iloc[0], t[(t.kind == "dense") & (t.seed == 0)].iloc[0]
    assert conv.search_flops == dense.total_flops and conv.flops_rel_dense > 1
    assert conv["mode"] == "final" and conv.epochs_trained == 1 and conv.start == "final"
    eb = t[(t.kind == "early_bird") & (t.seed == 0)].iloc[0]
    assert eb.search_flops > 0  # the ticket was found by watching the dense run


def test_one_shot_control_and_taylor_criterion(tmp_path):
    cfg = ExperimentConfig("bert", profile="ci", ratios=(0.3,), seeds=(0,), runs_dir=str(tmp_path / "runs"),
                           results_dir=str(tmp_path / "r"))
    settings = cfg.resolve()
    assert settings.criterion == "taylor" and "oneshot" in settings.controls
    res = run_experiment(settings)
    one = res.table[res.table.kind == "oneshot"].iloc[0]
    assert one["mode"] == "finetune" and one.epochs_trained == settings.epochs
    assert 0 < one.search_flops < 1e9  # one scoring pass, no training
    det = res.detectors[0]["consecutive"]
    assert det.criterion == "taylor" and len(det.history) >= 2


def test_gpu_profile_code_paths_at_ci_size(tmp_path):
    """What the gpu profile adds (bf16 autocast, aligned masks, seeds as parallel processes, a 3-stage
    Swin), exercised on CPU at ci size."""
    gpu = get_spec("swin", "gpu")
    assert gpu.precision == "bf16" and gpu.align == 8 and gpu.workers == 3 and len(gpu.model["depths"]) == 3
    assert get_spec("vit", "gpu").data.train == 54000 and get_spec("vit", "gpu").data.test == 10000
    assert get_spec("vit", "gpu").train.epochs >= 20 and get_spec("vit", "gpu").seeds == (0, 1, 2)
    cfg = ExperimentConfig("vit", profile="ci", seeds=(0, 1), workers=2, precision=gpu.precision, align=gpu.align,
                           ratios=(0.3,), controls=("random",), epochs=2, runs_dir=str(tmp_path / "runs"),
                           results_dir=str(tmp_path / "r"))
    res = run_experiment(cfg)
    assert set(res.table.seed) == {0, 1} and res.table.test_accuracy.between(0, 1).all()
    det = res.detectors[0]["consecutive"]
    assert det.align == 8
    for rec in det.history:
        for lm in rec.masks[0.3].layers:
            assert len(lm.channels) % 8 == 0 and (len(lm.heads) * lm.head_dim) % 8 == 0
    # The same seed run alone, in this process, gives the same ticket and mask (determinism across workers).
    alone = run_experiment(ExperimentConfig("vit", profile="ci", seeds=(1,), precision="bf16", align=8,
                                            ratios=(0.3,), controls=("random",), epochs=2,
                                            runs_dir=str(tmp_path / "runs2"), results_dir=str(tmp_path / "r2")))
    a, b = alone.detectors[1]["consecutive"], res.detectors[1]["consecutive"]
    assert [r.masks[0.3].hash() for r in a.history] == [r.masks[0.3].hash() for r in b.history]


def test_no_ticket_leaves_no_budget_to_retrain(tmp_path):
    """Threshold 0: no ticket ever; the fallback is the last check, so `continue` has nothing left to train:
    the pruned final model is evaluated as it is and costs exactly the dense run."""
    cfg = ExperimentConfig("vit", profile="ci", epochs=2, ratios=(0.3,), controls=("random",), modes=("continue",),
                           threshold=0.0, runs_dir=str(tmp_path / "runs"), results_dir=str(tmp_path / "r"))
    t = run_experiment(cfg).table
    eb, dense = t[t.kind == "early_bird"].iloc[0], t[t.kind == "dense"].iloc[0]
    assert not eb.ticket_found and eb.ticket_epoch == 2
    assert eb.epochs_trained == 0 and eb.train_flops == 0 and eb.samples_seen == 0
    assert eb.total_flops == dense.total_flops and eb.flops_rel_dense == 1.0
    assert 0 <= eb.test_accuracy <= 1 and eb.params < dense.params


def test_practitioner_baselines_and_continue_following_the_dense_schedule(tmp_path):
    """The three baselines of every family's table: dense for the EB pipeline's FLOPs (its own schedule), a small
    dense model at the ticket's widths from a fresh initialization, prune at convergence + fine-tune; and the
    `continue` run following the dense schedule from the ticket's step."""
    cfg = ExperimentConfig("vit", profile="ci", epochs=4, ratios=(0.3, 0.5), seeds=(0,), threshold=1.0,
                           runs_dir=str(tmp_path / "runs"), results_dir=str(tmp_path / "r"))
    s = cfg.resolve()
    assert s.controls == ("random", "converged", "same_flops", "small_dense") and s.cost_ratio == 0.5
    res = run_experiment(s)
    t = res.table.set_index("kind")
    dense, eb = t.loc["dense"], res.table[(res.table.kind == "early_bird") & (res.table.ratio == 0.5)].iloc[0]
    # dense for the same FLOPs: within one batch of the EB pipeline's total, on dense widths, from step 0
    same = t.loc["same_flops"]
    assert same.ratio == 0.5 and same.param_ratio == 1.0 and same.search_flops == 0
    batch_flops = s.batch_size * dense.train_flops_per_sample
    assert abs(same.total_flops - eb.total_flops) <= batch_flops
    assert same.samples_seen < dense.samples_seen
    # small dense: the ticket's widths (same parameter count as the EB run at 0.3), a fresh init, full budget
    small, eb3 = t.loc["small_dense"], res.table[(res.table.kind == "early_bird") & (res.table.ratio == 0.3)].iloc[0]
    assert small.params == eb3.params and small.epochs_trained == 4 and small.start == "fresh"
    assert small.samples_seen == dense.samples_seen and small.search_flops == 0
    # prune at convergence: the whole dense run plus round(0.3 * 4) = 1 epoch of fine-tuning
    conv = t.loc["converged"]
    assert conv.search_flops == dense.total_flops and conv.epochs_trained == 1
    # continue follows the dense schedule: the first retrained epoch's lr continues the dense run's curve
    assert eb3.schedule == "follow" and eb3.ticket_found
    curves = res.curves
    dense_lr = curves[curves.run == "dense"].set_index("epoch")["lr"]
    eb_lr = curves[curves.run == "early-bird continue p=0.3"]["lr"].tolist()
    start = int(eb3.ticket_epoch)
    assert eb_lr == pytest.approx(dense_lr.iloc[start:].tolist(), rel=1e-9)
    assert eb3.samples_seen + dense.samples_seen * start / 4 == dense.samples_seen
