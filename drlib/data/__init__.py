"""Data: readers, the dataset registry, the leave-one-out split, statistics and sparsity groups."""
from __future__ import annotations

import os

from .readers import DataFormatError, build_sequences, k_core, read_inter_json, read_s3rec_txt
from .registry import (DATASETS, DatasetSpec, file_fields, get_spec, locate, read_sequences, read_user_sequences,
                       register_dataset, user_file_report)
from .split import EvalSplit, SeqDataset, left_pad, split_leave_one_out
from .stats import item_groups, item_popularity, table1_stats, user_groups
from .synthetic import make_synthetic
from .user import FORMATS, UserFile, detect_format, read_user_file

SYNTHETIC_KW = dict(n_users=1000, n_items=200, min_len=5, max_len=15, n_next=2, p_follow=0.9, seed=0)


def dataset_names() -> list[str]:
    return sorted(DATASETS) + ["synthetic"]


def load_sequences(name: str, path: str | os.PathLike | None = None, verify: bool = True,
                   fmt: str | None = None, file: UserFile | None = None) -> tuple[list[list[int]], int | None]:
    """``(sequences, n_items or None)`` for a registered dataset or ``"synthetic"``; ``file`` (your own file,
    as a run config describes it) is read instead of looking ``name`` up."""
    if file is not None:
        return read_user_sequences(file, verify=verify), None
    if name == "synthetic":
        return make_synthetic(**SYNTHETIC_KW), SYNTHETIC_KW["n_items"]
    return read_sequences(get_spec(name), path=path, verify=verify, fmt=fmt), None


def load_dataset(name: str, path: str | os.PathLike | None = None, max_len: int = 20, verify: bool = True,
                 fmt: str | None = None, file: UserFile | None = None) -> SeqDataset:
    """Read a dataset by registry name (or ``"synthetic"``, or one registered from your file with
    :func:`register_dataset`) and split it leave-one-out.

    >>> ds = load_dataset("beauty")            # doctest: +SKIP
    >>> ds.n_users, ds.n_items, ds.train_inputs.shape
    (22363, 12101, (131413, 20))
    """
    seqs, n_items = load_sequences(name, path, verify, fmt, file)
    return split_leave_one_out(name, seqs, max_len=max_len, n_items=n_items)


__all__ = [
    "DATASETS", "DataFormatError", "DatasetSpec", "EvalSplit", "FORMATS", "SeqDataset", "UserFile",
    "build_sequences", "dataset_names", "detect_format", "file_fields", "get_spec", "item_groups", "item_popularity",
    "k_core", "left_pad", "load_dataset", "load_sequences", "locate", "make_synthetic", "read_inter_json",
    "read_s3rec_txt", "read_sequences", "read_user_file", "read_user_sequences", "register_dataset",
    "split_leave_one_out", "table1_stats", "user_file_report", "user_groups",
]
