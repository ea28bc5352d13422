"""Probes of Sec. 4.6 on a trained DiffuReason model: where along the trajectory the target's rank improves.

* :func:`stage_ranks`: the target's rank decoded from each thinking token ``tau_1..tau_R`` and from the
  diffusion output ``mu`` (Fig. 4, top).
* :func:`stage_similarity`: mean cosine similarity between those representations (Fig. 4, bottom).
* :func:`group_metrics`: metrics per user group (history length) and item group (target popularity) at each
  stage (Fig. 5 / Fig. 7).
* :func:`recommendation_spread`: how the top-k lists spread over the item-popularity groups (not in the paper).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .data.split import SeqDataset
from .data.stats import item_groups, user_groups
from .evaluate import compute_ranks, mask_scores, metrics_from_ranks, trim_padding
from .results import read_record, results_dir, write_record
from .runner import get_dataset, load_trained_model
from .utils import pick_device
from .weights import committed_model, weights_paths


def stage_names(model) -> list[str]:
    """``step 1..R``, ``diffusion`` (``mu``) and, under the A.1 rollout reading (``rollouts > 0``), ``rollout``: the
    backbone's output at the appended latent, which is what that model scores."""
    names = [f"step {r + 1}" for r in range(model.cfg.reasoning_steps)] + ["diffusion"]
    return names + ["rollout"] if getattr(model.cfg, "rollouts", 0) else names


def _stage_latents(model, out: dict) -> torch.Tensor:
    """Every stage's latent of ``model``'s :meth:`DiffuReason.trajectory` ``out``: ``[B, S, d]`` in
    :func:`stage_names` order (``tau_1..tau_R``, ``mu``, and under rollouts ``pred``)."""
    parts = [out["tau"], out["mu"][:, None]]
    if getattr(model.cfg, "rollouts", 0):
        parts.append(out["pred"][:, None])
    return torch.cat(parts, 1)


def _stage_scores(model, x: torch.Tensor) -> torch.Tensor:
    """Full-catalogue scores ``[B, S, N]`` decoded from every stage's latent (the thinking tokens, ``mu``, the
    rollout's output) of one trajectory through the backbone's ``latent_scores``: a dot product with the item table
    on SASRec, constrained beam search on the Semantic-ID backbones (there only the beam's items get finite
    scores)."""
    out = model.trajectory(x)
    lat = _stage_latents(model, out)
    return torch.stack([model.backbone.latent_scores(out["state"], lat[:, s]) for s in range(lat.shape[1])], 1)


@torch.no_grad()
def stage_ranks(model, split, batch_size: int = 1024, mask_history: bool = True, device="cpu") -> np.ndarray:
    """0-based target ranks ``[U, S]``: one column per stage of :func:`stage_names` (thinking tokens, the diffusion
    output, and under rollouts the backbone's output at it, the model's own prediction), all from one pass of the
    trajectory per batch (``batch_size`` users, scored ``S`` times each: memory ``O(batch_size * S * N)``)."""
    model.eval()
    return compute_ranks(lambda x: _stage_scores(model, x), split, batch_size, mask_history, device)


@torch.no_grad()
def stage_similarity(model, split, batch_size: int = 1024, device="cpu") -> np.ndarray:
    """Mean over users of the cosine-similarity matrix ``[S, S]`` between the stages' latents (``tau_1..tau_R``,
    ``mu`` and, under rollouts, the backbone's output at the latent: :func:`stage_names`)."""
    model.eval()
    total, n = None, 0
    for start in range(0, len(split), batch_size):
        x = trim_padding(torch.from_numpy(split.inputs[start:start + batch_size])).to(device)
        out = model.trajectory(x)
        reps = torch.nn.functional.normalize(_stage_latents(model, out), dim=-1)
        sims = (reps @ reps.transpose(1, 2)).sum(0).double().cpu()
        total = sims if total is None else total + sims
        n += len(x)
    return (total / n).numpy()


def group_metrics(ranks: np.ndarray, ds: SeqDataset, names: list[str], ks=(5, 10)) -> pd.DataFrame:
    """Metrics per (grouping, group, stage) from :func:`stage_ranks` output on the test split."""
    ug = user_groups(ds)[ds.test.users]
    ig = item_groups(ds)[ds.test.targets]
    rows = []
    for grouping, labels, prefix in (("user", ug, "UG"), ("item", ig, "IG")):
        for g in range(4):
            sel = labels == g
            for s, name in enumerate(names):
                rows.append({"grouping": grouping, "group": f"{prefix}-{g}", "stage": name, "n": int(sel.sum()),
                             **metrics_from_ranks(ranks[sel, s], ks)})
    return pd.DataFrame(rows)


