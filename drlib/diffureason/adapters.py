"""DiffuReason on the Semantic-ID backbones (DiffuReason-H, DiffuReason-T; Appendix A.1).

:class:`~drlib.diffureason.module.DiffuReason` reaches its backbone only through the hooks of
:class:`~drlib.models.base.Backbone` (``reasoning_memory``, ``latent_loss``, ``target_latent``, ``latent_rewards``,
``latent_scores``). The adapters here implement them on a trained-from-scratch :class:`HSTU` or :class:`TIGER`
(held as the submodule ``sid``), so that the refined latent ``z`` conditions the SID decoder:

* **HSTU** (``HSTUReasoning``): ``H = hstu.encode(x)`` ``[B, L, d]``, padding ``x == 0``; ``state = h_L``
  ``[B, 1, d]``. The decoder's context is ``[h_L, z]`` (two context tokens, ``m = 2``; A.1: "the refined latent is
  provided as additional conditioning context for SID prediction").
* **TIGER** (``TIGERReasoning``): ``(memory, pad) = tiger.encode(x)`` ``[B, L*Lc, d]``; ``H = memory``,
  ``state = (memory, pad)``. ``z`` is appended to the memory as one more (never padded) token the decoder
  cross-attends to (A.1: "injecting the refined latent tokens ... as additional cross-attention context").

Common to both:

* ``L_rec`` (Eq. 13): the backbone's own teacher-forced SID cross-entropy (mean over levels,
  :meth:`SIDRecommender.sid_loss`) with the context built from ``mu``.
* ``v_target`` (Eq. 7; our choice, the paper does not say): the target item as the encoder reads it, without
  position: HSTU ``(E_item[i] + sum_t E_t[c_t(i)]) * sqrt(d)`` (the ``sqrt(d)`` scale included, so the anchor
  lives at the scale of the encoder's input tokens rather than near 0); TIGER the mean of the item's ``Lc`` SID
  token embeddings (TIGER reads ``tok_emb`` unscaled).
* Rewards (Eq. 9, Hit@1): 1 when greedy constrained decoding from sample ``z_i``'s context (constrained beam
  search of width 1 over the trie; :meth:`SIDReasoningBackbone.greedy_items` runs it for all ``B * G`` samples
  in one batched search) returns the target. Computed without decoding: greedy decoding returns the target
  exactly when, at every level, the target's code is the best allowed code given the target's own prefix (with
  the beam search's tie rule: the smaller code wins a tie), and that is one teacher-forced decoder pass over
  the target's SID for all ``B * G`` samples (about 3x faster on CPU than the 5-level greedy search, which
  re-runs the decoder on the growing prefix; the same result as the search up to float rounding of near-tied
  logits, a test compares the two). Only ``reward="hit@1"`` is supported (a ValueError names it otherwise). The decoder runs in
  eval mode for this (no dropout): like SASRec's dot product, the reward is a deterministic function of the
  sample. For TIGER the ``G`` samples of a user share one copy of the memory: the decoder reads
  ``[memory, z_1..z_G]`` with a cross-attention mask that shows sample ``i``'s queries only ``memory`` and ``z_i``
  (the same as ``G`` separate ``[memory, z_i]`` memories, without the ``G``-fold key/value projections).
* ``latent_scores`` (``full_scores``): constrained beam search (width ``beam_width``) from ``mu``'s context, scored
  exactly as :meth:`SIDRecommender.full_scores` (:meth:`SIDRecommender.full_scores_from`, ``eval_chunk`` users at
  a time).
* ``item_embeddings()`` returns the ``v_target`` table of all items ``[N, d]`` (row 0 zeros; cheap), so the
  explorer's distance to the target embedding still means something. ``score`` / ``item_logits`` (dot products
  with that table) are meaningless here and raise ``NotImplementedError``; the Sec. 4.6 probes
  (:mod:`drlib.probes`) decode every trajectory stage through ``latent_scores`` instead, while the explorer
  (:mod:`drlib.explorer`) still needs ``score`` and so serves DiffuReason-S only.
* **HSTU with the item head** (``HSTUItemReasoning``, ``model.backbone.head="item"``): HSTU is then an ID-style
  backbone like SASRec and keeps the default hooks of :class:`~drlib.models.base.Backbone`: the reasoner attends
  to ``H = hstu.encode(x)``, ``v_target`` and the scores use the tied table ``e(i)`` (:meth:`HSTU.item_table`),
  ``L_rec`` is the full-softmax cross-entropy of ``mu``, rewards are Hit@1 of the argmax over the catalogue
  (exactly as DiffuReason-S).
* The reasoner's heads: ``DiffuReason(..., fit_reasoner_heads=True)``, i.e. the largest head count
  ``<= reasoner_heads`` (8) that divides ``d`` (HSTU's ``d = 50``: 5 heads; TIGER's 128: 8).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..models.base import Backbone
from ..sid import constrained_beam_search
from ..models.hstu import HSTU
from ..models.sid_base import SIDRecommender
from ..models.tiger import TIGER
from ..utils import eval_mode

SUPPORTED_REWARDS = ("hit@1",)


def check_reward(kind: str) -> None:
    """Raise unless ``kind`` (``model.module.reward``) is a reward the Semantic-ID backbones compute."""
    if kind not in SUPPORTED_REWARDS:
        raise ValueError(f"reward {kind!r} is not supported on a Semantic-ID backbone (DiffuReason-H / -T); "
                         f"supported: {', '.join(SUPPORTED_REWARDS)} (the greedily decoded item is the target)")


class SIDReasoningBackbone(Backbone):
    """A :class:`SIDRecommender` (``sid``) seen through the DiffuReason backbone hooks.

    Subclasses implement :meth:`reasoning_memory`, :meth:`target_latent`, :meth:`context` (decoder context from
    a state and a latent ``[B, d]``), :meth:`select` (rows of a state), :meth:`sample_step_fn` and
    :meth:`sample_level_logits` (the decoder run from every policy sample's context).
    """

    def __init__(self, sid: SIDRecommender):
        super().__init__()
        self.sid = sid
        self.d_model, self.n_items = sid.d_model, sid.n_items

    # ---------------------------------------------------------------- to implement
    def context(self, state, latent: torch.Tensor):
        """The SID decoder's context (as ``sid.level_logits`` / ``sid.step_logits`` take it) for ``latent [B, d]``."""
        raise NotImplementedError

    def select(self, state, rows: torch.Tensor):
        """The state of users ``rows`` (index tensor)."""
        raise NotImplementedError

    def sample_step_fn(self, state, z: torch.Tensor):
        """``z [B, G, d]`` -> ``logits_fn(prefix [B*G, t]) -> [B*G, V_t]`` (row ``b*G + i`` = sample ``z[b, i]``)."""
        raise NotImplementedError

    def sample_level_logits(self, state, z: torch.Tensor, codes: torch.Tensor) -> list[torch.Tensor]:
        """Teacher forcing from every sample's context: ``codes [B*G, Lc]`` -> per level ``[B*G, V_t]``."""
        raise NotImplementedError

    # ---------------------------------------------------------------- Backbone
    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        """The states the reasoner attends to (TIGER: the token-level memory ``[B, L*Lc, d]``)."""
        return self.reasoning_memory(seqs)[1]

    def item_embeddings(self) -> torch.Tensor:
        """The ``v_target`` table of every item ``[N, d]`` (row 0 = padding, zeros)."""
        return self.target_latent(torch.arange(self.n_items + 1, device=self.sid.codes.device))

    def score(self, latent):
        raise NotImplementedError(f"{type(self).__name__}: a Semantic-ID backbone has no dot-product item scores; "
                                  "use latent_scores(state, latent) (constrained beam search from the latent)")

    def item_logits(self, latent):
        self.score(latent)

    # ---------------------------------------------------------------- DiffuReason hooks
    def latent_loss(self, state, latent, targets):
        return self.sid.sid_loss(self.context(state, latent), targets)[0]

    def backbone_loss(self, state, H, targets):
        """The backbone's own SID cross-entropy from its own context (``state``: HSTU's ``h_L``, TIGER's memory)."""
        return self.sid.sid_loss(state, targets)[0]

    @torch.no_grad()
    def latent_rewards(self, state, z, targets, kind="hit@1", screen=32):
        """Hit@1 of greedy constrained SID decoding (``screen`` is for catalogue scoring; decoding ignores it)."""
        check_reward(kind)
        B, G, _ = z.shape
        tgt = targets.to(z.device).repeat_interleave(G)                          # [B*G]
        codes = self.sid.codes[tgt]                                               # [B*G, Lc]
        with eval_mode(self.sid):
            logits = self.sample_level_logits(state, z, codes)
        trie = self.sid.device_trie()
        node = torch.zeros_like(tgt)
        score = torch.zeros(tgt.shape, device=z.device)
        hit = torch.ones_like(tgt, dtype=torch.bool)
        for t, lg in enumerate(logits):                                           # mirrors constrained_beam_search
            V = trie.vocab_sizes[t]
            cand = (score[:, None] + lg.float().log_softmax(-1))[:, :V]
            cand = cand.masked_fill(~trie.allowed[t][node], float("-inf"))
            c = codes[:, t]
            ct = cand.gather(1, c[:, None])                                       # the target's code: allowed
            beaten = (cand > ct) | ((cand == ct) & (torch.arange(V, device=z.device) < c[:, None]))
            hit &= ~beaten.any(1)
            score, node = ct[:, 0], trie.child[t][node, c].long()
        return hit.view(B, G).to(z.dtype)

    @torch.no_grad()
    def greedy_items(self, state, z: torch.Tensor) -> torch.Tensor:
        """Greedy constrained decoding (beam width 1) of every sample ``z [B, G, d]`` -> item ids ``[B, G]``, in the
        current train/eval mode. :meth:`latent_rewards` is ``greedy_items == target`` (in eval mode)."""
        B, G, _ = z.shape
        return self._greedy(self.sample_step_fn(state, z), B * G).view(B, G)

    def latent_scores(self, state, latent):
        rows = torch.arange(latent.shape[0], device=latent.device)
        return self.sid.full_scores_from(lambda r: self.context(self.select(state, r), latent[r]), rows)

    def _greedy(self, logits_fn, n_rows: int) -> torch.Tensor:
        return constrained_beam_search(logits_fn, self.sid.device_trie(), n_rows, 1).items[:, 0]


class HSTUReasoning(SIDReasoningBackbone):
    """DiffuReason-H's backbone: context ``[h_L, z]`` for the SID decoder (see the module docstring)."""

    sid: HSTU

    def reasoning_memory(self, inputs):
        H = self.sid.encode(inputs)
        return H[:, -1:], H, inputs == 0

    def context(self, state, latent):
        return torch.cat([state, latent[:, None].to(state.dtype)], 1)           # [B, 2, d]

    def select(self, state, rows):
        return state[rows]

    def target_latent(self, targets):
        return self.sid.embed(targets[:, None])[:, 0] * math.sqrt(self.d_model)

    def _sample_context(self, state, z):
        B, G, d = z.shape
        return torch.cat([state.repeat_interleave(G, 0), z.reshape(B * G, 1, d).to(state.dtype)], 1)   # [B*G, 2, d]

    def sample_step_fn(self, state, z):
        ctx = self._sample_context(state, z)
        return lambda prefix: self.sid.decode_logits(ctx, prefix)

    def sample_level_logits(self, state, z, codes):
        return self.sid.level_logits(self._sample_context(state, z), codes)


class TIGERReasoning(SIDReasoningBackbone):
    """DiffuReason-T's backbone: the latent is one more memory token for cross-attention (module docstring)."""

    sid: TIGER

    def reasoning_memory(self, inputs):
        memory, pad = self.sid.encode(inputs)
        return (memory, pad), memory, pad

    def context(self, state, latent):
        memory, pad = state
        return (torch.cat([memory, latent[:, None].to(memory.dtype)], 1),
                torch.cat([pad, pad.new_zeros(pad.shape[0], 1)], 1))

    def select(self, state, rows):
        return state[0][rows], state[1][rows]

    def target_latent(self, targets):
        return self.sid.tok_emb(self.sid.item_tokens[targets]).mean(1)

    def _sample_states(self, state, z, prefix):
        """Decoder states ``[B*G, t + 1, d]`` for ``prefix [B*G, t]``, sample ``i`` of user ``b`` (row ``b*G + i``)
        cross-attending to ``[memory_b, z_bi]``: one memory ``[memory, z_1..z_G]`` per user, masked per sample."""
        memory, pad = state
        B, G, _ = z.shape
        S, n = memory.shape[1], prefix.shape[1] + 1                               # n: BOS + prefix tokens
        mem = torch.cat([memory, z.to(memory.dtype)], 1)                          # [B, S + G, d]
        own = torch.eye(G, dtype=torch.bool, device=z.device).repeat_interleave(n, 0)   # query j*n+i -> z_j
        ok = torch.cat([(~pad)[:, None, :].expand(B, G * n, S), own[None].expand(B, G * n, G)], -1)
        bias = torch.zeros(ok.shape, dtype=mem.dtype, device=mem.device).masked_fill(~ok, float("-inf"))
        return self.sid.decoder_states(mem, torch.cat([pad, pad.new_zeros(B, G)], 1), prefix,
                                       cross_bias=bias[:, None])

    def sample_step_fn(self, state, z):
        return lambda prefix: self.sid._level_head(self._sample_states(state, z, prefix)[:, -1], prefix.shape[1])

    def sample_level_logits(self, state, z, codes):
        s = self._sample_states(state, z, codes[:, :self.sid.levels - 1])
        return [self.sid._level_head(s[:, t], t) for t in range(self.sid.levels)]


class HSTUItemReasoning(Backbone):
    """DiffuReason-H's backbone on HSTU's item head: ``encode`` = HSTU's, ``item_embeddings`` = the tied table
    ``e(i)`` ``[N, d]``; every DiffuReason hook is the ID-based default (module docstring)."""

    def __init__(self, sid: HSTU):
        super().__init__()
        if sid.head != "item":
            raise ValueError(f"HSTUItemReasoning needs an HSTU with head='item', got head={sid.head!r}")
        self.sid = sid
        self.d_model, self.n_items = sid.d_model, sid.n_items

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        return self.sid.encode(seqs)

    def item_embeddings(self) -> torch.Tensor:
        return self.sid.item_table()

    def item_logits(self, latent: torch.Tensor) -> torch.Tensor:
        return self.sid.item_logits(latent)

    def target_latent(self, targets: torch.Tensor) -> torch.Tensor:
        return self.sid.embed(targets)


def reasoning_backbone(sid: SIDRecommender) -> Backbone:
    """The adapter for an :class:`HSTU` (by its head) or :class:`TIGER` instance."""
    if isinstance(sid, HSTU):
        return HSTUItemReasoning(sid) if sid.head == "item" else HSTUReasoning(sid)
    if isinstance(sid, TIGER):
        return TIGERReasoning(sid)
    raise TypeError(f"no DiffuReason adapter for {type(sid).__name__}; expected HSTU or TIGER")


__all__ = ["HSTUItemReasoning", "HSTUReasoning", "SIDReasoningBackbone", "SUPPORTED_REWARDS", "TIGERReasoning", "check_reward",
           "reasoning_backbone"]
