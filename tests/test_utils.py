"""drlib.utils: crash-safe writes."""
import os
import stat

import pytest

from drlib.utils import atomic_write_bytes, atomic_write_json


def test_atomic_write_replaces_whole_file_with_usual_permissions(tmp_path):
    p = tmp_path / "sub" / "r.json"
    old = os.umask(0o022)
    try:
        atomic_write_json(p, {"a": 1})
        atomic_write_json(p, {"a": 2})
    finally:
        os.umask(old)
    assert p.read_text().strip().endswith("}") and '"a": 2' in p.read_text()
    assert stat.S_IMODE(p.stat().st_mode) == 0o644            # not mkstemp's 0600
    assert [q.name for q in p.parent.iterdir()] == ["r.json"]   # no temporary file left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "r.bin"
    atomic_write_bytes(p, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(p, object())     # fails inside the write
    assert p.read_bytes() == b"old" and [q.name for q in tmp_path.iterdir()] == ["r.bin"]
