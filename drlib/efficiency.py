"""Efficiency measurements for Table 6 and Fig. 2: training milliseconds per batch and test inference time.

A training run's own timing depends on whatever else the machine was doing; these measurements are taken
back to back, on the same batches, in one process, so that models can be compared. Each model is timed on
``n_batches`` optimisation steps (after ``warmup`` untimed ones) of the same epoch-0 batches, then on one full
pass of full-catalogue ranking over the test users. Weights are freshly initialised: a step costs nearly the same
whatever the weights (flushed denormals, see :func:`drlib.utils.configure_torch`). The exception is DiffuReason's
reward screen (:func:`drlib.models.rewards.latent_rewards`), which scores in full only the samples it cannot rule out;
``python -m drlib investigate speed-ab diffureason-s --from-run RUN_ID`` times a step from trained weights.

Records go to ``results/efficiency/<run-id>-b<n_batches>.json`` with the label, the config, the timing and
the machine; a stored measurement is reused unless ``force``.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from .config import RunConfig
from .evaluate import timed_evaluate, trim_padding
from .registry import make_config, with_module
from .results import module_setting, read_record, results_dir, write_record
from .runner import build_for, get_dataset
from .train import _sync, epoch_batches
from .utils import configure_torch, pick_device

EXPERIMENT = "efficiency"


def record_path(cfg: RunConfig, n_batches: int, root=None) -> Path:
    return Path(root or results_dir()) / EXPERIMENT / f"{cfg.run_id}-b{n_batches}.json"


def benchmark(cfg: RunConfig, n_batches: int = 30, warmup: int = 5, force: bool = False,
              results_root: str | Path | None = None, log=print) -> dict:
    """Time ``cfg``'s model: training ms/batch (mean over ``n_batches``) and total test inference seconds."""
    if n_batches < 1 or warmup < 0:
        raise ValueError(f"need n_batches >= 1 and warmup >= 0, got {n_batches}, {warmup}")
    path = record_path(cfg, n_batches, results_root)
    if path.exists() and not force:
        return read_record(path)
    configure_torch(cfg.train.num_threads)
    device = pick_device(cfg.train.device)
    ds = get_dataset(cfg)
    model = build_for(cfg, ds).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    lengths = (ds.train_inputs != 0).sum(1)
    batches = epoch_batches(lengths, cfg.train.batch_size, torch.Generator().manual_seed(0), cfg.train.length_buckets)
    need = warmup + n_batches
    if len(batches) < need:
        batches = (batches * (need // len(batches) + 1))
    inputs_all, targets_all = torch.from_numpy(ds.train_inputs), torch.from_numpy(ds.train_targets)
    model.start_epoch(0)
    times = []
    for i, idx in enumerate(batches[:need]):
        x, y = trim_padding(inputs_all[idx]).to(device), targets_all[idx].to(device)
        _sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.train.bf16):
            loss, _ = model.compute_loss(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    # the arithmetic of the same timed batches (their lengths differ), counted after the timing
    flops = [step_flops(model, trim_padding(inputs_all[idx]).to(device), targets_all[idx].to(device))
             for idx in batches[warmup:need]]
    train_gflop = sum(flops) / len(flops) / 1e9
    xe = trim_padding(torch.from_numpy(ds.test.inputs[:cfg.train.eval_batch_size])).to(device)
    eval_gflop = inference_flops(model, xe) / 1e9 / xe.shape[0]
    _, eval_seconds = timed_evaluate(model, ds.test, ks=cfg.eval.ks, batch_size=cfg.train.eval_batch_size,
                                     mask_history=cfg.eval.mask_history, device=device,
                                     autocast_bf16=cfg.train.bf16)
    ms = sorted(1000 * t for t in times)
    body = {"timing": {"train_ms_per_batch": sum(ms) / len(ms), "train_ms_per_batch_median": ms[len(ms) // 2],
                       "n_batches": n_batches, "warmup": warmup, "batch_size": cfg.train.batch_size,
                       "eval_seconds": eval_seconds, "n_test_users": len(ds.test),
                       # arithmetic (torch's FLOP counter: matmuls, attention, convolutions; elementwise ops not
                       # counted): a training step (mean over the timed batches), the scoring of one test user
                       "train_gflop_per_step": train_gflop, "eval_gflop_per_user": eval_gflop,
                       "train_gflop_per_s": train_gflop / (sum(ms) / len(ms) / 1000)}}
    rec = write_record(path, body, cfg=cfg, experiment=EXPERIMENT, device=device,
                       command=f"drlib.efficiency.benchmark(make_config({cfg.model_name!r}, {cfg.data.dataset!r}, "
                               f"{cfg.profile!r}, {cfg.seed}, overrides=...), n_batches={n_batches}, warmup={warmup})")
    log(f"{cfg.label}: {rec['timing']['train_ms_per_batch']:.1f} ms/batch, test inference {eval_seconds:.2f} s")
    return rec


def step_flops(model, x: torch.Tensor, y: torch.Tensor) -> float:
    """Floating-point operations of one training step (``compute_loss`` and its backward) on ``x [B, L]``,
    ``y [B]``, counted by :class:`torch.utils.flop_counter.FlopCounterMode`; the gradients are cleared after."""
    counter = FlopCounterMode(display=False)
    with counter:
        loss, _ = model.compute_loss(x, y)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


@torch.no_grad()
def inference_flops(model, x: torch.Tensor) -> float:
    """Floating-point operations of ``full_scores`` on ``x [B, L]`` in eval mode (the train/eval mode restored)."""
    was = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter:
        model.full_scores(x)
    model.train(was)
    return float(counter.get_total_flops())


def relative_table(records: list[dict], baseline_label: str):
    """One row per record: ms/batch and inference seconds, and both as multiples of ``baseline_label``'s; ``R`` and
    ``G`` are the DiffuReason rows' reasoning steps and policy samples (from the stored config; empty for the
    backbone)."""
    rows = [{"label": r["label"], "dataset": r["config"]["dataset"],
             "R": module_setting(r, "reasoning_steps"), "G": module_setting(r, "group_size"),
             "train_ms_per_batch": r["timing"]["train_ms_per_batch"],
             "eval_seconds": r["timing"]["eval_seconds"],
             "train_gflop_per_step": r["timing"].get("train_gflop_per_step", float("nan")),
             "eval_gflop_per_user": r["timing"].get("eval_gflop_per_user", float("nan")),
             "device": r["env"].get("device", "")} for r in records]
    df = pd.DataFrame(rows)
    if not len(df):
        return df
    base = df[df.label == baseline_label]
    if len(base):
        df["train_x"] = df.train_ms_per_batch / base.train_ms_per_batch.iloc[0]
        df["inference_x"] = df.eval_seconds / base.eval_seconds.iloc[0]
        df["train_arith_x"] = df.train_gflop_per_step / base.train_gflop_per_step.iloc[0]
        df["inference_arith_x"] = df.eval_gflop_per_user / base.eval_gflop_per_user.iloc[0]
    return df


def table6_configs(dataset: str = "beauty", profile: str = "cpu", model: str = "diffureason-s",
                   backbone: str = "sasrec", seed: int = 0, overrides=()) -> list[RunConfig]:
    """The rows of Table 6 on our backbone: the backbone alone, R = 1..5 at G = 8, G = 2..16 at R = 3."""
    rows = [make_config(backbone, dataset, profile, seed, overrides, experiment=EXPERIMENT)]
    settings = [(r, 8) for r in (1, 2, 3, 4, 5)] + [(3, g) for g in (2, 4, 16)]
    for r, g in settings:
        cfg = with_module(make_config(model, dataset, profile, seed, overrides, experiment=EXPERIMENT),
                          reasoning_steps=r, group_size=g)
        rows.append(dataclasses.replace(cfg, variant=f"R={r}, G={g}"))
    return rows
