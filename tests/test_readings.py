"""The readings of the paper as switches of the DiffuReason module (model.module.*): each is checked on what the
module computes, not only on its config value. Tiny SASRec, one thread; ``reward="mrr"`` where a test needs
L_align to carry a gradient (Hit@1 of an untrained model is almost always 0, so its advantages vanish)."""
import dataclasses
import json
import math
import re

import pytest
import torch
import torch.nn.functional as F

from drlib.config import HASH_NEUTRAL, stored_config_hash
from drlib.diffureason.module import DiffuReason, DiffuReasonSettings
from drlib.models import SASRec, SASRecConfig
from drlib.models.layers import Dropout
from drlib import cli, pages
from drlib.diffureason.ablations import READINGS, combine, is_reading
import numpy as np
import pandas as pd

from drlib.evaluate import metrics_from_ranks
from drlib.paired import encode_ranks
from drlib.readings import (BEST, backbone_records, best_runs, choose, chosen_readings, combination, combinations,
                            compared_records, comparison, dataset_choice, dataset_grid, grid, grid_jobs, grid_records,
                            largest_swing, missing, patience_pairs, planned, probe_configs, seed_jobs, shared_epochs,
                            stage_probes, valid_by_seed)
from drlib.report import summary
from drlib.results import devices_text, epoch_devices, find_run_record, load_records, records_frame, stopped_at_cap
from drlib.registry import build_model, make_config, with_module
from drlib.results import write_record

X = torch.tensor([[0, 0, 1, 2, 3, 4], [0, 5, 6, 7, 8, 9], [0, 0, 0, 0, 3, 9], [1, 2, 3, 4, 5, 6]])
Y = torch.tensor([5, 10, 11, 7])


def _sasrec(dropout=0.1):
    torch.manual_seed(0)
    return SASRec(SASRecConfig(d_model=16, n_layers=2, n_heads=2, d_ff=16, dropout=dropout), n_items=30, max_len=6)


def _model(dropout=0.1, **kw):
    bb = _sasrec(dropout)
    kw = {"diffusion_steps": 4, "group_size": 4, "reward": "mrr", **kw}
    return DiffuReason(bb, DiffuReasonSettings(**kw))


def _grads(model, loss):
    model.zero_grad()
    loss.backward()
    return {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for n, p in model.named_parameters()}


def _seeded_loss(model, seed=3):
    torch.manual_seed(seed)
    return model.compute_loss(X, Y)


# --------------------------------------------------------------------------- SASRec's appended tokens
def test_appended_groups_equal_separate_continuations_and_do_not_see_each_other():
    bb = _sasrec().eval()
    torch.manual_seed(1)
    extra = torch.randn(4, 3, 2, 16)                       # B=4, G=3 groups of k=2 tokens
    out = bb.appended(X, extra)
    assert out.shape == (4, 3, 16)
    for g in range(3):
        torch.testing.assert_close(out[:, g], bb.encode_last(X, extra[:, g]), rtol=1e-5, atol=1e-5)
    other = extra.clone()
    other[:, 1:] = torch.randn_like(other[:, 1:])          # change groups 1 and 2 only
    torch.testing.assert_close(bb.appended(X, other)[:, 0], out[:, 0], rtol=1e-6, atol=1e-6)
    assert not torch.allclose(bb.appended(X, other)[:, 1], out[:, 1])


# --------------------------------------------------------------------------- the config hash
def test_new_settings_at_their_neutral_value_leave_the_hash_of_older_records_alone():
    cfg = make_config("diffureason-s", "beauty", "cpu")
    stored = cfg.to_dict()
    old = dict(stored, model_config=dict(stored["model_config"], module={
        k: v for k, v in stored["model_config"]["module"].items() if k not in HASH_NEUTRAL[("module",)]}))
    assert stored_config_hash(old) == cfg.config_hash
    for field, value in HASH_NEUTRAL[("module",)].items():   # the table says the dataclass defaults
        assert getattr(DiffuReasonSettings(), field) == value, field
    assert with_module(cfg, rollouts=1).config_hash != cfg.config_hash
    assert with_module(cfg, logp_reduction="mean").config_hash != cfg.config_hash


def test_bad_values_are_refused_with_the_field_name():
    with pytest.raises(ValueError, match="align_scope"):
        DiffuReasonSettings(align_scope="backbone")
    with pytest.raises(ValueError, match="logp_reduction"):
        DiffuReasonSettings(logp_reduction="max")
    with pytest.raises(ValueError, match="sample_scale"):
        DiffuReasonSettings(sample_scale=0.0)


# --------------------------------------------------------------------------- where L_align's gradient goes
def test_refinement_scope_keeps_the_alignment_gradient_out_of_the_backbone():
    m = _model().train()
    loss_all, logs_all = _seeded_loss(m)
    g_all = _grads(m, loss_all)

    torch.manual_seed(3)                                   # L_rec + alpha L_diff alone, same noise and masks
    terms, weights, _, _ = m.loss_terms(X, Y)
    g_none = _grads(m, terms["rec"] + weights["diff"] * terms["diff"])

    m.cfg = dataclasses.replace(m.cfg, align_scope="refinement")
    loss_ref, logs_ref = _seeded_loss(m)
    g_ref = _grads(m, loss_ref)

    assert logs_ref["loss"] == pytest.approx(logs_all["loss"], rel=1e-6)
    refinement = {id(p) for p in m.refinement_parameters()}
    names = dict(m.named_parameters())
    backbone = [n for n in names if n.startswith("backbone.")]
    assert any(not torch.allclose(g_all[n], g_none[n]) for n in backbone)    # "all": L_align reaches the backbone
    for n in backbone:
        torch.testing.assert_close(g_ref[n], g_none[n], rtol=1e-5, atol=1e-7)
    for n, p in names.items():
        if id(p) in refinement:
            torch.testing.assert_close(g_ref[n], g_all[n], rtol=1e-5, atol=1e-7)


def test_mean_log_density_divides_the_alignment_gradient_by_d():
    m = _model().train()
    den = list(m.denoiser.parameters())
    out = {}
    for red in ("sum", "mean"):
        m.cfg = dataclasses.replace(m.cfg, logp_reduction=red)
        torch.manual_seed(5)
        terms, *_ = m.loss_terms(X, Y)
        out[red] = torch.autograd.grad(terms["align"], den)
    assert any(g.abs().sum() > 0 for g in out["sum"])
    for a, b in zip(out["sum"], out["mean"]):
        torch.testing.assert_close(b, a / 16, rtol=1e-4, atol=1e-9)


