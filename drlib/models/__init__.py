"""The models' shared parts: the interfaces (:class:`Backbone`, :class:`Recommender`), SASRec and its layers,
and the latent rewards. The registry of every model by name is :mod:`drlib.registry`."""
from .base import Backbone, NextItemModel, Recommender
from .rewards import latent_rewards, sample_rewards
from .sasrec import SASRec, SASRecConfig

__all__ = ["Backbone", "NextItemModel", "Recommender", "SASRec", "SASRecConfig", "latent_rewards", "sample_rewards"]