@torch.no_grad()
def recommendation_spread(model, ds: SeqDataset, k: int = 10, batch_size: int = 1024, mask_history: bool = True,
                          device="cpu") -> dict:
    """Where the top-``k`` lists of the test users fall in the catalogue: a popularity-bias probe.

    Returns ``group_share`` ``[4]`` (share of all top-``k`` slots taken by items of IG-0..IG-3, the equal-sized
    item groups by training popularity, IG-0 rarest; 0.25 each would be popularity-neutral), ``coverage`` (distinct
    items recommended / catalogue size) and ``target_share`` ``[4]`` (the test targets' own split over the groups,
    for reference). Lists are ranked as the evaluation ranks (history masked); slots with ``-inf`` scores (outside
    a Semantic-ID backbone's beam) are not counted."""
    model.eval()
    groups = item_groups(ds)
    split = ds.test
    counts, seen = np.zeros(4), np.zeros(ds.n_items + 1, dtype=bool)
    for start in range(0, len(split), batch_size):
        rows = np.arange(start, min(start + batch_size, len(split)))
        x = trim_padding(torch.from_numpy(split.inputs[rows])).to(device)
        scores = mask_scores(model.full_scores(x).float().cpu(), split, rows, mask_history)
        top = scores.topk(k, dim=1)
        items = top.indices[torch.isfinite(top.values)].numpy()
        counts += np.bincount(groups[items], minlength=4)[:4]
        seen[items] = True
    tg = np.bincount(groups[split.targets], minlength=4)[:4]
    return {"k": k, "group_share": (counts / max(counts.sum(), 1)).tolist(), "coverage": float(seen[1:].mean()),
            "target_share": (tg / tg.sum()).tolist(), "n_users": len(split)}


EXPERIMENT = "probes"


def stored_probe(cfg, results_root=None) -> dict | None:
    """The stored probe record of ``cfg``'s run (``results/probes/<run-id>.json``), or ``None``: what the book's pages
    read. They never probe: :func:`probe_run` computes a missing record from kept weights."""
    path = Path(results_root or results_dir()) / EXPERIMENT / f"{cfg.run_id}.json"
    return read_record(path) if path.exists() else None


def probe_run(cfg, force: bool = False, results_root=None, runs_root=None, batch_size: int = 1024) -> dict | None:
    """Run the probes on the trained model of ``cfg`` and store them in ``results/probes/<run-id>.json``.

    Reads the weights a finished run keeps under ``runs/`` (``model.pt``, full precision), else its committed
    float16 weights (``results/weights/``, :mod:`drlib.weights`; the record says which in ``weights_source``);
    returns the stored record when there is one (unless ``force``), ``None`` when neither a record nor weights exist.
    For a model without a trajectory (a plain backbone) only the final ranks and group metrics are stored,
    which the sparsity-group figures use as the baseline.
    """
    path = Path(results_root or results_dir()) / EXPERIMENT / f"{cfg.run_id}.json"
    if path.exists() and not force:
        return read_record(path)
    model, source = load_trained_model(cfg, runs_root), "kept"
    if model is None:                       # a fresh clone: the committed float16 weights, when there are some
        if not weights_paths(cfg.run_id, results_root)[1].exists():
            return None
        model, _ = committed_model(cfg.run_id, results_root)
        source = "committed"
    device = pick_device(cfg.train.device)
    model.to(device)
    ds = get_dataset(cfg)
    if hasattr(model, "trajectory"):
        names = stage_names(model)
        ranks = stage_ranks(model, ds.test, batch_size, cfg.eval.mask_history, device)
        sim = stage_similarity(model, ds.test, batch_size, device).tolist()
    else:
        names = ["final"]
        ranks = compute_ranks(model.full_scores, ds.test, batch_size, cfg.eval.mask_history, device)[:, None]
        sim = None
    groups = group_metrics(ranks, ds, names, cfg.eval.ks)
    sample = np.sort(np.random.default_rng(0).choice(len(ranks), size=min(300, len(ranks)), replace=False))
    body = {"stages": names,
            "stage_metrics": {n: metrics_from_ranks(ranks[:, s], cfg.eval.ks) for s, n in enumerate(names)},
            "similarity": sim, "groups": groups.to_dict(orient="records"),
            "median_rank": {n: float(np.median(ranks[:, s])) for s, n in enumerate(names)},
            "sample_users": ds.test.users[sample].tolist(), "sample_ranks": ranks[sample].astype(int).tolist(),
            "weights_source": source}
    rec = write_record(path, body, cfg=cfg, experiment=EXPERIMENT, device=device,
                       command=f"python -m drlib probe {cfg.run_id}")
    return rec
