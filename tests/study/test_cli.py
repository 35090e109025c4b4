"""The command line: value parsing, bad usage (one line, exit 2), notebook runs that never destroy results
(papermill replaced by a fake), README.md rebuilt from every profile, the `run` command on the ci profile,
and no machine paths in written results."""
from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from ebcore.study import cli, paths, readme, report, scrub

ROOT = Path(__file__).resolve().parents[2]
# An absolute path into a checkout or an environment: "/x/y/results", "/x/.venv/lib/.../site-packages".
MACHINE_PATH = re.compile(r"(?<![\w.~/:<>])/(?:[\w.+-]+/)+?(?:results|runs|site-packages|\.venv|notebooks)(?:/|\b)")


def machine_paths_in(folder: Path, allowed: Path | None = None) -> list[str]:
    """'file: match' for every machine path (this checkout, this Python, or any absolute checkout path),
    except those under `allowed` (a temporary folder given on purpose)."""
    needles = [str(ROOT), os.path.realpath(ROOT), sys.prefix, os.path.realpath(sys.prefix)]
    hits = []
    for f in sorted(folder.rglob("*")):
        if not f.is_file() or f.suffix == ".png" or f.name.endswith(".failed.ipynb"):
            continue
        text = gzip.decompress(f.read_bytes()).decode() if f.suffix == ".gz" else f.read_text(errors="replace")
        found = [n for n in needles if n in text] + MACHINE_PATH.findall(text)
        hits += [f"{f.relative_to(folder)}: {m}" for m in found
                 if allowed is None or not (m.startswith(str(allowed)) or m.startswith(os.path.realpath(allowed)))]
    return hits


# --- parsing --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("[0.2,0.4]", [0.2, 0.4]), ("[0.2, 0.4]", [0.2, 0.4]), ("3", 3), ("0.01", 0.01), ("1e-4", 1e-4),
    ("None", None), ("null", None), ("true", True), ("taylor", "taylor"), ("[scratch, continue]", ["scratch", "continue"]),
    ("{train: 100}", {"train": 100}), ("cuda:0", "cuda:0"), ("/tmp/x", "/tmp/x"),
])
def test_parse_value_reads_yaml(text, value):
    assert cli.parse_value(text) == value
    assert type(cli.parse_value(text)) is type(value)


def test_parse_assignment_and_seeds():
    assert cli.parse_assignment("ratios=[0.2,0.4]") == ("ratios", [0.2, 0.4])
    assert cli.parse_assignment("device=cuda:0") == ("device", "cuda:0")
    assert cli.parse_seeds("0,1,2") == (0, 1, 2) and cli.parse_seeds("[3, 4]") == (3, 4)
    for bad in ("ratios", "=3"):
        with pytest.raises(cli.UsageError, match="NAME=VALUE"):
            cli.parse_assignment(bad)
    with pytest.raises(cli.UsageError, match="--seeds"):
        cli.parse_seeds("a,b")


def test_list_parameters_reach_papermill_as_lists(tmp_path, monkeypatch):
    """`-p ratios '[0.2,0.4]'` arrives in papermill's parameters as a list (it used to arrive as '[')."""
    seen = {}

    def fake_run(notebooks, profile, parameters, results_dir=None, **kw):
        seen.update(notebooks=notebooks, profile=profile, parameters=parameters)
        return {nb: "ok" for nb in notebooks}

    monkeypatch.setattr(cli, "run_notebooks", fake_run)
    monkeypatch.setattr(cli, "check_kernel", lambda name=cli.KERNEL: None)
    rc = cli.main(["notebooks", "--profile", "ci", "--only", "vit,bert", "-p", "ratios", "[0.2,0.4]",
                   "-p", "threshold", "0.05", "-p", "modes", "[scratch, continue]", "--seeds", "1"])
    assert rc == 0
    assert seen["notebooks"] == ["vit", "bert_finetune"] and seen["profile"] == "ci"
    p = seen["parameters"]
    assert p["ratios"] == [0.2, 0.4] and p["threshold"] == 0.05 and p["modes"] == ["scratch", "continue"]
    assert p.get("seeds", [p.get("seed")]) == [1]


def test_seeds_become_the_seeds_parameter(monkeypatch):
    seen = {}
    monkeypatch.setattr(cli, "run_notebooks", lambda nbs, profile, parameters, **kw: seen.update(parameters) or {})
    monkeypatch.setattr(cli, "check_kernel", lambda name=cli.KERNEL: None)
    rc = cli.main(["notebooks", "--only", "vit", "--seeds", "0,1,2"])
    if "seeds" in cli.parameter_names():
        assert rc == 0 and seen["seeds"] == [0, 1, 2]
    else:  # one seed per results folder
        assert rc == 2 and not seen


