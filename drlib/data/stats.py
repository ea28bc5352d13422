"""Table 1 statistics and the sparsity groups of Sec. 4.6 (UG-0..3 by history length, IG-0..3 by popularity)."""
from __future__ import annotations

import numpy as np

from .split import SeqDataset


def table1_stats(seqs: list) -> dict:
    """``#Users``, ``#Items``, ``#Interactions`` and ``AvgLen`` as in Table 1 (over the full sequences), and
    ``repeat_share``: the share of interactions with an item the user had already interacted with (0 on the
    shipped datasets; where it is not, masking the history at evaluation never hides the target itself, see
    :func:`drlib.evaluate.mask_scores`)."""
    n_inter = int(sum(len(s) for s in seqs))
    items = np.unique(np.concatenate([np.asarray(s) for s in seqs]))
    repeats = int(sum(len(s) - len(np.unique(np.asarray(s))) for s in seqs))
    return {"users": len(seqs), "items": int(len(items)), "interactions": n_inter,
            "avg_len": n_inter / len(seqs), "min_len": int(min(len(s) for s in seqs)),
            "max_len": int(max(len(s) for s in seqs)),
            "density": n_inter / (len(seqs) * len(items)), "repeat_share": repeats / n_inter}


def user_groups(ds: SeqDataset, n_groups: int = 4) -> np.ndarray:
    """Group id (0 = shortest histories) per test user; groups have equal sizes (ties split by user order).

    History length is the untruncated test history, ``len(s) - 1``. Returns int64 ``[n_users]``.
    """
    lens = np.array([len(s) - 1 for s in ds.sequences])
    order = np.argsort(lens, kind="stable")
    groups = np.empty(len(lens), dtype=np.int64)
    for g, chunk in enumerate(np.array_split(order, n_groups)):
        groups[chunk] = g
    return groups


def item_popularity(ds: SeqDataset) -> np.ndarray:
    """Interaction count of every item id (index 0 = padding, always 0) over the training parts only."""
    counts = np.zeros(ds.n_items + 1, dtype=np.int64)
    for s in ds.sequences:
        np.add.at(counts, s[:-2], 1)
    return counts


def item_groups(ds: SeqDataset, n_groups: int = 4) -> np.ndarray:
    """Group id per item id (0 = least popular, the long tail): items sorted by training popularity and cut
    into ``n_groups`` equal-sized item sets. Index 0 (padding) gets -1. Returns int64 ``[n_items + 1]``.
    Test instances are grouped by their target's group, so group sizes in test instances differ (head >> tail).
    """
    pop = item_popularity(ds)[1:]
    order = np.argsort(pop, kind="stable")
    groups = np.full(ds.n_items + 1, -1, dtype=np.int64)
    for g, chunk in enumerate(np.array_split(order, n_groups)):
        groups[chunk + 1] = g
    return groups
