import dataclasses
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from drlib import make_config, run
from drlib.config import apply_overrides
from drlib.data import item_popularity
from drlib.evaluate import compute_ranks, metrics_from_ranks
from drlib.runner import build_for, get_dataset
from drlib.cli import main as cli_main
from drlib.train import epoch_batches, fit
from drlib.utils import REPO_ROOT


def smoke(**kw):
    over = [f"{k}={v}" for k, v in kw.items()]
    return make_config("sasrec", "synthetic", "smoke", seed=0, overrides=over)


def test_overrides_parse_and_reject():
    cfg = apply_overrides(smoke(), ["train.lr=5e-4", "train.patience=none", "eval.ks=1,5,10", "train.bf16=true"])
    assert cfg.train.lr == 5e-4 and cfg.train.patience is None and cfg.eval.ks == (1, 5, 10) and cfg.train.bf16
    for bad, msg in [("train.lr", "SECTION.FIELD=VALUE"), ("trian.lr=1", "unknown section"),
                     ("train.lrr=1", "no field 'lrr'"), ("train.lr=fast", "expected a value of type float"),
                     ("train.lr=-1", "must be > 0"), ("model.d_model=33", "divisible"),
                     ("eval.select_metric=ndcg@20", "select_metric")]:
        with pytest.raises(ValueError, match=msg):
            apply_overrides(smoke(), [bad])
    with pytest.raises(KeyError, match="unknown profile"):
        make_config("sasrec", "synthetic", "laptop")


def test_hash_ignores_device_and_path_but_not_lr():
    a = smoke()
    assert a.config_hash == dataclasses.replace(a, train=dataclasses.replace(a.train, device="cpu")).config_hash
    assert a.config_hash == dataclasses.replace(a, data=dataclasses.replace(a.data, path="/x")).config_hash
    assert a.config_hash != apply_overrides(a, ["train.lr=1e-4"]).config_hash


def test_epoch_batches_cover_every_example_once():
    lengths = np.random.default_rng(0).integers(1, 20, size=1001)
    for bucket in (0, 3):
        b = epoch_batches(lengths, 64, torch.Generator().manual_seed(1), bucket)
        idx = torch.cat(b).numpy()
        assert sorted(idx.tolist()) == list(range(1001))
        assert max(len(x) for x in b) == 64


def test_smoke_training_learns_planted_structure(tmp_results):
    cfg = smoke()
    rec = run(cfg, progress=False, log=lambda s: None)
    ds = get_dataset(cfg)
    pop = torch.from_numpy(item_popularity(ds)).float()
    pop_ranks = compute_ranks(lambda x: pop.expand(len(x), -1).clone(), ds.test)
    pop_ndcg = metrics_from_ranks(pop_ranks)["ndcg@10"]
    assert rec["metrics"]["test"]["ndcg@10"] > pop_ndcg + 0.3, (rec["metrics"]["test"], pop_ndcg)
    for key in ("label", "config", "config_hash", "metrics", "timing", "env"):
        assert key in rec
    assert rec["label"] == "SASRec" and set(rec["metrics"]["test"]) >= {"recall@5", "recall@10", "ndcg@5", "ndcg@10"}
    assert {"train_seconds", "epochs", "train_ms_per_batch", "eval_seconds"} <= set(rec["timing"])
    path = tmp_results / "results" / "main" / f"{cfg.run_id}.json"
    assert json.loads(path.read_text())["config_hash"] == cfg.config_hash
    assert not list(path.parent.glob(".*tmp"))          # no temporary file left behind
    # a second call returns the stored record without training
    calls = []
    again = run(cfg, progress=False, log=calls.append)
    assert again == rec and calls and calls[0].startswith("stored")


