"""Run one config end to end: data -> model -> fit -> validation/test -> results store.

>>> from drlib import make_config, run
>>> rec = run(make_config("sasrec", profile="smoke"))      # doctest: +SKIP
>>> rec["metrics"]["test"]["ndcg@10"]                       # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Callable

import torch

from .config import RunConfig
from .data import UserFile, load_dataset
from .evaluate import timed_evaluate
from .paired import encode_ranks
from .registry import build_model, config_from_record
from .results import find_run_record, load_record, read_record, result_path, results_dir, runs_dir, write_record
from .train import _quiet, fit
from .utils import barrier, configure_torch, init_distributed, pick_device, repo_relative, seed_everything

_DATA_CACHE: dict = {}


def get_dataset(cfg: RunConfig):
    """Load (and memoise within the process) the split dataset a config asks for; a config of your own file
    (``data.file_*``) reads that file as the config describes it."""
    d = cfg.data
    if d not in _DATA_CACHE:
        file = (UserFile(d.path, d.file_sha256, d.file_format, d.file_kcore or 0, d.file_min_rating)
                if d.file_sha256 else None)
        _DATA_CACHE[d] = load_dataset(d.dataset, path=d.path, max_len=d.max_len, verify=d.verify, file=file)
    return _DATA_CACHE[d]


def run_dir(cfg: RunConfig, root: str | Path | None = None) -> Path:
    return Path(root or runs_dir()) / cfg.experiment / cfg.run_id


def build_for(cfg: RunConfig, ds):
    """The model of ``cfg`` for dataset ``ds``, seeded; Semantic IDs built from a trained model's item table
    (``sid_source="collaborative"``) reach it through :func:`collaborative_item_table`."""
    seed_everything(cfg.seed)
    return build_model(cfg.model_name, cfg.model, ds.n_items, ds.max_len, item_table=collaborative_item_table)


def load_trained_model(cfg: RunConfig, runs_root: str | Path | None = None):
    """The best weights a finished run kept under ``runs/`` (not committed), or ``None``."""
    p = run_dir(cfg, runs_root) / "model.pt"
    if not p.exists():
        return None
    model = build_for(cfg, get_dataset(cfg))
    model.load_state_dict(torch.load(p, map_location="cpu"))
    return model.eval()


def collaborative_item_table(run_id: str, results_root=None, runs_root=None) -> tuple[torch.Tensor, dict]:
    """``(item table [n_items + 1, d], info)`` of the trained backbone of the finished run ``run_id``: what the
    collaborative Semantic IDs are built from (:func:`drlib.sid.sources.load_features`)."""
    rec_path, rec = find_run_record(run_id, results_root)
    cfg = config_from_record(rec)
    weights = run_dir(cfg, runs_root) / "model.pt"
    if not weights.exists():
        cmd = rec.get("command") or (f"python -m drlib train --dataset {cfg.data.dataset} --model "
                                     f"{cfg.model_name} --profile {cfg.profile} --seed {cfg.seed}")
        raise FileNotFoundError(f"the trained weights of run {run_id} are missing: {weights} does not exist "
                                f"(runs/ is not committed). Retrain the run with `{cmd} --force` (its record is "
                                f"{rec_path}), or pass --collab-run with a run whose weights exist.")
    model = load_trained_model(cfg, runs_root)
    backbone = getattr(model, "backbone", model)
    with torch.no_grad():
        table = backbone.item_embeddings().detach().to("cpu", torch.float32).clone()
    info = {"run_id": run_id, "label": rec.get("label"), "config_hash": rec.get("config_hash"),
            "record": repo_relative(rec_path), "weights": repo_relative(weights),
            "backbone": type(backbone).__name__,
            "table_shape": list(table.shape)}
    return table, info


FINAL = "final.pt"   # a finished run's last checkpoint, kept in runs/ so that a longer run can continue it


def _but_length(cfg: RunConfig) -> str:
    """The run id ``cfg`` would have without ``train.patience`` and ``train.epochs``: equal for runs that differ
    only in how long they may train."""
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, patience=None, epochs=1)).run_id


def _longer(new: RunConfig, old: RunConfig) -> bool:
    """``new`` trains at least as long as ``old`` in both respects and longer in one (patience ``None``: never
    stops early): then a run of ``new`` repeats ``old``'s epoch for epoch up to where ``old`` stopped."""
    pat = lambda c: float("inf") if c.train.patience is None else c.train.patience
    mine, theirs = (pat(new), new.train.epochs), (pat(old), old.train.epochs)
    return mine[0] >= theirs[0] and mine[1] >= theirs[1] and mine != theirs


def extendable_run(cfg: RunConfig, results_root: str | Path | None = None,
                   runs_root: str | Path | None = None) -> tuple[dict, Path] | None:
    """``(record, final checkpoint)`` of the finished run that ``cfg`` can continue instead of training from
    scratch: the same config but for a smaller ``train.patience`` or ``train.epochs`` (:func:`_longer`), in any
    experiment, whose final checkpoint (:data:`FINAL`) is kept under ``runs/``; the one that ran most epochs.
    ``None`` when there is none (runs finished before final checkpoints were kept have none)."""
    key, found = _but_length(cfg), None
    for fin in sorted(Path(runs_root or runs_dir()).glob(f"*/*/{FINAL}")):
        path = Path(results_root or results_dir()) / fin.parent.parent.name / f"{fin.parent.name}.json"
        if not path.exists():
            continue
        rec = read_record(path)
        c = rec.get("config") or {}
        if (c.get("model"), c.get("dataset"), c.get("seed")) != (cfg.model_name, cfg.data.dataset, cfg.seed):
            continue
        try:
            old = config_from_record(rec)
        except (ValueError, KeyError):
            continue                              # a record from before fields that now enter the hash
        if _but_length(old) == key and _longer(cfg, old) and (
                found is None or rec["timing"]["epochs"] > found[0]["timing"]["epochs"]):
            found = (rec, fin)
    return found


