"""A synthetic benchmark with planted sequential structure, for tests and the ``smoke`` profile.

Each item has ``n_next`` preferred successors. A user starts at a random item and, at each step, moves to an
unseen preferred successor of the current item with probability ``p_follow`` (else to a random unseen item).
A model that learns the transitions beats popularity by a wide margin; one that learns nothing does not.
Sequences never repeat an item, like the Amazon benchmarks.
"""
from __future__ import annotations

import numpy as np


def make_synthetic(n_users: int = 1000, n_items: int = 200, min_len: int = 5, max_len: int = 15,
                   n_next: int = 2, p_follow: float = 0.9, seed: int = 0) -> list[list[int]]:
    if n_items < max_len + n_next:
        raise ValueError("n_items must exceed max_len + n_next")
    rng = np.random.default_rng(seed)
    succ = np.stack([rng.choice(n_items, size=n_next, replace=False) for _ in range(n_items)]) + 1
    seqs = []
    for _ in range(n_users):
        length = int(rng.integers(min_len, max_len + 1))
        cur = int(rng.integers(1, n_items + 1))
        seq = [cur]
        while len(seq) < length:
            options = [int(v) for v in succ[cur - 1] if v not in seq]
            if options and rng.random() < p_follow:
                cur = options[int(rng.integers(len(options)))]
            else:
                while True:
                    cur = int(rng.integers(1, n_items + 1))
                    if cur not in seq:
                        break
            seq.append(cur)
        seqs.append(seq)
    return seqs