@pytest.mark.parametrize("model", ["sasrec", pytest.param("diffureason-s two-stage + KL", marks=pytest.mark.slow)])
@pytest.mark.parametrize("mid_epoch", [False, True])
def test_killed_run_resumes_to_the_same_result(tmp_path, model, mid_epoch, monkeypatch):
    """Killed after an epoch, or (mid_epoch: a checkpoint after every batch) in the middle of the phase-switch
    epoch, the resumed run ends bit for bit where an uninterrupted one does."""
    import drlib.train as T
    if mid_epoch:
        monkeypatch.setattr(T, "CKPT_SECONDS", -1.0)
    cfg = smoke(**{"train.epochs": 4, "train.patience": "none"})
    if model != "sasrec":   # phases and a per-epoch reference policy must survive a resume too
        cfg = make_config("diffureason-s", "synthetic", "smoke", overrides=[
            "train.epochs=4", "train.patience=none", "model.module.two_stage_epochs=2",
            "model.module.kl_weight=0.1", "model.module.diffusion_steps=4"])
    ds = get_dataset(cfg)

    def train(ckpt, interrupt_after=None):
        def hook(epoch, rec):
            if interrupt_after is not None and epoch == interrupt_after and not mid_epoch:
                raise KeyboardInterrupt
        model = build_for(cfg, ds)
        if mid_epoch and interrupt_after is not None:      # die inside epoch 3 (0-based 2: the RL phase starts)
            n_batches = len(epoch_batches((ds.train_inputs != 0).sum(1), cfg.train.batch_size,
                                          torch.Generator(), cfg.train.length_buckets))
            calls, step = [0], model.compute_loss

            def dying(*a, **kw):
                calls[0] += 1
                if calls[0] == 2 * n_batches + n_batches // 2:
                    raise KeyboardInterrupt
                return step(*a, **kw)
            model.compute_loss = dying
        try:
            res = fit(model, ds, cfg.train, cfg.eval, seed=0, checkpoint=ckpt, progress=False,
                      on_epoch_end=hook, log=lambda s: None)
        except KeyboardInterrupt:
            return None, None
        return model, res

    logs = []
    ref_model, ref = train(tmp_path / "a.pt")
    assert train(tmp_path / "b.pt", interrupt_after=2) == (None, None)
    if mid_epoch:
        assert torch.load(tmp_path / "b.pt", weights_only=False)["state"]["partial"]["next_batch"] > 0
    model, res = train(tmp_path / "b.pt")
    assert res.epochs_run == 4 and [h["loss"] for h in res.history] == [h["loss"] for h in ref.history]
    assert {h["device"] for h in res.history} == {"cpu"}       # where each epoch ran, kept through the resume
    for (k, v), (_, w) in zip(ref_model.state_dict().items(), model.state_dict().items()):
        assert torch.equal(v, w), k


