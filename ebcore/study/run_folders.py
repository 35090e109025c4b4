"""The run folders on disk, as a table: what `ebcore runs` lists and `ebcore clean` removes.

    runs/<family>/<profile>/seed<k>/<run>-<key>/     (ebcore.study.paths)

A folder's state: `finished` (result.json written: later calls reuse it), `interrupted` (a checkpoint to
resume from), `started` (parameters only).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import paths

COLUMNS = ("family", "profile", "seed", "run", "key", "state", "finished", "bytes", "path")


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def run_state(folder: Path) -> str:
    if (folder / paths.RESULT_FILE).is_file():
        return "finished"
    if any(folder.glob("checkpoint*")):
        return "interrupted"
    return "started"


def list_runs(runs_dir: Path) -> pd.DataFrame:
    """One row per run folder under `runs_dir` (sorted by family, profile, seed, run)."""
    rows = []
    for folder in sorted(Path(runs_dir).glob("*/*/seed*/*")):
        if not folder.is_dir():
            continue
        family, profile, seed = folder.parts[-4], folder.parts[-3], folder.parts[-2].removeprefix("seed")
        run, _, key = folder.name.rpartition("-")
        result = folder / paths.RESULT_FILE
        finished = pd.Timestamp.fromtimestamp(result.stat().st_mtime).strftime("%Y-%m-%d %H:%M") \
            if result.is_file() else ""
        rows.append({"family": family, "profile": profile, "seed": int(seed) if seed.isdigit() else seed,
                     "run": run, "key": key, "state": run_state(folder), "finished": finished,
                     "bytes": folder_bytes(folder), "path": folder})
    return pd.DataFrame(rows, columns=list(COLUMNS))
