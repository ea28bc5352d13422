"""Side by side, in one process: a training step of the strong backbones with and without the speed-ups.

    python -m drlib investigate speed-ab sasrec --batches 60 --threads 1
    python -m drlib investigate speed-ab hstu --batches 60 --threads 1
    python -m drlib investigate speed-ab sasrec --threads 2 --out results/benchmarks/speed-ab-sasrec-t2.json
    python -m drlib investigate speed-ab rearec-erl --batches 30 --threads 1
    python -m drlib investigate speed-ab diffureason-s --from-run diffureason-s-beauty-cpu-seed0-3bb9daa8fb --threads 1
    python -m drlib investigate speed-ab diffureason-s --undo memory-kv condition-once --threads 1
    python -m drlib investigate speed-ab diffureason-s --undo memory-kv condition-once --inference --threads 1

"before" is the step as it was: the dropout mask from ``torch.rand`` (one mt19937 draw per element) and, for
SASRec, the last block computing every position although the loss reads only ``h_L``. "after" is the library as
it is (:class:`drlib.models.layers.Dropout`, :meth:`SASRec.encode_last`). For ReaRec-ERL, "before" also has
every reasoning pass through every position of the last block and the loss through autograd (per-step
cross-entropy, pairwise KL by indexing); "after" is :func:`drlib.baselines.rearec.ensemble_ce_kl`. For
DiffuReason-S and -H, "before" undoes the speed-ups named by ``--undo`` (default: all three):
``reward-screen``: every policy sample scored against the whole catalogue for its reward (``reward_screen=0``;
"after" screens the samples on a short list first, :func:`drlib.models.rewards.latent_rewards`, the rewards are the
same); ``memory-kv``: the reasoner through ``nn.TransformerDecoder``, the memory projected to keys and values again
at every reasoning step (:mod:`drlib.diffureason.reasoner`); ``condition-once``: the denoiser's first layer on the
concatenation ``[c, LN(x_t) + t_emb]`` at every step (:meth:`drlib.diffureason.Denoiser.condition`);
``dropout``: the reasoner's and the denoiser's dropout through ``nn.Dropout`` (``bernoulli_``, one draw per
element) instead of :class:`drlib.models.layers.Dropout` (other random masks, the same keep probability).
``--inference`` times test scoring (``full_scores`` in eval mode, ``eval_batch_size`` test users a batch) instead
of training steps. How much the screen saves depends on the weights (it skips the samples that clearly
miss), so ``--from-run RUN_ID`` starts both variants from a finished run's weights (kept in runs/, else the
committed ones) instead of fresh ones. Both models start from the same weights and run the same epoch-0 batches
(seed 0, the training loop's length buckets), interleaved A, B, A, B so that a change in machine load hits both; the first --warmup of each (default 5) are not
timed. Beauty and the cpu profile unless --dataset / --profile say otherwise. Prints ms per batch (mean over the
batches) and the ratio; ``--out FILE`` stores them as a record with the command and the machine (the stored ones
are results/benchmarks/speed-ab-<model>-t<threads>.json).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import time

import torch
import torch.nn.functional as F

from ..baselines.rearec import ReaRec
from ..diffureason.denoiser import Denoiser
from ..diffureason.module import DiffuReason
from ..diffureason.reasoner import LatentReasoner
from ..evaluate import trim_padding
from ..models.base import NextItemModel
from ..models.layers import Dropout
from ..registry import make_config
from ..results import write_record
from ..runner import build_for, get_dataset
from ..train import epoch_batches
from ..utils import configure_torch
from ..weights import model_of
from .common import add_config_args, command_line

HELP = "a training step with and without the speed-ups, side by side"
STORES = "--out FILE (results/benchmarks/)"
MODELS = ("sasrec", "hstu", "rearec-erl", "diffureason-s", "diffureason-h")
UNDO = ("reward-screen", "memory-kv", "condition-once", "dropout")         # DiffuReason's speed-ups, in the order they came


class RandDropout(torch.nn.Module):
    """The dropout before the change: ``x * (rand >= p) / (1 - p)``."""

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


class DecoderReasoner(LatentReasoner):
    """The reasoner as it was: ``nn.TransformerDecoder`` at every step (the memory projected again each time)."""

    def forward(self, H, pad):
        tokens = [H[:, -1]]
        for r in range(1, self.steps):
            tgt = torch.stack(tokens, 1) + self.step_emb.weight[:r]
            causal = torch.triu(torch.ones(r, r, dtype=torch.bool, device=H.device), 1)
            tokens.append(self.decoder(tgt, H, tgt_mask=causal, memory_key_padding_mask=pad)[:, -1])
        return torch.stack(tokens, 1)


class ConcatDenoiser(Denoiser):
    """The denoiser as it was: the first layer on ``[c, LN(x_t) + t_emb]`` at every step."""

    def condition(self, c):
        return c

    def step(self, x_t, t, c):
        mu, log_sigma = self.net(torch.cat([c, self.in_norm(x_t) + self.time(t)], -1)).chunk(2, -1)
        return mu, (F.softplus(log_sigma) + 1e-5).clamp(self.SIGMA_MIN, self.SIGMA_MAX)


def before(model, undo=UNDO):
    """A copy of ``model`` with the step as it was before the speed-ups (same weights); for DiffuReason only the
    speed-ups named in ``undo`` (a subset of :data:`UNDO`) are undone."""
    old = copy.deepcopy(model)
    if isinstance(old, DiffuReason):                        # its backbone keeps today's step
        if "reward-screen" in undo:
            old.cfg = dataclasses.replace(old.cfg, reward_screen=0)
        if "memory-kv" in undo:
            old.reasoner.__class__ = DecoderReasoner        # same parameters, the old forward
        if "condition-once" in undo and old.cfg.use_diffusion:
            old.denoiser.__class__ = ConcatDenoiser
        if "dropout" in undo:
            for part in (old.reasoner, old.denoiser if old.cfg.use_diffusion else old.sigma_head):
                _swap_dropout(part, lambda p: torch.nn.Dropout(p))
        return old
    _swap_dropout(old, RandDropout)
    if isinstance(old, NextItemModel):
        old = FullEncode(old.backbone)
    if isinstance(old, ReaRec):
        slow = AutogradERL(old.backbone, old.cfg)
        slow.load_state_dict(old.state_dict())
        old = slow
    return old


def _swap_dropout(module: torch.nn.Module, make) -> None:
    """Replace every :class:`drlib.models.layers.Dropout` under ``module`` by ``make(p)``."""
    for mod in list(module.modules()):
        for child_name, child in list(mod.named_children()):
            if isinstance(child, Dropout):
                setattr(mod, child_name, make(child.p))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", choices=MODELS, help="the backbone: " + ", ".join(MODELS))
    p.add_argument("--batches", type=int, default=60, help="timed steps of each variant (default: 60)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps of each variant first (default: 5)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="store the result as a record there, e.g. results/benchmarks/speed-ab-sasrec-t1.json "
                        "(default: print only)")
    p.add_argument("--from-run", default=None, metavar="RUN_ID",
                   help="start both variants from this finished run's weights (default: fresh weights, seed 0)")
    p.add_argument("--undo", nargs="+", choices=UNDO, default=list(UNDO),
                   help="DiffuReason: the speed-ups the 'before' variant undoes (default: all of "
                        + ", ".join(UNDO) + ")")
    p.add_argument("--inference", action="store_true",
                   help="time test scoring (full_scores, eval mode) instead of training steps")
    add_config_args(p, threads=1, overrides=False)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    configure_torch(args.threads)
    if args.from_run:
        after, cfg, source = model_of(args.from_run)
        if cfg.model_name != args.model:
            raise ValueError(f"--from-run {args.from_run} is a {cfg.model_name} run, not {args.model}")
        after.train()
    else:
        cfg, source = make_config(args.model, args.dataset, args.profile, 0), "fresh"
    ds = get_dataset(cfg)
    if not args.from_run:
        after = build_for(cfg, ds).train()
    variants = {"before": before(after, args.undo).train(), "after": after}
    times = _time_inference(variants, ds, cfg, args) if args.inference else _time_training(variants, ds, cfg, args)
    ms = {k: sum(v) / len(v) for k, v in times.items()}
    out = {"model": args.model, "dataset": cfg.data.dataset, "threads": args.threads,
           "weights": source if not args.from_run else f"{source} weights of {args.from_run}",
           "batches": len(times["after"]), "ms_per_batch": ms, "speedup": ms["before"] / ms["after"],
           "timed": "test scoring (full_scores)" if args.inference else "training steps"}
    if isinstance(after, DiffuReason):
        out["undone"] = list(args.undo)
    print(json.dumps(out))
    if args.out:
        write_record(args.out, out, command=command_line(argv))
    return 0


def _time_training(variants, ds, cfg, args) -> dict[str, list[float]]:
    """Milliseconds of each variant's training steps (loss, backward, Adam) on the same epoch-0 batches."""
    opts = {k: torch.optim.Adam(m.parameters(), lr=cfg.train.lr) for k, m in variants.items()}
    lengths = (ds.train_inputs != 0).sum(1)
    batches = epoch_batches(lengths, cfg.train.batch_size, torch.Generator().manual_seed(0),
                            cfg.train.length_buckets)[:args.batches + args.warmup]
    if len(batches) <= args.warmup:
        raise ValueError(f"one epoch has {len(batches)} batches: fewer than --warmup {args.warmup} plus one timed")
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
            if i >= args.warmup:
                times[k].append(1000 * (time.perf_counter() - t0))
    return times


@torch.no_grad()
def _time_inference(variants, ds, cfg, args) -> dict[str, list[float]]:
    """Milliseconds of each variant's ``full_scores`` on the same batches of test users (eval mode)."""
    n = cfg.train.eval_batch_size
    starts = list(range(0, len(ds.test.inputs), n))[:args.batches + args.warmup]
    if len(starts) <= args.warmup:
        raise ValueError(f"the test split has {len(starts)} batches: fewer than --warmup {args.warmup} plus one")
    for m in variants.values():
        m.eval()
    times = {k: [] for k in variants}
    for i, s in enumerate(starts):
        x = trim_padding(torch.from_numpy(ds.test.inputs[s:s + n]))
        for k, m in variants.items():
            t0 = time.perf_counter()
            m.full_scores(x)
            if i >= args.warmup:
                times[k].append(1000 * (time.perf_counter() - t0))
    return times
