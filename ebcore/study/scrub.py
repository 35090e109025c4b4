"""No machine paths in what is committed: the checkout's and the Python environment's absolute paths
are scrubbed out of executed notebooks (and any text), and progress-bar frames are collapsed.

    scrub_notebook("results/vit/cpu/vit.ipynb")   # "/home/me/ebcore/..." -> "./...", site-packages -> "<python>/..."
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterable

from .paths import repo_root

__all__ = ["machine_paths", "scrub_text", "scrub_notebook"]


def machine_paths(root: str | Path | None = None) -> list[tuple[str, str]]:
    """(absolute prefix, replacement) pairs, longest first: the Python environment's prefixes become
    "<python>" and the repository root becomes "."; both as given and with symlinks resolved."""
    base = Path(root) if root is not None else repo_root()
    pairs: dict[str, str] = {}
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        for form in {prefix, os.path.realpath(prefix)}:
            if len(form) > 1:
                pairs[form.rstrip("/")] = "<python>"
    for form in {str(base), os.path.realpath(base)}:
        if len(form) > 1:
            pairs[form.rstrip("/")] = "."   # the checkout wins when the environment lives inside it
    return sorted(pairs.items(), key=lambda kv: -len(kv[0]))


def scrub_text(text: str, pairs: Iterable[tuple[str, str]] | None = None) -> str:
    """`text` with every machine path prefix replaced (only at a path boundary: /a/b does not match /a/bc)."""
    for prefix, repl in (machine_paths() if pairs is None else pairs):
        text = re.sub(re.escape(prefix) + r"(?=[/\\'\"\s:,)\]]|$)", lambda _m, r=repl: r, text)
    return text


def _collapse_carriage_returns(text: str) -> str:
    """What a terminal shows of a stream: each line keeps the part after its last carriage return
    (progress bars redraw themselves with "\\r"; a stored notebook need not keep every frame)."""
    lines = text.split("\n")
    out = []
    for line in lines:
        parts = [p for p in line.split("\r") if p.strip()]
        out.append(parts[-1] if parts else "")
    return "\n".join(out)


def _scrub(value: Any, pairs: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        return scrub_text(value, pairs)
    if isinstance(value, list):
        return [_scrub(v, pairs) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, pairs) for k, v in value.items()}
    return value


def scrub_notebook(path: str | Path, root: str | Path | None = None, output_path: str | Path | None = None) -> Path:
    """Rewrite an executed notebook without machine paths (outputs, metadata, parameters), with progress
    bar frames collapsed in stream outputs; `output_path` (where the file will be moved) replaces
    papermill's record of the path it wrote to. Returns `path`."""
    path = Path(path)
    nb = json.loads(path.read_text(encoding="utf-8"))
    if output_path is not None and isinstance(nb.get("metadata", {}).get("papermill"), dict):
        nb["metadata"]["papermill"]["output_path"] = str(output_path)
    pairs = machine_paths(root)
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text = "".join(out.get("text", []))
                out["text"] = _collapse_carriage_returns(text).splitlines(keepends=True)
    nb = _scrub(nb, pairs)
    path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
