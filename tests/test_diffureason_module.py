import math

import numpy as np
import pytest
import torch

from drlib.diffureason.module import DiffuReason, DiffuReasonSettings
from drlib.models import SASRec, SASRecConfig
from drlib.registry import DiffuReasonSConfig, build_model


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
    for s in range(4):                     # one pass per batch ranks every stage as its own pass would
        def one(x, s=s):
            out = m.trajectory(x)
            lat = torch.cat([out["tau"], out["mu"][:, None]], 1)
            return m.backbone.latent_scores(out["state"], lat[:, s])
        assert (ranks[:, s] == compute_ranks(one, ds.test, batch_size=32)).all()
    sim = stage_similarity(m, ds.test, batch_size=32)
    assert sim.shape == (4, 4) and np.allclose(np.diag(sim), 1.0, atol=1e-5) and np.allclose(sim, sim.T)
    g = group_metrics(ranks, ds, stage_names(m))
    assert len(g) == 2 * 4 * 4 and g[g.grouping == "user"].groupby("stage").n.sum().eq(80).all()



def test_sample_rewards_hit_at_k_and_mrr_with_ties():
    from drlib.models.rewards import sample_rewards
    # two users, two samples each, three real items (ids 1..3; column j = item j+1)
    logits = torch.tensor([[[0.1, 0.9, 0.2], [0.5, 0.5, 0.1]],
                           [[0.3, 0.2, 0.1], [0.0, 0.0, 0.0]]])
    targets = torch.tensor([2, 1])
    assert sample_rewards(logits, targets, "hit@1").tolist() == [[1.0, 0.0], [1.0, 0.0]]  # tie -> no hit
    assert sample_rewards(logits, targets, "hit@2").tolist() == [[1.0, 1.0], [1.0, 0.0]]
    assert torch.allclose(sample_rewards(logits, targets, "mrr"), torch.tensor([[1.0, 0.5], [1.0, 1 / 3]]))


def test_gaussian_kl_matches_torch_distributions():
    from drlib.diffureason.module import gaussian_kl
    g = torch.Generator().manual_seed(0)
    mu, mu0 = torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g)
    s, s0 = torch.rand(4, 5, generator=g) + 0.1, torch.rand(4, 5, generator=g) + 0.1
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu, s), torch.distributions.Normal(mu0, s0))
    assert torch.allclose(gaussian_kl(mu, s, mu0, s0), ref.sum(-1), atol=1e-5)


def test_kl_reference_is_the_model_at_epoch_start():
    m = _model(kl_weight=0.1).train()
    m.start_epoch(0)
    _, logs = m.compute_loss(X, Y)
    assert logs["kl"] < 1e-6          # same weights, same noise and dropout masks -> identical policy
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    loss, _ = m.compute_loss(X, Y)
    loss.backward()
    opt.step()
    _, logs = m.compute_loss(X, Y)
    assert logs["kl"] > 1e-4          # the reference stayed behind
    assert not any(p.requires_grad for p in m._reference.parameters())
    assert not any(k.startswith("_reference") for k in m.state_dict())
    m.start_epoch(1)
    _, logs = m.compute_loss(X, Y)
    assert logs["kl"] < 1e-6


def test_two_stage_switches_from_mse_pretraining_to_rl():
    m = _model(two_stage_epochs=2).train()
    assert m.start_epoch(0) is False
    loss, logs = m.compute_loss(X, Y)
    assert "align" not in logs and math.isclose(loss.item(), logs["rec"] + logs["diff"], rel_tol=1e-5)
    assert m.start_epoch(2) is True
    loss, logs = m.compute_loss(X, Y)
    assert "align" in logs and math.isclose(loss.item(), logs["rec"] + logs["align"], rel_tol=1e-5, abs_tol=1e-6)
    with pytest.raises(ValueError):
        DiffuReasonSettings(two_stage_epochs=2, beta=0.0)
    with pytest.raises(ValueError):
        DiffuReasonSettings(reward="hit@0")


