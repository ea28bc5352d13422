"""Generative backbones over Semantic IDs (drlib.models.hstu, drlib.models.tiger): HSTU with SIDs and TIGER. Tiny synthetic data only."""
import dataclasses
import itertools

import numpy as np
import pytest
import torch

from drlib.data.split import EvalSplit
from drlib.evaluate import compute_ranks
from drlib.models.hstu import HSTU, HSTUConfig, build_hstu
from drlib.models.tiger import TIGER, TIGERConfig, build_tiger
from drlib.models.sid_base import default_codes, random_codes, strictly_decreasing
from drlib.registry import make_config

N_ITEMS, LEVELS, VOCAB, MAX_LEN = 30, 3, 4, 8


def tiny_codes(seed: int = 0) -> torch.Tensor:
    """30 items with distinct 3-level SIDs over 4 codes per level (row 0 = -1)."""
    allc = torch.tensor(list(itertools.product(range(VOCAB), repeat=LEVELS)))
    pick = torch.randperm(len(allc), generator=torch.Generator().manual_seed(seed))[:N_ITEMS]
    return torch.cat([torch.full((1, LEVELS), -1), allc[pick]])


HSTU_CFG = HSTUConfig(d_model=32, n_layers=2, n_heads=2, dropout=0.0, decoder_d_ff=64, beam_width=10, head="sid")
TIGER_CFG = TIGERConfig(d_model=32, d_ff=64, n_heads=2, d_kv=16, n_enc_layers=2, n_dec_layers=2, dropout=0.0,
                        beam_width=10)


def make(kind: str, seed: int = 0, **kw):
    torch.manual_seed(seed)
    if kind == "hstu":
        return HSTU(HSTUConfig(**{**HSTU_CFG.__dict__, **kw}), N_ITEMS, MAX_LEN, tiny_codes())
    return TIGER(TIGERConfig(**{**TIGER_CFG.__dict__, **kw}), N_ITEMS, MAX_LEN, tiny_codes())


def histories(B: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, N_ITEMS + 1, (B, MAX_LEN), generator=g)
    lens = torch.randint(1, MAX_LEN + 1, (B,), generator=g)
    lens[0] = MAX_LEN
    return torch.where(torch.arange(MAX_LEN)[None] >= MAX_LEN - lens[:, None], x, torch.zeros_like(x))


KINDS = ["hstu", "tiger"]


# --------------------------------------------------------------------------- shapes and the decoder interface
def test_hstu_shapes():
    m = make("hstu").eval()
    x = histories(5)
    H = m.encode(x)
    assert H.shape == (5, MAX_LEN, 32)
    assert m.decode_logits(H[:, -1], torch.zeros(5, 0, dtype=torch.long)).shape == (5, VOCAB)
    # k = 3 beams per context row, a 2-code prefix -> level-2 logits
    assert m.decode_logits(H[:, -1], torch.zeros(15, 2, dtype=torch.long)).shape == (15, VOCAB)
    # a context of several vectors (h_L plus a refined latent, as DiffuReason-H will pass)
    ctx = torch.stack([H[:, -1], torch.randn(5, 32)], 1)
    assert m.decode_logits(ctx, torch.zeros(5, 1, dtype=torch.long)).shape == (5, VOCAB)
    with pytest.raises(ValueError):
        m.decode_logits(H[:, -1], torch.zeros(7, 1, dtype=torch.long))      # not a multiple of 5 rows
    with pytest.raises(ValueError):
        m.decode_logits(H[:, -1], torch.zeros(5, LEVELS, dtype=torch.long))  # no level after the last
    loss, logs = m.compute_loss(x, torch.arange(1, 6))
    assert loss.dim() == 0 and set(logs) == {"loss", "ce_l0", "ce_l1", "ce_l2"}
    assert abs(logs["loss"] - np.mean([logs[f"ce_l{t}"] for t in range(LEVELS)])) < 1e-5


