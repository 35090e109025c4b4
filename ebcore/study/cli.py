"""The command line: `python -m ebcore ...` or the `ebcore` console script (`run_all.sh` wraps `notebooks`).

    ebcore run vit --profile cpu --seeds 0,1,2 --set ratios=[0.2,0.4] --set criterion=taylor
    ebcore notebooks --profile ci --only vit,swin -p ratios '[0.2,0.4]'    # papermill, as run_all.sh
    ebcore report                     # rebuild results/README.md from what is on disk
    ebcore report --profile cpu       # ... and print that profile's section
    ebcore run vit --dry-run          # the plan: runs per seed, what is finished, the time of the last run
    ebcore runs --family vit          # the run folders: family, profile, seed, run, key, state, size
    ebcore clean --family vit --profile ci --yes    # remove run folders (without --yes: only list them)

`run` calls `ebcore.study.report.run_and_report` (the code path of the notebooks); `notebooks` executes the
notebooks themselves. Values of `--set NAME=VALUE` and `-p NAME VALUE` are YAML (lists, dicts, numbers,
null/None). Every setting is checked through ebcore.study.config.ExperimentConfig before any folder, kernel
or model exists: bad usage prints one line and exits with status 2; failed notebooks exit with status 1.
Settings that differ from the profile's write to their own results folder (`<profile>+<hash>`).
Imports are lazy: `--help` and a refused setting answer in well under a second.

Results are never destroyed by a failed call: an executed notebook is written to a temporary file and
moved over `<notebook>.ipynb` only on success (a failed one is kept as `<notebook>.failed.ipynb`,
git-ignored); `results/timings-<profile>.csv` keeps the rows of notebooks this call did not run; and
`results/README.md` is rebuilt from every profile on disk.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, NoReturn, Sequence

from ..errors import EbcoreError
from .config import ExperimentConfig, parse_value
from .errors import SettingsError, UsageError
from .families import FAMILIES
from .notebooks import FAMILY_OF, KERNEL, NOTEBOOK_OF, check_kernel, run_notebooks, update_timings
from .paths import relative_to_repo, repo_root
from .profiles import PROFILES

if TYPE_CHECKING:
    from .config import Settings

__all__ = ["UsageError", "main", "parse_value", "parse_assignment", "parse_seeds", "resolve_notebooks",
           "check_parameters", "run_notebooks", "update_timings", "NOTEBOOK_OF", "KERNEL"]


# --- parsing --------------------------------------------------------------------------------------

def parse_assignment(text: str) -> tuple[str, Any]:
    """"NAME=VALUE" -> (NAME, parsed VALUE)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise UsageError(f"--set expects NAME=VALUE, got {text!r} (e.g. --set ratios=[0.2,0.4])")
    return name.strip(), parse_value(value)


def parse_seeds(text: str) -> tuple[int, ...]:
    """"0,1,2" (or "[0, 1, 2]") -> (0, 1, 2)."""
    items = [s for s in re.split(r"[\s,]+", text.strip().strip("[]")) if s]
    try:
        seeds = tuple(int(s) for s in items)
    except ValueError:
        seeds = ()
    if not seeds:
        raise UsageError(f"--seeds expects integers separated by commas, got {text!r} (e.g. --seeds 0,1,2)")
    return seeds


def parameter_names() -> tuple[str, ...]:
    return ExperimentConfig.parameter_names()


def check_parameters(params: Mapping[str, Any], refused: Iterable[str] = ()) -> None:
    """Every name must be an experiment parameter (a field of ExperimentConfig) and not one of `refused`."""
    names = parameter_names()
    for name in params:
        if name in refused:
            raise UsageError(f"parameter {name!r} is set by its own option here ({', '.join(refused)}): "
                             "use --profile, --seeds or --only instead")
        if name not in names:
            valid = ", ".join(n for n in names if n not in refused)
            raise UsageError(f"unknown parameter {name!r}; valid names: {valid}")


def apply_seeds(params: dict[str, Any], seeds: tuple[int, ...] | None) -> dict[str, Any]:
    """`params` with `--seeds` as the `seeds` parameter (given once: not also as -p/--set seeds)."""
    if seeds is None:
        return params
    if "seeds" in params:
        raise UsageError("give the seeds once: --seeds and the parameter 'seeds' were both given")
    return {**params, "seeds": list(seeds)}


def settings_for(family: str, profile: str, params: Mapping[str, Any]) -> "Settings":
    """The resolved, validated settings of one family (a bad value: UsageError naming it, nothing made)."""
    try:
        return ExperimentConfig.from_params({"family": family, "profile": profile, **params}, strict=True).resolve()
    except SettingsError:
        raise
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from None


