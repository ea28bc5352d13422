"""Train a model for a few hundred steps on real data and print latent scales; then the full validation metrics.

Used for the investigation "DiffuReason-S on Beauty: where it stands" in the reproduction notes: it shows the
norms of ``h_L``, the thinking tokens, ``c``, ``mu``, ``sigma`` and the item embeddings every 25 steps.

    PYTHONPATH=. python tools/early_steps.py MODEL STEPS [section.field=value ...]
    ITEM_INIT_STD=1.0 PYTHONPATH=. python tools/early_steps.py diffureason-s 250   # re-initialised item table

Batches are consecutive slices of one fixed random permutation (seed 0), 512 examples each, cpu profile.
"""
import os
import sys
import time

import torch

from drlib.registry import make_config
from drlib.data import load_dataset
from drlib.evaluate import evaluate, trim_padding
from drlib.registry import build_model
from drlib.utils import configure_torch


def main(model_name: str, steps: int, overrides: list[str]):
    configure_torch(2)
    cfg = make_config(model_name, "beauty", "cpu", overrides=overrides)
    ds = load_dataset("beauty")
    torch.manual_seed(0)
    m = build_model(model_name, cfg.model, ds.n_items, ds.max_len)
    if os.environ.get("ITEM_INIT_STD"):
        torch.nn.init.normal_(m.backbone.item_emb.weight, std=float(os.environ["ITEM_INIT_STD"]))
        with torch.no_grad():
            m.backbone.item_emb.weight[0].zero_()
    opt = torch.optim.Adam(m.parameters(), lr=cfg.train.lr)
    inp, tgt = torch.from_numpy(ds.train_inputs), torch.from_numpy(ds.train_targets)
    perm = torch.randperm(len(tgt), generator=torch.Generator().manual_seed(0))
    t0 = time.time()
    for s in range(steps):
        start = (s * 512) % len(tgt)
        idx = perm[start:start + 512]
        x, y = trim_padding(inp[idx]), tgt[idx]
        m.train()
        loss, logs = m.compute_loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if s % 25 == 0 or s == steps - 1:
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
            keep = ("rec", "diff", "align", "reward", "loss", "informative_groups")
            print(s, f"{time.time() - t0:.0f}s", {k: round(v, 4) for k, v in logs.items() if k in keep},
                  {k: round(v, 3) for k, v in info.items()}, flush=True)
    print("VALID", evaluate(m, ds.valid))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
