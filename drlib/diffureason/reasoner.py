"""Latent reasoning with thinking tokens (Eq. 1-2).

``tau_1 = h_L``; for ``r = 2..R``, ``tau_r`` is the last output of a Transformer decoder (Table 5: 2 layers,
8 heads) whose target sequence is ``tau_1 .. tau_{r-1}`` (causal self-attention, plus a learned step
embedding) and whose memory is the backbone's hidden states ``H`` (cross-attention, padding masked):
the attention of Eq. 1 followed by the decoder's FFN (the MLP of Eq. 1). Attention pooling over
``tau_1..tau_R`` gives the condition ``c`` (Eq. 2).

The parameters are those of ``nn.TransformerDecoder`` (pre-norm layers, GELU), so state dicts are unchanged;
the forward pass is written out here for one reason: the memory ``H`` is the same at every reasoning step, so
each layer projects it to keys and values once (``[B, heads, L, d/heads]``) and the ``R - 1`` steps share them.
``nn.TransformerDecoder`` would project ``H`` again at every step: that was ``(R - 1)`` times the memory's
projections, the largest part of the reasoner's arithmetic. The result is that of ``nn.TransformerDecoder`` up to
float rounding (a test compares the two, and the speed-ab investigation times both).

Dropout (on the attention weights, after each sub-layer, inside the FFN) is :class:`drlib.models.layers.Dropout`,
as in the backbones: the same keep probability as ``nn.Dropout`` with masks that cost a quarter of the random
draws. With dropout on, a step therefore draws other masks than ``nn.TransformerDecoder`` would: the same
distribution, not the same numbers.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.layers import Dropout


def _heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """``[B, S, d]`` -> ``[B, heads, S, d/heads]``."""
    B, S, d = x.shape
    return x.view(B, S, n_heads, d // n_heads).transpose(1, 2)


def _attend(attn: nn.MultiheadAttention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
            drop: nn.Module) -> torch.Tensor:
    """``attn``'s attention from projected heads ``q [B,h,S,e]``, ``k``/``v [B,h,T,e]`` and a boolean ``mask``
    broadcastable to ``[B,h,S,T]`` (True = may attend; every query keeps at least one key), the attention
    weights through ``drop`` -> ``[B, S, d]`` after ``attn.out_proj``."""
    scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    w = drop(torch.softmax(scores.masked_fill(~mask, float("-inf")), -1))
    o = w @ v
    B, h, S, e = o.shape
    return attn.out_proj(o.transpose(1, 2).reshape(B, S, h * e))


class LatentReasoner(nn.Module):
    """``H [B, L, d]``, ``pad [B, L]`` (True = padding) -> thinking tokens ``[B, R, d]``."""

    def __init__(self, d: int, steps: int = 3, n_layers: int = 2, n_heads: int = 8, dropout: float = 0.1):
        super().__init__()
        if steps < 1:
            raise ValueError(f"reasoning steps R must be >= 1, got {steps}")
        if d % n_heads:
            raise ValueError(f"latent width {d} must be divisible by the reasoner's {n_heads} heads")
        self.steps, self.n_heads = steps, n_heads
        self.step_emb = nn.Embedding(max(steps, 1), d)
        nn.init.normal_(self.step_emb.weight, std=0.02)
        layer = nn.TransformerDecoderLayer(d, n_heads, dim_feedforward=4 * d, dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, n_layers, norm=nn.LayerNorm(d))
        for layer in self.decoder.layers:                  # no parameters: the state dict is nn.TransformerDecoder's
            for name in ("dropout", "dropout1", "dropout2", "dropout3"):
                setattr(layer, name, Dropout(dropout))
        self.attn_dropout = Dropout(dropout)               # on the attention weights (nn.MultiheadAttention's)

    def memory_kv(self, H: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each layer's cross-attention keys and values of the memory ``H [B, L, d]``: ``[B, heads, L, d/heads]``."""
        d = H.shape[-1]
        out = []
        for layer in self.decoder.layers:
            w, b = layer.multihead_attn.in_proj_weight, layer.multihead_attn.in_proj_bias
            k, v = F.linear(H, w[d:], b[d:]).chunk(2, -1)
            out.append((_heads(k, self.n_heads), _heads(v, self.n_heads)))
        return out

    def decode(self, tgt: torch.Tensor, kv: list[tuple[torch.Tensor, torch.Tensor]], keep: torch.Tensor,
               ) -> torch.Tensor:
        """``nn.TransformerDecoder(tgt, H, tgt_mask=causal, memory_key_padding_mask=pad)`` with the memory's keys
        and values ``kv`` (:meth:`memory_kv`) given. ``tgt [B, r, d]``, ``keep [B, 1, 1, L]`` (True = not padding)."""
        r, d = tgt.shape[1], tgt.shape[2]
        causal = torch.ones(r, r, dtype=torch.bool, device=tgt.device).tril()
        x = tgt
        for layer, (k, v) in zip(self.decoder.layers, kv):
            sa, ca = layer.self_attn, layer.multihead_attn
            q, ks, vs = (_heads(t, self.n_heads) for t in F.linear(layer.norm1(x), sa.in_proj_weight,
                                                                    sa.in_proj_bias).chunk(3, -1))
            x = x + layer.dropout1(_attend(sa, q, ks, vs, causal, self.attn_dropout))
            q = _heads(F.linear(layer.norm2(x), ca.in_proj_weight[:d], ca.in_proj_bias[:d]), self.n_heads)
            x = x + layer.dropout2(_attend(ca, q, k, v, keep, self.attn_dropout))
            ffn = layer.linear2(layer.dropout(layer.activation(layer.linear1(layer.norm3(x)))))   # Eq. 1's MLP
            x = x + layer.dropout3(ffn)
        return self.decoder.norm(x)

    def forward(self, H: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        tokens = [H[:, -1]]                                          # tau_1 = h_L
        if self.steps > 1:
            kv, keep = self.memory_kv(H), ~pad[:, None, None, :]
            for r in range(1, self.steps):
                tgt = torch.stack(tokens, 1) + self.step_emb.weight[:r]   # [B, r, d]
                tokens.append(self.decode(tgt, kv, keep)[:, -1])          # tau_{r+1}
        return torch.stack(tokens, 1)


class AttentionPooling(nn.Module):
    """Eq. 2, ``psi``: ``c = sum_r softmax_r(w . tau_r / sqrt(d)) tau_r``. ``[B, R, d]`` -> ``([B, d], [B, R])``."""

    def __init__(self, d: int):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(d))
        self.scale = d ** -0.5

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = torch.softmax(tokens @ self.query * self.scale, -1)
        return (w.unsqueeze(-1) * tokens).sum(1), w
