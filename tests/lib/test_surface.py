"""The public surface: `import ebcore as eb` exposes what the README's first example uses, loads its names
lazily (no torch until one is touched), and the library's errors are the library's only."""
from __future__ import annotations

import subprocess
import sys

import ebcore as eb
import ebcore.errors


def test_the_readme_example_names_are_top_level(tmp_path):
    from ebcore.tiny import tiny_batch, tiny_model
    model = tiny_model("bert")
    detector = eb.EarlyBirdDetector(ratios=(0.3,), threshold=1.0, window=2)
    detector.check(model, at=0)
    detector.check(model, at=1)
    ticket = detector.ticket(0.3)
    assert ticket is not None
    eb.prune_model(model, ticket.mask)
    eb.save_pruned(model, tmp_path / "t")
    again = eb.load_pruned(tmp_path / "t")
    batch = tiny_batch("bert")
    assert (again(**batch).logits - model.eval()(**batch).logits).abs().max() < 1e-5
    for name in ("EarlyBirdDetector", "save_pruned", "load_pruned", "draw_mask", "prune_model", "default_threshold"):
        assert name in eb.__all__ and name in dir(eb)


def test_unknown_names_raise_attribute_error():
    try:
        eb.no_such_name  # noqa: B018
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("an unknown name must raise AttributeError")


def test_import_is_lazy():
    code = "import sys, ebcore; assert 'torch' not in sys.modules; ebcore.Mask; assert 'torch' in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_study_errors_live_in_the_study():
    for name in ("UsageError", "DataNotFoundError", "DeviceUnavailableError"):
        assert not hasattr(ebcore.errors, name)
    from ebcore.study import errors
    assert issubclass(errors.SettingsError, errors.UsageError)
    assert issubclass(errors.DataNotFoundError, eb.EbcoreError)
