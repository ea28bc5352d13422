"""The strong backbones: SASRec's sqrt(d) input scaling, its last-position shortcut, the cheap dropout mask, and
HSTU's item-level head (shapes, no future leakage, scores against a brute-force computation)."""
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from drlib.diffureason.module import DiffuReason, DiffuReasonSettings
from drlib.models.hstu import HSTU, HSTUConfig
from drlib.models.sid_base import random_codes
from drlib.diffureason.adapters import HSTUItemReasoning, reasoning_backbone
from drlib.models import NextItemModel, SASRec, SASRecConfig
from drlib.models.layers import Dropout, keep_mask
from drlib.registry import make_config

N_ITEMS, MAX_LEN = 40, 8


def histories(B: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, N_ITEMS + 1, (B, MAX_LEN), generator=g)
    lens = torch.randint(1, MAX_LEN + 1, (B,), generator=g)
    lens[0] = MAX_LEN
    return torch.where(torch.arange(MAX_LEN)[None] >= MAX_LEN - lens[:, None], x, torch.zeros_like(x))


def sasrec(**kw) -> SASRec:
    torch.manual_seed(0)
    return SASRec(SASRecConfig(d_model=16, n_layers=2, n_heads=2, d_ff=32, dropout=0.0, **kw), N_ITEMS, MAX_LEN)


# --------------------------------------------------------------------------- SASRec
def test_sasrec_input_is_item_embedding_times_sqrt_d_plus_position():
    m = sasrec().eval()
    x = histories(4)
    emb, keep = m.embed(x)
    pos = m.pos_emb.weight[None]                                           # L = max_len: every position
    want = (m.item_emb(x) * math.sqrt(16) + pos) * keep
    assert torch.allclose(emb, want, atol=1e-6)
    unscaled = SASRec(SASRecConfig(d_model=16, n_layers=2, n_heads=2, d_ff=32, dropout=0.0, scale_emb=False),
                      N_ITEMS, MAX_LEN)
    unscaled.load_state_dict(m.state_dict())
    assert torch.allclose(unscaled.eval().embed(x)[0], (m.item_emb(x) + pos) * keep, atol=1e-6)
    assert SASRecConfig().scale_emb                                        # every profile: the original model


def test_sasrec_encode_last_equals_the_last_position_of_encode():
    m = sasrec().eval()
    x = histories(6)
    assert torch.allclose(m.encode_last(x), m.encode(x)[:, -1], atol=1e-5)
    # the model the training loop sees scores with it; gradients reach every parameter but the never-read ones
    model = NextItemModel(m).train()
    loss, _ = model.compute_loss(x, torch.randint(1, N_ITEMS + 1, (6,)))
    loss.backward()
    assert all(p.grad is not None for n, p in m.named_parameters()), [n for n, p in m.named_parameters()
                                                                    if p.grad is None]


def test_sasrec_no_future_leakage():
    m = sasrec().eval()
    x = histories(3)
    H = m.encode(x)
    y = x.clone()
    y[:, -1] = (y[:, -1] % N_ITEMS) + 1                                     # change only the newest item
    H2 = m.encode(y)
    assert torch.allclose(H[:, :-1], H2[:, :-1], atol=1e-6)
    assert not torch.allclose(H[:, -1], H2[:, -1])


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5])
def test_dropout_keep_probability_and_scale(p):
    torch.manual_seed(0)
    d = Dropout(p).train()
    y = d(torch.ones(400, 500))
    kept = (y != 0).float().mean().item()
    assert abs(kept - (1 - p)) < 0.005
    assert abs(y.mean().item() - 1.0) < 0.01                               # inverted: the mean is preserved
    assert torch.equal(d.eval()(torch.ones(3, 4)), torch.ones(3, 4))
    m = keep_mask((7, 9), d.threshold, "cpu")
    assert m.shape == (7, 9) and m.dtype == torch.bool


# --------------------------------------------------------------------------- HSTU, item head
def hstu(head="item", **kw) -> HSTU:
    torch.manual_seed(0)
    codes = random_codes(N_ITEMS, levels=3, vocab=5, seed=0)
    return HSTU(HSTUConfig(d_model=20, n_layers=2, n_heads=2, dropout=0.0, decoder_d_ff=32, beam_width=10,
                           head=head, **kw), N_ITEMS, MAX_LEN, codes)


