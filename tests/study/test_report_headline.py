"""The report's lead (every run at its cost, "no ticket found" first) and its precision note, on constructed
tables (no training)."""
from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from ebcore.study import report


def _result(found: bool, spread: float) -> SimpleNamespace:
    rows = []
    for seed in (0, 1, 2):
        wobble = spread * (seed - 1)
        rows.append(dict(seed=seed, run="dense", kind="dense", mode="dense", ratio=0.0, test_accuracy=0.80,
                         flops_rel_dense=1.0, ticket_found=None))
        for ratio in (0.3, 0.5):
            rows.append(dict(seed=seed, run=f"early-bird continue p={ratio:g}", kind="early_bird", mode="continue",
                             ratio=ratio, test_accuracy=0.80 + wobble, flops_rel_dense=1.0 - ratio / 2,
                             ticket_found=found))
        rows.append(dict(seed=seed, run="oneshot finetune p=0.3", kind="oneshot", mode="finetune", ratio=0.3,
                         test_accuracy=0.75, flops_rel_dense=0.7, ticket_found=None))
    settings = SimpleNamespace(headline_mode="continue", rule="consecutive")
    return SimpleNamespace(table=pd.DataFrame(rows), settings=settings, seeds=(0, 1, 2))


def test_no_ticket_is_said_first_and_every_run_is_listed_by_cost():
    text = report.headline(_result(found=False, spread=0.001))
    assert text.startswith("**No ticket found** at p = 0.3, 0.5 (0 of 3 seeds")
    order = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ") and "run" not in line]
    assert order == ["oneshot finetune p=0.3", "early-bird continue p=0.5", "early-bird continue p=0.3", "dense"]


def test_found_tickets_are_not_called_missing():
    assert "No ticket found" not in report.headline(_result(found=True, spread=0.001))


def test_precision_note_says_when_the_seeds_fall_short():
    tight = report.precision_note(_result(found=True, spread=0.001))
    assert "for 3 of 3" in tight   # EB p=0.3 and p=0.5 − dense, EB p=0.3 − one-shot
    assert "would need" not in tight
    wide = report.precision_note(_result(found=True, spread=0.02))   # half-width about 5 pts with 3 seeds
    assert "would need about" in wide and "for 0 of" in wide
    need = int(wide.split("would need about ")[1].split()[0])
    assert need > 3