def resolve_notebooks(only: str | None) -> list[str]:
    """Notebook names from "--only vit,swin" (family names are accepted: bert -> bert_finetune)."""
    if only is None:
        return list(NOTEBOOK_OF.values())
    chosen: list[str] = []
    for item in (s.strip() for s in only.split(",")):
        if not item:
            continue
        nb = NOTEBOOK_OF.get(item, item)
        if nb not in FAMILY_OF:
            raise UsageError(f"unknown notebook {item!r}; choose from {', '.join(FAMILY_OF)}")
        if nb not in chosen:
            chosen.append(nb)
    if not chosen:
        raise UsageError(f"--only names no notebook; choose from {', '.join(FAMILY_OF)}")
    return chosen


# --- commands -------------------------------------------------------------------------------------

def _default_dirs(params: dict[str, Any], root: Path) -> dict[str, Any]:
    for key in ("results_dir", "runs_dir"):
        value = params.get(key)
        default = root / key.removesuffix("_dir")
        params[key] = str(default if value is None else Path(value).expanduser().resolve())
    return params


def _plan(settings: "Settings", root: Path) -> str:
    """What a call would run for `settings`, what is already finished, and the last run's time."""
    from .kinds import RUN_KINDS
    from .notebooks import last_seconds
    s = settings
    runs = [("dense", "dense", 0.0)]
    runs += [(k, m, r) for k, kind in RUN_KINDS.items() if kind.role == "ticket" for m in s.modes for r in s.ratios]
    runs += [(c, m, r) for c in s.controls for m in RUN_KINDS[c].modes(s.modes, s.spec.pretrained)
             for r in s.kind_ratios(c)]
    finished = []
    for seed in s.seeds:
        folder = s.seed_dir(seed)
        finished.append(sum(1 for _ in folder.glob("*/result.json")) if folder.is_dir() else 0)
    spent = last_seconds(Path(s.results_dir), s.family, s.folder_name)
    lines = [f"{s.family} ({s.profile} profile) -> {relative_to_repo(s.results_path(), root)}"
             + ("" if s.canonical else f"  [settings differ from the profile's: {dict(s.overrides)}]"),
             f"  seeds {list(s.seeds)} ({s.workers} process{'es' if s.workers > 1 else ''}), {s.epochs} epochs, "
             f"{s.train_size if s.train_size < 10**8 else 'all'} training samples, ratios {list(s.ratios)}, "
             f"modes {list(s.modes)}, controls {list(s.controls)} at {list(s.control_ratios)}, threshold {s.threshold}",
             f"  {len(runs)} runs per seed ({len(runs) * len(s.seeds)} in all): "
             + ", ".join(f"{k}" + ("" if k == "dense" else f" {m} p={r:g}") for k, m, r in runs),
             f"  finished run folders per seed (any settings): {dict(zip(s.seeds, finished))}",
             f"  last run of this notebook: {f'{spent:.0f} s' if spent is not None else 'none recorded'}"]
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {}
    for item in args.set or []:
        name, value = parse_assignment(item)
        if name in params:
            raise UsageError(f"parameter {name!r} given twice with --set")
        params[name] = value
    check_parameters(params, refused=("family", "profile"))
    root = repo_root()
    params = apply_seeds(_default_dirs(params, root), parse_seeds(args.seeds) if args.seeds else None)
    settings = settings_for(args.family, args.profile, params)    # every value checked: nothing exists yet
    if args.dry_run:
        print(_plan(settings, root))
        return 0
    from .readme import gather
    from .report import run_and_report
    written = run_and_report(settings, redo=args.force)
    print("written:", *sorted(relative_to_repo(p, root) for p in written.values()), sep="\n  ")
    md = written.get("summary_md")
    if md is not None and Path(md).is_file():
        print()
        print(Path(md).read_text())
    readme = gather(settings.results_dir)
    print(f"results summary: {relative_to_repo(readme, root)}")
    return 0


