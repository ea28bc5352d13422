"""Semantic IDs (Appendix A, Eq. 14-15, Table 4): item features, the RQ-VAE tokenizer, the SID trie and
constrained beam search used by the generative backbones (HSTU with SIDs, TIGER), and stored, cached tokenizations
of a dataset with their stats (``python -m drlib sids``): :mod:`~drlib.sid.tokenizer` (the config),
:mod:`~drlib.sid.sources` (feature sources), :mod:`~drlib.sid.stats`, :mod:`~drlib.sid.store` (records and codes),
:mod:`~drlib.sid.build` (builds and loads them) and :mod:`~drlib.sid.table` (the printed table).

Codes are ``LongTensor [n_items + 1, L]`` with row 0 (padding) = ``PAD_CODE`` (-1); features are
``[n_items + 1, F]`` with row 0 zeros.
"""
from .features import (PAD_CODE, attribute_features, collaborative_features, load_attribute_features,
                       load_reference_sids, read_item2attributes, read_item_text, read_reference_sids,
                       resolve_text_model, text_features)
from .rqvae import (RQVAE, RQVAEConfig, RQVAEOutput, add_disambiguation, assign_sids, kmeans, sid_stats,
                    train_rqvae)
from .trie import BeamSearchResult, SIDTrie, constrained_beam_search
from .tokenizer import TokenizerConfig
from .stats import tokenization_stats
from .build import build_sids, load_codes

__all__ = [
    "PAD_CODE", "attribute_features", "collaborative_features", "load_attribute_features", "load_reference_sids",
    "read_item2attributes", "read_item_text", "read_reference_sids", "resolve_text_model", "text_features",
    "RQVAE", "RQVAEConfig", "RQVAEOutput", "add_disambiguation", "assign_sids", "kmeans", "sid_stats",
    "train_rqvae",
    "BeamSearchResult", "SIDTrie", "constrained_beam_search",
    "TokenizerConfig", "build_sids", "load_codes", "tokenization_stats",
]
