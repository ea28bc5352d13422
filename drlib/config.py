"""Frozen dataclass configs, ``--set`` overrides and the config hash. The profiles' values and
:func:`~drlib.registry.make_config` live in :mod:`drlib.registry` (they need the models).

Profiles (see the book's reproduction notes for the reasons):

* ``smoke``: the synthetic dataset (or any dataset you name), a tiny model, a few epochs: seconds.
* ``cpu``:   real data, reduced to fit a 2-core machine: width 64 (not 256), FFN 256, dropout 0.3, lr 3e-3,
             at most 40 epochs with early stopping (patience 4) on validation NDCG@10 (chosen on validation for
             the plateau: the reproduction notes' "Strong backbones"; results/profile-search/); the DiffuReason
             models, which learn more slowly and noisily, at most 100 epochs with patience 10.
* ``paper``: Table 5 exactly (300 epochs, batch 512, lr 1e-3 for SASRec), fp32, best validation epoch kept;
             meant for a GPU.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field

from .utils import stable_hash

PROFILES = ("smoke", "cpu", "paper")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "beauty"
    max_len: int = 20              # histories truncated to the most recent 20 items (Sec. 4.1)
    path: str | None = None        # explicit data location (your file's path); not part of the hash
    verify: bool = True            # check sha256 of registered files; not part of the hash
    # your own file (drlib.data.register_dataset / --data-file fills these); hashed only when set, so the
    # benchmarks' hashes stay as they were and two different files never share a run id
    file_sha256: str | None = None
    file_format: str | None = None
    file_kcore: int | None = None
    file_min_rating: float | None = None

    def __post_init__(self):
        if self.max_len < 1:
            raise ValueError(f"data.max_len must be >= 1, got {self.max_len}")
        if self.file_sha256 is not None and (self.path is None or self.file_format is None):
            raise ValueError("data.file_sha256 describes your own file: data.path and data.file_format must be set "
                             "with it (drlib.data.register_dataset or --data-file fills them)")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 300              # Table 5 (an upper bound when early stopping is on)
    batch_size: int = 512          # Table 5
    lr: float = 1e-3               # Table 5 (SASRec)
    weight_decay: float = 0.0
    patience: int | None = 10      # epochs without a better validation score before stopping; None = never
    grad_clip: float | None = None
    length_buckets: int = 50       # batches of similar history length (0 = plain shuffle); see train.epoch_batches
    bf16: bool = False             # bf16 autocast (AMX on this CPU, tensor cores on GPU)
    eval_batch_size: int = 1024
    device: str = "auto"           # not part of the hash
    num_threads: int | None = None  # not part of the hash

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError(f"train.epochs/batch_size/eval_batch_size must be >= 1: {self}")
        if not self.lr > 0:
            raise ValueError(f"train.lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"train.weight_decay must be >= 0, got {self.weight_decay}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"train.patience must be >= 1 or none, got {self.patience}")


@dataclass(frozen=True)
class EvalConfig:
    ks: tuple[int, ...] = (5, 10)
    mask_history: bool = True
    select_metric: str = "ndcg@10"  # model selection / early stopping, on validation only

    def __post_init__(self):
        if not self.ks or min(self.ks) < 1:
            raise ValueError(f"eval.ks must be positive integers, got {self.ks}")
        name, _, k = self.select_metric.partition("@")
        if name not in ("recall", "ndcg") or not k.isdigit() or int(k) not in self.ks:
            raise ValueError(f"eval.select_metric must be recall@K or ndcg@K with K in eval.ks={self.ks}, "
                             f"got {self.select_metric!r}")


@dataclass(frozen=True)
class RunConfig:
    model_name: str
    profile: str
    seed: int
    data: DataConfig
    model: typing.Any
    train: TrainConfig
    eval: EvalConfig = field(default_factory=EvalConfig)
    experiment: str = "main"       # folder under results/; not part of the hash
    variant: str | None = None     # an ablation's row name (Table 3), stored as the label; not part of the hash
    model_label: str = ""          # the model's name in the paper's tables (set by the registry); not hashed

    @property
    def label(self) -> str:
        """The name the tables use: the ablation row, else the model's label, else its registry name."""
        return self.variant or self.model_label or self.model_name

    def to_dict(self) -> dict:
        """The config as stored in a record: ``model`` is the registry name, ``model_config`` its settings."""
        d = dataclasses.asdict(self)
        return {"dataset": self.data.dataset, "model": self.model_name, "profile": self.profile,
                "seed": self.seed, "data": d["data"], "model_config": d["model"], "train": d["train"],
                "eval": d["eval"]}

    def hash_dict(self) -> dict:
        return hash_layout(self.to_dict())

    @property
    def config_hash(self) -> str:
        return stable_hash(self.hash_dict())

    @property
    def run_id(self) -> str:
        return f"{self.model_name}-{self.data.dataset}-{self.profile}-seed{self.seed}-{self.config_hash[:10]}"


