"""The results store: one JSON record per finished run, at ``results/<experiment>/<run-id>.json``, and the one
writer (:func:`write_record`) of every record kind: runs, probes, efficiency, tokenizations, benchmarks.

The run id ends with the config hash, so asking for a config that already ran returns the stored record
(``run(cfg)``) unless ``force=True``. Records are written atomically. Checkpoints live under ``runs/``
(git-ignored) and never in ``results/``.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

import pandas as pd
import torch

from .config import stored_config_hash
from .utils import IN_CHECKOUT, REPO_ROOT, atomic_write_json, env_info, user_cache


def results_dir() -> Path:
    """Where records go: ``$DRLIB_RESULTS`` (``--results DIR`` sets it); else ``results/`` of this checkout when
    drlib runs from one (the records the book reads); else ``./results`` of the current folder (an installed
    drlib never writes into its install location)."""
    if os.environ.get("DRLIB_RESULTS"):
        return Path(os.environ["DRLIB_RESULTS"])
    return REPO_ROOT / "results" if IN_CHECKOUT else Path.cwd() / "results"


def runs_dir() -> Path:
    """Where checkpoints and kept weights go: ``$DRLIB_RUNS``; else ``runs/`` of this checkout; else
    ``runs/`` of the user cache (:func:`drlib.utils.user_cache`)."""
    if os.environ.get("DRLIB_RUNS"):
        return Path(os.environ["DRLIB_RUNS"])
    return REPO_ROOT / "runs" if IN_CHECKOUT else user_cache() / "runs"


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


def run_envelope(cfg, experiment: str | None = None) -> dict:
    """The fields that tie a record to its run config: ``label``, ``run_id``, ``experiment``, ``config`` (the
    stored layout, :meth:`~drlib.config.RunConfig.to_dict`) and ``config_hash``."""
    return {"label": cfg.label, "run_id": cfg.run_id, "experiment": experiment or cfg.experiment,
            "config": cfg.to_dict(), "config_hash": cfg.config_hash}


def write_record(path: str | Path, body: dict, *, command: str, cfg=None, experiment: str | None = None,
                 device="cpu", env: dict | None = None) -> dict:
    """Write one record of any kind atomically and return it exactly as a later read gives it (tuples -> lists).

    The record is ``run_envelope(cfg)`` (when the record belongs to a run config), then ``body``, then the
    envelope every record carries: ``env`` (git commit, versions, device; ``env`` adds fields), ``command`` (how
    to make it again) and ``finished`` (UTC). A run config's hash is checked on every load
    (:func:`check_run_record`)."""
    if not command:
        raise ValueError("every record stores the command that made it; pass command=")
    record = {**(run_envelope(cfg, experiment) if cfg is not None else {}), **body,
              "env": {**env_info(torch.device(device)), **(env or {})}, "command": command,
              "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    record = json.loads(json.dumps(record, default=list))
    atomic_write_json(Path(path), record)
    return record


def amend_record(path: str | Path, key: str, value, *, command: str, device="cpu") -> dict:
    """Add ``key: value`` to a stored record, keeping everything it holds, and note the amendment (key, command,
    git commit, UTC time) in its ``amended`` list; written atomically. How an artifact computed later from a run's
    kept weights (its test users' ranks) joins the run's record. ``ValueError`` when ``key`` is already there."""
    record = read_record(path)
    if key in record:
        raise ValueError(f"{path} already holds {key!r}")
    env = env_info(torch.device(device))
    record[key] = value
    record.setdefault("amended", []).append({
        "key": key, "command": command, "git_commit": env.get("git_commit"),
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
    record = json.loads(json.dumps(record, default=list))
    atomic_write_json(Path(path), record)
    return record


def read_record(path: str | Path) -> dict:
    """A stored record of any kind, its run config's hash checked (:func:`check_run_record`)."""
    return check_run_record(json.loads(Path(path).read_text()), path)


def load_record(cfg, root: str | Path | None = None) -> dict | None:
    p = result_path(cfg, root)
    if not p.exists():
        return None
    rec = read_record(p)
    if rec.get("config_hash") != cfg.config_hash:
        raise ValueError(f"{p} holds config_hash {rec.get('config_hash')}, expected {cfg.config_hash}")
    return rec


def load_records(experiment: str | None = None, root: str | Path | None = None, **where) -> list[dict]:
    """All stored run records (of one experiment, if given) whose ``config`` matches ``where`` (e.g.
    dataset="beauty"); other records (tokenizers, benchmarks) are left to their own readers."""
    root = Path(root or results_dir())
    folders = [root / experiment] if experiment else sorted(p for p in root.glob("*") if p.is_dir())
    out = []
    for folder in folders:
        for f in sorted(folder.glob("*.json")):
            rec = read_record(f)
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


def module_setting(record: dict, field: str):
    """A DiffuReason module setting of a run record, read from its stored config (``None`` for a model without
    the module): how tables get R, G, alpha, beta without parsing labels."""
    return (record["config"]["model_config"].get("module") or {}).get(field)


def epoch_devices(record: dict) -> dict[str, int]:
    """``{device type: epochs}`` of a training record, in the order the devices were first used. A run resumed from
    a checkpoint on another machine (a GPU's, finished on the CPU) trained on both, and its ``timing`` adds up the
    minutes of both. An epoch stored before the history named its device (December 2026) counts as the record's
    ``env.device``."""
    default = str((record.get("env") or {}).get("device", "cpu")).split(":")[0]
    out: dict[str, int] = {}
    for h in record.get("history") or []:
        d = str(h.get("device", default)).split(":")[0]
        out[d] = out.get(d, 0) + 1
    return out


def mixed_devices(record: dict) -> bool:
    """Whether the record's epochs ran on more than one device (:func:`epoch_devices`)."""
    return len(epoch_devices(record)) > 1


def stopped_at_cap(record: dict) -> bool:
    """Whether a training record stopped at its epoch cap (``train.epochs``) still improving: its best validation
    epoch lies fewer than ``train.patience`` epochs before the last, so early stopping had not ended it. Such a run
    is compared below its plateau (with ``patience=None``, reaching the cap is enough). A record without ``timing``
    or a training config (an efficiency or probe record) did not train here: ``False``."""
    timing, train = record.get("timing") or {}, (record.get("config") or {}).get("train") or {}
    if "epochs" not in timing or "epochs" not in train:
        return False
    if timing["epochs"] < train["epochs"]:
        return False
    patience = train.get("patience")
    return patience is None or timing["epochs"] - timing["best_epoch"] < patience


def devices_text(record: dict) -> str:
    """``"cpu"``, or for a run on several devices ``"cuda 19 + cpu 27"`` (epochs on each, in order); a record
    without a history names its ``env.device``."""
    dev = epoch_devices(record)
    if len(dev) > 1:
        return " + ".join(f"{d} {n}" for d, n in dev.items())
    return next(iter(dev)) if dev else str((record.get("env") or {}).get("device", "?")).split(":")[0]


def records_frame(records: list[dict], split: str = "test"):
    """Flatten records into a pandas DataFrame: one row per run with label, dataset, seed, metrics, timing and
    ``devices`` (:func:`devices_text`; ``mixed devices`` True when the epochs ran on more than one)."""
    rows = []
    for r in records:
        c = r["config"]
        rows.append({"label": r["label"], "dataset": c["dataset"], "model": c["model"], "profile": c["profile"],
                     "seed": c["seed"], **r["metrics"][split], **r["timing"], "run_id": r["run_id"],
                     "devices": devices_text(r), "mixed devices": mixed_devices(r)})
    return pd.DataFrame(rows)


def record_file(rec: dict, root: str | Path | None = None) -> str:
    """Where the stored record ``rec`` lies, as ``results/<experiment>/<file>.json`` (relative to the results root's
    parent; the folder alone when no file of its run id is found there)."""
    root = Path(root or results_dir())
    folder = root / rec.get("experiment", "")
    hits = [folder / f"{rec['run_id']}.json"] if (folder / f"{rec['run_id']}.json").exists() else \
        sorted(folder.glob(f"{rec['run_id']}*.json"))
    if len(hits) > 1:           # several records of one run (e.g. timings over 10 and 30 batches): the same one
        same = lambda r: (r.get("command"), r.get("finished")) == (rec.get("command"), rec.get("finished"))
        hits = [h for h in hits if same(json.loads(h.read_text()))]
    where = hits[0].name if len(hits) == 1 else ""
    return f"{root.name}/{rec.get('experiment', '')}/{where}"


# Folders of records about a run, named by its run id, that are not the run's record: tokenizations, the Sec. 4.6
# probes, the explorer's views, the committed weights.
ABOUT_RUNS = ("tokenizer", "probes", "explorer", "weights")


def find_run_record(run_id: str, results_root=None) -> tuple[Path, dict]:
    """The record ``results/<experiment>/<run_id>.json`` of a finished run (``main`` searched first)."""
    root = Path(results_root or results_dir())
    hits = sorted(root.glob(f"*/{run_id}.json"), key=lambda p: (p.parent.name != "main", str(p)))
    hits = [p for p in hits if p.parent.name not in ABOUT_RUNS]
    if not hits:
        raise FileNotFoundError(f"no record of run {run_id!r} under {root}/*/ (looked for {root}/main/{run_id}.json); "
                                "train it first, e.g. `python -m drlib train --dataset beauty --model diffureason-s "
                                "--profile cpu --seed 0`, or pass --collab-run with the id of a finished run "
                                "(the file names under results/main/)")
    rec = read_record(hits[0])
    if rec.get("run_id") != run_id:
        raise ValueError(f"{hits[0]} holds run_id {rec.get('run_id')!r}, expected {run_id!r}")
    return hits[0], rec
