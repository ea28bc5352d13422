"""Beam-width probe of finished Semantic-ID runs whose weights are kept in runs/: does a wider constrained beam
search change their test metrics, and how often is the test target anywhere in the beam?

    python -m drlib investigate beam-width tiger:0 diffureason-t:0 --widths 10 20 50 100
    python -m drlib investigate beam-width hstu:1 --set model.head=sid --widths 10 20 50

Each RUN is MODEL:SEED[:TABLE3-ROW] (Beauty and the cpu profile unless --dataset / --profile say otherwise). For
each beam width W (the trained config uses 20), the test split is ranked as in the evaluation (history masked)
and Recall@K / NDCG@K are computed for the K in {5, 10, W}; recall@W is the share of test targets that the beam
found at all. Nothing retrains. Writes <out>/<run-id>.json (default out: results/investigation/beam-width) with
the command and environment, and prints a table.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..evaluate import evaluate
from ..models.sid_base import sid_recommender
from ..results import results_dir, write_record
from ..runner import get_dataset
from ..utils import configure_torch, pick_device
from .common import add_config_args, command_line, run_spec, trained_runs

HELP = "finished Semantic-ID runs ranked with wider beams"
STORES = "results/investigation/beam-width/"
FOLDER = ("investigation", "beam-width")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", type=run_spec, metavar="RUN", help="MODEL:SEED[:TABLE3-ROW], e.g. tiger:0")
    p.add_argument("--widths", type=int, nargs="+", default=[10, 20, 50, 100], metavar="W",
                   help="beam widths, each >= 10 (default: 10 20 50 100)")
    p.add_argument("--out", default=None, metavar="DIR", help="folder of the records (default: "
                   "results/investigation/beam-width)")
    add_config_args(p, threads=2)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    if min(args.widths) < 10:
        raise ValueError("--widths must be >= 10 (Recall@10 needs 10 items)")
    configure_torch(args.threads)
    device = pick_device("auto")
    out_dir = Path(args.out) if args.out else results_dir().joinpath(*FOLDER)
    print(f"{'run':24s} {'seed':>4s} {'W':>4s}  R@10    N@10    R@W     seconds")
    for spec, cfg, model in trained_runs(args):
        sid = sid_recommender(model)
        if sid is None:
            raise ValueError(f"{spec.model}:{spec.seed}: {cfg.label} is not a Semantic-ID model (no beam search; "
                             "HSTU and DiffuReason-H need --set model.head=sid)")
        model, ds = model.to(device), get_dataset(cfg)
        per_width = []
        for w in args.widths:
            sid.beam_width = w
            t0 = time.perf_counter()
            m = evaluate(model, ds.test, ks=sorted({5, 10, w}), batch_size=cfg.train.eval_batch_size, device=device)
            per_width.append({"beam_width": w, "metrics": m, "seconds": time.perf_counter() - t0})
            print(f"{cfg.label:24s} {cfg.seed:>4d} {w:4d}  {m['recall@10']:.4f}  {m['ndcg@10']:.4f}  "
                  f"{m[f'recall@{w}']:.4f}  {per_width[-1]['seconds']:.0f}")
        trained = cfg.model.beam_width if hasattr(cfg.model, "beam_width") else cfg.model.backbone.beam_width
        body = {"trained_beam_width": trained, "split": "test", "widths": per_width}
        write_record(out_dir / f"{cfg.run_id}.json", body, cfg=cfg, device=device, command=command_line(argv))
    return 0
