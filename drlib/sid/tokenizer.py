"""The tokenizer config (Appendix A, Table 4): what a Semantic-ID tokenization of a dataset's catalogue is built
from, its hash and id, and ``--set FIELD=VALUE`` overrides.

One :class:`TokenizerConfig` names a feature source and the RQ-VAE settings; its ``config_hash`` covers only the
fields that change the codes of that source, and ``tokenizer_id = <dataset>-<features>-seed<seed>-<hash[:10]>``
names its record and codes (:mod:`drlib.sid.store`). :mod:`drlib.sid.build` builds it.

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
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Sequence

from .rqvae import RQVAEConfig
from ..config import _replace_path
from ..utils import stable_hash

FEATURE_SOURCES = ("attributes", "collaborative", "reference", "text")
SCALES = ("rms", "standardize", "none")
DEFAULT_COLLAB_RUN = "diffureason-s-beauty-cpu-seed0-b0f10a379c"   # DiffuReason-S, Beauty, cpu profile, seed 0


@dataclass(frozen=True)
class TokenizerConfig:
    """What :func:`drlib.sid.build.build_sids` builds. Frozen; ``config_hash`` covers only the fields that change
    the codes."""
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

    @classmethod
    def from_dict(cls, d: dict) -> "TokenizerConfig":
        """The config a record's ``config`` (:meth:`to_dict`) describes; fields it lacks keep their defaults."""
        return cls(**{**d, "rqvae": RQVAEConfig(**d["rqvae"])})

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


__all__ = ["DEFAULT_COLLAB_RUN", "FEATURE_SOURCES", "SCALES", "TokenizerConfig", "apply_tokenizer_overrides",
           "describe_tokenizer_fields"]
