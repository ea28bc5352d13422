"""The repository stays cloneable: no tracked file over 3 MiB (committed weights, executed pages, records)."""
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 3 * 2 ** 20


def test_every_tracked_file_is_under_3_mib():
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = [ROOT / f for f in out.decode().split("\0") if f]
    assert files, "git ls-files listed nothing"
    big = {str(f.relative_to(ROOT)): f.stat().st_size for f in files if f.is_file() and f.stat().st_size > LIMIT}
    assert not big, (f"tracked files over 3 MiB: {big}; shrink them (fewer offline users in the explorer page, "
                     "float16 weights) or keep them out of the repository")
