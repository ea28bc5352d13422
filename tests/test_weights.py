"""Committed small weights (drlib.weights) and the explorer's stored views (drlib.explorer.store_views): a fresh
clone explores real trajectories without training."""
import numpy as np
import pytest
import torch

from drlib.cli import main
from drlib.experiments import explorer_configs, explorer_views
from drlib.explorer import store_views, stored_views, user_view
from drlib.paired import record_ranks
from drlib.probes import stored_probe
from drlib.registry import make_config
from drlib.runner import get_dataset, load_trained_model, run
from drlib.weights import committed_model, export_weights, weights_paths


def _train(model):
    cfg = make_config(model, "synthetic", "smoke", overrides=["train.epochs=2"])
    return cfg, run(cfg, progress=False, log=lambda s: None)


def test_weights_round_trip_and_refuse_an_altered_file(tmp_results):
    cfg, rec = _train("sasrec")
    meta = export_weights(rec["run_id"])
    path = weights_paths(rec["run_id"])[0]
    assert meta["weights"]["bytes"] == path.stat().st_size and path.suffix == ".safetensors"
    model, cfg2 = committed_model(rec["run_id"])
    assert cfg2.config_hash == cfg.config_hash
    kept = load_trained_model(cfg)
    for (k, a), b in zip(model.state_dict().items(), kept.state_dict().values()):   # float16 on disk, float32 back
        assert a.dtype == b.dtype and torch.equal(a, b.half().to(b.dtype) if b.is_floating_point() else b), k
    x = torch.from_numpy(get_dataset(cfg).test.inputs[:32])
    torch.testing.assert_close(model.full_scores(x), kept.full_scores(x), rtol=1e-2, atol=1e-2)
    assert meta["weights"]["dtype"] == "float16"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        committed_model(rec["run_id"])


def test_stored_views_agree_with_the_runs_own_test_ranks(tmp_results):
    _, base = _train("sasrec")
    cfg, ours = _train("diffureason-s")
    for r in (base, ours):
        export_weights(r["run_id"])
    store_views(ours["run_id"], base["run_id"], n_users=12, seed=1)
    (label, (rec, views)), = stored_views().items()
    assert label == "DiffuReason-S" and len(views) == 12 and rec["backbone_run"] == base["run_id"]
    ranks_ours, ranks_base = record_ranks(ours), record_ranks(base)
    for v in views:
        assert v["ranks"][-1] == ranks_ours[v["row"]]               # the diffusion stage is what the run scored
        assert v["backbone"]["rank"] == ranks_base[v["row"]]        # the stand-alone SASRec on the same user
        assert v["backbone"]["label"] == "SASRec"
    assert rec["weights_source"] == rec["backbone_source"] == "kept"   # full precision: the run's own ranks
    live = user_view(load_trained_model(cfg), get_dataset(cfg).test, views[0]["row"], seed=1)
    assert np.array_equal(live["top_items"], views[0]["top_items"])
    np.testing.assert_allclose(live["samples"]["samples_xy"], views[0]["samples"]["samples_xy"], rtol=1e-5, atol=1e-6)


def test_the_weights_and_explorer_commands(tmp_results, capsys):
    _, base = _train("sasrec")
    _, ours = _train("diffureason-s")
    assert main(["weights", base["run_id"], ours["run_id"]]) == 0
    assert main(["explorer", ours["run_id"], "--backbone", base["run_id"], "--users", "5"]) == 0
    assert "5 views of DiffuReason-S" in capsys.readouterr().out
    (rec, views), = stored_views().values()
    assert rec["command"] == f"python -m drlib explorer {ours['run_id']} --backbone {base['run_id']} --users 5 --seed 0"
    with pytest.raises(SystemExit):
        main(["weights"])                                   # a run id is required


def test_without_kept_weights_the_views_come_from_the_committed_ones(tmp_results, tmp_path):
    _, ours = _train("diffureason-s")
    export_weights(ours["run_id"])
    for p in (tmp_path / "runs").rglob("model.pt"):                   # a fresh clone: no runs/
        p.unlink()
    rec = store_views(ours["run_id"], n_users=3)
    assert rec["weights_source"] == "committed" and len(rec["views"]) == 3


def test_without_kept_weights_the_probes_run_on_the_committed_ones(tmp_results, tmp_path, capsys):
    _, ours = _train("diffureason-s")
    _, base = _train("sasrec")
    export_weights(ours["run_id"])
    for p in (tmp_path / "runs").rglob("model.pt"):                   # a fresh clone: no runs/
        p.unlink()
    assert main(["probe", ours["run_id"]]) == 0
    assert f"-> results/probes/{ours['run_id']}.json" in capsys.readouterr().out
    cfg = make_config("diffureason-s", "synthetic", "smoke", overrides=["train.epochs=2"])
    probe = stored_probe(cfg)
    assert probe["weights_source"] == "committed" and probe["command"] == f"python -m drlib probe {ours['run_id']}"
    final = probe["stage_metrics"][probe["stages"][-1]]                 # float16 weights: the run's own metrics
    assert final["ndcg@10"] == pytest.approx(ours["metrics"]["test"]["ndcg@10"], abs=0.02)
    with pytest.raises(SystemExit, match="no kept weights .* and no committed ones"):
        main(["probe", base["run_id"]])                                 # neither kept nor committed weights


def test_the_explorer_shows_a_reading_beside_the_literal_model(tmp_results):
    smoke = ["train.epochs=2", "model.module.diffusion_steps=4"]
    stored, missing = explorer_views(["diffureason-s"], "synthetic", "smoke", 0, smoke, train_missing=True,
                                     n_users=3, log=lambda s: None, readings={"diffureason-s": "local samples"})
    assert not missing and list(stored) == ["DiffuReason-S", "DiffuReason-S (local samples)"]
    rec, views = stored["DiffuReason-S (local samples)"]
    cfg, base = explorer_configs("diffureason-s", "synthetic", "smoke", 0, smoke, "local samples")
    assert rec["weights_run"] == cfg.run_id and cfg.experiment == "readings" and rec["backbone_run"] == base.run_id
    assert cfg.run_id != stored["DiffuReason-S"][0]["weights_run"] and len(views) == 3
    with pytest.raises(ValueError, match="'w/o RL' is not a reading"):
        explorer_configs("diffureason-s", reading="w/o RL")