@pytest.mark.parametrize("argv, message", [
    (["notebooks", "-p", "seed"], "expected 2 arguments"),
    (["notebooks", "--profile"], "expected one argument"),
    (["notebooks", "--only", "nosuch"], "unknown notebook 'nosuch'"),
    (["notebooks", "-p", "nosuch", "1"], "unknown parameter 'nosuch'; valid names: seeds"),
    (["notebooks", "-p", "family", "vit"], "its own option"),
    (["notebooks", "--profile", "huge"], "invalid choice"),
    (["run", "nosuch"], "invalid choice"),
    (["run", "vit", "--set", "nosuch=1"], "unknown parameter 'nosuch'"),
    (["run", "vit", "--set", "ratios"], "NAME=VALUE"),
    (["run", "vit", "--set", "rule=sometimes"], "rule = 'sometimes' is not valid"),
    # every value a new user tried (issue: each started a kernel and failed 14-32 s later with status 1)
    (["notebooks", "-p", "ratios", "notalist"], "ratios = 'notalist' is not valid"),
    (["notebooks", "-p", "epochs", "-3"], "epochs = -3 is not valid"),
    (["notebooks", "-p", "threshold", "abc"], "threshold = 'abc' is not valid"),
    (["notebooks", "--seeds", "1,1"], "seeds = [1, 1] is not valid"),
    (["notebooks", "--seeds", "-1"], "seeds = [-1] is not valid"),
    (["run", "vit", "--set", "epochs=-3"], "epochs = -3 is not valid"),
    (["run", "vit", "--set", "precision=fp8"], "precision = 'fp8' is not valid"),
    (["run", "vit", "--set", "align=-3"], "align = -3 is not valid"),
    (["run", "vit", "--set", "control_ratios=[0.7]"], "not among ratios"),
    (["run", "vit", "--set", "ratios=[1.5]"], "1.5"),
    (["report", "--results", "/nonexistent/results"], "no results folder"),
    ([], "required"),
])
def test_bad_usage_is_one_line_and_exit_2(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(cli, "check_kernel", lambda name=cli.KERNEL: None)
    monkeypatch.setattr(cli, "run_notebooks", lambda *a, **k: pytest.fail("nothing may run on bad usage"))
    monkeypatch.setattr(report, "run_and_report", lambda *a, **k: pytest.fail("nothing may run on bad usage"))
    try:
        rc = cli.main(argv)
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_help_is_complete(capsys):
    for argv in (["--help"], ["run", "--help"], ["notebooks", "--help"], ["report", "--help"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--profile", "--only", "--seeds", "-p NAME VALUE", "--set NAME=VALUE", "--include-ci"):
        assert option in out


def test_console_script_and_module_entry_point():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["ebcore"] == "ebcore.study.cli:main"
    out = subprocess.run([sys.executable, "-m", "ebcore", "--help"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert out.returncode == 0 and "notebooks" in out.stdout and "report" in out.stdout


# --- results are never destroyed ------------------------------------------------------------------

def _committed_like(tmp_path: Path) -> Path:
    """A results folder like the committed one: cpu results of vit and gpt2 (summary, figure, executed
    notebook), the cpu timings, a paper result, and README.md rebuilt from them."""
    results = tmp_path / "results"
    for family, nb, profile in (("vit", "vit", "cpu"), ("gpt2", "gpt2", "cpu"), ("swin", "swin", "paper")):
        folder = results / family / profile
        folder.mkdir(parents=True)
        (folder / "summary.md").write_text(f"### {family} ({profile} profile)\n\n| run | acc |\n|---|---|\n| dense | 80 |\n")
        (folder / "accuracy_curves.png").write_bytes(b"png")
        (folder / f"{nb}.ipynb").write_text(json.dumps({"cells": [], "metadata": {"good": True}}))
    (results / "timings-cpu.csv").write_text("notebook,profile,seconds,status\nvit,cpu,645,ok\ngpt2,cpu,725,ok\n")
    readme.gather(results)
    return results


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _fake_execute(fail: bool, write_partial: bool = True):
    def execute(input_path, output_path, parameters, **kw):
        assert kw["kernel_name"] == "ebcore" and kw["progress_bar"] and kw["stdout_file"] and kw["stderr_file"]
        assert Path(kw["cwd"]).name == "notebooks"
        if write_partial:
            Path(output_path).write_text(json.dumps({"cells": [{"cell_type": "code", "source": "", "metadata": {},
                                                                "outputs": [{"output_type": "stream", "name": "stderr",
                                                                             "text": [f"{sys.prefix}/lib/x.py:1: warn\n"]}]}],
                                                     "metadata": {"parameters": parameters,
                                                                  "papermill": {"output_path": output_path}}}))
        if fail:
            raise RuntimeError("cell 3 raised DataNotFoundError")
    return execute


def test_failed_notebook_leaves_committed_results_untouched(tmp_path):
    results = _committed_like(tmp_path)
    before = _snapshot(results)
    status = cli.run_notebooks(["vit"], "cpu", {}, results_dir=results, root=ROOT,
                               execute=_fake_execute(fail=True), log=lambda s: None)
    assert status == {"vit": "FAILED"}
    after = _snapshot(results)
    failed = "vit/cpu/vit.failed.ipynb"
    assert failed in after and sys.prefix not in after.pop(failed).decode()
    assert after == before  # the good executed copy, the timings, README.md: all as they were


def test_failed_paper_call_and_empty_call_change_nothing(tmp_path):
    results = _committed_like(tmp_path)
    before = _snapshot(results)
    status = cli.run_notebooks(["vit", "gpt2"], "paper", {}, results_dir=results, root=ROOT,
                               execute=_fake_execute(fail=True, write_partial=False), log=lambda s: None)
    assert status == {"vit": "FAILED", "gpt2": "FAILED"}
    assert _snapshot(results) == before
    assert cli.run_notebooks([], "cpu", {}, results_dir=results, root=ROOT, log=lambda s: None) == {}
    assert _snapshot(results) == before


def test_only_nosuch_fails_before_anything_is_written(tmp_path, monkeypatch):
    results = _committed_like(tmp_path)
    before = _snapshot(results)
    monkeypatch.setattr(cli, "check_kernel", lambda name=cli.KERNEL: None)
    assert cli.main(["notebooks", "--only", "vit,nosuch", "-p", "results_dir", str(results)]) == 2
    assert _snapshot(results) == before


def test_successful_notebook_replaces_only_its_own_results(tmp_path):
    results = _committed_like(tmp_path)
    (results / "vit" / "cpu" / "vit.failed.ipynb").write_text("{}")   # from an earlier failure
    status = cli.run_notebooks(["vit"], "ci", {"ratios": [0.2, 0.4]}, results_dir=results, root=ROOT,
                               execute=_fake_execute(fail=False), log=lambda s: None)
    assert status == {"vit": "ok"}
    executed = json.loads((results / "vit" / "ci" / "vit.ipynb").read_text())
    assert executed["metadata"]["parameters"]["ratios"] == [0.2, 0.4]
    assert executed["metadata"]["parameters"]["profile"] == "ci"
    assert not list(results.rglob(".*.running.ipynb"))
    assert executed["metadata"]["papermill"]["output_path"] == f"{results.resolve()}/vit/ci/vit.ipynb"
    assert (results / "vit" / "cpu" / "vit.ipynb").read_text() == json.dumps({"cells": [], "metadata": {"good": True}})
    assert (results / "vit" / "cpu" / "vit.failed.ipynb").is_file()  # another profile's: untouched
    assert "ci" in (results / "timings-ci.csv").read_text()
    assert (results / "timings-cpu.csv").read_text().count("\n") == 3
    assert machine_paths_in(results / "vit" / "ci", allowed=tmp_path) == []
    # cpu timings: the row of the notebook that ran is replaced, the others kept
    cli.run_notebooks(["vit"], "cpu", {}, results_dir=results, root=ROOT, execute=_fake_execute(fail=False),
                      log=lambda s: None)
    rows = (results / "timings-cpu.csv").read_text().splitlines()
    assert rows[0] == "notebook,profile,seconds,status" and len(rows) == 3
    assert rows[1].startswith("vit,cpu,") and rows[1] != "vit,cpu,645,ok" and rows[2] == "gpt2,cpu,725,ok"
    assert not (results / "vit" / "cpu" / "vit.failed.ipynb").exists()  # a success clears the old failure


def test_gather_keeps_every_profile(tmp_path):
    results = _committed_like(tmp_path)
    ci = results / "roberta" / "ci"
    ci.mkdir(parents=True)
    (ci / "summary.md").write_text("### roberta (ci profile)\n\n| run |\n|---|\n| dense |\n")
    text = readme.gather(results).read_text()
    assert text.index("## cpu profile") < text.index("## paper profile")
    assert "### vit (cpu profile)" in text and "### gpt2 (cpu profile)" in text and "### swin (paper profile)" in text
    assert "| vit | cpu | 645 | ok |" in text and "ci profile" not in text
    assert "[vit.ipynb](vit/cpu/vit.ipynb)" in text and "[accuracy_curves.png](vit/cpu/accuracy_curves.png)" in text
    assert readme.gather(results).read_text() == text  # deterministic
    with_ci = readme.gather(results, include_ci=True).read_text()
    assert with_ci.index("## paper profile") < with_ci.index("## ci profile")


def test_gather_puts_the_verdicts_figure_at_the_top(tmp_path):
    results = _committed_like(tmp_path)
    assert not (results / paths.VERDICTS_OVERVIEW_PNG).exists()  # no verdicts.csv yet: no figure, no link
    for family, verdict in (("vit", "reproduced"), ("gpt2", "inconclusive")):
        pd.DataFrame({"claim": ["the ticket beats a random mask of the same size (p = 0.3)"], "study / anchor": ["EB > random"],
                      "ours (mean ± 95% CI)": ["EB − random 0.11 ± 0.10 pts"], "verdict": [verdict], "rule": ["r"]}
                     ).to_csv(results / family / "cpu" / paths.VERDICTS_CSV, index=False)
    text = readme.gather(results).read_text()
    link = f"]({paths.VERDICTS_OVERVIEW_PNG})"
    assert link in text and text.index(link) < text.index("## cpu profile")
    assert "**Margin ±1 pt.**" in text and "Bonferroni" in text  # the rule set above the verdict table
    assert (results / paths.VERDICTS_OVERVIEW_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- machine paths --------------------------------------------------------------------------------

def test_relative_to_repo(tmp_path):
    assert paths.relative_to_repo(ROOT / "results" / "vit", root=ROOT) == "results/vit"
    assert paths.relative_to_repo(ROOT, root=ROOT) == "."
    assert paths.relative_to_repo(tmp_path / "r", root=ROOT) == (tmp_path / "r").resolve().as_posix()
    assert paths.repo_root() == ROOT


def test_scrub_notebook_removes_machine_paths(tmp_path):
    root = tmp_path / "checkout"
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": "", "outputs": [
        {"output_type": "stream", "name": "stderr",
         "text": [f"{sys.prefix}/lib/python3/site-packages/tqdm/auto.py:21: TqdmWarning\n"]},
        {"output_type": "stream", "name": "stdout",
         "text": [f"written:\n  {root}/results/vit/cpu/summary.md\n", "\repochs: 10%\repochs: 50%\repochs: 100%\n"]},
        {"output_type": "execute_result", "metadata": {}, "execution_count": 1,
         "data": {"text/plain": [f"Config(results_dir='{root}/results', other='{root}x')"]}}]}],
        "metadata": {"papermill": {"parameters": {"runs_dir": f"{root}/runs"}}}}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    scrub.scrub_notebook(path, root)
    text = path.read_text()
    assert str(root) + "/" not in text and sys.prefix not in text
    out = json.loads(text)
    outputs = out["cells"][0]["outputs"]
    assert outputs[0]["text"][0].startswith("<python>/lib/python3/site-packages/tqdm")
    assert "./results/vit/cpu/summary.md" in "".join(outputs[1]["text"])
    assert "epochs: 100%\n" in outputs[1]["text"] and "epochs: 10%" not in "".join(outputs[1]["text"])
    assert f"'{root}x'" in outputs[2]["data"]["text/plain"][0]  # not a path boundary: left alone
    assert out["metadata"]["papermill"]["parameters"]["runs_dir"] == "./runs"


@pytest.mark.slow
def test_cli_run_ci_profile(tmp_path):
    """`python -m ebcore run vit --profile ci` writes the tables, figures and README (same code path as the
    notebooks), with no machine path in any written file but the temporary folders given on purpose."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "ebcore", "run", "vit", "--profile", "ci", "--set",
                          f"runs_dir={tmp_path / 'runs'}", "--set", f"results_dir={tmp_path / 'results'}",
                          "--set", "ratios=[0.3,0.5]"],
                         cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    # ratios differ from the profile's: the run has its own folder, never the profile's
    assert not (tmp_path / "results" / "vit" / "ci").exists()
    folder, = (tmp_path / "results" / "vit").glob("ci+*")
    for name in ("summary.md", "summary.csv", "mask_distance_curves.png", "config.json"):
        assert (folder / name).is_file(), name
    assert json.loads((folder / "config.json").read_text())["overrides"] == {"ratios": [0.3, 0.5]}
    assert "### vit (ci profile)" in out.stdout and "p=0.5" in (folder / "summary.md").read_text()
    text = readme.gather(tmp_path / "results", include_ci=True).read_text()
    assert "Results with changed settings" in text and f"vit/{folder.name}" in text
    hits = machine_paths_in(tmp_path / "results", allowed=tmp_path)
    assert hits == [], hits


def test_results_readme_summarizes_profile_folders_and_names_the_others(tmp_path):
    results = _committed_like(tmp_path)
    other = results / "vit" / "cpu+1234abcd"
    other.mkdir()
    (other / "summary.md").write_text("### vit (cpu profile)\n\n| run |\n|---|\n| dense (2 epochs) |\n")
    text = readme.gather(results).read_text()
    assert "dense (2 epochs)" not in text and "[vit/cpu+1234abcd](vit/cpu+1234abcd/summary.md)" in text
    assert "## cpu+1234abcd profile" not in text


def test_dry_run_prints_the_plan_and_makes_nothing(tmp_path, capsys):
    rc = cli.main(["run", "vit", "--profile", "ci", "--dry-run", "--set", "epochs=2", "--set",
                   f"results_dir={tmp_path / 'r'}", "--set", f"runs_dir={tmp_path / 'x'}"])
    out = capsys.readouterr().out
    assert rc == 0 and "vit (ci profile)" in out and "ci+" in out and "runs per seed" in out
    assert not (tmp_path / "r").exists() and not (tmp_path / "x").exists()
    rc = cli.main(["notebooks", "--profile", "ci", "--only", "vit,gpt2", "--dry-run", "-p", "results_dir",
                   str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert rc == 0 and "vit (ci profile)" in out and "gpt2 (ci profile)" in out and not (tmp_path / "r").exists()


def _fake_runs(root: Path) -> None:
    for family, profile, seed, name, files in (
            ("vit", "ci", 0, "dense-aaaa", ["params.json", "result.json"]),
            ("vit", "ci", 0, "early_bird-continue-p0.3-bbbb", ["params.json", "checkpoint.pt"]),
            ("vit", "cpu", 1, "dense-cccc", ["params.json"]),
            ("gpt2", "ci", 0, "dense-dddd", ["params.json", "result.json"])):
        folder = root / family / profile / f"seed{seed}" / name
        folder.mkdir(parents=True)
        for f in files:
            (folder / f).write_text("{}")


def test_runs_lists_and_clean_removes_only_what_was_asked(tmp_path, capsys):
    _fake_runs(tmp_path / "runs")
    assert cli.main(["runs", "--runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "4 run folders" in out and "finished" in out and "interrupted" in out and "started" in out
    assert cli.main(["runs", "--runs", str(tmp_path / "runs"), "--family", "vit", "--profile", "ci"]) == 0
    assert "2 run folders" in capsys.readouterr().out
    # without --yes: a list, nothing removed; with no filter: refused
    assert cli.main(["clean", "--runs", str(tmp_path / "runs"), "--family", "vit", "--profile", "ci"]) == 0
    assert "add --yes" in capsys.readouterr().out and len(list((tmp_path / "runs").glob("*/*/seed*/*"))) == 4
    assert cli.main(["clean", "--runs", str(tmp_path / "runs")]) == 2
    assert cli.main(["clean", "--runs", str(tmp_path / "runs"), "--state", "interrupted", "--yes"]) == 0
    left = sorted(p.name for p in (tmp_path / "runs").glob("*/*/seed*/*"))
    assert left == ["dense-aaaa", "dense-cccc", "dense-dddd"]


def test_committed_results_hold_no_machine_paths():
    hits = machine_paths_in(ROOT / "results")
    assert hits == [], hits[:10]


# --- progress -------------------------------------------------------------------------------------

def test_progress_bar_is_text_in_a_kernel_without_widgets(monkeypatch, capsys):
    """Inside a Jupyter kernel without ipywidgets (papermill's case), the bar is tqdm.std, writes text and
    raises no `TqdmWarning: IProgress not found`."""
    import importlib.util
    import types
    import warnings

    from tqdm import std

    from ebcore.study import progress
    monkeypatch.delenv("EBCORE_PROGRESS", raising=False)
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ipywidgets" else real_find_spec(name, *a))
    assert progress.use_widgets() is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bar = progress.tqdm(range(3), desc="epochs")
        assert type(bar) is std.tqdm
        list(bar)
    assert "epochs: 100%" in capsys.readouterr().err
    monkeypatch.setenv("EBCORE_PROGRESS", "text")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    assert progress.use_widgets() is False
