"""tools/cpu_queue.sh: runs a job list one training at a time, skips finished configs, logs each job."""
import json
import os
import shlex
import subprocess
import sys

import pytest

from drlib import cli
from drlib.utils import REPO_ROOT


def test_cpu_queue_runs_the_list_and_skips_what_is_stored(tmp_path):
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("# a comment\n\na --model sasrec --seed 0 --set train.epochs=1\n"
                    "b --model sasrec --seed 0 --set train.epochs=1\n")       # b: the same config as a
    env = {**os.environ, "DRLIB_RESULTS": str(tmp_path / "results"), "DRLIB_RUNS": str(tmp_path / "runs"),
           "DATASET": "synthetic", "PROFILE": "smoke", "PYTHON": sys.executable, "OMP_NUM_THREADS": "1",
           "LOGS": str(tmp_path / "logs")}
    subprocess.run(["bash", str(REPO_ROOT / "tools" / "cpu_queue.sh"), str(jobs)], env=env, check=True,
                   timeout=300)
    (rec,) = (tmp_path / "results" / "main").glob("sasrec-synthetic-smoke-seed0-*.json")
    assert json.loads(rec.read_text())["timing"]["epochs"] == 1
    log_a = (tmp_path / "logs" / "q-a.log").read_text()
    log_b = (tmp_path / "logs" / "q-b.log").read_text()
    assert "test recall@5" in log_a and "stored" in log_b                     # b found a's record
    queue = (tmp_path / "logs" / "cpu-queue.log").read_text().splitlines()
    assert queue[-1].endswith("end b rc=0") and queue[-3].endswith("end a rc=0")
    # named jobs: only those run
    jobs.write_text("a --model sasrec --seed 1 --set train.epochs=1\nb --model sasrec --seed 2 --set train.epochs=1\n")
    subprocess.run(["bash", str(REPO_ROOT / "tools" / "cpu_queue.sh"), str(jobs), "b"], env=env, check=True,
                   timeout=300)
    assert [p.name.split("-")[3] for p in sorted((tmp_path / "results" / "main").glob("*.json"))] == ["seed0", "seed2"]
    assert (tmp_path / "logs" / "cpu-queue.log").read_text().splitlines()[-1].endswith("end b rc=0")


def _job_configs(line: str, dataset: str):
    """The configs ``tools/cpu_queue.sh`` would train for one job line (``name ARGS``) on ``dataset``."""
    name, rest = line.split(None, 1)
    args = cli.build_parser().parse_args(["train", "--dataset", dataset, "--profile", "cpu", "--no-progress",
                                          *shlex.split(rest)])
    return name, cli.configs_from_args(args)


def test_every_job_list_names_configs_that_exist():
    """A typo in a job list (a model, an ablation, a --set field) would otherwise show only when a queue, hours in,
    reaches that line. Every line of tools/jobs/*.txt must make its configs, on each dataset the list is run for."""
    lists = sorted((REPO_ROOT / "tools" / "jobs").glob("*.txt"))
    assert len(lists) >= 8
    for path in lists:
        datasets = ["instruments", "sports"] if path.stem == "other_datasets" else ["beauty"]
        lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        names = [ln.split()[0] for ln in lines]
        assert len(names) == len(set(names)), f"{path.name}: a job name twice"
        for ln in lines:
            for d in datasets:
                _, cfgs = _job_configs(ln, d)
                assert cfgs and all(c.data.dataset == d for c in cfgs), (path.name, ln)
    with pytest.raises((KeyError, ValueError)):
        _job_configs("x --model diffureason-s --seed 0 --experiment readings --ablation 'not a reading'", "beauty")
