"""drlib.explorer (the trajectory explorer notebook's logic) on a smoke-trained DiffuReason-S.

The rendered page (widgets loading offline in a browser) is checked by tests/test_book.py.
"""
import json

import numpy as np
import pytest
import torch

from drlib import explorer as E
from drlib.registry import make_config
from drlib.probes import stage_names, stage_ranks

SMOKE = ["train.epochs=1", "model.module.diffusion_steps=4"]


def _smoke_trained(tmp_path_factory, model_name, extra=()):
    """One smoke run of ``model_name``, in a temporary results/runs store (as the ``tmp_results`` fixture)."""
    root = tmp_path_factory.mktemp("explorer")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRLIB_RESULTS", str(root / "results"))
        mp.setenv("DRLIB_RUNS", str(root / "runs"))
        from drlib.experiments import collect
        from drlib.runner import get_dataset, load_trained_model
        cfg = make_config(model_name, "synthetic", "smoke", 0, SMOKE + list(extra))
        collect([cfg], train_missing=True)
        model = load_trained_model(cfg)
        assert model is not None
        return model, get_dataset(cfg).test


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return _smoke_trained(tmp_path_factory, "diffureason-s")


@pytest.fixture(scope="module")
def trained_sid(tmp_path_factory):
    return _smoke_trained(tmp_path_factory, "diffureason-h", ["model.backbone.head=sid"])


@pytest.fixture(scope="module")
def trained_item_head(tmp_path_factory):
    return _smoke_trained(tmp_path_factory, "diffureason-h")


def test_trajectories_match_probes_and_masking(trained):
    model, test = trained
    rows = np.arange(len(test))
    t = E.user_trajectories(model, test, rows, k=10)
    S = model.cfg.reasoning_steps + 1
    assert t["stages"] == stage_names(model) and len(t["stages"]) == S
    assert t["ranks"].shape == (len(rows), S) and t["top_items"].shape == (len(rows), S, 10)
    assert t["similarity"].shape == (len(rows), S, S)
    np.testing.assert_array_equal(t["ranks"], stage_ranks(model, test))          # same ranks as the stored probes
    np.testing.assert_allclose(np.diagonal(t["similarity"], axis1=1, axis2=2), 1, atol=1e-5)
    np.testing.assert_allclose(t["similarity"], t["similarity"].transpose(0, 2, 1), atol=1e-6)
    assert (t["top_items"] > 0).all()                                             # never the padding item
    br, items = test.history_pairs(rows)
    seen = set(zip(br.tolist(), items.tolist()))
    assert not any((b, int(i)) in seen for b in range(len(rows)) for i in t["top_items"][b].ravel())
    # the target sits at position `rank` of the top list when it is in the top 10, and is absent otherwise
    for b in range(0, len(rows), 7):
        for s in range(S):
            r, top = t["ranks"][b, s], t["top_items"][b, s]
            assert (top[r] == t["targets"][b]) if r < 10 else (t["targets"][b] not in top)
    assert (np.diff(t["top_scores"], axis=-1) <= 0).all()


def test_sample_cloud(trained):
    model, test = trained
    t = E.user_trajectories(model, test, [5])
    mu, sigma = t["mu"][0], t["sigma"][0]
    s = E.sample_cloud(model, test, 5, mu, sigma, seed=3)
    G, d = model.cfg.group_size, mu.shape[0]
    assert s["z"].shape == (G, d) and s["sample_ranks"].shape == (G,) and s["sample_cos"].shape == (G,)
    assert s["samples_xy"].shape == (G, 2) and s["anchor_xy"].shape == (2,) and s["target_xy"].shape == (2,)
    assert s["anchor_rank"] == t["ranks"][0, -1]                                  # the anchor is mu
    eps = torch.randn(G, d, generator=torch.Generator().manual_seed(3)).numpy()
    np.testing.assert_allclose(s["z"], mu + sigma * eps, rtol=1e-5, atol=1e-6)    # z_i = mu + sigma * eps_i
    np.testing.assert_array_equal(E.sample_cloud(model, test, 5, mu, sigma, seed=3)["z"], s["z"])
    assert not np.allclose(E.sample_cloud(model, test, 5, mu, sigma, seed=4)["z"], s["z"])
    assert E.sample_cloud(model, test, 5, mu, sigma, group_size=3)["z"].shape == (3, d)
    assert 0 <= s["explained"].sum() <= 1 + 1e-9


def test_pca_2d_keeps_planar_distances():
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(9, 2)) @ rng.normal(size=(2, 16))                   # 9 points on a 2-D plane in R^16
    xy, ratio = E.pca_2d(plane)
    dist = lambda p: np.linalg.norm(p[:, None] - p[None], axis=-1)
    np.testing.assert_allclose(dist(xy), dist(plane), atol=1e-8)
    assert ratio.sum() == pytest.approx(1.0) and ratio[0] >= ratio[1]


