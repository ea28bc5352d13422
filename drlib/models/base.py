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

from .rewards import latent_rewards


class Backbone(nn.Module):
    """Interface of a sequence encoder (paper Sec. 3.1, "Backbone Encoder": ``H = F_theta(S_u)``)."""

    d_model: int
    n_items: int

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        """``seqs`` int64 ``[B, L]`` -> hidden states ``H`` ``[B, L, d]``; ``H[:, -1]`` is ``h_L``."""
        raise NotImplementedError

    def encode_last(self, seqs: torch.Tensor) -> torch.Tensor:
        """``h_L`` only: ``seqs [B, L]`` -> ``[B, d]``. A backbone may compute it more cheaply than ``encode``."""
        return self.encode(seqs)[:, -1]

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

    # ------------------------------------------------------------------ hooks of the DiffuReason module
    # DiffuReason (drlib.diffureason.module) reaches a backbone only through these five methods. The defaults
    # are the ID-based behaviour (SASRec: one embedding per item, dot-product scores); the Semantic-ID backbones
    # override them (drlib.diffureason.adapters). ``state`` is whatever ``reasoning_memory`` returns first and
    # the other hooks need (the defaults need nothing: ``None``).
    def reasoning_memory(self, inputs: torch.Tensor):
        """``inputs [B, L]`` -> ``(state, H [B, S, d], pad [B, S] bool, True = padding)``: the hidden states the
        latent reasoner attends to (Eq. 1; ``H[:, -1]`` is ``tau_1``) and its padding mask."""
        return None, self.encode(inputs), inputs == 0

    def latent_loss(self, state, latent: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``L_rec`` (Eq. 13) of the refined latent ``[B, d]`` for ``targets [B]`` -> scalar."""
        return self.next_item_loss(latent, targets)

    def target_latent(self, targets: torch.Tensor) -> torch.Tensor:
        """``v_target`` of Eq. 7 for ``targets [B]`` -> ``[B, d]`` (the module detaches it)."""
        return self.item_embeddings()[targets]

    @torch.no_grad()
    def latent_rewards(self, state, z: torch.Tensor, targets: torch.Tensor, kind: str = "hit@1",
                       screen: int = 32) -> torch.Tensor:
        """Rewards (Eq. 8-9) of the policy samples ``z [B, G, d]`` for ``targets [B]`` -> ``[B, G]``. ``screen``:
        the short list of :func:`~drlib.models.rewards.latent_rewards` (speed only; 0 scores every sample in full)."""
        return latent_rewards(z, self.item_embeddings(), targets, kind, candidates=screen)

    def latent_scores(self, state, latent: torch.Tensor) -> torch.Tensor:
        """Full-catalogue scores ``[B, N]`` of the refined latent ``[B, d]`` (the module's ``full_scores``)."""
        return self.score(latent)

    def backbone_loss(self, state, H: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The backbone's own next-item loss on ``h_L = H[:, -1]`` (``H [B, S, d]`` from ``reasoning_memory``) for
        ``targets [B]`` -> scalar: DiffuReason's optional ``backbone_weight`` term."""
        return self.next_item_loss(H[:, -1], targets)

    def latent_token(self, latent: torch.Tensor) -> torch.Tensor:
        """A latent ``[..., d]`` (in the item table's space) as an input token ``[..., d]`` (for :meth:`rollout`)."""
        return latent

    def rollout(self, inputs: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens [B, G, k, d]``: ``G`` groups of ``k`` input vectors, each group appended on its own after the
        history ``inputs [B, L]`` -> the backbone's output at each group's last token ``[B, G, d]`` (DiffuReason's
        A.1 rollout reading, ``rollouts > 0``). Only backbones that read extra input tokens implement it."""
        raise NotImplementedError(f"{type(self).__name__} cannot read extra input tokens, so DiffuReason's "
                                  "rollout reading (model.module.rollouts > 0) is not available on it; use "
                                  "SASRec (diffureason-s) or rollouts=0")



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

    def epoch_state(self) -> dict | None:
        """State that :meth:`start_epoch` built and that is not in ``state_dict`` (e.g. a frozen reference
        policy), saved with a mid-epoch checkpoint; ``None`` when there is none."""
        return None

    def load_epoch_state(self, state: dict | None) -> None:
        """Restore :meth:`epoch_state` after :meth:`start_epoch` on a mid-epoch resume."""


class NextItemModel(Recommender):
    """A backbone used on its own: predict from the last hidden state with full-softmax cross-entropy."""

    def __init__(self, backbone: Backbone):
        super().__init__()
        self.backbone = backbone

    def compute_loss(self, inputs, targets):
        loss = self.backbone.next_item_loss(self.backbone.encode_last(inputs), targets)
        return loss, {"loss": loss.item()}

    def full_scores(self, inputs):
        return self.backbone.score(self.backbone.encode_last(inputs))
