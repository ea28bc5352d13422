"""The DiffuReason module (paper Sec. 3, Appendix C), built piece by piece.

Done: the cosine noise schedule (Eq. 17), the denoiser and time embedding (C.1.2), the latent reasoner
(Eq. 1-2), the Gaussian log density (Eq. 20) and the GRPO pieces (Eq. 10, 11, 21).
Next: the module that wires them onto a backbone, its losses and the ablation switches.
"""
from .denoiser import Denoiser, SinusoidalTimeEmbedding
from .policy import gaussian_log_density, group_advantages, grpo_loss
from .reasoner import AttentionPooling, LatentReasoner
from .schedule import CosineSchedule

__all__ = ["AttentionPooling", "CosineSchedule", "Denoiser", "LatentReasoner", "SinusoidalTimeEmbedding",
           "gaussian_log_density", "group_advantages", "grpo_loss"]
