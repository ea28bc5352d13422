"""Build, store and compare Semantic-ID tokenizations of a dataset's catalogue (Appendix A, Table 4).

One :class:`TokenizerConfig` names a feature source and the RQ-VAE settings; :func:`build_sids` turns it into

* a record ``results/tokenizer/<id>.json`` (``config``, ``config_hash``, ``stats``, ``train``, ``timing``,
  ``env``, ``command``): the numbers the tokenizer comparison reads, and
* the code matrix ``runs/tokenizer/<id>/codes.pt`` (``LongTensor [n_items + 1, M (+1)]``, row 0 = ``PAD_CODE``;
  a cache, git-ignored), plus the trained RQ-VAE's weights ``rqvae.pt`` next to it,

with ``<id> = <dataset>-<features>-seed<seed>-<config_hash[:10]>``. A stored record whose codes file exists is
returned as it is unless ``force=True``. Every file is written atomically (temporary file + ``os.replace``).

Feature sources (``features=``):

* ``"attributes"``: S3-Rec's anonymous brand/category ids (:func:`~drlib.sid.features.load_attribute_features`;
  Beauty, Sports): TF-IDF bag of attribute ids, L2-normalised rows, optionally SVD-reduced.
* ``"collaborative"``: the item table of a trained model's backbone (``model.backbone.item_embeddings()``, or
  ``model.item_embeddings()`` for a plain backbone), standardised per column
  (:func:`~drlib.sid.features.collaborative_features`). The model is the finished run ``collab_run``: its record
  under ``results/<experiment>/<collab_run>.json`` gives the config, its weights are
  ``runs/<experiment>/<collab_run>/model.pt``.
* ``"reference"``: LETTER's precomputed 4 x 256 SIDs (Beauty, Instruments); nothing is trained.
* ``"text"``: the paper's route (Sec. 5.1) for data with item text: the file ``text_path``
  (:func:`~drlib.sid.features.read_item_text`) embedded by ``text_model`` (default ``"minilm"``: all-MiniLM-L6-v2,
  offline; the paper used Qwen3-Embedding-8B), unit-length rows. The shipped datasets have no item text.

``scale`` (applies to the two trained sources; not in the paper): ``"rms"`` multiplies the feature matrix by one
scalar so that the mean squared entry over the item rows is 1, which keeps the geometry and puts the
reconstruction MSE on the scale of the quantization terms of Eq. 15. Without it the L2-normalised 637-column
TF-IDF rows of Beauty have a per-coordinate MSE of ~1.6e-3 and the latent collapses onto one codeword within
5 epochs (measured: 1 of 256 codes used at every level, every item the same SID). ``"standardize"``: z-score
each column; ``"none"``: as built.

The stats (:func:`tokenization_stats`) extend :func:`~drlib.sid.rqvae.sid_stats` with the disambiguation
counts, per-level perplexity and distinct prefixes, and the collision floor the features impose (items whose
feature row equals another item's can never get distinct codes).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from .features import (PAD_CODE, collaborative_features, load_attribute_features, load_reference_sids,
                       read_item_text, text_features)
from .rqvae import RQVAEConfig, add_disambiguation, assign_sids, sid_stats, train_rqvae
from ..config import _replace_path
from ..data import load_sequences
from ..data.registry import sha256_of
from ..results import read_record, results_dir, runs_dir, write_record
from ..utils import atomic_torch_save, repo_relative, stable_hash

# A trained model's item table, by run id: ``run_id -> (table [n_items + 1, d], info)``. The collaborative
# features need one; the caller hands it in (drlib.runner.collaborative_item_table), nothing here loads models.
ItemTable = Callable[[str], "tuple[torch.Tensor, dict]"]

EXPERIMENT = "tokenizer"
FEATURE_SOURCES = ("attributes", "collaborative", "reference", "text")
SCALES = ("rms", "standardize", "none")
REFERENCE_CODEBOOK = 256          # LETTER's SIDs: 4 levels x 256 codes
DEFAULT_COLLAB_RUN = "diffureason-s-beauty-cpu-seed0-b0f10a379c"   # DiffuReason-S, Beauty, cpu profile, seed 0


@dataclass(frozen=True)
class TokenizerConfig:
    """What :func:`build_sids` builds. Frozen; ``config_hash`` covers only the fields that change the codes."""
    dataset: str = "beauty"
    features: str = "attributes"            # "attributes" | "collaborative" | "reference" | "text"
    rqvae: RQVAEConfig = RQVAEConfig()       # Table 4 defaults (20,000 epochs: override for a CPU run)
    seed: int = 0                            # RQ-VAE init, batch order, k-means, re-seeding
    collab_run: str = DEFAULT_COLLAB_RUN     # run id (results/<experiment>/<id>.json) of the collaborative model
    scale: str = "rms"                       # feature scaling before the RQ-VAE, see the module docstring
    attribute_weighting: str = "tfidf"       # attribute_features(weighting=): "tfidf" or "binary"
    attribute_dim: int | None = None         # attribute_features(dim=): None keeps every attribute id column
    attribute_reduce: str = "svd"            # attribute_features(reduce=): "svd" or "random"
    collab_standardize: bool = True          # collaborative_features(standardize=)
    collab_normalize: bool = False           # collaborative_features(normalize=)
    text_path: str | None = None             # features="text": the item-text file (read_item_text's formats)
    text_model: str = "minilm"               # features="text": sentence-transformers model, path or "minilm"

    def __post_init__(self):
        if self.features not in FEATURE_SOURCES:
            raise ValueError(f"unknown features={self.features!r}; choose one of {', '.join(FEATURE_SOURCES)} "
                             "(attributes: S3-Rec brand/category ids; collaborative: a trained model's item "
                             "table; reference: LETTER's precomputed SIDs; text: item text from a file)")
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {self.scale!r}")
        if self.attribute_weighting not in ("tfidf", "binary"):
            raise ValueError(f"attribute_weighting must be 'tfidf' or 'binary', got {self.attribute_weighting!r}")
        if self.attribute_reduce not in ("svd", "random"):
            raise ValueError(f"attribute_reduce must be 'svd' or 'random', got {self.attribute_reduce!r}")
        if self.attribute_dim is not None and self.attribute_dim < 1:
            raise ValueError(f"attribute_dim must be a positive int or None, got {self.attribute_dim}")
        if self.features == "collaborative" and not self.collab_run:
            raise ValueError("features='collaborative' needs collab_run: the run id of a finished run whose "
                             f"model gives the item table (e.g. {DEFAULT_COLLAB_RUN})")
        if self.features == "text" and not self.text_path:
            raise ValueError("features='text' needs text_path: a file of item texts (.json {item_id: text}, .jsonl "
                             "or item_id<TAB>text lines; ids 1..n as in the dataset). The shipped datasets have no "
                             "item text.")
        if not isinstance(self.rqvae, RQVAEConfig):
            raise TypeError(f"rqvae must be an RQVAEConfig, got {type(self.rqvae).__name__}")

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self), default=list))

    def hash_dict(self) -> dict:
        """The hashed fields: only those that change the codes of this feature source (``rqvae.device`` never)."""
        d = self.to_dict()
        if self.features == "reference":
            return {"dataset": d["dataset"], "features": d["features"]}
        d["rqvae"] = {k: v for k, v in d["rqvae"].items() if k != "device"}
        drop = {"attributes": ("collab_", "text_"), "collaborative": ("attribute_", "text_"),
                "text": ("attribute_", "collab_")}[self.features]
        return {k: v for k, v in d.items() if not k.startswith(drop)}

    @property
    def config_hash(self) -> str:
        return stable_hash(self.hash_dict())

    @property
    def tokenizer_id(self) -> str:
        return f"{self.dataset}-{self.features}-seed{self.seed}-{self.config_hash[:10]}"


def apply_tokenizer_overrides(cfg: TokenizerConfig, overrides: Sequence[str]) -> TokenizerConfig:
    """``FIELD=VALUE`` / ``rqvae.FIELD=VALUE`` strings (e.g. ``rqvae.epochs=300``, ``attribute_dim=64``,
    ``rqvae.codebook_sizes=256,256,256``) -> a new config."""
    for item in overrides:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"--set {item!r}: write FIELD=VALUE, e.g. rqvae.epochs=300 or attribute_dim=64")
        cfg = _replace_path(cfg, key.strip().split("."), value, item, "tokenizer")
    return cfg


def describe_tokenizer_fields() -> str:
    """The overridable fields with their defaults, for ``--help``."""
    top = [f"{f.name}={f.default!r}" for f in dataclasses.fields(TokenizerConfig)
           if f.name not in ("dataset", "features", "seed", "rqvae", "collab_run")]
    rq = [f"rqvae.{f.name}={f.default!r}" for f in dataclasses.fields(RQVAEConfig)]
    return "  " + ", ".join(top) + "\n  " + ", ".join(rq)


# --------------------------------------------------------------------------- paths and the cache
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
    return torch.load(cpath, map_location="cpu"), json.loads(rpath.read_text())


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


# --------------------------------------------------------------------------- feature sources
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


# --------------------------------------------------------------------------- stats
def duplicate_rows(x: torch.Tensor) -> int:
    """Items (rows 1..n) whose row equals another item's row: they can never get distinct RQ-VAE codes."""
    _, inv, counts = torch.unique(x[1:], dim=0, return_inverse=True, return_counts=True)
    return int((counts[inv] > 1).sum())


