"""Side by side, in one process: a training step of the strong backbones with and without this issue's speed-ups.

    python tools/speed_ab.py sasrec --batches 60 --threads 1
    python tools/speed_ab.py hstu --batches 60 --threads 1
    python tools/speed_ab.py sasrec --threads 2 --out results/benchmarks/speed-ab-sasrec-t2.json
    python tools/speed_ab.py rearec-erl --batches 30 --threads 1

"before" is the step as it was: the dropout mask from ``torch.rand`` (one mt19937 draw per element) and, for
SASRec, the last block computing every position although the loss reads only ``h_L``. "after" is the library as
it is (:class:`drlib.models.layers.Dropout`, :meth:`SASRec.encode_last`). For ReaRec-ERL, "before" also has
every reasoning pass through every position of the last block and the loss through autograd (per-step
cross-entropy, pairwise KL by indexing); "after" is :func:`drlib.baselines.rearec.ensemble_ce_kl`. Both models start from the same weights
and run the same epoch-0 batches (seed 0, the training loop's length buckets), interleaved A, B, A, B so that a
change in machine load hits both; the first 5 of each are warm-up. Prints ms per batch (mean over the batches) and
the ratio; ``--out`` stores them as JSON with the command and the machine.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from drlib.baselines.rearec import ReaRec                   # noqa: E402
from drlib.registry import make_config                       # noqa: E402
from drlib.evaluate import trim_padding                     # noqa: E402
from drlib.models.base import NextItemModel                 # noqa: E402
from drlib.models.layers import Dropout                     # noqa: E402
from drlib.runner import build_for, get_dataset             # noqa: E402
from drlib.train import epoch_batches                       # noqa: E402
from drlib.results import write_record                               # noqa: E402
from drlib.utils import configure_torch                               # noqa: E402


class RandDropout(torch.nn.Module):
    """The dropout before this change: ``x * (rand >= p) / (1 - p)``."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        return x * (torch.rand(x.shape, device=x.device) >= self.p) / (1.0 - self.p)


class FullEncode(NextItemModel):
    """NextItemModel as it was: the loss reads ``encode(x)[:, -1]`` (every position through every block)."""

    def compute_loss(self, inputs, targets):
        loss = self.backbone.next_item_loss(self.backbone.encode(inputs)[:, -1], targets)
        return loss, {"loss": loss.item()}


class AutogradERL(ReaRec):
    """ReaRec as it was: full encoder passes, ERL's loss through autograd (the reference formula)."""

    def reason(self, inputs, noise_std=0.0):
        bb, K = self.backbone, self.cfg.reasoning_steps
        outs, fed = [bb.encode(inputs)[:, -1]], []
        for k in range(K):
            fed.append(outs[-1] + self.rpe.weight[k])
            outs.append(bb.encode(inputs, torch.stack(fed, 1))[:, -1])
        return torch.stack(outs, 1)

    def compute_loss(self, inputs, targets):
        logits = self.backbone.item_logits(self.reason(inputs)).float()          # [B, S, N]
        B, S, N = logits.shape
        rec = F.cross_entropy(logits.reshape(B * S, N), (targets - 1).repeat_interleave(S))
        logp = F.log_softmax(logits, -1)
        i, j = torch.triu_indices(S, S, 1)
        kl = (logp[:, i].exp() * (logp[:, i] - logp[:, j])).sum(-1).mean()
        loss = rec - self.cfg.kl_weight * kl
        return loss, {"loss": loss.item()}


def before(model):
    old = copy.deepcopy(model)
    for name, mod in list(old.named_modules()):
        for child_name, child in list(mod.named_children()):
            if isinstance(child, Dropout):
                setattr(mod, child_name, RandDropout(child.p))
    if isinstance(old, NextItemModel):
        old = FullEncode(old.backbone)
    if isinstance(old, ReaRec):
        slow = AutogradERL(old.backbone, old.cfg)
        slow.load_state_dict(old.state_dict())
        old = slow
    return old


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", choices=["sasrec", "hstu", "rearec-erl"])
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    configure_torch(args.threads)
    cfg = make_config(args.model, args.dataset, "cpu", 0)
    ds = get_dataset(cfg)
    after = build_for(cfg, ds).train()
    variants = {"before": before(after).train(), "after": after}
    opts = {k: torch.optim.Adam(m.parameters(), lr=cfg.train.lr) for k, m in variants.items()}
    lengths = (ds.train_inputs != 0).sum(1)
    batches = epoch_batches(lengths, cfg.train.batch_size, torch.Generator().manual_seed(0),
                            cfg.train.length_buckets)[:args.batches + 5]
    X, Y = torch.from_numpy(ds.train_inputs), torch.from_numpy(ds.train_targets)
    times = {k: [] for k in variants}
    for i, idx in enumerate(batches):
        x, y = trim_padding(X[idx]), Y[idx]
        for k, m in variants.items():
            t0 = time.perf_counter()
            loss, _ = m.compute_loss(x, y)
            opts[k].zero_grad(set_to_none=True)
            loss.backward()
            opts[k].step()
            if i >= 5:
                times[k].append(1000 * (time.perf_counter() - t0))
    ms = {k: sum(v) / len(v) for k, v in times.items()}
    out = {"model": args.model, "dataset": args.dataset, "threads": args.threads, "batches": len(times["after"]),
           "ms_per_batch": ms, "speedup": ms["before"] / ms["after"]}
    print(json.dumps(out))
    if args.out:
        write_record(args.out, out,
                     command="python tools/speed_ab.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
