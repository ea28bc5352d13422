"""Semantic IDs: features, RQ-VAE (Eq. 14-15, Table 4), disambiguation, stats, trie and constrained beam search.

All on tiny synthetic data (seconds, one thread); the real reference-SID file is only read, when present.
"""
import itertools
import json
from pathlib import Path

import pytest
import torch

from drlib.data.readers import DataFormatError
from drlib.sid import (PAD_CODE, RQVAE, RQVAEConfig, SIDTrie, add_disambiguation, assign_sids, attribute_features,
                       collaborative_features, constrained_beam_search, kmeans, load_reference_sids,
                       read_item2attributes, read_reference_sids, sid_stats, text_features, train_rqvae)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def clustered(n=400, dim=16, clusters=8, seed=0):
    """``[n + 1, dim]`` features, row 0 zeros: ``clusters`` well-separated centres plus small noise."""
    g = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(clusters, dim, generator=g)
    x = centres[torch.arange(n) % clusters] + 0.3 * torch.randn(n, dim, generator=g)
    return torch.cat([torch.zeros(1, dim), x])


SMALL = RQVAEConfig(latent_dim=8, codebook_sizes=(16, 16, 16), hidden=(32,), batch_size=128, epochs=2)


# --------------------------------------------------------------------------- config
def test_config_defaults_follow_table4_and_validate():
    c = RQVAEConfig()
    assert (c.latent_dim, c.codebook_sizes, c.lr, c.weight_decay, c.batch_size, c.epochs, c.recon_weight) == \
        (32, (256, 256, 256, 256), 1e-3, 1e-4, 1024, 20000, 1.0)
    assert c.beta == 0.25 and c.levels == 4
    assert RQVAEConfig(codebook_sizes=[8, 8]).codebook_sizes == (8, 8)
    for bad in (dict(beta=-0.1), dict(codebook_sizes=()), dict(codebook_sizes=(256, 0)), dict(lr=0),
                dict(batch_size=0), dict(latent_dim=0), dict(hidden=(0,))):
        with pytest.raises(ValueError, match="rqvae"):
            RQVAEConfig(**bad)


# --------------------------------------------------------------------------- RQ-VAE
def test_rqvae_forward_shapes_and_residuals():
    torch.manual_seed(0)
    m = RQVAE(SMALL, 16)
    v = clustered(50)[1:]
    out = m(v)
    assert out.recon.shape == (50, 16) and out.codes.shape == (50, 3) and out.codes.dtype == torch.long
    assert out.latent.shape == out.quantized.shape == (50, 8) and len(out.residuals) == 3
    assert out.codes.min() >= 0 and out.codes.max() < 16
    # Eq. 14: y_hat = sum of the chosen codewords; rho^(m+1) = rho^(m) - q^(m)
    q = [m.codebooks[l][out.codes[:, l]] for l in range(3)]
    assert torch.allclose(out.quantized, sum(q), atol=1e-6)
    assert torch.allclose(out.residuals[0], out.latent, atol=1e-6)
    assert torch.allclose(out.residuals[1], out.residuals[0] - q[0], atol=1e-6)
    # each level picks the nearest codeword of its residual
    for l in range(3):
        d = torch.cdist(out.residuals[l], m.codebooks[l].detach())
        assert torch.allclose(d.gather(1, out.codes[:, l:l + 1]).squeeze(1), d.min(1).values, atol=1e-5)
    assert torch.isclose(out.loss, out.recon_loss + out.codebook_loss + 0.25 * out.commit_loss)


def test_stop_gradients_of_eq15():
    torch.manual_seed(0)
    m = RQVAE(SMALL, 16)
    v = clustered(50)[1:]
    enc_w, book = m.encoder[0].weight, m.codebooks[0]

    def grads(loss_of):
        m.zero_grad(set_to_none=True)
        loss_of(m(v)).backward()
        g = lambda p: 0.0 if p.grad is None else float(p.grad.abs().sum())
        return g(enc_w), g(book)

    enc, cb = grads(lambda o: o.recon_loss)             # straight-through: the decoder's gradient reaches Enc
    assert enc > 0 and cb == 0
    enc, cb = grads(lambda o: o.codebook_loss)          # ||sg[rho] - q||^2 moves only the codebooks
    assert enc == 0 and cb > 0
    enc, cb = grads(lambda o: o.commit_loss)            # ||rho - sg[q]||^2 moves only the encoder
    assert enc > 0 and cb == 0


