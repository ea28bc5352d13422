"""The results store: one JSON record per finished run, at ``results/<experiment>/<run-id>.json``.

The run id ends with the config hash, so asking for a config that already ran returns the stored record
(``run(cfg)``) unless ``force=True``. Records are written atomically. Checkpoints live under ``runs/``
(git-ignored) and never in ``results/``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .utils import REPO_ROOT, atomic_write_json


def results_dir() -> Path:
    return Path(os.environ.get("DRLIB_RESULTS", REPO_ROOT / "results"))


def runs_dir() -> Path:
    return Path(os.environ.get("DRLIB_RUNS", REPO_ROOT / "runs"))


def result_path(cfg, root: str | Path | None = None) -> Path:
    return Path(root or results_dir()) / cfg.experiment / f"{cfg.run_id}.json"


def load_record(cfg, root: str | Path | None = None) -> dict | None:
    p = result_path(cfg, root)
    if not p.exists():
        return None
    rec = json.loads(p.read_text())
    if rec.get("config_hash") != cfg.config_hash:
        raise ValueError(f"{p} holds config_hash {rec.get('config_hash')}, expected {cfg.config_hash}")
    return rec


def save_record(record: dict, cfg, root: str | Path | None = None) -> Path:
    p = result_path(cfg, root)
    atomic_write_json(p, record)
    return p


def load_records(experiment: str | None = None, root: str | Path | None = None, **where) -> list[dict]:
    """All stored records (of one experiment, if given) whose ``config`` matches ``where`` (e.g. dataset="beauty")."""
    root = Path(root or results_dir())
    folders = [root / experiment] if experiment else sorted(p for p in root.glob("*") if p.is_dir())
    out = []
    for folder in folders:
        for f in sorted(folder.glob("*.json")):
            rec = json.loads(f.read_text())
            if all(rec["config"].get(k) == v for k, v in where.items()):
                out.append(rec)
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
