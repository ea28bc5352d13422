"""The rewards of latent samples against the item table (Eq. 8-9), shared by DiffuReason and LARES.

They sit with the models because the base backbone's default reward hook (:meth:`Backbone.latent_rewards`) is
this scoring; nothing here imports anything of drlib.
"""
from __future__ import annotations

import torch


def sample_rewards(logits: torch.Tensor, targets: torch.Tensor, kind: str = "hit@1") -> torch.Tensor:
    """Eq. 9 generalised. ``logits`` ``[B, G, N-1]`` over real items, ``targets`` ``[B]`` item ids -> ``[B, G]``.

    The target's rank counts ties against the sample (as the evaluation does), so ``hit@1`` is 1 only when
    the target alone scores highest, i.e. ``argmax == target``.
    """
    B, G, _ = logits.shape
    tgt = logits.gather(-1, (targets - 1).view(B, 1, 1).expand(B, G, 1))
    rank = (logits >= tgt).sum(-1)                                      # 1 = top
    if kind == "mrr":
        return 1.0 / rank.float()
    return (rank <= int(kind[4:])).float()


@torch.no_grad()
def latent_rewards(z: torch.Tensor, items: torch.Tensor, targets: torch.Tensor, kind: str = "hit@1",
                   chunk: int = 256, candidates: int = 32) -> torch.Tensor:
    """:func:`sample_rewards` of ``z @ items[1:].T`` without materialising the ``[B, G, N-1]`` logits.

    ``z`` ``[B, G, d]``, ``items`` the item table ``[N, d]`` (row 0 padding), ``targets`` ``[B]`` -> ``[B, G]``.

    ``hit@K`` first screens every sample on a short list (``candidates > 0``): the ``max(candidates, 4K)`` items
    that score highest for the group's mean latent. A sample for which ``K`` of them beat the target by more than
    the rounding error of the two dot products (:func:`screen_tolerance`) ranks the target below ``K`` items in the
    full scoring as well, so its reward is 0 without scoring the catalogue. The other samples (on a trained
    model little more than the samples that hit) are scored in full. Full scoring goes
    ``chunk`` rows at a time so each block of logits stays in cache. ``mrr`` needs every rank: all rows in full.
    The rewards are those of the full scoring (tests compare them, ties included); only the time changes.
    """
    B, G, d = z.shape
    W = items[1:].t().contiguous()                          # [d, N-1]
    zf, tf = z.reshape(B * G, d), (targets - 1).repeat_interleave(G)
    out = torch.zeros(B * G, device=z.device)
    rows = torch.arange(B * G, device=z.device)
    if kind != "mrr" and candidates > 0:
        K = int(kind[4:])
        rows = rows[~_screened_out(z, W, targets - 1, K, max(candidates, 4 * K)).reshape(-1)]
    for s in range(0, len(rows), chunk):
        r = rows[s:s + chunk]
        lg = zf[r] @ W                                      # [chunk, N-1]
        idx = tf[r, None]
        tgt = lg.gather(1, idx)                              # [chunk, 1]
        if kind == "hit@1":                                  # no other item scores >= the target
            out[r] = (lg.scatter_(1, idx, float("-inf")).amax(1) < tgt[:, 0]).float()
        else:
            rank = (lg >= tgt).sum(1)
            out[r] = 1.0 / rank.float() if kind == "mrr" else (rank <= int(kind[4:])).float()
    return out.view(B, G)


def screen_tolerance(dtype: torch.dtype, d: int) -> float:
    """Relative bound on how far two computations of one ``d``-term dot product ``z . e`` can differ in
    ``dtype``: each is within ``d u |z| |e|`` of the exact value whatever the order of the sums (``u`` the unit
    roundoff; Cauchy-Schwarz bounds ``sum |z_i e_i|``), so ``2 d u``; we use twice that, and at least 1e-4.
    float32 matmuls allowed to run in a lower precision (TF32 on a GPU, ``set_float32_matmul_precision`` below
    "highest") count as bfloat16, the coarsest of them."""
    if dtype == torch.float32 and (torch.backends.cuda.matmul.allow_tf32
                                   or torch.get_float32_matmul_precision() != "highest"):
        dtype = torch.bfloat16
    return max(1e-4, 4 * d * torch.finfo(dtype).eps / 2)


def _screened_out(z: torch.Tensor, W: torch.Tensor, t: torch.Tensor, K: int, m: int) -> torch.Tensor:
    """``[B, G]``: True where ``K`` items of the group's short list beat the target beyond rounding, so Hit@K is 0.

    ``z [B, G, d]``, ``W [d, N-1]`` (the real items' columns), ``t [B]`` 0-based target columns; the short list is
    the ``m`` columns that score highest for ``z.mean(1)``."""
    B, G, d = z.shape
    m = min(m, W.shape[1])
    cand = (z.mean(1) @ W).topk(m, dim=1).indices           # [B, m]
    Ec, Et = W.t()[cand], W.t()[t]                          # [B, m, d], [B, d]
    sc = torch.bmm(z, Ec.transpose(1, 2))                   # [B, G, m]
    st = (z * Et[:, None]).sum(-1, keepdim=True)            # [B, G, 1]
    norms = Ec.norm(dim=-1)[:, None] + Et.norm(dim=-1)[:, None, None]        # |e_j| + |e_t|  [B, 1, m]
    tol = screen_tolerance(z.dtype, d) * z.norm(dim=-1, keepdim=True) * norms
    beats = (sc - st > tol) & (cand != t[:, None])[:, None]  # [B, G, m]
    return beats.sum(-1) >= K