def test_every_table3_row_is_a_config_that_builds_what_it_names():
    from drlib.registry import make_config
    from drlib.diffureason.ablations import ABLATIONS
    for row in ABLATIONS:
        cfg = make_config("diffureason-s", "synthetic", "smoke", ablation=row)
        assert cfg.label == row and cfg.experiment == "main"
        m = build_model(cfg.model_name, cfg.model, 30, 6)
        s = m.cfg
        assert (s.reasoning_steps == 1) == ("CoT" in row)
        assert hasattr(m, "denoiser") != ("w/o Diffusion" in row)
        assert (s.beta == 0) == ("RL" in row and "w/o" in row)
        assert (s.alpha == 0) == (row == "w/o MSE")
        assert (s.kl_weight > 0) == (row == "with KL") and (s.two_stage_epochs > 0) == (row == "with Two-stage")
    base = make_config("diffureason-s", "synthetic", "smoke")
    assert make_config("diffureason-s", "synthetic", "smoke", ablation="DiffuReason").config_hash == base.config_hash
    with pytest.raises(KeyError):
        make_config("diffureason-s", "synthetic", "smoke", ablation="w/o everything")


@pytest.mark.parametrize("kind", ["hit@1", "hit@3", "mrr"])
def test_chunked_latent_rewards_equal_the_reference(kind):
    from drlib.models.rewards import latent_rewards, sample_rewards
    g = torch.Generator().manual_seed(0)
    z, items = torch.randn(5, 4, 8, generator=g), torch.randn(41, 8, generator=g)
    items[7] = items[9]                                  # a tie in the catalogue
    targets = torch.tensor([7, 9, 1, 40, 3])
    z[:, :2] = 3 * items[targets][:, None]                # two samples per user aimed at the target
    ref = sample_rewards(z @ items[1:].t(), targets, kind)
    assert torch.equal(latent_rewards(z, items, targets, kind, chunk=3), ref)
    assert ref.sum() > 0


@pytest.mark.parametrize("kind", ["hit@1", "hit@3", "hit@10"])
def test_screened_rewards_are_those_of_full_scoring_near_ties_included(kind):
    """The short-list screen (models.rewards) changes only the time: rewards equal full scoring, also when a
    rival beats or ties the target by less than rounding, and on samples that hit, miss narrowly or miss far."""
    from drlib.models.rewards import latent_rewards, sample_rewards
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        B, G, d, N = 12, 8, 16, 500
        items = torch.randn(N, d, generator=g)
        targets = torch.randint(3, N, (B,), generator=g)
        items[1] = items[targets[0]] * (1 + 1e-7)                       # a rival a hair above user 0's target
        items[2] = items[targets[1]]                                     # a tie with user 1's target
        aim = items[targets][:, None] * torch.rand(B, G, 1, generator=g) * 4
        z = aim + torch.randn(B, G, d, generator=g) * torch.linspace(0, 3, G).view(1, G, 1)
        ref = sample_rewards(z @ items[1:].t(), targets, kind)
        for cand in (1, 8, 32, 1000):
            assert torch.equal(latent_rewards(z, items, targets, kind, chunk=7, candidates=cand), ref)
        assert 0 < ref.sum() < B * G


def test_the_screen_drops_only_samples_with_k_rivals_beyond_rounding():
    from drlib.models.rewards import _screened_out
    items = torch.zeros(6, 2)
    items[1:, 0] = torch.tensor([1.0, 2.0, 3.0, 2.0 * (1 + 1e-7), 0.5])    # item 4 a hair above item 2
    W, z = items[1:].t(), torch.tensor([[[1.0, 0.0]]])                     # one user, one sample on axis 0
    dropped = lambda t, K: bool(_screened_out(z, W, torch.tensor([t - 1]), K, 5))
    assert dropped(1, 1) and dropped(1, 3) and not dropped(1, 4)            # 3 clear rivals (item 4 ~ item 2)
    assert not dropped(3, 1)                                                # the top item is never dropped
    assert dropped(2, 1) and not dropped(2, 2)                              # item 3 is clear, item 4 within rounding
    assert dropped(5, 4)


def test_mse_reduction_mean_is_the_squared_norm_over_d():
    """Eq. 7 read as an MSE (mean over the d coordinates) differs from the squared norm by exactly 1/d."""
    logs = {}
    for red in ("mean", "sum"):
        m = _model(diff_reduction=red, beta=0.0).train()
        torch.manual_seed(3)
        _, logs[red] = m.compute_loss(X, Y)
    assert math.isclose(logs["sum"]["diff"], 16 * logs["mean"]["diff"], rel_tol=1e-5)
    with pytest.raises(ValueError, match="diff_reduction"):
        DiffuReasonSettings(diff_reduction="max")