# Settings added after records were stored, with the value that reproduces the behaviour from before they
# existed: at that value a setting is left out of the hash, so those records keep their ids (and a record stored
# without the field rebuilds). Keyed by the path under the model config.
HASH_NEUTRAL: dict[tuple[str, ...], dict[str, object]] = {
    ("module",): {"align_scope": "all", "logp_reduction": "sum", "rollouts": 0, "backbone_weight": 0.0,
                  "init_noise": 1.0, "sample_scale": 1.0, "reward_screen": 32},
}


def _drop_neutral(model: dict) -> dict:
    model = dict(model)
    for path, neutral in HASH_NEUTRAL.items():
        parent, node = None, model
        for key in path:
            if not isinstance(node, dict) or key not in node:
                node = None
                break
            parent, node = node, node[key]
        if isinstance(node, dict):
            parent[path[-1]] = {k: v for k, v in node.items() if not (k in neutral and v == neutral[k])}
    return model


def hash_layout(config: dict) -> dict:
    """A stored run config (``RunConfig.to_dict()``, a record's ``config``) -> the dict its hash is taken of.

    The layout is kept stable so stored results keep their ids: the model's settings under ``"model"`` (the
    registry name enters through those settings' structure and through the run id); the data location, the
    device and the thread count are left out, and so are later settings at their neutral value
    (:data:`HASH_NEUTRAL`)."""
    d = dict(config)
    d["model"] = _drop_neutral(d.pop("model_config"))
    d["data"] = {k: v for k, v in d["data"].items()      # data.file_*: only for your own file, when set
                 if k not in ("path", "verify") and not (k.startswith("file_") and v is None)}
    d["train"] = {k: v for k, v in d["train"].items() if k not in ("device", "num_threads")}
    return d


def stored_config_hash(config: dict) -> str:
    """The config hash of a stored run config: equal to the record's ``config_hash`` unless it was altered."""
    return stable_hash(hash_layout(config))


def _parse_value(text: str, tp, where: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _parse_value(text, inner[0], where)
    if origin is tuple:
        return tuple(_parse_value(x, args[0], where) for x in text.split(",") if x.strip())
    try:
        if tp is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if tp is int:
            return int(text)
        if tp is float:
            return float(text)
        if tp is str:
            return text
    except ValueError:
        pass
    raise ValueError(f"--set {where}={text!r}: expected a value of type {getattr(tp, '__name__', tp)}")


def _replace_path(obj, path: list[str], value: str, item: str, where: str):
    """Return a copy of the dataclass ``obj`` with the dotted ``path`` set to the parsed ``value``."""
    hints = typing.get_type_hints(type(obj))
    name = path[0]
    if name not in hints:
        raise ValueError(f"--set {item!r}: {where} has no field {name!r}; fields: {', '.join(hints)}")
    if len(path) == 1:
        if dataclasses.is_dataclass(hints[name]):
            raise ValueError(f"--set {item!r}: {where}.{name} is a group; set one of its fields, e.g. "
                             f"{where}.{name}.{dataclasses.fields(hints[name])[0].name}=...")
        new = _parse_value(value.strip(), hints[name], f"{where}.{name}")
    else:
        child = getattr(obj, name)
        if not dataclasses.is_dataclass(child):
            raise ValueError(f"--set {item!r}: {where}.{name} has no sub-fields")
        new = _replace_path(child, path[1:], value, item, f"{where}.{name}")
    return dataclasses.replace(obj, **{name: new})


def replace_typed(obj, **changes):
    """``dataclasses.replace(obj, **changes)`` with each value checked against its field's type: ints become
    floats where the field is a float (so ``alpha=1`` and ``--set ...alpha=1`` give one hash), and a value of
    another type is a ``TypeError`` naming the field. Sweeps and ablations change settings through this."""
    hints = typing.get_type_hints(type(obj))
    out = {}
    for name, value in changes.items():
        if name not in hints:
            raise TypeError(f"{type(obj).__name__} has no field {name!r}; fields: {', '.join(hints)}")
        tp = hints[name]
        options = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
        if value is None and type(None) in options:
            out[name] = None
            continue
        if float in options and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        basic = [t for t in options if t in (bool, int, float, str)]
        if basic and not any(type(value) is t for t in basic):
            raise TypeError(f"{type(obj).__name__}.{name} takes {' or '.join(t.__name__ for t in basic)}, "
                            f"got {value!r}")
        out[name] = value
    return dataclasses.replace(obj, **out)


def apply_overrides(cfg: RunConfig, overrides: typing.Sequence[str]) -> RunConfig:
    """Apply ``section.field=value`` strings (sections: data, model, train, eval; nested fields with more dots,
    e.g. ``model.module.group_size=4``)."""
    for item in overrides:
        key, eq, value = item.partition("=")
        section, dot, rest = key.strip().partition(".")
        if not eq or not dot:
            raise ValueError(f"--set {item!r}: write SECTION.FIELD=VALUE, e.g. train.lr=5e-4")
        if section not in ("data", "model", "train", "eval"):
            raise ValueError(f"--set {item!r}: unknown section {section!r}; use data, model, train or eval")
        cfg = dataclasses.replace(cfg, **{section: _replace_path(getattr(cfg, section), rest.split("."), value,
                                                                 item, section)})
    return cfg
