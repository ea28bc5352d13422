"""The layers every model here shares: the fast dropout, the causal padding mask, self-attention, the pre-LN
Transformer block and the weight initialisation (SASRec, HSTU, TIGER, LARES and ReaRec use them).

``Block`` takes any config with ``d_model``, ``n_heads``, ``d_ff``, ``dropout`` and ``activation`` (SASRec's).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def init_weights(module: nn.Module, std: float) -> None:
    """Normal(0, ``std``) for every Linear and Embedding weight, zero biases, a zero padding row."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=std)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            with torch.no_grad():
                m.weight[m.padding_idx].zero_()


class Dropout(nn.Module):
    """Inverted dropout whose keep mask comes from 16 random bits per element (``p`` rounded to a multiple of
    ``2**-16``, a change of at most ``8e-6`` in the keep probability).

    On CPU, torch draws random numbers on one thread (mt19937), one draw per element for ``nn.Dropout``
    (``bernoulli_``) or ``torch.rand``; that was a quarter of a SASRec step on the 2-core machine. Filling an
    ``int64`` tensor a quarter of the size and reading it as four ``int16`` lanes per draw needs a quarter of the
    draws: the mask costs 3.1 ms instead of 7.6 ms (``torch.rand``) or 16.7 ms (``bernoulli_``) for a
    ``[512, 20, 256]`` tensor on one thread (measured side by side; book/notes/speed.md, "Speed").
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
        if last_only:
            return self.tail(x, mask[:, :, -1:], 1)
        B, L, d = x.shape
        h, dh = self.n_heads, d // self.n_heads
        q, k, v = self.qkv(x).view(B, L, 3, h, dh).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, L, d))

    def tail(self, x: torch.Tensor, mask: torch.Tensor, n: int) -> torch.Tensor:
        """The queries of the last ``n`` positions only: ``x [B, L, d]``, ``mask [B, 1, n, L]`` (True = may attend)
        -> ``[B, n, d]`` (keys and values of every position)."""
        B, L, d = x.shape
        h, dh = self.n_heads, d // self.n_heads
        q = F.linear(x[:, -n:], self.qkv.weight[:d], self.qkv.bias[:d]).view(B, n, h, dh).transpose(1, 2)
        k, v = F.linear(x, self.qkv.weight[d:], self.qkv.bias[d:]).view(B, L, 2, h, dh).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, n, d))


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
        if last_only:
            return self.tail(x, mask[:, :, -1:], 1)
        x = x + self.drop(self.attn(self.ln1(x), mask))
        return x + self.drop(self.ffn(self.ln2(x)))

    def tail(self, x, mask, n: int):
        """The last ``n`` positions only: ``x [B, L, d]``, ``mask [B, 1, n, L]`` -> ``[B, n, d]``."""
        x_tail = x[:, -n:] + self.drop(self.attn.tail(self.ln1(x), mask, n))
        return x_tail + self.drop(self.ffn(self.ln2(x_tail)))