def test_training_losses_decrease_and_is_deterministic():
    x = clustered(400)
    cfg = RQVAEConfig(latent_dim=8, codebook_sizes=(16, 16, 16), hidden=(32,), batch_size=128, epochs=75)
    model, hist = train_rqvae(x, cfg, seed=3, progress=False)      # 4 batches x 75 epochs = 300 steps
    assert len(hist) == 75 and not model.training
    first, last = hist[0], hist[-1]
    assert last["recon"] < 0.5 * first["recon"], (first, last)
    assert last["loss"] < 0.5 * first["loss"], (first, last)
    with torch.no_grad():
        out = model(x[1:])                               # the 3-level quantization captures the latent
    assert (out.latent - out.quantized).norm(dim=1).mean() < 0.1 * out.latent.norm(dim=1).mean()
    model2, hist2 = train_rqvae(x, cfg, seed=3, progress=False)
    assert [h["loss"] for h in hist] == [h["loss"] for h in hist2]
    assert torch.equal(assign_sids(model, x), assign_sids(model2, x))
    _, hist3 = train_rqvae(x, RQVAEConfig(**{**cfg.__dict__, "epochs": 3}), seed=4, progress=False)
    assert hist3[0]["loss"] != hist[0]["loss"]


def test_kmeans_init_gives_high_utilization():
    x = clustered(400, clusters=8)[1:]
    torch.manual_seed(0)
    m = RQVAE(SMALL, 16)
    m.init_codebooks(x, torch.Generator().manual_seed(0))
    assert bool(m.initialized)
    used = [torch.unique(c).numel() / 16 for c in m.encode_codes(x).T]
    assert min(used) >= 0.9, used
    # train_rqvae runs it on the first batch: every code is used in epoch 1 (random init leaves many unused)
    cfg = RQVAEConfig(latent_dim=8, codebook_sizes=(16, 16, 16), hidden=(32,), batch_size=128, epochs=1,
                      reseed_dead=False)
    with_init = train_rqvae(clustered(400), cfg, seed=3, progress=False)[1][0]["used"]
    without = train_rqvae(clustered(400), RQVAEConfig(**{**cfg.__dict__, "kmeans_init": False}), seed=3,
                          progress=False)[1][0]["used"]
    assert min(with_init) >= 15 and sum(with_init) > sum(without), (with_init, without)
    # kmeans() itself: recovers well-separated clusters exactly
    pts = clustered(200, dim=4, clusters=5, seed=1)[1:]
    centres = kmeans(pts, 5, 20, torch.Generator().manual_seed(0))
    labels = torch.cdist(pts, centres).argmin(1)
    truth = torch.arange(200) % 5
    assert all(torch.unique(labels[truth == k]).numel() == 1 for k in range(5))
    assert torch.unique(labels).numel() == 5


def test_dead_codes_are_reseeded_from_residuals():
    x = clustered(30)                                    # 30 items, 64 codes: at least 34 codes stay unused
    cfg = RQVAEConfig(latent_dim=8, codebook_sizes=(64, 64), hidden=(32,), batch_size=32, epochs=1)
    model, hist = train_rqvae(x, cfg, seed=0, progress=False)
    assert hist[0]["reseeded"][0] == 64 - hist[0]["used"][0] >= 34
    # the re-seeded codewords are residual vectors of level 1, i.e. encoder outputs of training items
    with torch.no_grad():
        y = model.encoder(x[1:])
    d = torch.cdist(model.codebooks[0].detach(), y).min(1).values
    assert (d < 0.5).sum() >= 34                         # (one Adam step moved the encoder a little since)
    off = RQVAEConfig(**{**cfg.__dict__, "reseed_dead": False})
    assert train_rqvae(x, off, seed=0, progress=False)[1][0]["reseeded"] == [0, 0]


# --------------------------------------------------------------------------- SIDs, disambiguation, stats
def test_sid_stats_on_hand_made_codes():
    codes = torch.tensor([[-1, -1], [0, 0], [0, 0], [0, 1], [1, 1], [0, 0], [3, 2]])
    s = sid_stats(codes, codebook_sizes=4)
    assert s["codes_used"] == [3, 3] and s["utilization"] == [0.75, 0.75]
    assert s["collision_rate"] == pytest.approx(3 / 6) and s["max_collision"] == 3
    assert s["unique_sids"] == 4 and s["n_items"] == 6
    assert sid_stats(codes, levels=1, codebook_sizes=(4,))["collision_rate"] == pytest.approx(4 / 6)
    assert sid_stats(codes, codebook_sizes=None)["utilization"] == [0.75, 1.0]
    unique = sid_stats(torch.tensor([[-1, -1], [0, 1], [1, 0]]))
    assert unique["collision_rate"] == 0.0 and unique["max_collision"] == 1


