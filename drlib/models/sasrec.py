"""SASRec (Kang & McAuley 2018) as configured in the paper's Appendix A.1 / Table 5.

Causal self-attention over the (left-padded) history; pre-LayerNorm blocks; GELU FFN; tied item
embeddings for the output softmax over the full catalogue (trained with cross-entropy).

Input token at position ``i``: ``E[s_i] * sqrt(d) + P[i]`` (``scale_emb``, the original model's scaling). Both
tables start at std 0.02, so without the scale the position embeddings drown the item signal early in training;
with it the item embedding dominates the input (Beauty, cpu profile, mean of 3 seeds: test R@10 0.0779 without,
0.0919 with it, among the changes of the reproduction notes' "Strong backbones").
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from .base import Backbone
from .layers import Block, Dropout, causal_padding_mask, init_weights


@dataclass(frozen=True)
class SASRecConfig:
    d_model: int = 256       # Table 5: embedding dim
    n_layers: int = 2        # Table 5: encoder layers
    n_heads: int = 2         # Table 5: attention heads
    d_ff: int = 300          # Table 5: FFN hidden dim
    dropout: float = 0.5     # Table 5
    activation: str = "gelu"  # Table 5
    init_std: float = 0.02   # small init keeps softmax gradients out of the subnormal range
    scale_emb: bool = True   # item embedding * sqrt(d) at the input, as the original SASRec (Kang & McAuley 2018)

    def __post_init__(self):
        if self.d_model <= 0 or self.n_layers < 0 or self.n_heads <= 0 or self.d_ff <= 0:
            raise ValueError(f"SASRec sizes must be positive: {self}")
        if self.d_model % self.n_heads:
            raise ValueError(f"model.d_model={self.d_model} must be divisible by model.n_heads={self.n_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.activation not in ("gelu", "relu"):
            raise ValueError(f"model.activation must be 'gelu' or 'relu', got {self.activation!r}")


class SASRec(Backbone):
    """SASRec encoder. ``encode``: ``[B, L]`` item ids -> ``[B, L, d]``; ``score``: ``[..., d]`` -> ``[..., N]``."""

    def __init__(self, cfg: SASRecConfig, n_items: int, max_len: int):
        super().__init__()
        self.cfg, self.n_items, self.d_model, self.max_len = cfg, n_items, cfg.d_model, max_len
        self.item_emb = nn.Embedding(n_items + 1, cfg.d_model, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, cfg.d_model)
        self.emb_drop = Dropout(cfg.dropout)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.ln_f = nn.LayerNorm(cfg.d_model)
        init_weights(self, cfg.init_std)

    def embed(self, seqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``seqs`` ``[B, L]`` -> (``E[s] * sqrt(d) + P`` after dropout ``[B, L, d]``, keep mask ``[B, L, 1]``)."""
        L = seqs.shape[1]
        if L > self.max_len:
            raise ValueError(f"history length {L} exceeds the model's max_len {self.max_len}")
        pos = torch.arange(self.max_len - L, self.max_len, device=seqs.device)  # latest item -> last position
        keep = (seqs != 0).unsqueeze(-1)
        items = self.item_emb(seqs)
        if self.cfg.scale_emb:
            items = items * math.sqrt(self.d_model)
        return self.emb_drop((items + self.pos_emb(pos)) * keep), keep

    def _inputs(self, seqs: torch.Tensor, extra: torch.Tensor | None):
        """The first block's input ``[B, L (+ k), d]``, its keep mask ``[B, L (+ k), 1]`` and attention mask."""
        x, keep = self.embed(seqs)
        if extra is not None:
            B, k = extra.shape[:2]
            seqs = torch.cat([seqs, torch.ones(B, k, dtype=seqs.dtype, device=seqs.device)], 1)
            keep = torch.cat([keep, torch.ones(B, k, 1, dtype=keep.dtype, device=keep.device)], 1)
            x = torch.cat([x, self.emb_drop(extra)], 1)
        return x, keep, causal_padding_mask(seqs)

    def encode(self, seqs: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """``seqs`` ``[B, L]`` -> ``[B, L, d]``; with ``extra`` ``[B, k, d]`` -> ``[B, L + k, d]``.

        ``extra`` are input vectors appended after the latest item (ReaRec's reasoning tokens): they carry no
        item position embedding, attend causally to the history and to each other, and no item attends to them.
        """
        x, keep, mask = self._inputs(seqs, extra)
        for block in self.blocks:
            x = block(x, mask) * keep
        return self.ln_f(x)

    def encode_last(self, seqs: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """The newest position alone: ``seqs [B, L]`` (``extra [B, k, d]``) -> ``[B, d]``, equal to
        ``encode(seqs, extra)[:, -1]`` (up to float rounding) but the last block computes only the last
        position's query, FFN and norm (the newest position is never padding, so its keep mask is 1)."""
        if not self.blocks:
            return self.encode(seqs, extra)[:, -1]
        x, keep, mask = self._inputs(seqs, extra)
        for block in self.blocks[:-1]:
            x = block(x, mask) * keep
        return self.ln_f(self.blocks[-1](x, mask, last_only=True))[:, 0]

    def appended(self, seqs: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        """``G`` independent continuations of each history: ``seqs [B, L]``, ``extra [B, G, k, d]`` -> ``[B, G, d]``,
        the output at the last of each group's ``k`` extra tokens. Group ``g`` sees the history and its own tokens
        (causally), never another group's: equal to ``encode_last(seqs, extra[:, g])`` for every ``g`` (up to float
        rounding), but the history goes through the blocks once for all ``G`` groups (no item attends to an extra
        token, so the history's states do not depend on them)."""
        B, L = seqs.shape
        _, G, k, d = extra.shape
        n = G * k
        x, keep = self.embed(seqs)
        hist_mask = causal_padding_mask(seqs)
        z = self.emb_drop(extra.reshape(B, n, d))
        group = torch.arange(n, device=seqs.device) // k
        own = (group[:, None] == group[None]) & torch.ones(n, n, dtype=torch.bool, device=seqs.device).tril()
        mask = torch.cat([(seqs != 0)[:, None, :].expand(B, n, L), own[None].expand(B, n, n)], -1)[:, None]
        for block in self.blocks:
            z = block.tail(torch.cat([x, z], 1), mask, n)
            x = block(x, hist_mask) * keep
        return self.ln_f(z.view(B, G, k, d)[:, :, -1])

    # ------------------------------------------------------------------ DiffuReason's rollout reading
    def latent_token(self, latent: torch.Tensor) -> torch.Tensor:
        """A latent in the item table's space enters as an item does: ``* sqrt(d)`` with ``scale_emb``."""
        return latent * math.sqrt(self.d_model) if self.cfg.scale_emb else latent

    def rollout(self, inputs: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.appended(inputs, tokens)

    def item_embeddings(self) -> torch.Tensor:
        return self.item_emb.weight
