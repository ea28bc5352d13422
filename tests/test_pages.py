"""What the book's pages lead with (drlib.pages): findings computed from records, the verdict with its interval,
tables that carry their CSV, and pages that say "not yet measured" instead of failing when nothing is stored."""
import base64
import io
import math
import re

import numpy as np
import pandas as pd
import pytest

from drlib import pages
from drlib.paired import encode_ranks, per_user
from drlib.report import PAPER_TABLE2
from drlib.results import records_frame


def _record(label, model, dataset, seed, ndcg10, recall10=None, profile="cpu"):
    recall10 = 2 * ndcg10 if recall10 is None else recall10
    metrics = {"recall@5": recall10 * 0.7, "recall@10": recall10, "ndcg@5": ndcg10 * 0.8, "ndcg@10": ndcg10}
    return {"label": label, "run_id": f"{model}-{dataset}-{profile}-seed{seed}",
            "config": {"dataset": dataset, "model": model, "profile": profile, "seed": seed,
                       "model_config": {"module": {"reasoning_steps": 3, "group_size": 8}}},
            "metrics": {"test": metrics, "valid": metrics},
            "timing": {"train_seconds": 60.0, "epochs": 10, "train_ms_per_batch": 12.0, "eval_seconds": 1.0},
            "history": [{"epoch": 1, "ndcg@10": ndcg10 / 2}, {"epoch": 2, "ndcg@10": ndcg10}]}


def _csv(html: str) -> str:
    href = re.search(r'href="data:text/csv;charset=utf-8;base64,([^"]+)"', html).group(1)
    return base64.b64decode(href).decode()


def test_paired_improvement_uses_the_seeds_both_models_ran():
    base = [0.050, 0.052, 0.054]
    new = [0.055, 0.056, 0.060]
    recs = [_record("SASRec", "sasrec", "beauty", s, v) for s, v in enumerate(base)]
    recs += [_record("DiffuReason-S", "diffureason-s", "beauty", s, v) for s, v in enumerate(new)]
    recs.append(_record("DiffuReason-S", "diffureason-s", "beauty", 7, 0.5))       # no backbone run of seed 7
    df = pd.DataFrame([{**r["metrics"]["test"], "label": r["label"], "dataset": "beauty", "seed": r["config"]["seed"]}
                       for r in recs])
    got = pages.paired_improvement(df, "beauty", "SASRec", "DiffuReason-S", "ndcg@10")
    d = np.array(new) - np.array(base)
    half = 4.302652729911275 * d.std(ddof=1) / math.sqrt(3)          # t_{0.975, 2}
    assert got["seeds"] == 3
    assert got["ours %"] == pytest.approx(100 * d.mean() / np.mean(base))
    assert got["ci low %"] == pytest.approx(100 * (d.mean() - half) / np.mean(base))
    assert got["ci high %"] == pytest.approx(100 * (d.mean() + half) / np.mean(base))
    one = pages.paired_improvement(df[df.seed.isin([0, 7])], "beauty", "SASRec", "DiffuReason-S", "ndcg@10")
    assert one["seeds"] == 1 and math.isnan(one["ci low %"])


def test_verdict_has_every_pair_of_table2_and_says_what_is_not_measured():
    page = pages.verdict([])
    t = page.table.data
    assert len(t) == 3 * 4 * 2 and set(t.seeds) == {0}
    row = t[(t.model == "DiffuReason-H") & (t.dataset == "sports") & (t.metric == "ndcg@10")].iloc[0]
    assert row["paper %"] == pytest.approx(100 * (0.0527 / 0.0361 - 1))
    assert "not yet measured on the strong backbones; see `results/archive/`" in page.finding.text
    assert "12 of 12" in page.finding.text and "+46.0%" in page.finding.text
    assert page.figure.png()[:8] == b"\x89PNG\r\n\x1a\n"


def test_verdict_with_measured_pairs_reports_the_interval():
    recs = [_record("SASRec", "sasrec", "beauty", s, 0.050 + 0.001 * s) for s in range(3)]
    recs += [_record("DiffuReason-S", "diffureason-s", "beauty", s, 0.056 + 0.001 * s + 0.0005 * (s == 1))
             for s in range(3)]
    page = pages.verdict(recs)
    t = page.table.data
    mine = t[(t.model == "DiffuReason-S") & (t.dataset == "beauty") & (t.metric == "ndcg@10")].iloc[0]
    assert mine.seeds == 3 and mine["ci low %"] < mine["ours %"] < mine["ci high %"]
    assert f"DiffuReason-S on Beauty, literal: {mine['ours %']:+.1f}%" in page.finding.text
    assert "11 of 12 pairs not yet measured" in page.finding.text
    assert "Our interval contains the paper's improvement in" in page.finding.text
    assert "two seeds" not in page.finding.text
    two = pages.verdict([r for r in recs if r["config"]["seed"] < 2]).finding.text
    assert "two seeds has one degree of freedom, so it is wide (DiffuReason-S on Beauty, literal)" in two
    shown = page.table.shown
    assert shown.loc[(shown.backbone == "SASRec") & (shown.dataset == "Beauty"), "ours N@10 (95% CI)"].iloc[0] \
        .startswith(f"{mine['ours %']:+.1f}% (")


