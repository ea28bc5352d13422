"""DiffuReason-H / DiffuReason-T: the DiffuReason module on the Semantic-ID backbones (drlib.diffureason.adapters).

Tiny random catalogues only (plus one smoke run per model through the runner on the synthetic data)."""

import dataclasses
import pytest
import torch

from drlib.registry import make_config
from drlib.diffureason.module import DiffuReason, DiffuReasonSettings, fitted_heads
from drlib.models.hstu import HSTU, HSTUConfig
from drlib.models.sid_base import random_codes
from drlib.models.tiger import TIGER, TIGERConfig
from drlib.diffureason.adapters import HSTUItemReasoning, HSTUReasoning, TIGERReasoning, reasoning_backbone
from drlib.registry import build_model, get_model_entry

N_ITEMS, MAX_LEN, LEVELS, VOCAB, W = 40, 6, 3, 4, 8
KINDS = ["hstu", "tiger"]
SETTINGS = DiffuReasonSettings(diffusion_steps=3, group_size=4, reasoner_layers=1)


def codes():
    return random_codes(N_ITEMS, levels=LEVELS, vocab=VOCAB, seed=0)


def backbone(kind: str, dropout: float = 0.1):
    if kind == "hstu":
        sid = HSTU(HSTUConfig(d_model=24, n_layers=1, n_heads=2, dropout=dropout, decoder_d_ff=32, beam_width=W, head="sid"),
                   N_ITEMS, MAX_LEN, codes())
    else:
        sid = TIGER(TIGERConfig(d_model=24, d_ff=32, n_heads=2, d_kv=8, n_enc_layers=1, n_dec_layers=1,
                                dropout=dropout, beam_width=W), N_ITEMS, MAX_LEN, codes())
    return reasoning_backbone(sid)


def model(kind: str, settings: DiffuReasonSettings = SETTINGS, dropout: float = 0.1) -> DiffuReason:
    torch.manual_seed(0)
    return DiffuReason(backbone(kind, dropout), settings, fit_reasoner_heads=True)


def histories(B: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, N_ITEMS + 1, (B, MAX_LEN), generator=g)
    lens = torch.randint(1, MAX_LEN + 1, (B,), generator=g)
    lens[0] = MAX_LEN
    return torch.where(torch.arange(MAX_LEN)[None] >= MAX_LEN - lens[:, None], x, torch.zeros_like(x))


X = histories(5)
Y = torch.tensor([3, 17, 40, 1, 22])


# --------------------------------------------------------------------------- hooks
@pytest.mark.parametrize("kind", KINDS)
def test_hook_shapes(kind):
    m = model(kind).eval()
    bb, B, d = m.backbone, X.shape[0], 24
    assert isinstance(bb, HSTUReasoning if kind == "hstu" else TIGERReasoning)
    state, H, pad = bb.reasoning_memory(X)
    S = MAX_LEN if kind == "hstu" else MAX_LEN * bb.sid.levels
    assert H.shape == (B, S, d) and pad.shape == (B, S) and pad.dtype == torch.bool
    if kind == "hstu":
        assert state.shape == (B, 1, d) and torch.equal(state[:, 0], H[:, -1]) and torch.equal(pad, X == 0)
        assert bb.context(state, torch.randn(B, d)).shape == (B, 2, d)
    else:
        mem, mem_pad = bb.context(state, torch.randn(B, d))
        assert mem.shape == (B, S + 1, d) and mem_pad.shape == (B, S + 1) and not mem_pad[:, -1].any()
    mu = torch.randn(B, d)
    assert bb.target_latent(Y).shape == (B, d)
    assert bb.latent_loss(state, mu, Y).dim() == 0
    assert bb.latent_rewards(state, torch.randn(B, 4, d), Y).shape == (B, 4)
    assert bb.latent_scores(state, mu).shape == (B, N_ITEMS + 1)
    table = bb.item_embeddings()
    assert table.shape == (N_ITEMS + 1, d) and torch.equal(table[Y], bb.target_latent(Y))
    assert torch.all(table[0] == 0)
    with pytest.raises(NotImplementedError, match="latent_scores"):
        bb.score(mu)
    out = m.trajectory(X)
    assert out["H"].shape == (B, S, d) and out["tau"].shape == (B, 3, d) and out["mu"].shape == (B, d)


