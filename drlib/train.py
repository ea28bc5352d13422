"""The one training loop. It knows only the :class:`~drlib.models.Recommender` interface.

Adam; shuffled mini-batches of ``(prefix, next item)`` examples; validation full ranking after every
epoch; early stopping on ``eval.select_metric`` with patience; the best epoch's weights restored at the
end. A checkpoint (model, optimiser, RNG state, best weights, history, timings) is written atomically
after every epoch, so a run killed at any point resumes from the last finished epoch and reaches the
same final weights as an uninterrupted run (the shuffle of epoch ``e`` depends only on ``(seed, e)``,
and the dropout RNG state is restored).

Under ``torchrun`` (N processes), every process draws the same batches and trains on its share of each batch
(``batch.tensor_split(N)``); after the backward pass one all-reduce sums every process's gradients and logs,
weighted by its share: the whole batch's mean gradient and loss, as one process computes them, so
``train.batch_size`` stays the batch of one optimisation step and the config (and its hash) means the same
training whatever N. Each process draws its own dropout noise (its own seed; all RNG states go into the
checkpoint). Validation is split over the processes and gathered (:func:`~drlib.evaluate.evaluate_shared`), so
all of them hold the same history and take the same decisions; only rank 0 writes the checkpoint.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from .config import EvalConfig, TrainConfig
from .data.split import SeqDataset
from .evaluate import evaluate_shared, trim_padding
from .utils import (StoppedTime, atomic_torch_save, barrier, configure_torch, init_distributed, pick_device,
                    stable_hash)


@dataclass
class FitResult:
    best_epoch: int
    epochs_run: int
    best_valid: dict
    history: list = field(default_factory=list)
    train_seconds: float = 0.0        # batches + per-epoch validation, summed over resumes; time stopped left out
    batch_seconds: float = 0.0        # optimisation steps only
    stopped_seconds: float = 0.0      # wall-clock time the process was stopped (kill -STOP) within epochs, left out
    n_batches: int = 0
    stopped_early: bool = False

    @property
    def train_ms_per_batch(self) -> float:
        return 1000.0 * self.batch_seconds / max(self.n_batches, 1)


NOTE_SECONDS = 300.0   # without progress bars, an epoch longer than this logs a line every NOTE_SECONDS
CKPT_SECONDS = 600.0   # with a checkpoint path, an epoch longer than this is also checkpointed every CKPT_SECONDS


def _save_checkpoint(ckpt: Path, model, opt, device: torch.device, state: dict) -> None:
    """Weights, optimizer, RNG states and the loop's ``state`` (with ``state["partial"]`` set, a mid-epoch one).

    In a torchrun job every process calls it: rank 0 writes the file, with every process's RNG states
    (``rng_ranks``), while the others wait until it is written."""
    rng = (torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None)
    extra = {}
    if dist.is_initialized():
        extra["rng_ranks"] = [None] * dist.get_world_size()
        dist.all_gather_object(extra["rng_ranks"], rng)
    if not dist.is_initialized() or dist.get_rank() == 0:
        atomic_torch_save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                           "rng_cpu": rng[0], "rng_cuda": rng[1], "state": state, **extra}, ckpt)
    barrier()


def _rank_seed(seed: int, rank: int) -> int:
    """The torch seed of process ``rank`` of a torchrun job: ``seed`` itself for rank 0 (one process under torchrun
    trains bit for bit as without it), a value derived from both for the others (their own dropout noise)."""
    return seed if rank == 0 else int(stable_hash({"seed": seed, "rank": rank})[:15], 16)


def _all_reduce_step(model, logs: dict, weight: float, flag: bool) -> tuple[dict, bool]:
    """One all-reduce of a training step over the processes of a torchrun job: every gradient and log, weighted by
    this process's ``weight`` (its share of the batch) and summed, becomes the whole batch's mean, the same in
    every process; a parameter keeps ``grad = None`` only where no process gave it a gradient (a phase that leaves
    it out). ``flag``: rank 0's wish for a mid-epoch checkpoint, returned to all (the others pass False)."""
    params = [p for p in model.parameters() if p.requires_grad]
    keys = sorted(logs)
    dev = params[0].device
    small = torch.tensor([logs[k] * weight for k in keys] + [float(flag)] + [float(p.grad is not None) for p in params],
                         dtype=torch.float64, device=dev)
    grads = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float() for p in params])
    if weight != 1.0:
        grads.mul_(weight)
    dist.all_reduce(small)
    dist.all_reduce(grads)
    small = small.tolist()
    offset = 0
    for p, has in zip(params, small[len(keys) + 1:]):
        p.grad = grads[offset:offset + p.numel()].view_as(p).to(p.dtype) if has else None
        offset += p.numel()
    return dict(zip(keys, small[:len(keys)])), small[len(keys)] > 0


