"""The registry: every model by name, the profiles, and the configs built from them.

``MODELS[name]`` gives the model's config class, the label the paper's tables use, and a builder
``build(cfg, n_items, max_len, **resources) -> Recommender`` (``resources``: what a model needs from outside its
config, e.g. ``item_table`` for Semantic IDs built from a trained model's item embeddings). :func:`make_config`
turns a model name, a dataset, a profile and overrides into a :class:`~drlib.config.RunConfig`;
:func:`config_from_record` rebuilds the config of a stored run.

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
import json
from dataclasses import replace
import typing
from dataclasses import dataclass
from typing import Callable

from .baselines.lares import LARESConfig, build_lares
from .baselines.rearec import ReaRecConfig, ReaRecSettings, build_rearec
from .config import PROFILES, DataConfig, EvalConfig, RunConfig, TrainConfig, apply_overrides, replace_typed
from .data.registry import file_fields, get_spec
from .diffureason.ablations import ablation_settings
from .diffureason.adapters import check_reward, reasoning_backbone
from .diffureason.module import DiffuReason, DiffuReasonSettings
from .models.base import Backbone, NextItemModel, Recommender
from .models.hstu import HSTUConfig, build_hstu
from .models.sasrec import SASRec, SASRecConfig
from .models.tiger import TIGERConfig, build_tiger


@dataclass(frozen=True)
class Profile:
    """A model's settings in one profile, in its own terms: its config (the dataset filled in by
    :func:`make_config`) and the training config."""
    model: object
    train: TrainConfig


@dataclass(frozen=True)
class ModelEntry:
    config_cls: type
    label: str
    build: Callable[..., Recommender]
    description: str
    profiles: dict[str, Profile]          # one per name in config.PROFILES
    # the builder takes ``item_table=`` (Semantic IDs that may be built from a trained model's item table)
    reads_sids: bool = False
    backbone: str | None = None           # DiffuReason models: the registry name of the backbone they wrap


# --------------------------------------------------------------------------- the profiles (typed, per backbone)
# smoke: the synthetic dataset (or any dataset you name), a tiny model, a few epochs: seconds.
_SMOKE_TRAIN = TrainConfig(epochs=10, batch_size=128, lr=3e-3, patience=5, eval_batch_size=512)
_PAPER_TRAIN = TrainConfig(epochs=300, patience=None, bf16=False)        # Table 5: 300 epochs, batch 512, lr 1e-3

SASREC_PROFILES = {
    "smoke": Profile(SASRecConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, dropout=0.1), _SMOKE_TRAIN),
    # Reduced for a 2-core CPU (the reproduction notes, "Strong backbones"): width 64 instead of 256 makes the
    # full-softmax output layer 4x cheaper. Dropout and lr chosen on validation NDCG@10 (seed 0, Beauty, 40-epoch
    # cap, patience 4) among dropout {0.2, 0.3, 0.5} x lr {1e-3, 3e-3}: 0.3 / 3e-3 was best (0.0722; best epoch
    # 18 of the 40 allowed; results/profile-search/). Table 5: d 256, FFN 300, dropout 0.5, lr 1e-3, 300 epochs.
    "cpu": Profile(SASRecConfig(d_model=64, d_ff=256, dropout=0.3), TrainConfig(epochs=40, patience=4, lr=3e-3)),
    "paper": Profile(SASRecConfig(), _PAPER_TRAIN),                       # Table 5 exactly
}

# The generative (Semantic-ID) backbones keep Table 5's sizes in the cpu profile (they are already small: HSTU
# d=50, TIGER d=128) and take Table 5's batch sizes. The cpu profile's lr is larger than Table 5's 1e-4 so that
# they converge within its 30-epoch budget; the paper profile uses 1e-4. HSTU (item head): lr 3e-3, patience 4,
# chosen on validation NDCG@10 among lr {1e-3, 3e-3} x dropout {0.2, 0.4} within the 5-minute training budget
# (dropout 0.4 / lr 1e-3 was 2% higher on validation but needed 26 epochs: results/profile-search/).
HSTU_PROFILES = {
    "smoke": Profile(HSTUConfig(d_model=32, n_layers=1, n_heads=2, decoder_d_ff=64, dropout=0.1,
                                sid_source="random"), _SMOKE_TRAIN),
    "cpu": Profile(HSTUConfig(), TrainConfig(epochs=30, patience=4, lr=3e-3, batch_size=512)),
    "paper": Profile(HSTUConfig(), replace(_PAPER_TRAIN, lr=1e-4, batch_size=512)),
}
TIGER_PROFILES = {
    "smoke": Profile(TIGERConfig(d_model=32, d_ff=64, n_heads=2, d_kv=16, n_enc_layers=1, n_dec_layers=1,
                                 dropout=0.1, sid_source="random"), _SMOKE_TRAIN),
    "cpu": Profile(TIGERConfig(), TrainConfig(epochs=30, patience=3, lr=1e-3, batch_size=256)),
    "paper": Profile(TIGERConfig(), replace(_PAPER_TRAIN, lr=1e-4, batch_size=256)),
}


def _on(backbone_profiles: dict[str, Profile], wrap: Callable[[object], object],
        train: dict[str, dict] | None = None) -> dict[str, Profile]:
    """A model built on a backbone takes the backbone's profiles: ``wrap(backbone config)``, the same training
    except the ``train`` changes given per profile name."""
    train = train or {}
    return {name: Profile(wrap(p.model), replace(p.train, **train.get(name, {})))
            for name, p in backbone_profiles.items()}


# DiffuReason learns much more slowly than its backbone in its first epochs (Beauty, seed 0: validation NDCG@10
# 0.012, 0.017, 0.020, 0.021 after epochs 1-4 against SASRec's 0.07 plateau), so in the cpu profile it gets a
# 100-epoch cap instead of its backbone's 30-40 (the paper trains 300): it is compared at its plateau. Its
# validation score is also noisier (the GRPO term; an L_diff spike): under the backbone's patience of 4 the
# literal DiffuReason-S seed 0 stopped at epoch 22, three epochs after a spike (validation NDCG@10 0.0398 at its
# best epoch 18, 0.0324 at 21), and the "align: refinement only" reading swings by 0.005 from one epoch to the
# next, about ten epochs of its progress; so the patience is 10.
_DIFFUREASON_TRAIN = {"cpu": {"epochs": 100, "patience": 10}}


@dataclass(frozen=True)
class DiffuReasonSConfig:
    """DiffuReason-S: the SASRec backbone (``backbone``) plus the module settings (``module``)."""
    backbone: SASRecConfig = SASRecConfig()
    module: DiffuReasonSettings = DiffuReasonSettings()


@dataclass(frozen=True)
class DiffuReasonHConfig:
    """DiffuReason-H: the SID-augmented HSTU backbone (``backbone``) plus the module settings (``module``)."""
    backbone: HSTUConfig = HSTUConfig()
    module: DiffuReasonSettings = DiffuReasonSettings()


@dataclass(frozen=True)
class DiffuReasonTConfig:
    """DiffuReason-T: the TIGER backbone (``backbone``) plus the module settings (``module``)."""
    backbone: TIGERConfig = TIGERConfig()
    module: DiffuReasonSettings = DiffuReasonSettings()


def _build_diffureason_s(cfg: DiffuReasonSConfig, n_items: int, max_len: int) -> Recommender:
    return DiffuReason(SASRec(cfg.backbone, n_items, max_len), cfg.module)


def _build_diffureason_h(cfg: DiffuReasonHConfig, n_items: int, max_len: int, item_table=None) -> Recommender:
    # the reasoner takes the largest head count <= module.reasoner_heads dividing d (HSTU's d = 50 -> 5 heads);
    # on the SID head the rewards come from greedy SID decoding (hit@1 only), on the item head from the argmax
    if cfg.backbone.head == "sid":
        check_reward(cfg.module.reward)
    return DiffuReason(reasoning_backbone(build_hstu(cfg.backbone, n_items, max_len, item_table=item_table)), cfg.module,
                       fit_reasoner_heads=True)


def _build_diffureason_t(cfg: DiffuReasonTConfig, n_items: int, max_len: int, item_table=None) -> Recommender:
    check_reward(cfg.module.reward)
    return DiffuReason(reasoning_backbone(build_tiger(cfg.backbone, n_items, max_len, item_table=item_table)), cfg.module,
                       fit_reasoner_heads=True)


MODELS: dict[str, ModelEntry] = {
    "sasrec": ModelEntry(SASRecConfig, "SASRec",
                         lambda cfg, n_items, max_len: NextItemModel(SASRec(cfg, n_items, max_len)),
                         "SASRec, full-softmax cross-entropy on the last position (Table 5)", SASREC_PROFILES),
    "diffureason-s": ModelEntry(DiffuReasonSConfig, "DiffuReason-S", _build_diffureason_s,
                                "SASRec + DiffuReason (thinking tokens, diffusion refinement, GRPO), end to end",
                                _on(SASREC_PROFILES, lambda b: DiffuReasonSConfig(backbone=b), _DIFFUREASON_TRAIN),
                                backbone="sasrec"),
    "rearec-erl": ModelEntry(ReaRecConfig, "ReaRec-ERL", lambda c, n, m: build_rearec(c, n, m, "erl"),
                             "ReaRec on SASRec: K=2 latent reasoning steps, ensemble reasoning learning (Table 2)",
                             _on(SASREC_PROFILES, lambda b: ReaRecConfig(backbone=b, reasoning=ReaRecSettings("erl")))),
    "rearec-prl": ModelEntry(ReaRecConfig, "ReaRec-PRL", lambda c, n, m: build_rearec(c, n, m, "prl"),
                             "ReaRec on SASRec: K=2 latent reasoning steps, progressive reasoning learning (Table 2)",
                             _on(SASREC_PROFILES, lambda b: ReaRecConfig(backbone=b, reasoning=ReaRecSettings("prl")))),
    "lares": ModelEntry(LARESConfig, "LARES", build_lares,
                        "LARES on SASRec's parts: pre-block + recurrent core (k=4), self-supervised then RL (Table 2)",
                        _on(SASREC_PROFILES, lambda b: LARESConfig(backbone=b))),
    "hstu": ModelEntry(HSTUConfig, "HSTU", build_hstu,
                       "HSTU over item-ID + Semantic-ID embeddings; item-level head (default: dot product with the "
                       "tied item table, full softmax) or SID decoder with constrained beam search (model.head=sid, "
                       "Appendix A.1)", HSTU_PROFILES, reads_sids=True),
    "tiger": ModelEntry(TIGERConfig, "TIGER", build_tiger,
                        "TIGER: T5-style encoder-decoder over Semantic-ID tokens, constrained beam search "
                        "(Appendix A.1)", TIGER_PROFILES, reads_sids=True),
    "diffureason-h": ModelEntry(
        DiffuReasonHConfig, "DiffuReason-H", _build_diffureason_h,
        "HSTU (SIDs) + DiffuReason: on the item head (default) the refined latent is scored against the item table "
        "as in DiffuReason-S; on the SID head it is a second SID-decoder context token [h_L, z] with Hit@1 rewards "
        "from greedy constrained decoding (Appendix A.1)",
        _on(HSTU_PROFILES, lambda b: DiffuReasonHConfig(backbone=b), _DIFFUREASON_TRAIN), reads_sids=True,
        backbone="hstu"),
    "diffureason-t": ModelEntry(
        DiffuReasonTConfig, "DiffuReason-T", _build_diffureason_t,
        "TIGER + DiffuReason: the refined latent is one more cross-attention memory token; "
        "Hit@1 rewards from greedy constrained decoding (Appendix A.1)",
        _on(TIGER_PROFILES, lambda b: DiffuReasonTConfig(backbone=b), _DIFFUREASON_TRAIN), reads_sids=True,
        backbone="tiger"),
}


def get_model_entry(name: str) -> ModelEntry:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def build_model(name: str, cfg, n_items: int, max_len: int, item_table=None) -> Recommender:
    """The model ``name`` from its config. ``item_table`` (``run_id -> (table, info)``) reaches the Semantic-ID
    models whose SIDs come from a trained model's item embeddings (``sid_source="collaborative"``)."""
    entry = get_model_entry(name)
    if not isinstance(cfg, entry.config_cls):
        raise TypeError(f"model {name!r} needs a {entry.config_cls.__name__}, got {type(cfg).__name__}")
    if entry.reads_sids:
        return entry.build(cfg, n_items, max_len, item_table=item_table)
    return entry.build(cfg, n_items, max_len)


