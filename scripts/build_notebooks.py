"""Write the source notebooks under notebooks/ (clean: no outputs), one per family of the registry, from one
template: the parameters cell lists every field of `ExperimentConfig` with its default and help (read from the
dataclass), and every number in the prose is rendered at run time from the resolved settings
(ebcore.study.prose), so nothing here can drift from what runs.

    .venv/bin/python scripts/build_notebooks.py        # rewrites notebooks/*.ipynb

Each notebook: a tagged `parameters` cell, the claim and the study's numbers, the method, where we deviate and
why, the run, the tables, the figures, and a verdict section generated from the results.
"""
from __future__ import annotations

from dataclasses import MISSING, fields
from pathlib import Path

import nbformat

from ebcore.study.config import ExperimentConfig
from ebcore.study.families import FAMILIES

ROOT = Path(__file__).resolve().parents[1]


def parameters_cell(family: str) -> str:
    """The tagged parameters cell: every ExperimentConfig field with its default and help, from the dataclass
    itself (nothing repeated here)."""
    lines = ["# Parameters (papermill: -p NAME VALUE; each is a field of ebcore.study.config.ExperimentConfig)",
             f"family = {family!r}"]
    rows = []
    for f in fields(ExperimentConfig):
        if f.name == "family":
            continue
        default = f.default if f.default is not MISSING else None
        default = list(default) if isinstance(default, tuple) else default
        rows.append((f"{f.name} = {default!r}", f.metadata.get("help", "")))
    width = max(len(code) for code, _ in rows) + 2
    return "\n".join(lines + [f"{code:<{width}}# {text}" for code, text in rows])


CODE_SETUP = """%matplotlib inline
from IPython.display import Markdown, display

from ebcore.study import prose
from ebcore.study.experiment import run_experiment
from ebcore.study.report import (headline, interpretation, make_figures, notebook_settings, paired_table,
                                 summary_table, threshold_table, verdict_table, write_report)

settings = notebook_settings(globals())   # every parameter above, checked and resolved into one record
display(Markdown(prose.introduction(settings)))"""


def build(family: str, notebook: str, title: str) -> nbformat.NotebookNode:
    intro = (f"# Early-bird tickets: {title}\n\n"
             "This notebook tests the study's claim for this model family with several seeds, controls and exact "
             "training costs, and prints a verdict per claim computed from its own results (last section). Every "
             "number in its text is rendered from the resolved settings below, at run time.")
    cells = [
        nbformat.v4.new_markdown_cell(intro),
        nbformat.v4.new_code_cell(parameters_cell(family), metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(CODE_SETUP),
        nbformat.v4.new_code_cell("display(Markdown(prose.method(settings)))\n"
                                  "display(Markdown(prose.deviations(settings)))\n"
                                  "settings.as_record()   # the whole record: sizes, schedule, rules, folders"),
        nbformat.v4.new_markdown_cell("## Run: the dense baseline with the detectors watching, then tickets and "
                                      "controls, for every seed (finished runs are reused)"),
        nbformat.v4.new_code_cell("result = run_experiment(settings)\n"
                                  "display(Markdown(prose.provenance(result)))"),
        nbformat.v4.new_markdown_cell("## What this run shows\n\nEvery run at its training FLOPs (search "
                                      "included), cheapest first; a ratio where no seed found a ticket is said "
                                      "here first."),
        nbformat.v4.new_code_cell("display(Markdown(headline(result)))"),
        nbformat.v4.new_markdown_cell(
            "## The experiment table\n\nOne row per run, over seeds: test accuracy mean, sd and 95 % CI; the "
            "ticket epoch (epochs of dense training until the ticket) with its range; costs relative to "
            "dense: parameters, FLOPs per sample, **total training FLOPs** (search + retraining), memory; "
            "wall time last."),
        nbformat.v4.new_code_cell("summary = summary_table(result)\nsummary"),
        nbformat.v4.new_markdown_cell("## Paired differences\n\nPer seed, the ticket against dense and against "
                                      "each control of the same ratio and mode; a 95 % interval that includes "
                                      "zero means the data cannot tell the two apart."),
        nbformat.v4.new_code_cell("paired_table(result)"),
        nbformat.v4.new_markdown_cell(
            "## Figures\n\nMask distances (heatmaps: every pair of checks; curves: consecutive checks with the "
            "threshold) are shown for the first seed; validation curves show every run on the global epoch axis "
            "(a retrained run from where it started) with the mean over seeds and its 95 % interval; accuracy "
            "figures show every seed (dots) and the mean with its 95 % interval."),
        nbformat.v4.new_code_cell("figures = make_figures(result)\n"
                                  "for name, fig in figures.items():\n"
                                  "    display(Markdown(f\"**{name.replace('_', ' ')}**\"))\n"
                                  "    display(fig)"),
        nbformat.v4.new_markdown_cell("## Verdicts\n\nOne row per claim, decided by the rule printed beside it "
                                      "(`ebcore.study.verdicts`); the text below is generated from the same table."),
        nbformat.v4.new_code_cell("verdict_table(result)"),
        nbformat.v4.new_code_cell("display(Markdown(interpretation(result)))"),
        nbformat.v4.new_markdown_cell("## Ticket epoch vs threshold\n\nBoth rules replayed on the stored masks "
                                      "of every seed (no retraining): the epoch of the ticket each threshold would "
                                      "have given, and how many seeds found one."),
        nbformat.v4.new_code_cell("threshold_table(result)"),
        nbformat.v4.new_code_cell("paths = write_report(result, summary, figures)\n"
                                  "print(\"written:\", *sorted(str(p) for p in paths.values()), sep=\"\\n  \")"),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"display_name": "Python (ebcore)", "language": "python", "name": "ebcore"},
                   "language_info": {"name": "python"}}
    return nb


NOTEBOOKS = {name: (fam.notebook, fam.title) for name, fam in FAMILIES.items()}


def main() -> None:
    for family, (notebook, title) in NOTEBOOKS.items():
        nb = build(family, notebook, title)
        for i, cell in enumerate(nb.cells):
            cell.id = f"{notebook}-{i:02d}"  # stable ids: regenerating changes no line it need not
        path = ROOT / "notebooks" / f"{notebook}.ipynb"
        nbformat.write(nb, str(path))
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
