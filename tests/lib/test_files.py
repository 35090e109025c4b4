"""ebcore.files: a failed write leaves the old file (or folder) as it was and no temporary file behind."""
from __future__ import annotations

import os

import pytest

from ebcore.files import atomic_folder, atomic_save, atomic_write_bytes, atomic_write_text


def test_write_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two" and os.listdir(path.parent) == ["a.txt"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.bin"
    atomic_write_bytes(path, b"old")

    def broken(tmp):
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_save(path, broken)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["a.bin"]


def test_only_if_changed_leaves_an_identical_file_alone(tmp_path):
    path = atomic_write_bytes(tmp_path / "a.bin", b"same")
    os.utime(path, (1, 1))
    atomic_write_bytes(path, b"same", only_if_changed=True)
    assert path.stat().st_mtime == 1
    atomic_write_bytes(path, b"new", only_if_changed=True)
    assert path.read_bytes() == b"new"


def test_folder_is_swapped_in_whole_or_not_at_all(tmp_path):
    target = tmp_path / "model"
    atomic_folder(target, lambda d: (d / "w").write_text("v1"))

    def broken(d):
        (d / "w").write_text("v2")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_folder(target, broken)
    assert (target / "w").read_text() == "v1" and os.listdir(tmp_path) == ["model"]
    atomic_folder(target, lambda d: (d / "x").write_text("v3"))
    assert os.listdir(target) == ["x"]


def test_new_files_get_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644