def cmd_notebooks(args: argparse.Namespace) -> int:
    notebooks = resolve_notebooks(args.only)
    params: dict[str, Any] = {}
    for name, value in args.param or []:
        if name in params:
            raise UsageError(f"parameter {name!r} given twice with -p")
        params[name] = parse_value(value)
    check_parameters(params, refused=("family", "profile"))
    root = repo_root()
    params = apply_seeds(_default_dirs(params, root), parse_seeds(args.seeds) if args.seeds else None)
    settings = {nb: settings_for(FAMILY_OF[nb], args.profile, params) for nb in notebooks}   # all checked first
    if args.dry_run:
        print("\n".join(_plan(s, root) for s in settings.values()))
        return 0
    check_kernel()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    os.environ.setdefault("EBCORE_PROGRESS", "lines")  # inherited by the kernels: a line per redraw, for the log
    status = run_notebooks(notebooks, args.profile, params, results_dir=Path(params["results_dir"]),
                           out_dirs={nb: s.results_path() for nb, s in settings.items()})
    failed = [nb for nb, st in status.items() if st != "ok"]
    if failed:
        print(f"{args.prog}: FAILED notebooks: {', '.join(failed)} (each executed copy with its error is "
              f"<results>/<family>/<folder>/<notebook>.failed.ipynb; earlier results were kept)", file=sys.stderr)
        return 1
    print(f"{args.prog}: all notebooks ran; tables and figures are under results/ (see results/README.md)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .readme import gather, profile_section
    results = Path(args.results)
    if not results.is_dir():
        raise UsageError(f"no results folder {str(results)!r}: run `ebcore notebooks` or `ebcore run` first, "
                         "or pass --results DIR")
    readme = gather(results, include_ci=args.include_ci)
    if args.profile:
        section = profile_section(results, args.profile)
        if section is None:
            raise UsageError(f"no results of profile {args.profile!r} under {str(results)!r}")
        print(section)
    print(f"results summary: {relative_to_repo(readme)}")
    return 0


def _selected_runs(args: argparse.Namespace):
    from .run_folders import list_runs
    runs = list_runs(Path(args.runs))
    for column in ("family", "profile", "seed", "state"):
        wanted = getattr(args, column, None)
        if wanted is not None:
            runs = runs[runs[column].astype(str) == str(wanted)]
    return runs


def cmd_runs(args: argparse.Namespace) -> int:
    from .report import to_markdown
    runs = _selected_runs(args)
    if runs.empty:
        print(f"no run folders under {relative_to_repo(args.runs)}" + (" matching the filters" if any(
            getattr(args, c) is not None for c in ("family", "profile", "seed", "state")) else ""))
        return 0
    shown = runs.drop(columns=["path"]).assign(**{"size (MB)": (runs["bytes"] / 2**20).round(2)}).drop(columns=["bytes"])
    print(to_markdown(shown))
    print(f"{len(runs)} run folders, {runs['bytes'].sum() / 2**20:.1f} MB")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    import shutil
    runs = _selected_runs(args)
    if not any(getattr(args, c) is not None for c in ("family", "profile", "seed", "state")) and not args.all:
        raise UsageError("say which run folders to remove (--family, --profile, --seed, --state), or --all")
    if runs.empty:
        print("no run folders match")
        return 0
    size = runs["bytes"].sum() / 2**20
    if not args.yes:
        print("\n".join(relative_to_repo(p) for p in runs["path"]))
        print(f"would remove {len(runs)} run folders ({size:.1f} MB); add --yes to remove them")
        return 0
    for path in runs["path"]:
        shutil.rmtree(path, ignore_errors=True)
    print(f"removed {len(runs)} run folders ({size:.1f} MB); results/ is untouched")
    return 0


# --- argument parsing -----------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """Bad usage: one line on stderr naming the problem and where help is, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


NOTEBOOKS_DESCRIPTION = (
    "Execute notebooks with papermill (kernel 'ebcore', working folder notebooks/, progress and cell output "
    "in the log). Every setting is checked first (a bad one: one line, exit 2, nothing run). Each executed copy "
    "goes to results/<family>/<profile>/<notebook>.ipynb (settings that differ from the profile's: "
    "results/<family>/<profile>+<hash>/), replaced only on success (a failed one is kept as "
    "<notebook>.failed.ipynb), timings to results/timings-<profile>.csv, then results/README.md is rebuilt. "
    "Exits 1 naming the notebooks that failed, 2 on bad usage.")
PROFILE_HELP = "; ".join(f"{name}: {p.description}" for name, p in PROFILES.items())
SEEDS_HELP = ("seeds, e.g. 0,1,2 (default: the profile's: "
              + ", ".join(f"{name} {list(p.seeds)}" for name, p in PROFILES.items()) + ")")


def _parameters_epilog() -> str:
    helps = ExperimentConfig.parameter_help()
    return "parameters (fields of ebcore.study.config.ExperimentConfig):\n" + "\n".join(
        f"  {name:<18} {text}" for name, text in helps.items() if name not in ("family", "profile"))


def _add_notebooks_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="cpu", choices=PROFILES, help=PROFILE_HELP + " (default: cpu)")
    p.add_argument("--only", metavar="NOTEBOOKS",
                   help=f"comma-separated notebooks to run (default: all): {','.join(FAMILY_OF)} "
                        f"(family names also work: {','.join(NOTEBOOK_OF)})")
    p.add_argument("--seeds", metavar="S,S,...", help=SEEDS_HELP)
    p.add_argument("-p", "--parameter", dest="param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="set a notebook parameter (any field of ebcore.study.config.ExperimentConfig, listed "
                        "below); VALUE is YAML: -p threshold 0.05 -p ratios '[0.2,0.4]' -p modes '[scratch, "
                        "continue]'. Repeat for several")
    p.add_argument("--dry-run", action="store_true", help="print the plan (runs, seeds, what is finished, the last "
                   "run's time) and run nothing")


def build_parser(prog: str = "ebcore") -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="Early-bird lottery tickets for Transformers: run experiments, "
                     "execute the notebooks, gather results, manage run folders.", epilog="See `ebcore COMMAND --help`.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    raw = argparse.RawDescriptionHelpFormatter

    run = sub.add_parser("run", help="run one family's experiment and write its tables and figures",
                         formatter_class=raw, epilog=_parameters_epilog(),
                         description="Run (or reuse) one family's experiment and write summary.md/csv and figures "
                         "under <results_dir>/<family>/<profile>/ (settings that differ from the profile's: "
                         "<profile>+<hash>/) through ebcore.study.report.run_and_report, the notebooks' code path; "
                         "then rebuild <results_dir>/README.md.")
    run.add_argument("family", choices=list(FAMILIES) + [nb for nb in FAMILY_OF if nb not in FAMILIES],
                     help="model family (or its notebook's name): " + ", ".join(FAMILIES))
    run.add_argument("--profile", default="cpu", choices=PROFILES, help=PROFILE_HELP + " (default: cpu)")
    run.add_argument("--seeds", metavar="S,S,...", help=SEEDS_HELP)
    run.add_argument("--set", action="append", metavar="NAME=VALUE",
                     help="set an experiment parameter (listed below); VALUE is YAML: --set ratios=[0.2,0.4] "
                          "--set criterion=taylor. Repeat for several")
    run.add_argument("--dry-run", action="store_true", help="print the plan and run nothing")
    run.add_argument("--force", action="store_true", help="retrain the runs of these settings even where finished "
                     "run folders exist (they are replaced)")

    nb = sub.add_parser("notebooks", help="execute the notebooks with papermill (what run_all.sh does)",
                        description=NOTEBOOKS_DESCRIPTION, formatter_class=raw, epilog=_parameters_epilog())
    _add_notebooks_args(nb)

    rep = sub.add_parser("report", help="rebuild results/README.md from what is on disk",
                         description="Rebuild results/README.md from every profile's results on disk (cpu first, "
                         "then gpu and paper; ci only with --include-ci) and the timings-<profile>.csv files.")
    rep.add_argument("--results", default=str(repo_root() / "results"), help="results folder (default: the repo's)")
    rep.add_argument("--profile", choices=PROFILES, help="also print this profile's section")
    rep.add_argument("--include-ci", action="store_true", help="include the ci profile (git-ignored scratch)")

    for name, text in (("runs", "list the run folders (finished runs are reused by later calls)"),
                       ("clean", "remove run folders (lists them unless --yes)")):
        p = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ": family, profile, seed, "
                           "run, settings key, state (finished / interrupted / started) and size on disk.")
        p.add_argument("--runs", default=str(repo_root() / "runs"), help="run folders (default: the repo's runs/)")
        p.add_argument("--family", choices=FAMILIES)
        p.add_argument("--profile", choices=PROFILES)
        p.add_argument("--seed", type=int)
        p.add_argument("--state", choices=("finished", "interrupted", "started"))
        if name == "clean":
            p.add_argument("--all", action="store_true", help="every run folder")
            p.add_argument("--yes", action="store_true", help="remove them (default: only list what would go)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m ebcore` and the `ebcore` console script; returns the exit status.

    With EBCORE_PROG set (run_all.sh sets it), `notebooks` is parsed under that name alone."""
    argv = list(sys.argv[1:] if argv is None else argv)
    wrapper = os.environ.get("EBCORE_PROG")
    if wrapper and argv[:1] == ["notebooks"]:
        parser = _Parser(prog=wrapper, description=NOTEBOOKS_DESCRIPTION, epilog=_parameters_epilog(),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_notebooks_args(parser)
        args = parser.parse_args(argv[1:])
        args.command = "notebooks"
        prog = wrapper
    else:
        parser = build_parser()
        args = parser.parse_args(argv)
        prog = f"{parser.prog} {args.command}"
    args.prog = prog
    if getattr(args, "family", None) in FAMILY_OF and args.command == "run":
        args.family = FAMILY_OF[args.family]     # a notebook's name (bert_finetune) names its family
    command = {"run": cmd_run, "notebooks": cmd_notebooks, "report": cmd_report, "runs": cmd_runs,
               "clean": cmd_clean}[args.command]
    try:
        return command(args)
    except UsageError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except EbcoreError as err:
        print(f"{prog}: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
