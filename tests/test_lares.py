import math

import pytest
import torch

from drlib.baselines.lares import LARES, LARESConfig, build_lares, info_nce
from drlib.models.sasrec import SASRecConfig

N_ITEMS, MAX_LEN = 30, 6
X = torch.tensor([[0, 0, 1, 2, 3, 4], [0, 5, 6, 7, 8, 9], [0, 0, 0, 0, 3, 9], [11, 12, 13, 14, 15, 16]])
Y = torch.tensor([5, 10, 11, 17])


def _cfg(dropout=0.1, **kw):
    bb = SASRecConfig(d_model=16, n_layers=2, n_heads=2, d_ff=16, dropout=dropout)
    return LARESConfig(backbone=bb, **{"reasoning_steps": 3, "group_size": 4, "spt_epochs": 2, **kw})


def _model(**kw):
    torch.manual_seed(0)
    return build_lares(_cfg(**kw), N_ITEMS, MAX_LEN)


def test_shapes_and_padding_column():
    m = _model().eval()
    out = m.backbone.trajectory(X)
    assert out["H"].shape == (4, MAX_LEN, 16)
    assert out["steps"].shape == (3, 4, MAX_LEN, 16)
    assert m.backbone.encode(X).shape == (4, MAX_LEN, 16)
    assert torch.equal(m.backbone.encode(X), out["steps"][-1])
    assert torch.equal(m.backbone.encode_last(X), out["steps"][-1][:, -1])     # not SASRec's pre-block shortcut
    s = m.full_scores(X)
    assert s.shape == (4, N_ITEMS + 1)
    assert torch.isinf(s[:, 0]).all() and (s[:, 0] < 0).all() and torch.isfinite(s[:, 1:]).all()


def test_core_weights_shared_across_steps():
    n = lambda m: sum(p.numel() for p in m.parameters())
    assert n(_model(reasoning_steps=1)) == n(_model(reasoning_steps=8))
    assert n(_model(core_layers=2)) > n(_model(core_layers=1))


@pytest.mark.parametrize("train", [False, True])
def test_no_future_leakage(train):
    m = _model().train(train)
    x2 = X.clone()
    x2[:, 4] = torch.tensor([20, 21, 22, 23])              # change position 4 of every history
    torch.manual_seed(1)
    a = m.backbone.trajectory(X)["steps"]
    torch.manual_seed(1)                                     # same T_0 noise and dropout masks
    b = m.backbone.trajectory(x2)["steps"]
    assert torch.allclose(a[:, :, :4], b[:, :, :4], atol=1e-6)   # earlier positions, every step
    assert not torch.allclose(a[:, :, 4:], b[:, :, 4:])      # the change does reach later positions


def test_scores_depend_only_on_the_history():
    m = _model().eval()
    full = m.full_scores(X)
    for i in range(len(X)):
        alone = m.full_scores(X[i:i + 1])
        assert torch.allclose(alone, full[i:i + 1], atol=1e-5)
    # less left padding (a trimmed batch), same history -> same scores
    assert torch.allclose(m.full_scores(X[2:3, 2:]), full[2:3], atol=1e-5)


def test_eval_deterministic_and_training_stochastic():
    m = _model().eval()
    assert torch.equal(m.full_scores(X), m.full_scores(X))
    m = _model(dropout=0.0).train()                           # no dropout: only T_0 is random
    assert not torch.equal(m.backbone.encode(X), m.backbone.encode(X))
    m = _model(dropout=0.0, init_noise_std=0.0).train()
    assert torch.equal(m.backbone.encode(X), m.backbone.encode(X))


def _term_grads(m, name):
    terms, _ = m.loss_terms(X, Y)
    m.zero_grad()
    terms[name].backward()
    return {n: p.grad for n, p in m.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}


@pytest.mark.parametrize("name", ["rec", "step", "traj"])
def test_every_spt_term_has_a_gradient(name):
    m = _model().train()
    m.start_epoch(0)
    grads = _term_grads(m, name)
    assert any(n.startswith("backbone.core.") for n in grads), name
    assert "backbone.item_emb.weight" in grads


def test_rpt_term_has_a_gradient():
    m = _model().train()
    m.start_epoch(2)
    grads = _term_grads(m, "align")
    assert any(n.startswith("backbone.core.") for n in grads)
    assert any(n.startswith("backbone.blocks.") for n in grads)


def test_phase_switch_and_logged_terms():
    m = _model().train()
    switches = [e for e in range(6) if m.start_epoch(e)]
    assert switches == [2]
    m.start_epoch(1)
    loss, logs = m.compute_loss(X, Y)
    assert {"rec", "step", "traj", "loss"} <= set(logs) and "align" not in logs
    cfg = m.cfg
    expected = logs["rec"] + cfg.step_weight * logs["step"] + cfg.traj_weight * logs["traj"]
    assert math.isclose(logs["loss"], expected, rel_tol=1e-5)
    m.start_epoch(2)
    loss, logs = m.compute_loss(X, Y)
    assert {"rec", "align", "reward", "informative_groups", "loss"} <= set(logs)
    assert "step" not in logs and "traj" not in logs
    assert math.isclose(logs["loss"], logs["rec"] + cfg.rl_weight * logs["align"], rel_tol=1e-5, abs_tol=1e-7)
    # resuming later in the run: the phase is a function of the epoch alone
    m2 = _model()
    assert m2.start_epoch(4) is False and m2.in_rl_phase()


def test_no_rl_means_no_phase_switch():
    m = _model(rl_weight=0.0)
    assert not any(m.start_epoch(e) for e in range(6)) and not m.in_rl_phase()
    _, logs = m.compute_loss(X, Y)
    assert "align" not in logs
    m = _model(spt_epochs=0)
    assert not m.start_epoch(0) and m.in_rl_phase()
    assert "step" not in _model(reasoning_steps=1).compute_loss(X, Y)[1]


def test_info_nce_prefers_matching_rows():
    a = torch.eye(4)
    assert info_nce(a, a, 0.1) < info_nce(a, a.roll(1, 0), 0.1)


@pytest.mark.parametrize("bad", [
    dict(reasoning_steps=0), dict(core_layers=0), dict(pre_layers=-1), dict(init_noise_std=-0.1),
    dict(step_weight=-1.0), dict(traj_weight=-1.0), dict(rl_weight=-1.0), dict(traj_temperature=0.0),
    dict(rl_sigma=0.0), dict(spt_epochs=-1), dict(group_size=1), dict(eps_clip=1.0), dict(reward="ndcg"),
    dict(reward="hit@0"),
])
def test_bad_config_raises(bad):
    with pytest.raises(ValueError):
        LARESConfig(**bad)


def test_lares_is_registered_with_its_label():
    from drlib.registry import make_config
    cfg = make_config("lares", "beauty", "cpu")
    assert cfg.label == "LARES" and cfg.model.backbone.d_model == 64
