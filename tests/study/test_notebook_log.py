"""What a notebook run logs (ebcore.study.notebooks): printed output and progress lines, but not the
text/plain of displays ("<IPython.core.display.Markdown object>", "<Figure size ...>") nor the kernel's
"running over TCP without encryption" warning. A tiny notebook runs in the `ebcore` kernel twice: with
papermill's `log_output` (the noise shows: the check can fail) and with the runner's settings."""
from __future__ import annotations

import logging
import sys

import nbformat
import pytest

from ebcore.study.notebooks import KERNEL, LOG_KWARGS, _papermill_execute

CELLS = [
    "from IPython.display import Markdown, display\ndisplay(Markdown('**a table**'))",
    "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nfig = plt.figure()\n"
    "plt.plot([1, 2])\nfig",
    "print('printed line')",
    "import time\nfrom ebcore.study.progress import tqdm\n"
    "for _ in tqdm(range(4), desc='vit dense seed 0: epochs', mininterval=0):\n    time.sleep(0.01)",
]
NOISE = ("<IPython.core.display.Markdown object>", "<Figure size", "without encryption")


@pytest.mark.slow
def test_notebook_log_holds_output_not_display_noise(tmp_path, capfd, caplog, monkeypatch):
    pytest.importorskip("papermill")
    from jupyter_client.kernelspec import KernelSpecManager
    if KERNEL not in KernelSpecManager().find_kernel_specs():
        pytest.fail("the `ebcore` Jupyter kernel is not registered: run `bash scripts/setup.sh`")
    monkeypatch.setenv("EBCORE_PROGRESS", "lines")   # as `ebcore notebooks` sets it for its kernels
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    source = tmp_path / "tiny.ipynb"
    nbformat.write(nb, str(source))

    def run(**kw) -> str:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="papermill"):
            _papermill_execute(str(source), str(tmp_path / "out.ipynb"), kernel_name=KERNEL, cwd=str(tmp_path),
                               progress_bar=False, **kw)
        out, err = capfd.readouterr()
        return out + err + "\n".join(r.getMessage() for r in caplog.records)

    noisy = run(log_output=True)          # papermill's own logging of everything: the noise is there
    assert [n for n in NOISE if n not in noisy] == []
    log = run(stdout_file=sys.stdout, stderr_file=sys.stderr, **LOG_KWARGS)
    assert not [n for n in NOISE if n in log], log
    assert "printed line" in log
    lines = [line for line in log.splitlines() if "vit dense seed 0: epochs" in line]
    assert lines and "4/4" in lines[-1] and "\r" not in log   # progress as whole lines, the last one complete
