"""Progress bars that show in a terminal, in Jupyter and in a papermill log, without
`TqdmWarning: IProgress not found`.

`tqdm.auto` picks the widget bar inside any IPython kernel and warns when ipywidgets is missing; a
widget bar would also be invisible in papermill's log (`--log-output` streams text, not widgets) and
stored in executed notebooks as widget state. So ebcore uses the text bar (`tqdm.std`) everywhere
except in an interactive Jupyter session with ipywidgets installed; Jupyter renders the text bar's
carriage returns in place, papermill logs it line by line. Outside a terminal the bar redraws at most
every few seconds (`mininterval`), so logs and stored notebooks stay small.

    from .progress import tqdm
    for batch in tqdm(loader, desc="epoch 1", leave=False): ...
"""
from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

from tqdm import std as _std

__all__ = ["tqdm", "use_widgets"]


def use_widgets() -> bool:
    """True only in a Jupyter kernel with ipywidgets installed (not a project dependency).
    `EBCORE_PROGRESS=text` forces the text bar (`ebcore notebooks` sets it for papermill's kernels),
    `EBCORE_PROGRESS=widgets` the widget bar."""
    choice = os.environ.get("EBCORE_PROGRESS", "").lower()
    if choice in ("text", "widgets"):
        return choice == "widgets"
    return "ipykernel" in sys.modules and importlib.util.find_spec("ipywidgets") is not None


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def tqdm(*args: Any, **kwargs: Any) -> _std.tqdm:
    """A progress bar: `tqdm.notebook.tqdm` where widgets work (see `use_widgets`), else `tqdm.std.tqdm`
    writing to stderr, redrawn every 0.1 s in a terminal and every 5 s elsewhere (logs, notebooks)."""
    if use_widgets():
        from tqdm.notebook import tqdm as notebook_tqdm
        return notebook_tqdm(*args, **kwargs)
    stream = kwargs.get("file") or sys.stderr
    kwargs.setdefault("mininterval", 0.1 if _is_terminal(stream) else 5.0)
    kwargs.setdefault("dynamic_ncols", _is_terminal(stream))
    if not _is_terminal(stream):
        kwargs.setdefault("ncols", 100)
    return _std.tqdm(*args, **kwargs)