def test_tiger_shapes():
    m = make("tiger").eval()
    x = histories(5)
    mem, pad = m.encode(x)
    assert mem.shape == (5, MAX_LEN * LEVELS, 32) and pad.shape == (5, MAX_LEN * LEVELS)
    assert torch.equal(pad, (x == 0).repeat_interleave(LEVELS, 1))
    assert m.decode_logits(mem, pad, torch.zeros(5, 0, dtype=torch.long)).shape == (5, VOCAB)
    assert m.decode_logits(mem, pad, torch.zeros(15, 2, dtype=torch.long)).shape == (15, VOCAB)
    # an extra memory token (DiffuReason-T's refined latent) is just one more unpadded memory column
    mem2 = torch.cat([mem, torch.randn(5, 1, 32)], 1)
    pad2 = torch.cat([pad, torch.zeros(5, 1, dtype=torch.bool)], 1)
    assert m.decode_logits(mem2, pad2, torch.zeros(5, 1, dtype=torch.long)).shape == (5, VOCAB)
    loss, logs = m.compute_loss(x, torch.arange(1, 6))
    assert loss.dim() == 0 and "loss" in logs


def test_tiger_beams_share_memory_exactly():
    """k beams per user against one memory copy == each beam with its own copy of the memory."""
    m = make("tiger").eval()
    mem, pad = m.encode(histories(3))
    prefix = torch.randint(0, VOCAB, (3 * 4, 2))
    grouped = m.decode_logits(mem, pad, prefix)
    copied = m.decode_logits(mem.repeat_interleave(4, 0), pad.repeat_interleave(4, 0), prefix)
    torch.testing.assert_close(grouped, copied, atol=1e-5, rtol=1e-5)


def test_tiger_cached_beam_search_equals_recomputing():
    """The eval-mode incremental decoder (cached keys/values, reordered with the beams) returns the same beams
    as recomputing every prefix; with an all-padding history too. It must be the path eval actually takes."""
    m = make("tiger", n_dec_layers=3).eval()
    x = histories(6)
    x[3] = 0                                                      # an empty history (all-padding memory)
    fast = m.retrieve(x, beam_width=12)
    m.cached_decoding = False
    slow = m.retrieve(x, beam_width=12)
    assert torch.equal(fast.items, slow.items)
    torch.testing.assert_close(fast.scores, slow.scores, atol=1e-5, rtol=1e-5)
    m.cached_decoding = True
    from drlib.models.tiger import _CachedDecoder
    assert isinstance(m.beam_decoder(m.context(x), 4), _CachedDecoder)
    assert not isinstance(m.train().beam_decoder(m.context(x), 4), _CachedDecoder)   # dropout: recompute


def test_tiger_cached_decoder_logits_follow_reorder():
    """Per level, the cached decoder's logits for beams picked by ``reorder`` equal decode_logits on the full
    prefixes (a reorder that permutes rows across beams of a user, as beam search does)."""
    m = make("tiger").eval()
    mem, pad = m.encode(histories(3))
    k = 4
    dec = m.beam_decoder((mem, pad), k)
    g = torch.Generator().manual_seed(3)
    prefix = torch.zeros(3 * k, 0, dtype=torch.long)
    for t in range(LEVELS):
        torch.testing.assert_close(dec(prefix), m.decode_logits(mem, pad, prefix), atol=1e-5, rtol=1e-5)
        parent = (torch.randint(0, k, (3, k), generator=g) + torch.arange(3)[:, None] * k).reshape(-1)
        dec.reorder(parent)
        prefix = torch.cat([prefix[parent], torch.randint(0, VOCAB, (3 * k, 1), generator=g)], 1)


# --------------------------------------------------------------------------- leakage and batch independence
def test_hstu_encoder_is_causal():
    m = make("hstu").eval()
    x = histories(4)
    x[:, :] = torch.randint(1, N_ITEMS + 1, x.shape, generator=torch.Generator().manual_seed(5))
    H = m.encode(x)
    for j in (3, MAX_LEN - 1):
        x2 = x.clone()
        x2[:, j] = x2[:, j] % N_ITEMS + 1
        H2 = m.encode(x2)
        torch.testing.assert_close(H2[:, :j], H[:, :j])
        assert (H2[:, j] - H[:, j]).abs().max() > 1e-4            # and the changed item does matter


