"""Paired comparisons of two models: over seeds (t interval) and over test users (paired bootstrap).

A record may carry its test users' target ranks (``record["ranks"]["test"]``, :func:`encode_ranks`: 0-based ranks
in the users' fixed order, compressed, with their sha256). Two models evaluated on the same split then compare
user by user: :func:`paired_bootstrap` resamples users, keeping each user's pair together.

Shapes: ``S`` seeds, ``U`` test users.
"""
from __future__ import annotations

import base64
import hashlib
import math
import zlib
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats


def encode_ranks(ranks: np.ndarray) -> dict:
    """0-based target ranks ``[U]`` -> a JSON-able dict (``uint16`` when every rank fits, else ``int32``; zlib;
    base64) with the sha256 of the raw array, checked by :func:`decode_ranks`."""
    ranks = np.asarray(ranks)
    if ranks.ndim != 1 or (ranks.size and ranks.min() < 0):
        raise ValueError("ranks must be a 1-d array of non-negative integers")
    dtype = "uint16" if ranks.size == 0 or ranks.max() < 2 ** 16 else "int32"
    raw = np.ascontiguousarray(ranks.astype(dtype)).astype(np.dtype(dtype).newbyteorder("<")).tobytes()
    return {"dtype": dtype, "n": int(ranks.size), "sha256": hashlib.sha256(raw).hexdigest(),
            "zlib_b64": base64.b64encode(zlib.compress(raw, 9)).decode("ascii")}


def decode_ranks(stored: dict) -> np.ndarray:
    """The ranks ``[U]`` (int64) of :func:`encode_ranks`'s dict; ``ValueError`` when the bytes do not match."""
    raw = zlib.decompress(base64.b64decode(stored["zlib_b64"]))
    if hashlib.sha256(raw).hexdigest() != stored["sha256"]:
        raise ValueError("stored ranks do not match their sha256: the record was altered or truncated")
    out = np.frombuffer(raw, dtype=np.dtype(stored["dtype"]).newbyteorder("<")).astype(np.int64)
    if out.size != stored["n"]:
        raise ValueError(f"stored ranks: expected {stored['n']} users, got {out.size}")
    return out


def per_user(ranks: np.ndarray, metric: str) -> np.ndarray:
    """Each user's ``recall@K`` (hit) or ``ndcg@K`` from 0-based ranks ``[..., U]`` -> float ``[..., U]``
    (their mean over users is the metric the evaluation reports)."""
    name, _, k = metric.partition("@")
    k = int(k)
    ranks = np.asarray(ranks)
    hit = ranks < k
    if name == "recall":
        return hit.astype(float)
    if name == "ndcg":
        return np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)
    raise ValueError(f"metric must be recall@K or ndcg@K, got {metric!r}")


def seed_interval(base: Sequence[float], new: Sequence[float], level: float = 0.95) -> dict[str, float]:
    """Paired over seeds (``base[s]`` and ``new[s]`` ran seed ``s``): mean difference ``new - base``, its
    ``level`` t interval (``S - 1`` degrees of freedom; NaN with one seed), and the relative change in % of the
    base mean (NaN when that mean is 0)."""
    base, new = np.asarray(base, float), np.asarray(new, float)
    if base.shape != new.shape or base.ndim != 1 or base.size == 0:
        raise ValueError("base and new need one value per seed, the same seeds in the same order")
    diff = new - base
    n, mean = diff.size, float(diff.mean())
    if n > 1:
        half = float(stats.t.ppf(0.5 + level / 2, n - 1) * diff.std(ddof=1) / math.sqrt(n))
    else:
        half = float("nan")
    return {"seeds": n, "base": float(base.mean()), "new": float(new.mean()), "difference": mean,
            "ci_low": mean - half, "ci_high": mean + half,
            "relative %": 100 * mean / float(base.mean()) if base.mean() != 0 else float("nan")}


def paired_bootstrap(base_ranks: np.ndarray, new_ranks: np.ndarray, metric: str, n_boot: int = 2000,
                     seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Paired bootstrap over test users. ``base_ranks``, ``new_ranks``: ``[U]`` or ``[S, U]`` (seeds averaged per
    user first; the same users in the same order). Resamples users with replacement ``n_boot`` times.

    Returns the mean per-user difference ``new - base`` of ``metric``, its percentile interval, and a two-sided
    p-value (twice the share of resampled means on the far side of 0, at least ``1 / n_boot``)."""
    a = per_user(np.atleast_2d(base_ranks), metric).mean(0)
    b = per_user(np.atleast_2d(new_ranks), metric).mean(0)
    if a.shape != b.shape:
        raise ValueError(f"the two models were ranked on different users: {a.shape} vs {b.shape}")
    d = b - a
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for i in range(0, n_boot, 100):                     # 100 resamples at a time: [100, U] indices in memory
        idx = rng.integers(0, d.size, size=(min(100, n_boot - i), d.size))
        means[i:i + idx.shape[0]] = d[idx].mean(1)
    lo, hi = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
    far = (means <= 0).mean() if d.mean() > 0 else (means >= 0).mean()
    return {"users": int(d.size), "difference": float(d.mean()), "ci_low": float(lo), "ci_high": float(hi),
            "p_value": float(min(1.0, max(2 * far, 1.0 / n_boot)))}


def record_ranks(record: dict, split: str = "test") -> np.ndarray | None:
    """The stored ranks of a run record, or ``None`` when the record has none."""
    stored = record.get("ranks", {}).get(split)
    return None if stored is None else decode_ranks(stored)


def paired_table(records: Sequence[dict], base_label: str, new_label: str,
                 metrics: Sequence[str] = ("recall@5", "recall@10", "ndcg@5", "ndcg@10"),
                 n_boot: int = 2000) -> pd.DataFrame:
    """One row per (dataset, metric): ``new_label`` against ``base_label`` on the seeds both ran, with
    :func:`seed_interval` and, where every paired record stores its test ranks, :func:`paired_bootstrap`."""
    rows = []
    by = {}
    for r in records:
        by.setdefault((r["config"]["dataset"], r["label"]), {})[r["config"]["seed"]] = r
    for (dataset, label), base in sorted(by.items()):
        if label != base_label or (dataset, new_label) not in by:
            continue
        new = by[(dataset, new_label)]
        seeds = sorted(set(base) & set(new))
        if not seeds:
            continue
        ranks_a = [record_ranks(base[s]) for s in seeds]
        ranks_b = [record_ranks(new[s]) for s in seeds]
        have_ranks = all(x is not None for x in ranks_a + ranks_b)
        for m in metrics:
            row = {"dataset": dataset, "metric": m, "seed list": ",".join(map(str, seeds)),
                   **seed_interval([base[s]["metrics"]["test"][m] for s in seeds],
                                   [new[s]["metrics"]["test"][m] for s in seeds])}
            if have_ranks:
                boot = paired_bootstrap(np.stack(ranks_a), np.stack(ranks_b), m, n_boot=n_boot)
                row.update({"users": boot["users"], "user ci_low": boot["ci_low"], "user ci_high": boot["ci_high"],
                            "user p": boot["p_value"]})
            rows.append(row)
    return pd.DataFrame(rows)
