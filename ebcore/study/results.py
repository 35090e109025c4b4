"""The experiment's result and its per-run tables: one row per (seed, run) with accuracy, ticket and costs
relative to dense, the training curves, the detectors, and the files they are written to under the settings'
results folder (ebcore.study.config.Settings.results_path). The tables a reader sees (summary, paired
differences, verdicts) are built from these by ebcore.study.report.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
import numpy as np
import pandas as pd

from ..detector import EarlyBirdDetector
from . import paths
from .config import Settings
from .kinds import RUN_KINDS, run_label

TABLE_COLUMNS = ["family", "profile", "seed", "run", "kind", "mode", "ratio", "ticket_found", "ticket_epoch",
                 "ticket_epoch_consecutive", "ticket_epoch_window", "ticket_to_final", "start", "schedule",
                 "budget_epochs", "test_accuracy", "test_loss", "test_size", "best_val_accuracy", "final_val_accuracy",
                 "params", "param_ratio", "flops_per_sample", "flops_ratio", "train_flops_per_sample",
                 "samples_seen", "search_flops", "train_flops", "total_flops", "flops_rel_dense", "search_seconds",
                 "scoring_seconds", "train_seconds", "total_seconds", "time_rel_dense", "train_memory_bytes",
                 "memory_ratio", "pipeline_memory_ratio", "memory_kind", "disk_bytes", "epochs_trained", "sparsity"]


@dataclass
class ExperimentResult:
    settings: Settings
    table: pd.DataFrame                                   # one row per (seed, run)
    curves: pd.DataFrame
    distances: pd.DataFrame                               # one row per (seed, rule, check, ratio)
    detectors: dict[int, dict[str, EarlyBirdDetector]]    # seed -> rule -> detector
    out_dir: Path
    seconds: float = 0.0
    provenance: dict = field(default_factory=dict)     # runs trained now vs reused (experiment.provenance)

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(sorted(self.detectors))

    def pairwise(self, ratio: float, rule: str = "consecutive", seed: int | None = None) -> np.ndarray:
        return self.detectors[self.seeds[0] if seed is None else seed][rule].pairwise(ratio)


def seed_tables(s: Settings, records: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table, curves) of one seed's run records; the first record is the dense run."""
    rows, curves = [], []
    dense = records[0]
    budget = s.epochs
    for rec in records:
        label = run_label(rec["kind"], rec["mode"], rec["ratio"])
        is_dense = RUN_KINDS[rec["kind"]].role == "dense"
        total = rec["train_seconds"] + (0.0 if is_dense else rec.get("search_seconds", 0.0))
        row = {k: rec.get(k) for k in TABLE_COLUMNS}
        row.update(family=s.family, profile=s.profile, run=label, total_seconds=total, budget_epochs=budget,
                   time_rel_dense=total / dense["train_seconds"], param_ratio=rec["params"] / dense["params"],
                   flops_ratio=rec["flops_per_sample"] / dense["flops_per_sample"],
                   flops_rel_dense=rec["total_flops"] / dense["total_flops"],
                   memory_ratio=rec["train_memory_bytes"] / dense["train_memory_bytes"],
                   # the whole pipeline's peak: a run that needs the dense run (search "ticket" or "dense") also
                   # went through its dense phase
                   pipeline_memory_ratio=(max(rec["train_memory_bytes"], dense["train_memory_bytes"])
                                          if rec.get("search") in ("ticket", "dense") else rec["train_memory_bytes"])
                   / dense["train_memory_bytes"])
        if is_dense:
            row.update(search_seconds=0.0, search_flops=0.0, ticket_found=None,
                       scoring_seconds=rec["watch"]["search_seconds"])
        rows.append(row)
        hist = pd.DataFrame(rec["history"])
        curves.append(hist.assign(seed=rec["seed"], run=label, kind=rec["kind"], mode=rec["mode"], ratio=rec["ratio"]))
    return pd.DataFrame(rows, columns=TABLE_COLUMNS), pd.concat(curves, ignore_index=True)


def write_tables(result: ExperimentResult, seed_frames: dict[int, pd.DataFrame]) -> Path:
    """Per-seed and combined tables, curves, distances, every detector's state and the config, under the
    results folder. A run of one seed never overwrites another seed's table."""
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    for seed, t in seed_frames.items():
        t.to_csv(out / paths.seed_table(seed), index=False)
    result.table.to_csv(out / paths.TABLE_CSV, index=False)
    result.table.to_json(out / paths.TABLE_JSON, orient="records", indent=1)
    result.curves.to_csv(out / paths.CURVES_CSV, index=False)
    result.distances.to_csv(out / paths.DISTANCES_CSV, index=False)
    states = {str(s): {k: d.state_dict() for k, d in dets.items()} for s, dets in result.detectors.items()}
    with open(out / paths.DETECTORS_FILE, "wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:  # every mask of every check; mtime 0: same bytes
        f.write(json.dumps(states).encode())
    record = result.settings.as_record() | {"seeds": list(result.seeds)}
    (out / paths.CONFIG_FILE).write_text(json.dumps(record, indent=1, default=str))
    return out


def distances_frame(detectors: dict[int, dict[str, EarlyBirdDetector]]) -> pd.DataFrame:
    """One row per (seed, rule, check, ratio): the detectors' distance records."""
    return pd.concat([pd.DataFrame(d.records()).assign(rule=k, seed=seed)
                      for seed, dets in detectors.items() for k, d in dets.items()], ignore_index=True)
