"""How each run kind trains (ebcore.study.plans.retrain_plan), from the settings and the ticket alone: no
training. The pipeline test (test_experiment) checks the same plans end to end."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from ebcore.study.config import ExperimentConfig
from ebcore.study.plans import _samples_to_steps, retrain_plan

TRAIN = 100   # samples; the ci profile's batch decides the steps per epoch


def _setup(**overrides):
    s = ExperimentConfig("vit", profile="ci", epochs=10, **overrides).resolve()
    data = SimpleNamespace(train=[0] * TRAIN)
    spe = math.ceil(TRAIN / s.batch_size)
    return s, data, spe


def test_continue_follows_the_dense_schedule_from_the_tickets_step():
    s, data, spe = _setup()
    plan = retrain_plan(s, data, "early_bird", "continue", {"epoch_fraction": 3.0}, None, 1.0)
    assert plan.start == "ticket" and plan.carry_optimizer
    assert plan.schedule_start == 3 * spe and plan.schedule_steps == 10 * spe and plan.first_epoch == 3
    assert plan.max_steps == 7 * spe and plan.epochs == 7
    # a ticket inside an epoch (checks every N steps): the rest of the schedule, to the step
    mid = retrain_plan(s, data, "random", "continue", {"epoch_fraction": 2.5}, None, 1.0)
    assert mid.schedule_start == round(2.5 * spe) and mid.max_steps == 10 * spe - round(2.5 * spe)
    assert mid.epochs == math.ceil(mid.max_steps / spe) and mid.first_epoch == 2
    # a ticket at the very end (or none: the last check) leaves nothing to train
    assert retrain_plan(s, data, "early_bird", "continue", {"epoch_fraction": 10.0}, None, 1.0).epochs == 0


def test_restart_rebuilds_adamw_and_the_warmup_over_the_whole_epochs_left():
    s, data, spe = _setup(continue_schedule="restart")
    plan = retrain_plan(s, data, "early_bird", "continue", {"epoch_fraction": 3.0}, None, 1.0)
    assert (plan.epochs, plan.max_steps, plan.schedule_start, plan.carry_optimizer) == (7, None, 0, False)


def test_controls_with_their_own_start_and_budget():
    s, data, spe = _setup()
    ticket = {"epoch_fraction": 3.0}
    small = retrain_plan(s, data, "small_dense", "scratch", ticket, None, 1.0)
    assert (small.start, small.epochs, small.carry_optimizer) == ("fresh", 10, False)
    conv = retrain_plan(s, data, "converged", "final", ticket, None, 1.0)
    assert (conv.start, conv.epochs) == ("final", 3)          # 30 % of 10 epochs
    # same FLOPs: the EB pipeline's total / dense FLOPs per sample = 650 samples = 6.5 epochs of 100
    same = retrain_plan(s, data, "same_flops", "scratch", ticket, 650.0 * 7, 7.0)
    assert same.start == "init" and same.max_steps == _samples_to_steps(650, TRAIN, s.batch_size)
    assert same.schedule_start == 0 and same.schedule_steps is None and same.epochs == 7
    with pytest.raises(RuntimeError, match="EB pipeline's FLOPs"):
        retrain_plan(s, data, "same_flops", "scratch", ticket, None, 7.0)


@pytest.mark.parametrize("samples, expected", [(0, 0), (100, 4), (150, 6), (250, 10), (112.5, 4), (113, 5)])
def test_samples_to_steps_counts_short_last_batches(samples, expected):
    # 100 samples in batches of 25: 4 steps per epoch
    assert _samples_to_steps(samples, 100, 25) == expected


def test_a_fresh_model_is_random_even_where_the_family_starts_pretrained():
    import torch

    from ebcore.study.families import build_model
    from ebcore.study.runners import fresh_model
    data = SimpleNamespace(num_labels=2, vocab_size=None, pad_token_id=None)
    bert = ExperimentConfig("bert", profile="ci").resolve()
    assert bert.spec.pretrained
    pretrained = build_model(bert.spec, 2, seed=3).state_dict()
    fresh = fresh_model(bert, data, 3).state_dict()
    assert fresh.keys() == pretrained.keys()
    word = "bert.embeddings.word_embeddings.weight"
    assert not torch.equal(fresh[word], pretrained[word])   # not MiniLM's embeddings
    assert torch.equal(fresh[word], fresh_model(bert, data, 3).state_dict()[word])   # seeded
    vit = ExperimentConfig("vit", profile="ci").resolve()
    a, b = fresh_model(vit, data, 3).state_dict(), build_model(vit.spec, 2, seed=3).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)   # a family trained from scratch: its own seeded init
