"""The layout holds: the library never imports the study, the registries agree with each other and with the
files on disk, run-folder keys stay what they were (finished runs are found again), and the command line
starts without torch (so `--help` and a refused setting answer at once)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from ebcore.adapters import ADAPTERS
from ebcore.defaults import default_threshold
from ebcore.errors import UnsupportedModelError
from ebcore.study import paths
from ebcore.study.families import FAMILIES, get_spec
from ebcore.study.profiles import PROFILES, get_profile, report_order

ROOT = Path(__file__).resolve().parents[1]
# every (family, profile) run key, as computed before the registries were restructured
PINNED_KEYS = {'vit/ci': '57942c4f18', 'vit/cpu': '07fd1956c4', 'vit/gpu': 'c38cdbb972', 'vit/paper': '6a62697c71',
               'swin/ci': 'e5d196b098', 'swin/cpu': '1657b6236e', 'swin/gpu': 'e49c779ffe', 'swin/paper': '47fb8983a6',
               'gpt2/ci': 'd5ebd2c0a9', 'gpt2/cpu': '7057e292a1', 'gpt2/gpu': '46f96d9493', 'gpt2/paper': 'd094da7761',
               'roberta/ci': '692e9ce9b6', 'roberta/cpu': '4124f34c39', 'roberta/gpu': '857e699b33', 'roberta/paper': 'fc283a8911',
               'bert/ci': '355271605d', 'bert/cpu': 'b4d6503d8f', 'bert/gpu': 'fc8109f3de', 'bert/paper': '1627d5eb61'}
PACKAGE = ROOT / "ebcore"


def _imports(path: Path) -> set[str]:
    """Absolute names of the ebcore modules `path` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module.removesuffix(".__init__")
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                names.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                names.add(node.module)
    return {n for n in names if n.startswith("ebcore")}


def test_the_library_never_imports_the_study():
    library = [p for p in PACKAGE.rglob("*.py") if "study" not in p.relative_to(PACKAGE).parts
               and p.name != "__main__.py"]
    assert len(library) > 10
    offenders = {str(p.relative_to(ROOT)): sorted(n for n in _imports(p) if n.startswith("ebcore.study"))
                 for p in library}
    assert not {k: v for k, v in offenders.items() if v}


def test_no_module_is_over_500_lines():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert not {k: n for k, n in sizes.items() if n > 500}


def test_family_registry_agrees_with_adapters_notebooks_and_profiles():
    for name, fam in FAMILIES.items():
        assert fam.adapter in ADAPTERS, name
        assert (ROOT / "notebooks" / paths.notebook_file(fam.notebook)).is_file(), name
        for profile in PROFILES.values():   # every size class the family names exists in every profile
            assert fam.data_size in profile.data and fam.train_size in profile.train, (name, profile.name)
            assert fam.model_size in profile.models, (name, profile.name)
        for profile in PROFILES:
            spec = get_spec(name, profile)
            expected = fam.threshold if fam.threshold is not None else default_threshold(fam.adapter)
            assert spec.threshold == expected and spec.seeds == PROFILES[profile].seeds
            assert "check_every_steps" not in spec.train.loop_kwargs()


def test_thresholds_live_with_the_adapters():
    assert default_threshold("vit") == default_threshold("swin") == 0.1
    assert default_threshold("gpt2") == default_threshold("roberta") == default_threshold("bert") == 0.01
    with pytest.raises(UnsupportedModelError, match="no adapter"):
        default_threshold("bert_scratch")


@pytest.mark.parametrize("bad", ["nosuch", "", "CPU"])
def test_unknown_names_are_refused_with_the_choices(bad):
    with pytest.raises(ValueError, match="choose one of"):
        get_profile(bad)
    with pytest.raises(ValueError, match="choose one of"):
        get_spec(bad, "cpu")
    with pytest.raises(ValueError, match="choose one of"):
        get_spec("vit", bad)


def test_readme_order_puts_scratch_profiles_last():
    assert report_order(["ci", "paper", "mine", "cpu", "gpu"]) == ["cpu", "gpu", "paper", "mine", "ci"]


def test_run_keys_are_stable():
    """A key layout change would orphan every finished run: every family x profile key is pinned here."""
    keys = {f"{family}/{profile}": paths.run_key(get_spec(family, profile).key())
            for family in ("vit", "swin", "gpt2", "roberta", "bert") for profile in PROFILES}
    assert keys == PINNED_KEYS
    key = get_spec("gpt2", "cpu").key()
    assert "check_every_steps" not in key["train"] and key["data"]["max_length"] == 48
    assert get_spec("bert", "cpu").key()["train"]["check_every_steps"] == 4


@pytest.mark.parametrize("module", ["ebcore", "ebcore.study.cli", "ebcore.study.config"])
def test_the_command_line_starts_without_torch(module):
    """`--help` and refusing a bad setting must not wait for torch, transformers or Torch-Pruning (seconds)."""
    code = (f"import sys, {module}; heavy = [m for m in ('torch', 'transformers', 'torch_pruning', 'pandas') "
            "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_library_window_and_config_window_agree():
    from ebcore.defaults import WINDOW
    from ebcore.study.config import ExperimentConfig
    assert ExperimentConfig("vit").window == WINDOW
