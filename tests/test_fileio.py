"""Atomic writes: the old file or the new one, never half; usual permissions."""

from __future__ import annotations

import os
import stat

import pytest

from symbiote.fileio import atomic_path, write_text


def test_write_replaces_with_usual_permissions(tmp_path):
    p = tmp_path / "a.txt"
    write_text(p, "one")
    write_text(p, "two")
    assert p.read_text() == "two"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask
    assert [q.name for q in tmp_path.iterdir()] == ["a.txt"]  # no temporary left behind


def test_interrupted_write_keeps_the_old_file(tmp_path):
    p = tmp_path / "a.txt"
    write_text(p, "old")
    with pytest.raises(RuntimeError), atomic_path(p) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert p.read_text() == "old"
    assert [q.name for q in tmp_path.iterdir()] == ["a.txt"]
