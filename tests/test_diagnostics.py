"""drlib.diffureason.diagnostics: per-term gradients on a smoke DiffuReason-S."""
import torch

from drlib.registry import make_config
from drlib.diffureason.diagnostics import consistency, term_gradients
from drlib.runner import build_for, get_dataset


def _batch(cfg, n=64):
    ds = get_dataset(cfg)
    return build_for(cfg, ds), torch.from_numpy(ds.train_inputs[:n]), torch.from_numpy(ds.train_targets[:n])


def test_term_gradients_match_a_manual_gradient():
    cfg = make_config("diffureason-s", "synthetic", "smoke")
    torch.manual_seed(0)
    model, x, y = _batch(cfg)
    vecs = {}
    torch.manual_seed(1)
    res = term_gradients(model, x, y, vectors=vecs)
    assert set(vecs) == {"rec", "diff", "align"} and abs(res["rec_cos_rec"] - 1) < 1e-5
    # the same forward pass (same seed) with L_rec alone: its backbone gradient norm is what was reported
    torch.manual_seed(1)
    terms, _, _, _ = model.loss_terms(x, y)
    model.zero_grad()
    terms["rec"].backward()
    g = torch.cat([p.grad.reshape(-1) for p in model.backbone.parameters() if p.grad is not None])
    assert abs(float(g.norm()) - res["rec_backbone_norm"]) < 1e-5 * max(1.0, float(g.norm()))
    assert 0 <= res["sigma_at_min"] <= 1 and res["sigma_mean"] > 0


def test_no_align_term_without_rl_and_consistency_bounds():
    cfg = make_config("diffureason-s", "synthetic", "smoke", ablation="w/o RL")
    torch.manual_seed(0)
    model, x, y = _batch(cfg)
    batches = []
    for s in range(3):
        v = {}
        torch.manual_seed(s)
        res = term_gradients(model, x, y, vectors=v)
        batches.append(v)
    assert "align_mu_norm" not in res and "diff_weight" in res
    c = consistency(batches)
    assert 0 < c["rec_signal"] <= 1 + 1e-6 and abs(c["rec_cos_rec_mean"] - 1) < 1e-5
    same = consistency([batches[0], batches[0]])
    assert abs(same["diff_signal"] - 1) < 1e-5        # identical gradients: all signal
