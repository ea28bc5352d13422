"""The book's executed pages: every notebook of ``notebooks/`` (one per experiment, the source, kept without outputs)
executed with papermill from the stored results into ``book/generated/``, plus :data:`VARIANTS` (a notebook executed
again with other parameters).

The executed pages are committed: ``jupyter-book build book/`` renders them as they are (``execute_notebooks: off``)
and needs no data, kernel or network. ``python -m drlib notebooks [NAME ...]`` (``make notebooks``) refreshes them
after a notebook is edited or records are added; the full test tier executes every page again and compares its
finding and tables with the committed ones (``pytest --nbval-lax``, the cells tagged ``nbval-check-output``), and the
fast tier checks that each page holds its notebook's code as it is now.

Adding a page: a notebook in ``notebooks/`` (parameters cell, then the cell that checks them), one line in
``_toc.yml`` (``- file: generated/<name>``), then ``python -m drlib notebooks <name>``.

``python -m drlib notebooks --smoke --out DIR`` runs each with its smoke parameters (what the tests do); smoke pages
never replace the book's.
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path

from .utils import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"
OUT = REPO_ROOT / "book" / "generated"
_SMOKE = {"profile": "smoke", "overrides": ["train.epochs=2", "model.module.diffusion_steps=4"]}
# Smoke parameters per notebook (synthetic data, tiny models, seconds); a notebook without an entry runs with its own
# defaults against whatever store the run uses.
SMOKE_PARAMS = {
    "00_verdict": {"profile": "smoke", "datasets": ["synthetic"], "seeds": [0]},
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
    "08_explorer": {**_SMOKE, "dataset": "synthetic", "train_missing": True, "n_users": 4},
    "09_readings": {"dataset": "synthetic"},
}


# Extra pages: one notebook executed again with other parameters (page name -> (notebook, parameters)); in smoke
# mode the notebook's smoke parameters apply first.
VARIANTS = {
    "04_efficiency_hstu": ("04_efficiency", {"model": "diffureason-h", "backbone": "hstu"}),
    "05_sensitivity_hstu": ("05_sensitivity", {"model": "diffureason-h", "seed": 1}),
    "06_trajectories_hstu": ("06_trajectories", {"model": "diffureason-h", "seeds": [0]}),
    "07_sparsity_groups_hstu": ("07_sparsity_groups", {"base": "hstu", "model": "diffureason-h", "seeds": [0]}),
}
# cell metadata of the parameters cells as the book shows them: collapsed, saying what they hold
PARAMETERS_PROMPT = {"code_prompt_show": "Parameters: how to rerun this page", "code_prompt_hide": "Hide parameters"}
PAGE_PARAMETERS_PROMPT = {"code_prompt_show": "This page's parameters: the papermill command that made it",
                          "code_prompt_hide": "Hide this page's parameters"}
_VOLATILE_CELL = ("papermill", "execution")


def pages() -> list[tuple[str, Path, dict]]:
    """(page name, notebook, parameters) of every page the book shows, in order."""
    out = [(nb.stem, nb, {}) for nb in sorted(NOTEBOOKS.glob("*.ipynb"))]
    for name, (base, params) in VARIANTS.items():
        out.append((name, NOTEBOOKS / f"{base}.ipynb", params))
    return sorted(out, key=lambda p: p[0])


def _typed(value) -> str:
    """A parameter value as a user types it after ``-p NAME``: a list as a,b,c, a mapping as JSON."""
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) and "," not in str(v)
                                                for v in value):
        return ",".join(map(str, value))
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


def rerun_command(notebook: str, params: dict | None = None) -> str:
    """The papermill command that executes ``notebooks/<notebook>.ipynb`` with ``params`` (from the repository
    root), as a user would type it."""
    args = "".join(f" -p {k} {shlex.quote(_typed(v))}" for k, v in (params or {}).items())
    return f"papermill notebooks/{notebook}.ipynb out.ipynb{args}"


def tidy(nb: dict, command: str | None = None) -> dict:
    """An executed page as it is committed: papermill's timings and the kernel's timestamps removed (a page
    executed again from the same records and code is the same file), and papermill's injected parameters cell
    collapsed in the book under the command that made the page."""
    nb["metadata"].pop("papermill", None)
    for i, cell in enumerate(nb["cells"]):
        for key in _VOLATILE_CELL:
            cell["metadata"].pop(key, None)
        tags = cell["metadata"].get("tags", [])
        if "injected-parameters" in tags:
            cell["id"] = "injected-parameters"
            cell["metadata"]["tags"] = [*tags, *(["hide-input"] if "hide-input" not in tags else [])]
            cell["metadata"]["mystnb"] = dict(PAGE_PARAMETERS_PROMPT)
            if command and not "".join(cell["source"]).startswith("# This page:"):
                cell["source"] = f"# This page: {command}\n" + "".join(cell["source"])
    return nb


def execute_all(out_dir: str | Path = OUT, smoke: bool = False, only: list[str] | None = None) -> list[Path]:
    """Execute every page (or the pages named in ``only``) into ``out_dir`` and return their paths. A page is
    replaced only once its notebook ran to the end (a failure leaves the previous page)."""
    import papermill as pm
    out_dir = Path(out_dir)
    if smoke and out_dir.resolve() == OUT.resolve():
        raise ValueError(f"smoke pages would replace the book's pages in {OUT}; pass another folder (--out DIR)")
    unknown = sorted(set(only or ()) - {name for name, _, _ in pages()})
    if unknown:
        raise ValueError(f"no page named {', '.join(unknown)}; pages: {', '.join(n for n, _, _ in pages())}")
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
        page = tidy(json.loads(tmp.read_text()), rerun_command(nb.stem, extra) if extra else None)
        tmp.write_text(json.dumps(page, indent=1, ensure_ascii=False) + "\n")
        tmp.replace(target)      # a failed run leaves the previous page intact
        done.append(target)
    return done