def tokenization_stats(codes: torch.Tensor, levels: int, codebook_sizes: Sequence[int],
                       features: torch.Tensor | None = None) -> dict:
    """Stats of codes ``[n_items + 1, levels (+1)]`` whose first ``levels`` columns are the SID.

    :func:`~drlib.sid.rqvae.sid_stats` of the ``levels`` columns (``utilization``, ``codes_used``,
    ``collision_rate`` *before* disambiguation, ``max_collision``, ``unique_sids``, ``n_items``), plus
    ``perplexity`` per level (``exp`` of the entropy of the code usage; ``K`` = perfectly balanced),
    ``distinct_prefixes`` (distinct prefixes of length 1..levels), ``collided_items`` (items sharing their SID),
    ``collision_groups`` (SIDs shared by >= 2 items), ``items_disambiguated`` (items whose disambiguation token is
    not 0: every colliding item but the first of its group), ``disambiguation_vocab`` (codes the extra token
    needs, 0 when none), ``sid_length`` and ``unique_after_disambiguation``. With ``features``:
    ``duplicate_feature_items`` and ``collision_floor`` (their fraction: the lowest collision rate any
    tokenizer of these features can reach).
    """
    s = sid_stats(codes, tuple(codebook_sizes), levels=levels)
    body = codes[1:, :levels]
    n = body.shape[0]
    perplexity, prefixes = [], []
    for m in range(levels):
        p = torch.bincount(body[:, m]).double() / n
        p = p[p > 0]
        perplexity.append(float(torch.exp(-(p * p.log()).sum())))
        prefixes.append(int(torch.unique(body[:, :m + 1], dim=0).shape[0]))
    _, inv, counts = torch.unique(body, dim=0, return_inverse=True, return_counts=True)
    collided = int((counts[inv] > 1).sum())
    groups = int((counts > 1).sum())
    s.update(perplexity=perplexity, distinct_prefixes=prefixes, collided_items=collided, collision_groups=groups,
             items_disambiguated=collided - groups,
             disambiguation_vocab=int(counts.max()) if groups else 0,
             sid_length=int(codes.shape[1]),
             unique_after_disambiguation=int(torch.unique(codes[1:], dim=0).shape[0]) == n)
    if features is not None:
        dup = duplicate_rows(features)
        s.update(duplicate_feature_items=dup, collision_floor=dup / n)
    return s


