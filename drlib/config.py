"""Frozen dataclass configs, the three profiles, ``--set`` overrides and the config hash.

Profiles (see the book's reproduction notes for the reasons):

* ``smoke``: the synthetic dataset (or any dataset you name), a tiny model, a few epochs: seconds.
* ``cpu``:   real data, reduced to fit a 2-core machine: width 64 (not 256), FFN 256, dropout 0.3, lr 3e-3,
             at most 40 epochs with early stopping (patience 4) on validation NDCG@10 (chosen on validation for
             the plateau: the reproduction notes' "Strong backbones"; results/profile-search/).
* ``paper``: Table 5 exactly (300 epochs, batch 512, lr 1e-3 for SASRec), fp32, best validation epoch kept;
             meant for a GPU.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field

from .models import get_model_entry
from .utils import stable_hash

PROFILES = ("smoke", "cpu", "paper")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "beauty"
    max_len: int = 20              # histories truncated to the most recent 20 items (Sec. 4.1)
    path: str | None = None        # explicit data location; not part of the hash
    verify: bool = True            # check sha256 of registered files; not part of the hash

    def __post_init__(self):
        if self.max_len < 1:
            raise ValueError(f"data.max_len must be >= 1, got {self.max_len}")


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

    @property
    def label(self) -> str:
        return self.variant or get_model_entry(self.model_name).label

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


def hash_layout(config: dict) -> dict:
    """A stored run config (``RunConfig.to_dict()``, a record's ``config``) -> the dict its hash is taken of.

    The layout is kept stable so stored results keep their ids: the model's settings under ``"model"`` (the
    registry name enters through those settings' structure and through the run id); the data location, the
    device and the thread count are left out."""
    d = dict(config)
    d["model"] = d.pop("model_config")
    d["data"] = {k: v for k, v in d["data"].items() if k not in ("path", "verify")}
    d["train"] = {k: v for k, v in d["train"].items() if k not in ("device", "num_threads")}
    return d


def stored_config_hash(config: dict) -> str:
    """The config hash of a stored run config: equal to the record's ``config_hash`` unless it was altered."""
    return stable_hash(hash_layout(config))


def _profile_parts(model_name: str, profile: str) -> tuple[dict, dict, dict]:
    """(data, model, train) keyword overrides of a profile, for a model.

    A model's registry entry may replace the model and train parts per profile (``ModelEntry.profiles``:
    the generative backbones keep Table 5's sizes and batch sizes in the cpu profile)."""
    if profile not in PROFILES:
        raise KeyError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    data, model, train = _default_profile_parts(profile)
    own = (get_model_entry(model_name).profiles or {}).get(profile)
    if own is not None:
        model, train = dict(own[0]), {**train, **own[1]}
    return data, model, train


def _default_profile_parts(profile: str) -> tuple[dict, dict, dict]:
    if profile == "smoke":
        model = {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "dropout": 0.1}
        return {}, model, {"epochs": 10, "batch_size": 128, "lr": 3e-3, "patience": 5, "eval_batch_size": 512}
    if profile == "cpu":
        # Reduced for a 2-core CPU (see the book's reproduction notes): width 64 instead of 256 makes the
        # full-softmax output layer 4x cheaper. Dropout and lr chosen on validation NDCG@10 (seed 0, Beauty,
        # 40-epoch cap, patience 4) among dropout {0.2, 0.3, 0.5} x lr {1e-3, 3e-3}: 0.3 / 3e-3 was best
        # (0.0722; best epoch 18 of the 40 allowed). Table 5: dropout 0.5, lr 1e-3, 300 epochs.
        model = {"d_model": 64, "d_ff": 256, "dropout": 0.3}
        return {}, model, {"epochs": 40, "patience": 4, "lr": 3e-3}
    return {}, {}, {"epochs": 300, "patience": None, "bf16": False}


def default_sid_source(dataset: str) -> str:
    """The Semantic IDs a SID model uses on ``dataset`` unless told otherwise: LETTER's reference SIDs where the
    dataset ships them (Beauty, Instruments), else our RQ-VAE over the attribute ids where it has those (Sports),
    else ``"reference"`` (whose error then lists the options). On Beauty the three sources gave HSTU the same
    accuracy within noise (reproduction notes, "Semantic IDs")."""
    from .data.registry import get_spec
    try:
        extra = get_spec(dataset).extra
    except KeyError:
        return "reference"
    if "reference_sids" not in extra and "attributes" in extra:
        return "attributes"
    return "reference"


def _with_dataset(model_cfg, dataset: str):
    """Fill an empty ``dataset`` field (the Semantic-ID models load their dataset's SIDs through it) on the
    model config or on its ``backbone``, with the dataset's default SID source (:func:`default_sid_source`) in
    place of the class default ``"reference"``; other configs are returned unchanged."""
    if hasattr(model_cfg, "dataset") and not model_cfg.dataset:
        kw = {"dataset": dataset}
        if getattr(model_cfg, "sid_source", None) == "reference":
            kw["sid_source"] = default_sid_source(dataset)
        return dataclasses.replace(model_cfg, **kw)
    if dataclasses.is_dataclass(getattr(model_cfg, "backbone", None)):
        bb = _with_dataset(model_cfg.backbone, dataset)
        if bb is not model_cfg.backbone:
            return dataclasses.replace(model_cfg, backbone=bb)
    return model_cfg


def make_config(model: str = "sasrec", dataset: str | None = None, profile: str = "cpu", seed: int = 0,
                overrides: typing.Sequence[str] = (), experiment: str = "main", data_path: str | None = None,
                device: str | None = None, ablation: str | None = None) -> RunConfig:
    """Build a :class:`RunConfig` from a profile and ``section.field=value`` overrides.

    ``ablation`` names a row of Table 3 (:data:`drlib.diffureason.ablations.ABLATIONS`): its overrides are
    applied before ``overrides`` and the row name becomes the label (``"w/o RL"`` -> ``"w/o RL"``).

    >>> make_config("sasrec", "beauty", "cpu", overrides=["train.lr=5e-4"]).train.lr
    0.0005
    """
    entry = get_model_entry(model)
    d_kw, m_kw, t_kw = _profile_parts(model, profile)
    dataset = dataset or ("synthetic" if profile == "smoke" else "beauty")
    data = DataConfig(dataset=dataset, path=data_path, **d_kw)
    train = TrainConfig(**t_kw, **({"device": device} if device else {}))
    cfg = RunConfig(model_name=model, profile=profile, seed=seed, data=data,
                    model=_with_dataset(entry.config_from_backbone_kwargs(m_kw), dataset),
                    train=train, experiment=experiment)
    if ablation is not None:
        from .diffureason.ablations import ablation_overrides
        if not hasattr(cfg.model, "module"):
            raise ValueError(f"--ablation applies to DiffuReason models (e.g. diffureason-s), not {model!r}")
        cfg = dataclasses.replace(apply_overrides(cfg, ablation_overrides(ablation)), variant=ablation)
    return apply_overrides(cfg, overrides)


def _parse_value(text: str, tp, where: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
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


def describe_fields() -> str:
    """Human-readable list of every overridable field, for ``--help``."""
    from .models import MODELS
    lines = []
    sections = [("data", DataConfig), ("train", TrainConfig), ("eval", EvalConfig)]
    sections += [(f"model ({name})", e.config_cls) for name, e in MODELS.items()]
    for sec, cls in sections:
        parts = []
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(f.default):
                parts.append(f"{f.name}.{{" + ", ".join(f"{g.name}={g.default!r}"
                                                      for g in dataclasses.fields(f.default)) + "}")
            else:
                parts.append(f"{f.name}={f.default!r}")
        lines.append(f"  {sec}: " + ", ".join(parts))
    return "\n".join(lines)
