"""Noise schedule, kept apart from the denoiser (the diffusers scheduler/model split).

Eq. 17 (cosine schedule of Nichol & Dhariwal): ``alpha_bar_t = cos^2(((t/T + s) / (1 + s)) * pi/2)``,
``s = 0.008``, for ``t = 0 .. T``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class CosineSchedule:
    T: int = 16          # Table 5: diffusion denoising steps
    s: float = 0.008     # Eq. 17 offset

    def __post_init__(self):
        if self.T < 1:
            raise ValueError(f"diffusion steps T must be >= 1, got {self.T}")
        if self.s <= 0:
            raise ValueError(f"cosine-schedule offset s must be > 0, got {self.s}")

    def alpha_bar(self, t: torch.Tensor | int | float) -> torch.Tensor:
        """``alpha_bar_t`` of Eq. 17 for integer or real ``t`` in ``[0, T]`` (any shape)."""
        t = torch.as_tensor(t, dtype=torch.float64)
        return torch.cos(((t / self.T + self.s) / (1 + self.s)) * math.pi / 2) ** 2

    def alpha_bars(self) -> torch.Tensor:
        """``[T + 1]`` table ``alpha_bar_0 .. alpha_bar_T`` (decreasing from ~1 to 0)."""
        return self.alpha_bar(torch.arange(self.T + 1))

    def timesteps(self) -> list[int]:
        """Reverse-process order ``T, T-1, ..., 1``."""
        return list(range(self.T, 0, -1))
