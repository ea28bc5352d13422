"""drlib used outside this checkout: records go to --results DIR, $DRLIB_RESULTS or ./results, checkpoints to
$DRLIB_RUNS or the user cache; never into the install location."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import drlib.results as R
from drlib.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_an_installed_drlib_writes_to_the_current_folder_and_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("DRLIB_RESULTS", raising=False)
    monkeypatch.delenv("DRLIB_RUNS", raising=False)
    monkeypatch.setenv("DRLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert R.results_dir() == ROOT / "results" and R.runs_dir() == ROOT / "runs"        # from this checkout
    monkeypatch.setattr(R, "IN_CHECKOUT", False)                                         # as an installed copy
    assert R.results_dir() == tmp_path / "results" and R.runs_dir() == tmp_path / "cache" / "runs"
    monkeypatch.setenv("DRLIB_RESULTS", str(tmp_path / "mine"))
    assert R.results_dir() == tmp_path / "mine"


def test_train_stores_its_record_under_results_dir(tmp_results, tmp_path):
    out = tmp_path / "elsewhere"
    assert main(["train", "--model", "sasrec", "--profile", "smoke", "--set", "train.epochs=1", "--no-progress",
                 "--results", str(out)]) == 0
    (rec,) = out.glob("main/sasrec-synthetic-smoke-seed0-*.json")
    assert json.loads(rec.read_text())["config"]["model"] == "sasrec"
    assert not list((tmp_path / "results").glob("main/*.json"))                        # not the default folder


@pytest.mark.slow
def test_pip_installed_drlib_runs_from_another_folder(tmp_path):
    """`pip install .` (without dependencies, into a folder first on the path) and `python -m drlib train` from a
    folder outside the checkout store the record under ./results/ there."""
    target, work, src = tmp_path / "site", tmp_path / "work", tmp_path / "src"
    work.mkdir()
    shutil.copytree(ROOT / "drlib", src / "drlib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):                  # build from a copy: no build/ in the checkout
        shutil.copy(ROOT / name, src / name)
    has_setuptools = subprocess.run([sys.executable, "-c", "import setuptools"]).returncode == 0
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(src)]
                   + (["--no-build-isolation"] if has_setuptools else []), check=True, timeout=600)
    env = {**os.environ, "PYTHONPATH": str(target), "DRLIB_CACHE": str(tmp_path / "cache")}
    env.pop("DRLIB_RESULTS", None)
    env.pop("DRLIB_RUNS", None)
    where = subprocess.run([sys.executable, "-c", "import drlib; print(drlib.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(target)), where                                          # the installed copy
    done = subprocess.run([sys.executable, "-m", "drlib", "train", "--model", "sasrec", "--profile", "smoke",
                           "--set", "train.epochs=1", "--no-progress"], cwd=work, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(list((work / "results" / "main").glob("sasrec-synthetic-smoke-seed0-*.json"))) == 1
    assert list((tmp_path / "cache" / "runs" / "main").glob("sasrec-synthetic-smoke-seed0-*/model.pt"))
    assert not (target / "results").exists()
