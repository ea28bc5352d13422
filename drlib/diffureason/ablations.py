"""Every row of the paper's Table 3 as ``--set`` overrides on a DiffuReason model (no code copies).

``ABLATIONS[label]`` is a tuple of ``section.field=value`` strings for :func:`drlib.config.make_config`.
The budgets of the two-stage row are for the ``cpu`` profile (30 epochs at most): 10 epochs of MSE
pre-training, then RL fine-tuning until early stopping or the epoch cap.
"""
from __future__ import annotations

ABLATIONS: dict[str, tuple[str, ...]] = {
    "DiffuReason": (),
    "w/o CoT": ("model.module.reasoning_steps=1",),
    "w/o Diffusion": ("model.module.use_diffusion=false",),
    "w/o RL": ("model.module.beta=0",),
    "w/o MSE": ("model.module.alpha=0",),
    "w/o Diffusion+RL": ("model.module.use_diffusion=false", "model.module.beta=0"),
    "with KL": ("model.module.kl_weight=0.1",),
    "with Two-stage": ("model.module.two_stage_epochs=10",),
}


def ablation_overrides(label: str) -> tuple[str, ...]:
    if label not in ABLATIONS:
        raise KeyError(f"unknown ablation {label!r}; known: {', '.join(ABLATIONS)}")
    return ABLATIONS[label]