def test_diffureason_t_scores_same_with_cached_decoding():
    """DiffuReason-T's evaluation (latent appended to the memory) through the cached TIGER decoder."""
    bb = model("tiger").eval().backbone
    state = bb.reasoning_memory(X)[0]
    mu = torch.randn(X.shape[0], 24, generator=torch.Generator().manual_seed(0))
    fast = bb.latent_scores(state, mu)
    bb.sid.cached_decoding = False
    slow = bb.latent_scores(state, mu)
    assert torch.equal(torch.isfinite(fast), torch.isfinite(slow))
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_v_target_definitions():
    h = backbone("hstu")
    assert torch.allclose(h.target_latent(Y), h.sid.embed(Y[:, None])[:, 0] * 24 ** 0.5)
    t = backbone("tiger")
    assert torch.allclose(t.target_latent(Y), t.sid.tok_emb(t.sid.item_tokens[Y]).mean(1))


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_reach_encoder_reasoner_denoiser(kind):
    m = model(kind).train()
    loss, logs = m.compute_loss(X, Y)
    loss.backward()
    sid = m.backbone.sid
    enc = [sid.item_emb, sid.layers[0].f1] if kind == "hstu" else [sid.tok_emb, sid.enc_layers[0].attn.q]
    dec = sid.decoder.heads if kind == "hstu" else sid.dec_layers[0].cross_attn
    for part in enc + [dec, m.reasoner.decoder.layers[0].multihead_attn, m.denoiser.net[0], m.denoiser.time.mlp[0]]:
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads), part
    assert {"rec", "diff", "align", "reward", "clip_frac"} <= set(logs)


@pytest.mark.parametrize("kind", KINDS)
def test_full_scores_deterministic_beam_width_finite(kind):
    m = model(kind).eval()
    s = m.full_scores(X)
    assert torch.equal(s, m.full_scores(X))
    assert s.shape == (X.shape[0], N_ITEMS + 1)
    assert (torch.isfinite(s).sum(1) == W).all() and torch.isinf(s[:, 0]).all()
    top = s.topk(W, dim=1).values
    assert (top[:, 1:] < top[:, :-1]).all()                         # strictly decreasing
    # the retrieved items are the beam search from mu's context
    out = m.trajectory(X)
    bb = m.backbone
    res = bb.sid.retrieve(X, ctx=bb.context(out["state"], out["mu"]))
    assert torch.equal(s.topk(W, dim=1).indices, res.items)
    bb.sid.eval_chunk = 2                 # chunked over users: the same items, scores up to float rounding
    s2 = m.full_scores(X)                 # (TIGER's cached decoder runs level 0 on one row per user, and BLAS
    assert torch.equal(torch.isfinite(s2), torch.isfinite(s))       # kernels for 2 rows and 5 rows differ)
    torch.testing.assert_close(s2, s, atol=1e-5, rtol=1e-5)


