"""The closed registries are the only places to touch: a toy run kind registered in the run-kind registry
appears in every table and figure with a nonzero cost, and a toy family (BERT trained from scratch: one
`Family` entry that reuses the `bert` adapter and the `text` size class) runs the ci pipeline and its notebook."""
from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from ebcore.study import kinds, prose, report
from ebcore.study.config import ExperimentConfig
from ebcore.study.experiment import run_experiment
from ebcore.study.families import FAMILIES

ROOT = Path(__file__).resolve().parents[2]


def _toy_mask(src):
    from ebcore.masks import random_mask
    return random_mask(src.ticket.structure, src.ratio, seed=src.seed + 17,
                       head_dims=[lm.head_dim for lm in src.ticket.layers], align=src.align)


TOY = kinds.RunKind("toy", "toy control", "#949494", "P", "control", "a second random mask, paid for by the whole "
                    "dense run (a toy entry for this test)", _toy_mask, lambda mode: "dense",
                    compare_with="early_bird")


def _figure_texts(fig) -> str:
    texts = [t.get_text() for ax in fig.axes for t in ax.texts + [ax.title, ax.xaxis.label, ax.yaxis.label]]
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            texts += [t.get_text() for t in legend.get_texts()]
        texts += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
    for legend in fig.legends:
        texts += [t.get_text() for t in legend.get_texts()]
    return "\n".join(texts)


def test_a_registered_run_kind_reaches_every_table_and_figure(tmp_path, monkeypatch):
    monkeypatch.setitem(kinds.RUN_KINDS, "toy", TOY)
    settings = ExperimentConfig("vit", profile="ci", epochs=2, ratios=(0.3,), controls=("toy",), seeds=(0,),
                                runs_dir=str(tmp_path / "runs"), results_dir=str(tmp_path / "results")).resolve()
    result = run_experiment(settings)
    toy = result.table[result.table.kind == "toy"]
    assert len(toy) == 1 and toy.total_flops.iloc[0] > 0 and toy.search_flops.iloc[0] > 0
    assert toy.run.iloc[0] in set(report.summary_table(result)["run"])
    assert any("− toy" in c for c in report.paired_table(result)["comparison"])
    assert "toy" in prose.method(settings)
    figures = report.make_figures(result)
    kind_figures = ("accuracy_by_run", "accuracy_vs_cost", "cost_bars")
    for name in kind_figures:
        text = _figure_texts(figures[name])
        assert "toy" in text, f"{name} does not show the toy run kind"


def test_run_kind_registration_refuses_incomplete_entries():
    with pytest.raises(ValueError, match="mask source"):
        kinds.register_run_kind(kinds.RunKind("bad", "bad", "red", "o", "control", "", None, lambda mode: "none"))
    with pytest.raises(ValueError, match="mask source"):
        kinds.register_run_kind(kinds.RunKind("bad", "bad", "red", "o", "ticket", "", None, lambda mode: "none"))
    with pytest.raises(ValueError, match="budget"):
        kinds.register_run_kind(kinds.RunKind("bad", "bad", "red", "o", "control", "", None, lambda mode: "none",
                                              start="init", budget="mode"))
    with pytest.raises(ValueError, match="search must name"):
        kinds.register_run_kind(kinds.RunKind("bad", "bad", "red", "o", "control", "", _toy_mask,
                                              lambda mode: "free lunch"))
    assert "bad" not in kinds.RUN_KINDS


PLUGIN = textwrap.dedent('''
    """A toy study family for the tests: BERT trained from scratch on the text size class."""
    from ebcore.study import families as F
    from ebcore.study import models as M


    def build_bert_scratch(spec, num_labels, vocab_size, pad_token_id):
        import transformers as T
        config = T.BertConfig(vocab_size=vocab_size, num_labels=num_labels, pad_token_id=pad_token_id, **spec.model)
        return T.BertForSequenceClassification(config)


    F.register_family(F.Family(
        "bert_scratch", "BERT from scratch", "bert_scratch", "bert", "text", "text", "text", F._bert_like_config,
        build_bert_scratch, F._lazy(".data", "minilm_tokenizer"), claim="BERT trained from scratch on a text task",
        published_note="a toy family of the tests: no published numbers.",
        deviations="- **Data**: {dataset} ({train} training snippets, {max_length} tokens); {layers} layers."))
''')


@pytest.mark.slow
def test_a_registered_family_runs_the_pipeline_and_its_notebook(tmp_path, monkeypatch):
    """Adding a family is one Family entry (here from a plug-in module named by EBCORE_STUDY_PLUGINS)."""
    papermill = pytest.importorskip("papermill")
    (tmp_path / "toy_family.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{ROOT}:" + __import__("os").environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("EBCORE_STUDY_PLUGINS", "toy_family")
    monkeypatch.delitem(sys.modules, "toy_family", raising=False)
    import toy_family  # noqa: F401  (registers the family in this process)
    try:
        params = dict(profile="ci", epochs=2, ratios=[0.3], controls=["random"], seeds=[0],
                      runs_dir=str(tmp_path / "runs"), results_dir=str(tmp_path / "results"))
        result = run_experiment(ExperimentConfig("bert_scratch", **params))
        assert set(result.table.kind) == {"dense", "early_bird", "random"}
        assert result.settings.threshold == 0.01        # the bert adapter's default: nothing in the library added
        # its notebook, from the same generator as the five committed ones
        import importlib.util
        spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "scripts" / "build_notebooks.py")
        builder = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(builder)
        import nbformat
        source, out = tmp_path / "bert_scratch.ipynb", tmp_path / "executed.ipynb"
        nbformat.write(builder.build("bert_scratch", "bert_scratch", "BERT from scratch"), str(source))
        papermill.execute_notebook(str(source), str(out), kernel_name="ebcore", cwd=str(ROOT / "notebooks"),
                                   parameters=params, progress_bar=False)
        executed = json.dumps(json.loads(out.read_text())["cells"])
        assert "BERT trained from scratch" in executed and "Verdicts" in executed
        summary = pd.read_csv(result.out_dir / "summary.csv")
        assert summary["run"].iloc[0] == "dense"
    finally:
        FAMILIES.pop("bert_scratch", None)
