"""Popularity probe (drlib.probes.recommendation_spread) of finished runs whose weights are kept in runs/.

    python tools/popularity.py diffureason-h:1 hstu:1 "diffureason-h:1:w/o RL" --out results/investigation/popularity

Each RUN is MODEL:SEED[:TABLE3-ROW] on Beauty, cpu profile (the row's run is read from the ablation folder). For
each, the top-10 lists of all test users (history masked, as in the evaluation) are split over the item groups
IG-0..IG-3 (equal-sized item sets by training popularity, IG-0 rarest). Writes <out>/<run-id>.json with the
command and environment and prints a table. Runs without kept weights are skipped with a message.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from drlib.probes import recommendation_spread                # noqa: E402
from drlib.runner import config_from_spec, get_dataset, load_trained_model   # noqa: E402
from drlib.results import write_record                                        # noqa: E402
from drlib.utils import configure_torch, pick_device                          # noqa: E402


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", metavar="RUN", help="MODEL:SEED[:TABLE3-ROW]")
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default="results/investigation/popularity")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    configure_torch(args.threads)
    device = pick_device("auto")
    rows = []
    for spec in args.runs:
        cfg = config_from_spec(spec, args.dataset)
        seed = str(cfg.seed)
        model = load_trained_model(cfg)
        if model is None:
            print(f"skipped {spec}: no weights in runs/ for {cfg.run_id}")
            continue
        out = recommendation_spread(model.to(device), get_dataset(cfg), k=args.k, device=device)
        write_record(Path(args.out) / f"{cfg.run_id}.json", out, cfg=cfg, device=device,
                     command="python tools/popularity.py " + " ".join(shlex.quote(a) for a in argv))
        rows.append((cfg.label, seed, out))
    print(f"{'run':24s} {'seed':>4s}  top-{args.k} slots in IG-0 / IG-1 / IG-2 / IG-3   coverage")
    for label, seed, out in rows:
        share = " / ".join(f"{100 * v:4.1f}%" for v in out["group_share"])
        print(f"{label:24s} {seed:>4s}  {share}   {100 * out['coverage']:.1f}%")
    if rows:
        t = " / ".join(f"{100 * v:4.1f}%" for v in rows[0][2]["target_share"])
        print(f"{'(test targets)':24s}       {t}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
