"""Atomic file writes, in one place: a reader (or a crash) never sees half a file.

Every write goes to a temporary file in the same folder, then `os.replace` puts it in place (atomic on
POSIX and Windows within one file system); on any error the temporary file is removed and the old
file, if there was one, is left as it was.

    atomic_write_text(path, json.dumps(record))
    atomic_write_bytes(path, data, only_if_changed=True)   # leaves an identical file (and its mtime) alone
    atomic_save(path, lambda tmp: torch.save(obj, tmp))    # any writer that takes a path
    atomic_folder(path, write_files)                        # a whole folder, written then swapped in
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_save(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a temporary file next to `path`, then move it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 -> what open() would give (a shared cache stays readable)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes, only_if_changed: bool = False) -> Path:
    """Write `data` to `path` atomically; with `only_if_changed`, an identical file is left untouched."""
    path = Path(path)
    if only_if_changed and path.is_file() and path.read_bytes() == data:
        return path
    return atomic_save(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_folder(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_dir)` on a new temporary folder next to `path`, then put it in place of `path` (an
    existing folder there is removed only once the new one is complete)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        write(tmp)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