def test_the_verdict_figure_says_where_an_interval_past_its_axis_ends():
    recs = [_record("SASRec", "sasrec", "beauty", s, 0.050) for s in range(2)]
    recs += [_record("DiffuReason-S", "diffureason-s", "beauty", s, v) for s, v in enumerate((0.045, 0.020))]
    t = pages.verdict_table(recs)
    low = t[(t.model == "DiffuReason-S") & (t.dataset == "beauty") & (t.metric == "ndcg@10")]["ci low %"].iloc[0]
    ax = pages.verdict_figure(t).axes[0]
    assert low < ax.get_xlim()[0]                                  # two seeds far apart: the interval is cut off
    assert f"◂ to {low:+.0f}%" in [x.get_text() for x in ax.texts]
    base = [_record("SASRec", "sasrec", "beauty", s, 0.050) for s in range(3)]
    near = [_record("DiffuReason-S", "diffureason-s", "beauty", s, v) for s, v in enumerate((0.045, 0.0451, 0.0449))]
    ax = pages.verdict_figure(pages.verdict_table(base + near)).axes[0]
    assert not any(x.get_text().startswith("◂") for x in ax.texts)  # a narrow one fits and is drawn whole


def test_table_shows_compact_text_and_downloads_the_full_table():
    data = pd.DataFrame({"model": ["SASRec", "HSTU"], "ndcg@10": [0.0557123456, 0.055], "extra": [1, 2]})
    shown = pd.DataFrame({"model": data.model, "N@10": data["ndcg@10"].map("{:.4f}".format)})
    html = pages.Table(shown, data, "demo", "Note with `code`.")._repr_html_()
    assert 'download="demo.csv"' in html and "0.0557<" in html and "<code>code</code>" in html
    back = pd.read_csv(io.StringIO(_csv(html)))
    pd.testing.assert_frame_equal(back, data)


def test_main_results_page_from_records():
    recs = [_record("SASRec", "sasrec", "beauty", s, 0.0557 + 0.001 * s) for s in range(3)]
    recs += [_record("HSTU", "hstu", "beauty", 0, 0.055)]
    page = pages.main_results(recs, ["beauty", "instruments"], ["sasrec", "diffureason-s", "hstu"])
    text = page.finding.text
    paper_s = PAPER_TABLE2.set_index(["dataset", "label"]).loc[("beauty", "SASRec"), "ndcg@10"]
    assert f"SASRec {0.0567:.4f} (3 seeds, paper {paper_s:.4f}" in text
    assert "DiffuReason-S: not yet measured" in text and "+12.3%" in text
    shown = page.table.shown
    assert "dataset" not in shown.columns and list(shown.model) == ["SASRec", "DiffuReason-S", "HSTU"]
    assert shown.loc[shown.model == "DiffuReason-S", "N@10"].iloc[0] == "–"
    assert "Nothing measured yet on Instruments" in page.table.note
    assert set(page.table.data.dataset) == {"beauty", "instruments"}           # the CSV keeps every row
    two = pages.main_results(recs + [_record("HSTU", "hstu", "instruments", 0, 0.08)], ["beauty", "instruments"],
                             ["sasrec", "hstu"]).finding.text
    assert "). On Instruments, HSTU 0.0800 (1 seed" in two                  # each dataset a sentence


@pytest.mark.parametrize("make", [
    lambda: pages.main_results([], ["beauty"], ["sasrec", "diffureason-s"]),
    lambda: pages.ablations([], "beauty"),
    lambda: pages.ablations([], "synthetic"),
    lambda: pages.efficiency(pd.DataFrame(), "beauty"),
    lambda: pages.sensitivity(pages.sensitivity_frame({}), "diffureason-s", "beauty"),
    lambda: pages.sensitivity(pages.sensitivity_frame({}), "diffureason-h", "synthetic"),
    lambda: pages.verdict([], datasets=["synthetic"]),
    lambda: pages.trajectories([], "diffureason-h"),
    lambda: pages.sparsity_groups(pages.groups_frame([]), "hstu", "diffureason-h"),
])
def test_pages_without_records_say_so_and_still_draw_a_figure(make):
    page = make()
    assert "not yet measured" in page.finding.text
    assert page.finding.text.startswith("**Paper")
    assert page.figure.png()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<table" in page.table._repr_html_()


