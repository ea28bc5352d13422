"""Tables the notebooks show: our stored results beside the paper's published numbers.

``PAPER_TABLE2`` holds the numbers printed in the paper's Table 2 (reference values to compare against,
never used as results of ours). Our numbers always come from ``results/`` records.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .diffureason.ablations import ABLATIONS
from .registry import MODELS
from .results import load_records, read_record, records_frame, results_dir

METRICS = ("recall@5", "recall@10", "ndcg@5", "ndcg@10")
_PAPER_ROWS = {  # dataset -> label -> (R@5, R@10, N@5, N@10), paper Table 2
    "beauty": {"ReaRec": (0.0439, 0.0674, 0.0278, 0.0353), "LARES": (0.0428, 0.0572, 0.0281, 0.0325),
               "SASRec": (0.0387, 0.0605, 0.0249, 0.0318), "DiffuReason-S": (0.0463, 0.0711, 0.0273, 0.0357),
               "TIGER": (0.0392, 0.0594, 0.0257, 0.0321), "DiffuReason-T": (0.0412, 0.0645, 0.0271, 0.0345),
               "HSTU": (0.0567, 0.0930, 0.0376, 0.0502), "DiffuReason-H": (0.0702, 0.1117, 0.0456, 0.0595)},
    "instruments": {"ReaRec": (0.0867, 0.1089, 0.0734, 0.0807), "LARES": (0.0638, 0.0791, 0.0456, 0.0505),
                    "SASRec": (0.0857, 0.1083, 0.0715, 0.0788),
                    "DiffuReason-S": (0.0889, 0.1174, 0.0753, 0.0845),
                    "TIGER": (0.0865, 0.1062, 0.0736, 0.0799), "DiffuReason-T": (0.0910, 0.1121, 0.0770, 0.0838),
                    "HSTU": (0.1009, 0.1394, 0.0635, 0.0769), "DiffuReason-H": (0.1096, 0.1521, 0.0725, 0.0868)},
    "sports": {"ReaRec": (0.0236, 0.0363, 0.0157, 0.0189), "LARES": (0.0205, 0.0287, 0.0143, 0.0170),
               "SASRec": (0.0233, 0.0350, 0.0154, 0.0190), "DiffuReason-S": (0.0242, 0.0384, 0.0153, 0.0198),
               "TIGER": (0.0233, 0.0379, 0.0150, 0.0197), "DiffuReason-T": (0.0240, 0.0392, 0.0154, 0.0203),
               "HSTU": (0.0418, 0.0674, 0.0274, 0.0361), "DiffuReason-H": (0.0612, 0.0931, 0.0419, 0.0527)},
    "video_games": {"ReaRec": (0.0593, 0.0920, 0.0313, 0.0418), "LARES": (0.0600, 0.0933, 0.0321, 0.0429),
                    "SASRec": (0.0578, 0.0903, 0.0304, 0.0409),
                    "DiffuReason-S": (0.0604, 0.0952, 0.0316, 0.0433),
                    "TIGER": (0.0511, 0.0807, 0.0334, 0.0429), "DiffuReason-T": (0.0545, 0.0830, 0.0356, 0.0448),
                    "HSTU": (0.1110, 0.1738, 0.0731, 0.0945), "DiffuReason-H": (0.1219, 0.1881, 0.0813, 0.1041)},
}
# Our labels whose paper column has another name: Table 2 has one "ReaRec" column; we run both of its variants.
PAPER_LABEL = {"ReaRec-ERL": "ReaRec", "ReaRec-PRL": "ReaRec"}
PAPER_TABLE2 = pd.DataFrame([
    {"dataset": d, "label": lab, **dict(zip(METRICS, vals))}
    for d, rows in _PAPER_ROWS.items() for lab, vals in rows.items()])


# Table 3 (the ablations, run on the HSTU backbone): dataset -> row -> (R@10, N@10)
_PAPER_ABLATION = {
    "beauty": {"DiffuReason": (0.1117, 0.0595), "w/o CoT": (0.1013, 0.0545), "w/o Diffusion": (0.1095, 0.0571),
               "w/o RL": (0.1093, 0.0578), "w/o MSE": (0.1115, 0.0589), "w/o Diffusion+RL": (0.1055, 0.0571),
               "with KL": (0.1048, 0.0558), "with Two-stage": (0.1099, 0.0587)},
    "sports": {"DiffuReason": (0.0931, 0.0527), "w/o CoT": (0.0807, 0.0442), "w/o Diffusion": (0.0887, 0.0496),
               "w/o RL": (0.0915, 0.0510), "w/o MSE": (0.0930, 0.0534), "w/o Diffusion+RL": (0.0831, 0.0449),
               "with KL": (0.0865, 0.0484), "with Two-stage": (0.0922, 0.0519)},
}
PAPER_TABLE3 = pd.DataFrame([{"dataset": d, "row": row, "recall@10": v[0], "ndcg@10": v[1]}
                             for d, rows in _PAPER_ABLATION.items() for row, v in rows.items()])
PAPER_TABLE3_BACKBONE = "HSTU"
# Table 6 (HSTU backbone; Fig. 2 draws it): dataset -> (R, G) -> (train ms/batch, inference s, R@10, N@10);
# (0, 0) is the HSTU baseline. One setting varies at a time around R = 3, G = 8.
_PAPER_TABLE6 = {
    "beauty": {(0, 0): (22.98, 21.81, 0.0930, 0.0502), (1, 8): (39.79, 22.77, 0.1049, 0.0555),
               (2, 8): (46.38, 23.40, 0.1049, 0.0552), (3, 8): (52.55, 24.08, 0.1117, 0.0595),
               (4, 8): (59.23, 24.62, 0.1089, 0.0583), (5, 8): (64.42, 26.03, 0.0967, 0.0525),
               (3, 2): (43.79, 24.08, 0.1059, 0.0570), (3, 4): (46.80, 24.08, 0.1089, 0.0584),
               (3, 16): (63.93, 24.08, 0.1144, 0.0610)},
    "sports": {(0, 0): (36.03, 34.39, 0.0674, 0.0361), (1, 8): (62.04, 35.59, 0.0830, 0.0451),
               (2, 8): (72.12, 36.76, 0.0898, 0.0505), (3, 8): (80.82, 37.71, 0.0931, 0.0527),
               (4, 8): (91.67, 38.73, 0.0911, 0.0518), (5, 8): (101.56, 39.82, 0.0892, 0.0502),
               (3, 2): (67.86, 37.71, 0.0904, 0.0511), (3, 4): (72.87, 37.71, 0.0927, 0.0522),
               (3, 16): (99.36, 37.71, 0.0965, 0.0549)},
}
PAPER_TABLE6 = pd.DataFrame([{"dataset": d, "reasoning_steps": r, "group_size": g, "train_ms_per_batch": v[0],
                              "inference_seconds": v[1], "recall@10": v[2], "ndcg@10": v[3]}
                             for d, rows in _PAPER_TABLE6.items() for (r, g), v in rows.items()])

# The best public numbers on our splits (leave-one-out, full ranking, histories of 20 unless noted), as reference
# values for our backbones (never results of ours). Each with its protocol: "masked" = the user's history items
# removed from the ranking, as our evaluation does; an unmasked number is not directly comparable. Source:
# ../shared/reference/public-numbers.md (each row names where it comes from). Instruments has no public SASRec or
# HSTU number on LETTER's split besides the paper's (the LC-Rec number there is an LLM recommender, left out).
PUBLIC_NUMBERS = pd.DataFrame([
    {"dataset": "beauty", "ours": "SASRec", "model": "RecBole 1.2.1 SASRec (d 64, CE)", "recall@10": 0.0927,
     "ndcg@10": 0.0570, "protocol": "masked; post-LN, prefix augmentation, 53 epochs",
     "source": "run on this kind of machine (public-numbers.md)"},
    {"dataset": "beauty", "ours": "SASRec", "model": "SASRec + sampled softmax (d 64, len 50)", "recall@10": 0.0921,
     "ndcg@10": 0.0531, "protocol": "256 sampled negatives, histories of 50",
     "source": "blondered/transformer_benchmark README"},
    {"dataset": "beauty", "ours": "SASRec", "model": "eSASRec", "recall@10": 0.0928, "ndcg@10": 0.0523,
     "protocol": "histories of 50", "source": "blondered/transformer_benchmark README"},
    {"dataset": "beauty", "ours": "HSTU", "model": "HSTU (re-run by the eSASRec authors)", "recall@10": 0.0788,
     "ndcg@10": 0.0439, "protocol": "item-ID retrieval", "source": "blondered/transformer_benchmark README"},
    {"dataset": "beauty", "ours": "HSTU", "model": "DiffuReason paper, HSTU row", "recall@10": 0.0930,
     "ndcg@10": 0.0502, "protocol": "not stated", "source": "Table 2"},
    {"dataset": "beauty", "ours": "SASRec", "model": "DiffuReason paper, SASRec row", "recall@10": 0.0605,
     "ndcg@10": 0.0318, "protocol": "not stated (equals a BCE-trained SASRec)", "source": "Table 2"},
    {"dataset": "sports", "ours": "SASRec", "model": "SASRec + sampled softmax (d 64, len 50)", "recall@10": 0.0569,
     "ndcg@10": 0.0314, "protocol": "256 sampled negatives, histories of 50",
     "source": "blondered/transformer_benchmark README"},
    {"dataset": "sports", "ours": "SASRec", "model": "eSASRec", "recall@10": 0.0560, "ndcg@10": 0.0323,
     "protocol": "histories of 50", "source": "blondered/transformer_benchmark README"},
    {"dataset": "sports", "ours": "SASRec", "model": "RecBole SASRec (CE, defaults)", "recall@10": 0.048,
     "ndcg@10": 0.0227, "protocol": "RecBole defaults; masking not stated", "source": "RecBole issue 1290"},
    {"dataset": "sports", "ours": "HSTU", "model": "HSTU (re-run by the eSASRec authors)", "recall@10": 0.0437,
     "ndcg@10": 0.0243, "protocol": "item-ID retrieval", "source": "blondered/transformer_benchmark README"},
    {"dataset": "sports", "ours": "HSTU", "model": "DiffuReason paper, HSTU row", "recall@10": 0.0674,
     "ndcg@10": 0.0361, "protocol": "not stated", "source": "Table 2"},
    {"dataset": "sports", "ours": "SASRec", "model": "DiffuReason paper, SASRec row", "recall@10": 0.0350,
     "ndcg@10": 0.0190, "protocol": "not stated", "source": "Table 2"},
    {"dataset": "instruments", "ours": "HSTU", "model": "DiffuReason paper, HSTU row", "recall@10": 0.1394,
     "ndcg@10": 0.0769, "protocol": "not stated", "source": "Table 2"},
    {"dataset": "instruments", "ours": "SASRec", "model": "DiffuReason paper, SASRec row", "recall@10": 0.1083,
     "ndcg@10": 0.0788, "protocol": "not stated", "source": "Table 2"},
])


def backbones_vs_public(records: list[dict], datasets=None, split: str = "test") -> pd.DataFrame:
    """Our backbones' mean R@10 / N@10 over seeds beside :data:`PUBLIC_NUMBERS` (the rows of ``datasets``, all
    unless given), one row per public number: ``dataset``, ``ours``, ``public``, ``protocol``, ``source``,
    ``public recall@10`` / ``ndcg@10``, ``ours recall@10`` / ``ndcg@10`` (NaN without a stored run), ``seeds`` and
    ``ours / public (N@10)``."""
    df = records_frame(records, split)
    public = PUBLIC_NUMBERS if datasets is None else PUBLIC_NUMBERS[PUBLIC_NUMBERS.dataset.isin(list(datasets))]
    rows = []
    for _, p in public.iterrows():
        mine = df[(df.dataset == p.dataset) & (df.label == p.ours)] if len(df) else df
        r10 = mine["recall@10"].mean() if len(mine) else float("nan")
        n10 = mine["ndcg@10"].mean() if len(mine) else float("nan")
        rows.append({"dataset": p.dataset, "ours": p.ours, "public": p.model, "protocol": p.protocol,
                     "source": p.source, "public recall@10": p["recall@10"], "public ndcg@10": p["ndcg@10"],
                     "ours recall@10": r10, "ours ndcg@10": n10,
                     "seeds": int(mine.seed.nunique()) if len(mine) else 0,
                     "ours / public (N@10)": n10 / p["ndcg@10"]})
    return pd.DataFrame(rows, columns=["dataset", "ours", "public", "protocol", "source", "public recall@10",
                                       "public ndcg@10", "ours recall@10", "ours ndcg@10", "seeds",
                                       "ours / public (N@10)"])


def benchmark_records(pattern: str = "recbole-sasrec-*.json", root=None) -> list[dict]:
    """The stored side-by-side library benchmarks (``results/benchmarks/``, written by
    ``benchmarks/recbole_sasrec.py``), smoke runs left out, oldest first."""
    folder = Path(root or results_dir()) / "benchmarks"
    recs = [dict(read_record(p), source_file=f"{folder.parent.name}/benchmarks/{p.name}")   # for pages.sources
            for p in sorted(folder.glob(pattern))]
    return [r for r in recs if not r.get("smoke")]


def benchmark_curves(record: dict) -> pd.DataFrame:
    """One row per (model, epoch) of a benchmark record: ``model``, ``epoch``, ``train_seconds_cum``,
    ``wall_seconds_cum`` and the validation metrics (drlib's evaluator, history masked)."""
    rows = []
    for key, m in record["models"].items():
        for c in m["curve"]:
            rows.append({"model": m["label"], **c})
    return pd.DataFrame(rows)


def benchmark_summary(record: dict) -> pd.DataFrame:
    """Per model of a benchmark record: best epoch, epochs run, training seconds, test metrics, and the seconds
    to reach the target of ``time_to_target`` (RecBole's best validation N@10)."""
    tt = record.get("time_to_target") or {}
    reach = (tt.get("train_seconds") or {})
    rows = []
    for key, m in record["models"].items():
        rows.append({"model": m["label"], "best epoch": m["best_epoch"], "epochs": m["epochs_run"],
                     "train s": m["train_seconds"], **{f"test {k}": m["test"][k] for k in METRICS},
                     "s to target": reach.get(key)})
    return pd.DataFrame(rows)


# The backbone under each DiffuReason variant (Table 3 rows are named without it).
BACKBONE_OF = {m: MODELS[e.backbone].label for m, e in MODELS.items() if e.backbone}   # diffureason-s -> SASRec


def summary(records: list[dict], split: str = "test") -> pd.DataFrame:
    """Mean, std and seed count per (dataset, label, profile) of our stored runs."""
    df = records_frame(records, split)
    if df.empty:
        return df
    g = df.groupby(["dataset", "label", "profile"])
    out = g[list(METRICS)].mean()
    std = g[list(METRICS)].std(ddof=1).fillna(0.0).add_suffix(" std")
    extra = g.agg(seeds=("seed", "nunique"), train_seconds=("train_seconds", "mean"),
                  epochs=("epochs", "mean"), train_ms_per_batch=("train_ms_per_batch", "mean"),
                  eval_seconds=("eval_seconds", "mean"), mixed_devices=("mixed devices", "any"))
    return pd.concat([out, std, extra], axis=1).reset_index()


def compare_with_paper(experiment: str = "main", profile: str | None = None) -> pd.DataFrame:
    """Our mean test metrics beside Table 2, one row per (dataset, label, metric)."""
    recs = load_records(experiment) if profile is None else load_records(experiment, profile=profile)
    ours = summary(recs)
    rows = []
    for _, r in ours.iterrows():
        paper = PAPER_TABLE2[(PAPER_TABLE2.dataset == r.dataset) & (PAPER_TABLE2.label == PAPER_LABEL.get(r.label, r.label))]
        for m in METRICS:
            p = float(paper[m].iloc[0]) if len(paper) else float("nan")
            rows.append({"dataset": r.dataset, "model": r.label, "profile": r.profile, "metric": m,
                         "ours (mean)": r[m], "ours (std)": r[f"{m} std"], "seeds": int(r.seeds),
                         "paper": p, "ours - paper": r[m] - p})
    return pd.DataFrame(rows)


def improvement(records: list[dict], base_label: str, new_label: str, split: str = "test") -> pd.DataFrame:
    """Per dataset and metric: base and new means over seeds, the difference, and the relative change in %.

    Also the per-seed paired differences' mean and std where both models ran the same seeds.
    """
    df = records_frame(records, split)
    rows = []
    if df.empty:
        return pd.DataFrame(rows)
    for d, g in df.groupby("dataset"):
        a, b = g[g.label == base_label].set_index("seed"), g[g.label == new_label].set_index("seed")
        if a.empty or b.empty:
            continue
        common = a.index.intersection(b.index)
        for m in METRICS:
            diff = (b.loc[common, m] - a.loc[common, m]) if len(common) else pd.Series(dtype=float)
            rows.append({"dataset": d, "metric": m, base_label: a[m].mean(), new_label: b[m].mean(),
                         "difference": b[m].mean() - a[m].mean(),
                         "improvement %": 100 * (b[m].mean() / a[m].mean() - 1),
                         "paired seeds": len(common),
                         "paired diff std": diff.std(ddof=1) if len(common) > 1 else float("nan")})
    return pd.DataFrame(rows)


def ablation_table(records: list[dict]) -> pd.DataFrame:
    """Table 3 from stored runs: one row per (dataset, backbone, ablation row), means over the seeds present.

    Columns: validation NDCG@10 (what model selection sees), test R@10 / N@10, the test N@10 change against the
    full model of the same backbone and seeds (``vs full % (N@10)``), and the paper's Table 3 numbers with their change
    against the paper's full model, for the backbone the paper ran them on (HSTU); ``NaN`` elsewhere."""
    if not records:
        return pd.DataFrame()
    test, valid = records_frame(records, "test"), records_frame(records, "valid")
    test["valid ndcg@10"] = valid["ndcg@10"].to_numpy()
    test["backbone"] = test.model.map(BACKBONE_OF).fillna(test.model)
    # the full model is stored under the model's own label (e.g. DiffuReason-H); Table 3 calls it DiffuReason
    test["row"] = [lab if lab in ABLATIONS else "DiffuReason" for lab in test.label]
    rows = []
    for (d, bb), g in test.groupby(["dataset", "backbone"], sort=False):
        seeds_full = set(g[g.row == "DiffuReason"].seed)
        paper = PAPER_TABLE3[PAPER_TABLE3.dataset == d].set_index("row")
        for row, h in g.groupby("row", sort=False):
            p = paper.loc[row] if bb == PAPER_TABLE3_BACKBONE and row in paper.index else None
            # the change against the full model uses the seeds both have
            both = sorted(set(h.seed) & seeds_full)
            ours_vs = float("nan")
            if both:
                mine = h[h.seed.isin(both)]["ndcg@10"].mean()
                ref = g[(g.row == "DiffuReason") & g.seed.isin(both)]["ndcg@10"].mean()
                ours_vs = 100 * (mine / ref - 1)
            rows.append({"dataset": d, "backbone": bb, "row": row, "seeds": ",".join(map(str, sorted(h.seed))),
                         "valid ndcg@10": h["valid ndcg@10"].mean(), "recall@10": h["recall@10"].mean(),
                         "ndcg@10": h["ndcg@10"].mean(), "vs full % (N@10)": ours_vs,
                         "paper recall@10": p["recall@10"] if p is not None else float("nan"),
                         "paper ndcg@10": p["ndcg@10"] if p is not None else float("nan"),
                         "paper vs full % (N@10)": (100 * (p["ndcg@10"] / paper.loc["DiffuReason", "ndcg@10"] - 1)
                                             if p is not None else float("nan"))})
    order = {r: i for i, r in enumerate(ABLATIONS)}
    out = pd.DataFrame(rows)
    return out.sort_values(["dataset", "backbone", "row"], key=lambda c: c.map(order) if c.name == "row" else c,
                           kind="stable").reset_index(drop=True)