def _reference_greedy(bb, state, z) -> torch.Tensor:
    """One sample at a time, one level at a time: argmax over the codes the trie allows."""
    sid, trie = bb.sid, bb.sid.trie
    B, G, d = z.shape
    items = torch.zeros(B, G, dtype=torch.long)
    for b in range(B):
        for g in range(G):
            if isinstance(bb, HSTUReasoning):
                ctx = torch.cat([state[b:b + 1], z[b:b + 1, g:g + 1]], 1)
                fn = lambda p: sid.decode_logits(ctx, p)
            else:
                mem = torch.cat([state[0][b:b + 1], z[b:b + 1, g:g + 1]], 1)
                pad = torch.cat([state[1][b:b + 1], torch.zeros(1, 1, dtype=torch.bool)], 1)
                fn = lambda p: sid.decode_logits(mem, pad, p)
            node, prefix = 0, torch.zeros(1, 0, dtype=torch.long)
            for t in range(trie.levels):
                lg = fn(prefix)[0, :trie.vocab_sizes[t]]
                c = int(lg.masked_fill(~trie.allowed[t][node], float("-inf")).argmax())
                node = int(trie.child[t][node, c])
                prefix = torch.cat([prefix, torch.tensor([[c]])], 1)
            items[b, g] = node
    return items


@pytest.mark.parametrize("kind", KINDS)
def test_rewards_match_brute_force_greedy_decoding(kind):
    m = model(kind).eval()
    bb = m.backbone
    with torch.no_grad():
        out = m.trajectory(X)
        z = out["mu"][:, None] + torch.randn(X.shape[0], 6, 24, generator=torch.Generator().manual_seed(3))
        ref = _reference_greedy(bb, out["state"], z)
        assert torch.equal(bb.greedy_items(out["state"], z), ref)
        targets = ref[:, 0].clone()
        targets[1] = 1 + targets[1] % N_ITEMS                        # a row where sample 0 misses
        r = bb.latent_rewards(out["state"], z, targets)
    assert torch.equal(r, (ref == targets[:, None]).float())
    assert r[:, 0].sum() >= X.shape[0] - 1 and r.sum() < r.numel()
    m.train()                                                        # rewards decode without dropout
    with torch.no_grad():
        assert torch.equal(bb.latent_rewards(out["state"], z, targets), r)
    with pytest.raises(ValueError, match="hit@1"):
        bb.latent_rewards(out["state"], z, targets, "mrr")


def test_reasoner_heads_fit_the_width():
    assert fitted_heads(50, 8) == 5 and fitted_heads(128, 8) == 8 and fitted_heads(24, 8) == 8
    sid = HSTU(HSTUConfig(d_model=50, n_layers=1, decoder_d_ff=16, beam_width=W, head="sid"), N_ITEMS, MAX_LEN, codes())
    m = DiffuReason(reasoning_backbone(sid), SETTINGS, fit_reasoner_heads=True)
    assert m.reasoner.decoder.layers[0].self_attn.num_heads == 5
    with pytest.raises(ValueError, match="divisible"):
        DiffuReason(reasoning_backbone(sid), SETTINGS)               # strict unless asked


# --------------------------------------------------------------------------- registry, ablations, runs
@pytest.mark.parametrize("name", ["diffureason-h", "diffureason-t"])
@pytest.mark.parametrize("ablation", ["w/o Diffusion", "w/o RL", "w/o CoT"])
def test_ablations_build_and_train_a_step(name, ablation):
    cfg = make_config(name, "synthetic", "smoke", ablation=ablation,
                      overrides=["model.module.diffusion_steps=2", "model.module.group_size=2"])
    assert cfg.label == ablation
    torch.manual_seed(0)
    m = build_model(name, cfg.model, N_ITEMS, MAX_LEN).train()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    loss, logs = m.compute_loss(X, Y)
    loss.backward()
    opt.step()
    if ablation == "w/o Diffusion":
        assert not hasattr(m, "denoiser") and hasattr(m, "sigma_head")
    if ablation == "w/o RL":
        assert "align" not in logs
    if ablation == "w/o CoT":
        assert m.trajectory(X)["tau"].shape[1] == 1


