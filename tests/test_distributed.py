"""`torchrun --nproc_per_node=2 -m drlib train ...` on the CPU (gloo): the two processes train what one process
trains, rank 0 stores one record that names the job, and a job killed after a checkpoint resumes to the same
result as one never killed. In the fast tier: the job's code path in one process is the plain run, bit for bit."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

import drlib.train as T
from drlib import make_config, run
from drlib.runner import build_for, get_dataset
from drlib.train import fit
from drlib.utils import REPO_ROOT


def test_a_one_process_job_is_the_plain_run_bit_for_bit(tmp_path, monkeypatch):
    """In a process group of one (what `torchrun --nproc_per_node=1` makes) the job's path runs: gradients and logs
    through the all-reduce, validation and test through the gathered ranks, a checkpoint after every batch with
    every process's RNG state. It trains and ranks bit for bit as the plain run; the record names the job."""
    monkeypatch.setattr(T, "CKPT_SECONDS", -1.0)
    saves = []
    monkeypatch.setattr(T, "atomic_torch_save", lambda obj, path: saves.append(sorted(obj)))
    cfg = make_config("sasrec", "synthetic", "smoke", 0, overrides=["train.epochs=2"])
    kw = dict(progress=False, log=lambda s: None)
    plain = run(cfg, results_root=tmp_path / "plain", runs_root=tmp_path / "runs-plain", **kw)
    plain_saves, saves[:] = list(saves), []
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        job = run(cfg, results_root=tmp_path / "job", runs_root=tmp_path / "runs-job", **kw)
    finally:
        dist.destroy_process_group()
    assert len(plain_saves) > 2 and saves == [sorted(keys + ["rng_ranks"]) for keys in plain_saves]
    assert job["env"]["world_size"] == 1 and job["env"]["backend"] == "gloo" and "world_size" not in plain["env"]
    assert strip(job["history"]) == strip(plain["history"])
    assert job["metrics"] == plain["metrics"] and job["ranks"] == plain["ranks"]


def torchrun(tmp: Path, *overrides: str, wait: bool = True):
    """``torchrun --nproc_per_node=2 -m drlib train`` of SASRec's smoke profile on the CPU, records under
    ``tmp/results``, checkpoints under ``tmp/runs``."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "drlib", "train", "--model", "sasrec", "--profile", "smoke", "--device", "cpu", "--no-progress",
           "--results", str(tmp / "results")] + [a for o in overrides for a in ("--set", o)]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "DRLIB_RUNS": str(tmp / "runs"), "OMP_NUM_THREADS": "1"}
    if not wait:
        return subprocess.Popen(cmd, env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def strip(history: list) -> list:
    """The epochs' records without their wall-clock seconds."""
    return [{k: v for k, v in e.items() if k != "seconds"} for e in history]


def the_record(tmp: Path) -> dict:
    (path,) = (tmp / "results").glob("*/*.json")          # exactly one record
    return json.loads(path.read_text())


@pytest.mark.slow          # this and the next: four torchrun jobs of two processes, about a minute on 2 cores
def test_two_processes_train_what_one_process_trains(tmp_path):
    """Without dropout the only difference is float rounding: each process takes half of every batch and the
    all-reduced gradient is the whole batch's, so the losses follow one process's to 1e-6 (they agree to 1e-8 here;
    without the gradients' all-reduce, each process training on its halves, they miss by 4e-2 after one epoch)."""
    over = ["train.epochs=2", "model.dropout=0"]
    out = torchrun(tmp_path, *over)
    rec = the_record(tmp_path)
    assert rec["env"]["world_size"] == 2 and rec["env"]["backend"] == "gloo", rec["env"]
    assert rec["command"].startswith("torchrun --nproc_per_node=2 -m drlib train")
    assert out.count("epoch   1 loss") == 1                          # rank 0 alone logs
    assert not list((tmp_path / "runs").glob("*/*/checkpoint.pt"))   # finished: the checkpoint is gone
    assert len(list((tmp_path / "runs").glob("*/*/model.pt"))) == 1
    cfg = make_config("sasrec", "synthetic", "smoke", 0, overrides=over)
    assert rec["config_hash"] == cfg.config_hash                      # the process count is not in the hash
    ds = get_dataset(cfg)
    one = fit(build_for(cfg, ds), ds, cfg.train, cfg.eval, progress=False, log=lambda s: None)
    two = rec["history"]
    assert two[-1]["loss"] < two[0]["loss"] and rec["metrics"]["test"]["ndcg@10"] > 0.5       # it learns
    for a, b in zip(one.history, two, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-6) and b["ndcg@10"] == pytest.approx(a["ndcg@10"], abs=0.01)


@pytest.mark.slow
def test_a_killed_job_resumes_to_the_uninterrupted_result(tmp_path):
    """With dropout (each process its own noise): killed (SIGTERM to torchrun) after an epoch's checkpoint, the
    rerun continues from it and ends with the history and test metrics of a job never killed, bit for bit."""
    over = ["train.epochs=6", "train.patience=none"]
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    ref.mkdir(), killed.mkdir()
    torchrun(ref, *over)
    want = the_record(ref)

    job = torchrun(killed, *over, wait=False)
    deadline = time.time() + 240
    while not list((killed / "runs").glob("*/*/checkpoint.pt")):
        assert job.poll() is None and time.time() < deadline, job.communicate()[0][-3000:]
        time.sleep(0.02)
    job.send_signal(signal.SIGTERM)
    job.communicate(timeout=60)
    assert job.returncode != 0 and not list((killed / "results").glob("*/*.json"))
    (ckpt,) = (killed / "runs").glob("*/*/checkpoint.pt")
    saved = torch.load(ckpt, weights_only=False)
    done = saved["state"]["epoch"]
    assert 1 <= done < 6 and len(saved["rng_ranks"]) == 2
    assert not torch.equal(saved["rng_ranks"][0][0], saved["rng_ranks"][1][0])   # each process its own noise

    out = torchrun(killed, *over)
    assert f"after epoch {done}" in out and "not bit for bit" not in out
    got = the_record(killed)
    assert got["env"]["world_size"] == 2 and got["timing"]["epochs"] == 6
    assert strip(got["history"]) == strip(want["history"])
    assert got["metrics"] == want["metrics"] and got["ranks"] == want["ranks"]
