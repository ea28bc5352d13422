"""Time a few training steps (and optionally a profile or full-catalogue retrieval) of one model.

    python -m drlib investigate step-time tiger --steps 6                  # fp32 TIGER steps, cpu profile, Beauty
    python -m drlib investigate step-time tiger --bf16 --steps 6           # the same under bf16 autocast
    python -m drlib investigate step-time tiger --steps 6 --set model.d_model=64 --set model.d_ff=256 --set model.d_kv=32
    python -m drlib investigate step-time sasrec --profile-step            # torch.profiler table of one step
    python -m drlib investigate step-time tiger --eval-users 1024          # full_scores (beam search) on 1024 valid users
    python -m drlib investigate step-time tiger --eval-users 2048 --no-cached-decoding   # recomputing every prefix
    python -m drlib investigate step-time tiger --steps 0 --full-valid     # the training loop's validation pass
    python -m drlib investigate step-time tiger --steps 0 --check-cached 512   # cached vs recomputing beams

Steps use the epoch-0 batches of the training loop (seed 0), so a step's length varies with its batch's history
length; each step is printed with its input shape. Beauty and the cpu profile unless --dataset / --profile say
otherwise. Nothing is stored: this is how the CPU costs quoted in the book's notes on speed (book/notes/speed.md: "TIGER at
Table 5's size on the 2-core CPU: hours, not minutes", the cpu-profile SASRec step) were taken.
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import profile

from ..evaluate import evaluate, trim_padding
from ..models.sid_base import sid_recommender
from ..registry import MODELS, make_config
from ..runner import build_for, get_dataset
from ..train import epoch_batches
from ..utils import configure_torch
from .common import add_config_args


HELP = "time training steps of one model, a torch.profiler table, full-catalogue retrieval"
STORES = "nothing (prints)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", choices=list(MODELS), metavar="MODEL", help="model registry name, e.g. tiger")
    p.add_argument("--steps", type=int, default=4, help="timed training steps (default: 4)")
    p.add_argument("--bf16", action="store_true", help="steps under bf16 autocast")
    p.add_argument("--profile-step", action="store_true", help="print a torch.profiler table of one step")
    p.add_argument("--eval-users", type=int, default=0, metavar="N",
                   help="time full_scores on this many validation users")
    p.add_argument("--full-valid", action="store_true",
                   help="time drlib.evaluate over the whole validation split (what each epoch of training runs)")
    p.add_argument("--no-cached-decoding", action="store_true",
                   help="TIGER: beam search recomputes every prefix instead of using the key/value cache")
    p.add_argument("--check-cached", type=int, default=0, metavar="N",
                   help="TIGER: compare the cached decoder's beams with the recomputing path's on N validation users")
    add_config_args(p, threads=None)


def _cached_decoder(model, name: str, option: str):
    sid = sid_recommender(model)
    if not hasattr(sid, "cached_decoding"):
        raise ValueError(f"{option}: {name} has no cached decoder (only TIGER and DiffuReason-T)")
    return sid


def main(args: argparse.Namespace, argv: list[str]) -> int:
    cfg = make_config(args.model, args.dataset, args.profile, 0, args.overrides)
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
        with profile() as p:
            step(batches[min(1, len(batches) - 1)])
        print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    if args.no_cached_decoding:
        _cached_decoder(model, args.model, "--no-cached-decoding").cached_decoding = False
    if args.eval_users:
        model.eval()
        x = trim_padding(torch.from_numpy(ds.valid.inputs[:args.eval_users]))
        t0 = time.perf_counter()
        with torch.no_grad():
            model.full_scores(x)
        print(f"full_scores on {len(x)} validation users: {time.perf_counter() - t0:.1f} s")
    if args.check_cached:
        sid = _cached_decoder(model, args.model, "--check-cached")
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
        t0 = time.perf_counter()
        evaluate(model, ds.valid, ks=cfg.eval.ks, batch_size=cfg.train.eval_batch_size)
        print(f"validation pass over {len(ds.valid)} users: {time.perf_counter() - t0:.1f} s")
    return 0
