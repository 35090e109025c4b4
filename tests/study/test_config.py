"""Settings are resolved and checked once: every bad value is refused when the config is built (field, value,
valid range), strings are parsed as on the command line, and the resolved record is frozen and complete."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ebcore.study.config import ExperimentConfig, Settings
from ebcore.study.errors import SettingsError, UsageError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("field, value, valid", [
    ("precision", "fp8", "fp32, bf16, fp16"), ("threshold", 7, "[0, 1]"), ("threshold", "abc", "[0, 1]"),
    ("align", -3, ">= 1"), ("epochs", -3, ">= 1"), ("epochs", 2.5, "integer"), ("ratios", "notalist", "ratios in"),
    ("ratios", [0.3, 1.2], "[0, 1)"), ("ratios", [], "non-empty"), ("ratios", [0.3, 0.3], "distinct"),
    ("seeds", [1, 1], "distinct"), ("seeds", -1, ">= 0"), ("seeds", [True], "integers"), ("workers", 0, ">= 1"),
    ("window", 1, ">= 2"), ("lr", 0, "> 0"), ("lr", float("nan"), "> 0"), ("batch_size", True, "integer"),
    ("rule", "best", "consecutive, window"), ("scope", "local", "layerwise"), ("criterion", "grad", "magnitude"),
    ("distance", "cosine", "combined"), ("modes", ["prune"], "scratch"), ("controls", ["magic"], "random"),
    ("device", "tpu", "cuda:N"), ("progress", 3, "true or false"), ("profile", "huge", "ci, cpu"),
    ("check_every_steps", 0, ">= 1"), ("train_size", -5, ">= 1"),
])
def test_every_bad_value_names_field_value_and_range(field, value, valid):
    with pytest.raises(SettingsError) as err:
        ExperimentConfig("vit", **{field: value})
    message = str(err.value)
    assert message.startswith(f"{field} = ") and valid in message and "\n" not in message
    assert isinstance(err.value, UsageError) and isinstance(err.value, ValueError)


def test_unknown_family_and_cross_field_rules():
    with pytest.raises(SettingsError, match="family = 't5'"):
        ExperimentConfig("t5")
    with pytest.raises(SettingsError, match="pretrained"):
        ExperimentConfig("vit", modes=["finetune"])
    with pytest.raises(SettingsError, match=r"not among ratios"):
        ExperimentConfig("vit", ratios=[0.2, 0.4], control_ratios=[0.3])


def test_strings_are_parsed_as_on_the_command_line():
    """papermill's `-p ratios '[0.5]'` (without -y) hands the notebook a string."""
    cfg = ExperimentConfig("vit", ratios="[0.5]", epochs="3", threshold="0.05", seeds="[0, 2]", progress="false",
                           controls="[random]", lr="1e-4")
    assert cfg.ratios == (0.5,) and cfg.epochs == 3 and cfg.threshold == 0.05 and cfg.seeds == (0, 2)
    assert cfg.progress is False and cfg.controls == ("random",) and cfg.lr == 1e-4


def test_any_ratios_work_without_control_ratios():
    """Controls used to default to p = 0.3 while the detectors watched only `ratios`: KeyError after training."""
    s = ExperimentConfig("gpt2", profile="ci", ratios=[0.2, 0.4], criterion="taylor").resolve()
    assert s.control_ratios == (0.2,) and set(s.control_ratios) <= set(s.ratios)
    assert ExperimentConfig("vit", ratios=[0.5, 0.3, 0.1]).resolve().control_ratios == (0.3,)
    assert ExperimentConfig("vit", ratios=[0.6]).resolve().control_ratios == (0.6,)


def test_the_record_is_frozen_complete_and_names_its_folder():
    s = ExperimentConfig("vit", profile="cpu").resolve()
    assert isinstance(s, Settings) and s.canonical and s.results_path().name == "cpu"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.threshold = 0.5   # type: ignore[misc]
    assert s.threshold == 0.1 and s.seeds == (0, 1, 2) and s.epochs == 10 and s.precision == "fp32"
    assert s.criterion == "magnitude" and s.modes == ("continue",) and s.controls == ("random", "converged", "same_flops", "small_dense")
    assert s.continue_schedule == "follow" and s.cost_ratio == 0.5 and s.kind_ratios("same_flops") == (0.5,)
    json.dumps(s.as_record())
    # seeds, workers, device and folders do not change what a run computes: same folder
    same = ExperimentConfig("vit", profile="cpu", seeds=[0], workers=2, device="cpu", progress=False).resolve()
    assert same.results_path().name == "cpu"
    # a result setting does: its own folder, named by a hash of the changes, the same for the same changes
    small = ExperimentConfig("vit", profile="cpu", epochs=2, train_size=256, seeds=[0]).resolve()
    assert small.results_path().name.startswith("cpu+") and dict(small.overrides) == {"epochs": 2, "train_size": 256}
    again = ExperimentConfig("vit", profile="cpu", train_size=256, epochs=2).resolve()
    assert again.results_path() == small.results_path()
    # giving a default value explicitly changes nothing
    assert ExperimentConfig("vit", profile="cpu", epochs=10, threshold=0.1).resolve().canonical


def test_a_bad_value_is_refused_at_once_from_the_command_line(tmp_path):
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "ebcore", "run", "vit", "--set", "epochs=-3",
                          "--set", f"results_dir={tmp_path / 'r'}", "--set", f"runs_dir={tmp_path / 'x'}"],
                         capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    assert out.returncode == 2 and out.stderr.strip() == ("ebcore run: error: epochs = -3 is not valid; expected an "
                                                          "integer >= 1 or None")
    assert not (tmp_path / "r").exists() and not (tmp_path / "x").exists()
    assert seconds < 20, seconds   # measured 0.4 s on a quiet machine; generous for shared ones
