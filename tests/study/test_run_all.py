"""run_all.sh: a thin wrapper of `python -m ebcore notebooks`; bad arguments give one clear line and exit 2
before anything runs or is written; its set-up check has no pipe (no SIGPIPE flake under pipefail)."""
from __future__ import annotations

import os
import re
import subprocess
import time
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "run_all.sh"


def run_all(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "EBCORE_VENV": sys.prefix, "EBCORE_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": str(ROOT)}
    if not (Path(sys.prefix) / "bin" / "papermill").is_file():
        pytest.skip("run_all.sh needs papermill in the environment (bash scripts/setup.sh)")
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=180)


@pytest.mark.parametrize("args, message", [
    (("-p", "seed"), "argument -p/--parameter: expected 2 arguments"),
    (("--profile",), "argument --profile: expected one argument"),
    (("--only",), "argument --only: expected one argument"),
    (("--only", "nosuch"), "unknown notebook 'nosuch'; choose from vit, swin, gpt2, roberta, bert_finetune"),
    (("--profile", "huge"), "invalid choice: 'huge'"),
    (("-p", "nosuch", "1"), "unknown parameter 'nosuch'"),
    (("--seeds", "x"), "--seeds expects integers"),
    (("--frobnicate",), "unrecognized arguments: --frobnicate"),
    # settings are checked before any kernel starts (they used to fail 14-32 s later, with status 1)
    (("-p", "ratios", "notalist"), "ratios = 'notalist' is not valid"),
    (("-p", "epochs", "-3"), "epochs = -3 is not valid"),
    (("-p", "threshold", "abc"), "threshold = 'abc' is not valid"),
    (("--seeds", "1,1"), "seeds = [1, 1] is not valid"),
    (("--seeds", "-1"), "seeds = [-1] is not valid"),
])
def test_bad_arguments_give_one_clear_line(args, message, tmp_path):
    before = sorted(p for p in (ROOT / "results").rglob("*"))
    start = time.perf_counter()
    out = run_all(*args, tmp_path=tmp_path)
    seconds = time.perf_counter() - start
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("run_all.sh: error: ") and message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "unbound variable" not in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""
    assert sorted(p for p in (ROOT / "results").rglob("*")) == before
    assert seconds < 30, f"a refused call must not start a kernel ({seconds:.0f} s)"   # generous: shared machines


def test_help_lists_every_option(tmp_path):
    out = run_all("--help", tmp_path=tmp_path)
    assert out.returncode == 0
    assert out.stdout.startswith("usage: run_all.sh")
    for option in ("--profile", "--only", "--seeds", "-p NAME VALUE", "bert_finetune", "YAML"):
        assert option in out.stdout


def test_setup_check_has_no_pipe_and_wraps_the_cli():
    code = [line for line in SCRIPT.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = "\n".join(code)
    assert "set -euo pipefail" in text
    assert not re.search(r"\|\s*grep", text), "a pipe into grep under pipefail fails on SIGPIPE"
    assert "kernels/ebcore/kernel.json" in text
    assert re.search(r'exec "\$VENV/bin/python" -m ebcore notebooks "\$@"', text)