# --------------------------------------------------------------------------- configs
def profile_of(model_name: str, profile: str) -> Profile:
    """The typed :class:`Profile` of a model (``KeyError`` naming the known ones)."""
    if profile not in PROFILES:
        raise KeyError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    return get_model_entry(model_name).profiles[profile]


def default_sid_source(dataset: str) -> str:
    """The Semantic IDs a SID model uses on ``dataset`` unless told otherwise: LETTER's reference SIDs where the
    dataset ships them (Beauty, Instruments), else our RQ-VAE over the attribute ids where it has those (Sports),
    else ``"reference"`` (whose error then lists the options). On Beauty the three sources gave HSTU the same
    accuracy within noise (reproduction notes, "Semantic IDs")."""
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
    prof = profile_of(model, profile)
    dataset = dataset or ("synthetic" if profile == "smoke" else "beauty")
    data = DataConfig(dataset=dataset, **file_fields(dataset, data_path))   # file_*: your own file
    train = replace(prof.train, device=device) if device else prof.train
    cfg = RunConfig(model_name=model, profile=profile, seed=seed, data=data,
                    model=_with_dataset(prof.model, dataset),
                    train=train, experiment=experiment, model_label=entry.label)
    if ablation is not None:
        if not hasattr(cfg.model, "module"):
            raise ValueError(f"--ablation applies to DiffuReason models (e.g. diffureason-s), not {model!r}")
        cfg = dataclasses.replace(with_module(cfg, **ablation_settings(ablation)), variant=ablation)
    return apply_overrides(cfg, overrides)


