import math

import torch

from drlib.diffureason.policy import gaussian_log_density, group_advantages, grpo_loss
from drlib.diffureason.schedule import CosineSchedule


def test_cosine_schedule_matches_eq17():
    sch = CosineSchedule(T=16, s=0.008)
    ab = sch.alpha_bars()
    assert ab.shape == (17,)
    for t in (0, 1, 8, 16):
        ref = math.cos(((t / 16 + 0.008) / 1.008) * math.pi / 2) ** 2
        assert abs(float(ab[t]) - ref) < 1e-12
    assert (ab[1:] < ab[:-1]).all() and float(ab[-1]) < 1e-12 and float(ab[0]) > 0.9998
    assert sch.timesteps() == list(range(16, 0, -1))


def test_log_density_matches_torch_normal():
    torch.manual_seed(0)
    mu, sigma = torch.randn(4, 1, 6), torch.rand(4, 1, 6) + 0.1
    z = mu + sigma * torch.randn(4, 3, 6)
    ref = torch.distributions.Normal(mu, sigma).log_prob(z).sum(-1)
    assert torch.allclose(gaussian_log_density(z, mu, sigma), ref, atol=1e-5)


def test_group_advantages_hand_worked():
    r = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    a = group_advantages(r, eps=0.0 + 1e-12)
    # mean 0.25, population std sqrt(0.1875) = 0.4330
    assert torch.allclose(a[0], torch.tensor([0.75, -0.25, -0.25, -0.25]) / math.sqrt(0.1875), atol=1e-6)
    assert torch.equal(a[1], torch.zeros(4)) and torch.equal(a[2], torch.zeros(4))


def test_grpo_ratio_and_clipping_hand_worked():
    adv = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    logp_old = torch.zeros(1, 4)
    logp_new = torch.log(torch.tensor([[1.5, 1.5, 0.5, 0.9]])).requires_grad_()
    loss, info = grpo_loss(logp_new, logp_old, adv, eps_clip=0.2)
    # per sample min(rho A, clip(rho) A): 1.2, -1.5, 0.5, -0.9
    assert abs(loss.item() - (-(1.2 - 1.5 + 0.5 - 0.9) / 4)) < 1e-6
    assert abs(info["clip_frac"] - 0.75) < 1e-9
    loss.backward()
    g = logp_new.grad[0]
    assert g[0] == 0 and g[1] != 0 and g[2] != 0 and g[3] != 0   # clipped positive-advantage sample: no gradient
    # ratio 1 (one update per batch): the loss is -mean(A) and clipping never acts
    lp = torch.zeros(1, 4, requires_grad=True)
    loss1, info1 = grpo_loss(lp, lp.detach(), adv)
    assert info1["clip_frac"] == 0.0 and abs(loss1.item()) < 1e-7


def test_denoiser_shapes_and_sigma_range():
    from drlib.diffureason import Denoiser
    torch.manual_seed(0)
    den = Denoiser(16)
    x, c = torch.randn(5, 16) * 50, torch.randn(5, 16)
    mu, sigma = den(x, torch.full((5,), 7), c)
    assert mu.shape == sigma.shape == (5, 16)
    assert (sigma >= 1e-3).all() and (sigma <= 1.0).all()


def test_denoiser_input_norm_bounds_the_chain():
    """With the input LayerNorm, mu does not depend on the scale of x_t, so a 16-step chain cannot blow up."""
    from drlib.diffureason import Denoiser
    torch.manual_seed(0)
    t, c, x = torch.full((4,), 3), torch.randn(4, 16), torch.randn(4, 16)
    for norm in (True, False):
        den = Denoiser(16, dropout=0.0, input_norm=norm).eval()
        same = torch.allclose(den(x, t, c)[0], den(1000 * x, t, c)[0], atol=1e-4)
        assert same is norm


def test_reasoner_steps_causality_and_pooling():
    from drlib.diffureason import AttentionPooling, LatentReasoner
    torch.manual_seed(0)
    rs = LatentReasoner(16, steps=3, n_heads=8).eval()
    H = torch.randn(2, 5, 16)
    pad = torch.tensor([[True, True, False, False, False], [False] * 5])
    tau = rs(H, pad)
    assert tau.shape == (2, 3, 16) and torch.equal(tau[:, 0], H[:, -1])
    # padded memory positions do not matter
    H2 = H.clone()
    H2[0, :2] = 99.0
    assert torch.allclose(rs(H2, pad)[0], tau[0], atol=1e-5)
    c, w = AttentionPooling(16)(tau)
    assert c.shape == (2, 16) and torch.allclose(w.sum(-1), torch.ones(2))
    assert torch.allclose(c, tau.mean(1), atol=1e-6)      # zero-initialised query = uniform pooling
    assert LatentReasoner(16, steps=1)(H, pad).shape == (2, 1, 16)
