import pytest
import torch

from drlib.models import SASRecConfig
from drlib.registry import MODELS, build_model
from drlib.models.sasrec import SASRec


def _model(**kw):
    torch.manual_seed(0)
    return SASRec(SASRecConfig(d_model=32, n_layers=2, n_heads=2, d_ff=48, dropout=0.0, **kw), n_items=30, max_len=6)


def test_shapes_and_padding_column():
    m = _model()
    x = torch.tensor([[0, 0, 1, 2, 3, 4], [0, 0, 0, 0, 0, 9]])
    h = m.encode(x)
    assert h.shape == (2, 6, 32) and torch.isfinite(h).all()
    s = m.score(h[:, -1])
    assert s.shape == (2, 31) and torch.isinf(s[:, 0]).all() and torch.isfinite(s[:, 1:]).all()


def test_causal_no_future_leakage():
    m = _model().eval()
    a = torch.tensor([[1, 2, 3, 4, 5, 6]])
    b = torch.tensor([[1, 2, 3, 9, 8, 7]])
    ha, hb = m.encode(a), m.encode(b)
    assert torch.allclose(ha[:, :3], hb[:, :3], atol=1e-6)
    assert not torch.allclose(ha[:, 3], hb[:, 3])


def test_padding_and_trimming_do_not_change_outputs():
    m = _model().eval()
    full = torch.tensor([[0, 0, 0, 5, 6, 7]])
    trimmed = full[:, 3:]
    assert torch.allclose(m.encode(full)[:, -1], m.encode(trimmed)[:, -1], atol=1e-6)


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match="divisible"):
        SASRecConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="dropout"):
        SASRecConfig(dropout=1.0)
    with pytest.raises(KeyError, match="unknown model"):
        build_model("sasrex", SASRecConfig(), 10, 5)


def test_registry_builds_recommender_with_gradients():
    m = build_model("sasrec", SASRecConfig(d_model=16, n_heads=2, d_ff=16), n_items=20, max_len=5)
    loss, logs = m.compute_loss(torch.tensor([[0, 1, 2, 3, 4]]), torch.tensor([5]))
    loss.backward()
    assert "sasrec" in MODELS and logs["loss"] > 0
    assert all(p.grad is not None for n, p in m.named_parameters() if "pos_emb" not in n)
