"""A prefix trie over the catalogue's Semantic IDs and batched constrained beam search over it.

Generative backbones (TIGER, HSTU with a SID decoder; Appendix A.1) emit an item as its SID, one level at a
time. Decoding is constrained to the catalogue: at level ``t`` only codes that extend a prefix of some item's
SID are allowed, so every finished beam is a real item (the paper does not describe its decoding; this is
TIGER's usual constrained beam search).

The trie is stored as dense per-level tables (nodes at level ``t`` = distinct SID prefixes of length ``t``,
numbered in lexicographic order; level 0 is the root):

* ``allowed[t]`` ``BoolTensor [n_nodes_t, V_t]``: code ``c`` may follow prefix-node ``p``;
* ``child[t]`` ``IntTensor [n_nodes_t, V_t]``: the node at level ``t + 1`` reached by ``c`` (at the last level:
  the item id), ``-1`` where not allowed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .features import PAD_CODE


class SIDTrie:
    """Prefix trie of ``codes [n_items + 1, L]`` (row 0 = padding, ignored; every item's SID must be unique).

    ``vocab_sizes``: per-level vocabulary ``V_t`` (default ``max code + 1`` per level); the decoder's outputs at
    level ``t`` may be wider than ``V_t`` (extra codes are simply never allowed).
    """

    def __init__(self, codes: torch.Tensor, vocab_sizes: list[int] | tuple[int, ...] | None = None):
        if codes.dim() != 2 or codes.shape[0] < 2 or codes.shape[1] < 1:
            raise ValueError(f"codes must be [n_items + 1, L] (row 0 = padding), got {tuple(codes.shape)}")
        body = codes[1:].long().cpu()
        if (body < 0).any():
            bad = int((body < 0).any(1).nonzero()[0]) + 1
            raise ValueError(f"item {bad} has a negative code {body[bad - 1].tolist()}; every item 1..n needs a SID")
        n, L = body.shape
        if torch.unique(body, dim=0).shape[0] != n:
            raise ValueError("some items share the same SID, so a decoded SID could not name one item. Append "
                             "the disambiguation token first: drlib.sid.add_disambiguation(codes, True).")
        maxes = [int(body[:, t].max()) + 1 for t in range(L)]
        if vocab_sizes is None:
            vocab_sizes = maxes
        vocab_sizes = [int(v) for v in vocab_sizes]
        if len(vocab_sizes) != L or any(v < m for v, m in zip(vocab_sizes, maxes)):
            raise ValueError(f"vocab_sizes {vocab_sizes} must give {L} levels, each > the largest code {maxes}")
        self.codes = torch.cat([torch.full((1, L), PAD_CODE, dtype=torch.long), body])  # [n_items + 1, L]
        self.n_items, self.levels, self.vocab_sizes = n, L, vocab_sizes
        self.allowed: list[torch.Tensor] = []
        self.child: list[torch.Tensor] = []
        node = torch.zeros(n, dtype=torch.long)                 # every item starts at the root
        items = torch.arange(1, n + 1)
        for t in range(L):
            V, c = vocab_sizes[t], body[:, t]
            n_nodes = int(node.max()) + 1
            if t < L - 1:
                _, nxt = torch.unique(node * V + c, return_inverse=True)   # sorted -> lexicographic node ids
            else:
                nxt = items
            child = torch.full((n_nodes, V), -1, dtype=torch.int32)
            child[node, c] = nxt.to(torch.int32)
            self.child.append(child)
            self.allowed.append(child >= 0)
            node = nxt

    def to(self, device: torch.device | str) -> "SIDTrie":
        """Move the tables to ``device`` (in place; returns self)."""
        self.codes = self.codes.to(device)
        self.allowed = [a.to(device) for a in self.allowed]
        self.child = [c.to(device) for c in self.child]
        return self

    @property
    def device(self) -> torch.device:
        return self.codes.device

    def lookup(self, sids: torch.Tensor) -> torch.Tensor:
        """SIDs ``[..., L]`` -> item ids ``[...]`` (0 where the SID is not in the catalogue)."""
        shape = sids.shape[:-1]
        s = sids.reshape(-1, self.levels).long().to(self.device)
        node = torch.zeros(s.shape[0], dtype=torch.long, device=self.device)
        ok = torch.ones_like(node, dtype=torch.bool)
        for t in range(self.levels):
            c = s[:, t]
            inside = (c >= 0) & (c < self.vocab_sizes[t])
            nxt = self.child[t][node, c.clamp(0, self.vocab_sizes[t] - 1)].long()
            ok &= inside & (nxt >= 0)
            node = torch.where(ok, nxt, torch.zeros_like(nxt))
        return torch.where(ok, node, torch.zeros_like(node)).reshape(shape)


@dataclass
class BeamSearchResult:
    """Per user, the top ``K`` items, best first. ``items [B, K]`` (0 = no item: fewer than ``K`` valid beams),
    ``scores [B, K]`` (summed per-level log-probs; ``-inf`` where no item), ``sids [B, K, L]``."""
    items: torch.Tensor
    scores: torch.Tensor
    sids: torch.Tensor


def constrained_beam_search(logits_fn: Callable[[torch.Tensor], torch.Tensor], trie: SIDTrie, batch_size: int,
                            beam_width: int, top_k: int | None = None, log_softmax: bool = True,
                            on_select: Callable[[torch.Tensor], None] | None = None) -> BeamSearchResult:
    """Batched beam search over ``trie``'s SIDs for ``B = batch_size`` users at once.

    ``logits_fn(prefix [B * W, t]) -> [B * W, V'_t]``: the decoder's scores for level ``t`` (``t = 0..L-1``)
    given each beam's prefix; row ``b * W + w`` is user ``b``'s beam ``w`` (so a model repeats each user's
    context ``W`` times). ``V'_t >= trie.vocab_sizes[t]``. Rows of dead beams (fewer live prefixes than ``W``)
    carry arbitrary tokens and their outputs are ignored. With ``log_softmax`` the outputs are normalised over
    the full vocabulary (scores are then the SID's log-likelihood, Eq. 14's codes read as a sequence);
    otherwise they are used as given (already log-probs, or any additive per-level score).

    ``on_select(parent [B * W])``, if given, is called after every level but the last with the row (of the
    previous ``logits_fn`` call) each new beam extends, so a decoder that caches per-row state (keys and
    values) can reorder it and then compute only the new token at the next call.

    Each step keeps, per user, the ``W`` best allowed extensions of the live beams. Ties are broken
    deterministically: within a step by (beam, code) order (stable sort); the final list by score, then by
    smaller item id. With ``W >=`` the number of items no prefix is ever pruned, so the result is the exact
    top-``K`` of all catalogue items. Vectorised over users and beams; the only loop is over the ``L`` levels.
    """
    B, W = int(batch_size), int(beam_width)
    K = W if top_k is None else int(top_k)
    if B < 1 or W < 1 or not 1 <= K <= W:
        raise ValueError(f"need batch_size >= 1 and 1 <= top_k <= beam_width, got {B}, {K}, {W}")
    dev = trie.device
    neg_inf = torch.tensor(float("-inf"), device=dev)
    node = torch.zeros(B, W, dtype=torch.long, device=dev)
    scores = torch.full((B, W), float("-inf"), device=dev)
    scores[:, 0] = 0.0                                           # one live beam (the root) per user
    tokens = torch.zeros(B, W, 0, dtype=torch.long, device=dev)
    for t in range(trie.levels):
        out = logits_fn(tokens.reshape(B * W, t))
        V = trie.vocab_sizes[t]
        if out.dim() != 2 or out.shape[0] != B * W or out.shape[1] < V:
            raise ValueError(f"logits_fn at level {t} returned shape {tuple(out.shape)}; expected "
                             f"[{B * W}, >= {V}] (batch_size * beam_width rows, at least the level's vocabulary)")
        out = out.to(dev, torch.float32)
        if log_softmax:
            out = out.log_softmax(-1)
        Vp = out.shape[1]
        allowed = trie.allowed[t][node]                          # [B, W, V]
        if Vp > V:
            allowed = torch.cat([allowed, allowed.new_zeros(B, W, Vp - V)], 2)
        live = torch.isfinite(scores)[..., None]
        cand = torch.where(allowed & live, scores[..., None] + out.view(B, W, Vp), neg_inf)
        top, idx = cand.view(B, W * Vp).sort(dim=1, descending=True, stable=True)
        top, idx = top[:, :W], idx[:, :W]                        # [B, W]
        beam, tok = idx // Vp, idx % Vp
        ok = torch.isfinite(top)
        nxt = trie.child[t][node.gather(1, beam), tok.clamp_max(V - 1)].long()
        node = torch.where(ok, nxt, torch.zeros_like(nxt))
        tokens = torch.cat([tokens.gather(1, beam[..., None].expand(B, W, t)), tok[..., None]], 2)
        scores = top
        if on_select is not None and t < trie.levels - 1:
            on_select((beam + torch.arange(B, device=dev)[:, None] * W).reshape(B * W))
    ok = torch.isfinite(scores)
    items = torch.where(ok, node, torch.zeros_like(node))
    o1 = items.argsort(dim=1, stable=True)                           # secondary key: item id ascending
    o2 = scores.gather(1, o1).argsort(dim=1, descending=True, stable=True)
    order = o1.gather(1, o2)[:, :K]
    items, scores = items.gather(1, order), scores.gather(1, order)
    sids = tokens.gather(1, order[..., None].expand(B, K, trie.levels))
    sids = torch.where(items[..., None] > 0, sids, torch.full_like(sids, PAD_CODE))
    return BeamSearchResult(items, scores, sids)