def test_sparsity_groups_and_trajectories_from_probe_records():
    def probe(label, model, seed, values):
        groups = [{"grouping": g, "group": f"{g[0].upper()}G-{i}", "stage": "diffusion", "ndcg@10": v}
                  for g in ("user", "item") for i, v in enumerate(values)]
        return {"label": label, "config": {"seed": seed}, "stages": ["step 1", "diffusion"], "groups": groups,
                "stage_metrics": {"step 1": {"recall@10": 0.05, "ndcg@10": 0.02},
                                  "diffusion": {"recall@10": 0.08, "ndcg@10": 0.04}},
                "median_rank": {"step 1": 300.0, "diffusion": 80.0}, "similarity": [[1.0, 0.5], [0.5, 1.0]],
                "sample_ranks": [[300, 80], [20, 3]]}
    probes = [probe("HSTU", "hstu", 1, [0.01, 0.02, 0.03, 0.04]),
              probe("DiffuReason-H", "diffureason-h", 1, [0.02, 0.02, 0.03, 0.02])]
    page = pages.sparsity_groups(pages.groups_frame(probes), "hstu", "diffureason-h")
    assert "better in 2 of 8 groups, from -50% (IG-3) to +100% (IG-0)" in page.finding.text
    traj = pages.trajectories(probes[1:], "diffureason-h")
    assert "from 0.0200 at step 1 to 0.0400 after diffusion" in traj.finding.text
    assert "median target rank goes from 300 to 80" in traj.finding.text
    assert page.figure.png()[:4] == traj.figure.png()[:4] == b"\x89PNG"


def test_trajectories_say_how_alike_the_later_thinking_tokens_are():
    def probe(cos23):
        stages = ["step 1", "step 2", "step 3", "diffusion"]
        sim = np.eye(4)
        sim[1, 2] = sim[2, 1] = cos23
        return {"label": "DiffuReason-S", "config": {"seed": 0}, "stages": stages, "groups": [],
                "stage_metrics": {s: {"recall@10": 0.05, "ndcg@10": 0.02} for s in stages},
                "median_rank": {s: 300.0 for s in stages}, "similarity": sim.tolist(), "sample_ranks": [[3, 2, 1, 1]]}
    alike = pages.trajectories([probe(0.99), probe(0.97)], "diffureason-s").finding.text
    assert "cosine between thinking tokens 2 and 3 is 0.980: step 3 points almost where step 2 does" in alike
    same = pages.trajectories([probe(0.99996)], "diffureason-s").finding.text
    assert "tokens 2 and 3 is above 0.999: step 3" in same                # not a rounded "1.000"
    apart = pages.trajectories([probe(0.40)], "diffureason-s").finding.text
    assert "tokens 2 and 3 is 0.400." in apart and "points almost" not in apart
    two = pages.trajectories([{**probe(0.99), "stages": ["step 1", "step 2", "diffusion"],
                               "sample_ranks": [[3, 2, 1]]}], "diffureason-s")
    assert "thinking tokens 2 and" not in two.finding.text          # R = 2: no later token to compare


def test_every_finding_number_comes_from_the_records():
    """The same page with other records says other numbers: nothing in a finding is typed in."""
    a = pages.main_results([_record("SASRec", "sasrec", "beauty", 0, 0.0400)], ["beauty"], ["sasrec"]).finding.text
    b = pages.main_results([_record("SASRec", "sasrec", "beauty", 0, 0.0600)], ["beauty"], ["sasrec"]).finding.text
    assert "0.0400" in a and "0.0600" in b and a.replace("0.0400", "X") != b.replace("0.0600", "X")


def test_the_per_user_table_pairs_users_where_records_store_ranks():
    rng = np.random.default_rng(0)
    base = [rng.integers(0, 300, 2000) for _ in range(2)]
    recs = []
    for s in range(2):
        for label, model, ranks in (("SASRec", "sasrec", base[s]), ("LARES", "lares", np.maximum(base[s] - 20, 0))):
            r = _record(label, model, "beauty", s, float(per_user(ranks, "ndcg@10").mean()))
            r["ranks"] = {"test": encode_ranks(ranks)}
            recs.append(r)
    t = pages.user_paired_table(recs, ["beauty"], n_boot=200)
    row = t.shown.set_index("comparison").loc["LARES vs SASRec"]
    assert row.seeds == "0,1" and row.p == "0.005"                  # 1 / n_boot: no resample crossed 0
    lo, hi = (float(x) for x in row["users 95%"].split(" to "))
    assert 0 < lo < hi
    for r in recs:                                           # without stored ranks: the seed interval only
        del r["ranks"]
    assert pages.user_paired_table(recs, ["beauty"], n_boot=200).shown.set_index("comparison").loc[
        "LARES vs SASRec", "users 95%"] == "–"


