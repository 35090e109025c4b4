"""Every notebook executes through papermill in the `ci` profile and writes its table and figures."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ebcore.study.families import FAMILIES
from ebcore.study.verdicts import VERDICTS

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = {fam.notebook: name for name, fam in FAMILIES.items()}   # notebook -> family
FIGURES = ("mask_distance_heatmaps", "mask_distance_curves", "accuracy_curves", "accuracy_by_run",
           "accuracy_vs_cost", "accuracy_vs_ratio", "cost_bars")


def test_source_notebooks_are_clean_and_parameterized():
    for name in NOTEBOOKS:
        nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), f"{name} has outputs"
        tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1 and "profile" in "".join(tagged[0]["source"])


def test_every_config_field_is_a_notebook_parameter():
    import ast

    from ebcore.study.experiment import ExperimentConfig
    for name in NOTEBOOKS:
        nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
        cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
        assigned = {t.id for node in ast.parse("".join(cell["source"])).body if isinstance(node, ast.Assign)
                    for t in node.targets}
        assert assigned == set(ExperimentConfig.parameter_names()), f"{name}: {assigned ^ set(ExperimentConfig.parameter_names())}"


def test_notebooks_match_their_generator(tmp_path, monkeypatch):
    """The committed notebooks are what scripts/build_notebooks.py writes (edit the generator, not the copies)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "scripts" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for family, (notebook, title) in module.NOTEBOOKS.items():
        built = module.build(family, notebook, title)
        committed = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())
        assert [c.source for c in built.cells] == ["".join(c["source"]) for c in committed["cells"]], notebook


@pytest.mark.slow
@pytest.mark.parametrize("notebook, study_family", NOTEBOOKS.items())
def test_notebook_runs_in_ci_profile(notebook, study_family, runs_root, ci_results):
    papermill = pytest.importorskip("papermill")
    from jupyter_client.kernelspec import KernelSpecManager
    if "ebcore" not in KernelSpecManager().find_kernel_specs():
        pytest.fail("the `ebcore` Jupyter kernel is not registered: run `bash scripts/setup.sh`")
    results = runs_root / "results"
    out = runs_root / f"{notebook}.ipynb"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / f"{notebook}.ipynb"), str(out), kernel_name="ebcore", cwd=str(ROOT / "notebooks"),
        parameters={"profile": "ci", "runs_dir": str(runs_root / "runs"), "results_dir": str(results)},
        progress_bar=False,
    )
    folder = results / study_family / "ci"
    summary = pd.read_csv(folder / "summary.csv")
    assert summary["run"].iloc[0] == "dense"
    assert summary["test acc % (mean)"].between(0, 100).all()
    pruned = summary["run"].map(lambda run: not run.startswith(("dense", "same-flops")))
    assert (summary.loc[pruned, "params ratio"] < 1).all() and pruned.sum() >= 6
    # The notebook shows the same numbers the pipeline computed (runs were reused, not recomputed).
    table = ci_results[study_family].table
    means = (100 * table.groupby("run", sort=False)["test_accuracy"].mean()).round(2)
    assert list(summary["test acc % (mean)"]) == list(means)
    text = (folder / "summary.md").read_text()
    assert "**Verdicts**" in text and "the ticket appears early" in text
    verdicts = pd.read_csv(folder / "verdicts.csv")
    assert set(verdicts["verdict"]) <= set(VERDICTS)
    for fig in FIGURES:
        assert (folder / f"{fig}.png").stat().st_size > 5000
    executed = json.loads(out.read_text())
    outputs = json.dumps([c.get("outputs", []) for c in executed["cells"]])
    assert "Verdicts" in json.dumps(executed["cells"]) and "reproduced" in outputs


def test_notebook_prose_types_no_number():
    """Every number a reader sees in a notebook's text is rendered from the resolved settings at run time
    (ebcore.study.prose); the source notebooks' Markdown holds none but the fixed 95 % of the intervals."""
    import re
    for name, family in NOTEBOOKS.items():
        nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "markdown":   # names such as "GPT-2" are names, not numbers
                text = "".join(cell["source"]).replace("95 %", "").replace(FAMILIES[family].title, "")
                assert not re.search(r"\d", text), f"{name}: a typed number in {text[:80]!r}"


def test_prose_numbers_come_from_the_settings():
    from ebcore.study import prose
    from ebcore.study.config import ExperimentConfig
    cpu = prose.deviations(ExperimentConfig("vit", profile="cpu").resolve())
    small = prose.deviations(ExperimentConfig("vit", profile="cpu", train_size=1234, epochs=3).resolve())
    assert "8,000 training images" in cpu and "10 epochs" in cpu
    assert "1,234 training images" in small and "3 epochs" in small and "changed from the profile" in small
    method = prose.method(ExperimentConfig("roberta", profile="ci", window=4, threshold=0.02).resolve())
    assert "last 4 masks" in method and "≤ 0.02" in method