def test_hstu_item_table_is_the_input_token_embedding():
    m = hstu().eval()
    table = m.item_table()
    assert table.shape == (N_ITEMS + 1, 20)
    assert torch.allclose(table[0], torch.zeros(20))
    ids = torch.arange(N_ITEMS + 1)
    assert torch.allclose(table, m.embed(ids[None])[0], atol=1e-6)
    assert m.decoder is None and sum(p.numel() for p in m.parameters()) < \
        sum(p.numel() for p in hstu("sid").parameters())


def test_hstu_item_scores_match_brute_force():
    m = hstu().eval()
    x = histories(5)
    scores = m.full_scores(x)
    assert scores.shape == (5, N_ITEMS + 1) and torch.isinf(scores[:, 0]).all()
    for b in range(5):
        h = m.encode(x[b:b + 1])[0, -1]
        for i in (1, 7, N_ITEMS):
            e = m.item_emb.weight[i] + sum(emb.weight[int(m.codes[i, t]) + 1] for t, emb in enumerate(m.sid_emb))
            assert torch.allclose(scores[b, i], h @ e, atol=1e-5)


def test_hstu_item_loss_is_full_softmax_cross_entropy():
    m = hstu().eval()
    x, y = histories(5), torch.randint(1, N_ITEMS + 1, (5,))
    loss, logs = m.compute_loss(x, y)
    want = F.cross_entropy(m.full_scores(x)[:, 1:], y - 1)
    assert torch.allclose(loss, want, atol=1e-5) and logs["loss"] == pytest.approx(want.item(), rel=1e-5)


@pytest.mark.parametrize("head", ["item", "sid"])
def test_hstu_heads_no_future_leakage(head):
    m = hstu(head).eval()
    x = histories(3)
    y = x.clone()
    y[:, -1] = (y[:, -1] % N_ITEMS) + 1
    assert torch.allclose(m.encode(x)[:, :-1], m.encode(y)[:, :-1], atol=1e-6)
    s = m.full_scores(x)
    assert s.shape == (3, N_ITEMS + 1)
    if head == "sid":                                                      # beam search: W finite scores per row
        assert (torch.isfinite(s).sum(1) == 10).all()


def test_hstu_sid_head_api_on_item_head_is_a_clear_error():
    with pytest.raises(ValueError, match="head=sid"):
        hstu().decode_logits(torch.zeros(2, 20), torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="model.head"):
        HSTUConfig(head="both")


def test_diffureason_h_on_the_item_head_scores_like_diffureason_s():
    sid = hstu()
    bb = reasoning_backbone(sid)
    assert isinstance(bb, HSTUItemReasoning)
    model = DiffuReason(bb, DiffuReasonSettings(reasoning_steps=2, group_size=4, diffusion_steps=4),
                        fit_reasoner_heads=True)
    x, y = histories(6), torch.randint(1, N_ITEMS + 1, (6,))
    loss, logs = model.train().compute_loss(x, y)
    loss.backward()
    assert torch.isfinite(loss) and sid.item_emb.weight.grad is not None
    model.eval()
    s = model.full_scores(x)
    mu = model.trajectory(x)["mu"]
    assert s.shape == (6, N_ITEMS + 1) and torch.isinf(s[:, 0]).all()
    assert torch.allclose(s[:, 1:], mu @ sid.item_table()[1:].t(), atol=1e-4)   # mu . e(i), as DiffuReason-S
    assert torch.allclose(bb.target_latent(y), sid.item_table()[y], atol=1e-6)
    z = torch.stack([sid.item_table()[y], -sid.item_table()[y]], 1)               # [B, 2, d]
    r = bb.latent_rewards(None, z * 50, y)                                         # the target's own direction
    assert r.shape == (6, 2)


@pytest.mark.parametrize("model, backbone", [("diffureason-s", "sasrec"), ("diffureason-h", "hstu")])
def test_diffureason_cpu_profile_trains_longer_and_more_patiently_than_its_backbone(model, backbone):
    d, b = make_config(model, "beauty", "cpu").train, make_config(backbone, "beauty", "cpu").train
    assert (d.epochs, d.patience) == (100, 10) and b.patience < d.patience and b.epochs < d.epochs
    assert dataclasses.replace(d, epochs=b.epochs, patience=b.patience) == b      # nothing else differs
