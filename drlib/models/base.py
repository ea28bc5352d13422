"""The two interfaces everything plugs into.

* :class:`Backbone` turns a history into hidden states and scores latents against the catalogue.
  SASRec (and later HSTU, TIGER) implement it; the DiffuReason module wraps any of them.
* :class:`Recommender` is all the training loop and the evaluator know: a loss on a batch of
  ``(inputs, targets)`` and full-catalogue scores for a batch of inputs.

Shapes: ``B`` batch, ``L`` history length (left-padded, latest item at ``L-1``), ``d`` model width,
``N = n_items + 1`` catalogue columns (column 0 is padding and always scores ``-inf``).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class Backbone(nn.Module):
    """Interface of a sequence encoder (paper Sec. 3.1, "Backbone Encoder": ``H = F_theta(S_u)``)."""

    d_model: int
    n_items: int

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        """``seqs`` int64 ``[B, L]`` -> hidden states ``H`` ``[B, L, d]``; ``H[:, -1]`` is ``h_L``."""
        raise NotImplementedError

    def item_embeddings(self) -> torch.Tensor:
        """The output item table ``[N, d]`` (row 0 = padding); ``v_target`` of Eq. 7 is a row of it."""
        raise NotImplementedError

    def score(self, latent: torch.Tensor) -> torch.Tensor:
        """``latent`` ``[..., d]`` -> logits ``[..., N]`` over the catalogue, padding column set to ``-inf``."""
        logits = latent @ self.item_embeddings().t()
        logits[..., 0] = float("-inf")   # in place: matmul's backward does not need its output
        return logits

    def item_logits(self, latent: torch.Tensor) -> torch.Tensor:
        """``latent`` ``[..., d]`` -> logits ``[..., N-1]`` over the real items only (column ``j`` = item ``j+1``).

        The training path uses this rather than :meth:`score`: a ``-inf`` column sends the CPU log-softmax
        backward onto a slow path (about 10x slower on a 512 x 12k batch), and the padding item is never a
        target anyway.
        """
        return latent @ self.item_embeddings()[1:].t()

    def next_item_loss(self, latent: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Full-softmax cross-entropy (Eq. 13): ``latent`` ``[B, d]``, ``targets`` ``[B]`` (ids >= 1) -> scalar."""
        return F.cross_entropy(self.item_logits(latent).float(), targets - 1)



class Recommender(nn.Module):
    """What the training loop and evaluator call. Subclasses implement both methods."""

    def compute_loss(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """``inputs`` ``[B, L]``, ``targets`` ``[B]`` -> (scalar loss, loggable floats)."""
        raise NotImplementedError

    def full_scores(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs`` ``[B, L]`` -> scores ``[B, N]`` over the whole catalogue (deterministic, eval mode)."""
        raise NotImplementedError

    def start_epoch(self, epoch: int) -> bool:
        """Called by the training loop before epoch ``epoch`` (0-based), also after a resume.

        A model whose objective changes with the epoch (a two-stage schedule, a reference policy refreshed
        every epoch) acts here. Return ``True`` when a new training phase starts at this epoch: the loop then
        restarts its early-stopping patience and the new phase starts from the best validation checkpoint so
        far. The phase must be a function of ``epoch`` alone, so that a resumed run repeats it exactly.
        """
        return False


class NextItemModel(Recommender):
    """A backbone used on its own: predict from the last hidden state with full-softmax cross-entropy."""

    def __init__(self, backbone: Backbone):
        super().__init__()
        self.backbone = backbone

    def compute_loss(self, inputs, targets):
        loss = self.backbone.next_item_loss(self.backbone.encode(inputs)[:, -1], targets)
        return loss, {"loss": loss.item()}

    def full_scores(self, inputs):
        return self.backbone.score(self.backbone.encode(inputs)[:, -1])
