import math

import numpy as np
import pytest
import torch

from drlib.diffureason.module import DiffuReason, DiffuReasonSettings
from drlib.models import SASRec, SASRecConfig, build_model, DiffuReasonSConfig


def _model(**kw):
    torch.manual_seed(0)
    bb = SASRec(SASRecConfig(d_model=16, n_layers=1, n_heads=2, d_ff=16, dropout=0.1), n_items=30, max_len=6)
    return DiffuReason(bb, DiffuReasonSettings(diffusion_steps=4, group_size=4, **kw))


X = torch.tensor([[0, 0, 1, 2, 3, 4], [0, 5, 6, 7, 8, 9], [0, 0, 0, 0, 3, 9]])
Y = torch.tensor([5, 10, 11])


def test_gradients_reach_backbone_reasoner_and_denoiser():
    m = _model().train()
    loss, logs = m.compute_loss(X, Y)
    loss.backward()
    for part in (m.backbone.item_emb, m.backbone.blocks[0].attn.qkv, m.reasoner.decoder.layers[0].multihead_attn,
                 m.denoiser.net[0], m.denoiser.time.mlp[0]):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads), part
    assert {"rec", "diff", "align", "reward", "clip_frac"} <= set(logs)


def test_inference_is_deterministic_and_training_is_not():
    m = _model().eval()
    assert torch.equal(m.full_scores(X), m.full_scores(X))
    m.train()
    torch.manual_seed(1)
    a = m.trajectory(X)["mu"]
    b = m.trajectory(X)["mu"]
    assert not torch.equal(a, b)


def test_ablation_switches_remove_what_they_name():
    no_cot = _model(reasoning_steps=1)
    assert no_cot.trajectory(X)["tau"].shape[1] == 1
    no_diff = _model(use_diffusion=False)
    assert not hasattr(no_diff, "denoiser") and hasattr(no_diff, "sigma_head")
    out = no_diff.eval().trajectory(X)
    assert torch.equal(out["mu"], out["c"])
    _, logs = _model(beta=0.0).compute_loss(X, Y)
    assert "align" not in logs
    m = _model(alpha=0.0, beta=0.0)
    loss, logs = m.compute_loss(X, Y)
    assert math.isclose(loss.item(), logs["rec"], rel_tol=1e-6)


def test_schedule_scales_intermediate_noise():
    m = _model()
    ab = m.schedule.alpha_bars()
    assert torch.allclose(m.noise_scale, torch.sqrt(1 - ab).float())
    assert m.noise_scale[0] < 0.02 and m.noise_scale[-1] == 1.0


def test_registry_entry_and_bad_settings():
    m = build_model("diffureason-s", DiffuReasonSConfig(backbone=SASRecConfig(d_model=16, n_heads=2, d_ff=16)),
                    n_items=30, max_len=6)
    assert m.full_scores(X).shape == (3, 31)
    with pytest.raises(ValueError):
        DiffuReasonSettings(group_size=1)
    with pytest.raises(ValueError, match="divisible"):
        DiffuReason(SASRec(SASRecConfig(d_model=12, n_heads=2, d_ff=8), 30, 6))


def test_probes_shapes_and_consistency():
    from drlib.data import make_synthetic, split_leave_one_out
    from drlib.evaluate import compute_ranks
    from drlib.probes import group_metrics, stage_names, stage_ranks, stage_similarity
    ds = split_leave_one_out("syn", make_synthetic(n_users=80, n_items=30, max_len=12, seed=0), max_len=6,
                             n_items=30)
    m = _model().eval()
    ranks = stage_ranks(m, ds.test, batch_size=32)
    assert ranks.shape == (80, 4)
    assert (ranks[:, -1] == compute_ranks(m.full_scores, ds.test)).all()   # last stage = the model's output
    sim = stage_similarity(m, ds.test, batch_size=32)
    assert sim.shape == (4, 4) and np.allclose(np.diag(sim), 1.0, atol=1e-5) and np.allclose(sim, sim.T)
    g = group_metrics(ranks, ds, stage_names(m))
    assert len(g) == 2 * 4 * 4 and g[g.grouping == "user"].groupby("stage").n.sum().eq(80).all()