def test_disambiguation_token():
    codes = torch.tensor([[-1, -1], [0, 0], [0, 0], [0, 1], [1, 1], [0, 0], [0, 1]])
    d = add_disambiguation(codes)
    assert d[:, 2].tolist() == [PAD_CODE, 0, 1, 0, 0, 2, 1]   # item-id order inside each collision group
    assert torch.equal(d[:, :2], codes)
    assert sid_stats(d)["collision_rate"] == 0.0 and sid_stats(d)["max_collision"] == 1
    u = torch.tensor([[-1, -1], [0, 1], [1, 0]])
    assert add_disambiguation(u).shape == (3, 2)                 # "auto": nothing to disambiguate
    assert add_disambiguation(u, True)[:, 2].tolist() == [PAD_CODE, 0, 0]
    assert torch.equal(add_disambiguation(codes, False), codes)


def test_assign_sids_shapes_and_uniqueness():
    x = clustered(200, clusters=4)
    x[5] = x[6] = x[7]                                   # identical features -> guaranteed collisions
    cfg = RQVAEConfig(latent_dim=8, codebook_sizes=(4, 4), hidden=(32,), batch_size=64, epochs=2)
    model, _ = train_rqvae(x, cfg, seed=0, progress=False)
    raw = assign_sids(model, x, disambiguate=False)
    assert raw.shape == (201, 2) and raw.dtype == torch.long and (raw[0] == PAD_CODE).all()
    assert sid_stats(raw, 4)["max_collision"] > 1
    sids = assign_sids(model, x)
    assert sids.shape == (201, 3) and torch.equal(sids[:, :2], raw)
    assert torch.unique(sids[1:], dim=0).shape[0] == 200
    assert sorted(sids[[5, 6, 7], 2].tolist()) == [0, 1, 2] or sid_stats(raw, 4)["max_collision"] > 3


