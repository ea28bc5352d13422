"""SASRec (Kang & McAuley 2018) as configured in the paper's Appendix A.1 / Table 5.

Causal self-attention over the (left-padded) history; pre-LayerNorm blocks; GELU FFN; tied item
embeddings for the output softmax over the full catalogue (trained with cross-entropy).

Input token at position ``i``: ``E[s_i] * sqrt(d) + P[i]`` (``scale_emb``, the original model's scaling). Both
tables start at std 0.02, so without the scale the position embeddings drown the item signal early in training;
with it the item embedding dominates the input (measured in the reproduction notes: +15% test R@10 on Beauty).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import Backbone


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


class Dropout(nn.Module):
    """Inverted dropout whose keep mask comes from 16 random bits per element (``p`` rounded to a multiple of
    ``2**-16``, a change of at most ``8e-6`` in the keep probability).

    On CPU, torch draws random numbers on one thread (mt19937), one draw per element for ``nn.Dropout``
    (``bernoulli_``) or ``torch.rand``; that was a quarter of a SASRec step on the 2-core machine. Filling an
    ``int64`` tensor a quarter of the size and reading it as four ``int16`` lanes per draw needs a quarter of the
    draws: the mask costs 3.1 ms instead of 7.6 ms (``torch.rand``) or 16.7 ms (``bernoulli_``) for a
    ``[512, 20, 256]`` tensor on one thread (measured side by side; reproduction notes, "Speed").
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.threshold = int(round(p * 65536)) - 32768      # an int16 lane keeps its element iff lane >= threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        return x * keep_mask(x.shape, self.threshold, x.device).to(x.dtype) * (1.0 / (1.0 - self.p))


def keep_mask(shape: torch.Size | tuple, threshold: int, device) -> torch.Tensor:
    """Boolean ``shape`` mask, each element True with probability ``(32768 - threshold) / 65536``: the int16 lanes
    of uniformly random 64-bit words compared with ``threshold``."""
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-2 ** 63, 2 ** 63 - 1)
    return (words.view(torch.int16)[:n] >= threshold).view(shape)


def causal_padding_mask(seqs: torch.Tensor) -> torch.Tensor:
    """Boolean attention mask ``[B, 1, L, L]`` (True = may attend): causal, padded keys hidden.

    A position may always attend to itself, so padded query rows never see an all-masked row (no NaN).
    """
    B, L = seqs.shape
    causal = torch.ones(L, L, dtype=torch.bool, device=seqs.device).tril()
    valid_key = (seqs != 0)[:, None, :]                      # [B, 1, L]
    eye = torch.eye(L, dtype=torch.bool, device=seqs.device)
    return (causal & (valid_key | eye))[:, None]             # [B, 1, L, L]


class SelfAttention(nn.Module):
    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """``x`` ``[B, L, d]``, ``mask`` ``[B, 1, L, L]`` -> ``[B, L, d]``; ``last_only``: the queries of the last
        position only -> ``[B, 1, d]`` (keys and values of every position; the q rows of ``qkv`` are applied to the
        last position alone)."""
        B, L, d = x.shape
        h, dh = self.n_heads, d // self.n_heads
        if last_only:
            q = F.linear(x[:, -1:], self.qkv.weight[:d], self.qkv.bias[:d]).view(B, 1, h, dh).transpose(1, 2)
            k, v = F.linear(x, self.qkv.weight[d:], self.qkv.bias[d:]).view(B, L, 2, h, dh).permute(2, 0, 3, 1, 4)
            mask, Lq = mask[:, :, -1:], 1
        else:
            q, k, v = self.qkv(x).view(B, L, 3, h, dh).permute(2, 0, 3, 1, 4)
            Lq = L
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, Lq, d))


class Block(nn.Module):
    """Pre-LN Transformer block: ``x + Attn(LN(x))``, then ``x + FFN(LN(x))``."""

    def __init__(self, cfg: SASRecConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        act = nn.GELU() if cfg.activation == "gelu" else nn.ReLU()
        self.ffn = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), act, Dropout(cfg.dropout),
                                 nn.Linear(cfg.d_ff, cfg.d_model))
        self.drop = Dropout(cfg.dropout)

    def forward(self, x, mask, last_only: bool = False):
        """``x [B, L, d]`` -> ``[B, L, d]``, or ``[B, 1, d]`` (the last position) with ``last_only``."""
        a = self.drop(self.attn(self.ln1(x), mask, last_only))
        x = (x[:, -1:] if last_only else x) + a
        return x + self.drop(self.ffn(self.ln2(x)))


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
        self.apply(self._init)

    def _init(self, m: nn.Module):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=self.cfg.init_std)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            with torch.no_grad():
                m.weight[m.padding_idx].zero_()

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

    def item_embeddings(self) -> torch.Tensor:
        return self.item_emb.weight
