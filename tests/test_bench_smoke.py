"""The benchmarks build their smoke size from the tests' own tiny models (ebcore.tiny, one registry for both):
`bench/prune_speed.py --size tiny` runs every family and the decoder end to end and writes its tables."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_prune_speed_runs_on_the_tiny_models(tmp_path):
    out = tmp_path / "tiny.md"
    args = ["--size", "tiny", "--batch-sizes", "2", "--seq-lens", "16", "--cost-seq-len", "16", "--cost-batch-size",
            "2", "--repeats", "1", "--min-repeats", "1", "--warmup", "0", "--cell-seconds", "0.1", "--train-steps",
            "1", "--train-warmup", "0", "--score-repeats", "1", "--prompt-len", "8", "--new-tokens", "4",
            "--gen-batch-sizes", "1", "--epoch-samples", "100", "--threads", "1", "--out", str(out)]
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "prune_speed.py"), *args], capture_output=True,
                         text=True, cwd=ROOT, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    table = pd.read_csv(out.with_suffix(".csv"))
    assert {"vit", "swin", "gpt2", "roberta"} <= set(table["family"])
    assert (table["param_ratio"] < 1).all() and (table["flops_ratio"] < 1).all()
    generate = pd.read_csv(tmp_path / "tiny_generate.csv")
    assert set(generate["family"]) == {"llama"} and (generate["flops_ratio"] < 1).all()