def test_every_page_lists_the_records_it_read_with_their_files_and_commands(tmp_path):
    from drlib.registry import make_config
    from drlib.results import read_record, write_record
    cfg = make_config("sasrec", "beauty", "cpu", seed=2)
    run = write_record(tmp_path / "main" / f"{cfg.run_id}.json", {"metrics": {}}, command="python -m drlib train X",
                       cfg=cfg)
    timed = [write_record(tmp_path / "efficiency" / f"{cfg.run_id}-b{n}.json", {"timing": {"n": n}},
                          command=f"bench {n}", cfg=cfg, experiment="efficiency") for n in (10, 30)]
    timed = [read_record(tmp_path / "efficiency" / f"{cfg.run_id}-b{n}.json") for n in (10, 30)]  # one run, two
    from drlib.report import benchmark_records
    write_record(tmp_path / "benchmarks" / "recbole-sasrec-beauty-seed0.json", {"label": "RecBole vs drlib"},
                 command="python3 benchmarks/recbole_sasrec.py --seed 0")
    bench = benchmark_records(root=tmp_path)
    t = pages.sources([run, run, *timed, *bench, {"label": "a library benchmark"}], root=tmp_path)
    assert list(t.data.record) == [f"{tmp_path.name}/main/{cfg.run_id}.json",
                                   f"{tmp_path.name}/efficiency/{cfg.run_id}-b10.json",
                                   f"{tmp_path.name}/efficiency/{cfg.run_id}-b30.json",
                                   f"{tmp_path.name}/benchmarks/recbole-sasrec-beauty-seed0.json"]
    assert list(t.shown.command) == ["python -m drlib train X", "bench 10", "bench 30",
                                     "python3 benchmarks/recbole_sasrec.py --seed 0"]
    assert list(t.shown.seed) == ["2", "2", "2", ""] and set(t.data.config_hash[:3]) == {cfg.config_hash}
    html = t._repr_html_()
    assert "td:nth-child(3), .drlib-wrap-sources td:nth-child(4) {overflow-wrap: anywhere" in html
    assert "nth-child(1)" not in html                                  # the short columns keep their width
    assert re.search(r'<table class="[^"]*\bdrlib-wrap-sources\b', html)    # the rule reaches the table
    assert "read no stored record" in str(pages.sources([{"label": "no run id"}]))


def test_backbones_beside_public_numbers_per_dataset():
    from drlib.report import PUBLIC_NUMBERS
    recs = [_record("SASRec", "sasrec", "sports", s, v) for s, v in enumerate([0.030, 0.034])]
    recs.append(_record("SASRec", "sasrec", "beauty", 0, 0.9))                  # another dataset: never mixed in
    t = pages.public_table(recs, ["sports", "instruments"])
    data = t.data
    assert set(data.dataset) == {"sports", "instruments"}
    assert len(data) == int(PUBLIC_NUMBERS.dataset.isin(["sports", "instruments"]).sum())
    sas = data[(data.dataset == "sports") & (data.ours == "SASRec")]
    assert np.allclose(sas["ours ndcg@10"], 0.032) and (sas.seeds == 2).all()
    esas = sas[sas.public == "eSASRec"].iloc[0]
    assert esas["ours / public (N@10)"] == pytest.approx(0.032 / 0.0323)
    hstu = data[(data.dataset == "sports") & (data.ours == "HSTU")]
    assert hstu["ours ndcg@10"].isna().all() and (hstu.seeds == 0).all()     # no HSTU run: "–", not a number
    assert "(2 seeds)" in t.shown.loc[sas.index[0], "ours"] and "not yet measured" in t.note
    assert "Sports" in set(t.shown.dataset) and "Instruments" in set(t.shown.dataset)
    one = pages.public_table(recs, ["beauty"])                                # one dataset: named in the note
    assert "dataset" not in one.shown.columns and one.note.startswith("Beauty.")
    assert pages.public_table(recs, ["video_games"]).data.empty


def test_the_main_figure_puts_two_datasets_a_row():
    recs = [_record("SASRec", "sasrec", "beauty", 0, 0.05), _record("SASRec", "sasrec", "sports", 0, 0.03)]
    df = records_frame(recs)
    fig = pages.main_figure(df, ["beauty", "sports", "instruments"], ["SASRec", "HSTU"])
    assert [ax.get_title() for ax in fig.axes] == ["Beauty", "Sports", "Instruments"]   # the empty fourth removed
    assert tuple(fig.get_size_inches())[0] == 10 and fig.axes[2].get_subplotspec().rowspan.start == 1
    assert all(ax.get_yticklabels()[0].get_visible() for ax in (fig.axes[0], fig.axes[2]))   # each row labelled
    assert len(pages.main_figure(df, ["beauty"], ["SASRec"]).axes) == 1
