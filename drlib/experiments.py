"""The set of runs behind each paper artifact, and one way to fetch them: stored records, or training.

Notebooks call these; so can users who want a table without the notebook. ``collect`` reads the results
store and trains only what is missing when ``train_missing`` is true (the book build only reads).
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

from .config import RunConfig
from .diffureason.ablations import ABLATIONS, READINGS, is_reading
from .registry import MODELS, make_config, with_module
from .explorer import store_views, views_from_record, views_path
from .results import load_record, read_record
from .runner import run
from .weights import export_weights, weights_paths


# Experiment folders whose runs another artifact may reuse when their config hash matches, searched in order.
SHARED_EXPERIMENTS = ("main", "ablation", "sensitivity")


def collect(cfgs: Iterable[RunConfig], train_missing: bool = False, progress: bool = False,
            log=print) -> tuple[list[dict], list[RunConfig]]:
    """(stored or newly trained records, configs still missing)."""
    found, missing = [], []
    for cfg in cfgs:
        rec = load_record(cfg)
        for other in SHARED_EXPERIMENTS:
            # the same config (same hash) may have run for another artifact (the full model as a main-table run,
            # R = 1 as Table 3's w/o CoT): reuse it under this row's label
            if rec is None and other != cfg.experiment:
                rec = load_record(dataclasses.replace(cfg, experiment=other))
        if rec is not None and cfg.variant and rec.get("label") != cfg.label:
            rec = {**rec, "label": cfg.label}      # a run stored by the CLI carries the model's label
        if rec is None and train_missing:
            rec = run(cfg, progress=progress, log=log)
        (found.append(rec) if rec is not None else missing.append(cfg))
    return found, missing


def main_table_configs(datasets=("beauty",), models=("sasrec", "diffureason-s"), profile="cpu",
                       seeds=(0, 1, 2)) -> list[RunConfig]:
    """Table 2: every (dataset, model, seed)."""
    return [make_config(m, d, profile, s) for d in datasets for m in models for s in seeds]


def ablation_configs(dataset="beauty", profile="cpu", seeds=(0,), model="diffureason-s",
                     rows: Iterable[str] | None = None) -> list[RunConfig]:
    """Table 3: one config per row and seed. The full model's row is the main-table run (same config hash)."""
    out = []
    for row in rows or ABLATIONS:
        for s in seeds:
            if row == "DiffuReason":
                out.append(make_config(model, dataset, profile, s))
            else:   # where `python -m drlib train --ablation ROW` stores it
                out.append(make_config(model, dataset, profile, s, experiment="ablation", ablation=row))
    return out


def sensitivity_configs(dataset="beauty", profile="cpu", seed=0, model="diffureason-s",
                        alphas=(0.0, 0.5, 1.0, 2.0), betas=(0.0, 0.5, 1.0, 2.0),
                        reasoning_steps=(1, 2, 3, 4, 5), group_sizes=(2, 4, 8, 16)) -> dict[str, list[RunConfig]]:
    """Fig. 3 (alpha, beta) and Fig. 2's quality curves (R, G): one config per value, others at defaults."""
    def one(field, v):
        cfg = with_module(make_config(model, dataset, profile, seed, experiment="sensitivity"), **{field: v})
        return dataclasses.replace(cfg, variant=f"{field}={getattr(cfg.model.module, field)}")
    return {f: [one(f, v) for v in vals] for f, vals in
            (("alpha", alphas), ("beta", betas), ("reasoning_steps", reasoning_steps), ("group_size", group_sizes))}


# The DiffuReason models the explorer shows, each with the stand-alone backbone it is compared with.
EXPLORED = {m: MODELS[m].backbone for m in ("diffureason-s", "diffureason-h")}


def explorer_configs(model: str, dataset: str = "beauty", profile: str = "cpu", seed: int = 0,
                     overrides=(), reading: str | None = None) -> tuple[RunConfig, RunConfig]:
    """The explored DiffuReason run and its stand-alone backbone run (``overrides`` of the model reach the backbone
    only for the train, data and eval sections: the model sections differ). ``reading``: a reading of the paper
    (:data:`drlib.diffureason.ablations.READINGS`, or a combination ``"A + B"``), whose run is stored under
    ``results/readings/``; None or ``"literal"`` is the plain model."""
    if model not in EXPLORED:
        raise ValueError(f"the explorer shows {', '.join(EXPLORED)}, not {model!r}")
    if reading is not None and not is_reading(reading):
        raise ValueError(f"{reading!r} is not a reading of the paper; readings: {', '.join(READINGS)} "
                         "(or two joined by ' + ')")
    shared = [o for o in overrides if o.split(".", 1)[0] in ("train", "data", "eval")]
    own = make_config(model, dataset, profile, seed, overrides) if reading in (None, "literal") else \
        make_config(model, dataset, profile, seed, overrides, experiment="readings", ablation=reading)
    return own, make_config(EXPLORED[model], dataset, profile, seed, shared)


def explorer_views(models=tuple(EXPLORED), dataset: str = "beauty", profile: str = "cpu", seed: int = 0,
                   overrides=(), train_missing: bool = False, n_users: int = 60, log=print,
                   readings: dict[str, str] | None = None
                   ) -> tuple[dict[str, tuple[dict, list[dict]]], list[RunConfig]]:
    """The stored explorer views (:func:`drlib.explorer.store_views`) of each model in ``models``, then of each
    ``{model: reading}`` in ``readings`` (labelled ``"DiffuReason-S (reading)"``): ``({label: (record, views)},
    missing configs)``. With ``train_missing`` a missing one is made: the two runs trained if needed, their weights
    exported (:func:`drlib.weights.export_weights`), the views stored."""
    out, missing = {}, []
    for m, reading in [(m, None) for m in models] + list((readings or {}).items()):
        cfg, base = explorer_configs(m, dataset, profile, seed, overrides, reading)
        path = views_path(cfg.run_id)
        if not path.exists() and train_missing:
            found, _ = collect([cfg, base], train_missing=True, log=log)
            for rec in found:
                if not weights_paths(rec["run_id"])[1].exists():
                    export_weights(rec["run_id"])
            store_views(cfg.run_id, base.run_id, n_users=n_users)
        if path.exists():
            rec = read_record(path)
            label = rec["label"] if reading in (None, "literal") else f"{MODELS[m].label} ({reading})"
            out[label] = (rec, views_from_record(rec))
        else:
            missing.append(cfg)
    return out, missing
