"""Beam-width probe of finished Semantic-ID runs whose weights are kept in runs/: does a wider constrained beam
search change their test metrics, and how often is the test target anywhere in the beam?

    python tools/beam_width.py hstu:1 diffureason-h:1 --widths 10 20 50 100 --out results/investigation/beam-width

Each RUN is MODEL:SEED[:TABLE3-ROW] on Beauty, cpu profile. For each beam width W (the trained config uses 20),
the test split is ranked as in the evaluation (history masked) and Recall@K / NDCG@K are computed for the K in
{5, 10, W}; recall@W is the share of test targets that the beam found at all. Nothing retrains. Writes
<out>/<run-id>.json with the command and environment and prints a table.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from drlib.models.sid_base import sid_recommender            # noqa: E402
from drlib.evaluate import evaluate                           # noqa: E402
from drlib.runner import config_from_spec, get_dataset, load_trained_model   # noqa: E402
from drlib.results import write_record                                        # noqa: E402
from drlib.utils import configure_torch, pick_device                          # noqa: E402


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", metavar="RUN", help="MODEL:SEED[:TABLE3-ROW]")
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--widths", type=int, nargs="+", default=[10, 20, 50, 100])
    ap.add_argument("--out", default="results/investigation/beam-width")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if min(args.widths) < 10:
        ap.error("--widths must be >= 10 (Recall@10 needs 10 items)")
    configure_torch(args.threads)
    device = pick_device("auto")
    print(f"{'run':24s} {'seed':>4s} {'W':>4s}  R@10    N@10    R@W     seconds")
    for spec in args.runs:
        cfg = config_from_spec(spec, args.dataset)
        seed = str(cfg.seed)
        model = load_trained_model(cfg)
        if model is None:
            print(f"skipped {spec}: no weights in runs/ for {cfg.run_id}")
            continue
        sid = sid_recommender(model)
        if sid is None:
            raise SystemExit(f"{spec}: {cfg.label} is not a Semantic-ID model (no beam search)")
        model, ds = model.to(device), get_dataset(cfg)
        per_width = []
        for w in args.widths:
            sid.beam_width = w
            t0 = time.perf_counter()
            m = evaluate(model, ds.test, ks=sorted({5, 10, w}), batch_size=cfg.train.eval_batch_size, device=device)
            per_width.append({"beam_width": w, "metrics": m, "seconds": time.perf_counter() - t0})
            print(f"{cfg.label:24s} {seed:>4s} {w:4d}  {m['recall@10']:.4f}  {m['ndcg@10']:.4f}  "
                  f"{m[f'recall@{w}']:.4f}  {per_width[-1]['seconds']:.0f}")
        body = {"trained_beam_width": cfg.model.beam_width if hasattr(cfg.model, "beam_width")
                else cfg.model.backbone.beam_width, "split": "test", "widths": per_width}
        write_record(Path(args.out) / f"{cfg.run_id}.json", body, cfg=cfg, device=device,
                     command="python tools/beam_width.py " + " ".join(shlex.quote(a) for a in argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