# --------------------------------------------------------------------------- trie and beam search
def random_catalogue(n=40, vocab=(3, 4, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    allc = torch.tensor(list(itertools.product(*[range(v) for v in vocab])))
    body = allc[torch.randperm(allc.shape[0], generator=g)[:n]]
    return torch.cat([torch.full((1, len(vocab)), PAD_CODE), body])


def table_logits(B, vocab, seed=0, integer=False):
    """Per-user, per-prefix random scores: ``tables[t][b, c_0, .., c_{t-1}]`` is the level-``t`` score row."""
    g = torch.Generator().manual_seed(seed)
    tables = []
    for t in range(len(vocab)):
        shape = (B, *vocab[:t], vocab[t])
        tables.append(torch.randint(0, 3, shape, generator=g).float() if integer else torch.randn(shape, generator=g))

    def fn(prefix):
        rows, t = prefix.shape
        user = torch.arange(rows) // (rows // B)
        return tables[t][(user, *prefix.T)]
    return fn, tables


def brute_force(tables, codes, B, log_softmax):
    out = []
    for b in range(B):
        ranked = []
        for item in range(1, codes.shape[0]):
            s = 0.0
            for t, c in enumerate(codes[item].tolist()):
                row = tables[t][(b, *codes[item, :t].tolist())]
                row = row.log_softmax(-1) if log_softmax else row
                s += float(row[c])
            ranked.append((-s, item))
        ranked.sort()
        out.append(([i for _, i in ranked], [-s for s, _ in ranked]))
    return out


@pytest.mark.parametrize("integer", [False, True])
def test_beam_search_equals_brute_force(integer):
    vocab, B = (3, 4, 5), 6
    codes = random_catalogue(40, vocab)
    trie = SIDTrie(codes)
    fn, tables = table_logits(B, vocab, seed=1, integer=integer)
    log_softmax = not integer                            # integer scores: many exact ties in the sums
    res = constrained_beam_search(fn, trie, B, beam_width=40, log_softmax=log_softmax)
    truth = brute_force(tables, codes, B, log_softmax)
    for b in range(B):
        assert res.items[b].tolist() == truth[b][0]       # exact ranking; ties -> smaller item id first
        assert torch.allclose(res.scores[b], torch.tensor(truth[b][1]), atol=1e-5)
        assert torch.equal(res.sids[b], codes[res.items[b]])
    if integer:                                          # the tie test must actually contain ties
        assert any(len(set(truth[b][1])) < 40 for b in range(B))
    top = constrained_beam_search(fn, trie, B, beam_width=40, top_k=10, log_softmax=log_softmax)
    assert torch.equal(top.items, res.items[:, :10])


def test_beam_search_small_beam_and_disambiguated_catalogue():
    vocab, B = (3, 4, 5), 5
    codes = random_catalogue(40, vocab, seed=2)
    codes[1:, 2] = codes[1:, 2] % 2                      # force collisions on 3 levels ...
    codes = add_disambiguation(codes, True)              # ... resolved by a 4th token
    vocab4 = tuple(int(codes[1:, t].max()) + 1 for t in range(4))
    trie = SIDTrie(codes)
    fn, tables = table_logits(B, vocab4, seed=3)
    truth = brute_force(tables, codes, B, True)
    full = constrained_beam_search(fn, trie, B, beam_width=40)
    for b in range(B):
        assert full.items[b].tolist() == truth[b][0]
    for W in (1, 2, 3):
        res = constrained_beam_search(fn, trie, B, beam_width=W)
        assert res.items.shape == (B, W)
        for b in range(B):
            item = int(res.items[b, 0])
            assert 1 <= item <= 40 and torch.equal(res.sids[b, 0], codes[item])
            assert res.scores[b, 0] == pytest.approx(truth[b][1][truth[b][0].index(item)], abs=1e-5)
            assert res.items[b].unique().numel() == W    # W distinct items (the catalogue has >= W per user)


def test_beam_search_wider_vocab_and_errors():
    codes = random_catalogue(9, (3, 3), seed=0)          # all 9 SIDs of a 3 x 3 vocabulary
    trie = SIDTrie(codes, vocab_sizes=[3, 3])
    g = torch.Generator().manual_seed(0)
    fn = lambda p: torch.randn(p.shape[0], 8, generator=g)   # the decoder's vocab is wider than the trie's
    res = constrained_beam_search(fn, trie, 2, beam_width=10)
    assert sorted(res.items[0, :9].tolist()) == list(range(1, 10))   # only catalogue items, each once
    assert res.items[0, 9] == 0 and res.scores[0, 9] == float("-inf")   # W > catalogue: padded with item 0
    assert (res.sids[0, 9] == PAD_CODE).all()
    with pytest.raises(ValueError, match="expected"):
        constrained_beam_search(lambda p: torch.zeros(p.shape[0], 2), trie, 2, beam_width=4)
    with pytest.raises(ValueError, match="top_k"):
        constrained_beam_search(fn, trie, 2, beam_width=3, top_k=5)
    with pytest.raises(ValueError, match="disambiguation"):
        SIDTrie(torch.tensor([[-1, -1], [0, 1], [0, 1]]))


def test_trie_tables_and_lookup():
    codes = torch.tensor([[-1, -1, -1], [0, 1, 0], [0, 1, 1], [2, 0, 0], [0, 0, 2]])
    trie = SIDTrie(codes)
    assert trie.vocab_sizes == [3, 2, 3]
    assert trie.allowed[0].tolist() == [[True, False, True]]
    assert trie.allowed[1].tolist() == [[True, True], [True, False]]       # prefixes (0,), (2,)
    assert trie.child[2].tolist() == [[-1, -1, 4], [1, 2, -1], [3, -1, -1]]  # prefixes (0,0), (0,1), (2,0)
    assert trie.lookup(codes[1:]).tolist() == [1, 2, 3, 4]
    assert trie.lookup(torch.tensor([[1, 0, 0], [0, 1, 2], [0, 5, 0], [-1, 0, 0]])).tolist() == [0, 0, 0, 0]


# --------------------------------------------------------------------------- features and readers
def test_attribute_features():
    item2attr = {1: [10, 20], 2: [10], 3: [30, 10], 5: [20]}
    x = attribute_features(item2attr, n_items=5, weighting="binary", normalize=False)
    assert x.shape == (6, 3) and x[0].abs().sum() == 0 and x[4].abs().sum() == 0
    assert x[3].tolist() == [1.0, 0.0, 1.0]
    t = attribute_features(item2attr, n_items=5)
    assert torch.allclose(t[[1, 2, 3, 5]].norm(dim=1), torch.ones(4))
    assert t[3, 2] > t[3, 0]                              # rare attribute 30 outweighs common 10 (tf-idf)
    r = attribute_features(item2attr, n_items=5, dim=2)
    assert r.shape == (6, 2) and torch.equal(r, attribute_features(item2attr, n_items=5, dim=2))
    p = attribute_features(item2attr, n_items=5, dim=2, reduce="random", seed=1)
    assert p.shape == (6, 2) and p[0].abs().sum() == 0
    with pytest.raises(ValueError, match="n_items"):
        attribute_features(item2attr, n_items=3)


def test_collaborative_features():
    table = torch.randn(11, 4) * 5 + 2
    x = collaborative_features(table, n_items=10)
    assert x.shape == (11, 4) and x[0].abs().sum() == 0
    assert torch.allclose(x[1:].mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(x[1:].std(0, unbiased=False), torch.ones(4), atol=1e-4)
    n = collaborative_features(table, standardize=False, normalize=True)
    assert torch.allclose(n[1:].norm(dim=1), torch.ones(10))
    with pytest.raises(ValueError, match="n_items \\+ 1"):
        collaborative_features(table, n_items=11)


def test_text_features_needs_texts():
    with pytest.raises(ValueError, match="texts is empty"):
        text_features([])


def test_reference_sid_reader_and_errors(tmp_path):
    good = {"0": ["<a_3>", "<b_0>", "<c_255>", "<d_1>"], "1": ["<a_3>", "<b_2>", "<c_0>", "<d_9>"]}
    p = tmp_path / "x.index.json"
    p.write_text(json.dumps(good))
    c = read_reference_sids(p)
    assert c.tolist() == [[-1] * 4, [3, 0, 255, 1], [3, 2, 0, 9]]   # key k -> drlib item k + 1
    with pytest.raises(DataFormatError, match="not found"):
        read_reference_sids(tmp_path / "missing.json")
    cases = {
        '{"0": ["<a_1>", "<b_2>"], "1": ["<a_1>"': "invalid JSON",
        '["<a_1>"]': "JSON object",
        '{"0": ["<a_1>"], "2": ["<a_2>"]}': "without gaps",
        '{"0": ["<a_1>", "<c_2>"]}': "level 1",
        '{"0": ["<a_1>", "<b_2>"], "1": ["<a_1>"]}': "same number of levels",
        '{"zero": ["<a_1>"]}': "not an integer",
    }
    for text, msg in cases.items():
        p.write_text(text)
        with pytest.raises(DataFormatError, match=msg) as e:
            read_reference_sids(p)
        assert str(p) in str(e.value)
    with pytest.raises(DataFormatError, match="no registered reference sids"):
        load_reference_sids("sports")
    q = tmp_path / "attrs.json"
    q.write_text('{"1": [1, 2], "2": ["brand"]}')
    with pytest.raises(DataFormatError, match="attribute ids"):
        read_item2attributes(q)
    q.write_text('{"0": [1]}')
    with pytest.raises(DataFormatError, match="1-based"):
        read_item2attributes(q)


@pytest.mark.parametrize("name,n_items,unique", [("beauty", 12101, 12088), ("instruments", 9922, 9897)])
def test_reference_sids_on_shared_data(name, n_items, unique):
    folder = SHARED / name / "reference_sids"
    if not folder.is_dir():
        pytest.skip("../shared/data reference SIDs not present")
    codes = load_reference_sids(name, path=SHARED, allow_download=False)
    assert codes.shape == (n_items + 1, 4) and (codes[0] == PAD_CODE).all()
    assert codes[1:].min() >= 0 and codes[1:].max() <= 255
    raw = json.loads(next(folder.glob("*.index.json")).read_text())
    for k in ("0", "1", str(n_items - 1)):
        assert codes[int(k) + 1].tolist() == [int(t.split("_")[1].rstrip(">")) for t in raw[k]]
    s = sid_stats(codes)
    assert s["unique_sids"] == unique and s["max_collision"] > 1
    d = add_disambiguation(codes)
    trie = SIDTrie(d)
    assert torch.equal(trie.lookup(d[1:]), torch.arange(1, n_items + 1))


def test_attribute_file_on_shared_data():
    if not (SHARED / "beauty" / "Beauty_item2attributes.json").is_file():
        pytest.skip("../shared/data not present")
    from drlib.sid import load_attribute_features
    x = load_attribute_features("beauty", path=SHARED, allow_download=False, n_items=12101)
    assert x.shape == (12102, 637) and x[0].abs().sum() == 0
    assert torch.allclose(x[1:].norm(dim=1), torch.ones(12101), atol=1e-5)
