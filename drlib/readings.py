"""The validation grid over the readings of the paper (:data:`drlib.diffureason.ablations.READINGS`), and the
choice of the best faithful reading per backbone on validation NDCG@10 only.

The literal reading of each DiffuReason model is its plain config, stored with the main results
(``results/main/``, seed 0 of its seeds); every other reading is stored under ``results/readings/``. Test metrics
are not part of the grid: they are read only for the 3-seed comparison of the chosen reading.
"""
from __future__ import annotations

import pandas as pd

from .diffureason.ablations import READINGS, describe
from .results import load_records

EXPERIMENT = "readings"
MODELS = {"diffureason-s": "SASRec", "diffureason-h": "HSTU"}


def grid_records(seed: int = 0, root=None) -> list[dict]:
    """The grid's runs: the DiffuReason models' plain runs of ``seed`` in ``main`` (labelled ``literal``) and the
    readings' runs of ``seed``."""
    main = [dict(r, label="literal") for r in load_records("main", root=root, seed=seed)
            if r["config"]["model"] in MODELS and r["label"] in ("DiffuReason-S", "DiffuReason-H")]
    other = [r for r in load_records(EXPERIMENT, root=root, seed=seed) if r["label"] in READINGS]
    return main + other


def grid(records: list[dict], metric: str = "ndcg@10") -> pd.DataFrame:
    """One row per (dataset, backbone, reading): the settings it changes, validation ``metric`` and R@10, the best
    and the last epoch, and training minutes; ``vs literal`` is the relative difference in % to the literal
    reading's validation ``metric`` on the same backbone. Sorted best first within each backbone."""
    rows = []
    for r in records:
        c = r["config"]
        rows.append({"dataset": c["dataset"], "backbone": MODELS.get(c["model"], c["model"]), "reading": r["label"],
                     "settings": describe(r["label"]) or "(the paper as written)",
                     f"valid {metric}": r["metrics"]["valid"][metric],
                     "valid recall@10": r["metrics"]["valid"]["recall@10"],
                     "best epoch": r["timing"]["best_epoch"], "epochs": r["timing"]["epochs"],
                     "train min": r["timing"]["train_seconds"] / 60, "run_id": r["run_id"]})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    lit = df[df.reading == "literal"].set_index(["dataset", "backbone"])[f"valid {metric}"]
    base = [lit.get((d, b), float("nan")) for d, b in zip(df.dataset, df.backbone)]
    df["vs literal %"] = 100 * (df[f"valid {metric}"] / pd.Series(base, index=df.index) - 1)
    return df.sort_values(["dataset", "backbone", f"valid {metric}"], ascending=[True, True, False],
                          ignore_index=True)


def choose(table: pd.DataFrame, metric: str = "ndcg@10") -> pd.DataFrame:
    """The best reading per (dataset, backbone) by validation ``metric`` (ties: the literal reading, then the
    first in :data:`READINGS` order): one row each."""
    if table.empty:
        return table
    order = {k: i for i, k in enumerate(READINGS)}
    t = table.assign(_o=table.reading.map(order)).sort_values(
        ["dataset", "backbone", f"valid {metric}", "_o"], ascending=[True, True, False, True])
    return t.groupby(["dataset", "backbone"], as_index=False).head(1).drop(columns="_o").reset_index(drop=True)
