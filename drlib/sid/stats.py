"""Statistics of a tokenization's codes (what the tokenizer comparison reads).

The stats (:func:`tokenization_stats`) extend :func:`~drlib.sid.rqvae.sid_stats` with the disambiguation
counts, per-level perplexity and distinct prefixes, and the collision floor the features impose (items whose
feature row equals another item's can never get distinct codes).
"""
from __future__ import annotations

from typing import Sequence

import torch

from .rqvae import sid_stats


def duplicate_rows(x: torch.Tensor) -> int:
    """Items (rows 1..n) whose row equals another item's row: they can never get distinct RQ-VAE codes."""
    _, inv, counts = torch.unique(x[1:], dim=0, return_inverse=True, return_counts=True)
    return int((counts[inv] > 1).sum())


def tokenization_stats(codes: torch.Tensor, levels: int, codebook_sizes: Sequence[int],
                       features: torch.Tensor | None = None) -> dict:
    """Stats of codes ``[n_items + 1, levels (+1)]`` whose first ``levels`` columns are the SID.

    :func:`~drlib.sid.rqvae.sid_stats` of the ``levels`` columns (``utilization``, ``codes_used``,
    ``collision_rate`` *before* disambiguation, ``max_collision``, ``unique_sids``, ``n_items``), plus
    ``perplexity`` per level (``exp`` of the entropy of the code usage; ``K`` = perfectly balanced),
    ``distinct_prefixes`` (distinct prefixes of length 1..levels), ``collided_items`` (items sharing their SID),
    ``collision_groups`` (SIDs shared by >= 2 items), ``items_disambiguated`` (items whose disambiguation token is
    not 0: every colliding item but the first of its group), ``disambiguation_vocab`` (codes the extra token
    needs, 0 when none), ``sid_length`` and ``unique_after_disambiguation``. With ``features``:
    ``duplicate_feature_items`` and ``collision_floor`` (their fraction: the lowest collision rate any
    tokenizer of these features can reach).
    """
    s = sid_stats(codes, tuple(codebook_sizes), levels=levels)
    body = codes[1:, :levels]
    n = body.shape[0]
    perplexity, prefixes = [], []
    for m in range(levels):
        p = torch.bincount(body[:, m]).double() / n
        p = p[p > 0]
        perplexity.append(float(torch.exp(-(p * p.log()).sum())))
        prefixes.append(int(torch.unique(body[:, :m + 1], dim=0).shape[0]))
    _, inv, counts = torch.unique(body, dim=0, return_inverse=True, return_counts=True)
    collided = int((counts[inv] > 1).sum())
    groups = int((counts > 1).sum())
    s.update(perplexity=perplexity, distinct_prefixes=prefixes, collided_items=collided, collision_groups=groups,
             items_disambiguated=collided - groups,
             disambiguation_vocab=int(counts.max()) if groups else 0,
             sid_length=int(codes.shape[1]),
             unique_after_disambiguation=int(torch.unique(codes[1:], dim=0).shape[0]) == n)
    if features is not None:
        dup = duplicate_rows(features)
        s.update(duplicate_feature_items=dup, collision_floor=dup / n)
    return s


__all__ = ["duplicate_rows", "tokenization_stats"]
