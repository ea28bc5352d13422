"""Per-term gradient diagnostic of DiffuReason-S (:mod:`drlib.diffureason.diagnostics`) on training batches.

    python -m drlib investigate grad-terms --batches 20

Two models of the same config (``make_config("diffureason-s", DATASET, PROFILE, seed 0)`` plus any --set; Beauty
and the cpu profile by default): "init", the freshly initialised model, and "trained", the best weights of the
finished main-table run (runs/main/<run-id>/model.pt; skipped if absent). Training batches only: no validation
or test data. Writes <out>/<name>.json (default out: results/investigation/grad-terms; per-batch rows and their
mean) and prints a compact table.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ..diffureason.diagnostics import consistency, summarise, term_gradients
from ..evaluate import trim_padding
from ..registry import make_config
from ..results import results_dir, write_record
from ..runner import build_for, get_dataset, load_trained_model
from ..utils import configure_torch
from .common import add_config_args, command_line

HELP = "where the gradient of each DiffuReason-S loss term goes"
STORES = "results/investigation/grad-terms/"
FOLDER = ("investigation", "grad-terms")
MODEL = "diffureason-s"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batches", type=int, default=20, help="training batches per model (default: 20)")
    p.add_argument("--batch-size", type=int, default=512, help="examples per batch (default: 512)")
    p.add_argument("--out", default=None, metavar="DIR", help="folder of the records (default: "
                   "results/investigation/grad-terms)")
    add_config_args(p, threads=2)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    configure_torch(args.threads)
    cfg = make_config(MODEL, args.dataset, args.profile, 0, args.overrides)
    ds = get_dataset(cfg)
    g = torch.Generator().manual_seed(123)
    perm = torch.randperm(len(ds.train_targets), generator=g)
    X, Y = torch.from_numpy(ds.train_inputs), torch.from_numpy(ds.train_targets)
    torch.manual_seed(0)
    models = {"init": build_for(cfg, ds)}
    trained = load_trained_model(cfg)
    if trained is not None:
        models["trained"] = trained
    else:
        print(f"no kept weights for {cfg.run_id} in runs/: only the initialised model")
    out_dir = Path(args.out) if args.out else results_dir().joinpath(*FOLDER)
    for name, model in models.items():
        rows, vecs, t0 = [], [], time.perf_counter()
        torch.manual_seed(1)
        for b in range(args.batches):
            idx = perm[b * args.batch_size:(b + 1) * args.batch_size]
            v = {}
            rows.append(term_gradients(model, trim_padding(X[idx]), Y[idx], vectors=v))
            vecs.append(v)
        mean = summarise(rows)
        mean.update(consistency(vecs))
        body = {"model": name, "run_id": cfg.run_id, "config_hash": cfg.config_hash, "batches": args.batches,
                "batch_size": args.batch_size, "seconds": time.perf_counter() - t0, "mean": mean, "rows": rows}
        rec = write_record(out_dir / f"{name}.json", body, command=command_line(argv))
        print(f"== {name} ({args.batches} batches, {rec['seconds']:.0f} s)")
        for k in ("rec", "diff", "align"):
            if f"{k}_mu_norm" in mean:
                print(f"  {k:6s} w={mean[k + '_weight']:.2f}  |d/dmu| {mean[k + '_mu_norm']:.3g}  backbone "
                      f"{mean[k + '_backbone_norm']:.3g}  reasoner {mean[k + '_reasoner_norm']:.3g}  denoiser "
                      f"{mean[k + '_denoiser_norm']:.3g}  cos(rec) {mean[k + '_cos_rec']:+.3f}  signal "
                      f"{mean[k + '_signal']:.3f}  cos(rec, means) {mean[k + '_cos_rec_mean']:+.3f}")
        print(f"  sigma mean {mean['sigma_mean']:.4f}  at min {mean['sigma_at_min']:.3f}  at max "
              f"{mean['sigma_at_max']:.3f}  |mu| {mean['mu_norm']:.3f}  reward {mean.get('log_reward', 0):.4f}  "
              f"informative groups {mean.get('log_informative_groups', 0):.3f}")
    return 0
