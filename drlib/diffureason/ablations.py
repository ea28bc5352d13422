"""Every row of the paper's Table 3, and every reading of the paper we try, as typed changes of :class:`~drlib.diffureason.module.DiffuReasonSettings`.

``ABLATIONS[label]`` maps settings fields to values (applied with :func:`drlib.registry.with_module`, so the
config is the one ``--set model.module.FIELD=VALUE`` would give: same values, same hash). The budgets of the
two-stage row are for the ``cpu`` profile (30 epochs at most): 10 epochs of MSE pre-training, then RL
fine-tuning until early stopping or the epoch cap.

``READINGS[label]`` are the readings of Sec. 3 and Appendix A.1 / C that the text allows (the reproduction notes
quote what each one interprets). ``"literal"`` is the module as Sec. 3 writes it; each other row changes one
thing; the best faithful configuration is chosen among them on validation NDCG@10 only.
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


READINGS: dict[str, dict[str, object]] = {
    "literal": {},
    # "the alignment parameters are updated" (Sec. 3.4): L_align trains the refinement, not the encoder
    "align: refinement only": {"align_scope": "refinement"},
    # Eq. 20 as a per-coordinate mean: the policy gradient's size no longer grows with d
    "log-density: mean over d": {"logp_reduction": "mean"},
    # A.1: the refined latent re-enters SASRec as an input token; prediction and reward from SASRec's output
    "A.1 rollout": {"rollouts": 1},
    # the backbone stays a trained recommender: its own CE on h_L beside L_rec (Eq. 13) on the anchor
    "backbone loss on h_L": {"backbone_weight": 1.0},
    # C.1.2's deterministic inference starts from tau_R: training starts there too
    "no start noise": {"init_noise": 0.0},
    # "local" exploration (Sec. 3.4): the samples' spread is a tenth of the learned sigma
    "local samples": {"sample_scale": 0.1},
    # Sec. 4.2 and A.1 say "Hit Rate" as the reward where Eq. 9 says Hit@1: Hit@10, the rate the tables report
    "reward: Hit@10": {"reward": "hit@10"},
    # Eq. 7 as written, a squared norm (a sum over d; our default averages), and C.1.2's denoiser input
    # [c, x_t + t_emb] without the LayerNorm we add (which the mean needed, not the sum)
    "L_diff: squared norm, no LN": {"diff_reduction": "sum", "denoiser_input_norm": False},
}

# Readings that need a backbone reading extra input tokens (SASRec)
SASREC_ONLY = ("A.1 rollout",)
VARIANTS: dict[str, dict[str, object]] = {**ABLATIONS, **READINGS}


# Readings combine: "align: refinement only + backbone loss on h_L" applies both (they change different settings).
JOIN = " + "
COMBINABLE = tuple(r for r in READINGS if r != "literal")


def combine(labels) -> str:
    """The label of several readings applied together, in :data:`READINGS` order (``"A + B"``)."""
    labels = list(dict.fromkeys(labels))
    for r in labels:
        if r not in COMBINABLE:
            raise KeyError(f"only readings other than 'literal' combine, not {r!r}; readings: {', '.join(COMBINABLE)}")
    return JOIN.join(r for r in READINGS if r in labels)


def is_reading(label: str) -> bool:
    """Whether ``label`` is a reading of :data:`READINGS` or a combination of them (:func:`combine`)."""
    return label in READINGS or (JOIN in label and all(p in COMBINABLE for p in label.split(JOIN)))


def ablation_settings(label: str) -> dict[str, object]:
    """The module settings that turn the full model into Table 3's row or the reading ``label``; a combination of
    readings (``"A + B"``, :func:`combine`) applies the settings of each, which must not overlap."""
    if label in VARIANTS:
        return VARIANTS[label]
    if JOIN in label:
        out: dict[str, object] = {}
        for part in label.split(JOIN):
            if part not in COMBINABLE:
                raise KeyError(f"{part!r} in {label!r} is not a reading to combine; readings: {', '.join(COMBINABLE)}")
            clash = set(out) & set(READINGS[part])
            if clash:
                raise ValueError(f"{label!r}: {part!r} sets {', '.join(sorted(clash))} again")
            out.update(READINGS[part])
        return out
    raise KeyError(f"unknown ablation or reading {label!r}; known: {', '.join(VARIANTS)} "
                   f"(or readings joined by {JOIN!r})")


def describe(label: str) -> str:
    """``"model.module.beta=0.0, ..."``: the row as the ``--set`` overrides a user would type."""
    return ", ".join(f"model.module.{k}={str(v).lower() if isinstance(v, bool) else v}"
                     for k, v in ablation_settings(label).items())