@pytest.mark.parametrize("kind", KINDS)
def test_decoder_is_causal_over_the_sid(kind):
    """Teacher-forced level-t logits do not depend on the target's codes at levels >= t."""
    m = make(kind).eval()
    ctx = m.context(histories(6))
    tgt = m.codes[torch.arange(1, 7)]
    lg = m.level_logits(ctx, tgt)
    tgt2 = tgt.clone()
    tgt2[:, 1] = (tgt2[:, 1] + 1) % VOCAB
    lg2 = m.level_logits(ctx, tgt2)
    torch.testing.assert_close(lg2[0], lg[0])
    torch.testing.assert_close(lg2[1], lg[1])
    assert (lg2[2] - lg[2]).abs().max() > 1e-5
    # teacher forcing agrees with step-by-step decoding
    for t in range(LEVELS):
        torch.testing.assert_close(m.step_logits(m._repeat_ctx(ctx, 1), tgt[:, :t]), lg[t], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_scores_do_not_depend_on_other_rows_or_padding(kind):
    m = make(kind).eval()
    x = histories(6)
    x[0, :3] = 0                                   # no row fills the whole width
    full = m.full_scores(x)
    for b in range(6):
        alone = x[b:b + 1]
        alone = alone[:, (alone != 0).nonzero()[0, 1]:]    # trimmed to its own length, as the evaluator may do
        torch.testing.assert_close(m.full_scores(alone), full[b:b + 1], atol=1e-5, rtol=1e-5)
    # changing another row's history changes nothing in this row
    x2 = x.clone()
    x2[1:] = histories(5, seed=9)
    torch.testing.assert_close(m.full_scores(x2)[0], full[0], atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- learning a tiny task
def next_item_batch(B: int, g: torch.Generator):
    """History = a run of consecutive items (mod 30) of random length; target = the next one."""
    start = torch.randint(0, N_ITEMS, (B,), generator=g)
    lens = torch.randint(1, MAX_LEN + 1, (B,), generator=g)
    pos = torch.arange(MAX_LEN)[None]
    items = (start[:, None] + pos - (MAX_LEN - lens[:, None])) % N_ITEMS + 1
    x = torch.where(pos >= MAX_LEN - lens[:, None], items, torch.zeros_like(items))
    return x, (start + lens) % N_ITEMS + 1


@pytest.mark.parametrize("kind,lr,steps", [("hstu", 1e-2, 150), ("tiger", 3e-3, 300)])
def test_learns_next_item(kind, lr, steps):
    m = make(kind)
    opt = torch.optim.Adam(m.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    losses = []
    m.train()
    for _ in range(steps):
        x, y = next_item_batch(64, g)
        loss, logs = m.compute_loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(logs["loss"])
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:10])
    m.eval()
    x, y = next_item_batch(100, torch.Generator().manual_seed(123))
    res = m.retrieve(x)
    assert (res.items[:, 0] == y).float().mean() > 0.8
    assert (m.full_scores(x).argmax(1) == y).float().mean() > 0.8


# --------------------------------------------------------------------------- full_scores and the evaluator
@pytest.mark.parametrize("kind", KINDS)
def test_full_scores_structure(kind):
    m = make(kind).eval()
    x = histories(7)
    res = m.retrieve(x)
    s = m.full_scores(x)
    W = m.beam_width
    assert s.shape == (7, N_ITEMS + 1)
    assert (torch.isfinite(s).sum(1) == W).all()
    assert torch.isneginf(s[:, 0]).all()
    assert (res.items >= 1).all()
    for b in range(7):
        finite = torch.isfinite(s[b]).nonzero().squeeze(1)
        assert set(finite.tolist()) == set(res.items[b].tolist())
        along = s[b, res.items[b]]
        assert (along[1:] < along[:-1]).all()           # strictly decreasing in beam order
        assert torch.equal(s[b].topk(W).indices, res.items[b])


@pytest.mark.parametrize("kind", KINDS)
def test_tied_beam_scores_still_rank_by_beam_position(kind):
    """A decoder with constant logits ties every item; full_scores must still order the beam strictly."""
    m = make(kind).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.startswith("decoder.heads") or name == "head.weight":
                p.zero_()
    x = histories(4)
    res = m.retrieve(x)
    assert (res.scores == res.scores[:, :1]).all()                  # all tied
    s = m.full_scores(x)
    for b in range(4):
        along = s[b, res.items[b]]
        assert (along[1:] < along[:-1]).all()
    targets = res.items[torch.arange(4), torch.tensor([0, 3, 5, 9])]
    ranks = compute_ranks(m.full_scores, _split(x, targets), mask_history=False)
    assert ranks.tolist() == [0, 3, 5, 9]


def test_strictly_decreasing_breaks_ties():
    sc = torch.tensor([[-1.0, -1.0, -1.0, -2.0, float("-inf")], [0.0, -3.0, -3.0, -3.0, -3.0]])
    out = strictly_decreasing(sc)
    fin = torch.isfinite(out)
    assert (out[0, 1:4] < out[0, :3]).all() and (out[1, 1:] < out[1, :-1]).all()
    assert torch.isneginf(out[0, 4]) and fin.sum() == 9
    assert (out[fin] - sc[fin]).abs().max() < 1e-5     # only nudged


@pytest.mark.parametrize("kind", KINDS)
def test_beam_as_wide_as_catalogue_returns_every_item(kind):
    m = make(kind, beam_width=N_ITEMS).eval()
    s = m.full_scores(histories(3))
    assert torch.isfinite(s[:, 1:]).all() and torch.isneginf(s[:, 0]).all()
    x = histories(3)
    res = m.retrieve(x)
    assert all(sorted(r.tolist()) == list(range(1, N_ITEMS + 1)) for r in res.items)
    # the scores are each item's SID log-likelihood, as teacher forcing computes it
    ctx = m.context(x)
    for b in range(3):
        one = tuple(c[b:b + 1].expand(N_ITEMS, *c.shape[1:]) for c in ctx) if kind == "tiger" \
            else ctx[b:b + 1].expand(N_ITEMS, -1, -1)
        codes = m.codes[res.items[b]]
        ll = sum(lg.log_softmax(-1).gather(1, codes[:, t:t + 1]).squeeze(1)
                 for t, lg in enumerate(m.level_logits(one, codes)))
        torch.testing.assert_close(res.scores[b], ll, atol=1e-4, rtol=1e-4)


def _split(x: torch.Tensor, targets: torch.Tensor) -> EvalSplit:
    inputs = x.numpy()
    hist = [row[row != 0] for row in inputs]
    ptr = np.concatenate([[0], np.cumsum([len(h) for h in hist])]).astype(np.int64)
    return EvalSplit(inputs=inputs, targets=targets.numpy(), users=np.arange(len(inputs)), history_ptr=ptr,
                     history_idx=np.concatenate(hist).astype(np.int64))


@pytest.mark.parametrize("kind", KINDS)
def test_evaluator_ranks_are_beam_positions(kind):
    m = make(kind).eval()
    x = histories(8)
    res = m.retrieve(x)
    W = m.beam_width
    # targets: the beam's item at position p (p = 0..W-1) for most rows, an item outside the beam for the last two
    targets, expect_plain, expect_masked = [], [], []
    for b in range(8):
        items = res.items[b].tolist()
        hist = set(x[b][x[b] != 0].tolist())
        if b < 6:
            cands = [p for p, it in enumerate(items) if it not in hist]
            p = cands[(3 * b) % len(cands)]
            targets.append(items[p])
            expect_plain.append(p)
            expect_masked.append(p - sum(1 for it in items[:p] if it in hist))   # masked history drops out
        else:
            outside = [i for i in range(1, N_ITEMS + 1) if i not in items and i not in hist]
            targets.append(outside[0])
            expect_plain.append(N_ITEMS)       # ties with every -inf column -> rank n_items, a miss for K <= W
            expect_masked.append(N_ITEMS)
    split = _split(x, torch.tensor(targets))
    ranks_plain = compute_ranks(m.full_scores, split, batch_size=3, mask_history=False)
    ranks_masked = compute_ranks(m.full_scores, split, batch_size=3, mask_history=True)
    assert ranks_plain.tolist() == expect_plain
    assert ranks_masked.tolist() == expect_masked
    assert (ranks_masked[6:] >= W).all()


def test_fit_runs_with_the_training_loop():
    from drlib.config import EvalConfig, TrainConfig
    from drlib.data.split import split_leave_one_out
    from drlib.data.synthetic import make_synthetic
    from drlib.train import fit

    ds = split_leave_one_out("syn", make_synthetic(n_users=40, n_items=30, min_len=4, max_len=8), max_len=MAX_LEN)
    for build, cfg in ((build_hstu, HSTUConfig(d_model=16, decoder_d_ff=32, sid_source="random", beam_width=10)),
                       (build_tiger, TIGERConfig(d_model=16, d_ff=32, n_heads=2, d_kv=8, n_enc_layers=1,
                                                 n_dec_layers=1, sid_source="random", beam_width=10))):
        torch.manual_seed(0)
        model = build(cfg, ds.n_items, ds.max_len)
        res = fit(model, ds, TrainConfig(epochs=1, batch_size=16, patience=None, device="cpu", eval_batch_size=16),
                  EvalConfig(), progress=False, log=lambda s: None)
        assert res.epochs_run == 1 and 0.0 <= res.best_valid["ndcg@10"] <= 1.0


# --------------------------------------------------------------------------- configs and SID sources
@pytest.mark.parametrize("bad", [dict(d_model=50, n_heads=3), dict(dropout=1.0), dict(beam_width=0),
                                 dict(sid_source="rqvae"), dict(n_layers=-1), dict(decoder_layers=0)])
def test_bad_hstu_config(bad):
    with pytest.raises(ValueError):
        HSTUConfig(**bad)


@pytest.mark.parametrize("bad", [dict(d_model=0), dict(dropout=-0.1), dict(beam_width=0), dict(sid_source="x"),
                                 dict(n_enc_layers=0), dict(rel_buckets=2)])
def test_bad_tiger_config(bad):
    with pytest.raises(ValueError):
        TIGERConfig(**bad)


def test_table5_defaults_and_profile_mapping():
    h, t = HSTUConfig(), TIGERConfig()
    assert (h.d_model, h.n_layers, h.n_heads, h.dropout) == (50, 2, 1, 0.2)
    assert (t.d_model, t.d_ff, t.n_heads, t.n_enc_layers, t.n_dec_layers, t.dropout) == (128, 1024, 6, 4, 4, 0.1)
    smoke_h, smoke_t = make_config("hstu", profile="smoke").model, make_config("tiger", profile="smoke").model
    assert (smoke_h.d_model, smoke_h.n_layers, smoke_h.n_heads, smoke_h.sid_source) == (32, 1, 2, "random")
    assert (smoke_t.d_model, smoke_t.d_kv, smoke_t.n_enc_layers, smoke_t.n_dec_layers) == (32, 16, 1, 1)
    for name, table5 in (("hstu", h), ("tiger", t)):        # cpu and paper keep Table 5's sizes
        for profile in ("cpu", "paper"):
            assert make_config(name, "beauty", profile).model == dataclasses.replace(table5, dataset="beauty")


def test_bad_codes_raise():
    codes = tiny_codes()
    dup = codes.clone()
    dup[2] = dup[1]
    with pytest.raises(ValueError, match="disambiguation"):
        HSTU(HSTU_CFG, N_ITEMS, MAX_LEN, dup)
    with pytest.raises(ValueError):
        TIGER(TIGER_CFG, N_ITEMS + 1, MAX_LEN, codes)          # wrong number of rows


def test_default_codes_sources():
    r = default_codes("anything", 50, "random")
    assert r.shape[0] == 51 and (r[0] == -1).all() and torch.unique(r[1:], dim=0).shape[0] == 50
    assert torch.equal(r, random_codes(50))
    small = random_codes(40, levels=2, vocab=3)                  # forced collisions -> disambiguation column
    assert small.shape[1] == 3 and torch.unique(small[1:], dim=0).shape[0] == 40
    with pytest.raises(ValueError, match="RQ-VAE"):
        default_codes("synthetic", 50)
    with pytest.raises(ValueError, match="model.dataset"):
        default_codes("", 50)
    with pytest.raises(ValueError, match="RQ-VAE"):
        build_hstu(HSTUConfig(dataset="synthetic"), 50, MAX_LEN)


def test_reference_codes_beauty(shared_data):
    codes = default_codes("beauty", 12101)
    assert codes.shape == (12102, 5)                             # 4 x 256 plus the disambiguation token
    assert torch.unique(codes[1:], dim=0).shape[0] == 12101
    with pytest.raises(ValueError, match="12101"):
        default_codes("beauty", 500)


@pytest.mark.parametrize("name,label", [("hstu", "HSTU"), ("tiger", "TIGER")])
def test_registered_and_profiles(name, label, tmp_results):
    """Registry entries: the run's dataset reaches the config, the cpu profile keeps Table 5's sizes and batch,
    the smoke profile uses random SIDs and trains end to end through the runner."""
    from drlib.runner import run
    cpu = make_config(name, "beauty", "cpu")
    assert cpu.label == label and cpu.model.dataset == "beauty" and cpu.model.sid_source == "reference"
    assert cpu.model.d_model == (50 if name == "hstu" else 128)
    assert cpu.train.batch_size == (512 if name == "hstu" else 256) and cpu.train.lr == (3e-3 if name == "hstu" else 1e-3)
    assert make_config(name, "beauty", "paper").train.lr == 1e-4
    smoke = make_config(name, "synthetic", "smoke", overrides=["train.epochs=1"])
    assert smoke.model.sid_source == "random" and smoke.model.dataset == "synthetic"
    rec = run(smoke, progress=False, log=lambda *a: None)
    assert rec["label"] == label and 0 <= rec["metrics"]["test"]["recall@10"] <= 1


@pytest.mark.parametrize("source", ["attributes", "collaborative"])
def test_rqvae_sid_sources_use_the_cached_tokenizer(source, monkeypatch):
    """sid_source=attributes/collaborative loads our tokenizer's codes (features = source, Table 4 settings but
    500 RQ-VAE epochs) and checks their catalogue size."""
    import drlib.models.sid_base as base
    seen = {}

    def fake_load_codes(cfg, build=True, progress=False, **kw):
        seen["cfg"] = cfg
        codes = torch.arange(4 * 7).view(7, 4) % 5
        codes[0] = -1
        return codes

    monkeypatch.setattr(base, "load_codes", fake_load_codes)
    codes = default_codes("beauty", 6, source)
    assert codes.shape[0] == 7 and seen["cfg"].features == source and seen["cfg"].rqvae.epochs == 500
    assert seen["cfg"].dataset == "beauty"
    with pytest.raises(ValueError, match="cover 6 items"):
        default_codes("beauty", 9, source)


def test_hstu_refuses_a_head_count_that_does_not_divide_its_width():
    assert HSTUConfig(d_model=50, n_heads=5).n_heads == 5
    with pytest.raises(ValueError, match="d_model=50 must be divisible by model.n_heads=4"):
        HSTUConfig(d_model=50, n_heads=4)
    with pytest.raises(ValueError, match="divisible"):
        make_config("hstu", "beauty", "cpu", overrides=["model.n_heads=4"])
