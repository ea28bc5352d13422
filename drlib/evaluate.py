"""Full-ranking evaluation: Recall@K and NDCG@K over the whole catalogue (no sampled negatives).

Rank of the target (0-based) = number of *other* candidate items whose score is >= the target's score.
Ties therefore count against the target (a constant model gets the worst rank, never a lucky one).
With one target per user, Recall@K = 1[rank < K] and NDCG@K = 1[rank < K] / log2(rank + 2).

History masking (``mask_history=True``, the default): items already in the user's *full* history
(not only the last ``max_len`` kept as input) are removed from the candidates, as in S3-Rec/ICLRec-style
full ranking. None of the benchmark sequences repeats an item, so a seen item can never be the target:
masking only removes impossible candidates. Set ``mask_history=False`` for data with repeats.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from .data.split import EvalSplit


def trim_padding(x: torch.Tensor) -> torch.Tensor:
    """Drop the leading columns of a left-padded batch ``[B, L]`` that are padding in every row."""
    nonpad = (x != 0).any(0).nonzero()
    return x[:, int(nonpad[0]):] if len(nonpad) else x[:, -1:]

METRIC_KEYS = ("recall", "ndcg")


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``scores`` ``[B, N]`` (or ``[B, S, N]``: ``S`` score rows per user), ``targets`` ``[B]`` -> 0-based ranks
    ``[B]`` (``[B, S]``), ties pessimistic."""
    idx = targets.view(-1, *([1] * (scores.dim() - 1))).expand(*scores.shape[:-1], 1)
    t = scores.gather(-1, idx)                                   # [B, 1] or [B, S, 1]
    return (scores >= t).sum(-1) - 1


def metrics_from_ranks(ranks: np.ndarray | torch.Tensor, ks: Sequence[int] = (5, 10)) -> dict[str, float]:
    """Mean ``recall@K`` and ``ndcg@K`` for every K from 0-based target ranks."""
    r = torch.as_tensor(ranks, dtype=torch.float64)
    out = {}
    for k in ks:
        hit = (r < k).double()
        out[f"recall@{k}"] = float(hit.mean())
        out[f"ndcg@{k}"] = float((hit / torch.log2(r + 2)).mean())
    return out


def mask_scores(scores: torch.Tensor, split: EvalSplit, rows: np.ndarray, mask_history: bool = True) -> torch.Tensor:
    """In place and returned: the padding column and (if ``mask_history``) each user's seen items set to ``-inf``,
    except the user's target: a target the user has seen before (repeat consumption) keeps its score, so it is
    never masked out of its own ranking (the shipped datasets have no repeats, where this changes nothing).

    ``scores`` ``[B, N]`` or ``[B, S, N]`` (``S`` latents per user); row ``b`` belongs to user ``rows[b]`` of
    ``split``. The evaluation's masking, shared by the probes and the explorer so their ranks match the metrics.
    """
    scores[..., 0] = float("-inf")
    if mask_history:
        rows = np.asarray(rows)
        br, items = split.history_pairs(rows)
        dev = scores.device
        repeat = items == split.targets[rows][br]                    # a history item equal to the row's target
        br, items = br[~repeat], items[~repeat]
        scores[torch.from_numpy(br).to(dev), ..., torch.from_numpy(items).to(dev)] = float("-inf")
    return scores


@torch.no_grad()
def compute_ranks(score_fn: Callable[[torch.Tensor], torch.Tensor], split: EvalSplit, batch_size: int = 1024,
                  mask_history: bool = True, device: torch.device | str = "cpu", rows: np.ndarray | None = None,
                  progress: bool = False) -> np.ndarray:
    """0-based target ranks ``[U]`` for every user of ``split`` (or the given ``rows``), in batches.

    ``score_fn`` maps inputs ``[B, L]`` (on ``device``) to scores ``[B, N]``, or to ``[B, S, N]`` (``S`` rankings
    per user, e.g. one per stage of a trajectory), which gives ranks ``[U, S]``. Memory is
    ``O(batch_size * S * N)``.
    """
    rows = np.arange(len(split)) if rows is None else np.asarray(rows)
    out = None
    # visit users in order of history length so each batch trims most of its padding
    order = np.argsort((split.inputs[rows] != 0).sum(1), kind="stable")
    it = range(0, len(rows), batch_size)
    if progress:
        it = tqdm(it, desc="rank", leave=False)
    for start in it:
        pos = order[start:start + batch_size]
        b = rows[pos]
        inputs = trim_padding(torch.from_numpy(split.inputs[b])).to(device)
        targets = torch.from_numpy(split.targets[b]).to(device)
        scores = mask_scores(score_fn(inputs).float(), split, b, mask_history)
        ranks = target_ranks(scores, targets).cpu().numpy()
        if out is None:
            out = np.empty((len(rows),) + ranks.shape[1:], dtype=np.int64)
        out[pos] = ranks
    return np.empty(0, dtype=np.int64) if out is None else out


def evaluate(model, split: EvalSplit, ks: Sequence[int] = (5, 10), batch_size: int = 1024,
             mask_history: bool = True, device: torch.device | str = "cpu", autocast_bf16: bool = False,
             return_ranks: bool = False, rows: np.ndarray | None = None):
    """Evaluate a :class:`~drlib.models.Recommender` on a split (or on its users ``rows``). Returns metrics (and
    ranks if asked)."""
    was_training = model.training
    model.eval()
    dev = torch.device(device)
    try:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=autocast_bf16):
            ranks = compute_ranks(model.full_scores, split, batch_size, mask_history, dev, rows)
    finally:
        model.train(was_training)
    m = metrics_from_ranks(ranks, ks)
    return (m, ranks) if return_ranks else m


def evaluate_shared(model, split: EvalSplit, return_ranks: bool = False, **kw):
    """:func:`evaluate` by every process of a torchrun job together: each ranks every ``world``-th user, the ranks
    are gathered, and every process returns the metrics (and ranks) of the whole split, the same numbers, so all
    take the same early-stopping decisions. In a plain process, :func:`evaluate` itself."""
    if not dist.is_initialized():
        return evaluate(model, split, return_ranks=return_ranks, **kw)
    rank, world = dist.get_rank(), dist.get_world_size()
    _, mine = evaluate(model, split, return_ranks=True, rows=np.arange(rank, len(split), world), **kw)
    parts = [None] * world
    dist.all_gather_object(parts, mine)
    ranks = np.empty(len(split), dtype=np.int64)
    for r, part in enumerate(parts):
        ranks[r::world] = part
    m = metrics_from_ranks(ranks, kw.get("ks", (5, 10)))
    return (m, ranks) if return_ranks else m


def timed_evaluate(model, split, shared: bool = False, **kw):
    """:func:`evaluate` (``shared``: :func:`evaluate_shared`) plus wall-clock seconds (CUDA synchronized)."""
    dev = torch.device(kw.get("device", "cpu"))
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    res = (evaluate_shared if shared else evaluate)(model, split, **kw)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return res, time.perf_counter() - t0