# --------------------------------------------------------------------------- build
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


# --------------------------------------------------------------------------- presentation
def stats_table(records: Sequence[dict]) -> str:
    """A plain-text table, one column per record: per-level codes used / utilisation / perplexity / distinct
    prefixes, then collisions, disambiguation and time."""
    if not records:
        return ""
    names = [r["config"]["features"] for r in records]
    levels = max(len(r["stats"]["codes_used"]) for r in records)
    rows: list[tuple[str, list[str]]] = []

    def per_level(key, fmt):
        for m in range(levels):
            rows.append((f"{key} L{m + 1}", [fmt(r["stats"][key][m]) if m < len(r["stats"][key]) else "-"
                                             for r in records]))

    rows.append(("items", [str(r["stats"]["n_items"]) for r in records]))
    per_level("codes_used", str)
    per_level("utilization", lambda v: f"{v:.3f}")
    per_level("perplexity", lambda v: f"{v:.1f}")
    per_level("distinct_prefixes", str)
    st = [r["stats"] for r in records]
    rows += [
        ("unique SIDs (M codes)", [str(s["unique_sids"]) for s in st]),
        ("collision rate", [f"{s['collision_rate']:.4f}" for s in st]),
        ("collision floor (dup. features)", [f"{s['collision_floor']:.4f}" if "collision_floor" in s else "-"
                                             for s in st]),
        ("items sharing a SID", [str(s["collided_items"]) for s in st]),
        ("shared SIDs (groups)", [str(s["collision_groups"]) for s in st]),
        ("items with disamb. token > 0", [str(s["items_disambiguated"]) for s in st]),
        ("largest group / extra vocab", [str(s["max_collision"]) for s in st]),
        ("SID length", [str(s["sid_length"]) for s in st]),
        ("RQ-VAE epochs", [str(r["train"].get("epochs", "-")) if r["train"] else "-" for r in records]),
        ("final recon MSE", [f"{r['train']['final']['recon']:.4f}" if r["train"] else "-" for r in records]),
        ("train seconds", [f"{r['timing']['train_seconds']:.0f}" for r in records]),
        ("total seconds", [f"{r['timing']['total_seconds']:.0f}" for r in records]),
    ]
    w0 = max(len(k) for k, _ in rows)
    w = [max(len(n), *(len(v[i]) for _, v in rows)) for i, n in enumerate(names)]
    lines = [" " * w0 + "  " + "  ".join(n.rjust(wi) for n, wi in zip(names, w))]
    lines += [k.ljust(w0) + "  " + "  ".join(v.rjust(wi) for v, wi in zip(vals, w)) for k, vals in rows]
    return "\n".join(lines)


__all__ = ["DEFAULT_COLLAB_RUN", "EXPERIMENT", "FEATURE_SOURCES", "PAD_CODE", "TokenizerConfig",
           "apply_tokenizer_overrides", "build_sids", "codes_path",
           "load_codes", "load_features", "load_tokenizer_record", "record_path",
           "scale_features", "stats_table", "tokenization_stats"]
