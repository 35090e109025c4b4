"""The early-bird pipeline for one family and profile over several seeds, with honest controls and
exact cost accounting: orchestration only (the pieces live in the modules named below).

    result = run_experiment(ExperimentConfig("vit", profile="cpu", seeds=(0, 1, 2)).resolve())
    result.table          # one row per (seed, run): dense, early-bird tickets, controls

Per seed (`run_seed`):
(a) The dense baseline trains for the full budget while two detectors watch every check (epoch, or
    every N steps): the study's consecutive rule (window 2) and Early-Bird's window rule (window 5),
    for every ratio at once, from one scoring pass per check (ebcore.study.runners.run_dense).
(b) Per ratio and retrain mode (ebcore.study.kinds.MODES: scratch / continue / finetune), the ticket of
    the ruling detector (`rule`) is pruned physically and trained (ebcore.study.runners.run_pruned).
(c) Controls (the control entries of ebcore.study.kinds.RUN_KINDS) at their ratios: a random mask retrained
    like the ticket; prune at convergence + fine-tune; dense trained for the EB pipeline's FLOPs; a small dense
    model at the ticket's widths trained from scratch; the one-shot mask of the untrained (or pretrained) model.
(d) Costs in exact training FLOPs (ebcore.study.costs); wall time as a secondary, noisy column.

Run folders and result files: ebcore.study.paths. Per-run tables: ebcore.study.results. Seeds run in parallel
processes when `workers > 1`.
"""
from __future__ import annotations

import time
import pandas as pd
import torch

from ..detector import EarlyBirdDetector
from .config import ExperimentConfig, Settings
from .kinds import RUN_KINDS, run_label
from .results import TABLE_COLUMNS, ExperimentResult, distances_frame, seed_tables, write_tables
from .runners import run_dense, run_pruned
from .splits import load_data

__all__ = ["TABLE_COLUMNS", "ExperimentConfig", "ExperimentResult", "Settings", "run_experiment", "run_label",
           "run_seed"]


def run_seed(s: Settings, seed: int, redo: bool = False) -> tuple[list[dict], dict]:
    """Every run of one seed: the watched dense run, the tickets and the controls (reused when finished,
    unless `redo`)."""
    before = torch.get_num_threads()
    if s.threads:  # fixed per profile, whether the seeds run side by side or alone: the same numbers either way
        torch.set_num_threads(s.threads)
    try:
        return _run_seed(s, seed, redo)
    finally:
        torch.set_num_threads(before)   # a notebook kernel (or a test session) keeps its own thread count


def _run_seed(s: Settings, seed: int, redo: bool) -> tuple[list[dict], dict]:
    torch.manual_seed(seed)
    data = load_data(s.spec, seed)
    dense = run_dense(s, data, seed, redo=redo)
    records = [dense]
    for name, kind in RUN_KINDS.items():
        if kind.role == "ticket":
            for mode in s.modes:
                for ratio in s.ratios:
                    records.append(run_pruned(s, data, dense, name, mode, ratio, redo=redo))
    for control in s.controls:  # after the tickets: the same-FLOPs baseline matches the EB pipeline's FLOPs
        for mode in RUN_KINDS[control].modes(s.modes, s.spec.pretrained):
            for ratio in s.kind_ratios(control):
                records.append(run_pruned(s, data, dense, control, mode, ratio, redo=redo, done=records))
    return records, dense["watch"]["detectors"]


def _run_seeds(s: Settings, seeds: tuple[int, ...], redo: bool) -> list[tuple[list[dict], dict]]:
    if s.workers > 1 and len(seeds) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(min(s.workers, len(seeds)), mp_context=mp.get_context("spawn")) as pool:
            return list(pool.map(run_seed, [s] * len(seeds), seeds, [redo] * len(seeds)))
    return [run_seed(s, seed, redo) for seed in seeds]


def run_experiment(settings: Settings | ExperimentConfig, redo: bool = False) -> ExperimentResult:
    """Run (or reuse) every run of every seed and write the tables to the settings' results folder
    (`results/<family>/<profile>/`, or `<profile>+<hash>` when settings differ from the profile's).

    Per-seed tables (`table-seed<k>.csv`) are written for each seed; the combined tables hold the seeds
    of these settings only, so a run of one seed never overwrites another seed's results.
    """
    s = settings.resolve() if isinstance(settings, ExperimentConfig) else settings
    start = time.perf_counter()
    tables, curves, detectors, records_of = {}, [], {}, {}
    for seed, (records, det_states) in zip(s.seeds, _run_seeds(s, s.seeds, redo)):
        tables[seed], curve = seed_tables(s, records)
        curves.append(curve)
        records_of[seed] = records
        detectors[seed] = {k: EarlyBirdDetector.from_state_dict(v) for k, v in det_states.items()}
    result = ExperimentResult(s, pd.concat(tables.values(), ignore_index=True), pd.concat(curves, ignore_index=True),
                              distances_frame(detectors), detectors, s.results_path())
    result.provenance = provenance(records_of, time.perf_counter() - start)
    write_tables(result, tables)
    result.seconds = time.perf_counter() - start
    return result


def provenance(records_of: dict[int, list[dict]], seconds: float) -> dict:
    """How this call came by its runs: trained now, or reused from run folders finished earlier (when, and
    how long their training took), so that a re-rendered notebook says so."""
    import datetime
    from pathlib import Path
    from . import paths
    reused, fresh, finished, trained_seconds = 0, 0, [], 0.0
    for records in records_of.values():
        for rec in records:
            result_file = Path(rec["run_dir"]) / paths.RESULT_FILE
            stamp = result_file.stat().st_mtime if result_file.is_file() else time.time()
            trained_seconds += float(rec.get("train_seconds", 0.0))
            if rec.get("reused"):
                reused += 1
                finished.append(stamp)
            else:
                fresh += 1
    day = lambda t: datetime.datetime.fromtimestamp(t).date().isoformat()  # noqa: E731
    return {"runs": reused + fresh, "reused": reused, "trained_now": fresh, "seconds": seconds,
            "train_seconds": trained_seconds, "finished_from": day(min(finished)) if finished else None,
            "finished_to": day(max(finished)) if finished else None}
