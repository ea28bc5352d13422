"""The feature sources of a tokenization: ``features [n_items + 1, F]`` (row 0 zeros) for a
:class:`~drlib.sid.tokenizer.TokenizerConfig` whose source is trained (attributes, collaborative, text), scaled as
its ``scale`` says. LETTER's reference SIDs need no features (:func:`~drlib.sid.features.load_reference_sids`).

The collaborative source is the item table of a trained model; nothing here loads models: the caller hands in an
:data:`ItemTable` (``drlib.runner.collaborative_item_table``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from .features import collaborative_features, load_attribute_features, read_item_text, text_features
from .tokenizer import SCALES, TokenizerConfig
from ..data import load_sequences
from ..data.registry import sha256_of

# A trained model's item table, by run id: ``run_id -> (table [n_items + 1, d], info)``. The collaborative
# features need one; the caller hands it in (drlib.runner.collaborative_item_table), nothing here loads models.
ItemTable = Callable[[str], "tuple[torch.Tensor, dict]"]


def dataset_n_items(dataset: str) -> int:
    """The catalogue size drlib uses for ``dataset`` (largest item id of its sequences)."""
    seqs, n_items = load_sequences(dataset)
    return int(n_items or max(max(s) for s in seqs if s))


def scale_features(x: torch.Tensor, scale: str) -> torch.Tensor:
    """Apply :attr:`TokenizerConfig.scale` to ``x [n_items + 1, F]`` (row 0 stays zero)."""
    if scale == "none":
        return x
    x = x.clone()
    body = x[1:].double()
    if scale == "rms":
        body = body / body.pow(2).mean().sqrt().clamp_min(1e-12)
    elif scale == "standardize":
        body = (body - body.mean(0)) / body.std(0, unbiased=False).clamp_min(1e-12)
    else:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    x[1:] = body.to(x.dtype)
    x[0] = 0.0
    return x


def load_features(cfg: TokenizerConfig, item_table: ItemTable | None = None) -> tuple[torch.Tensor, dict]:
    """``(features [n_items + 1, F] after scaling, info)`` of a trained source (attributes, collaborative, text).

    ``item_table``: how to get the trained item table of ``cfg.collab_run`` (collaborative features only)."""
    if cfg.features == "attributes":
        n_items = dataset_n_items(cfg.dataset)
        x = load_attribute_features(cfg.dataset, n_items=n_items, weighting=cfg.attribute_weighting,
                                    dim=cfg.attribute_dim, reduce=cfg.attribute_reduce, seed=cfg.seed)
        info: dict = {"source": "S3-Rec item2attributes"}
    elif cfg.features == "collaborative":
        if item_table is None:
            raise ValueError("collaborative features are the item table of a trained model: pass item_table=, e.g. "
                             "drlib.runner.collaborative_item_table (the `sids` command and the runner do)")
        table, info = item_table(cfg.collab_run)
        x = collaborative_features(table, standardize=cfg.collab_standardize, normalize=cfg.collab_normalize)
    elif cfg.features == "text":
        path = Path(cfg.text_path).expanduser()
        texts, missing = read_item_text(path, n_items=dataset_n_items(cfg.dataset))
        x = text_features(texts, cfg.text_model)
        info = {"source": "item text", "text_path": str(path), "text_sha256": sha256_of(path),
                "text_model": cfg.text_model, "items_without_text": len(missing)}
    else:
        raise ValueError(f"features={cfg.features!r} is not a trained source; use load_reference_sids")
    x = scale_features(x, cfg.scale)
    info.update(shape=list(x.shape), scale=cfg.scale, mean_sq=float(x[1:].pow(2).mean()))
    return x, info


__all__ = ["ItemTable", "dataset_n_items", "load_features", "scale_features"]
