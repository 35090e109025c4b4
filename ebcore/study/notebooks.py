"""Executing the notebooks with papermill: each executed copy is scrubbed of machine paths and replaces
the last good copy only on success; timings per notebook are merged into results/timings-<profile>.csv,
and results/README.md is rebuilt afterwards (ebcore.study.readme).
"""
from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..files import atomic_save
from . import paths
from .errors import UsageError
from .families import FAMILIES
from .paths import relative_to_repo, repo_root
from .scrub import scrub_notebook

KERNEL = "ebcore"
# What the log shows of a running notebook: its printed output (stdout, stderr: progress lines, warnings)
# only. papermill's `log_output` would also log every display's text/plain ("<IPython.core.display.
# Markdown object>", "<Figure size 640x480 with 1 Axes>"). The kernel's own start-up warning ("Kernel is
# running over TCP without encryption", ipykernel 7 on a local kernel) is silenced by its log level.
LOG_KWARGS: dict[str, Any] = {"log_output": False, "extra_arguments": ["--IPKernelApp.log_level=ERROR"]}
TIMINGS_COLUMNS = ("notebook", "profile", "seconds", "status")
NOTEBOOK_OF = {name: fam.notebook for name, fam in FAMILIES.items()}   # family -> notebook
FAMILY_OF = {nb: fam for fam, nb in NOTEBOOK_OF.items()}


# --- timings --------------------------------------------------------------------------------------

def update_timings(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Replace the rows of `path` (a timings CSV) for the notebooks in `rows`, keep the others (in the
    notebooks' order); the file is never emptied. Written through a temporary file."""
    path = Path(path)
    kept: dict[str, dict[str, Any]] = {}
    if path.is_file():
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                if row.get("notebook"):
                    kept[row["notebook"]] = {c: row.get(c, "") for c in TIMINGS_COLUMNS}
    for row in rows:
        kept[str(row["notebook"])] = {c: row.get(c, "") for c in TIMINGS_COLUMNS}
    order = list(FAMILY_OF)
    names = sorted(kept, key=lambda n: (order.index(n) if n in order else len(order), n))

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=TIMINGS_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(kept[n] for n in names)
    return atomic_save(path, write)


# --- executing notebooks --------------------------------------------------------------------------

def _papermill_execute(input_path: str, output_path: str, **kwargs: Any) -> Any:
    import papermill
    return papermill.execute_notebook(input_path, output_path, **kwargs)


def check_kernel(name: str = KERNEL) -> None:
    """The Jupyter kernel the notebooks run in must be registered (scripts/setup.sh does it)."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager
    except ImportError:
        raise UsageError("papermill and jupyter are not installed: run `bash scripts/setup.sh` "
                         "(or pip install -e '.[notebooks]')") from None
    if name not in KernelSpecManager().find_kernel_specs():
        raise UsageError(f"the Jupyter kernel {name!r} is not registered: run `bash scripts/setup.sh`")


def last_seconds(results_dir: Path, family: str, folder: str) -> float | None:
    """Seconds of the last successful run of `family`'s notebook into results folder `folder` (None: none)."""
    profile = folder.split("+")[0]
    path = paths.timings_file(results_dir, profile)
    if folder != profile or not path.is_file() or family not in NOTEBOOK_OF:
        return None
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get("notebook") == NOTEBOOK_OF[family] and row.get("seconds"):
                return float(row["seconds"])
    return None


def run_notebooks(notebooks: Sequence[str], profile: str, parameters: Mapping[str, Any] | None = None,
                  results_dir: str | Path | None = None, root: str | Path | None = None,
                  execute: Callable[..., Any] = _papermill_execute, log: Callable[[str], None] = print,
                  out_dirs: Mapping[str, Path] | None = None) -> dict[str, str]:
    """Execute `notebooks` with papermill in `profile`; returns notebook -> "ok" or "FAILED".

    `out_dirs` names each notebook's results folder (the resolved settings' `results_path()`; the CLI
    passes it); without it, `<results_dir>/<family>/<profile>/`.
    Each executed copy goes to `<out_dir>/.<nb>.running.ipynb`, machine paths
    scrubbed, then replaces `<nb>.ipynb` on success or becomes `<nb>.failed.ipynb` on failure (a good
    copy from an earlier run is left alone). Timings of the notebooks that succeeded replace their rows
    in `<results_dir>/timings-<profile>.csv`; README.md is rebuilt from everything on disk."""
    from .readme import gather
    root = Path(root) if root is not None else repo_root()
    results = Path(results_dir) if results_dir is not None else root / "results"
    params = dict(parameters or {})
    if results_dir is not None and "results_dir" not in params:
        params["results_dir"] = str(Path(results).resolve())
    status: dict[str, str] = {}
    for nb in notebooks:
        family = FAMILY_OF[nb]
        source = root / "notebooks" / paths.notebook_file(nb)
        out_dir = Path(out_dirs[nb]) if out_dirs and nb in out_dirs else paths.results_folder(results, family, profile)
        out_dir.mkdir(parents=True, exist_ok=True)
        final, running, failed = (out_dir / f"{nb}.ipynb", out_dir / f".{nb}.running.ipynb",
                                  out_dir / f"{nb}.failed.ipynb")
        log(f"== {nb} ({profile} profile) -> {relative_to_repo(final, root)}")
        start = time.perf_counter()
        try:
            execute(str(source), str(running), parameters={"profile": profile, **params}, kernel_name=KERNEL,
                    cwd=str(root / "notebooks"), progress_bar=True, stdout_file=sys.stdout, stderr_file=sys.stderr,
                    **LOG_KWARGS)
        except Exception as err:  # noqa: BLE001 - any failure of a notebook is reported, the others go on
            seconds = time.perf_counter() - start
            status[nb] = "FAILED"
            if running.is_file():
                scrub_notebook(running, root, output_path=failed)
                os.replace(running, failed)
                where = f"; executed copy with the error: {relative_to_repo(failed, root)}"
            else:
                where = ""
            first = str(err).strip().splitlines()
            log(f"== {nb}: FAILED after {seconds:.0f} s ({type(err).__name__}: "
                f"{first[-1] if first else ''}){where}")
            continue
        except BaseException:
            running.unlink(missing_ok=True)
            raise
        seconds = time.perf_counter() - start
        scrub_notebook(running, root, output_path=final)
        os.replace(running, final)
        failed.unlink(missing_ok=True)
        status[nb] = "ok"
        if out_dir.name == profile:   # a profile's own folder; runs with other settings keep no timings
            update_timings(paths.timings_file(results, profile),  # now: an interrupted call keeps what finished
                           [{"notebook": nb, "profile": profile, "seconds": round(seconds), "status": "ok"}])
        log(f"== {nb}: ok in {seconds:.0f} s")
    if any(s == "ok" for s in status.values()):
        log(f"results summary: {relative_to_repo(gather(results), root)}")
    return status
