import json

from drlib.report import PAPER_TABLE2, compare_with_paper


def _record(label, seed, r10):
    m = {"recall@5": r10 / 2, "recall@10": r10, "ndcg@5": r10 / 4, "ndcg@10": r10 / 3}
    return {"label": label, "run_id": f"{label}-{seed}",
            "config": {"dataset": "beauty", "model": label.lower(), "profile": "cpu", "seed": seed},
            "metrics": {"valid": m, "test": m},
            "timing": {"train_seconds": 1.0, "epochs": 1, "train_ms_per_batch": 1.0, "eval_seconds": 1.0}}


def test_compare_with_paper_maps_rearec_variants_and_averages_seeds(tmp_path, monkeypatch):
    monkeypatch.setenv("DRLIB_RESULTS", str(tmp_path))
    (tmp_path / "main").mkdir()
    for i, (lab, seed, r10) in enumerate([("ReaRec-ERL", 0, 0.05), ("ReaRec-ERL", 1, 0.07), ("SASRec", 0, 0.06)]):
        (tmp_path / "main" / f"{i}.json").write_text(json.dumps(_record(lab, seed, r10)))
    t = compare_with_paper("main").set_index(["model", "metric"])
    paper_rearec = PAPER_TABLE2[(PAPER_TABLE2.dataset == "beauty") & (PAPER_TABLE2.label == "ReaRec")]
    row = t.loc[("ReaRec-ERL", "recall@10")]
    assert row["paper"] == float(paper_rearec["recall@10"].iloc[0])
    assert abs(row["ours (mean)"] - 0.06) < 1e-12 and row["seeds"] == 2
    assert abs(row["ours - paper"] - (0.06 - row["paper"])) < 1e-12
