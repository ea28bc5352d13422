"""The Gaussian policy and GRPO alignment of Sec. 3.4 and Appendix C.2.

Shapes: ``B`` users, ``G`` samples per user, ``d`` latent width.
"""
from __future__ import annotations

import math

import torch


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, reduction: str = "sum",
                         ) -> torch.Tensor:
    """Eq. 20: ``log N(z; mu, diag(sigma^2))`` summed over the last dimension (constant included);
    ``reduction="mean"`` divides it by ``d`` (the per-coordinate mean: a reading, not the paper's formula).

    ``z`` ``[..., d]``, ``mu``/``sigma`` broadcastable to it -> ``[...]``.
    """
    d = z.shape[-1]
    logp = -0.5 * (((z - mu) / sigma) ** 2 + 2 * torch.log(sigma)).sum(-1) - 0.5 * d * math.log(2 * math.pi)
    if reduction == "mean":
        return logp / d
    if reduction != "sum":
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    return logp


def group_advantages(rewards: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Eq. 10: ``(r_i - mean(r)) / (std(r) + eps)`` within each group. ``rewards`` ``[B, G]`` -> ``[B, G]``.

    The standard deviation is the population one (``unbiased=False``); a group whose rewards are all equal
    gets zero advantages.
    """
    mean = rewards.mean(-1, keepdim=True)
    std = rewards.std(-1, unbiased=False, keepdim=True)
    return (rewards - mean) / (std + eps)


def grpo_loss(logp_new: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, eps_clip: float = 0.2,
              ) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 11 with the ratio of Eq. 21: ``-mean_i min(rho_i A_i, clip(rho_i, 1-eps, 1+eps) A_i)``.

    ``logp_new`` ``[B, G]`` carries gradients; ``logp_old`` is detached here (the old policy, Eq. 21).
    Returns the loss averaged over the group and the batch, plus the clipped fraction and mean ratio.
    """
    ratio = torch.exp(logp_new - logp_old.detach())
    unclipped = ratio * adv
    clipped = ratio.clamp(1 - eps_clip, 1 + eps_clip) * adv
    loss = -torch.minimum(unclipped, clipped).mean()
    with torch.no_grad():
        frac = ((ratio < 1 - eps_clip) | (ratio > 1 + eps_clip)).float().mean().item()
    return loss, {"clip_frac": frac, "ratio": ratio.detach().mean().item()}
