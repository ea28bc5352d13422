"""ReaRec (Tang et al. 2025, "Think before recommend"), on the SASRec backbone, in two variants.

After the backbone encodes a history ``[B, L]``, its last hidden state is fed back as an extra input token, plus a
learned *reasoning position embedding* ``p_k``, and the encoder runs again; this repeats for ``K`` steps
(default 2). Step outputs ``h_0 = h_L, h_1 .. h_K`` (each ``[B, d]``) are the hidden states at the newest token.

* **ERL** (ensemble reasoning learning): every step output is trained with the full-softmax cross-entropy, and a
  diversity term ``-mean_{i<j} KL(p_i || p_j)`` (weight ``kl_weight``, 0.05) pushes the steps' item
  distributions apart; the prediction uses the mean of ``h_0 .. h_K``.
* **PRL** (progressive reasoning learning): step ``k`` is trained with cross-entropy at temperature
  ``tau * alpha^(K-k)`` (``alpha = 5``: early steps soft, the last step sharp), plus an InfoNCE term between the
  last output of the clean chain and that of a chain whose fed-back states are perturbed by Gaussian noise;
  the prediction uses ``h_K``.

Choices the description leaves open are listed in the book's reproduction notes. We recompute the encoder over
the whole extended sequence at every step instead of caching keys and values: the outputs are the same, only
slower (histories are at most 20 items here).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.base import Recommender
from ..models.sasrec import SASRec, SASRecConfig


@dataclass(frozen=True)
class ReaRecSettings:
    method: str = "erl"                 # "erl" or "prl"
    reasoning_steps: int = 2            # K extra steps
    kl_weight: float = 0.05             # ERL: weight of the diversity (negative KL) term
    temperature: float = 1.0            # PRL: tau, the last step's temperature
    temperature_decay: float = 5.0      # PRL: alpha; step k uses tau * alpha^(K - k)
    noise_std: float = 0.1              # PRL: std of the noise added to every fed-back state
    contrastive_weight: float = 0.1     # PRL: weight of the InfoNCE term
    contrastive_temperature: float = 0.2

    def __post_init__(self):
        if self.method not in ("erl", "prl"):
            raise ValueError(f"ReaRec method must be 'erl' or 'prl', got {self.method!r}")
        if self.reasoning_steps < 1:
            raise ValueError(f"reasoning_steps must be >= 1, got {self.reasoning_steps}")
        if self.kl_weight < 0 or self.noise_std < 0 or self.contrastive_weight < 0:
            raise ValueError(f"kl_weight, noise_std and contrastive_weight must be >= 0: {self}")
        if self.temperature <= 0 or self.temperature_decay < 1 or self.contrastive_temperature <= 0:
            raise ValueError(f"need temperature > 0, temperature_decay >= 1, contrastive_temperature > 0: {self}")


@dataclass(frozen=True)
class ReaRecConfig:
    backbone: SASRecConfig = SASRecConfig()
    reasoning: ReaRecSettings = ReaRecSettings()


class ReaRec(Recommender):
    """SASRec + ``K`` latent reasoning steps. ``compute_loss``/``full_scores`` as any recommender."""

    def __init__(self, backbone: SASRec, cfg: ReaRecSettings = ReaRecSettings()):
        super().__init__()
        self.backbone, self.cfg = backbone, cfg
        self.rpe = nn.Embedding(cfg.reasoning_steps, backbone.d_model)     # reasoning position embeddings
        nn.init.normal_(self.rpe.weight, std=0.02)

    def reason(self, inputs: torch.Tensor, noise_std: float = 0.0) -> torch.Tensor:
        """``inputs`` ``[B, L]`` -> step outputs ``[B, K + 1, d]`` (``[:, 0]`` is the backbone's ``h_L``).

        ``noise_std > 0`` perturbs every fed-back state with Gaussian noise (PRL's contrastive view).
        """
        bb, K = self.backbone, self.cfg.reasoning_steps
        outs = [bb.encode(inputs)[:, -1]]
        fed = []
        for k in range(K):
            h = outs[-1] + noise_std * torch.randn_like(outs[-1]) if noise_std > 0 else outs[-1]
            fed.append(h + self.rpe.weight[k])
            outs.append(bb.encode(inputs, torch.stack(fed, 1))[:, -1])
        return torch.stack(outs, 1)

    def user_vector(self, steps: torch.Tensor) -> torch.Tensor:
        """``[B, K + 1, d]`` -> ``[B, d]``: ERL's mean over steps, PRL's last step."""
        return steps.mean(1) if self.cfg.method == "erl" else steps[:, -1]

    def full_scores(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.backbone.score(self.user_vector(self.reason(inputs)))

    def compute_loss(self, inputs, targets):
        cfg, bb = self.cfg, self.backbone
        steps = self.reason(inputs)                                        # [B, K+1, d]
        logits = bb.item_logits(steps).float()                             # [B, K+1, N-1]
        B, S, N = logits.shape
        y = (targets - 1).repeat_interleave(S)
        logs = {}
        if cfg.method == "erl":
            rec = F.cross_entropy(logits.reshape(B * S, N), y)
            logp = F.log_softmax(logits, -1)
            i, j = torch.triu_indices(S, S, 1)
            kl = (logp[:, i].exp() * (logp[:, i] - logp[:, j])).sum(-1).mean()   # mean pairwise KL(p_i || p_j)
            loss = rec - cfg.kl_weight * kl
            logs.update(rec=rec.item(), kl=kl.item())
        else:
            K = cfg.reasoning_steps
            temps = cfg.temperature * cfg.temperature_decay ** torch.arange(K, -1, -1, dtype=logits.dtype,
                                                                            device=logits.device)  # [K+1]
            rec = F.cross_entropy((logits / temps[None, :, None]).reshape(B * S, N), y)
            noisy = self.reason(inputs, cfg.noise_std)[:, -1]
            a, b = F.normalize(steps[:, -1], dim=-1), F.normalize(noisy, dim=-1)
            sim = a @ b.t() / cfg.contrastive_temperature                  # [B, B]; positives on the diagonal
            cl = F.cross_entropy(sim, torch.arange(B, device=sim.device))
            loss = rec + cfg.contrastive_weight * cl
            logs.update(rec=rec.item(), cl=cl.item())
        logs["loss"] = loss.item()
        return loss, logs


def build_rearec(cfg: ReaRecConfig, n_items: int, max_len: int, method: str | None = None) -> ReaRec:
    """Build ReaRec; ``method`` (from the registry name) must agree with ``cfg.reasoning.method``."""
    if method is not None and cfg.reasoning.method != method:
        raise ValueError(f"model rearec-{method} was given reasoning.method={cfg.reasoning.method!r}; "
                         f"use --model rearec-{cfg.reasoning.method} instead")
    return ReaRec(SASRec(cfg.backbone, n_items, max_len), cfg.reasoning)
