"""Paired comparisons: stored ranks round-trip, per-user metrics equal the evaluation's, the seed t interval and
the users' paired bootstrap."""
import json
import math

import numpy as np
import pytest
import torch

from drlib.evaluate import metrics_from_ranks
from drlib.paired import (decode_ranks, encode_ranks, paired_bootstrap, paired_table, per_user, record_ranks,
                          seed_interval)
from drlib.registry import make_config
from drlib.results import read_record, result_path
from drlib.runner import run, run_dir
from drlib.user_ranks import store_test_ranks


@pytest.mark.parametrize("high", [12101, 70000])
def test_ranks_round_trip_and_refuse_altered_bytes(high):
    r = np.random.default_rng(0).integers(0, high, 5000)
    enc = encode_ranks(r)
    assert enc["dtype"] == ("uint16" if high < 2 ** 16 else "int32")
    assert np.array_equal(decode_ranks(enc), r)
    bad = dict(enc, sha256="0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        decode_ranks(bad)


def test_per_user_means_are_the_reported_metrics():
    r = np.random.default_rng(1).integers(0, 40, 3000)
    m = metrics_from_ranks(r, (5, 10))
    for name, value in m.items():
        assert per_user(r, name).mean() == pytest.approx(value, rel=1e-12)


def test_seed_interval_is_the_paired_t_interval():
    out = seed_interval([1.0, 1.0, 1.0], [2.0, 3.0, 4.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)           # t_{0.975, 2} * sd / sqrt(3)
    assert out["difference"] == pytest.approx(2.0)
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((2 - half, 2 + half))
    assert out["relative %"] == pytest.approx(200.0)
    assert math.isnan(seed_interval([1.0], [2.0])["ci_low"])
    assert math.isnan(seed_interval([0.0, 0.0], [0.1, 0.2])["relative %"])      # a base of 0: no relative change


def test_paired_bootstrap_sees_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(2)
    base = rng.integers(0, 200, (3, 4000))
    same = paired_bootstrap(base, base.copy(), "ndcg@10", n_boot=500)
    assert same["difference"] == 0 and same["p_value"] == 1.0
    better = np.where(rng.random(base.shape) < 0.3, 0, base)  # 30% of (seed, user) pairs move to rank 0
    out = paired_bootstrap(base, better, "ndcg@10", n_boot=500)
    true = per_user(better, "ndcg@10").mean() - per_user(base, "ndcg@10").mean()
    assert out["difference"] == pytest.approx(true)
    assert out["ci_low"] < true < out["ci_high"] and out["ci_low"] > 0 and out["p_value"] <= 1 / 500 + 1e-12
    assert paired_bootstrap(base, better, "ndcg@10", n_boot=500) == out            # seeded: reproducible


def test_paired_table_pairs_seeds_and_uses_stored_ranks():
    rng = np.random.default_rng(3)

    def rec(label, seed, ranks):
        m = metrics_from_ranks(ranks, (5, 10))
        return {"label": label, "config": {"dataset": "beauty", "seed": seed},
                "metrics": {"test": m}, "ranks": {"test": encode_ranks(ranks)}}
    base = [rng.integers(0, 100, 1000) for _ in range(3)]
    recs = [rec("SASRec", s, base[s]) for s in range(3)] + [rec("X", s, np.maximum(base[s] - 5, 0)) for s in (0, 1)]
    t = paired_table(recs, "SASRec", "X", n_boot=200)
    assert list(t.metric) == ["recall@5", "recall@10", "ndcg@5", "ndcg@10"]
    assert set(t["seed list"]) == {"0,1"} and (t.seeds == 2).all()
    assert (t["difference"] > 0).all() and (t["user ci_low"] > 0).all()
    assert record_ranks({"ranks": {}}) is None


def test_ranks_from_kept_weights_give_back_the_records_metrics(tmp_results):
    cfg = make_config("sasrec", "synthetic", "smoke", overrides=["train.epochs=2"])
    rec = run(cfg, progress=False, log=lambda s: None)
    path = result_path(cfg)
    stored_at_the_end = record_ranks(rec)                                # a new run stores its ranks itself
    older = json.loads(path.read_text())
    del older["ranks"]                                                   # a record from before the ranks
    path.write_text(json.dumps(older))
    out = store_test_ranks(path)
    assert np.array_equal(record_ranks(out), stored_at_the_end)
    ranks = record_ranks(out)
    assert ranks.shape == (rec["timing"]["n_test_users"],)
    for name, value in rec["metrics"]["test"].items():
        assert per_user(ranks, name).mean() == pytest.approx(value, abs=1e-9)
    assert read_record(path)["amended"][0]["key"] == "ranks"
    assert store_test_ranks(path)["ranks"] == out["ranks"]                 # already there: unchanged


def test_ranks_from_other_weights_are_refused(tmp_results):
    cfg = make_config("sasrec", "synthetic", "smoke", overrides=["train.epochs=2"])
    run(cfg, progress=False, log=lambda s: None)
    older = json.loads(result_path(cfg).read_text())
    del older["ranks"]
    result_path(cfg).write_text(json.dumps(older))
    weights = run_dir(cfg) / "model.pt"
    state = torch.load(weights)
    state["backbone.item_emb.weight"] = torch.randn_like(state["backbone.item_emb.weight"])
    torch.save(state, weights)
    with pytest.raises(ValueError, match="not this run's weights"):
        store_test_ranks(result_path(cfg))
    assert "ranks" not in read_record(result_path(cfg))
