import math

import pytest
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


def _decoder_reference(rs, H, pad):
    """The reasoner as nn.TransformerDecoder computes it, the memory projected again at every step."""
    tokens = [H[:, -1]]
    for r in range(1, rs.steps):
        tgt = torch.stack(tokens, 1) + rs.step_emb.weight[:r]
        causal = torch.triu(torch.ones(r, r, dtype=torch.bool), 1)
        tokens.append(rs.decoder(tgt, H, tgt_mask=causal, memory_key_padding_mask=pad)[:, -1])
    return torch.stack(tokens, 1)


@pytest.mark.parametrize("d,heads,steps", [(16, 8, 3), (50, 5, 4)])
def test_reasoner_shares_memory_projections_and_equals_nn_decoder(d, heads, steps):
    """The written-out decoder (memory keys/values once per layer) gives nn.TransformerDecoder's tokens and
    gradients, with padded memory, and costs less arithmetic."""
    from torch.utils.flop_counter import FlopCounterMode
    from drlib.diffureason import LatentReasoner
    torch.manual_seed(0)
    H = torch.randn(3, 9, d, requires_grad=True)
    pad = torch.zeros(3, 9, dtype=torch.bool)
    pad[0, :4], pad[2, :8] = True, True
    for mode, dropout in (("eval", 0.1), ("train", 0.0)):       # training compared without dropout's masks
        rs = LatentReasoner(d, steps, 2, heads, dropout=dropout).train(mode == "train")
        new, ref = rs(H, pad), _decoder_reference(rs, H, pad)
        assert torch.allclose(new, ref, atol=1e-5), (mode, (new - ref).abs().max())
        params = [H] + list(rs.parameters())
        g_new = torch.autograd.grad(new.square().sum(), params)
        g_ref = torch.autograd.grad(ref.square().sum(), params)
        for a, b in zip(g_new, g_ref):
            assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
    counts = []
    for fn in (rs.forward, lambda H, pad: _decoder_reference(rs, H, pad)):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            fn(H, pad)
        counts.append(counter.get_total_flops())
    assert counts[0] < counts[1]


def test_reasoner_dropout_acts_in_training_only():
    from drlib.diffureason import LatentReasoner
    torch.manual_seed(0)
    rs = LatentReasoner(16, 3, 2, 8, dropout=0.3)
    H, pad = torch.randn(2, 5, 16), torch.zeros(2, 5, dtype=torch.bool)
    assert not torch.allclose(rs.train()(H, pad)[:, 1:], rs(H, pad)[:, 1:])
    rs.eval()
    assert torch.equal(rs(H, pad), rs(H, pad))


def test_denoiser_condition_once_equals_the_concatenated_layer():
    """``step(x, t, condition(c))`` is Eq. 16's network on ``[c, LN(x) + t_emb]``, values and gradients."""
    from drlib.diffureason import Denoiser
    torch.manual_seed(0)
    den = Denoiser(16, dropout=0.0)
    x, c = torch.randn(4, 16, requires_grad=True), torch.randn(4, 16, requires_grad=True)
    t = torch.full((1,), 5)
    mu, sigma = den.step(x, t, den.condition(c))
    h = den.net(torch.cat([c, den.in_norm(x) + den.time(t)], -1))
    mu_ref, log_sigma = h.chunk(2, -1)
    sigma_ref = (torch.nn.functional.softplus(log_sigma) + 1e-5).clamp(den.SIGMA_MIN, den.SIGMA_MAX)
    assert torch.allclose(mu, mu_ref, atol=1e-6) and torch.allclose(sigma, sigma_ref, atol=1e-6)
    params = [x, c] + list(den.parameters())
    g = torch.autograd.grad((mu * sigma).sum(), params)
    g_ref = torch.autograd.grad((mu_ref * sigma_ref).sum(), params)
    for a, b in zip(g, g_ref):
        assert torch.allclose(a, b, atol=1e-5)
