"""drlib.sid's tokenizations (tokenizer, sources, stats, store, build, table): the tokenizer config and hash, the
stored records under their ids, build_sids (record + codes, cache), the collaborative source's errors,
config_from_record and the ``sids`` CLI. Tiny synthetic features (monkeypatched loader), one thread,
temporary results/runs folders (the ``tmp_results`` fixture)."""
import dataclasses
import json
from pathlib import Path

import pytest
import torch

import drlib.sid.build as B
from drlib.cli import main
from drlib.registry import config_from_record, make_config
from drlib.runner import collaborative_item_table
from drlib.sid import PAD_CODE, RQVAEConfig, train_rqvae
from drlib.sid.build import build_sids, load_codes
from drlib.sid.sources import scale_features
from drlib.sid.stats import tokenization_stats
from drlib.sid.store import codes_path, load_tokenizer_record, record_path
from drlib.sid.tokenizer import DEFAULT_COLLAB_RUN, TokenizerConfig, apply_tokenizer_overrides

torch.set_num_threads(1)

TINY = RQVAEConfig(latent_dim=8, codebook_sizes=(8, 8), hidden=(16,), batch_size=64, epochs=2, kmeans_iters=5)


def clustered(n=200, dim=12, clusters=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(clusters, dim, generator=g)
    x = centres[torch.arange(n) % clusters] + 0.3 * torch.randn(n, dim, generator=g)
    x[1] = x[0]                                   # items 1 and 2 share a feature row: a collision floor of 2
    return torch.cat([torch.zeros(1, dim), x])


@pytest.fixture
def tiny_features(monkeypatch):
    """build_sids reads these instead of the dataset's features; counts the loads."""
    calls = []

    def fake(cfg, item_table=None):
        calls.append(cfg.features)
        x = scale_features(clustered(), cfg.scale)
        return x, {"source": "synthetic", "shape": list(x.shape)}
    monkeypatch.setattr(B, "load_features", fake)
    return calls


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]


# --------------------------------------------------------------------------- config
def test_config_validation_and_hash():
    with pytest.raises(ValueError, match=r"unknown features='words'.*attributes, collaborative, reference, text"):
        TokenizerConfig(features="words")
    with pytest.raises(ValueError, match="text_path"):
        TokenizerConfig(features="text")
    with pytest.raises(ValueError, match="scale"):
        TokenizerConfig(scale="l2")
    with pytest.raises(ValueError, match="collab_run"):
        TokenizerConfig(features="collaborative", collab_run="")
    a = TokenizerConfig()
    assert a.config_hash == TokenizerConfig().config_hash and len(a.config_hash) == 16
    assert a.tokenizer_id == f"beauty-attributes-seed0-{a.config_hash[:10]}"
    # only what changes the codes enters the hash
    assert dataclasses.replace(a, rqvae=dataclasses.replace(a.rqvae, device="cuda")).config_hash == a.config_hash
    assert dataclasses.replace(a, collab_run="other").config_hash == a.config_hash
    assert dataclasses.replace(a, rqvae=dataclasses.replace(a.rqvae, epochs=5)).config_hash != a.config_hash
    assert dataclasses.replace(a, seed=1).config_hash != a.config_hash
    c = TokenizerConfig(features="collaborative")
    assert dataclasses.replace(c, attribute_dim=8).config_hash == c.config_hash
    assert dataclasses.replace(c, collab_run="other").config_hash != c.config_hash
    r = TokenizerConfig(features="reference")
    assert dataclasses.replace(r, rqvae=TINY, scale="none").config_hash == r.config_hash
    # the text fields enter only the text source's hash (so adding them kept every stored record's hash)
    assert dataclasses.replace(a, text_model="other").config_hash == a.config_hash
    assert "text_path" not in a.hash_dict() and "text_model" not in c.hash_dict()
    t = TokenizerConfig(features="text", text_path="items.tsv")
    assert dataclasses.replace(t, text_model="other").config_hash != t.config_hash
    assert dataclasses.replace(t, text_path="other.tsv").config_hash != t.config_hash
    assert dataclasses.replace(t, attribute_dim=8, collab_run="x").config_hash == t.config_hash


STORED = sorted((Path(__file__).resolve().parents[1] / "results" / "tokenizer").glob("*.json"))


