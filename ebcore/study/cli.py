"""The command line: `python -m ebcore ...` or the `ebcore` console script (`run_all.sh` wraps `notebooks`).

    ebcore run vit --profile cpu --seeds 0,1,2 --set ratios=[0.2,0.4] --set criterion=taylor
    ebcore notebooks --profile ci --only vit,swin -p ratios '[0.2,0.4]'    # papermill, as run_all.sh
    ebcore report                     # rebuild results/README.md from what is on disk
    ebcore report --profile cpu       # ... and print that profile's section

`run` calls `ebcore.study.report.run_and_report` (the code path of the notebooks); `notebooks` executes the
notebooks themselves. Values of `--set NAME=VALUE` and `-p NAME VALUE` are YAML (lists, dicts, numbers,
null/None). Bad usage prints one line and exits with status 2; failed notebooks exit with status 1.

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
from typing import Any, Iterable, Mapping, NoReturn, Sequence

from ..errors import EbcoreError, UsageError
from .families import FAMILIES
from .notebooks import FAMILY_OF, KERNEL, NOTEBOOK_OF, check_kernel, run_notebooks, update_timings
from .paths import relative_to_repo, repo_root
from .profiles import PROFILES

__all__ = ["UsageError", "main", "parse_value", "parse_assignment", "parse_seeds", "resolve_notebooks",
           "check_parameters", "run_notebooks", "update_timings", "NOTEBOOK_OF", "KERNEL"]

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


# --- parsing --------------------------------------------------------------------------------------

def parse_value(text: str) -> Any:
    """A parameter value from the command line, read as YAML: "[0.2,0.4]" -> [0.2, 0.4], "3" -> 3,
    "1e-4" -> 0.0001, "null" / "None" -> None, "true" -> True; anything else stays a string."""
    if text.strip() in ("None", "none"):
        return None
    if _NUMBER.match(text.strip()):  # YAML 1.1 reads "1e-4" as a string
        number = float(text)
        return int(text) if re.fullmatch(r"[+-]?\d+", text.strip()) else number
    import yaml
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


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
    from .experiment import ExperimentConfig
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


def apply_seeds(params: dict[str, Any], seeds: tuple[int, ...] | None) -> list[dict[str, Any]]:
    """The parameter sets to run for `--seeds`: `seeds` when the config has that field, else `seed` (one
    seed only). `params` must not also set seed/seeds."""
    if seeds is None:
        return [params]
    clash = [k for k in ("seed", "seeds") if k in params]
    if clash:
        raise UsageError(f"give the seeds once: --seeds and the parameter {clash[0]!r} were both given")
    if "seeds" in parameter_names():
        return [{**params, "seeds": list(seeds)}]
    if len(seeds) > 1:  # one seed per results folder: several would overwrite each other's tables
        raise UsageError("this version's experiment config has no `seeds` field: give one seed (--seeds 1) "
                         "and run once per seed")
    return [{**params, "seed": seeds[0]}]


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
    params.setdefault("results_dir", str(root / "results"))
    params.setdefault("runs_dir", str(root / "runs"))
    return params


def cmd_run(args: argparse.Namespace) -> int:
    from .experiment import ExperimentConfig
    from .readme import gather
    from .report import run_and_report
    params: dict[str, Any] = dict(parse_assignment(a) for a in args.set or [])
    check_parameters(params, refused=("family", "profile"))
    if "progress" in parameter_names():
        params.setdefault("progress", True)
    root = repo_root()
    configs = []
    for p in apply_seeds(_default_dirs(params, root), parse_seeds(args.seeds) if args.seeds else None):
        try:
            configs.append(ExperimentConfig.from_params({"family": args.family, "profile": args.profile, **p},
                                                        strict=True))
        except (ValueError, TypeError) as err:
            raise UsageError(str(err)) from None
    for config in configs:
        written = run_and_report(config)
        print("written:", *sorted(relative_to_repo(p, root) for p in written.values()), sep="\n  ")
        md = written.get("summary_md")
        if md is not None and Path(md).is_file():
            print()
            print(Path(md).read_text())
    readme = gather(configs[0].results_dir)
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
    if "progress" in parameter_names():
        params.setdefault("progress", True)
    sets = apply_seeds(params, parse_seeds(args.seeds) if args.seeds else None)
    if "results_dir" in sets[0] and sets[0]["results_dir"] is not None:
        results_dir: Path | None = Path(sets[0]["results_dir"]).resolve()
        sets[0]["results_dir"] = str(results_dir)
    else:
        results_dir = None
    if sets[0].get("runs_dir"):
        sets[0]["runs_dir"] = str(Path(sets[0]["runs_dir"]).resolve())  # the notebooks run in notebooks/
    check_kernel()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    os.environ.setdefault("EBCORE_PROGRESS", "lines")  # inherited by the kernels: a line per redraw, for the log
    status = run_notebooks(notebooks, args.profile, sets[0], results_dir=results_dir)
    failed = [nb for nb, s in status.items() if s != "ok"]
    if failed:
        print(f"{args.prog}: FAILED notebooks: {', '.join(failed)} (each executed copy with its error is "
              f"<results>/<family>/{args.profile}/<notebook>.failed.ipynb; earlier results were kept)",
              file=sys.stderr)
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


# --- argument parsing -----------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """Bad usage: one line on stderr naming the problem and where help is, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


