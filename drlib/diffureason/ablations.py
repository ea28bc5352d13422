"""Every row of the paper's Table 3 as typed changes of :class:`~drlib.diffureason.module.DiffuReasonSettings`.

``ABLATIONS[label]`` maps settings fields to values (applied with :func:`drlib.registry.with_module`, so the
config is the one ``--set model.module.FIELD=VALUE`` would give: same values, same hash). The budgets of the
two-stage row are for the ``cpu`` profile (30 epochs at most): 10 epochs of MSE pre-training, then RL
fine-tuning until early stopping or the epoch cap.
"""
from __future__ import annotations

ABLATIONS: dict[str, dict[str, object]] = {
    "DiffuReason": {},
    "w/o CoT": {"reasoning_steps": 1},
    "w/o Diffusion": {"use_diffusion": False},
    "w/o RL": {"beta": 0.0},
    "w/o MSE": {"alpha": 0.0},
    "w/o Diffusion+RL": {"use_diffusion": False, "beta": 0.0},
    "with KL": {"kl_weight": 0.1},
    "with Two-stage": {"two_stage_epochs": 10},
}


def ablation_settings(label: str) -> dict[str, object]:
    """The module settings that turn the full model into Table 3's row ``label``."""
    if label not in ABLATIONS:
        raise KeyError(f"unknown ablation {label!r}; known: {', '.join(ABLATIONS)}")
    return ABLATIONS[label]


def describe(label: str) -> str:
    """``"model.module.beta=0.0, ..."``: the row as the ``--set`` overrides a user would type."""
    return ", ".join(f"model.module.{k}={str(v).lower() if isinstance(v, bool) else v}"
                     for k, v in ablation_settings(label).items())
