"""The early-bird pipeline for one family and profile over several seeds, with honest controls and
exact cost accounting: orchestration only (the pieces live in the modules named below).

    result = run_experiment(ExperimentConfig("vit", profile="cpu", seeds=(0, 1, 2)))
    result.table          # one row per (seed, run): dense, early-bird tickets, controls

Per seed (`run_seed`):
(a) The dense baseline trains for the full budget while two detectors watch every check (epoch, or
    every N steps): the study's consecutive rule (window 2) and Early-Bird's window rule (window 5),
    for every ratio at once, from one scoring pass per check (ebcore.study.runs.run_dense).
(b) Per ratio and retrain mode (ebcore.study.retrain.MODES: scratch / continue / finetune), the ticket of
    the ruling detector (`rule`) is pruned physically and trained (ebcore.study.runs.run_pruned).
(c) Controls (ebcore.study.retrain.CONTROLS) at the same ratio, retrained the same way: a random mask, the
    late ticket (the final dense mask), and the one-shot mask of the untrained (or pretrained) model.
(d) Costs in exact training FLOPs (ebcore.study.costs); wall time as a secondary, noisy column.

Run folders and result files: ebcore.study.paths. Tables: ebcore.study.tables. Seeds run in parallel
processes when `workers > 1`.
"""
from __future__ import annotations

import time
import pandas as pd
import torch

from ..detector import EarlyBirdDetector
from .config import ExperimentConfig
from .retrain import CONTROLS, MODES, control_modes
from .runs import run_dense, run_pruned
from .splits import load_data
from .tables import TABLE_COLUMNS, ExperimentResult, distances_frame, run_label, seed_tables, write_tables

__all__ = ["CONTROLS", "MODES", "TABLE_COLUMNS", "ExperimentConfig", "ExperimentResult", "run_experiment",
           "run_label", "run_seed"]


def run_seed(cfg: ExperimentConfig, seed: int) -> tuple[list[dict], dict]:
    """Every run of one seed: the watched dense run, the tickets and the controls (reused when finished)."""
    spec = cfg.spec()
    torch.manual_seed(seed)
    data = load_data(spec, seed)
    dense = run_dense(cfg, spec, data, seed)
    records = [dense]
    for mode in cfg.effective_modes:
        for ratio in cfg.ratios:
            records.append(run_pruned(cfg, spec, data, dense, "early_bird", mode, ratio))
    for control in cfg.effective_controls:
        for mode in control_modes(control, cfg.effective_modes, spec.pretrained):
            for ratio in cfg.control_ratios:
                records.append(run_pruned(cfg, spec, data, dense, control, mode, ratio))
    return records, dense["watch"]["detectors"]


def _run_seeds(cfg: ExperimentConfig, seeds: tuple[int, ...]) -> list[tuple[list[dict], dict]]:
    workers = cfg.workers or cfg.spec().workers
    if workers > 1 and len(seeds) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(min(workers, len(seeds)), mp_context=mp.get_context("spawn")) as pool:
            return list(pool.map(run_seed, [cfg] * len(seeds), seeds))
    return [run_seed(cfg, s) for s in seeds]


def run_experiment(cfg: ExperimentConfig) -> ExperimentResult:
    """Run (or reuse) every run of every seed and write the tables to `results/<family>/<profile>/`.

    Per-seed tables (`table-seed<k>.csv`) are written for each seed; the combined tables hold the seeds
    of this config only, so a run of one seed never overwrites another seed's results.
    """
    start = time.perf_counter()
    seeds = cfg.effective_seeds
    tables, curves, detectors = {}, [], {}
    for seed, (records, det_states) in zip(seeds, _run_seeds(cfg, seeds)):
        tables[seed], curve = seed_tables(cfg, records)
        curves.append(curve)
        detectors[seed] = {k: EarlyBirdDetector.from_state_dict(v) for k, v in det_states.items()}
    result = ExperimentResult(cfg, pd.concat(tables.values(), ignore_index=True), pd.concat(curves, ignore_index=True),
                              distances_frame(detectors), detectors, cfg.results_path())
    write_tables(result, tables)
    result.seconds = time.perf_counter() - start
    return result