def test_unsupported_reward_fails_at_build_time():
    cfg = make_config("diffureason-h", "synthetic", "smoke",
                      overrides=["model.module.reward=mrr", "model.backbone.head=sid"])
    with pytest.raises(ValueError, match="hit@1"):
        build_model("diffureason-h", cfg.model, N_ITEMS, MAX_LEN)
    # on the item head the rewards are SASRec's (argmax over the catalogue): every reward kind builds
    cfg = make_config("diffureason-h", "synthetic", "smoke", overrides=["model.module.reward=mrr"])
    assert isinstance(build_model("diffureason-h", cfg.model, N_ITEMS, MAX_LEN).backbone, HSTUItemReasoning)


def test_registry_configs():
    for name, label, plain, bcls in (("diffureason-h", "DiffuReason-H", "hstu", HSTUConfig),
                                     ("diffureason-t", "DiffuReason-T", "tiger", TIGERConfig)):
        cfg = make_config(name, "beauty", "cpu")
        assert cfg.label == label and isinstance(cfg.model.backbone, bcls)
        assert cfg.model.backbone.dataset == "beauty" and cfg.model.module == DiffuReasonSettings()
        base = make_config(plain, "beauty", "cpu")
        assert cfg.model.backbone == base.model                                    # the backbone's settings
        assert cfg.train == dataclasses.replace(base.train, epochs=100, patience=10)   # a 100-epoch cap, patience 10
    for profile, p in get_model_entry("hstu").profiles.items():       # every profile, the backbone's settings
        assert get_model_entry("diffureason-h").profiles[profile].model.backbone == p.model
        ours = get_model_entry("diffureason-h").profiles[profile].train
        assert ours == (dataclasses.replace(p.train, epochs=100, patience=10) if profile == "cpu" else p.train)


@pytest.mark.parametrize("name,label", [("diffureason-h", "DiffuReason-H"), ("diffureason-t", "DiffuReason-T")])
def test_smoke_run(tmp_results, name, label):
    from drlib.runner import run
    rec = run(make_config(name, "synthetic", "smoke", overrides=["train.epochs=1"]), progress=False,
              log=lambda *a: None)
    assert rec["label"] == label
    assert 0.0 <= rec["metrics"]["test"]["ndcg@10"] <= 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_stage_probes_decode_each_stage_through_beam_search(kind):
    """drlib.probes.stage_ranks on a SID backbone: one column per thinking token plus the diffusion output, the
    last equal to the model's own ranks; a target outside a stage's beam gets the catalogue-size rank."""
    import numpy as np
    from drlib.data import make_synthetic, split_leave_one_out
    from drlib.evaluate import compute_ranks
    from drlib.probes import stage_ranks
    ds = split_leave_one_out("syn", make_synthetic(n_users=30, n_items=N_ITEMS, max_len=MAX_LEN + 2, seed=0),
                             max_len=MAX_LEN, n_items=N_ITEMS)
    m = model(kind).eval()
    ranks = stage_ranks(m, ds.test, batch_size=16)
    assert ranks.shape == (30, SETTINGS.reasoning_steps + 1)
    assert (ranks[:, -1] == compute_ranks(m.full_scores, ds.test)).all()
    assert ((ranks < W) | (ranks >= N_ITEMS - W)).all()     # inside the beam, or tied at -inf with the rest


def test_default_sid_source_per_dataset_keeps_stored_hashes():
    """Reference SIDs where a dataset ships them, attribute SIDs elsewhere (Sports); the Beauty / Instruments
    configs, and so the stored runs' hashes, are unchanged by the per-dataset default."""
    from drlib.registry import default_sid_source
    assert default_sid_source("beauty") == default_sid_source("instruments") == "reference"
    assert default_sid_source("sports") == "attributes"
    assert make_config("hstu", "sports", "cpu").model.sid_source == "attributes"
    assert make_config("diffureason-t", "sports", "cpu").model.backbone.sid_source == "attributes"
    assert make_config("hstu", "sports", "cpu", overrides=["model.sid_source=reference"]).model.sid_source == \
        "reference"                                                   # an explicit choice wins
    assert make_config("hstu", "sports", "smoke").model.sid_source == "random"
