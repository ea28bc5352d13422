"""Every test user's target rank, stored in a run's record (``record["ranks"]["test"]``) for the paired per-user
comparisons of :mod:`drlib.paired`.

A run trained before its record stored ranks gets them from the weights it kept (``runs/<experiment>/<run-id>/
model.pt``): :func:`store_test_ranks` rebuilds the model from the record's config, ranks the test users, checks
that the ranks give back exactly the test metrics the record already holds (same weights, same evaluation), and
amends the record. ``python -m drlib ranks`` runs it over an experiment's records.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .evaluate import evaluate
from .paired import encode_ranks
from .registry import config_from_record
from .results import amend_record, read_record
from .runner import get_dataset, load_trained_model
from .utils import configure_torch


def store_test_ranks(path: str | Path, runs_root: str | Path | None = None, tolerance: float = 1e-6,
                     command: str = "python -m drlib ranks") -> dict | None:
    """Amend the run record at ``path`` with its test users' ranks (a no-op when it has them). Returns the
    record, or ``None`` when the run's weights were not kept. ``ValueError`` when the recomputed test metrics
    differ from the stored ones by more than ``tolerance`` (the weights are not the run's)."""
    rec = read_record(path)
    if "ranks" in rec:
        return rec
    cfg = config_from_record(rec)
    model = load_trained_model(cfg, runs_root)
    if model is None:
        return None
    configure_torch(cfg.train.num_threads)
    ds = get_dataset(cfg)
    metrics, ranks = evaluate(model, ds.test, ks=cfg.eval.ks, batch_size=cfg.train.eval_batch_size,
                              mask_history=cfg.eval.mask_history, return_ranks=True)
    stored = rec["metrics"]["test"]
    off = {k: (metrics[k], stored[k]) for k in stored if abs(metrics[k] - stored[k]) > tolerance}
    if off:
        raise ValueError(f"{path}: the kept weights give other test metrics than the record ({off}); they are "
                         "not this run's weights")
    return amend_record(path, "ranks", {"test": encode_ranks(ranks)}, command=command,
                        device=str(next(model.parameters()).device))
