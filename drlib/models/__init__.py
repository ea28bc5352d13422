"""Every backbone and its shared parts: the interfaces (:class:`Backbone`, :class:`Recommender`), the shared
layers (:mod:`.layers`), SASRec, the Semantic-ID backbones (HSTU in :mod:`.hstu`, TIGER in :mod:`.tiger`, what they
share in :mod:`.sid_base`) and the latent rewards. DiffuReason wraps these (:mod:`drlib.diffureason`; its
adapters for the SID backbones in :mod:`drlib.diffureason.adapters`); the baselines ReaRec and LARES build on
SASRec (:mod:`drlib.baselines`). The registry of every model by name is :mod:`drlib.registry`."""
from .base import Backbone, NextItemModel, Recommender
from .rewards import latent_rewards, sample_rewards
from .sasrec import SASRec, SASRecConfig

__all__ = ["Backbone", "NextItemModel", "Recommender", "SASRec", "SASRecConfig", "latent_rewards", "sample_rewards"]