def _sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _quiet(_: str) -> None:
    """The log of the processes other than rank 0 of a torchrun job."""


def epoch_batches(lengths: np.ndarray, batch_size: int, generator: torch.Generator,
                  bucket: int = 0) -> list[torch.Tensor]:
    """Index batches for one epoch.

    ``bucket = 0``: a plain random permutation cut into batches. ``bucket = K``: the permutation is cut into
    chunks of ``K`` batches, each chunk is sorted by history length and cut into batches, and the batch order
    is shuffled. Batches then hold histories of similar length, so the padding trimmed away by
    :func:`trim_padding` is most of it (3x less encoder work on Beauty, whose mean prefix is 6.7 items).
    """
    n = len(lengths)
    perm = torch.randperm(n, generator=generator)
    if not bucket:
        return list(perm.split(batch_size))
    lens = torch.from_numpy(lengths)
    batches = []
    for chunk in perm.split(batch_size * bucket):
        order = torch.argsort(lens[chunk], stable=True)
        batches.extend(chunk[order].split(batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def fit(model, ds: SeqDataset, cfg: TrainConfig, eval_cfg: EvalConfig = EvalConfig(), seed: int = 0,
        checkpoint: str | Path | None = None, progress: bool = True,
        on_epoch_end: Callable[[int, dict], None] | None = None, log: Callable[[str], None] = print,
        start_from: str | Path | None = None) -> FitResult:
    """Train ``model`` on ``ds``; return the :class:`FitResult` with the best weights loaded into ``model``.

    ``checkpoint``: written after every epoch, and resumed from when it exists. ``start_from``: where no checkpoint
    exists yet, the final checkpoint of a finished run of the same config with a smaller ``patience`` or ``epochs``
    (:func:`drlib.runner.extendable_run`): its epochs are not trained again, and the run goes on as one trained
    from scratch with ``cfg`` would have (the same weights, optimizer, random states and early-stopping count)."""
    configure_torch(cfg.num_threads)
    device = pick_device(cfg.device)
    rank, world = init_distributed(device)          # (0, 1) unless started by torchrun
    shared = dist.is_initialized()
    if rank:
        progress, log = False, _quiet
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = {"epoch": 0, "best_score": -np.inf, "best_epoch": -1, "best_valid": {}, "best_model": None,
             "bad_epochs": 0, "history": [], "train_seconds": 0.0, "batch_seconds": 0.0, "stopped_seconds": 0.0,
             "n_batches": 0,
             "done": False, "stopped_early": False}
    ckpt = Path(checkpoint) if checkpoint else None
    source = ckpt if ckpt and ckpt.exists() else (Path(start_from) if start_from else None)
    if source:
        saved = torch.load(source, map_location="cpu", weights_only=False)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        rngs = saved.get("rng_ranks") or [(saved["rng_cpu"], saved.get("rng_cuda"))]
        if rank < len(rngs):
            torch.set_rng_state(rngs[rank][0])
            if device.type == "cuda" and rngs[rank][1] is not None:
                torch.cuda.set_rng_state(rngs[rank][1], device)
        else:
            torch.manual_seed(_rank_seed(seed, rank) + saved["state"]["epoch"])
        state = saved["state"]
        if source != ckpt:                        # a finished run: its stop no longer holds under cfg
            state.update(done=False, stopped_early=False)
        log(f"{'resumed' if source == ckpt else 'continued'} from {source} after epoch {state['epoch']}"
            + (f" (written by {len(rngs)} processes, now {world}: the run goes on, but not bit for bit)"
               if len(rngs) != world else ""))
    else:
        torch.manual_seed(_rank_seed(seed, rank))
    if shared:                                    # every process starts from rank 0's weights
        for t in model.state_dict().values():
            dist.broadcast(t, 0)

    inputs_all = torch.from_numpy(ds.train_inputs)
    targets_all = torch.from_numpy(ds.train_targets)
    lengths = (ds.train_inputs != 0).sum(1)
    use_bf16 = cfg.bf16
    metric = eval_cfg.select_metric

    # what `python -m drlib runs` shows for an unfinished run (set on every start, so a resumed run has it too)
    state["plan"] = {"epochs": cfg.epochs, "patience": cfg.patience, "metric": metric}

    epoch_bar = None
    if progress:
        epoch_bar = tqdm(total=cfg.epochs, initial=state["epoch"], desc="epochs", dynamic_ncols=True)
    stopped = StoppedTime()                       # kill -STOP pauses are not training time
    try:
        while not state["done"] and state["epoch"] < cfg.epochs:
            epoch = state["epoch"]
            partial = state.get("partial")          # a mid-epoch checkpoint of this epoch: continue where it stopped
            state["partial"] = None
            t_epoch = time.perf_counter() - (partial["seconds"] if partial else 0.0)
            s_epoch = stopped()                     # time stopped within this epoch is left out of its seconds
            if partial:
                model.start_epoch(epoch)            # the phase; its switch (best weights, patience) was done before
                model.load_epoch_state(partial["epoch_state"])
                log(f"epoch {epoch + 1}: resumed at batch {partial['next_batch'] + 1}")
            elif model.start_epoch(epoch):
                state["bad_epochs"] = 0
                if state["best_model"] is not None:
                    model.load_state_dict(state["best_model"])
                log(f"epoch {epoch + 1}: a new training phase starts from the best checkpoint so far "
                    f"(epoch {state['best_epoch'] + 1}); early-stopping patience restarted")
            batches = epoch_batches(lengths, cfg.batch_size, torch.Generator().manual_seed(seed * 1_000_003 + epoch),
                                    cfg.length_buckets)
            n_batches = len(batches)
            model.train()
            # extra: the model's other per-batch logs, averaged into the epoch record
            losses, extra = (list(partial["losses"]), dict(partial["extra"])) if partial else ([], {})
            first = partial["next_batch"] if partial else 0
            batch_iter = range(first, n_batches)
            if progress:
                batch_iter = tqdm(batch_iter, desc=f"epoch {epoch + 1}", leave=False, dynamic_ncols=True,
                                  initial=first, total=n_batches)
            batch_time = partial["batch_time"] if partial else 0.0
            last_note = last_ckpt = time.perf_counter()
            for b in batch_iter:
                idx = batches[b]
                if shared:          # this process's share; a batch smaller than the job: each trains on all of it
                    share = idx.tensor_split(world)[rank] if len(idx) >= world else idx
                    weight = len(share) / len(idx) if len(idx) >= world else 1.0 / world
                    idx = share
                x, y = trim_padding(inputs_all[idx]).to(device), targets_all[idx].to(device)
                _sync(device)
                t0, s0 = time.perf_counter(), stopped()
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    loss, logs = model.compute_loss(x, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                want_ckpt = ckpt and b + 1 < n_batches and time.perf_counter() - last_ckpt > CKPT_SECONDS
                if shared:
                    logs, want_ckpt = _all_reduce_step(model, logs, weight, bool(want_ckpt) and rank == 0)
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                _sync(device)
                batch_time += time.perf_counter() - t0 - (stopped() - s0)
                if not np.isfinite(logs["loss"]):
                    raise FloatingPointError(f"loss became {logs['loss']} at epoch {epoch + 1}, batch {b}; "
                                             "lower train.lr or set train.grad_clip")
                losses.append(logs["loss"])
                for k, v in logs.items():
                    if k != "loss":
                        extra[k] = extra.get(k, 0.0) + v
                if progress and b % 10 == 0:
                    batch_iter.set_postfix(loss=f"{logs['loss']:.4f}")
                elif not progress and time.perf_counter() - last_note > NOTE_SECONDS:   # long epochs: a sign of life
                    last_note = time.perf_counter()
                    log(f"epoch {epoch + 1}: batch {b + 1}/{n_batches}, loss {np.mean(losses):.4f}, "
                        f"{batch_time / (b + 1):.2f} s per batch")
                if want_ckpt:
                    state["partial"] = {"next_batch": b + 1, "n_batches": n_batches, "losses": list(losses),
                                        "extra": dict(extra),
                                        "batch_time": batch_time,
                                        "seconds": time.perf_counter() - t_epoch - (stopped() - s_epoch),
                                        "epoch_state": model.epoch_state()}
                    _save_checkpoint(ckpt, model, opt, device, state)
                    state["partial"] = None
                    last_ckpt = time.perf_counter()
            valid = evaluate_shared(model, ds.valid, ks=eval_cfg.ks, batch_size=cfg.eval_batch_size,
                                    mask_history=eval_cfg.mask_history, device=device, autocast_bf16=use_bf16)
            score = valid[metric]
            improved = score > state["best_score"]
            if improved:
                state.update(best_score=score, best_epoch=epoch, best_valid=valid, bad_epochs=0,
                             best_model=copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()}))
            else:
                state["bad_epochs"] += 1
            epoch_stopped = stopped() - s_epoch
            epoch_seconds = time.perf_counter() - t_epoch - epoch_stopped
            rec = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "seconds": epoch_seconds,
                   "device": device.type, **valid,       # a run resumed on another device says which epochs ran where
                   **{f"train_{k}": v / n_batches for k, v in extra.items()}}
            state["history"].append(rec)
            state["train_seconds"] += epoch_seconds
            state["stopped_seconds"] = state.get("stopped_seconds", 0.0) + epoch_stopped   # older checkpoints lack it
            state["batch_seconds"] += batch_time
            state["n_batches"] += n_batches
            state["epoch"] = epoch + 1
            if cfg.patience is not None and state["bad_epochs"] >= cfg.patience:
                state["done"] = state["stopped_early"] = True
            if state["epoch"] >= cfg.epochs:
                state["done"] = True
            log(f"epoch {epoch + 1:3d} loss {rec['loss']:.4f} valid {metric} {score:.4f}"
                f"{' *' if improved else ''} ({epoch_seconds:.1f}s)"
                + "".join(f" {k[6:]} {v:.4g}" for k, v in rec.items() if k.startswith("train_")))
            if epoch_bar is not None:
                epoch_bar.update(1)
                epoch_bar.set_postfix(loss=f"{rec['loss']:.4f}", **{metric: f"{score:.4f}"})
            if ckpt:
                _save_checkpoint(ckpt, model, opt, device, state)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, rec)
    finally:
        stopped.close()
    if epoch_bar is not None:
        epoch_bar.close()
    if state["best_model"] is not None:
        model.load_state_dict(state["best_model"])
    return FitResult(best_epoch=state["best_epoch"] + 1, epochs_run=state["epoch"], best_valid=state["best_valid"],
                     history=state["history"], train_seconds=state["train_seconds"],
                     batch_seconds=state["batch_seconds"], n_batches=state["n_batches"],
                     stopped_early=state["stopped_early"], stopped_seconds=state.get("stopped_seconds", 0.0))
