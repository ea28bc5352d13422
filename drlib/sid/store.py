"""Where tokenizations are stored: the record ``results/tokenizer/<id>.json`` (written by
:func:`drlib.sid.build.build_sids` through :func:`drlib.results.write_record`) and the code matrix
``runs/tokenizer/<id>/codes.pt`` (``LongTensor [n_items + 1, M (+1)]``, row 0 = ``PAD_CODE``; a cache,
git-ignored) with the trained RQ-VAE's weights ``rqvae.pt`` beside it; ``<id>`` is
:attr:`~drlib.sid.tokenizer.TokenizerConfig.tokenizer_id`. Records are read through
:func:`drlib.results.read_record`.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .tokenizer import TokenizerConfig
from ..results import read_record, results_dir, runs_dir

EXPERIMENT = "tokenizer"


def _results_dir(root=None) -> Path:
    return Path(root or results_dir())


def _runs_dir(root=None) -> Path:
    return Path(root or runs_dir())


def record_path(cfg: TokenizerConfig, results_root=None) -> Path:
    return _results_dir(results_root) / EXPERIMENT / f"{cfg.tokenizer_id}.json"


def codes_path(cfg: TokenizerConfig, runs_root=None) -> Path:
    return _runs_dir(runs_root) / EXPERIMENT / cfg.tokenizer_id / "codes.pt"


def load_tokenizer_record(cfg: TokenizerConfig, results_root=None) -> dict | None:
    p = record_path(cfg, results_root)
    if not p.exists():
        return None
    rec = read_record(p)
    if rec.get("config_hash") != cfg.config_hash:
        raise ValueError(f"{p} holds config_hash {rec.get('config_hash')}, expected {cfg.config_hash}; "
                         "delete it or rebuild with force=True")
    return rec


def load_stored_codes(tokenizer_id: str, results_root=None, runs_root=None) -> tuple[torch.Tensor, dict]:
    """``(codes, record)`` of a tokenization already built, by its id (the record's file name under
    ``results/tokenizer/``); ``FileNotFoundError`` listing the stored ids when it is not there."""
    rpath = _results_dir(results_root) / EXPERIMENT / f"{tokenizer_id}.json"
    cpath = _runs_dir(runs_root) / EXPERIMENT / tokenizer_id / "codes.pt"
    if not rpath.exists() or not cpath.exists():
        have = sorted(p.stem for p in rpath.parent.glob("*.json"))
        raise FileNotFoundError(f"no built tokenization {tokenizer_id!r} (looked for {rpath} and {cpath}); "
                                "build it with `python -m drlib sids ...` (its record names the id). Stored: "
                                f"{', '.join(have) or 'none'}")
    return torch.load(cpath, map_location="cpu"), read_record(rpath)


__all__ = ["EXPERIMENT", "codes_path", "load_stored_codes", "load_tokenizer_record", "record_path"]
