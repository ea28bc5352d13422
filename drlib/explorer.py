"""Per-user views of a trained DiffuReason model, for the trajectory explorer (``notebooks/08_explorer``).

Shapes: ``B`` users in a batch, ``L`` history length, ``R`` reasoning steps, ``S = R + 1`` stages (the thinking
tokens ``tau_1..tau_R`` then the diffusion output ``mu``), ``d`` the model width, ``N = n_items + 1`` catalogue
columns (column 0 is padding), ``G`` the policy's group size, ``k`` the top-k length.

* :func:`stage_latents`: the ``S`` representations of each user, ``[B, S, d]``.
* :func:`user_trajectories`: per user and stage, the target's rank and the top-k items (history masked as in the
  evaluation), and the cosine similarity of the stages.
* :func:`sample_cloud`: the ``G`` policy samples ``z_i = mu + sigma * eps_i`` around the anchor ``mu`` (Eq. 6),
  the target's rank under each, and a 2-D PCA projection of ``[mu, z_1..z_G, v_target]``.
* :func:`user_view` bundles these for one test user; :func:`plot_view`, :func:`view_html` and
  :func:`view_png` draw it (the notebook's static figure and its widgets).

>>> view = user_view(model, ds.test, row=0)                       # doctest: +SKIP
>>> view["ranks"], view["top_items"].shape                          # doctest: +SKIP
(array([412, 97, 15, 3]), (4, 10))
"""
from __future__ import annotations

import html as _html
import io

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.ticker import NullFormatter, ScalarFormatter

from pathlib import Path

from .data.split import EvalSplit
from .evaluate import mask_scores, target_ranks, trim_padding
from .probes import stage_names
from .results import read_record, results_dir, write_record
from .runner import get_dataset
from .weights import model_of


def _batch(split: EvalSplit, rows) -> tuple[np.ndarray, torch.Tensor]:
    rows = np.atleast_1d(np.asarray(rows, dtype=np.int64))
    return rows, trim_padding(torch.from_numpy(split.inputs[rows]))