def test_user_view_and_drawing(trained):
    model, test = trained
    v = E.user_view(model, test, 2)
    S = model.cfg.reasoning_steps + 1
    assert v["row"] == 2 and v["user"] == int(test.users[2]) and v["target"] == int(test.targets[2])
    np.testing.assert_array_equal(v["history"], test.inputs[2][test.inputs[2] != 0])
    assert v["ranks"].shape == (S,) and v["top_items"].shape == (S, 10) and v["similarity"].shape == (S, S)
    table = E.view_table(v)
    assert list(table.index) == v["stages"]
    assert list(table["target rank"]) == [int(r) + 1 for r in v["ranks"]]
    for r, cell in zip(v["ranks"], table.iloc[:, 1]):
        assert (f"[{v['target']}]" in cell) == (r < 10)
    html = E.view_html(v)
    assert f"<b>{v['target']}</b>" in html and "<table" in html
    png = E.view_png(v)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_explorer_notebook_without_weights_explains_how_to_train(tmp_results, tmp_path, monkeypatch):
    """With no trained run (and ``train_missing=False``) the notebook runs, says how to train, and shows no widget."""
    from drlib.book import SMOKE_PARAMS, execute_all
    monkeypatch.setitem(SMOKE_PARAMS, "08_explorer", {**SMOKE_PARAMS["08_explorer"], "train_missing": False})
    (out,) = execute_all(tmp_path / "out", smoke=True, only=["08_explorer"])
    nb = json.loads(out.read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join("".join(o.get("text", "")) for o in outputs)
    assert "python -m drlib train --model diffureason-s --dataset synthetic --profile smoke --seed 0" in text
    assert not nb["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state")


def _user_view_counting_forwards(model, test, row):
    """``E.user_view`` of ``row``, asserting it runs the model's trajectory exactly once."""
    calls, forward = [0], model.trajectory

    def counted(*a, **kw):
        calls[0] += 1
        return forward(*a, **kw)
    model.trajectory = counted
    try:
        v = E.user_view(model, test, row)
    finally:
        del model.trajectory
    assert calls[0] == 1
    return v


def test_explorer_on_hstu_item_head(trained_item_head):
    """DiffuReason-H on the item head: stages scored against the item table, the cloud reuses the (empty) state."""
    from drlib.evaluate import compute_ranks
    model, test = trained_item_head
    rows = np.arange(min(len(test), 64))
    t = E.user_trajectories(model, test, rows, k=10)
    np.testing.assert_array_equal(t["ranks"][:, -1], compute_ranks(model.full_scores, test, rows=rows))
    v = _user_view_counting_forwards(model, test, 3)
    assert v["samples"]["anchor_rank"] == v["ranks"][-1]


def test_explorer_on_a_semantic_id_backbone(trained_sid):
    """DiffuReason-H: stages are decoded by constrained beam search, as the evaluation decodes mu."""
    from drlib.evaluate import compute_ranks
    model, test = trained_sid
    rows = np.arange(min(len(test), 64))
    t = E.user_trajectories(model, test, rows, k=10)
    S = model.cfg.reasoning_steps + 1
    assert t["ranks"].shape == (len(rows), S) and t["top_items"].shape == (len(rows), S, 10)
    # the diffusion stage ranks exactly as the model's own evaluation ranks
    np.testing.assert_array_equal(t["ranks"][:, -1], compute_ranks(model.full_scores, test, rows=rows))
    v = _user_view_counting_forwards(model, test, 3)     # the sample cloud reuses the trajectory's backbone state
    assert v["samples"]["sample_ranks"].shape == (model.cfg.group_size,)
    assert v["samples"]["anchor_rank"] == v["ranks"][-1]
    alone = E.sample_cloud(model, test, 3, v["mu"], v["sigma"])     # computes the state itself: the same cloud
    np.testing.assert_array_equal(alone["sample_ranks"], v["samples"]["sample_ranks"])
    assert E.view_png(v)[:8] == b"\x89PNG\r\n\x1a\n"


def test_recommendation_spread_counts_what_the_top_lists_hold(trained):
    from drlib.data.stats import item_groups
    from drlib.probes import recommendation_spread
    from drlib.runner import get_dataset
    model, _ = trained
    ds = get_dataset(make_config("diffureason-s", "synthetic", "smoke", 0, SMOKE))
    out = recommendation_spread(model, ds, k=5)
    assert abs(sum(out["group_share"]) - 1) < 1e-9 and abs(sum(out["target_share"]) - 1) < 1e-9
    assert 0 < out["coverage"] <= 1
    # recount by brute force from the explorer's top lists (the same masking)
    t = E.user_trajectories(model, ds.test, np.arange(len(ds.test)), k=5)
    top = t["top_items"][:, -1].ravel()
    share = np.bincount(item_groups(ds)[top], minlength=4) / top.size
    np.testing.assert_allclose(out["group_share"], share, atol=1e-12)
    assert out["coverage"] == pytest.approx(len(set(top.tolist())) / ds.n_items)
