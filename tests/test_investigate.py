"""python -m drlib investigate NAME: every research probe at smoke size (synthetic data, tiny models, one thread),
in this process, with records in a temporary results/ (the ``tmp_results`` fixture). Runs with "kept weights" get
freshly initialised ones saved where a finished run keeps its best weights: the probes read them, nothing trains.
The stored records keep the layout of the ones under results/ (those are what the book's notes cite)."""
import json
from pathlib import Path

import pytest
import torch

from drlib.cli import build_parser, main
from drlib.investigations import COMMANDS
from drlib.investigations.common import RunSpec, config_of, run_spec
from drlib.runner import build_for, get_dataset, run_dir
from drlib.utils import REPO_ROOT

STORED = REPO_ROOT / "results"
ARCHIVED = STORED / "archive" / "weak-backbones" / "investigation"
ENVELOPE = {"env", "command", "finished", "torch", "experiment"}     # what the record writer adds (or once added)


def keep_weights(model: str, seed: int = 0, ablation=None) -> Path:
    """Save a freshly built smoke model of MODEL:SEED where a finished run keeps its weights."""
    cfg = config_of(RunSpec(model, seed, ablation), profile="smoke")
    path = run_dir(cfg) / "model.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(build_for(cfg, get_dataset(cfg)).state_dict(), path)
    return cfg


def body_keys(path: Path) -> set:
    return set(json.loads(path.read_text())) - ENVELOPE


def investigate(*argv: str) -> int:
    return main(["investigate", *argv, "--profile", "smoke", "--threads", "1"])


def test_every_command_is_listed_and_tools_keeps_no_research_script(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["investigate", "--help"])
    listing = capsys.readouterr().out
    assert set(COMMANDS) == {"step-time", "speed-ab", "early-steps", "grad-terms", "popularity", "beam-width"}
    assert all(name in listing for name in COMMANDS)
    assert not list((REPO_ROOT / "tools").glob("*.py")), "research scripts belong in drlib.investigations"


def test_run_names_parse_to_configs():
    assert run_spec("hstu:1") == RunSpec("hstu", 1, None)
    spec = run_spec("diffureason-h:1:w/o RL")
    cfg = config_of(spec, "beauty", "cpu")
    assert (cfg.experiment, cfg.variant, cfg.seed, cfg.model_name) == ("ablation", "w/o RL", 1, "diffureason-h")
    assert config_of(run_spec("sasrec:2")).experiment == "main"
    for bad, why in (("foo:1", "unknown model"), ("sasrec:x", "integer"), ("sasrec:1:w/o X", "Table 3 row")):
        with pytest.raises(Exception, match=why):
            run_spec(bad)


def test_popularity_stores_one_record_per_kept_run(tmp_results, capsys):
    cfg = keep_weights("sasrec", 0)
    assert investigate("popularity", "sasrec:0", "sasrec:7") == 0       # seed 7 kept no weights: skipped
    out = capsys.readouterr().out
    assert "skipped sasrec:7" in out and "(test targets)" in out
    (rec_path,) = (tmp_results / "results" / "investigation" / "popularity").glob("*.json")
    rec = json.loads(rec_path.read_text())
    assert rec_path.stem == cfg.run_id and rec["config_hash"] == cfg.config_hash
    assert rec["command"] == ("python -m drlib investigate popularity sasrec:0 sasrec:7 --profile smoke "
                              "--threads 1") and rec["env"]["git_commit"]
    assert abs(sum(rec["group_share"]) - 1) < 1e-6 and rec["k"] == 10 and rec["n_users"] == len(get_dataset(cfg).test)
    stored = sorted((ARCHIVED / "popularity").glob("*.json"))
    assert stored and body_keys(stored[0]) <= body_keys(rec_path)


def test_beam_width_widens_the_beam_of_a_sid_run(tmp_results, capsys):
    cfg = keep_weights("tiger", 0)
    assert investigate("beam-width", "tiger:0", "--widths", "10", "20") == 0
    (rec_path,) = (tmp_results / "results" / "investigation" / "beam-width").glob("*.json")
    rec = json.loads(rec_path.read_text())
    assert rec_path.stem == cfg.run_id and rec["trained_beam_width"] == cfg.model.beam_width
    assert [w["beam_width"] for w in rec["widths"]] == [10, 20]
    r10, r20 = (w["metrics"]["recall@10"] for w in rec["widths"])
    assert "recall@20" in rec["widths"][1]["metrics"] and 0 <= r10 <= 1 and 0 <= r20 <= 1
    assert body_keys(next((ARCHIVED / "beam-width").glob("*.json"))) <= body_keys(rec_path)
    keep_weights("sasrec", 0)
    assert investigate("beam-width", "sasrec:0") == 2                    # no beam search: an error, not a record
    assert "not a Semantic-ID model" in capsys.readouterr().err
    assert investigate("beam-width", "tiger:0", "--widths", "5") == 2


