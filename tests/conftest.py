import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_configure(config):
    os.environ.setdefault("DRLIB_CACHE", str(Path(config.rootpath) / ".pytest_cache" / "drlib-cache"))


@pytest.fixture
def shared_data():
    if not (SHARED / "beauty" / "Beauty.txt").exists():
        pytest.skip("../shared/data not present")
    return SHARED


@pytest.fixture
def tmp_results(tmp_path, monkeypatch):
    monkeypatch.setenv("DRLIB_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("DRLIB_RUNS", str(tmp_path / "runs"))
    return tmp_path
