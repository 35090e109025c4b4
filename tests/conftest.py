"""Shared fixtures: the tiny models of ebcore.tiny (every supported family, odd shapes) with their batches,
and the session's ci pipeline runs (tests/study). Library tests live in tests/lib, the study's in tests/study."""
from __future__ import annotations

import inspect
import re

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


# A test that trains a pipeline (the study's experiment, a notebook, the command line's `run`) is slow,
# whether or not its author remembered the marker: `-m "not slow"` must run no pipeline.
_PIPELINE = re.compile(r"\brun_experiment\(|\brun_and_report\(|execute_notebook\(|\bci_results\b|"
                       r"main\(\[\"run\"")


def pytest_collection_modifyitems(config, items):
    for item in items:
        function = getattr(item, "function", None)
        if function is None or item.get_closest_marker("slow"):
            continue
        try:
            source = inspect.getsource(function)
        except (OSError, TypeError):
            continue
        if _PIPELINE.search(source) or "ci_results" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
