"""Generative backbones over Semantic IDs (Appendix A.1): HSTU with SID inputs and an autoregressive SID
decoder, and TIGER (T5-style encoder-decoder). Both are :class:`~drlib.models.base.Recommender` s: teacher-forced
SID cross-entropy for training, constrained beam search for full-catalogue scores."""
from .base import SID_SOURCES, SIDRecommender, default_codes, random_codes, strictly_decreasing
from .hstu import HSTU, HSTUConfig, HSTULayer, SIDDecoder, build_hstu
from .tiger import TIGER, TIGERConfig, build_tiger

__all__ = ["SID_SOURCES", "SIDRecommender", "default_codes", "random_codes", "strictly_decreasing",
           "HSTU", "HSTUConfig", "HSTULayer", "SIDDecoder", "build_hstu",
           "TIGER", "TIGERConfig", "build_tiger"]
