import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
_N_SLOW = pytest.StashKey[int]()         # how many slow tests the fast tier deselected


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true", default=False,
                     help="run the full tier: also the tests marked slow (notebooks, book build, browser, "
                          "long trainings). Without it only the fast tier runs. `make test` and CI use it.")


def pytest_configure(config):
    os.environ.setdefault("DRLIB_CACHE", str(Path(config.rootpath) / ".pytest_cache" / "drlib-cache"))


def _fast_tier(config) -> bool:
    """The fast tier (slow tests deselected) unless ``--full`` is given or the user chose with their own ``-m``."""
    return not (config.getoption("--full") or config.getoption("markexpr"))


def pytest_collection_modifyitems(config, items):
    if not _fast_tier(config):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]
        config.stash[_N_SLOW] = len(slow)


def pytest_terminal_summary(terminalreporter, config):
    n = config.stash.get(_N_SLOW, 0)
    if n:
        terminalreporter.write_line(f"fast tier: {n} tests marked slow were not run (`pytest --full` or "
                                    f"`make test` runs them)")


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