@torch.no_grad()
def stage_latents(model, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``x`` int64 ``[B, L]`` (left-padded) -> (``[B, S, d]`` = ``tau_1..tau_R, mu``; the trajectory dict)."""
    model.eval()
    out = model.trajectory(x)
    return torch.cat([out["tau"], out["mu"][:, None]], 1), out


def masked_scores(model, latents: torch.Tensor, split: EvalSplit, rows: np.ndarray,
                  mask_history: bool = True, state=None) -> torch.Tensor:
    """Scores ``[B, S, N]`` of ``latents`` ``[B, S, d]`` with padding and (optionally) seen items at ``-inf``.

    Row ``b`` of ``latents`` belongs to user ``rows[b]`` of ``split``; ``state`` is the backbone state of those
    users (``model.trajectory(x)["state"]``; ``None`` on SASRec). Each of the ``S`` latents is decoded the way the
    evaluation decodes ``mu`` (``backbone.latent_scores``): a dot product with the item table on SASRec,
    constrained beam search on the Semantic-ID backbones (there only the beam's items get finite scores, so a
    target outside the beam ranks last). Masking is the evaluation's (:func:`drlib.evaluate.compute_ranks`), so
    ranks here match the stored metrics.
    """
    scores = torch.stack([model.backbone.latent_scores(state, latents[:, s]).float()
                          for s in range(latents.shape[1])], 1)
    return mask_scores(scores, split, rows, mask_history)


def _ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``scores`` ``[B, S, N]``, ``targets`` ``[B]`` -> 0-based ranks ``[B, S]`` (ties pessimistic)."""
    B, S, N = scores.shape
    return target_ranks(scores.reshape(B * S, N), targets.repeat_interleave(S)).reshape(B, S)


@torch.no_grad()
def user_trajectories(model, split: EvalSplit, rows, k: int = 10, mask_history: bool = True) -> dict:
    """The trajectory of users ``rows`` (indices into ``split``) through the ``S`` stages.

    Returns numpy arrays: ``rows`` ``[B]``, ``users`` ``[B]``, ``targets`` ``[B]``, ``ranks`` ``[B, S]`` (0-based
    target rank per stage), ``top_items`` / ``top_scores`` ``[B, S, k]`` (item ids best first), ``similarity``
    ``[B, S, S]`` (cosine between the stage representations), ``mu`` / ``sigma`` ``[B, d]``; and ``stages``
    (the ``S`` names of :func:`drlib.probes.stage_names`).
    """
    return _trajectories(model, split, rows, k, mask_history)[0]


@torch.no_grad()
def _trajectories(model, split: EvalSplit, rows, k: int, mask_history: bool) -> tuple[dict, object]:
    """:func:`user_trajectories` plus the backbone state of those users (reused by :func:`user_view`)."""
    rows, x = _batch(split, rows)
    lat, out = stage_latents(model, x)                               # [B, S, d]
    scores = masked_scores(model, lat, split, rows, mask_history, out["state"])    # [B, S, N]
    targets = torch.from_numpy(split.targets[rows])
    top = scores.topk(min(k, scores.shape[-1] - 1), dim=-1)
    rep = F.normalize(lat, dim=-1)
    return {"rows": rows, "users": split.users[rows], "targets": split.targets[rows], "stages": stage_names(model),
            "ranks": _ranks(scores, targets).numpy(), "top_items": top.indices.numpy(),
            "top_scores": top.values.numpy(), "similarity": (rep @ rep.transpose(1, 2)).numpy(),
            "mu": out["mu"].numpy(), "sigma": out["sigma"].numpy()}, out["state"]


def history(split: EvalSplit, row: int) -> np.ndarray:
    """The item ids ``[n]`` of the model input of user ``row``, oldest first (the last ``max_len`` items)."""
    x = split.inputs[row]
    return x[x != 0]


def pca_2d(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``points`` ``[n, d]`` -> (coordinates ``[n, 2]`` on the top two principal axes, explained ratio ``[2]``)."""
    X = np.asarray(points, dtype=np.float64)
    X = X - X.mean(0)
    _, s, vt = np.linalg.svd(X, full_matrices=False)
    coords = X @ vt[:2].T
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    var = s ** 2
    ratio = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)
    return coords, np.pad(ratio, (0, 2 - len(ratio)))


_UNSET = object()    # sample_cloud's state was not given (None is a real state: the ID backbones have none)


@torch.no_grad()
def sample_cloud(model, split: EvalSplit, row: int, mu: np.ndarray, sigma: np.ndarray, group_size: int | None = None,
                 seed: int = 0, mask_history: bool = True, state=_UNSET) -> dict:
    """The ``G`` policy samples around the anchor of user ``row`` and their 2-D PCA projection.

    ``mu``, ``sigma`` ``[d]`` (from :func:`user_trajectories`); ``G`` defaults to ``model.cfg.group_size``.
    The target point is the backbone's ``v_target`` (``target_latent``: the item embedding on SASRec).
    Returns ``z`` ``[G, d]`` (``mu + sigma * eps``, ``eps ~ N(0, I)`` from ``seed``), ``sample_ranks`` ``[G]`` and
    ``anchor_rank`` (0-based target ranks, history masked), ``sample_cos`` ``[G]`` (cosine of each ``z_i`` with
    the target embedding), and the projection of ``[mu, z_1..z_G, v_target]``: ``anchor_xy`` ``[2]``,
    ``samples_xy`` ``[G, 2]``, ``target_xy`` ``[2]``, ``explained`` ``[2]`` (variance ratio of the two axes).
    ``state``: the backbone state of this user (``model.trajectory(x)["state"]``, ``None`` on an ID backbone) when
    the caller has it; computed otherwise.
    """
    G = int(group_size or model.cfg.group_size)
    mu_t = torch.as_tensor(np.asarray(mu), dtype=torch.float32)
    sigma_t = torch.as_tensor(np.asarray(sigma), dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(G, mu_t.shape[-1], generator=gen)
    z = mu_t + sigma_t * eps                                          # [G, d]
    target = int(split.targets[row])
    v = model.backbone.target_latent(torch.tensor([target]))[0].detach().float()    # [d], v_target of Eq. 7
    lat = torch.cat([mu_t[None], z])[None]                            # [1, 1 + G, d]
    if state is _UNSET:
        _, x = _batch(split, [row])
        model.eval()
        state = model.trajectory(x)["state"]                          # the backbone's state for this user
    scores = masked_scores(model, lat, split, np.array([row]), mask_history, state)
    ranks = _ranks(scores, torch.tensor([target]))[0].numpy()        # [1 + G]
    xy, explained = pca_2d(torch.cat([mu_t[None], z, v[None]]).numpy())
    return {"z": z.numpy(), "sample_ranks": ranks[1:], "anchor_rank": int(ranks[0]),
            "sample_cos": F.cosine_similarity(z, v[None], dim=-1).numpy(),
            "anchor_xy": xy[0], "samples_xy": xy[1:-1], "target_xy": xy[-1], "explained": explained}


def user_view(model, split: EvalSplit, row: int, k: int = 10, mask_history: bool = True, seed: int = 0) -> dict:
    """Everything the explorer shows for test user ``row``: :func:`user_trajectories` for that user (arrays
    without the batch axis: ``ranks`` ``[S]``, ``top_items`` ``[S, k]``, ``similarity`` ``[S, S]``, ...),
    ``history`` ``[n]``, ``row``, ``user``, ``target``, ``group_size`` and ``samples`` (:func:`sample_cloud`)."""
    row = int(row)
    t, state = _trajectories(model, split, [row], k, mask_history)
    view = {key: (val[0] if isinstance(val, np.ndarray) else val) for key, val in t.items()}
    view.pop("rows"), view.pop("users"), view.pop("targets")
    view.update(row=row, user=int(split.users[row]), target=int(split.targets[row]), history=history(split, row),
                group_size=int(model.cfg.group_size))
    view["samples"] = sample_cloud(model, split, row, view["mu"], view["sigma"], seed=seed,
                                   mask_history=mask_history, state=state)
    return view


# ---------------------------------------------------------------------------------------------- stored views
EXPERIMENT = "explorer"
_ARRAYS = ("ranks", "top_items", "top_scores", "similarity", "history")
_SAMPLE_ARRAYS = ("sample_ranks", "sample_cos", "anchor_xy", "samples_xy", "target_xy", "explained")
_NOT_STORED = ("mu", "sigma", "z")


@torch.no_grad()
def backbone_view(backbone, split: EvalSplit, rows, k: int = 10, mask_history: bool = True) -> dict:
    """A stand-alone backbone (a :class:`~drlib.models.Recommender`) on users ``rows``: ``rank`` ``[B]`` (0-based
    target rank, history masked as in the evaluation) and ``top_items`` ``[B, k]``."""
    rows, x = _batch(split, rows)
    backbone.eval()
    scores = mask_scores(backbone.full_scores(x).float(), split, rows, mask_history)
    top = scores.topk(min(k, scores.shape[-1] - 1), dim=-1)
    return {"rank": target_ranks(scores, torch.from_numpy(split.targets[rows])).numpy(),
            "top_items": top.indices.numpy()}


def explorer_users(split: EvalSplit, n_users: int, seed: int = 0) -> np.ndarray:
    """``n_users`` test rows drawn without replacement (``seed``), sorted: the users whose views are stored."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(len(split), size=min(n_users, len(split)), replace=False))


def views_body(model, split: EvalSplit, rows, backbone=None, backbone_label: str | None = None, k: int = 10,
               seed: int = 0) -> dict:
    """The explorer's views of users ``rows`` as a JSON-able record body (``{"views": [...]}``), each with the
    stand-alone ``backbone``'s rank and top-k for the same user when given."""
    rows = np.asarray(rows)
    bb = backbone_view(backbone, split, rows, k) if backbone is not None else None
    views = []
    for i, row in enumerate(rows):
        v = user_view(model, split, int(row), k=k, seed=seed)
        if bb is not None:
            v["backbone"] = {"label": backbone_label, "rank": int(bb["rank"][i]), "top_items": bb["top_items"][i]}
        for key in _NOT_STORED:                             # latents the page does not draw: [d] and [G, d]
            v.pop(key, None)
            v["samples"].pop(key, None)
        views.append(_to_json(v))
    return {"views": views, "k": k, "sample_seed": seed}


def views_path(run_id: str, root=None) -> Path:
    return Path(root or results_dir()) / EXPERIMENT / f"{run_id}.json"


def store_views(run_id: str, backbone_run_id: str | None = None, n_users: int = 60, seed: int = 0,
                results_root=None) -> dict:
    """Compute and store the views of ``n_users`` test users (:func:`explorer_users`) of DiffuReason run ``run_id``,
    with its stand-alone backbone run ``backbone_run_id`` beside it: ``results/explorer/<run-id>.json``, what the
    book's explorer reads. Each model comes from :func:`drlib.weights.model_of` (the run's full-precision kept
    weights when present, so the stored ranks are the run's own; else its committed weights)."""
    model, cfg, source = model_of(run_id, results_root)
    split = get_dataset(cfg).test
    backbone, label, bsource = None, None, None
    if backbone_run_id:
        backbone, bcfg, bsource = model_of(backbone_run_id, results_root)
        label = bcfg.label
    body = views_body(model, split, explorer_users(split, n_users, seed), backbone, label, seed=seed)
    body.update(weights_run=run_id, backbone_run=backbone_run_id, weights_source=source, backbone_source=bsource)
    return write_record(views_path(run_id, results_root), body, cfg=cfg, experiment=EXPERIMENT,
                        command=f"python -m drlib explorer {run_id}"
                                + (f" --backbone {backbone_run_id}" if backbone_run_id else "")
                                + f" --users {n_users} --seed {seed}")


def stored_views(root=None) -> dict[str, tuple[dict, list[dict]]]:
    """Every stored explorer record: ``{label: (record, views)}`` (the label is the model's, e.g. DiffuReason-S)."""
    out = {}
    for p in sorted((Path(root or results_dir()) / EXPERIMENT).glob("*.json")):
        rec = read_record(p)
        out[rec["label"]] = (rec, views_from_record(rec))
    return out


def _to_json(obj):
    if isinstance(obj, dict):
        return {k: _to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _to_json(obj.tolist()) if obj.dtype.kind == "f" else obj.tolist()
    if isinstance(obj, np.generic):
        return _to_json(obj.item())
    if isinstance(obj, float):
        return float(f"{obj:.6g}")                          # 6 significant digits: what a page can show
    return obj


def views_from_record(record: dict) -> list[dict]:
    """The views of a stored explorer record, arrays restored (what :func:`user_view` returns, plus ``backbone``)."""
    out = []
    for v in record["views"]:
        v = dict(v)
        for key in _ARRAYS:
            v[key] = np.asarray(v[key])
        v["samples"] = {k: (np.asarray(x) if k in _SAMPLE_ARRAYS else x) for k, x in v["samples"].items()}
        if "backbone" in v:
            v["backbone"] = dict(v["backbone"], top_items=np.asarray(v["backbone"]["top_items"]))
        out.append(v)
    return out


# ---------------------------------------------------------------------------------------------- drawing
def view_table(view: dict):
    """A ``pandas.DataFrame`` with one row per stage: the target's rank (1 = top) and the top-k items
    (the target, when there, in brackets)."""
    tgt = view["target"]
    return pd.DataFrame({
        "stage": view["stages"],
        "target rank": [int(r) + 1 for r in view["ranks"]],
        f"top {view['top_items'].shape[-1]} items": [
            ", ".join(f"[{i}]" if i == tgt else str(i) for i in map(int, items)) for items in view["top_items"]],
    }).set_index("stage")


def view_html(view: dict, max_history: int = 20) -> str:
    """HTML summary of a view: user, history (last ``max_history`` items), target, and :func:`view_table`."""
    h = [int(i) for i in view["history"]]
    shown = ", ".join(map(str, h[-max_history:]))
    more = f"&hellip; ({len(h)} items) " if len(h) > max_history else ""
    s = view["samples"]
    return (f"<p><b>test user {view['user']}</b> (row {view['row']})<br>"
            f"history, oldest first: {more}{_html.escape(shown)}<br>"
            f"target item: <b>{view['target']}</b>; rank after diffusion: <b>{int(view['ranks'][-1]) + 1}</b>; "
            f"ranks under the G = {view['group_size']} policy samples: "
            f"{', '.join(str(int(r) + 1) for r in s['sample_ranks'])}"
            + (f"<br>the stand-alone {_html.escape(str(view['backbone']['label']))} ranks the target at "
               f"<b>{int(view['backbone']['rank']) + 1}</b>" if "backbone" in view else "")
            + "</p>" + view_table(view).to_html())


def plot_view(view: dict, fig=None):
    """Three panels for one user: target rank per stage, stage cosine similarities, and the G samples around
    the anchor ``mu`` with the target embedding in the 2-D PCA plane. Returns the matplotlib figure."""
    names, ranks = view["stages"], np.asarray(view["ranks"]) + 1
    if fig is None:
        fig = plt.figure(figsize=(12, 3.6))
    a0, a1, a2 = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.1]})
    a0.plot(names, ranks, "o-", color="C0")
    for x, r in enumerate(ranks):
        a0.annotate(str(r), (x, r), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    a0.set(yscale="log", ylabel="target rank (1 = top)", title=f"user {view['user']}: target {view['target']}")
    a0.invert_yaxis()
    a0.yaxis.set_major_formatter(ScalarFormatter())
    a0.yaxis.set_minor_formatter(NullFormatter())
    a0.tick_params(axis="x", rotation=30)
    im = a1.imshow(view["similarity"], vmin=-1, vmax=1, cmap="viridis")
    S = len(names)
    for i in range(S):
        for j in range(S):
            a1.text(j, i, f"{view['similarity'][i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="w" if view["similarity"][i, j] < 0.5 else "k")
    a1.set(xticks=range(S), yticks=range(S), title="cosine similarity")
    a1.set_xticklabels(names, rotation=30)
    a1.set_yticklabels(names)
    fig.colorbar(im, ax=a1, fraction=0.046)
    s = view["samples"]
    sc = a2.scatter(*s["samples_xy"].T, c=np.log10(np.asarray(s["sample_ranks"]) + 1), cmap="coolwarm", s=40,
                    label=f"samples z_i (G = {len(s['sample_ranks'])})")
    a2.scatter(*s["anchor_xy"], marker="*", s=200, color="k", label="anchor mu")
    a2.scatter(*s["target_xy"], marker="X", s=120, color="C2", label="target embedding")
    fig.colorbar(sc, ax=a2, fraction=0.046, label="log10 target rank")
    ex = s["explained"]
    a2.set(xlabel=f"PC1 ({ex[0]:.0%})", ylabel=f"PC2 ({ex[1]:.0%})", title="policy samples (PCA)")
    a2.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def view_png(view: dict, dpi: int = 72) -> bytes:
    """:func:`plot_view` rendered to PNG bytes (for an ``ipywidgets.Image``), the figure closed afterwards."""

    fig = plot_view(view)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()