def test_grad_terms_stores_init_and_trained(tmp_results, capsys):
    assert investigate("grad-terms", "--batches", "2", "--batch-size", "32") == 0
    folder = tmp_results / "results" / "investigation" / "grad-terms"
    assert [p.name for p in folder.iterdir()] == ["init.json"]          # no kept weights: the initialised model only
    keep_weights("diffureason-s", 0)
    assert investigate("grad-terms", "--batches", "2", "--batch-size", "32") == 0
    assert sorted(p.name for p in folder.iterdir()) == ["init.json", "trained.json"]
    rec = json.loads((folder / "trained.json").read_text())
    assert rec["batches"] == 2 and len(rec["rows"]) == 2 and "rec_mu_norm" in rec["mean"]
    assert body_keys(ARCHIVED / "grad-terms" / "init.json") <= body_keys(folder / "trained.json")
    assert "== trained" in capsys.readouterr().out


def test_speed_ab_stores_a_benchmark_record(tmp_results, capsys):
    out = tmp_results / "results" / "benchmarks" / "speed-ab-sasrec-t1.json"
    assert investigate("speed-ab", "sasrec", "--batches", "2", "--warmup", "1", "--out", str(out)) == 0
    rec = json.loads(out.read_text())
    assert rec["batches"] == 2 and rec["speedup"] == rec["ms_per_batch"]["before"] / rec["ms_per_batch"]["after"]
    assert rec["dataset"] == "synthetic" and rec["command"].startswith("python -m drlib investigate speed-ab sasrec")
    assert body_keys(STORED / "benchmarks" / "speed-ab-sasrec-t1.json") <= body_keys(out)
    assert investigate("speed-ab", "rearec-erl", "--batches", "1", "--warmup", "1") == 0   # printed only
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["model"] == "rearec-erl"


def test_speed_ab_of_diffureason_undoes_only_the_named_speedups_and_not_the_results(tmp_results, capsys):
    from drlib.investigations.speed_ab import ConcatDenoiser, DecoderReasoner, before
    cfg = config_of(RunSpec("diffureason-s", 0), profile="smoke")
    ds = get_dataset(cfg)
    model = build_for(cfg, ds).train()
    old = before(model, ["reward-screen"])
    assert old.cfg.reward_screen == 0 and model.cfg.reward_screen > 0
    assert old.cfg == type(old.cfg)(**{**vars(model.cfg), "reward_screen": 0})
    assert type(old.reasoner) is type(model.reasoner) and type(old.denoiser) is type(model.denoiser)
    x, y = torch.from_numpy(ds.train_inputs[:64]), torch.from_numpy(ds.train_targets[:64])
    losses = []
    for m in (model, old):
        torch.manual_seed(3)
        losses.append(m.compute_loss(x, y)[1])
    assert losses[0] == losses[1] and "reward" in losses[0]               # same rewards, same loss, bit for bit
    slow = before(model)                                                  # all four undone
    assert isinstance(slow.reasoner, DecoderReasoner) and isinstance(slow.denoiser, ConcatDenoiser)
    assert isinstance(slow.denoiser.net[2], torch.nn.Dropout) and isinstance(slow.reasoner.attn_dropout,
                                                                             torch.nn.Dropout)
    assert not any(isinstance(m, torch.nn.Dropout) for m in model.modules())
    model.eval(), slow.eval()
    with torch.no_grad():                                                  # the same scores up to rounding
        assert torch.allclose(slow.full_scores(x), model.full_scores(x), atol=1e-4)
    model.train()
    assert investigate("speed-ab", "diffureason-s", "--batches", "1", "--warmup", "1") == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["weights"] == "fresh"
    assert investigate("speed-ab", "diffureason-s", "--batches", "1", "--warmup", "1", "--inference",
                       "--undo", "memory-kv") == 0
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert out["timed"].startswith("test scoring") and out["undone"] == ["memory-kv"]


def test_step_time_prints_steps_and_checks_the_cached_decoder(tmp_results, capsys):
    assert investigate("step-time", "tiger", "--steps", "2", "--eval-users", "8", "--check-cached", "8",
                       "--full-valid") == 0
    out = capsys.readouterr().out
    assert "step 1: input (" in out and "full_scores on 8 validation users" in out
    assert "identical top-20 lists for 8," in out and "validation pass over" in out
    assert investigate("step-time", "sasrec", "--steps", "1", "--check-cached", "4") == 2   # no cached decoder
    assert not (tmp_results / "results").exists()                       # nothing stored


def test_early_steps_prints_the_scales(tmp_results, capsys):
    assert investigate("early-steps", "diffureason-s", "--steps", "3", "--every", "2", "--batch-size", "32",
                       "--item-init-std", "1.0") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == ["0", "2", "VALID"]
    assert "'mu':" in lines[0] and "'E': " in lines[0]
    assert not (tmp_results / "results").exists()
