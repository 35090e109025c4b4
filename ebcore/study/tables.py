"""The experiment's result and tables: one row per (seed, run) with accuracy, ticket and costs relative to
dense, the training curves, the detectors, and the files they are written to under results/<family>/<profile>/.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import asdict, dataclass
from pathlib import Path
import numpy as np
import pandas as pd

from ..detector import EarlyBirdDetector
from . import paths
from .config import ExperimentConfig
from .paths import relative_to_repo

TABLE_COLUMNS = ["family", "profile", "seed", "run", "kind", "mode", "ratio", "ticket_found", "ticket_epoch",
                 "ticket_epoch_consecutive", "ticket_epoch_window", "budget_epochs", "test_accuracy", "test_loss",
                 "test_size", "best_val_accuracy", "final_val_accuracy", "params", "param_ratio", "flops_per_sample",
                 "flops_ratio", "train_flops_per_sample", "samples_seen", "search_flops", "train_flops",
                 "total_flops", "flops_rel_dense", "search_seconds", "scoring_seconds", "train_seconds",
                 "total_seconds", "time_rel_dense", "train_memory_bytes", "memory_ratio", "memory_kind",
                 "disk_bytes", "epochs_trained", "sparsity"]


@dataclass
class ExperimentResult:
    config: ExperimentConfig
    table: pd.DataFrame                                   # one row per (seed, run)
    curves: pd.DataFrame
    distances: pd.DataFrame                               # one row per (seed, rule, check, ratio)
    detectors: dict[int, dict[str, EarlyBirdDetector]]    # seed -> rule -> detector
    out_dir: Path
    seconds: float = 0.0

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(sorted(self.detectors))

    def pairwise(self, ratio: float, rule: str = "consecutive", seed: int | None = None) -> np.ndarray:
        return self.detectors[self.seeds[0] if seed is None else seed][rule].pairwise(ratio)


def run_label(kind: str, mode: str, ratio: float) -> str:
    if kind == "dense":
        return "dense"
    return f"{kind.replace('_', '-')} {mode} p={ratio:g}"


def seed_tables(cfg: ExperimentConfig, records: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table, curves) of one seed's run records; the first record is the dense run."""
    rows, curves = [], []
    dense = records[0]
    budget = cfg.spec().train.epochs
    for rec in records:
        label = run_label(rec["kind"], rec["mode"], rec["ratio"])
        total = rec["train_seconds"] + rec.get("search_seconds", 0.0) if rec["kind"] != "dense" else rec["train_seconds"]
        row = {k: rec.get(k) for k in TABLE_COLUMNS}
        row.update(family=cfg.family, profile=cfg.profile, run=label, total_seconds=total, budget_epochs=budget,
                   time_rel_dense=total / dense["train_seconds"], param_ratio=rec["params"] / dense["params"],
                   flops_ratio=rec["flops_per_sample"] / dense["flops_per_sample"],
                   flops_rel_dense=rec["total_flops"] / dense["total_flops"],
                   memory_ratio=rec["train_memory_bytes"] / dense["train_memory_bytes"])
        if rec["kind"] == "dense":
            row.update(search_seconds=0.0, search_flops=0.0, ticket_found=None,
                       scoring_seconds=rec["watch"]["search_seconds"])
        rows.append(row)
        hist = pd.DataFrame(rec["history"])
        curves.append(hist.assign(seed=rec["seed"], run=label, kind=rec["kind"], mode=rec["mode"], ratio=rec["ratio"]))
    return pd.DataFrame(rows, columns=TABLE_COLUMNS), pd.concat(curves, ignore_index=True)


def write_tables(result: ExperimentResult, seed_frames: dict[int, pd.DataFrame]) -> Path:
    """Per-seed and combined tables, curves, distances, every detector's state and the config, under the
    results folder. A run of one seed never overwrites another seed's table."""
    cfg, out = result.config, result.out_dir
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
    config = asdict(cfg) | {"results_dir": relative_to_repo(cfg.results_dir), "runs_dir": relative_to_repo(cfg.runs_dir),
                            "effective_seeds": list(cfg.effective_seeds), "effective_modes": list(cfg.effective_modes),
                            "effective_controls": list(cfg.effective_controls),
                            "effective_criterion": cfg.effective_criterion,
                            "effective_precision": cfg.effective_precision, "effective_align": cfg.effective_align,
                            "effective_threshold": cfg.effective_threshold}
    (out / paths.CONFIG_FILE).write_text(json.dumps(config, indent=1, default=str))
    return out


def distances_frame(detectors: dict[int, dict[str, EarlyBirdDetector]]) -> pd.DataFrame:
    """One row per (seed, rule, check, ratio): the detectors' distance records."""
    return pd.concat([pd.DataFrame(d.records()).assign(rule=k, seed=seed)
                      for seed, dets in detectors.items() for k, d in dets.items()], ignore_index=True)
