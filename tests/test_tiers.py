"""The two test tiers: the default (fast) run never includes the notebook executions, the book build or the browser
test, and ``--full`` (what ``make test`` and CI run) does."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
FULL_ONLY = ("test_book.py", "test_notebooks.py")     # whole modules in the full tier


@pytest.mark.parametrize("module", FULL_ONLY)
def test_full_tier_modules_are_marked_slow(module):
    spec = importlib.util.spec_from_file_location(f"_tiers_{Path(module).stem}", TESTS / module)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    marks = getattr(mod, "pytestmark", [])
    marks = marks if isinstance(marks, list) else [marks]
    assert "slow" in [m.name for m in marks], f"{module} must set `pytestmark = pytest.mark.slow`"


def _collect(*args: str) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          *args, *(f"tests/{m}" for m in FULL_ONLY), "tests/test_train.py"],
                         cwd=TESTS.parent, capture_output=True, text=True, timeout=600,
                         env={k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return [line for line in out.stdout.splitlines() if "::" in line]


def test_default_run_is_the_fast_tier_and_full_adds_the_slow_tests():
    fast, full = _collect(), _collect("--full")
    assert fast and set(fast) < set(full)
    for module in FULL_ONLY:
        assert not [t for t in fast if t.startswith(f"tests/{module}::")], module
        assert [t for t in full if t.startswith(f"tests/{module}::")], module
    # the long resume test keeps its SASRec smoke cases in the fast tier
    resume = "tests/test_train.py::test_killed_run_resumes_to_the_same_result"
    assert [t for t in fast if t.startswith(resume) and "sasrec" in t]
    assert not [t for t in fast if t.startswith(resume) and "diffureason" in t]
    assert [t for t in full if t.startswith(resume) and "diffureason" in t]
    # a user's own -m chooses instead of the tier
    only_slow = _collect("-m", "slow")
    assert only_slow and set(only_slow) == set(full) - set(fast)
