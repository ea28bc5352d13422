"""The denoising network of Appendix C.1.2 (Eq. 4, 16).

Input ``[c, x_t + t_emb]`` (``2d``) -> ``4d`` -> ``4d`` -> ``2d`` with SiLU and dropout 0.1, split into the
mean ``mu`` and ``log sigma``; ``sigma = softplus(log sigma) + 1e-5`` clamped to ``[1e-3, 1]``.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class SinusoidalTimeEmbedding(nn.Module):
    """Integer step ``t`` ``[B]`` -> ``t_emb`` ``[B, d]``: sinusoidal features then a 2-layer SiLU MLP."""

    def __init__(self, d: int):
        super().__init__()
        self.d = d
        self.mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))

    def sinusoid(self, t: torch.Tensor) -> torch.Tensor:
        half = self.d // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        ang = t.float()[:, None] * freqs[None]
        emb = torch.cat([torch.sin(ang), torch.cos(ang)], -1)
        return F.pad(emb, (0, self.d - 2 * half))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.sinusoid(t))


class Denoiser(nn.Module):
    """``(x_t [B, d], t [B], c [B, d])`` -> ``(mu [B, d], sigma [B, d])`` (Eq. 16)."""

    SIGMA_MIN, SIGMA_MAX = 1e-3, 1.0

    def __init__(self, d: int, dropout: float = 0.1):
        super().__init__()
        self.time = SinusoidalTimeEmbedding(d)
        self.net = nn.Sequential(nn.Linear(2 * d, 4 * d), nn.SiLU(), nn.Dropout(dropout),
                                 nn.Linear(4 * d, 4 * d), nn.SiLU(), nn.Dropout(dropout),
                                 nn.Linear(4 * d, 2 * d))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net(torch.cat([c, x_t + self.time(t)], -1))
        mu, log_sigma = h.chunk(2, -1)
        sigma = (F.softplus(log_sigma) + 1e-5).clamp(self.SIGMA_MIN, self.SIGMA_MAX)
        return mu, sigma