@pytest.mark.parametrize("path", STORED, ids=lambda p: p.stem)
def test_stored_tokenizer_records_load_under_their_ids(path):
    """Every committed record of results/tokenizer/: its config rebuilds its hash and id (the file name, which
    ``model.sid_source=tokenizer:<id>`` names), and the store reads it back for that config."""
    rec = json.loads(path.read_text())
    cfg = TokenizerConfig.from_dict(rec["config"])
    assert cfg.to_dict() == {**cfg.to_dict(), **rec["config"]}
    assert (cfg.config_hash, cfg.tokenizer_id) == (rec["config_hash"], rec["id"]) and path.stem == rec["id"]
    assert record_path(cfg, path.parents[1]) == path
    assert load_tokenizer_record(cfg, path.parents[1]) == rec


def test_there_are_stored_tokenizer_records():
    assert {p.name.split("-")[1] for p in STORED} >= {"attributes", "collaborative", "reference"}


def test_overrides():
    cfg = apply_tokenizer_overrides(TokenizerConfig(), ["rqvae.epochs=300", "rqvae.codebook_sizes=8,8",
                                                        "attribute_dim=64", "scale=none"])
    assert cfg.rqvae.epochs == 300 and cfg.rqvae.codebook_sizes == (8, 8) and cfg.attribute_dim == 64
    assert cfg.scale == "none"
    with pytest.raises(ValueError, match="no field 'epochs'"):
        apply_tokenizer_overrides(TokenizerConfig(), ["epochs=3"])
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        apply_tokenizer_overrides(TokenizerConfig(), ["rqvae.epochs"])


def test_tokenization_stats_counts_disambiguation():
    codes = torch.tensor([[PAD_CODE, PAD_CODE], [0, 1], [0, 1], [0, 1], [1, 0], [1, 2], [1, 2]])
    from drlib.sid import add_disambiguation
    s = tokenization_stats(add_disambiguation(codes), 2, (4, 4), features=torch.zeros(7, 3))
    assert s["collision_rate"] == pytest.approx(5 / 6) and s["collided_items"] == 5
    assert s["collision_groups"] == 2 and s["items_disambiguated"] == 3 and s["disambiguation_vocab"] == 3
    assert s["codes_used"] == [2, 3] and s["distinct_prefixes"] == [2, 3] and s["sid_length"] == 3
    assert s["unique_after_disambiguation"] and s["duplicate_feature_items"] == 6 and s["collision_floor"] == 1.0
    assert s["perplexity"][0] == pytest.approx(2.0)


# --------------------------------------------------------------------------- build_sids
def test_build_writes_record_and_codes_then_hits_the_cache(tmp_results, tiny_features, monkeypatch):
    cfg = TokenizerConfig(dataset="beauty", features="attributes", rqvae=TINY, seed=3)
    rec = build_sids(cfg, progress=False, log=lambda s: None)
    rpath, cpath = record_path(cfg), codes_path(cfg)
    assert rpath == tmp_results / "results" / "tokenizer" / f"{cfg.tokenizer_id}.json"
    assert cpath == tmp_results / "runs" / "tokenizer" / cfg.tokenizer_id / "codes.pt"
    assert rpath.exists() and cpath.exists() and cpath.with_name("rqvae.pt").exists()
    assert _no_temp_files(rpath.parent) and _no_temp_files(cpath.parent)
    assert {"id", "config", "config_hash", "stats", "timing", "env", "command", "train", "codes"} <= set(rec)
    assert json.loads(rpath.read_text()) == rec
    assert rec["config_hash"] == cfg.config_hash and rec["config"]["rqvae"]["epochs"] == 2
    assert {"git_commit", "torch"} <= set(rec["env"])
    assert rec["timing"]["train_seconds"] > 0 and rec["timing"]["total_seconds"] >= rec["timing"]["train_seconds"]
    assert rec["train"]["epochs"] == 2 and len(rec["train"]["history"]) == 2
    s = rec["stats"]
    assert s["n_items"] == 200 and len(s["utilization"]) == 2 and s["unique_after_disambiguation"]
    assert s["duplicate_feature_items"] == 2 and s["collided_items"] >= 2 and 0 < s["collision_rate"] <= 1
    codes = torch.load(cpath)
    assert codes.shape == (201, s["sid_length"]) and (codes[0] == PAD_CODE).all() and codes[1:].min() >= 0
    assert codes[1:, :2].max() < 8 and rec["codes"]["shape"] == list(codes.shape)
    assert torch.equal(codes[1, :2], codes[2, :2])          # identical features -> identical codes
    assert tiny_features == ["attributes"]

    # cache hit: no loading, no training, the same record
    def boom(*a, **k):
        raise AssertionError("retrained on a cache hit")
    monkeypatch.setattr(B, "train_rqvae", boom)
    assert build_sids(cfg, progress=False, log=lambda s: None) == rec and tiny_features == ["attributes"]
    assert torch.equal(load_codes(cfg, build=False), codes)
    with pytest.raises(AssertionError, match="retrained"):
        build_sids(cfg, progress=False, force=True, log=lambda s: None)
    assert json.loads(rpath.read_text()) == rec               # the failed rebuild left the stored record alone

    # a record whose codes cache is gone is rebuilt
    monkeypatch.setattr(B, "train_rqvae", train_rqvae)
    cpath.unlink()
    again = build_sids(cfg, progress=False, log=lambda s: None)
    assert torch.equal(torch.load(cpath), codes)             # deterministic given the seed
    assert again["codes"]["sha256"] == rec["codes"]["sha256"]


