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
                   chunk: int = 256) -> torch.Tensor:
    """:func:`sample_rewards` of ``z @ items[1:].T`` without materialising the ``[B, G, N-1]`` logits.

    ``z`` ``[B, G, d]``, ``items`` the item table ``[N, d]`` (row 0 padding), ``targets`` ``[B]`` -> ``[B, G]``.
    Rows are scored ``chunk`` at a time so each block of logits stays in cache (about 2x faster on a
    12k-item catalogue than the one-shot version); results are identical (a test checks).
    """
    B, G, d = z.shape
    W = items[1:].t().contiguous()                          # [d, N-1]
    zf, tf = z.reshape(B * G, d), (targets - 1).repeat_interleave(G)
    out = torch.empty(B * G, device=z.device)
    for s in range(0, B * G, chunk):
        lg = zf[s:s + chunk] @ W                            # [chunk, N-1]
        idx = tf[s:s + chunk, None]
        tgt = lg.gather(1, idx)                              # [chunk, 1]
        if kind == "hit@1":                                  # no other item scores >= the target
            out[s:s + chunk] = (lg.scatter_(1, idx, float("-inf")).amax(1) < tgt[:, 0]).float()
        else:
            rank = (lg >= tgt).sum(1)
            out[s:s + chunk] = 1.0 / rank.float() if kind == "mrr" else (rank <= int(kind[4:])).float()
    return out.view(B, G)
