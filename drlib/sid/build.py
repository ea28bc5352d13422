"""Build a Semantic-ID tokenization of a dataset's catalogue (Appendix A, Table 4), store it, and read it back.

:func:`build_sids` turns a :class:`~drlib.sid.tokenizer.TokenizerConfig` into

* a record ``results/tokenizer/<id>.json`` (``config``, ``config_hash``, ``stats``, ``train``, ``timing``,
  ``env``, ``command``): the numbers the tokenizer comparison reads, and
* the code matrix ``runs/tokenizer/<id>/codes.pt`` plus the trained RQ-VAE's weights ``rqvae.pt`` next to it
  (:mod:`drlib.sid.store`),

with ``<id> = <dataset>-<features>-seed<seed>-<config_hash[:10]>``. A stored record whose codes file exists is
returned as it is unless ``force=True``. Every file is written atomically (temporary file + ``os.replace``).
:func:`load_codes` reads the codes of a config, building them first when absent.

The parts, one job each: :mod:`~drlib.sid.tokenizer` (the config, its hash and ``--set`` overrides),
:mod:`~drlib.sid.sources` (the feature sources and their scaling), :mod:`~drlib.sid.stats` (the statistics),
:mod:`~drlib.sid.store` (paths and reads of the stored records and codes), :mod:`~drlib.sid.table` (the printed
table).
"""
from __future__ import annotations

import hashlib
import math
import time
from typing import Callable

import torch

from .features import load_reference_sids
from .rqvae import add_disambiguation, assign_sids, train_rqvae
from .sources import ItemTable, load_features
from .stats import tokenization_stats
from .store import EXPERIMENT, codes_path, load_tokenizer_record, record_path
from .tokenizer import TokenizerConfig
from ..results import write_record
from ..utils import atomic_torch_save, repo_relative

REFERENCE_CODEBOOK = 256          # LETTER's SIDs: 4 levels x 256 codes


def load_codes(cfg: TokenizerConfig, build: bool = True, results_root=None, runs_root=None,
               progress: bool = False, item_table: ItemTable | None = None) -> torch.Tensor:
    """The codes ``[n_items + 1, Lc]`` of ``cfg`` from ``runs/tokenizer/<id>/codes.pt``; built first when absent
    (``build=True``), else ``FileNotFoundError``."""
    p = codes_path(cfg, runs_root)
    if not p.exists():
        if not build:
            raise FileNotFoundError(f"{p} does not exist; build it with `python -m drlib sids --dataset "
                                    f"{cfg.dataset} --features {cfg.features} --seed {cfg.seed}` (plus its --set)")
        build_sids(cfg, progress=progress, results_root=results_root, runs_root=runs_root, item_table=item_table)
    return torch.load(p, map_location="cpu")


def _history_summary(history: list[dict], keep: int = 50) -> list[dict]:
    if not history:
        return []
    step = max(1, math.ceil(len(history) / keep))
    rows = history[::step]
    if rows[-1] is not history[-1]:
        rows.append(history[-1])
    return [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]


def build_sids(cfg: TokenizerConfig, progress: bool = True, force: bool = False, results_root=None,
               runs_root=None, command: str | None = None, log: Callable[[str], None] = print,
               item_table: ItemTable | None = None) -> dict:
    """Tokenize ``cfg.dataset``'s catalogue as ``cfg`` says, store the record and the codes, return the record.

    A stored record (``results/tokenizer/<id>.json``) whose codes file (``runs/tokenizer/<id>/codes.pt``) exists
    is returned without any work unless ``force``. Otherwise: load the features (or LETTER's SIDs for
    ``features="reference"``), train the RQ-VAE (:func:`~drlib.sid.rqvae.train_rqvae`, seed ``cfg.seed``),
    assign the SIDs (disambiguation token appended only on full collisions), compute
    :func:`tokenization_stats`, and write the codes, the RQ-VAE weights and then the record, all atomically.
    """
    rpath, cpath = record_path(cfg, results_root), codes_path(cfg, runs_root)
    if not force:
        rec = load_tokenizer_record(cfg, results_root)
        if rec is not None and cpath.exists():
            log(f"stored: {rpath}")
            return rec
    t0 = time.perf_counter()
    timing: dict = {}
    train_info: dict = {}
    if cfg.features == "reference":
        raw = load_reference_sids(cfg.dataset)
        codes = add_disambiguation(raw, "auto")
        levels, sizes = raw.shape[1], (REFERENCE_CODEBOOK,) * raw.shape[1]
        if int(raw[1:].max()) >= REFERENCE_CODEBOOK:
            sizes = tuple(int(raw[1:, m].max()) + 1 for m in range(levels))
        feats, model = None, None
        feat_info = {"source": "LETTER reference SIDs", "shape": list(raw.shape)}
        timing["features_seconds"] = time.perf_counter() - t0
        timing["train_seconds"] = 0.0
        timing["assign_seconds"] = 0.0
    else:
        feats, feat_info = load_features(cfg, item_table)
        timing["features_seconds"] = time.perf_counter() - t0
        log(f"tokenizer {cfg.tokenizer_id}: RQ-VAE on {cfg.features} features {tuple(feats.shape)}, "
            f"{cfg.rqvae.epochs} epochs, codebooks {cfg.rqvae.codebook_sizes}")
        t1 = time.perf_counter()
        model, history = train_rqvae(feats, cfg.rqvae, cfg.seed, progress=progress)
        timing["train_seconds"] = time.perf_counter() - t1
        timing["seconds_per_epoch"] = timing["train_seconds"] / max(cfg.rqvae.epochs, 1)
        t2 = time.perf_counter()
        codes = assign_sids(model, feats, "auto")
        timing["assign_seconds"] = time.perf_counter() - t2
        levels, sizes = cfg.rqvae.levels, cfg.rqvae.codebook_sizes
        last = history[-1] if history else {}
        train_info = {"epochs": len(history), "final": {k: last.get(k) for k in
                                                       ("loss", "recon", "codebook", "commit", "used")},
                      "history": _history_summary(history)}
    t3 = time.perf_counter()
    stats = tokenization_stats(codes, levels, sizes, feats)
    timing["stats_seconds"] = time.perf_counter() - t3
    timing["total_seconds"] = time.perf_counter() - t0
    codes = codes.contiguous()
    body = {
        "id": cfg.tokenizer_id,
        "experiment": EXPERIMENT,
        "config": cfg.to_dict(),
        "config_hash": cfg.config_hash,
        "features_info": feat_info,
        "stats": stats,
        "train": train_info,
        "timing": timing,
        "codes": {"path": repo_relative(cpath), "shape": list(codes.shape),
                  "sha256": hashlib.sha256(codes.numpy().tobytes()).hexdigest()},
    }
    atomic_torch_save(codes, cpath)
    if model is not None:
        atomic_torch_save(model.state_dict(), cpath.with_name("rqvae.pt"))
    record = write_record(rpath, body, device=cfg.rqvae.device if model is not None else "cpu",
                          env={"num_threads": torch.get_num_threads()},
                          command=command or (f"python -m drlib sids --dataset {cfg.dataset} --features "
                                              f"{cfg.features} --seed {cfg.seed}"))
    log(f"-> {rpath}")
    return record


__all__ = ["REFERENCE_CODEBOOK", "build_sids", "load_codes"]