def test_build_with_no_codes_file_and_build_false_raises(tmp_results):
    with pytest.raises(FileNotFoundError, match="python -m drlib sids"):
        load_codes(TokenizerConfig(rqvae=TINY), build=False)


def test_reference_source_reads_letter_sids(tmp_results, shared_data):
    rec = build_sids(TokenizerConfig(features="reference"), progress=False, log=lambda s: None)
    s = rec["stats"]
    assert s["n_items"] == 12101 and s["unique_sids"] == 12088 and s["sid_length"] == 5
    assert s["unique_after_disambiguation"] and rec["train"] == {} and "collision_floor" not in s


# --------------------------------------------------------------------------- collaborative source
def _fake_run_record(root: Path, cfg) -> Path:
    rec = {"label": cfg.label, "run_id": cfg.run_id, "experiment": cfg.experiment, "config": cfg.to_dict(),
           "config_hash": cfg.config_hash,
           "command": f"python -m drlib train --dataset beauty --model {cfg.model_name} --profile cpu --seed 0"}
    p = root / "results" / cfg.experiment / f"{cfg.run_id}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(rec, default=list))
    return p


def test_config_from_record_round_trips():
    for cfg in (make_config("sasrec", "beauty", "cpu", 0),
                make_config("diffureason-s", "beauty", "cpu", 1, ["train.epochs=3", "model.module.reward=mrr",
                                                                   "eval.ks=5,10,20"])):
        rec = json.loads(json.dumps({"label": cfg.label, "run_id": cfg.run_id, "experiment": cfg.experiment,
                                     "config": cfg.to_dict(), "config_hash": cfg.config_hash}, default=list))
        assert config_from_record(rec) == cfg
    rec["config_hash"] = "0" * 16
    with pytest.raises(ValueError, match="could not rebuild"):
        config_from_record(rec)


def test_collaborative_errors_name_the_missing_file_and_the_command(tmp_results):
    run = make_config("sasrec", "beauty", "cpu", 0)
    cfg = TokenizerConfig(features="collaborative", collab_run=run.run_id, rqvae=TINY)
    with pytest.raises(ValueError, match="item_table"):                  # the sid layer never loads a model
        build_sids(cfg, progress=False, log=lambda s: None)
    with pytest.raises(FileNotFoundError, match=f"no record of run '{run.run_id}'"):
        build_sids(cfg, progress=False, log=lambda s: None, item_table=collaborative_item_table)
    _fake_run_record(tmp_results, run)
    weights = tmp_results / "runs" / "main" / run.run_id / "model.pt"
    with pytest.raises(FileNotFoundError) as e:
        build_sids(cfg, progress=False, log=lambda s: None, item_table=collaborative_item_table)
    msg = str(e.value)
    assert str(weights) in msg and "python -m drlib train --dataset beauty --model sasrec" in msg
    assert not record_path(cfg).exists() and not codes_path(cfg).exists()
    assert TokenizerConfig(features="collaborative").collab_run == DEFAULT_COLLAB_RUN


# --------------------------------------------------------------------------- CLI
def test_cli_sids(tmp_results, tiny_features, capsys):
    argv = ["sids", "--features", "attributes", "--seed", "1", "--no-progress", "--set", "rqvae.epochs=2",
            "--set", "rqvae.codebook_sizes=8,8", "--set", "rqvae.hidden=16", "--set", "rqvae.latent_dim=8",
            "--set", "rqvae.batch_size=64", "--set", "rqvae.kmeans_iters=5"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "utilization L2" in out and "collision rate" in out and "record: " in out
    files = list((tmp_results / "results" / "tokenizer").glob("beauty-attributes-seed1-*.json"))
    assert len(files) == 1 and str(files[0]) in out
    assert json.loads(files[0].read_text())["command"].startswith("python -m drlib sids --features attributes")
    assert main(["sids", "--features", "attributes", "--set", "epochs=3"]) == 2
    assert "no field 'epochs'" in capsys.readouterr().err
    assert main(["sids", "--features", "text"]) == 2
    assert "--text FILE" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sids", "--features", "words"])