def test_cli_help_and_errors(capsys):
    env = {"PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-m", "drlib", "train", "--help"], capture_output=True, text=True,
                         cwd=REPO_ROOT, env=env)                   # the entry point itself, once
    assert out.returncode == 0 and "--set" in out.stdout and "train: epochs=" in out.stdout
    capsys.readouterr()
    assert cli_main(["train", "--profile", "smoke", "--set", "train.lr=abc"]) == 2
    assert "train.lr" in capsys.readouterr().err
    assert cli_main(["config", "--model", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_paper_profile_is_table5_and_cpu_profile_is_documented():
    c = make_config("sasrec", "beauty", "paper")
    m = c.model
    assert (m.d_model, m.n_layers, m.n_heads, m.d_ff, m.dropout, m.activation) == (256, 2, 2, 300, 0.5, "gelu")
    assert (c.train.epochs, c.train.batch_size, c.train.lr, c.data.max_len) == (300, 512, 1e-3, 20)
    cpu = make_config("sasrec", "beauty", "cpu")
    notes = (REPO_ROOT / "book" / "reproduction_notes.md").read_text()
    for value in (cpu.model.d_model, cpu.model.d_ff, cpu.model.dropout, cpu.train.lr, cpu.train.epochs):
        assert str(value) in notes, f"cpu-profile value {value} is not explained in the reproduction notes"


def test_long_epochs_log_progress_without_bars(monkeypatch):
    """With progress bars off, an epoch longer than NOTE_SECONDS logs batch-level lines (here: every batch)."""
    import drlib.train as T
    cfg = smoke(**{"train.epochs": 1})
    ds = get_dataset(cfg)
    lines = []
    monkeypatch.setattr(T, "NOTE_SECONDS", -1.0)
    fit(build_for(cfg, ds), ds, cfg.train, cfg.eval, progress=False, log=lines.append)
    notes = [s for s in lines if "s per batch" in s]
    assert notes and notes[0].startswith("epoch 1: batch 1/") and len(notes) == len(lines) - 1
    lines.clear()
    monkeypatch.setattr(T, "NOTE_SECONDS", 1e9)
    fit(build_for(cfg, ds), ds, cfg.train, cfg.eval, progress=False, log=lines.append)
    assert len(lines) == 1                                                  # only the epoch line


def test_runs_lists_unfinished_trainings(tmp_path, monkeypatch, capsys):
    """`python -m drlib runs` reads the checkpoints left in runs/: epochs done of the plan, the mid-epoch position,
    the best and last validation scores; an unreadable checkpoint is reported, not fatal."""
    import drlib.train as T
    from drlib.cli import main
    from drlib.results import unfinished_runs
    monkeypatch.setenv("DRLIB_RUNS", str(tmp_path / "runs"))
    assert main(["runs"]) == 0 and "no unfinished runs" in capsys.readouterr().out
    cfg = smoke(**{"train.epochs": 5, "train.patience": 4})
    ds = get_dataset(cfg)
    ckpt = tmp_path / "runs" / "main" / cfg.run_id / "checkpoint.pt"
    seen = []

    def stop(epoch, rec):
        seen.append(rec["ndcg@10"])
        if epoch == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        fit(build_for(cfg, ds), ds, cfg.train, cfg.eval, checkpoint=ckpt, progress=False, log=lambda s: None,
            on_epoch_end=stop)
    bad = tmp_path / "runs" / "ablation" / "broken-run" / "checkpoint.pt"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a checkpoint")
    rows = unfinished_runs()
    assert [r["run_id"] for r in rows] == [cfg.run_id, "broken-run"] and "error" in rows[1]
    r = rows[0]
    assert (r["epochs_done"], r["max_epochs"], r["patience"], r["batch"]) == (2, 5, 4, None)
    assert r["last"] == pytest.approx(seen[-1]) and r["best"] == pytest.approx(max(seen))
    assert r["best_epoch"] == 1 + int(np.argmax(seen)) and r["bad_epochs"] == int(seen[1] <= seen[0])
    assert [x["run_id"] for x in unfinished_runs("ablation")] == ["broken-run"]

    # killed inside epoch 3 with a checkpoint after every batch: the position is shown
    monkeypatch.setattr(T, "CKPT_SECONDS", -1.0)
    model = build_for(cfg, ds)
    step, calls = model.compute_loss, [0]

    def dying(*a, **kw):
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        return step(*a, **kw)
    model.compute_loss = dying
    with pytest.raises(KeyboardInterrupt):
        fit(model, ds, cfg.train, cfg.eval, checkpoint=ckpt, progress=False, log=lambda s: None)
    r = unfinished_runs("main")[0]
    n = len(epoch_batches((ds.train_inputs != 0).sum(1), cfg.train.batch_size, torch.Generator(),
                          cfg.train.length_buckets))
    assert (r["epochs_done"], r["batch"], r["n_batches"]) == (2, 2, n)
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert cfg.run_id in out and "2/5" in out and f"2/{n}" in out and "unreadable checkpoint" in out


def test_a_reader_that_goes_away_ends_the_command_quietly():
    """``python -m drlib readings | head``: the pipe closes before drlib writes; no traceback, exit status 0."""
    p = subprocess.Popen([sys.executable, "-m", "drlib", "config", "--list-models"], cwd=REPO_ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()                                   # before the child has imported torch, let alone printed
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 0 and "Traceback" not in err and "Broken" not in err, err


def test_time_the_process_was_stopped_is_not_training_time():
    """A run paused with kill -STOP (as the trainings are while the tests run) reports the minutes it computed: the
    pause is counted as stopped_seconds, not in the epoch's seconds, nor in the batch time."""
    cfg = smoke(**{"train.epochs": 3, "train.patience": None})
    ds = get_dataset(cfg)
    model = build_for(cfg, ds)
    step = model.compute_loss
    model.compute_loss = lambda x, y: (time.sleep(0.02), step(x, y))[1]     # epochs long enough to be stopped in
    ends = []

    def pause_the_next_epoch(epoch, rec):
        ends.append(time.perf_counter())
        if epoch == 1:     # a helper stops this process shortly after the second epoch starts, 2.5 s long
            subprocess.Popen(["sh", "-c", f"sleep 0.1; kill -STOP {os.getpid()}; sleep 2.5; kill -CONT {os.getpid()}"])
    res = fit(model, ds, cfg.train, cfg.eval, progress=False, on_epoch_end=pause_the_next_epoch, log=lambda s: None)
    wall = ends[1] - ends[0]
    assert wall > 2.5 and 2.0 < res.stopped_seconds < 3.0, (wall, res.stopped_seconds)
    assert 0 < res.history[1]["seconds"] < wall - 2.0                     # the second epoch, less its pause
    assert res.train_seconds == pytest.approx(sum(h["seconds"] for h in res.history))
    assert res.batch_seconds < res.train_seconds


def test_a_busy_process_is_not_taken_for_a_stopped_one():
    from drlib.utils import StoppedTime
    stopped = StoppedTime()
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < 3.0:              # pure Python holding the GIL, then a long torch operation
        n += 1
    torch.randn(1500, 1500) @ torch.randn(1500, 1500)
    assert stopped() == 0.0
    stopped.close()
    assert not stopped._thread.is_alive()


def test_a_longer_run_continues_a_finished_one_from_its_final_checkpoint(tmp_path):
    """A finished run keeps its last checkpoint; the same config with a larger epoch cap (or patience), run with
    extend, goes on from it and ends exactly where a run from scratch ends, naming the run it continued."""
    from drlib.runner import FINAL, extendable_run
    quiet = dict(progress=False, log=lambda s: None)
    short = smoke(**{"train.epochs": 2, "train.patience": "none"})
    longer = dataclasses.replace(smoke(**{"train.epochs": 4, "train.patience": "none"}), experiment="longer")
    roots = dict(results_root=tmp_path / "results", runs_root=tmp_path / "runs")
    run(short, **roots, **quiet)
    assert (tmp_path / "runs" / "main" / short.run_id / FINAL).exists()
    assert extendable_run(longer, **roots)[0]["run_id"] == short.run_id
    assert extendable_run(short, **roots) is None                            # not longer than itself
    assert extendable_run(smoke(**{"train.epochs": 4, "train.lr": 0.002}), **roots) is None   # another config
    lines = []
    cont = run(longer, **roots, extend=True, progress=False, log=lines.append)
    assert any(s.startswith("continued from ") and "after epoch 2" in s for s in lines)
    assert cont["continued_from"] == {"run_id": short.run_id, "experiment": "main", "epochs": 2}
    fresh = run(longer, results_root=tmp_path / "r2", runs_root=tmp_path / "u2", **quiet)
    assert "continued_from" not in fresh and cont["timing"]["epochs"] == fresh["timing"]["epochs"] == 4
    for key in ("loss", "ndcg@10"):
        assert [h[key] for h in cont["history"]] == [h[key] for h in fresh["history"]]
    assert cont["metrics"] == fresh["metrics"]
    lines.clear()
    other = dataclasses.replace(smoke(**{"train.epochs": 3, "train.lr": 0.002}), experiment="x")
    run(other, **roots, extend=True, progress=False, log=lines.append)       # nothing to continue: from scratch
    assert any("training from scratch" in s for s in lines)


def test_only_a_run_that_trains_at_least_as_long_in_both_respects_continues_another():
    from drlib.runner import _longer
    c = lambda epochs, patience: smoke(**{"train.epochs": epochs, "train.patience": patience})
    assert _longer(c(100, 20), c(100, 10)) and _longer(c(100, "none"), c(100, 20)) and _longer(c(120, 10), c(100, 10))
    assert not _longer(c(100, 10), c(100, 20)) and not _longer(c(100, 10), c(100, 10))
    assert not _longer(c(50, 20), c(100, 10)) and not _longer(c(100, 20), c(100, "none"))
