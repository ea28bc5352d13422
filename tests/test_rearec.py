import pytest
import torch

from drlib.baselines.rearec import ReaRec, ReaRecSettings, ensemble_ce_kl
from drlib.registry import make_config
from drlib.models import SASRec, SASRecConfig
from drlib.registry import build_model

X = torch.tensor([[0, 0, 1, 2, 3, 4], [0, 5, 6, 7, 8, 9], [0, 0, 0, 0, 3, 9]])
Y = torch.tensor([5, 10, 11])


def _model(method="erl", **kw):
    torch.manual_seed(0)
    bb = SASRec(SASRecConfig(d_model=16, n_layers=1, n_heads=2, d_ff=16, dropout=0.1), n_items=30, max_len=6)
    return ReaRec(bb, ReaRecSettings(method=method, **kw))


def test_extra_tokens_do_not_change_the_history_states():
    bb = _model().backbone.eval()
    H = bb.encode(X)
    H2 = bb.encode(X, torch.randn(3, 2, 16))
    assert H2.shape == (3, 8, 16)
    assert torch.allclose(H, H2[:, :6], atol=1e-6)          # items never attend to the reasoning tokens


@pytest.mark.parametrize("method", ["erl", "prl"])
def test_shapes_and_no_future_leakage(method):
    m = _model(method).eval()
    steps = m.reason(X)
    assert steps.shape == (3, 3, 16)
    assert torch.allclose(steps[:, 0], m.backbone.encode(X)[:, -1])
    s = m.full_scores(X)
    assert s.shape == (3, 31) and torch.isinf(s[:, 0]).all()
    # a history's scores depend on that history only: a changed earlier row does not change others
    X2 = X.clone()
    X2[0, 2] = 7
    assert torch.allclose(m.full_scores(X2)[1:], s[1:], atol=1e-6)
    assert not torch.allclose(m.full_scores(X2)[0], s[0])
    assert torch.equal(m.full_scores(X), s)                 # deterministic at inference


def test_erl_predicts_from_the_mean_and_prl_from_the_last_step():
    for method in ("erl", "prl"):
        m = _model(method).eval()
        steps = m.reason(X)
        v = steps.mean(1) if method == "erl" else steps[:, -1]
        assert torch.allclose(m.full_scores(X)[:, 1:], v @ m.backbone.item_emb.weight[1:].t(), atol=1e-5)


@pytest.mark.parametrize("method,terms", [("erl", ("rec", "kl")), ("prl", ("rec", "cl"))])
def test_every_loss_term_gives_a_gradient(method, terms):
    m = _model(method).train()
    _, logs = m.compute_loss(X, Y)
    assert set(terms) <= set(logs) and all(logs[t] > 0 for t in terms)
    # switch each auxiliary term off: the loss (same seed) must change by exactly weight * term
    for t in terms[1:]:
        torch.manual_seed(5)
        loss, logs = m.compute_loss(X, Y)
        off = _model(method, **({"kl_weight": 0.0} if t == "kl" else {"contrastive_weight": 0.0})).train()
        off.load_state_dict(m.state_dict())
        torch.manual_seed(5)
        loss_off, _ = off.compute_loss(X, Y)
        w = m.cfg.kl_weight * -1 if t == "kl" else m.cfg.contrastive_weight
        assert abs((loss - loss_off).item() - w * logs[t]) < 1e-4
    loss, _ = m.compute_loss(X, Y)
    loss.backward()
    assert m.rpe.weight.grad is not None and m.rpe.weight.grad.abs().sum() > 0
    assert m.backbone.item_emb.weight.grad.abs().sum() > 0


def test_prl_temperatures_soften_early_steps():
    m = _model("prl", contrastive_weight=0.0).train()
    sharp = _model("prl", contrastive_weight=0.0, temperature_decay=1.0).train()
    sharp.load_state_dict(m.state_dict())
    torch.manual_seed(1)
    a = m.compute_loss(X, Y)[1]["rec"]
    torch.manual_seed(1)
    b = sharp.compute_loss(X, Y)[1]["rec"]
    assert a != pytest.approx(b)


def test_registry_and_bad_settings():
    cfg = make_config("rearec-prl", profile="smoke")
    assert cfg.model.reasoning.method == "prl" and cfg.label == "ReaRec-PRL"
    with pytest.raises(ValueError, match="rearec-erl"):
        build_model("rearec-prl", make_config("rearec-prl", profile="smoke",
                                              overrides=["model.reasoning.method=erl"]).model, 30, 6)
    for bad in ({"method": "x"}, {"reasoning_steps": 0}, {"temperature_decay": 0.5}, {"kl_weight": -1}):
        with pytest.raises(ValueError):
            ReaRecSettings(**bad)


def test_encode_last_with_reasoning_tokens_equals_the_last_position_of_encode():
    bb = _model().backbone.eval()
    extra = torch.randn(3, 2, 16)
    assert torch.allclose(bb.encode_last(X, extra), bb.encode(X, extra)[:, -1], atol=1e-5)


def _reference_ce_kl(logits, y):
    """ERL's terms as autograd sees them: per-step cross-entropy, pairwise KL by indexing."""
    B, S, N = logits.shape
    rec = torch.nn.functional.cross_entropy(logits.reshape(B * S, N), y.repeat_interleave(S))
    logp = torch.log_softmax(logits, -1)
    i, j = torch.triu_indices(S, S, 1)
    return rec, (logp[:, i].exp() * (logp[:, i] - logp[:, j])).sum(-1).mean()


@pytest.mark.parametrize("steps", [2, 3, 4])
def test_fused_erl_loss_matches_autograd_in_value_and_gradient(steps):
    torch.manual_seed(steps)
    z = (3 * torch.randn(5, steps, 17, dtype=torch.float64)).requires_grad_()
    y = torch.randint(0, 17, (5,))
    rec, kl = ensemble_ce_kl(z, y)
    ref_rec, ref_kl = _reference_ce_kl(z, y)
    assert torch.allclose(rec, ref_rec) and torch.allclose(kl, ref_kl) and kl > 0
    for a, b in [(0.7, -0.3), (1.0, 0.0), (0.0, 1.0)]:                 # each term's gradient, and a mix
        g, = torch.autograd.grad(a * rec + b * kl, z, retain_graph=True)
        g_ref, = torch.autograd.grad(a * ref_rec + b * ref_kl, z, retain_graph=True)
        assert torch.allclose(g, g_ref, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: ensemble_ce_kl(t, y), (z,))