NOTEBOOKS_DESCRIPTION = (
    "Execute notebooks with papermill (kernel 'ebcore', working folder notebooks/, progress and cell output "
    "in the log); each executed copy goes to results/<family>/<profile>/<notebook>.ipynb, replaced only on "
    "success (a failed one is kept as <notebook>.failed.ipynb), timings to results/timings-<profile>.csv, "
    "then results/README.md is rebuilt from every profile on disk. Exits 1 naming the notebooks that "
    "failed, 2 on bad usage.")


def _add_notebooks_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="cpu", choices=PROFILES,
                   help="ci: tiny, fast check (git-ignored); cpu: small models on real data (default); "
                        "paper: the study's scale (GPU and network)")
    p.add_argument("--only", metavar="NOTEBOOKS",
                   help=f"comma-separated notebooks to run (default: all): {','.join(FAMILY_OF)} "
                        "(family names such as bert also work)")
    p.add_argument("--seeds", metavar="S,S,...", help="seeds, e.g. 0,1,2 (default: the notebooks' seed)")
    p.add_argument("-p", "--parameter", dest="param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="set a notebook parameter (any field of ebcore.study.config.ExperimentConfig); VALUE is "
                        "YAML: -p threshold 0.05 -p ratios '[0.2,0.4]' -p modes '[scratch, continue]'. "
                        "Repeat for several")


def build_parser(prog: str = "ebcore") -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="Early-bird lottery tickets for Transformers: run experiments, "
                     "execute the notebooks, gather results.", epilog="See `ebcore COMMAND --help`.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", help="run one family's experiment and write its tables and figures",
                         description="Run (or reuse) one family's experiment and write summary.md/csv and figures "
                         "under <results_dir>/<family>/<profile>/ through ebcore.study.report.run_and_report, the "
                         "notebooks' code path; then rebuild <results_dir>/README.md.")
    run.add_argument("family", choices=FAMILIES, help="model family")
    run.add_argument("--profile", default="cpu", choices=PROFILES, help="size profile (default: cpu)")
    run.add_argument("--seeds", metavar="S,S,...", help="seeds, e.g. 0,1,2 (default: the config's seed)")
    run.add_argument("--set", action="append", metavar="NAME=VALUE",
                     help="set an experiment parameter (a field of ExperimentConfig); VALUE is YAML: "
                          "--set ratios=[0.2,0.4] --set criterion=taylor --set results_dir=/tmp/r. "
                          "Repeat for several. Defaults: results_dir=<repo>/results, runs_dir=<repo>/runs")

    nb = sub.add_parser("notebooks", help="execute the notebooks with papermill (what run_all.sh does)",
                        description=NOTEBOOKS_DESCRIPTION)
    _add_notebooks_args(nb)

    rep = sub.add_parser("report", help="rebuild results/README.md from what is on disk",
                         description="Rebuild results/README.md from every profile's results on disk (cpu first, "
                         "then gpu and paper; ci only with --include-ci) and the timings-<profile>.csv files.")
    rep.add_argument("--results", default=str(repo_root() / "results"), help="results folder (default: the repo's)")
    rep.add_argument("--profile", choices=PROFILES, help="also print this profile's section")
    rep.add_argument("--include-ci", action="store_true", help="include the ci profile (git-ignored scratch)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m ebcore` and the `ebcore` console script; returns the exit status.

    With EBCORE_PROG set (run_all.sh sets it), `notebooks` is parsed under that name alone."""
    argv = list(sys.argv[1:] if argv is None else argv)
    wrapper = os.environ.get("EBCORE_PROG")
    if wrapper and argv[:1] == ["notebooks"]:
        parser = _Parser(prog=wrapper, description=NOTEBOOKS_DESCRIPTION)
        _add_notebooks_args(parser)
        args = parser.parse_args(argv[1:])
        args.command = "notebooks"
        prog = wrapper
    else:
        parser = build_parser()
        args = parser.parse_args(argv)
        prog = f"{parser.prog} {args.command}"
    args.prog = prog
    command = {"run": cmd_run, "notebooks": cmd_notebooks, "report": cmd_report}[args.command]
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
