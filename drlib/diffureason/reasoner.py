"""Latent reasoning with thinking tokens (Eq. 1-2).

``tau_1 = h_L``; for ``r = 2..R``, ``tau_r`` is the last output of a Transformer decoder (Table 5: 2 layers,
8 heads) whose target sequence is ``tau_1 .. tau_{r-1}`` (causal self-attention, plus a learned step
embedding) and whose memory is the backbone's hidden states ``H`` (cross-attention, padding masked):
the attention of Eq. 1 followed by the decoder's FFN (the MLP of Eq. 1). Attention pooling over
``tau_1..tau_R`` gives the condition ``c`` (Eq. 2).
"""
from __future__ import annotations

import torch
import torch.nn as nn


class LatentReasoner(nn.Module):
    """``H [B, L, d]``, ``pad [B, L]`` (True = padding) -> thinking tokens ``[B, R, d]``."""

    def __init__(self, d: int, steps: int = 3, n_layers: int = 2, n_heads: int = 8, dropout: float = 0.1):
        super().__init__()
        if steps < 1:
            raise ValueError(f"reasoning steps R must be >= 1, got {steps}")
        if d % n_heads:
            raise ValueError(f"latent width {d} must be divisible by the reasoner's {n_heads} heads")
        self.steps = steps
        self.step_emb = nn.Embedding(max(steps, 1), d)
        nn.init.normal_(self.step_emb.weight, std=0.02)
        layer = nn.TransformerDecoderLayer(d, n_heads, dim_feedforward=4 * d, dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, n_layers, norm=nn.LayerNorm(d))

    def forward(self, H: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        tokens = [H[:, -1]]                                          # tau_1 = h_L
        for r in range(1, self.steps):
            tgt = torch.stack(tokens, 1) + self.step_emb.weight[:r]   # [B, r, d]
            causal = torch.triu(torch.ones(r, r, dtype=torch.bool, device=H.device), 1)
            out = self.decoder(tgt, H, tgt_mask=causal, memory_key_padding_mask=pad)
            tokens.append(out[:, -1])                                 # tau_{r+1}
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