# --------------------------------------------------------------------------- the A.1 rollout reading
@pytest.mark.parametrize("rollouts", [1, 2])
def test_rollouts_score_the_backbone_output_at_the_appended_latent(rollouts):
    m = _model(rollouts=rollouts).eval()
    out = m.trajectory(X)
    bb = m.backbone
    tokens = [out["mu"] * math.sqrt(16)]                   # the latent enters as an item does (sqrt(d))
    for _ in range(rollouts):
        y = bb.encode_last(X, torch.stack(tokens, 1))
        tokens.append(y)
    torch.testing.assert_close(out["pred"], y, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(m.full_scores(X), bb.score(y), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out["pred"], out["mu"])


def test_rollout_rewards_come_from_the_backbone_output_of_each_sample_in_eval_mode():
    m = _model(rollouts=1).train()
    seen = {}

    def record(state, z, targets, kind, screen):
        seen["z"] = z
        return torch.zeros(z.shape[:2])
    m.backbone.latent_rewards = record
    torch.manual_seed(2)
    m.loss_terms(X, Y)
    assert m.backbone.training                                     # restored after the rewards
    assert seen["z"].shape == (4, 4, 16)
    # rebuild the samples from the same draws: the last draw before the rewards is eps
    torch.manual_seed(2)
    out = m.trajectory(X)
    eps = torch.randn(4, 4, 16)
    z = (out["mu"][:, None] + out["sigma"][:, None] * eps).detach()
    m.backbone.eval()
    expect = torch.stack([m.backbone.encode_last(X, (z[:, g] * 4.0)[:, None]) for g in range(4)], 1)
    torch.testing.assert_close(seen["z"], expect, rtol=1e-5, atol=1e-5)


def test_the_probes_of_a_rollout_model_end_with_what_it_scores():
    """Under rollouts the model scores the backbone's output at the appended latent, not mu: the probes add that
    stage, and its ranks are the model's own."""
    from drlib.data import load_dataset
    from drlib.evaluate import compute_ranks
    from drlib.probes import stage_names, stage_ranks, stage_similarity
    ds = load_dataset("synthetic")
    torch.manual_seed(0)
    bb = SASRec(SASRecConfig(d_model=16, n_layers=2, n_heads=2, d_ff=16), n_items=ds.n_items, max_len=ds.max_len)
    m = DiffuReason(bb, DiffuReasonSettings(diffusion_steps=2, group_size=2, rollouts=1)).eval()
    assert stage_names(m) == ["step 1", "step 2", "step 3", "diffusion", "rollout"]
    ranks = stage_ranks(m, ds.test, batch_size=32)
    assert ranks.shape == (len(ds.test), 5)
    np.testing.assert_array_equal(ranks[:, -1], compute_ranks(m.full_scores, ds.test, 32))
    assert not np.array_equal(ranks[:, -1], ranks[:, -2])          # mu is scored too, and differs
    assert stage_similarity(m, ds.test, batch_size=32).shape == (5, 5)
    m.cfg = dataclasses.replace(m.cfg, rollouts=0)
    assert stage_names(m)[-1] == "diffusion" and stage_ranks(m, ds.test, batch_size=32).shape[1] == 4


def test_rollouts_need_a_backbone_that_reads_extra_tokens():
    cfg = with_module(make_config("diffureason-h", "synthetic", "smoke"), rollouts=1)
    with pytest.raises(ValueError, match="rollout"):
        build_model(cfg.model_name, cfg.model, 50, cfg.data.max_len)


# --------------------------------------------------------------------------- the other switches
def test_backbone_weight_adds_the_backbones_own_cross_entropy_on_h_L():
    m = _model(dropout=0.0, denoiser_dropout=0.0).train()
    loss0, _ = _seeded_loss(m)
    m.cfg = dataclasses.replace(m.cfg, backbone_weight=0.5)
    loss1, logs = _seeded_loss(m)
    ce = F.cross_entropy(m.backbone.item_logits(m.backbone.encode(X)[:, -1]), Y - 1)
    assert logs["backbone"] == pytest.approx(ce.item(), rel=1e-5)
    assert (loss1 - loss0).item() == pytest.approx(0.5 * ce.item(), rel=1e-4)


def test_no_initial_noise_makes_training_start_where_inference_starts():
    m = _model(dropout=0.0, denoiser_dropout=0.0, diffusion_steps=1, init_noise=0.0)
    for mod in m.reasoner.modules():                       # the reasoner's own dropout (0.1) off as well
        if isinstance(mod, (torch.nn.Dropout, Dropout)):
            mod.p = 0.0
    train_mu = m.train().trajectory(X)["mu"]
    torch.testing.assert_close(train_mu, m.eval().trajectory(X)["mu"])
    m.cfg = dataclasses.replace(m.cfg, init_noise=1.0)
    assert not torch.allclose(m.train().trajectory(X)["mu"], m.eval().trajectory(X)["mu"])


def test_sample_scale_shrinks_the_policy_samples_around_mu():
    m = _model().train()
    seen = []
    m.backbone.latent_rewards = lambda state, z, targets, kind, screen: seen.append(z) or torch.zeros(z.shape[:2])
    mus = []
    for scale in (1.0, 0.25):
        m.cfg = dataclasses.replace(m.cfg, sample_scale=scale)
        torch.manual_seed(4)
        _, _, _, out = m.loss_terms(X, Y)
        mus.append(out["mu"].detach())
    torch.testing.assert_close(seen[1] - mus[1][:, None], 0.25 * (seen[0] - mus[0][:, None]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model", ["diffureason-h", "diffureason-t"])
def test_backbone_loss_on_a_semantic_id_backbone_is_its_own_sid_loss(model):
    over = ["model.backbone.head=sid"] if model == "diffureason-h" else []
    cfg = with_module(make_config(model, "synthetic", "smoke", overrides=over), backbone_weight=1.0)
    torch.manual_seed(0)
    m = build_model(cfg.model_name, cfg.model, 30, 6).eval()
    state, H, _ = m.backbone.reasoning_memory(X)
    own, _ = m.backbone.sid.compute_loss(X, Y)
    torch.testing.assert_close(m.backbone.backbone_loss(state, H, Y), own)
    _, logs = m.train().compute_loss(X, Y)
    assert logs["backbone"] > 0


# --------------------------------------------------------------------------- the validation grid
def _fake(tmp, model, seed, reading, valid, dataset="beauty"):
    cfg = make_config(model, dataset, "cpu", seed=seed, experiment="main" if reading == "literal" else "readings",
                      ablation=None if reading == "literal" else reading)
    body = {"metrics": {"valid": {"ndcg@10": valid, "recall@10": 2 * valid},
                        "test": {"ndcg@10": 0.5, "recall@10": 0.5}},
            "timing": {"best_epoch": 3, "epochs": 7, "train_seconds": 600.0}}
    write_record(tmp / cfg.experiment / f"{cfg.run_id}.json", body, command="test", cfg=cfg)


def test_the_grid_reads_literal_from_main_and_chooses_on_validation_only(tmp_path):
    _fake(tmp_path, "diffureason-s", 0, "literal", 0.030)
    _fake(tmp_path, "diffureason-s", 0, "align: refinement only", 0.050)
    _fake(tmp_path, "diffureason-s", 0, "A.1 rollout", 0.040)
    _fake(tmp_path, "diffureason-s", 1, "local samples", 0.090)          # another seed: not in the seed-0 grid
    _fake(tmp_path, "diffureason-h", 0, "literal", 0.060)
    _fake(tmp_path, "diffureason-h", 0, "no start noise", 0.055)
    t = grid(grid_records(0, root=tmp_path))
    assert len(t) == 5 and set(t.backbone) == {"SASRec", "HSTU"}
    s = t[t.backbone == "SASRec"]
    assert list(s.reading) == ["align: refinement only", "A.1 rollout", "literal"]      # best first
    assert s["vs literal %"].iloc[0] == pytest.approx(100 * (0.050 / 0.030 - 1))
    assert "align_scope=refinement" in s.settings.iloc[0]
    best = choose(t).set_index("backbone").reading
    assert best["SASRec"] == "align: refinement only" and best["HSTU"] == "literal"


def test_the_readings_page_leads_with_the_choice_made_on_validation(tmp_path):
    empty = pages.readings(grid([]), choose(grid([])))
    assert "not yet measured" in str(empty.finding) and len(empty.table.shown) == len(READINGS)
    _fake(tmp_path, "diffureason-s", 0, "literal", 0.030)
    _fake(tmp_path, "diffureason-s", 0, "align: refinement only", 0.045)
    t = grid(grid_records(0, root=tmp_path))
    page = pages.readings(t, choose(t))
    text = str(page.finding)
    assert "*align: refinement only*" in text and "+50.0% over the literal reading" in text
    assert f"2 of {len(READINGS)} readings stored" in text
    _fake(tmp_path, "diffureason-h", 0, "literal", 0.040)
    t = grid(grid_records(0, root=tmp_path))
    assert f"on HSTU, 1 of {len(READINGS) - 1} readings stored" in str(pages.readings(t, choose(t)).finding)  # no A.1
    assert list(page.table.shown.reading) == ["align: refinement only", "literal"]
    page = pages.readings(t, choose(t), backbones={"SASRec": 0.0600})
    assert "SASRec alone 0.0600, -25.0%" in str(page.finding)


def test_the_grid_page_gives_one_seeds_noise_and_says_when_the_best_two_are_inside_it(tmp_path):
    for seed, v in ((0, 0.0700), (1, 0.0712), (2, 0.0706)):
        _fake(tmp_path, "sasrec", seed, "literal", v)                   # SASRec alone, three seeds
    _fake(tmp_path, "diffureason-s", 0, "literal", 0.030)
    _fake(tmp_path, "diffureason-s", 0, "align: refinement only", 0.0650)
    _fake(tmp_path, "diffureason-s", 0, "A.1 rollout", 0.0645)
    _fake(tmp_path, "diffureason-s", 0, "local samples", 0.090 + 1)   # a grid run is no seed of the backbone
    seeds = valid_by_seed("beauty", root=tmp_path)
    assert seeds == {"SASRec": [0.0700, 0.0712, 0.0706], "DiffuReason-S": [0.030]}
    t = grid([r for r in grid_records(0, root=tmp_path) if r["label"] != "local samples"])
    text = str(pages.readings(t, choose(t), seeds=seeds).finding)
    assert "SASRec alone 0.0700 to 0.0712 over 3 seeds (0.0012)" in text
    assert "DiffuReason-S 0.0300" not in text                           # one seed has no spread
    assert "the best two, *align: refinement only* and *A.1 rollout*, are 0.0005 apart" in text
    _fake(tmp_path, "diffureason-s", 0, "A.1 rollout", 0.0600)          # now 0.0050 apart: told apart
    t = grid([r for r in grid_records(0, root=tmp_path) if r["label"] != "local samples"])
    text = str(pages.readings(t, choose(t), seeds=seeds).finding)
    assert "one seed's noise" in text and "best two" not in text
    assert "noise" not in str(pages.readings(t, choose(t)).finding)    # no seeds given: nothing said
    fig = pages.readings(t, choose(t), seeds=seeds).figure.figure
    assert any("3 seeds" in h for h in fig.axes[0].get_legend_handles_labels()[1])


def test_the_curves_set_every_reading_beside_its_backbone(tmp_path):
    assert not pages.readings_curves([], []).figure.axes[0].get_lines()          # nothing stored: no curve
    for reading, v in (("literal", 0.030), ("local samples", 0.040)):
        _fake(tmp_path, "diffureason-s", 0, reading, v)
    cfg = make_config("sasrec", "beauty", "cpu", seed=0)
    write_record(tmp_path / "main" / f"{cfg.run_id}.json", {"metrics": {"valid": {"ndcg@10": 0.07}, "test": {}},
                 "history": [{"epoch": e, "ndcg@10": 0.01 * e} for e in (1, 2, 3)]}, command="test", cfg=cfg)
    runs = [dict(r, history=[{"epoch": 1, "ndcg@10": 0.01}, {"epoch": 2, "ndcg@10": 0.02}])
            for r in grid_records(0, root=tmp_path)]
    alone = backbone_records(0, root=tmp_path)
    assert [r["label"] for r in alone] == ["SASRec"]
    fig = pages.readings_curves(runs, alone).figure
    (ax,) = fig.axes
    curves = [l for l in ax.get_lines() if not l.get_label().startswith("_")]
    assert [l.get_label() for l in curves] == ["SASRec alone", "literal", "local samples (best on validation)"]
    assert list(curves[0].get_ydata()) == [0.01, 0.02, 0.03]
    assert curves[2].get_color() == "C0" and curves[2].get_linewidth() > curves[1].get_linewidth()
    dots = [l for l in ax.get_lines() if l.get_label().startswith("_")]       # each reading's best epoch
    assert [(list(d.get_xdata()), list(d.get_ydata())) for d in dots] == [([2], [0.02]), ([2], [0.02])]


def test_the_grid_says_which_readings_each_backbone_still_lacks(tmp_path):
    _fake(tmp_path, "diffureason-s", 0, "literal", 0.030)
    gaps = missing(grid(grid_records(0, root=tmp_path)))
    assert "literal" not in gaps[("beauty", "SASRec")] and "A.1 rollout" in gaps[("beauty", "SASRec")]
    assert len(gaps[("beauty", "SASRec")]) == len(READINGS) - 1
    assert "A.1 rollout" not in gaps[("beauty", "HSTU")] and len(gaps[("beauty", "HSTU")]) == len(READINGS) - 1


def _full_grid(tmp, best="backbone loss on h_L"):
    """Every single reading of DiffuReason-S, seed 0: ``best`` at 0.050, the literal one at 0.030 and the others
    below it (so that no combination is due)."""
    for i, r in enumerate(READINGS):
        _fake(tmp, "diffureason-s", 0, r, 0.050 if r == best else 0.030 if r == "literal" else 0.030 - 0.001 * i)
    return grid(grid_records(0, root=tmp))


def test_the_readings_command_says_whether_each_choice_is_final(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRLIB_RESULTS", str(tmp_path))
    _fake(tmp_path, "diffureason-s", 0, "literal", 0.030)
    _fake(tmp_path, "diffureason-s", 0, "align: refinement only", 0.050)
    assert cli.main(["readings"]) == 0
    out = capsys.readouterr().out
    assert f"SASRec: align: refinement only (0.0500; provisional: 2 of {len(READINGS)} readings trained)" in out
    assert "s-a-1-rollout  --model diffureason-s --seed 0 --experiment readings --ablation 'A.1 rollout'" in out
    _full_grid(tmp_path)
    assert cli.main(["readings"]) == 0
    out = capsys.readouterr().out
    assert "SASRec: backbone loss on h_L (0.0500; final)" in out and "not yet trained, SASRec" not in out


def test_the_readings_command_on_another_dataset_carries_beautys_choice(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRLIB_RESULTS", str(tmp_path))
    _full_grid(tmp_path)                                                   # Beauty: backbone loss on h_L, final
    _fake(tmp_path, "diffureason-s", 0, "A.1 rollout", 0.090, dataset="sports")   # best on Sports: not chosen
    assert cli.main(["readings", "--dataset", "sports"]) == 0
    out = capsys.readouterr().out
    assert ("chosen on validation NDCG@10 on beauty's grid, carried over to sports, SASRec: backbone loss on h_L "
            "(0.0500; final)") in out
    assert "not yet trained, SASRec: literal, backbone loss on h_L" in out      # only what Sports compares
    assert "s-literal  --model diffureason-s --seed 0 --dataset sports" in out
    assert "A.1 rollout" in out.split("chosen on")[0] and "s-a-1" not in out
    jobs = tmp_path / "jobs.txt"
    assert cli.main(["readings", "--dataset", "sports", "--jobs", str(jobs)]) == 0
    assert ("s-best-1     --model diffureason-s --seed 1 --dataset sports --experiment readings "
            "--ablation 'backbone loss on h_L'") in jobs.read_text()


def test_the_seed_jobs_of_one_backbone_are_written_while_the_other_grid_trains(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRLIB_RESULTS", str(tmp_path))
    _full_grid(tmp_path)                                                 # SASRec complete
    _fake(tmp_path, "diffureason-h", 0, "literal", 0.030)                # HSTU not
    jobs = tmp_path / "jobs.txt"
    assert cli.main(["readings", "--jobs", str(jobs)]) == 2              # refused: HSTU's choice could still change
    assert "not complete (HSTU on beauty" in capsys.readouterr().err and not jobs.exists()
    assert cli.main(["readings", "--jobs", str(jobs), "--backbone", "HSTU"]) == 2
    assert cli.main(["readings", "--jobs", str(jobs), "--backbone", "SASRec"]) == 0
    names = [ln.split()[0] for ln in jobs.read_text().splitlines() if not ln.startswith("#")]
    assert names == ["s-literal-1", "s-literal-2", "s-best-1", "s-best-2"]
    with pytest.raises(SystemExit):                                      # not a backbone: argparse says so
        cli.main(["readings", "--jobs", str(jobs), "--backbone", "TIGER"])


def test_readings_combine_into_one_config_with_the_settings_of_each():
    label = combine(["backbone loss on h_L", "align: refinement only"])
    assert label == "align: refinement only + backbone loss on h_L"                        # READINGS order
    assert is_reading(label) and not is_reading("w/o RL + align: refinement only")
    cfg = make_config("diffureason-s", "beauty", "cpu", seed=0, experiment="readings", ablation=label)
    model = build_model(cfg.model_name, cfg.model, 30, 6)
    assert model.cfg.align_scope == "refinement" and model.cfg.backbone_weight == 1.0
    assert cfg.variant == label
    both = with_module(make_config("diffureason-s", "beauty", "cpu", seed=0, experiment="readings"),
                       align_scope="refinement", backbone_weight=1.0)
    assert cfg.model == both.model                                       # the same module as the two --set overrides
    with pytest.raises(KeyError, match="'w/o RL' in .* is not a reading"):
        make_config("diffureason-s", "beauty", "cpu", ablation="w/o RL + local samples")
    with pytest.raises(KeyError, match="only readings other than 'literal'"):
        combine(["literal", "local samples"])


def test_the_readings_that_beat_the_literal_one_are_tried_together_before_the_choice(tmp_path):
    for i, r in enumerate(READINGS):
        if r != "reward: Hit@10":
            _fake(tmp_path, "diffureason-s", 0, r, {"literal": 0.030, "local samples": 0.034,
                                                    "no start noise": 0.036}.get(r, 0.020))
    t = grid(grid_records(0, root=tmp_path))
    assert combination(t, "beauty", "SASRec") is None                # the singles are not all stored yet
    assert missing(t, ["diffureason-s"])[("beauty", "SASRec")] == ["reward: Hit@10"]
    _fake(tmp_path, "diffureason-s", 0, "reward: Hit@10", 0.029)
    t = grid(grid_records(0, root=tmp_path))
    combo = "no start noise + local samples"
    assert combination(t, "beauty", "SASRec") == combo
    assert planned(t, "diffureason-s")[-1] == combo
    gaps = missing(t, ["diffureason-s"])
    assert gaps == {("beauty", "SASRec"): [combo]}
    assert grid_jobs(gaps) == [f"s-combined-2  --model diffureason-s --seed 0 --experiment readings --ablation '{combo}'"]
    with pytest.raises(ValueError, match="not complete"):
        seed_jobs(choose(t), t)
    _fake(tmp_path, "diffureason-s", 0, combo, 0.041)
    t = grid(grid_records(0, root=tmp_path))
    assert not missing(t, ["diffureason-s"]) and choose(t).reading.iloc[0] == combo
    assert "init_noise=0.0" in t.settings.iloc[0] and "sample_scale=0.1" in t.settings.iloc[0]
    assert seed_jobs(choose(t), t)[-1].endswith(f"--ablation '{combo}'")
    n = len(READINGS) + 1                                                # and the combination
    assert f"{n} of {n} readings stored" in str(pages.readings(t, choose(t)).finding)


def test_the_explorer_is_given_the_readings_chosen_on_validation_only(tmp_path):
    assert chosen_readings(root=tmp_path) == {}                          # no grid stored
    _fake(tmp_path, "diffureason-s", 0, "literal", 0.030)
    _fake(tmp_path, "diffureason-s", 0, "align: refinement only", 0.050)
    _fake(tmp_path, "diffureason-s", 0, "A.1 rollout", 0.040)
    _fake(tmp_path, "diffureason-s", 1, "local samples", 0.090)          # another seed: not part of the choice
    _fake(tmp_path, "diffureason-h", 0, "literal", 0.060)                # literal is best: the model's own run
    _fake(tmp_path, "diffureason-h", 0, "no start noise", 0.055)
    assert chosen_readings(root=tmp_path) == {"diffureason-s": "align: refinement only"}
    assert chosen_readings(seed=1, root=tmp_path) == {"diffureason-s": "local samples"}
    assert chosen_readings("sports", root=tmp_path) == {}
    _fake(tmp_path, "diffureason-s", 0, "align: refinement only", 0.020, dataset="sports")
    _fake(tmp_path, "diffureason-s", 0, "A.1 rollout", 0.090, dataset="sports")      # better on Sports: not chosen
    assert chosen_readings("sports", root=tmp_path) == {"diffureason-s": "align: refinement only"}   # Beauty's


def test_a_combination_trained_before_its_turn_is_counted_apart_as_the_command_counts(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRLIB_RESULTS", str(tmp_path))
    _fake(tmp_path, "diffureason-s", 0, "literal", 0.030)
    _fake(tmp_path, "diffureason-s", 0, "backbone loss on h_L", 0.050)
    _fake(tmp_path, "diffureason-s", 0, combine(["log-density: mean over d", "backbone loss on h_L"]), 0.060)
    t = grid(grid_records(0, root=tmp_path))
    text = str(pages.readings(t, choose(t)).finding)
    assert f"2 of {len(READINGS)} readings stored (and 1 combination trained ahead of its turn)" in text
    assert cli.main(["readings"]) == 0
    assert f"provisional: 2 of {len(READINGS)} readings trained" in capsys.readouterr().out


def test_a_dataset_grid_holds_the_seed_0_runs_of_the_datasets_named(tmp_path):
    _fake(tmp_path, "diffureason-s", 0, "literal", 0.030)
    _fake(tmp_path, "diffureason-s", 0, "A.1 rollout", 0.040, dataset="sports")
    _fake(tmp_path, "diffureason-s", 1, "local samples", 0.090)          # another seed
    assert dataset_grid(root=tmp_path).reading.tolist() == ["literal"]
    assert dataset_grid("sports", root=tmp_path).reading.tolist() == ["A.1 rollout"]
    assert sorted(dataset_grid(("beauty", "sports"), root=tmp_path).dataset) == ["beauty", "sports"]
    assert dataset_grid(seed=1, root=tmp_path).reading.tolist() == ["local samples"]


def test_the_improving_readings_are_added_one_at_a_time_while_validation_improves(tmp_path):
    gains = {"literal": 0.030, "backbone loss on h_L": 0.050, "local samples": 0.040, "no start noise": 0.045,
             "reward: Hit@10": 0.031}
    for r in READINGS:
        _fake(tmp_path, "diffureason-s", 0, r, gains.get(r, 0.020))
    t = grid(grid_records(0, root=tmp_path))
    two = combine(["backbone loss on h_L", "no start noise"])            # the best two singles
    three = combine(["backbone loss on h_L", "no start noise", "local samples"])
    assert combinations(t, "beauty", "SASRec") == [two] and combination(t, "beauty", "SASRec") == two
    _fake(tmp_path, "diffureason-s", 0, two, 0.055)                      # improves on the best single: one more step
    t = grid(grid_records(0, root=tmp_path))
    assert combinations(t, "beauty", "SASRec") == [two, three] and combination(t, "beauty", "SASRec") == three
    assert missing(t, ["diffureason-s"]) == {("beauty", "SASRec"): [three]}
    assert grid_jobs(missing(t, ["diffureason-s"]))[0].startswith("s-combined-3  ")
    _fake(tmp_path, "diffureason-s", 0, three, 0.054)                    # no better: the search ends, two is chosen
    t = grid(grid_records(0, root=tmp_path))
    assert combination(t, "beauty", "SASRec") is None and not missing(t, ["diffureason-s"])
    assert combinations(t, "beauty", "SASRec") == [two, three]           # four (+ Hit@10) is never due
    assert choose(t).reading.iloc[0] == two


def test_a_first_step_that_does_not_improve_ends_the_search(tmp_path):
    gains = {"literal": 0.030, "backbone loss on h_L": 0.050, "local samples": 0.040, "no start noise": 0.045}
    for r in READINGS:
        _fake(tmp_path, "diffureason-s", 0, r, gains.get(r, 0.020))
    two = combine(["backbone loss on h_L", "no start noise"])
    _fake(tmp_path, "diffureason-s", 0, two, 0.050)                      # a tie is no improvement
    t = grid(grid_records(0, root=tmp_path))
    assert combinations(t, "beauty", "SASRec") == [two] and combination(t, "beauty", "SASRec") is None
    assert choose(t).reading.iloc[0] == "backbone loss on h_L"           # ties: the single reading, by READINGS order


def test_one_improving_reading_is_not_combined(tmp_path):
    t = _full_grid(tmp_path)
    assert combination(t, "beauty", "SASRec") is None and planned(t, "diffureason-s") == list(READINGS)


def test_seed_jobs_wait_for_a_complete_grid_then_train_the_literal_and_the_chosen_reading(tmp_path):
    _fake(tmp_path, "diffureason-s", 0, "literal", 0.030)
    _fake(tmp_path, "diffureason-s", 0, "local samples", 0.040)
    t = grid(grid_records(0, root=tmp_path))
    with pytest.raises(ValueError, match="not complete.*SASRec on beauty"):
        seed_jobs(choose(t), t)
    assert len(seed_jobs(choose(t), t, allow_incomplete=True)) == 4
    t = _full_grid(tmp_path)
    jobs = seed_jobs(choose(t), t, seeds=(1, 2))
    assert [j.split()[0] for j in jobs] == ["s-literal-1", "s-literal-2", "s-best-1", "s-best-2"]
    assert jobs[2].endswith("--seed 1 --experiment readings --ablation 'backbone loss on h_L'")
    assert "--experiment" not in jobs[0]
    lit = _full_grid(tmp_path / "lit", best="literal")
    assert [j.split()[0] for j in seed_jobs(choose(lit), lit)] == ["s-literal-1", "s-literal-2"]


def _ranked(tmp, model, seed, reading, shift, dataset="beauty"):
    """A stored run whose 400 test users rank their target at a seeded draw moved by ``shift`` (lower: better)."""
    ranks = np.clip(np.random.default_rng(seed).integers(0, 60, 400) + shift, 0, None)
    m = metrics_from_ranks(ranks)
    experiment = "readings" if reading not in ("literal", None) else "main"
    cfg = make_config(model, dataset, "cpu", seed=seed, experiment=experiment,
                      ablation=reading if experiment == "readings" else None)
    body = {"metrics": {"valid": m, "test": m}, "ranks": {"test": encode_ranks(ranks)},
            "timing": {"best_epoch": 3, "epochs": 7, "train_seconds": 600.0}}
    write_record(tmp / experiment / f"{cfg.run_id}.json", body, command="test", cfg=cfg)


def test_the_three_seed_comparison_relabels_the_chosen_reading_and_pairs_it_with_the_backbone(tmp_path):
    t = _full_grid(tmp_path)                                            # seed 0 of every reading
    for s in (0, 1, 2):
        _ranked(tmp_path, "sasrec", s, None, 0)
        _ranked(tmp_path, "diffureason-s", s, "literal", 8)             # worse than the backbone
        _ranked(tmp_path, "diffureason-s", s, "backbone loss on h_L", -3)   # better
    _ranked(tmp_path, "diffureason-s", 1, "local samples", -20)         # not chosen: never compared
    chosen = choose(t)
    recs = compared_records(chosen, load_records("main", root=tmp_path), load_records("readings", root=tmp_path))
    labels = sorted((r["label"], r["config"]["seed"]) for r in recs)
    assert labels == sorted([(lab, s) for lab in ("SASRec", "DiffuReason-S", "DiffuReason-S" + BEST)
                             for s in (0, 1, 2)])
    c = comparison(recs, chosen, metrics=("ndcg@10",), n_boot=300).set_index(["against", "model"])
    lit, best = c.loc[("SASRec", "DiffuReason-S")], c.loc[("SASRec", "DiffuReason-S" + BEST)]
    assert lit["seeds"] == best["seeds"] == 3
    assert lit["difference"] < 0 < best["difference"] and c.loc[("DiffuReason-S", "DiffuReason-S" + BEST)]["difference"] > 0
    assert lit["user p"] < 0.01 and lit["user ci_high"] < 0
    page = pages.readings_seeds(recs, chosen, comparison(recs, chosen, n_boot=300))
    text = str(page.finding)
    assert "best reading, *backbone loss on h_L*" in text and "on seeds 0,1,2" in text
    assert f"{lit['relative %']:+.1f}%" in text
    answer = pages.readings_answer(comparison(recs, chosen, n_boot=300))
    assert f"chosen on validation is above SASRec ({best['relative %']:+.1f}%, per test user p" in answer
    assert answer.startswith("**Paper** (Beauty, Table 2, test N@10): DiffuReason-S +12.3% over the backbone.")
    assert "it improves SASRec." in answer and "so far" not in answer
    top = str(pages.readings(t, chosen, answer=answer).finding)
    assert top.startswith(answer) and "\n\n**Paper:** one configuration" in top     # the grid page opens with it
    assert len(page.table.data) == 9 and page.figure.png()[:4] == b"\x89PNG"
    shown = pages.readings_paired_table(comparison(recs, chosen, n_boot=300)).shown
    assert len(shown) == 3 * 2 and set(shown.metric) == {"N@10", "R@10"}


def test_the_readings_command_prints_the_seeds_and_their_paired_differences(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRLIB_RESULTS", str(tmp_path))
    t = _full_grid(tmp_path)
    for s in (0, 1, 2):
        _ranked(tmp_path, "sasrec", s, None, 0)
        _ranked(tmp_path, "diffureason-s", s, "literal", 8)
    _ranked(tmp_path, "diffureason-s", 0, "backbone loss on h_L", -3)  # the chosen reading: one seed so far
    assert cli.main(["readings", "--compare", "--n-boot", "200"]) == 0
    out = capsys.readouterr().out
    seeds = out.split("test metrics per seed")[1].split("paired test differences")[0]
    assert seeds.count("SASRec ") == 3 and seeds.count("DiffuReason-S (best)") == 1
    diffs = out.split("paired test differences")[1].splitlines()
    lit = [ln for ln in diffs if ln.strip().startswith("DiffuReason-S vs SASRec") and " N@10 " in ln][0]
    best = [ln for ln in diffs if ln.strip().startswith("DiffuReason-S (best) vs SASRec") and " N@10 " in ln][0]
    assert "0,1,2" in lit and "(1 seed)" not in lit and "(1 seed)" in best
    recs = compared_records(choose(t), load_records("main", root=tmp_path), load_records("readings", root=tmp_path))
    page = pages.readings_paired_table(comparison(recs, choose(t), metrics=("ndcg@10",), n_boot=200)).shown
    assert page[page.comparison == "DiffuReason-S vs SASRec"]["relative (seeds 95%)"].iloc[0] in lit  # as the book
    assert cli.main(["readings"]) == 0 and "paired test differences" not in capsys.readouterr().out


def test_the_verdict_sets_the_chosen_reading_beside_the_literal_one(tmp_path):
    _full_grid(tmp_path)
    for s in (0, 1, 2):
        _ranked(tmp_path, "sasrec", s, None, 0)
        _ranked(tmp_path, "diffureason-s", s, "literal", 2)       # worse than the backbone, better than the
        _ranked(tmp_path, "diffureason-s", s, "backbone loss on h_L", -3)   # other readings (no combination due)
    _ranked(tmp_path, "diffureason-s", 1, "local samples", -20)             # seed 1 only: not in the seed-0 grid
    best, chosen = best_runs(root=tmp_path)
    assert sorted(r["config"]["seed"] for r in best) == [0, 1, 2]
    assert {r["label"] for r in best} == {"DiffuReason-S" + BEST}
    c = chosen.iloc[0]
    assert (c.backbone, c.reading, c.trained, c.planned) == ("SASRec", "backbone loss on h_L", len(READINGS), len(READINGS))
    page = pages.verdict(load_records("main", root=tmp_path) + best, chosen=chosen)
    t = page.table.data
    assert list(dict.fromkeys(t.model))[:2] == ["DiffuReason-S", "DiffuReason-S" + BEST]   # right after the literal
    n10 = t[t.metric == "ndcg@10"].set_index(["model", "dataset"])
    lit, top = n10.loc[("DiffuReason-S", "beauty")], n10.loc[("DiffuReason-S" + BEST, "beauty")]
    assert ("DiffuReason-S" + BEST, "sports") not in n10.index                  # no empty rows for the best reading
    assert lit.seeds == top.seeds == 3 and lit["ours %"] < 0 < top["ours %"]
    assert top["paper %"] == lit["paper %"]                                    # the same paper numbers
    text = page.finding.text
    assert "in 12 of 12 backbone and dataset pairs" in text and "11 of 12 pairs not yet measured" in text
    assert f"DiffuReason-S on Beauty, best reading *backbone loss on h_L*: {top['ours %']:+.1f}% (" in text
    assert "provisional" not in text
    shown = page.table.shown
    assert list(shown.reading[:2]) == ["literal", "best: backbone loss on h_L"]


def test_other_datasets_carry_the_reading_chosen_on_beautys_grid(tmp_path):
    _full_grid(tmp_path)                                                   # Beauty chooses backbone loss on h_L
    _ranked(tmp_path, "sasrec", 0, None, 0, dataset="sports")
    _ranked(tmp_path, "diffureason-s", 0, "literal", 4, dataset="sports")
    _ranked(tmp_path, "diffureason-s", 0, "backbone loss on h_L", 2, dataset="sports")
    _ranked(tmp_path, "diffureason-s", 0, "local samples", -20, dataset="sports")   # better on Sports: not chosen
    best, chosen = best_runs(("beauty", "sports"), root=tmp_path)
    c = chosen.set_index("dataset").loc["sports"]
    assert (c.backbone, c.reading, c["chosen on"]) == ("SASRec", "backbone loss on h_L", "beauty")
    assert c.trained == c.planned == len(READINGS)                         # Beauty's grid is complete
    assert sorted(r["config"]["dataset"] for r in best) == ["beauty", "sports"]    # the grid's own run, Sports'
    assert {r["label"] for r in best} == {"DiffuReason-S" + BEST}
    page = pages.verdict(load_records("main", root=tmp_path) + best, chosen=chosen)
    assert "DiffuReason-S on Sports, best reading *backbone loss on h_L* (chosen on Beauty): " in page.finding.text
    shown = page.table.shown
    assert "best: backbone loss on h_L (chosen on Beauty)" in set(shown.reading)
    only = best_runs(("sports",), root=tmp_path)                            # Beauty's grid still chooses
    assert only[1].dataset.tolist() == ["sports"] and [r["config"]["dataset"] for r in only[0]] == ["sports"]
    assert best_runs(("sports",), root=tmp_path / "none")[0] == []


def test_the_readings_page_of_another_dataset_shows_the_carried_choice_with_its_own_numbers(tmp_path):
    _full_grid(tmp_path)                                                   # Beauty: backbone loss on h_L
    for s in (0, 1, 2):
        _ranked(tmp_path, "sasrec", s, None, 0, dataset="sports")
        _ranked(tmp_path, "diffureason-s", s, "literal", 4, dataset="sports")
        _ranked(tmp_path, "diffureason-s", s, "backbone loss on h_L", 1, dataset="sports")
    _ranked(tmp_path, "diffureason-s", 0, "local samples", -20, dataset="sports")   # best on Sports: not chosen
    table, chosen, gaps = dataset_choice("sports", root=tmp_path)
    assert set(table.reading) == {"literal", "backbone loss on h_L", "local samples"}
    c = chosen.iloc[0]
    assert (len(chosen), c.reading, c["chosen on"], c.dataset) == (1, "backbone loss on h_L", "beauty", "sports")
    assert c["valid ndcg@10"] == table.set_index("reading").loc["backbone loss on h_L", "valid ndcg@10"]  # Sports'
    assert ("beauty", "SASRec") not in gaps and ("beauty", "HSTU") in gaps    # SASRec's grid is complete
    text = str(pages.readings(table, chosen, "sports").finding)
    assert "on SASRec, the reading chosen on Beauty's grid, *backbone loss on h_L* (validation NDCG@10 here" in text
    assert "3 readings stored here" in text and "the best is" not in text
    recs = compared_records(chosen, load_records("main", root=tmp_path), load_records("readings", root=tmp_path))
    assert {r["config"]["dataset"] for r in recs} == {"sports"} and len(recs) == 9
    compared = comparison(recs, chosen, metrics=("ndcg@10",), n_boot=200)
    assert set(compared["chosen on"]) == {"beauty"}
    assert "the reading of the paper chosen on Beauty's validation grid is" in pages.readings_answer(compared, "sports")
    seeds = str(pages.readings_seeds(recs, chosen, compared, "sports", gaps=gaps).finding)
    assert "best reading, *backbone loss on h_L*, chosen on Beauty)" in seeds
    assert "not complete" not in seeds                                     # HSTU's open grid is not Sports' SASRec's
    gaps[("beauty", "SASRec")] = ["reward: Hit@10"]
    seeds = str(pages.readings_seeds(recs, chosen, compared, "sports", gaps=gaps).finding)
    assert "The grid is not complete (SASRec lacks 1 of its readings on Beauty)" in seeds
    home_t, home_c, _ = dataset_choice("beauty", root=tmp_path)           # Beauty's page: its own choice
    assert "chosen on" not in home_c and home_c.reading.tolist() == ["backbone loss on h_L"]
    assert dataset_choice("instruments", root=tmp_path)[1].empty           # nothing stored there yet
    t, none, g = dataset_choice("instruments", root=tmp_path)
    assert "Instruments trains no grid of its own: it carries the reading chosen on Beauty's grid" in str(
        pages.readings(t, none, "instruments").finding)
    assert "python -m drlib readings --dataset instruments" in str(
        pages.readings_seeds([], none, comparison([], none), "instruments", gaps=g).finding)


def test_the_verdict_calls_a_choice_provisional_while_its_grid_is_incomplete(tmp_path):
    _ranked(tmp_path, "sasrec", 0, None, 0)
    _ranked(tmp_path, "diffureason-s", 0, "literal", 8)
    _ranked(tmp_path, "diffureason-s", 0, "align: refinement only", -3)
    best, chosen = best_runs(root=tmp_path)
    assert [r["label"] for r in best] == ["DiffuReason-S" + BEST] and chosen.iloc[0].trained == 2
    page = pages.verdict(load_records("main", root=tmp_path) + best, chosen=chosen)
    assert (f"best reading *align: refinement only* (provisional, 2 of {len(READINGS)} readings trained): "
            in page.finding.text)
    assert "(1 seed)" in page.finding.text
    assert (f"best: align: refinement only (provisional, 2 of {len(READINGS)} readings trained)"
            in list(page.table.shown.reading))


def test_the_seed_page_says_when_nothing_is_measured_and_when_the_choice_can_still_change(tmp_path):
    empty = pages.readings_seeds([], choose(grid([])), comparison([], choose(grid([]))))
    assert "not yet measured" in str(empty.finding)
    _fake(tmp_path, "diffureason-s", 0, "literal", 0.030)
    for s in (0, 1):
        _ranked(tmp_path, "sasrec", s, None, 0)
        _ranked(tmp_path, "diffureason-s", s, "literal", 5)
    t = grid(grid_records(0, root=tmp_path))
    recs = compared_records(choose(t), load_records("main", root=tmp_path), [])
    page = pages.readings_seeds(recs, choose(t), comparison(recs, choose(t), n_boot=100), gaps=missing(t))
    assert f"The grid is not complete (SASRec lacks {len(READINGS) - 1} of its readings" in str(page.finding)
    assert {r["label"] for r in recs} == {"SASRec", "DiffuReason-S"}          # the literal reading is the best: no copy
    assert "on SASRec the best reading on validation is the literal one" in str(page.finding)
    assert "on seeds 0,1" in str(page.finding)


def _probe(tmp, cfg, stages, medians, ndcg, similarity=None, groups=None):
    body = {"stages": stages, "median_rank": dict(zip(stages, medians)),
            "stage_metrics": {s: {"recall@5": 2 * v, "ndcg@5": v, "recall@10": 3 * v, "ndcg@10": v}
                              for s, v in zip(stages, ndcg)}}
    if similarity is not None:
        body["similarity"] = similarity
    if groups is not None:                        # {group: N@10 of the last stage}
        body["groups"] = [{"grouping": "user" if g.startswith("UG") else "item", "group": g, "stage": stages[-1],
                           "n": 10, "ndcg@10": v} for g, v in groups.items()]
    write_record(tmp / "probes" / f"{cfg.run_id}.json", body, command="test", cfg=cfg, experiment="probes")


def test_the_probes_of_the_literal_and_the_chosen_reading_are_set_beside_the_backbone(tmp_path):
    t = _full_grid(tmp_path)                                             # chosen: backbone loss on h_L
    cfgs = dict(probe_configs(choose(t)))
    assert list(cfgs) == ["SASRec", "DiffuReason-S", "DiffuReason-S (best)"]
    assert cfgs["DiffuReason-S (best)"].run_id == t.set_index("reading").run_id["backbone loss on h_L"]
    steps = ["step 1", "step 2", "step 3", "diffusion"]
    _probe(tmp_path, cfgs["SASRec"], ["final"], [1200], [0.055])
    _probe(tmp_path, cfgs["DiffuReason-S"], steps, [3000, 6500, 6600, 1300], [0.005, 0.001, 0.001, 0.029])
    found, lacking = stage_probes(choose(t), results_root=tmp_path)
    assert [p["label"] for p in found] == ["SASRec", "DiffuReason-S"]
    assert lacking == [cfgs["DiffuReason-S (best)"].run_id]
    page = pages.readings_probes(found, lacking)
    text = str(page.finding)
    assert "DiffuReason-S: median target rank 3000 at step 1 (N@10 0.0050), 1300 after the diffusion" in text
    assert "SASRec alone 1200" in text and f"`{lacking[0]}`" in text and "python -m drlib probe" in text
    _probe(tmp_path, cfgs["DiffuReason-S (best)"], steps, [900, 950, 990, 800], [0.05, 0.05, 0.05, 0.06])
    found, lacking = stage_probes(choose(t), results_root=tmp_path)
    page = pages.readings_probes(found, lacking)
    assert not lacking and "DiffuReason-S (best): median target rank 900 at step 1" in str(page.finding)
    (ax,) = page.figure.figure.axes
    assert [l.get_label() for l in ax.get_lines()] == ["literal", "best reading", "SASRec alone"]
    assert list(ax.get_lines()[1].get_ydata()) == [900, 950, 990, 800]
    assert len(page.table.shown) == 1 + 4 + 4
    assert "not yet measured" in str(pages.readings_probes([], []).finding)


def test_the_stage_similarity_and_the_groups_of_both_readings_are_set_against_the_backbone(tmp_path):
    t = _full_grid(tmp_path)
    cfgs = dict(probe_configs(choose(t)))
    steps = ["step 1", "step 2", "step 3", "diffusion"]
    sim = lambda a, b: [[1, a, a, b], [a, 1, 0.99, 0.1], [a, 0.99, 1, 0.1], [b, 0.1, 0.1, 1]]   # noqa: E731
    _probe(tmp_path, cfgs["SASRec"], ["final"], [1200], [0.055], groups={"UG-0": 0.04, "IG-0": 0.02})
    _probe(tmp_path, cfgs["DiffuReason-S"], steps, [3000, 6500, 6600, 1300], [0.005, 0.001, 0.001, 0.029],
           similarity=sim(0.5, 0.4), groups={"UG-0": 0.02, "IG-0": 0.01})
    _probe(tmp_path, cfgs["DiffuReason-S (best)"], steps, [900, 950, 990, 800], [0.05, 0.05, 0.05, 0.06],
           similarity=sim(0.2, 0.9), groups={"UG-0": 0.05, "IG-0": 0.018})
    found, _ = stage_probes(choose(t), results_root=tmp_path)
    page = pages.readings_stages(found)
    text = str(page.finding)
    assert "DiffuReason-S: the diffusion output's cosine with step 1 is 0.40, between thinking tokens 2 and 3 0.99" \
        in text
    assert "against SASRec alone better in 0 of 2 groups, from -50.0% (IG-0) to -50.0% (IG-0)" in text
    assert "DiffuReason-S (best): the diffusion output's cosine with step 1 is 0.90" in text
    assert "better in 1 of 2 groups, from -10.0% (IG-0) to +25.0% (UG-0)" in text
    shown = page.table.shown
    assert list(shown.columns) == ["backbone", "group", "alone N@10", "literal: change", "best: change"]
    assert shown.set_index("group").loc["UG-0", "best: change"] == "+25.0%"
    assert len(page.figure.figure.axes) >= 3                  # two heatmaps and the groups' bars
    assert "not yet measured" in str(pages.readings_stages([]).finding)


def test_a_readings_run_is_found_by_its_id_past_its_probe_record(tmp_path):
    t = _full_grid(tmp_path)
    cfg = dict(probe_configs(choose(t)))["DiffuReason-S (best)"]
    _probe(tmp_path, cfg, ["step 1", "diffusion"], [10, 5], [0.1, 0.2])       # results/probes/<same id>.json
    path, rec = find_run_record(cfg.run_id, tmp_path)
    assert path.parent.name == "readings" and rec["label"] == "backbone loss on h_L"


def _run(tmp, model, seed, valid_curve, test, patience=10, experiment="main"):
    """A fake run with a validation history; ``patience`` other than the profile's stores it as a rerun."""
    cfg = make_config(model, "beauty", "cpu", seed=seed, experiment=experiment)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, patience=patience))
    best = max(range(len(valid_curve)), key=valid_curve.__getitem__)
    body = {"metrics": {"valid": {"ndcg@10": valid_curve[best], "recall@10": 0.1},
                        "test": {"ndcg@10": test, "recall@10": 0.1}},
            "timing": {"best_epoch": best + 1, "epochs": len(valid_curve), "train_seconds": 60.0 * len(valid_curve)},
            "history": [{"epoch": i + 1, "ndcg@10": v} for i, v in enumerate(valid_curve)]}
    write_record(tmp / experiment / f"{cfg.run_id}.json", body, command="test", cfg=cfg)


def test_a_longer_patience_rerun_is_paired_with_the_run_it_repeats_and_shown(tmp_path):
    short = [0.02, 0.04, 0.03, 0.01, 0.035]
    _run(tmp_path, "diffureason-h", 0, short, 0.030)
    _run(tmp_path, "diffureason-h", 1, [0.02, 0.03], 0.020)               # no rerun: no pair
    _run(tmp_path, "hstu", 0, [0.05, 0.06], 0.050)                        # the backbone, seed 0
    _run(tmp_path, "diffureason-h", 0, short + [0.045, 0.05, 0.04], 0.040, patience=20, experiment="patience")
    _run(tmp_path, "diffureason-s", 2, [0.02, 0.03], 0.020, patience=20, experiment="patience")   # repeats nothing
    old = next((tmp_path / "main").glob("diffureason-h-*seed0-*.json"))   # stored before a hash-neutral field
    rec = json.loads(old.read_text())                                    # existed, and through JSON (lists)
    del rec["config"]["model_config"]["module"]["reward_screen"]
    old.write_text(json.dumps(rec))
    pairs = patience_pairs(root=tmp_path)
    assert [(a["config"]["train"]["patience"], b["config"]["train"]["patience"]) for a, b in pairs] == [(10, 20)]
    assert pairs[0][0]["experiment"] == "main" and pairs[0][1]["config"]["seed"] == 0
    assert patience_pairs("sports", root=tmp_path) == []
    assert largest_swing(pairs[0][0]) == pytest.approx(0.025)            # 0.035 - 0.01
    literal = [r for r in load_records("main", root=tmp_path) if r["label"] == "DiffuReason-H"]
    page = pages.readings_patience(pairs, literal, backbone_records(0, root=tmp_path))
    text = str(page.finding)
    assert "best epoch 2 to 7" in text and "validation N@10 0.0400 to 0.0500" in text and "0.0300 to 0.0400" in text
    assert "seed 0 0.0250 (stopped at epoch 5, best 2)" in text
    assert "patience 10 to 20 (the stored run's curve through its 5 epochs): best epoch 2 to 7" in text
    assert ("Against the backbone on test N@10, on the seeds retrained: DiffuReason-H at patience 20 -20.0% (1 seed), "
            "at patience 10 -40.0% (1 seed), against HSTU on seed 0.") in text
    assert page.table.data["test vs backbone %"].round(1).tolist() == [-40.0, -20.0]
    assert page.table.data.patience.tolist() == [10, 20]
    assert str(page.finding).startswith("**Paper") and "**Ours**" in text
    assert page.table.data["largest swing"].round(4).tolist() == [0.025, 0.025]
    empty = pages.readings_patience([], literal, [])
    assert "retrained with a longer patience yet" in str(empty.finding)
    assert "--set train.patience=20" in str(empty.finding)
    assert empty.table.data.seed.tolist() == [0, 1]                      # the stored runs a rerun would repeat
    assert empty.table.data.run_id.iloc[0] == pairs[0][0]["run_id"]


def test_the_patience_section_sets_both_patiences_against_the_backbone_over_the_seeds_retrained(tmp_path):
    def stored(model, seed, shift, patience=None):
        ranks = np.clip(np.random.default_rng(seed).integers(0, 60, 400) + shift, 0, None)
        m = metrics_from_ranks(ranks)
        experiment = "main" if patience is None else "patience"
        cfg = make_config(model, "beauty", "cpu", seed=seed, experiment=experiment)
        if patience is not None:
            cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, patience=patience))
        body = {"metrics": {"valid": m, "test": m}, "ranks": {"test": encode_ranks(ranks)},
                "timing": {"best_epoch": 2, "epochs": 3, "train_seconds": 60.0},
                "history": [{"epoch": i + 1, "ndcg@10": v} for i, v in enumerate([0.01, 0.03, 0.02])]}
        write_record(tmp_path / experiment / f"{cfg.run_id}.json", body, command="test", cfg=cfg)
    for s in (0, 1, 2):
        stored("hstu", s, 0)
        stored("diffureason-h", s, 12)                                   # patience 10: well below HSTU
        stored("diffureason-h", s, 3, patience=20)                       # patience 20: closer
    pairs = patience_pairs(root=tmp_path)
    literal = [r for r in load_records("main", root=tmp_path) if r["label"] == "DiffuReason-H"]
    text = str(pages.readings_patience(pairs, literal, load_records("main", root=tmp_path)).finding)
    said = text.split("on the seeds retrained: ")[1]
    assert said.startswith("DiffuReason-H at patience 20 -") and said.endswith("against HSTU on seeds 0,1,2.")
    long, short = re.findall(r"-(\d+\.\d)% \((-?[\d.+-]+ to [\d.+-]+), per test user p < 0\.001\)", said)
    assert float(long[0]) < float(short[0])                               # the longer patience is less far below


def test_a_rerun_that_draws_other_random_numbers_is_told_from_one_that_repeats_the_stored_run():
    run = lambda vals, commit: {"history": [{"epoch": i + 1, "ndcg@10": v} for i, v in enumerate(vals)],
                                "env": {"git_commit": commit}}
    stored = run([0.02, 0.04, 0.03], "c96990fdea")
    assert shared_epochs(stored, run([0.02, 0.04, 0.03, 0.05], "7b0ecb2ad8")) == 3
    assert shared_epochs(stored, run([0.02, 0.041, 0.03, 0.05], "7b0ecb2ad8")) == 1
    assert shared_epochs(stored, run([0.021, 0.04], "7b0ecb2ad8")) == 0
    assert pages._follows(stored, run([0.02, 0.04, 0.03, 0.05], "x"), "ndcg@10") == (
        "the stored run's curve through its 3 epochs")
    assert pages._follows(stored, run([0.02, 0.041], "x"), "ndcg@10") == (
        "the stored run's curve through epoch 1, then its own")
    assert pages._follows(stored, run([0.021, 0.04], "7b0ecb2ad8"), "ndcg@10") == (
        "another draw: stored at commit c96990f, rerun at 7b0ecb2")


def test_the_grid_figure_stacks_one_panel_per_backbone_with_a_labelled_bar_per_reading(tmp_path):
    _fake(tmp_path, "diffureason-s", 0, "literal", 0.030)
    _fake(tmp_path, "diffureason-s", 0, "align: refinement only", 0.050)
    _fake(tmp_path, "diffureason-h", 0, "literal", 0.040)
    fig = pages.readings_figure(dataset_grid(root=tmp_path), {"SASRec": 0.06}, {"SASRec": [0.058, 0.061]})
    hstu, sasrec = fig.axes                                           # backbones in the grid's order
    assert [len(ax.patches) for ax in fig.axes] == [1, 2 + 1]         # SASRec: two bars and its seeds' band
    assert sorted(t.get_text() for t in sasrec.texts) == [" 0.0300", " 0.0500"]
    assert [t.get_text() for t in sasrec.get_yticklabels()] == ["literal", "align: refinement only"]
    assert hstu.get_legend() is None and sasrec.get_legend() is not None


def test_training_curves_give_a_model_one_colour_its_seeds_line_styles_and_one_legend_entry(tmp_path):
    _run(tmp_path, "hstu", 0, [0.05, 0.06], 0.05)
    _run(tmp_path, "hstu", 1, [0.04, 0.06, 0.065], 0.05)
    _run(tmp_path, "diffureason-h", 0, [0.02, 0.03], 0.02)
    ax = pages.training_curves(load_records("main", root=tmp_path), ["beauty"]).figure.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 3 and [t.get_text() for t in ax.get_legend().get_texts()] == ["DiffuReason-H", "HSTU"]
    hstu = [ln for ln in lines if len(ln.get_xdata()) in (2, 3) and ln.get_color() != lines[0].get_color()]
    assert len(hstu) == 2 and hstu[0].get_color() == hstu[1].get_color()
    assert {ln.get_linestyle() for ln in hstu} == {"-", "--"}


def test_a_run_trained_on_two_devices_is_marked_wherever_its_minutes_are_shown():
    def rec(label, seed, devices, env_device="cpu"):
        m = {k: 0.05 for k in ("recall@5", "recall@10", "ndcg@5", "ndcg@10")}
        return {"label": label, "run_id": f"{label}-{seed}", "env": {"device": env_device},
                "config": {"seed": seed, "dataset": "beauty", "model": "diffureason-s", "profile": "cpu"},
                "metrics": {"test": m, "valid": m},
                "timing": {"best_epoch": 2, "epochs": len(devices), "train_seconds": 600.0,
                           "train_ms_per_batch": 100.0, "eval_seconds": 1.0},
                "history": [{"epoch": i + 1} if d is None else {"epoch": i + 1, "device": d}
                            for i, d in enumerate(devices)]}

    moved = rec("DiffuReason-S", 2, ["cuda", "cuda", "cpu", "cpu", "cpu"])
    old = rec("DiffuReason-S", 0, [None, None, None], env_device="cuda:0")    # before the history named it
    plain = rec("DiffuReason-S", 1, ["cpu"] * 4)
    assert epoch_devices(moved) == {"cuda": 2, "cpu": 3} and devices_text(moved) == "cuda 2 + cpu 3"
    assert epoch_devices(old) == {"cuda": 3} and devices_text(plain) == "cpu"
    assert devices_text({**plain, "history": []}) == "cpu" and devices_text({**old, "history": []}) == "cuda"
    t = pages.readings_seeds_table([plain, moved], "beauty")
    assert list(t.shown["train min"]) == ["10", "10†"] and "two machines" in t.note
    assert "two machines" not in pages.readings_seeds_table([plain, old], "beauty").note
    cost = pages.cost_table([plain, moved, old])
    assert list(cost.shown["train min"]) == ["10.0†"] and "two machines" in cost.note   # one model: any seed marks
    assert records_frame([moved, plain])["mixed devices"].tolist() == [True, False]
    assert summary([plain])["mixed_devices"].tolist() == [False]


def test_a_run_stopped_at_its_epoch_cap_while_improving_is_marked():
    def rec(seed, best, epochs, cap=100, patience=10):
        m = {k: 0.05 for k in ("recall@5", "recall@10", "ndcg@5", "ndcg@10")}
        return {"label": "DiffuReason-S", "run_id": f"r{seed}", "env": {"device": "cpu"},
                "config": {"seed": seed, "dataset": "beauty", "model": "diffureason-s", "profile": "cpu",
                           "train": {"epochs": cap, "patience": patience}},
                "metrics": {"test": m, "valid": m},
                "timing": {"best_epoch": best, "epochs": epochs, "train_seconds": 600.0}, "history": []}

    capped, early, late_best = rec(0, 97, 100), rec(1, 40, 50), rec(2, 90, 100)
    assert stopped_at_cap(capped) and not stopped_at_cap(early)
    assert not stopped_at_cap(late_best)                     # 10 epochs without a better one: patience ended it
    assert stopped_at_cap(rec(3, 90, 100, patience=None))    # no early stopping: the cap ends every run
    assert not stopped_at_cap({"timing": {}, "config": {}})  # not a training record
    t = pages.readings_seeds_table([capped, early], "beauty")
    assert list(t.shown["best / epochs"]) == ["97 / 100‡", "40 / 50"] and "still improving" in t.note
    assert "still improving" not in pages.readings_seeds_table([early, late_best], "beauty").note


def test_the_answer_sentence_calls_a_reading_above_or_below_only_where_the_per_user_test_says_so():
    def row(against, model, reading, rel, p, seeds=3):
        return {"against": against, "model": model, "reading": reading, "relative %": rel, "user p": p,
                "seeds": seeds}
    best = "log-density: mean over d + backbone loss on h_L"
    c = pd.DataFrame([row("HSTU", "DiffuReason-H", best, -35.0, 0.0005),          # the literal one: not the answer
                      row("HSTU", "DiffuReason-H" + BEST, best, -0.6, 0.48),
                      row("SASRec", "DiffuReason-S" + BEST, best, -4.9, 0.0005, seeds=2),
                      row("DiffuReason-S", "DiffuReason-S" + BEST, best, 41.5, 0.0005)])   # not against a backbone
    c["dataset"], c["metric"] = "beauty", "ndcg@10"
    text = pages.readings_answer(c)
    assert "not told apart from HSTU (-0.6%, per test user p 0.480)" in text
    assert "below SASRec (-4.9%, per test user p < 0.001, 2 seeds so far)" in text
    assert "it improves neither backbone." in text and "-35.0%" not in text and "+41.5%" not in text
    lit_won = pd.DataFrame([{**row("SASRec", "DiffuReason-S", "literal", 3.0, 0.01), "dataset": "beauty",
                             "metric": "ndcg@10"}])                              # the literal reading chosen
    assert "above SASRec (+3.0%" in pages.readings_answer(lit_won)
    assert pages.readings_answer(c.iloc[:1]) == ""                                 # no chosen reading compared
    assert pages.readings_answer(c, metric="recall@10") == pages.readings_answer(pd.DataFrame()) == ""


def test_the_readings_command_shows_a_run_stopped_at_its_cap_only_when_there_is_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRLIB_RESULTS", str(tmp_path))
    _fake(tmp_path, "diffureason-s", 0, "literal", 0.030)
    assert cli.main(["readings"]) == 0 and "stopped at cap" not in capsys.readouterr().out
    cfg = make_config("diffureason-s", "beauty", "cpu", seed=0, experiment="readings", ablation="A.1 rollout")
    cap = cfg.train.epochs
    body = {"metrics": {"valid": {"ndcg@10": 0.04, "recall@10": 0.08}, "test": {"ndcg@10": 0.5, "recall@10": 0.5}},
            "timing": {"best_epoch": cap - 1, "epochs": cap, "train_seconds": 600.0}}   # still improving at the cap
    write_record(tmp_path / "readings" / f"{cfg.run_id}.json", body, command="test", cfg=cfg)
    assert cli.main(["readings"]) == 0
    out = capsys.readouterr().out
    assert "stopped at cap" in out and [ln for ln in out.splitlines() if "A.1 rollout" in ln][0].rstrip().endswith("True")
