"""Progress output of the study (ebcore.study.progress): bars named after their run, whole lines in logs
(the per-epoch bar moves there too), and the announcements of reused runs and tickets."""
from __future__ import annotations

import io
import time

import torch

from ebcore.study import progress
from ebcore.study.data import DictDataset
from ebcore.study.train import TrainConfig, train
from ebcore.study.dense_watch import ticket_summary
from ebcore.detector import EarlyBirdDetector
from ebcore.tiny import tiny_model


def test_line_bar_in_a_log_writes_lines_that_move(monkeypatch):
    monkeypatch.delenv("EBCORE_PROGRESS", raising=False)
    log = io.StringIO()                      # not a terminal, not a kernel: a log file
    assert progress.use_lines(log)
    bar = progress.tqdm(range(10), desc="vit dense seed 0, epoch 1/3", leave=False, file=log, mininterval=0)
    assert isinstance(bar, progress.LineBar)
    for _ in bar:
        time.sleep(0.001)
    text = log.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and len(lines) >= 5
    assert all(line.startswith("vit dense seed 0, epoch 1/3:") for line in lines)
    assert " 0%" not in text and "10/10" in lines[-1]     # no line before the first step; it reached the end
    monkeypatch.setenv("EBCORE_PROGRESS", "text")
    assert not progress.use_lines(log) and type(progress.tqdm(range(1), file=log)) is not progress.LineBar


def test_leaving_bar_shows_its_end_once(monkeypatch):
    monkeypatch.setenv("EBCORE_PROGRESS", "lines")
    log = io.StringIO()
    for _ in progress.tqdm(range(3), desc="epochs", file=log):   # mininterval 5 s: only the final line
        pass
    assert log.getvalue().splitlines() == [line for line in log.getvalue().splitlines() if line]
    assert len(log.getvalue().splitlines()) == 1 and "3/3" in log.getvalue()


def test_training_bars_name_the_run(monkeypatch, capsys):
    monkeypatch.setenv("EBCORE_PROGRESS", "lines")
    g = torch.Generator().manual_seed(0)
    data = DictDataset(pixel_values=torch.randn(32, 1, 16, 16, generator=g),   # (32, 1, 16, 16)
                       labels=torch.randint(0, 10, (32,), generator=g))
    label = progress.run_label("vit", "early_bird continue", 1, 0.3)
    assert label == "vit early_bird continue p=0.3 seed 1"
    train(tiny_model("vit"), data, TrainConfig(epochs=2, batch_size=8, device="cpu", description=label))
    err = capsys.readouterr().err
    assert f"{label}: epochs" in err and "2/2" in err


def test_ticket_lines_and_announce(capsys):
    det = EarlyBirdDetector(ratios=(0.3, 0.5), threshold=0.2, window=2)
    model = tiny_model("vit")
    for at in (1, 2, 3):
        det.check(model, at=at)   # the same weights: distance 0, a ticket at the second check
    state = {"detectors": {"consecutive": det.state_dict()}, "check_epochs": [1.0, 2.0, 3.0]}
    text = ticket_summary(state, "consecutive")
    assert text == ("ticket at p=0.3 (consecutive rule), epoch 2, distance 0; "
                    "ticket at p=0.5 (consecutive rule), epoch 2, distance 0")
    one = EarlyBirdDetector(ratios=(0.3,), threshold=0.2, window=2)
    one.check(model, at=1)
    assert ticket_summary({"detectors": {"window": one.state_dict()}, "check_epochs": [1.0]}, "window") == \
        "no ticket at p=0.3 (window rule) in 1 checks"
    progress.announce("vit dense seed 1: " + text.split("; ")[0])
    assert capsys.readouterr().out == "vit dense seed 1: ticket at p=0.3 (consecutive rule), epoch 2, distance 0\n"


def test_pipeline_announces_tickets_and_reused_runs(tmp_path, capsys):
    from ebcore.study.experiment import ExperimentConfig, run_experiment
    cfg = ExperimentConfig("vit", profile="ci", epochs=3, ratios=(0.3,), controls=(), modes=("continue",),
                           threshold=1.0, runs_dir=str(tmp_path / "runs"), results_dir=str(tmp_path / "r"),
                           progress=False)
    run_experiment(cfg)
    first = capsys.readouterr().out
    assert "vit dense seed 0: ticket at p=0.3 (consecutive rule), epoch 2, distance" in first
    assert "reusing" not in first
    run_experiment(cfg)
    second = capsys.readouterr().out
    assert "vit dense seed 0: reusing the finished run dense-" in second and "ticket at p=0.3" in second
    assert "vit early_bird continue p=0.3 seed 0: reusing the finished run" in second
