"""Train a model for a few hundred steps and print its latent scales; then the full validation metrics.

    python -m drlib investigate early-steps diffureason-s --steps 250
    python -m drlib investigate early-steps diffureason-s --steps 250 --set model.module.beta=0
    python -m drlib investigate early-steps diffureason-s --steps 250 --item-init-std 1.0   # re-initialised item table

Used for the investigation "DiffuReason-S on Beauty: where it stands" (book/notes/weak-backbones.md): every --every
steps (and after the last) it prints the step, the seconds so far, the loss terms and the mean norms of ``h_L``
(``H``), the last thinking token (``tau``), ``c``, ``mu``, ``sigma`` and the item embeddings (``E``) over 256
training histories in eval mode (a model without the DiffuReason module: ``h`` and ``E``). Batches are
consecutive slices of one fixed random permutation (seed 0), --batch-size examples each, Beauty and the cpu
profile by default. Nothing is stored (the printed lines are the log).
"""
from __future__ import annotations

import argparse
import time

import torch

from ..evaluate import evaluate, trim_padding
from ..registry import MODELS, make_config
from ..runner import build_for, get_dataset
from ..utils import configure_torch
from .common import add_config_args

HELP = "latent scales over the first few hundred training steps"
STORES = "nothing (prints)"
LOGGED = ("rec", "diff", "align", "reward", "loss", "informative_groups")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", choices=list(MODELS), metavar="MODEL", help="model registry name, e.g. diffureason-s")
    p.add_argument("--steps", type=int, default=250, help="training steps (default: 250)")
    p.add_argument("--batch-size", type=int, default=512, help="examples per step (default: 512)")
    p.add_argument("--every", type=int, default=25, help="print the scales every N steps (default: 25)")
    p.add_argument("--item-init-std", type=float, default=None, metavar="STD",
                   help="re-initialise the item table from N(0, STD^2) before training (padding row zero)")
    add_config_args(p, threads=2)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    configure_torch(args.threads)
    cfg = make_config(args.model, args.dataset, args.profile, 0, args.overrides)
    ds = get_dataset(cfg)
    m = build_for(cfg, ds)
    if args.item_init_std is not None:
        torch.nn.init.normal_(m.backbone.item_emb.weight, std=args.item_init_std)
        with torch.no_grad():
            m.backbone.item_emb.weight[0].zero_()
    opt = torch.optim.Adam(m.parameters(), lr=cfg.train.lr)
    inp, tgt = torch.from_numpy(ds.train_inputs), torch.from_numpy(ds.train_targets)
    perm = torch.randperm(len(tgt), generator=torch.Generator().manual_seed(0))
    t0 = time.time()
    for s in range(args.steps):
        start = (s * args.batch_size) % len(tgt)
        idx = perm[start:start + args.batch_size]
        x, y = trim_padding(inp[idx]), tgt[idx]
        m.train()
        loss, logs = m.compute_loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if s % args.every == 0 or s == args.steps - 1:
            with torch.no_grad():
                m.eval()
                info = {}
                if hasattr(m, "trajectory"):
                    tr = m.trajectory(x[:256])
                    for k in ("H", "tau", "c", "mu", "sigma"):
                        v = tr[k][:, -1] if k in ("H", "tau") else tr[k]
                        info[k] = v.norm(dim=-1).mean().item()
                else:
                    info["h"] = m.backbone.encode(x[:256])[:, -1].norm(dim=-1).mean().item()
                info["E"] = m.backbone.item_embeddings()[1:].norm(dim=-1).mean().item()
            print(s, f"{time.time() - t0:.0f}s", {k: round(v, 4) for k, v in logs.items() if k in LOGGED},
                  {k: round(v, 3) for k, v in info.items()}, flush=True)
    m.eval()
    print("VALID", evaluate(m, ds.valid, ks=cfg.eval.ks, batch_size=cfg.train.eval_batch_size))
    return 0
