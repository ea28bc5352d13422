"""Leave-one-out split and the tensors a model sees.

For a user sequence ``s = [v_1, ..., v_n]`` (chronological, 1-based ids):

* test:        input ``s[:-1]``, target ``v_n``
* validation:  input ``s[:-2]``, target ``v_{n-1}``
* training:    every prefix of the training part ``t = s[:-2]``: input ``t[:i]``, target ``t[i]`` for
  ``i = 1 .. len(t)-1``. One example per (prefix, next item), so models that reason from the last
  position (DiffuReason) and plain next-item models see the same examples.

Inputs keep the most recent ``max_len`` items and are left-padded with 0, so the latest item always sits
at position ``max_len - 1``. The split never lets a validation or test target into a training input
(checked by ``tests/test_data.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def left_pad(seqs: list[np.ndarray] | list[list[int]], max_len: int) -> np.ndarray:
    """``[[...], ...]`` -> int64 array ``[N, max_len]``, most recent ``max_len`` items, left-padded with 0."""
    out = np.zeros((len(seqs), max_len), dtype=np.int64)
    for r, s in enumerate(seqs):
        s = s[-max_len:]
        if len(s):
            out[r, max_len - len(s):] = s
    return out


@dataclass
class EvalSplit:
    """One evaluation split (validation or test). ``U`` users, ``L = max_len``.

    inputs: int64 ``[U, L]``; targets: int64 ``[U]``; users: int64 ``[U]`` (row in ``sequences``);
    history_ptr/history_idx: CSR of each user's *full* history (untruncated), for masking seen items.
    """
    inputs: np.ndarray
    targets: np.ndarray
    users: np.ndarray
    history_ptr: np.ndarray
    history_idx: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)

    def history_pairs(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(batch_row, item) pairs of the full histories of ``rows`` (indices into this split)."""
        starts, ends = self.history_ptr[rows], self.history_ptr[rows + 1]
        lens = ends - starts
        batch_rows = np.repeat(np.arange(len(rows)), lens)
        offsets = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        return batch_rows, self.history_idx[np.repeat(starts, lens) + offsets]


@dataclass
class SeqDataset:
    """A split benchmark. ``n_items`` counts real items; ids run 1..n_items and 0 is padding."""
    name: str
    sequences: list[np.ndarray]
    n_items: int
    max_len: int
    train_inputs: np.ndarray     # [N, L]
    train_targets: np.ndarray    # [N]
    train_users: np.ndarray      # [N]
    valid: EvalSplit
    test: EvalSplit

    @property
    def n_users(self) -> int:
        return len(self.sequences)


def _eval_split(seqs: list[np.ndarray], cut: int, max_len: int) -> EvalSplit:
    hist = [s[:len(s) - cut] for s in seqs]
    targets = np.array([s[len(s) - cut] for s in seqs], dtype=np.int64)
    lens = np.array([len(h) for h in hist], dtype=np.int64)
    ptr = np.concatenate([[0], np.cumsum(lens)])
    idx = np.concatenate(hist).astype(np.int64) if len(hist) else np.zeros(0, np.int64)
    return EvalSplit(left_pad(hist, max_len), targets, np.arange(len(seqs)), ptr, idx)


def split_leave_one_out(name: str, sequences: list[list[int]], max_len: int = 20,
                        n_items: int | None = None) -> SeqDataset:
    """Build the leave-one-out :class:`SeqDataset`. Every sequence needs at least 3 items."""
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    seqs = [np.asarray(s, dtype=np.int64) for s in sequences]
    short = [u for u, s in enumerate(seqs) if len(s) < 3]
    if short:
        raise ValueError(f"{name}: {len(short)} users have fewer than 3 interactions (first: user row {short[0]}); "
                         "leave-one-out needs at least 3 (one train, one valid, one test). Apply k-core filtering.")
    top = int(max(s.max() for s in seqs))
    n_items = n_items or top
    if top > n_items:
        raise ValueError(f"{name}: item id {top} exceeds n_items={n_items}")
    inputs, targets, users = [], [], []
    for u, s in enumerate(seqs):
        t = s[:-2]
        for i in range(1, len(t)):
            inputs.append(t[max(0, i - max_len):i])
            targets.append(t[i])
            users.append(u)
    return SeqDataset(
        name=name, sequences=seqs, n_items=n_items, max_len=max_len,
        train_inputs=left_pad(inputs, max_len), train_targets=np.array(targets, dtype=np.int64),
        train_users=np.array(users, dtype=np.int64),
        valid=_eval_split(seqs, 2, max_len), test=_eval_split(seqs, 1, max_len))
