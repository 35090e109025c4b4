"""Shared fixtures: the tiny models of ebcore.tiny (every supported family, odd shapes) with their batches,
and the session's ci pipeline runs (tests/study). Library tests live in tests/lib, the study's in tests/study."""
from __future__ import annotations

import pytest
import torch

from ebcore.tiny import TINY, tiny_batch, tiny_model

FAMILIES = tuple(TINY)   # names of the tiny models (ebcore.tiny), one per supported family (+ GPT-2's LM head)


def make_model(family: str, seed: int = 0) -> torch.nn.Module:
    """The tiny model `family` of ebcore.tiny (seeded init, eval mode)."""
    return tiny_model(family, seed)


def make_batch(family: str, batch: int = 3, seed: int = 1) -> dict:
    """A batch for the tiny model `family` (ebcore.tiny.tiny_batch)."""
    return tiny_batch(family, batch, seed)


def logits(model, batch) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


@pytest.fixture(params=FAMILIES)
def family(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory):
    """One folder per test session for pipeline runs, shared so later tests reuse finished runs."""
    return tmp_path_factory.mktemp("ebcore-runs")


@pytest.fixture(scope="session")
def ci_results(runs_root):
    """Every family's ci pipeline, run once per session (the notebook tests reuse these runs)."""
    from ebcore.study.experiment import ExperimentConfig, run_experiment
    from ebcore.study.families import FAMILIES as PIPELINE_FAMILIES
    return {family: run_experiment(ExperimentConfig(family, profile="ci", runs_dir=str(runs_root / "runs"),
                                                    results_dir=str(runs_root / "results")))
            for family in PIPELINE_FAMILIES}
