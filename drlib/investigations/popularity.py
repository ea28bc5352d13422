"""Popularity probe (:func:`drlib.probes.recommendation_spread`) of finished runs whose weights are kept in runs/.

    python -m drlib investigate popularity diffureason-h:1 hstu:1 "diffureason-h:1:w/o RL"

Each RUN is MODEL:SEED[:TABLE3-ROW] (Beauty and the cpu profile unless --dataset / --profile say otherwise; a
Table 3 row's run is read from the ablation experiment). For each, the top-k lists of all test users (history
masked, as in the evaluation) are split over the item groups IG-0..IG-3 (equal-sized item sets by training
popularity, IG-0 rarest). Writes <out>/<run-id>.json (default out: results/investigation/popularity) with the
command and environment, and prints a table. Runs without kept weights are skipped with a message.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..probes import recommendation_spread
from ..results import results_dir, write_record
from ..runner import get_dataset
from ..utils import configure_torch, pick_device
from .common import add_config_args, command_line, run_spec, trained_runs

HELP = "how finished runs' top-k lists spread over the item-popularity groups"
STORES = "results/investigation/popularity/"
FOLDER = ("investigation", "popularity")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", type=run_spec, metavar="RUN", help="MODEL:SEED[:TABLE3-ROW], e.g. hstu:1")
    p.add_argument("--k", type=int, default=10, help="length of the recommendation lists (default: 10)")
    p.add_argument("--out", default=None, metavar="DIR", help="folder of the records (default: "
                   "results/investigation/popularity)")
    add_config_args(p, threads=2)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    configure_torch(args.threads)
    device = pick_device("auto")
    out_dir = Path(args.out) if args.out else results_dir().joinpath(*FOLDER)
    rows = []
    for spec, cfg, model in trained_runs(args):
        out = recommendation_spread(model.to(device), get_dataset(cfg), k=args.k, device=device)
        write_record(out_dir / f"{cfg.run_id}.json", out, cfg=cfg, device=device, command=command_line(argv))
        rows.append((cfg.label, str(cfg.seed), out))
    print(f"{'run':24s} {'seed':>4s}  top-{args.k} slots in IG-0 / IG-1 / IG-2 / IG-3   coverage")
    for label, seed, out in rows:
        share = " / ".join(f"{100 * v:4.1f}%" for v in out["group_share"])
        print(f"{label:24s} {seed:>4s}  {share}   {100 * out['coverage']:.1f}%")
    if rows:
        t = " / ".join(f"{100 * v:4.1f}%" for v in rows[0][2]["target_share"])
        print(f"{'(test targets)':24s}       {t}")
    return 0
