"""The denoising network of Appendix C.1.2 (Eq. 4, 16).

Input ``[c, LN(x_t) + t_emb]`` (``2d``) -> ``4d`` -> ``4d`` -> ``2d`` with SiLU and dropout 0.1, split into the
mean ``mu`` and ``log sigma``; ``sigma = softplus(log sigma) + 1e-5`` clamped to ``[1e-3, 1]``.

``LN`` (``input_norm=True``, our addition, not in the paper) is a LayerNorm on the incoming state. Without it the
16 chained steps ``x^{t-1} = mu_t(x^t) + ...`` can amplify the state at every step; on Beauty with the MSE taken as
a mean the chain diverged in the third epoch (L_diff 1e18). With it, each ``mu_t`` is a function of bounded inputs.

The condition ``c`` is the same at all ``T`` steps, so its half of the first layer, ``W_c c + b`` (``[B, 4d]``), is
computed once per chain (:meth:`Denoiser.condition`) and each step (:meth:`Denoiser.step`) adds ``W_x (LN(x_t) +
t_emb)``: the first layer's arithmetic per step halves. The parameters are those of the concatenated layer
(``net.0`` is ``Linear(2d, 4d)``, its first ``d`` input columns read ``c``); the result is the same up to float
rounding (a test compares it with the concatenation). Its dropout is :class:`drlib.models.layers.Dropout` (the
backbones' cheap masks; ``nn.Dropout``'s keep probability).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.layers import Dropout


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

    def __init__(self, d: int, dropout: float = 0.1, input_norm: bool = True):
        super().__init__()
        self.time = SinusoidalTimeEmbedding(d)
        self.in_norm = nn.LayerNorm(d) if input_norm else nn.Identity()
        self.net = nn.Sequential(nn.Linear(2 * d, 4 * d), nn.SiLU(), Dropout(dropout),
                                 nn.Linear(4 * d, 4 * d), nn.SiLU(), Dropout(dropout),
                                 nn.Linear(4 * d, 2 * d))

    def condition(self, c: torch.Tensor) -> torch.Tensor:
        """``c [B, d]`` -> ``W_c c + b`` ``[B, 4d]``: the condition's part of the first layer, shared by every step."""
        first = self.net[0]
        return F.linear(c, first.weight[:, :c.shape[-1]], first.bias)

    def step(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step from ``cond = condition(c)``: ``(x_t [B, d], t [B] or [1], cond [B, 4d])`` -> ``(mu, sigma)``."""
        first = self.net[0]
        h = cond + F.linear(self.in_norm(x_t) + self.time(t), first.weight[:, x_t.shape[-1]:])
        mu, log_sigma = self.net[1:](h).chunk(2, -1)
        sigma = (F.softplus(log_sigma) + 1e-5).clamp(self.SIGMA_MIN, self.SIGMA_MAX)
        return mu, sigma

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.step(x_t, t, self.condition(c))
