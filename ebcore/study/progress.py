"""Progress bars that show in a terminal, in Jupyter and in a papermill log, without
`TqdmWarning: IProgress not found`.

`tqdm.auto` picks the widget bar inside any IPython kernel and warns when ipywidgets is missing; a
widget bar would also be invisible in papermill's log (`--log-output` streams text, not widgets) and
stored in executed notebooks as widget state. So ebcore uses three kinds of bar:
- widgets (`tqdm.notebook`): an interactive Jupyter session with ipywidgets installed;
- text (`tqdm.std`, redrawn in place with carriage returns): a terminal, or Jupyter without ipywidgets;
- lines (`LineBar`): a log file or papermill's log (`EBCORE_PROGRESS=lines`, which `ebcore notebooks`
  sets for its kernels): each redraw is a line of its own, at most every few seconds. Redraws with
  carriage returns are kept there as one line that shows only its first state (a bar "stuck at 0 %").
Outside a terminal the bar redraws at most every few seconds (`mininterval`), so logs stay small.
`announce` prints one line (a reused run, a ticket) without breaking a bar.

    from .progress import announce, tqdm
    for batch in tqdm(loader, desc="vit dense seed 0, epoch 1", leave=False): ...
    announce("vit seed 1: ticket at p=0.3, epoch 3, distance 0.081")
"""
from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

from tqdm import std as _std

__all__ = ["LineBar", "announce", "run_label", "tqdm", "use_widgets"]

LINE_INTERVAL = 5.0   # seconds between two lines of a LineBar (and two redraws of a bar outside a terminal)


def _choice() -> str:
    return os.environ.get("EBCORE_PROGRESS", "").lower()


def use_widgets() -> bool:
    """True only in a Jupyter kernel with ipywidgets installed (not a project dependency).
    `EBCORE_PROGRESS=text` or `lines` forces a text bar (`ebcore notebooks` sets `lines` for papermill's
    kernels), `EBCORE_PROGRESS=widgets` the widget bar."""
    choice = _choice()
    if choice in ("text", "lines", "widgets"):
        return choice == "widgets"
    return "ipykernel" in sys.modules and importlib.util.find_spec("ipywidgets") is not None


def use_lines(stream: Any) -> bool:
    """Whether bars on `stream` write whole lines (`LineBar`): `EBCORE_PROGRESS=lines`, or a stream that is
    neither a terminal nor a Jupyter kernel's output (a log file, a pipe)."""
    choice = _choice()
    if choice in ("text", "lines"):
        return choice == "lines"
    return not _is_terminal(stream) and "ipykernel" not in sys.modules


class LineBar(_std.tqdm):
    """tqdm's text bar for logs: every redraw is a line of its own ending in a newline, with no carriage
    returns or cursor moves; nothing is written before the first step (no "0 %" lines), and a bar that
    leaves shows its final state once. Redraws come at most every `mininterval` seconds."""

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if msg == "" or (msg is None and self.n == getattr(self, "_line_n", self.initial)):
            return False   # a clear (leave=False), or nothing new since the last line
        self.fp.write((self.__str__() if msg is None else msg).rstrip() + "\n")
        self.fp.flush()
        self._line_n = self.n
        return True

    def close(self) -> None:
        if not self.disable and self.leave:
            self.display()
        self.leave = False   # tqdm's close would add a newline (leave) or a carriage return (clear)
        super().close()


def run_label(family: str, run: str, seed: int, ratio: float | None = None) -> str:
    """How bars and announcements name a run: "vit dense seed 0", "vit early_bird continue p=0.3 seed 1"."""
    return f"{family} {run}" + (f" p={ratio:g}" if ratio else "") + f" seed {seed}"


def announce(message: str) -> None:
    """One line on stdout (a reused run, a ticket), written between progress-bar redraws."""
    _std.tqdm.write(message, file=sys.stdout)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def tqdm(*args: Any, **kwargs: Any) -> _std.tqdm:
    """A progress bar: `tqdm.notebook.tqdm` where widgets work (see `use_widgets`), a `LineBar` in logs
    (see `use_lines`), else `tqdm.std.tqdm`; on stderr, redrawn every 0.1 s in a terminal and every 5 s
    elsewhere (logs, notebooks)."""
    if use_widgets():
        from tqdm.notebook import tqdm as notebook_tqdm
        return notebook_tqdm(*args, **kwargs)
    stream = kwargs.get("file") or sys.stderr
    kwargs.setdefault("mininterval", 0.1 if _is_terminal(stream) else LINE_INTERVAL)
    kwargs.setdefault("dynamic_ncols", _is_terminal(stream))
    if not _is_terminal(stream):
        kwargs.setdefault("ncols", 100)
    return (LineBar if use_lines(stream) else _std.tqdm)(*args, **kwargs)
