"""Time a few training steps (and optionally a profile or full-catalogue retrieval) of one model on real data.

    python tools/step_time.py tiger --steps 6                       # fp32 TIGER steps, cpu profile, Beauty
    python tools/step_time.py tiger --bf16 --steps 6                # the same under bf16 autocast
    python tools/step_time.py tiger --steps 6 --set model.d_model=64 --set model.d_ff=256 --set model.d_kv=32
    python tools/step_time.py sasrec --profile-step                 # torch.profiler table of one step
    python tools/step_time.py tiger --eval-users 1024               # full_scores (beam search) on 1024 valid users
    python tools/step_time.py tiger --eval-users 2048 --no-cached-decoding   # the same, recomputing every prefix
    python tools/step_time.py tiger --steps 0 --full-valid          # the training loop's validation pass
    python tools/step_time.py tiger --steps 0 --check-cached 512    # cached vs recomputing beams, 512 valid users

Steps use the epoch-0 batches of the training loop (seed 0), so a step's length varies with its batch's history
length; each step is printed with its input shape. Nothing is stored: this is how the CPU costs quoted in the
reproduction notes ("TIGER at Table 5's size does not fit the 2-core CPU", the cpu-profile SASRec step) were taken.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from drlib.registry import make_config                       # noqa: E402
from drlib.evaluate import trim_padding                     # noqa: E402
from drlib.models.sid_base import sid_recommender            # noqa: E402
from drlib.runner import build_for, get_dataset             # noqa: E402
from drlib.train import epoch_batches                       # noqa: E402
from drlib.utils import configure_torch                     # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--profile-step", action="store_true", help="print a torch.profiler table of one step")
    ap.add_argument("--eval-users", type=int, default=0, help="time full_scores on this many validation users")
    ap.add_argument("--full-valid", action="store_true",
                    help="time drlib.evaluate over the whole validation split (what each epoch of training runs)")
    ap.add_argument("--no-cached-decoding", action="store_true",
                    help="TIGER: beam search recomputes every prefix instead of using the key/value cache")
    ap.add_argument("--check-cached", type=int, default=0, metavar="N",
                    help="TIGER: compare the cached decoder's beams with the recomputing path's on N validation users")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    cfg = make_config(args.model, args.dataset, "cpu", 0, args.overrides)
    configure_torch(args.threads or cfg.train.num_threads)
    ds = get_dataset(cfg)
    model = build_for(cfg, ds).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    lengths = (ds.train_inputs != 0).sum(1)
    batches = epoch_batches(lengths, cfg.train.batch_size, torch.Generator().manual_seed(0), cfg.train.length_buckets)
    X, Y = torch.from_numpy(ds.train_inputs), torch.from_numpy(ds.train_targets)
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, {len(batches)} batches per epoch")
    model.start_epoch(0)

    def step(idx):
        x, y = trim_padding(X[idx]), Y[idx]
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss, _ = model.compute_loss(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return tuple(x.shape), 1000 * (time.perf_counter() - t0)

    for i, idx in enumerate(batches[:args.steps]):
        shape, ms = step(idx)
        print(f"step {i}: input {shape}, {ms:.0f} ms")
    if args.profile_step:
        from torch.profiler import profile
        with profile() as p:
            step(batches[min(1, len(batches) - 1)])
        print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    if args.no_cached_decoding:
        sid = sid_recommender(model)
        if not hasattr(sid, "cached_decoding"):
            ap.error(f"--no-cached-decoding: {args.model} has no cached decoder (only TIGER and DiffuReason-T)")
        sid.cached_decoding = False
    if args.eval_users:
        model.eval()
        x = trim_padding(torch.from_numpy(ds.valid.inputs[:args.eval_users]))
        t0 = time.perf_counter()
        with torch.no_grad():
            model.full_scores(x)
        print(f"full_scores on {len(x)} validation users: {time.perf_counter() - t0:.1f} s")
    if args.check_cached:
        sid = sid_recommender(model)
        if not hasattr(sid, "cached_decoding"):
            ap.error(f"--check-cached: {args.model} has no cached decoder (only TIGER and DiffuReason-T)")
        sid.eval()
        x = trim_padding(torch.from_numpy(ds.valid.inputs[:args.check_cached]))
        flag = sid.cached_decoding
        sid.cached_decoding = True
        fast = sid.retrieve(x)
        sid.cached_decoding = False
        slow = sid.retrieve(x)
        sid.cached_decoding = flag
        same = (fast.items == slow.items).all(1)
        print(f"cached vs recomputing beams on {len(x)} validation users: identical top-{fast.items.shape[1]} lists "
              f"for {int(same.sum())}, largest score difference {(fast.scores - slow.scores).abs().max():.1e}")
    if args.full_valid:
        from drlib.evaluate import evaluate
        t0 = time.perf_counter()
        evaluate(model, ds.valid, ks=cfg.eval.ks, batch_size=cfg.train.eval_batch_size)
        print(f"validation pass over {len(ds.valid)} users: {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