def run(cfg: RunConfig, force: bool = False, results_root: str | Path | None = None,
        runs_root: str | Path | None = None, progress: bool = True,
        log: Callable[[str], None] = print, on_epoch_end=None, command: str | None = None,
        extend: bool = False) -> dict:
    """Train and evaluate ``cfg``; store and return its record. A stored record is returned unless ``force``.

    A finished run keeps its last checkpoint (:data:`FINAL`). With ``extend``, a run of the same config but a
    larger patience or epoch cap continues from it (:func:`extendable_run`) instead of training those epochs again;
    the record names the run it continued (``continued_from``), and its history and training time include that
    run's epochs, as a run from scratch would.

    Under ``torchrun`` every process calls it (:func:`~drlib.train.fit` says how the work is split); rank 0 alone
    logs and writes (checkpoints, weights, the record, which then names the job's ``world_size`` and ``backend``
    in ``env``), and the others wait for each file before going on."""
    rank, world = init_distributed(cfg.train.device)          # (0, 1) unless started by torchrun
    if rank:
        progress, log = False, _quiet
    if not force:
        rec = load_record(cfg, results_root)
        if rec is not None:
            log(f"stored: {result_path(cfg, results_root)}")
            return rec
    configure_torch(cfg.train.num_threads)
    rdir = run_dir(cfg, runs_root)
    ckpt = rdir / "checkpoint.pt"
    if rank:
        barrier()               # rank 0 goes first: one download of the data, one writer of a tokenizer the model needs
    ds = get_dataset(cfg)
    model = build_for(cfg, ds)
    if force and ckpt.exists() and not rank:
        ckpt.unlink()
    if not rank:
        barrier()
    log(f"run {cfg.run_id}: {cfg.label} on {cfg.data.dataset} ({ds.n_users} users, {ds.n_items} items, "
        f"{len(ds.train_targets)} training examples), profile {cfg.profile}, seed {cfg.seed}")
    prior = extendable_run(cfg, results_root, runs_root) if extend and not ckpt.exists() else None
    if extend and prior is None and not ckpt.exists():
        log("no finished run of this config with a shorter patience or epoch cap keeps its final checkpoint: "
            "training from scratch")
    res = fit(model, ds, cfg.train, cfg.eval, seed=cfg.seed, checkpoint=ckpt, progress=progress, log=log,
              on_epoch_end=on_epoch_end, start_from=prior[1] if prior else None)
    device = pick_device(cfg.train.device)
    kw = dict(ks=cfg.eval.ks, batch_size=cfg.train.eval_batch_size, mask_history=cfg.eval.mask_history,
              device=device, autocast_bf16=cfg.train.bf16, shared=True)
    valid, _ = timed_evaluate(model, ds.valid, **kw)
    (test, test_ranks), test_seconds = timed_evaluate(model, ds.test, return_ranks=True, **kw)
    command = command or (f"python -m drlib train --dataset {cfg.data.dataset} --model {cfg.model_name} "
                          f"--profile {cfg.profile} --seed {cfg.seed} --experiment {cfg.experiment}"
                          + (f" --ablation '{cfg.variant}'" if cfg.variant else ""))
    if world > 1:
        command = torchrun_command(command, world)
    body = {
        "metrics": {"valid": valid, "test": test},
        "timing": {"train_seconds": res.train_seconds, "epochs": res.epochs_run, "best_epoch": res.best_epoch,
                   "stopped_early": res.stopped_early, "train_ms_per_batch": res.train_ms_per_batch,
                   "seconds_per_epoch": res.train_seconds / max(res.epochs_run, 1),
                   "eval_seconds": test_seconds, "n_test_users": len(ds.test),
                   "stopped_seconds": res.stopped_seconds},        # kill -STOP time, left out of train_seconds
        "history": res.history,
        "ranks": {"test": encode_ranks(test_ranks)},         # every test user's rank, for paired per-user tests
    }
    if prior:
        body["continued_from"] = {"run_id": prior[0]["run_id"], "experiment": prior[0].get("experiment"),
                                  "epochs": prior[0]["timing"]["epochs"]}
    path = result_path(cfg, results_root)
    if not rank:
        rdir.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), rdir / "model.pt")
        record = write_record(path, body, command=command, cfg=cfg, device=device)
        if ckpt.exists():
            ckpt.replace(rdir / FINAL)            # kept: a longer run of this config can continue it
    barrier()
    if rank:
        record = read_record(path)
    log(f"test {' '.join(f'{k} {v:.4f}' for k, v in test.items())} -> {path}")
    return record


def torchrun_command(command: str, world: int) -> str:
    """``python -m drlib ...`` as the ``torchrun`` command that runs it with this job's processes per node (and
    nodes)."""
    if not command.startswith("python -m "):
        return command
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    nodes = f"--nnodes={world // per_node} " if world > per_node else ""
    return f"torchrun {nodes}--nproc_per_node={per_node} -m {command[len('python -m '):]}"


def clean_run(cfg: RunConfig, runs_root: str | Path | None = None) -> None:
    shutil.rmtree(run_dir(cfg, runs_root), ignore_errors=True)
