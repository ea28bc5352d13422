"""Run one config end to end: data -> model -> fit -> validation/test -> results store.

>>> from drlib import make_config, run
>>> rec = run(make_config("sasrec", profile="smoke"))      # doctest: +SKIP
>>> rec["metrics"]["test"]["ndcg@10"]                       # doctest: +SKIP
"""
from __future__ import annotations

import datetime as _dt
import json
import shutil
from pathlib import Path
from typing import Callable

import torch

from .config import RunConfig
from .data import load_dataset
from .evaluate import timed_evaluate
from .models import build_model
from .results import load_record, result_path, runs_dir, save_record
from .train import fit
from .utils import configure_torch, env_info, pick_device, seed_everything

_DATA_CACHE: dict = {}


def get_dataset(cfg: RunConfig):
    """Load (and memoise within the process) the split dataset a config asks for."""
    key = (cfg.data.dataset, cfg.data.path, cfg.data.max_len, cfg.data.verify)
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = load_dataset(cfg.data.dataset, path=cfg.data.path, max_len=cfg.data.max_len,
                                        verify=cfg.data.verify)
    return _DATA_CACHE[key]


def run_dir(cfg: RunConfig, root: str | Path | None = None) -> Path:
    return Path(root or runs_dir()) / cfg.experiment / cfg.run_id


def build_for(cfg: RunConfig, ds):
    seed_everything(cfg.seed)
    return build_model(cfg.model_name, cfg.model, ds.n_items, ds.max_len)


def config_from_spec(spec: str, dataset: str = "beauty", profile: str = "cpu") -> RunConfig:
    """``MODEL:SEED[:TABLE3-ROW]`` (how the probes in ``tools/`` name a finished run) -> its config; a Table 3 row
    names a run of the ``ablation`` experiment, anything else one of ``main``."""
    from .config import make_config
    model_name, seed, *row = spec.split(":", 2)
    ablation = row[0] if row else None
    return make_config(model_name, dataset, profile, int(seed), experiment="ablation" if ablation else "main",
                       ablation=ablation)


def load_trained_model(cfg: RunConfig, runs_root: str | Path | None = None):
    """The best weights a finished run kept under ``runs/`` (not committed), or ``None``."""
    p = run_dir(cfg, runs_root) / "model.pt"
    if not p.exists():
        return None
    model = build_for(cfg, get_dataset(cfg))
    model.load_state_dict(torch.load(p, map_location="cpu"))
    return model.eval()


def run(cfg: RunConfig, force: bool = False, results_root: str | Path | None = None,
        runs_root: str | Path | None = None, progress: bool = True,
        log: Callable[[str], None] = print, on_epoch_end=None, command: str | None = None) -> dict:
    """Train and evaluate ``cfg``; store and return its record. A stored record is returned unless ``force``."""
    if not force:
        rec = load_record(cfg, results_root)
        if rec is not None:
            log(f"stored: {result_path(cfg, results_root)}")
            return rec
    configure_torch(cfg.train.num_threads)
    ds = get_dataset(cfg)
    model = build_for(cfg, ds)
    rdir = run_dir(cfg, runs_root)
    ckpt = rdir / "checkpoint.pt"
    if force and ckpt.exists():
        ckpt.unlink()
    log(f"run {cfg.run_id}: {cfg.label} on {cfg.data.dataset} ({ds.n_users} users, {ds.n_items} items, "
        f"{len(ds.train_targets)} training examples), profile {cfg.profile}, seed {cfg.seed}")
    res = fit(model, ds, cfg.train, cfg.eval, seed=cfg.seed, checkpoint=ckpt, progress=progress, log=log,
              on_epoch_end=on_epoch_end)
    device = pick_device(cfg.train.device)
    kw = dict(ks=cfg.eval.ks, batch_size=cfg.train.eval_batch_size, mask_history=cfg.eval.mask_history,
              device=device, autocast_bf16=cfg.train.bf16)
    valid, _ = timed_evaluate(model, ds.valid, **kw)
    test, test_seconds = timed_evaluate(model, ds.test, **kw)
    record = {
        "label": cfg.label,
        "run_id": cfg.run_id,
        "experiment": cfg.experiment,
        "config": cfg.to_dict(),
        "config_hash": cfg.config_hash,
        "metrics": {"valid": valid, "test": test},
        "timing": {"train_seconds": res.train_seconds, "epochs": res.epochs_run, "best_epoch": res.best_epoch,
                   "stopped_early": res.stopped_early, "train_ms_per_batch": res.train_ms_per_batch,
                   "seconds_per_epoch": res.train_seconds / max(res.epochs_run, 1),
                   "eval_seconds": test_seconds, "n_test_users": len(ds.test)},
        "history": res.history,
        "env": env_info(device),
        "command": command or (f"python -m drlib train --dataset {cfg.data.dataset} --model {cfg.model_name} "
                    f"--profile {cfg.profile} --seed {cfg.seed} --experiment {cfg.experiment}"
                    + (f" --ablation '{cfg.variant}'" if cfg.variant else "")),
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    record = json.loads(json.dumps(record))   # exactly what a later load returns (tuples -> lists)
    rdir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), rdir / "model.pt")
    path = save_record(record, cfg, results_root)
    if ckpt.exists():
        ckpt.unlink()
    log(f"test {' '.join(f'{k} {v:.4f}' for k, v in test.items())} -> {path}")
    return record


def clean_run(cfg: RunConfig, runs_root: str | Path | None = None) -> None:
    shutil.rmtree(run_dir(cfg, runs_root), ignore_errors=True)