def with_module(cfg: RunConfig, **changes) -> RunConfig:
    """``cfg`` with its DiffuReason module settings changed (typed, :func:`~drlib.config.replace_typed`): how
    sweeps and Table 3's rows are made. ``ValueError`` for a model without a DiffuReason module.

    >>> with_module(make_config("diffureason-s", "beauty"), group_size=4).model.module.group_size
    4
    """
    if not hasattr(cfg.model, "module"):
        raise ValueError(f"{cfg.model_name!r} has no DiffuReason module settings (model.module); use a "
                         "DiffuReason model, e.g. diffureason-s")
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, module=replace_typed(cfg.model.module,
                                                                                               **changes)))


def _fmt_override(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_fmt_override(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def _diff_overrides(prefix: str, ours, theirs) -> list[str]:
    """``section.field=value`` strings that turn the dict ``ours`` into ``theirs`` (nested dicts recursed)."""
    out = []
    for k, v in theirs.items():
        mine = ours.get(k) if isinstance(ours, dict) else None
        if isinstance(v, dict):
            out += _diff_overrides(f"{prefix}.{k}", mine or {}, v)
        elif json.loads(json.dumps(mine, default=list)) != v:
            out.append(f"{prefix}.{k}={_fmt_override(v)}")
    return out


def config_from_record(rec: dict):
    """Rebuild the :class:`~drlib.config.RunConfig` of a stored run record: the record's profile, then every
    field where the stored config differs from the profile's default as an override. The result must reproduce
    the record's ``config_hash`` (else ``ValueError``)."""
    c = rec["config"]
    experiment = rec.get("experiment", "main")
    cfg = make_config(c["model"], c["dataset"], c["profile"], c["seed"], experiment=experiment)
    mine = cfg.to_dict()
    skip = {"data": ("path", "verify"), "train": ("device", "num_threads")}
    overrides = []
    for section, key in (("data", "data"), ("model", "model_config"), ("train", "train"), ("eval", "eval")):
        theirs = {k: v for k, v in c[key].items() if k not in skip.get(section, ())}
        overrides += _diff_overrides(section, mine[key], theirs)
    cfg = apply_overrides(cfg, overrides)
    if rec.get("label") and rec["label"] != cfg.label:
        cfg = dataclasses.replace(cfg, variant=rec["label"])
    if cfg.config_hash != rec.get("config_hash") or cfg.run_id != rec.get("run_id"):
        raise ValueError(f"could not rebuild the config of run {rec.get('run_id')!r}: got {cfg.run_id} "
                         f"(hash {cfg.config_hash}), the record says hash {rec.get('config_hash')}. The record "
                         "may predate config fields added since (their defaults now enter the hash); pick another "
                         "run.")
    return cfg


def describe_fields() -> str:
    """Human-readable list of every overridable field, for ``--help``."""
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
