"""Per-term gradient diagnostic of DiffuReason-S (drlib.diffureason.diagnostics) on Beauty training batches.

    python tools/grad_terms.py --batches 20 --out results/investigation/grad-terms

Two models of the same config (`make_config("diffureason-s", "beauty", "cpu", seed 0)` plus any --set):
"init", the freshly initialised model, and "trained", the best weights of the finished main-table run
(runs/<experiment>/<run-id>/model.pt; skipped if absent). Training batches only: no validation or test data.
Writes <out>/<name>.json (per-batch rows and their mean) and prints a compact table.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from drlib.registry import make_config                      # noqa: E402
from drlib.diffureason.diagnostics import consistency, summarise, term_gradients   # noqa: E402
from drlib.evaluate import trim_padding                    # noqa: E402
from drlib.runner import build_for, get_dataset, load_trained_model   # noqa: E402
from drlib.results import write_record                    # noqa: E402
from drlib.utils import configure_torch                    # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--out", default="results/investigation/grad-terms")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    configure_torch(args.threads)
    cfg = make_config("diffureason-s", "beauty", "cpu", 0, args.overrides)
    ds = get_dataset(cfg)
    g = torch.Generator().manual_seed(123)
    perm = torch.randperm(len(ds.train_targets), generator=g)
    X, Y = torch.from_numpy(ds.train_inputs), torch.from_numpy(ds.train_targets)
    models = {}
    torch.manual_seed(0)
    models["init"] = build_for(cfg, ds)
    trained = load_trained_model(cfg)
    if trained is not None:
        models["trained"] = trained
    out = Path(args.out)
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
        rec = write_record(out / f"{name}.json", body,
                           command="python tools/grad_terms.py " + " ".join(argv or sys.argv[1:]))
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


if __name__ == "__main__":
    main()
