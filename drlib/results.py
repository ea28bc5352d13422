"""The results store: one JSON record per finished run, at ``results/<experiment>/<run-id>.json``.

The run id ends with the config hash, so asking for a config that already ran returns the stored record
(``run(cfg)``) unless ``force=True``. Records are written atomically. Checkpoints live under ``runs/``
(git-ignored) and never in ``results/``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .config import stored_config_hash
from .utils import REPO_ROOT, atomic_write_json


def results_dir() -> Path:
    return Path(os.environ.get("DRLIB_RESULTS", REPO_ROOT / "results"))


def runs_dir() -> Path:
    return Path(os.environ.get("DRLIB_RUNS", REPO_ROOT / "runs"))


def result_path(cfg, root: str | Path | None = None) -> Path:
    return Path(root or results_dir()) / cfg.experiment / f"{cfg.run_id}.json"


def check_run_record(rec: dict, where: str | Path = "record") -> dict:
    """``rec`` unchanged when its stored config hashes to its ``config_hash``; ``ValueError`` naming ``where``
    otherwise (a record edited by hand, or written by other code). Records without a run config (tokenizers) pass."""
    config = rec.get("config")
    if isinstance(config, dict) and "model_config" in config:
        got = stored_config_hash(config)
        if got != rec.get("config_hash"):
            raise ValueError(f"{where}: its config hashes to {got}, the record says {rec.get('config_hash')}; the "
                             "record was altered after it was written. Restore it from git or rerun its command.")
    return rec


def load_record(cfg, root: str | Path | None = None) -> dict | None:
    p = result_path(cfg, root)
    if not p.exists():
        return None
    rec = json.loads(p.read_text())
    if rec.get("config_hash") != cfg.config_hash:
        raise ValueError(f"{p} holds config_hash {rec.get('config_hash')}, expected {cfg.config_hash}")
    return check_run_record(rec, p)


def save_record(record: dict, cfg, root: str | Path | None = None) -> Path:
    p = result_path(cfg, root)
    atomic_write_json(p, record)
    return p


def load_records(experiment: str | None = None, root: str | Path | None = None, **where) -> list[dict]:
    """All stored run records (of one experiment, if given) whose ``config`` matches ``where`` (e.g.
    dataset="beauty"); other records (tokenizers, benchmarks) are left to their own readers."""
    root = Path(root or results_dir())
    folders = [root / experiment] if experiment else sorted(p for p in root.glob("*") if p.is_dir())
    out = []
    for folder in folders:
        for f in sorted(folder.glob("*.json")):
            rec = check_run_record(json.loads(f.read_text()), f)
            if not isinstance(rec.get("config"), dict):
                continue                       # not a run record (a library benchmark): other readers
            if all(rec["config"].get(k) == v for k, v in where.items()):
                out.append(rec)
    return out


def unfinished_runs(experiment: str | None = None, root: str | Path | None = None) -> list[dict]:
    """Runs with a checkpoint under ``runs/<experiment>/<run-id>/``: trainings that stopped (or are running) before
    storing a record. One dict per run, oldest checkpoint first: ``experiment``, ``run_id``, ``epochs_done``,
    ``max_epochs`` / ``patience`` / ``metric`` (``None`` for a checkpoint written before they were saved),
    ``batch`` and ``n_batches`` (mid-epoch position, ``None`` at an epoch boundary), ``best`` and ``best_epoch``
    (1-based), ``bad_epochs``, ``last`` (the last epoch's validation score), ``train_hours``, ``saved`` (the
    checkpoint's UTC time, ISO) and ``path``. A checkpoint that cannot be read gets ``error`` instead.
    """
    import datetime as _dt

    import torch
    root = Path(root or runs_dir())
    pattern = f"{experiment}/*/checkpoint.pt" if experiment else "*/*/checkpoint.pt"
    out = []
    for ckpt in sorted(root.glob(pattern), key=lambda p: p.stat().st_mtime):
        row = {"experiment": ckpt.parent.parent.name, "run_id": ckpt.parent.name, "path": str(ckpt),
               "saved": _dt.datetime.fromtimestamp(ckpt.stat().st_mtime, _dt.timezone.utc)
               .isoformat(timespec="seconds")}
        try:
            state = torch.load(ckpt, map_location="cpu", weights_only=False)["state"]
        except Exception as e:      # a truncated or foreign file: report it, do not stop the listing
            out.append({**row, "error": f"{type(e).__name__}: {e}"})
            continue
        plan, part, hist = state.get("plan") or {}, state.get("partial") or {}, state.get("history") or []
        metric = plan.get("metric")
        row.update(epochs_done=state["epoch"], max_epochs=plan.get("epochs"), patience=plan.get("patience"),
                   metric=metric, batch=part.get("next_batch"), n_batches=part.get("n_batches"),
                   best=float(state["best_score"]) if state["best_epoch"] >= 0 else None,
                   best_epoch=state["best_epoch"] + 1 if state["best_epoch"] >= 0 else None,
                   bad_epochs=state["bad_epochs"],
                   last=float(hist[-1][metric]) if hist and metric in hist[-1] else None,
                   train_hours=(state["train_seconds"] + part.get("seconds", 0.0)) / 3600)
        out.append(row)
    return out


def records_frame(records: list[dict], split: str = "test"):
    """Flatten records into a pandas DataFrame: one row per run with label, dataset, seed, metrics, timing."""
    import pandas as pd
    rows = []
    for r in records:
        c = r["config"]
        rows.append({"label": r["label"], "dataset": c["dataset"], "model": c["model"], "profile": c["profile"],
                     "seed": c["seed"], **r["metrics"][split], **r["timing"], "run_id": r["run_id"]})
    return pd.DataFrame(rows)
