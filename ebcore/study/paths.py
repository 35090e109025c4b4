"""Where the study's files live, in one module: the checkout, the run folders and their artefacts, the
results folders and their tables, figures, notebooks and timings.

    runs/<family>/<profile>/seed<k>/dense-<key>/                     the watched dense run of one seed
    runs/<family>/<profile>/seed<k>/<kind>-<mode>-p<ratio>-<key>/    a pruned run (ticket or control)
        params.json  result.json  mask.json  model/  checkpoint.pt
        tickets/ticket-<ratio>.safetensors  tickets/ticket-<ratio>-optimizer.safetensors   (dense runs)
    results/<family>/<profile>/     table.csv, table-seed<k>.csv, curves.csv, distances.csv, detectors.json.gz,
                                    config.json, summary.{csv,md}, paired.csv, verdicts.csv, <figure>.png,
                                    <notebook>.ipynb
    results/timings-<profile>.csv, results/README.md, results/verdicts_overview.png

A run folder's name ends with a hash of everything that determines the run (`run_key`), so a finished
run is found again and reused, and two different runs never share a folder.

    relative_to_repo("/home/me/ebcore/results")   # -> "results" (paths outside the checkout stay as given)
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

# --- artefacts of a run folder ------------------------------------------------------------------------
PARAMS_FILE = "params.json"      # what determines the run (its key's source)
RESULT_FILE = "result.json"      # written last: a folder with it is finished
MASK_FILE = "mask.json"          # the mask a pruned run was pruned with
MODEL_DIR = "model"              # the final (pruned) model, ebcore.io.save_pruned
TICKETS_DIR = "tickets"          # a dense run's weights and AdamW state when each ticket appeared (`continue`)

# --- tables of a results folder -------------------------------------------------------------------------
TABLE_CSV, TABLE_JSON, CURVES_CSV, DISTANCES_CSV = "table.csv", "table.json", "curves.csv", "distances.csv"
DETECTORS_FILE, CONFIG_FILE = "detectors.json.gz", "config.json"
SUMMARY_CSV, SUMMARY_MD, PAIRED_CSV, VERDICTS_CSV = "summary.csv", "summary.md", "paired.csv", "verdicts.csv"
README = "README.md"
VERDICTS_OVERVIEW_PNG = "verdicts_overview.png"  # results/: claims x families, at the top of the README


def run_key(params: dict[str, Any]) -> str:
    """A short, stable hash of a run's parameters (the end of its folder's name)."""
    return hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:10]


def seed_folder(runs_dir: str | Path, family: str, profile: str, seed: int) -> Path:
    """Run folders of one seed: runs/<family>/<profile>/seed<k>/ (seeds never share a folder)."""
    return Path(runs_dir) / family / profile / f"seed{seed}"


def dense_run_folder(seed_dir: Path, params: dict[str, Any]) -> Path:
    return seed_dir / f"dense-{run_key(params)}"


def pruned_run_folder(seed_dir: Path, kind: str, mode: str, ratio: float, params: dict[str, Any]) -> Path:
    return seed_dir / f"{kind}-{mode}-p{ratio}-{run_key(params)}"


def ticket_weights(tickets_dir: Path, ratio: float) -> Path:
    """The dense weights saved when the ticket at `ratio` appeared."""
    return tickets_dir / f"ticket-{ratio}.safetensors"


def ticket_optimizer(tickets_dir: Path, ratio: float) -> Path:
    """The dense run's AdamW state (by parameter name) and global step when the ticket at `ratio` appeared."""
    return tickets_dir / f"ticket-{ratio}-optimizer.safetensors"


def results_folder(results_dir: str | Path, family: str, profile: str) -> Path:
    return Path(results_dir) / family / profile


def seed_table(seed: int) -> str:
    return f"table-seed{seed}.csv"


def figure_file(name: str) -> str:
    return f"{name}.png"


def notebook_file(notebook: str) -> str:
    return f"{notebook}.ipynb"


def timings_file(results_dir: str | Path, profile: str) -> Path:
    return Path(results_dir) / f"timings-{profile}.csv"


# --- the checkout ---------------------------------------------------------------------------------------

def repo_root(start: str | Path | None = None) -> Path:
    """The checkout holding ebcore: the folder with pyproject.toml and ebcore/ above `start`.

    Without `start`, the folder above this package when it is a checkout, else the working directory
    (an installed, non-editable ebcore has no checkout)."""
    candidates = [Path(start)] if start is not None else [Path(__file__).resolve().parent, Path.cwd()]
    for begin in candidates:
        here = begin.resolve()
        for folder in (here, *here.parents):
            if (folder / "pyproject.toml").is_file() and (folder / "ebcore").is_dir():
                return folder
    return Path.cwd().resolve()


def relative_to_repo(path: str | Path, root: str | Path | None = None) -> str:
    """`path` relative to the repository root, in POSIX form ("results/vit/cpu"); "." for the root itself.

    A relative path is taken relative to the working directory. A path outside the repository (a
    temporary folder) is returned absolute: there is nothing in the checkout to relate it to."""
    base = Path(root).resolve() if root is not None else repo_root()
    target = Path(path).expanduser()
    target = (target if target.is_absolute() else Path.cwd() / target).resolve()
    try:
        rel = target.relative_to(base)
    except ValueError:
        return target.as_posix()
    return rel.as_posix() or "."
