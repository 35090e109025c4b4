"""The layout holds: the library never imports the study, the registries agree with each other and with the
files on disk, and run-folder keys stay what they were (finished runs are found again)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ebcore.defaults import THRESHOLDS
from ebcore.study import paths
from ebcore.study.families import FAMILIES, get_spec
from ebcore.study.profiles import PROFILES, get_profile, report_order

ROOT = Path(__file__).resolve().parents[1]
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


def test_family_registry_agrees_with_thresholds_notebooks_and_profiles():
    assert set(FAMILIES) <= set(THRESHOLDS)  # the library also knows families the study does not run (decoders)
    for name, fam in FAMILIES.items():
        assert (ROOT / "notebooks" / paths.notebook_file(fam.notebook)).is_file(), name
        assert set(fam.model) == set(fam.data) == set(fam.train) == set(PROFILES), name
        for profile in PROFILES:
            spec = get_spec(name, profile)
            assert spec.threshold == THRESHOLDS[name] and spec.seeds == PROFILES[profile].seeds
            assert "check_every_steps" not in spec.train.loop_kwargs()


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
    """A key layout change would orphan every finished run: the keys of two specs are pinned here
    (as computed before the registry was typed)."""
    assert paths.run_key(get_spec("vit", "ci").key()) == "d1310e5b56"
    assert paths.run_key(get_spec("bert", "cpu").key()) == "af10024edf"
    key = get_spec("gpt2", "cpu").key()
    assert "check_every_steps" not in key["train"] and key["data"]["max_length"] == 48
    assert get_spec("bert", "cpu").key()["train"]["check_every_steps"] == 4
