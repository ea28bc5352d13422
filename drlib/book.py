"""Execute the notebooks in ``notebooks/`` with papermill into ``book/generated/`` (for ``make book``).

Notebooks only read stored results unless given ``train_missing=True``; ``python -m drlib notebooks
--params smoke`` runs each with its smoke parameters (what the tests do).
"""
from __future__ import annotations

from pathlib import Path

from .utils import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"
OUT = REPO_ROOT / "book" / "generated"
_SMOKE = {"profile": "smoke", "overrides": ["train.epochs=2", "model.module.diffusion_steps=4"]}
SMOKE_PARAMS = {
    "01_datasets": {"datasets": ["synthetic"]},
    "02_main_table": {"profile": "smoke", "datasets": ["synthetic"], "seeds": [0], "train_missing": True,
                      "overrides": ["train.epochs=2"]},
    "03_ablations": {**_SMOKE, "dataset": "synthetic", "rows": ["DiffuReason", "w/o RL", "with KL"],
                     "seeds_per_model": {"diffureason-s": [0], "diffureason-h": [0]}, "train_missing": True},
    "04_efficiency": {"profile": "smoke", "dataset": "synthetic", "n_batches": 2, "warmup": 1,
                      "measure_missing": True},
    "05_sensitivity": {**_SMOKE, "dataset": "synthetic", "values": {"alphas": [0.0, 1.0], "betas": [1.0],
                       "reasoning_steps": [1], "group_sizes": [4]}, "train_missing": True},
    "06_trajectories": {**_SMOKE, "dataset": "synthetic", "train_missing": True},
    "07_sparsity_groups": {"profile": "smoke", "overrides": ["train.epochs=2"], "dataset": "synthetic",
                           "train_missing": True},
    "08_explorer": {**_SMOKE, "dataset": "synthetic", "train_missing": True, "n_offline": 4},
}


# Extra pages: one notebook executed again with other parameters (page name -> (notebook, parameters)); in smoke
# mode the notebook's smoke parameters apply first.
VARIANTS = {
    "05_sensitivity_hstu": ("05_sensitivity", {"model": "diffureason-h", "seed": 1}),
    "06_trajectories_hstu": ("06_trajectories", {"model": "diffureason-h", "seeds": [1]}),
    "07_sparsity_groups_hstu": ("07_sparsity_groups", {"base": "hstu", "model": "diffureason-h", "seeds": [1]}),
}


def pages() -> list[tuple[str, Path, dict]]:
    """(page name, notebook, parameters) of every page the book shows, in order."""
    out = [(nb.stem, nb, {}) for nb in sorted(NOTEBOOKS.glob("*.ipynb"))]
    for name, (base, params) in VARIANTS.items():
        out.append((name, NOTEBOOKS / f"{base}.ipynb", params))
    return sorted(out, key=lambda p: p[0])


def execute_all(out_dir: str | Path = OUT, smoke: bool = False, only: list[str] | None = None) -> list[Path]:
    import papermill as pm
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for name, nb, extra in pages():
        if only and name not in only:
            continue
        params = {**(SMOKE_PARAMS.get(nb.stem, {}) if smoke else {}), **extra}
        target = out_dir / f"{name}.ipynb"
        tmp = out_dir / f".{name}.part.ipynb"
        pm.execute_notebook(str(nb), str(tmp), parameters=params, cwd=str(REPO_ROOT), progress_bar=False,
                            kernel_name="python3")
        tmp.replace(target)      # a failed run leaves the previous page intact
        done.append(target)
    return done
