"""TIGER (Rajput et al. 2023): a T5-style encoder-decoder that generates the next item's Semantic ID.

Table 5 / Appendix A.1: 4 encoder + 4 decoder layers, ``d_model`` 128, ``d_ff`` 1024, 6 heads, dropout 0.1,
ReLU FFN. 6 heads do not divide 128; as in T5 (and TIGER: "6 self-attention heads of dimension 64") the head
width ``d_kv`` = 64 is a separate setting, so attention works in ``6 x 64 = 384`` dimensions.

T5 parts kept: pre-norm RMSNorm (no bias, no mean subtraction), bias-free projections, ReLU FFN, relative
position bias (bucketed, 32 buckets, max distance 128; bidirectional in the encoder, causal in the decoder;
one table per stack, computed once and shared by its layers), no absolute positions, a final norm per stack.
Changed: attention scores are scaled by ``1/sqrt(d_kv)`` and every weight is drawn with std 0.02 (T5 folds the
scale into its init); the output head is a separate linear layer (T5 v1.1 style), and level ``t``'s logits are
its rows for level ``t``'s codes only (the softmax of each step runs over that level's ``V_t`` codes).
Not modelled: TIGER's user-id token (the data has no use for it here).

Tokens: one vocabulary, ``0`` = padding, level ``t`` code ``c`` -> ``1 + offset_t + c``; the decoder starts from a
BOS token (``vocab - 1``). The encoder reads the history flattened into SID tokens (``[B, L * Lc]``, left-padded
items -> padding tokens); it is bidirectional over the history, as in TIGER.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import Dropout, init_weights
from .sid_base import SIDRecommender, build_sid_model, check_common_settings


@dataclass(frozen=True)
class TIGERConfig:
    d_model: int = 128           # Table 5
    d_ff: int = 1024             # Table 5
    n_heads: int = 6             # Table 5
    d_kv: int = 64               # TIGER / T5: head width (6 x 64 != d_model is fine)
    n_enc_layers: int = 4        # Table 5 / A.1
    n_dec_layers: int = 4        # A.1
    dropout: float = 0.1         # Table 5
    rel_buckets: int = 32        # T5 default
    rel_max_distance: int = 128  # T5 default
    beam_width: int = 20         # not in the paper: constrained beam search width (>= largest K evaluated)
    sid_source: str = "reference"
    dataset: str = ""
    init_std: float = 0.02

    def __post_init__(self):
        if min(self.d_model, self.d_ff, self.n_heads, self.d_kv, self.n_enc_layers, self.n_dec_layers,
               self.rel_buckets, self.rel_max_distance) < 1:
            raise ValueError(f"TIGER sizes must be positive (>= 1 layer in each stack): {self}")
        if self.rel_buckets < 4 or self.rel_max_distance < self.rel_buckets // 2:
            raise ValueError(f"model.rel_buckets must be >= 4 and model.rel_max_distance >= rel_buckets / 2, got "
                             f"{self.rel_buckets}, {self.rel_max_distance}")
        check_common_settings(self)



def relative_bucket(rel: torch.Tensor, bidirectional: bool, n_buckets: int, max_distance: int) -> torch.Tensor:
    """T5's bucketing of ``rel = key_pos - query_pos``: exact buckets for small distances, log-spaced up to
    ``max_distance``; bidirectional uses half the buckets per direction."""
    out = torch.zeros_like(rel)
    if bidirectional:
        n_buckets //= 2
        out = out + (rel > 0).long() * n_buckets
        rel = rel.abs()
    else:
        rel = (-rel).clamp_min(0)
    exact = n_buckets // 2
    large = exact + (torch.log(rel.float().clamp_min(1) / exact) / math.log(max_distance / exact)
                     * (n_buckets - exact)).long()
    large = large.clamp_max(n_buckets - 1)
    return out + torch.where(rel < exact, rel, large)


class RelativeBias(nn.Module):
    def __init__(self, n_heads: int, n_buckets: int, max_distance: int, bidirectional: bool):
        super().__init__()
        self.n_buckets, self.max_distance, self.bidirectional = n_buckets, max_distance, bidirectional
        self.emb = nn.Embedding(n_buckets, n_heads)

    def forward(self, q_len: int, k_len: int, device) -> torch.Tensor:
        """-> ``[h, q_len, k_len]``."""
        rel = torch.arange(k_len, device=device)[None] - torch.arange(q_len, device=device)[:, None]
        return self.emb(relative_bucket(rel, self.bidirectional, self.n_buckets, self.max_distance)).permute(2, 0, 1)


class Attention(nn.Module):
    """Multi-head attention with ``n_heads x d_kv`` inner width; ``bias`` = additive float mask ``[.., q, k]``."""

    def __init__(self, d: int, n_heads: int, d_kv: int, dropout: float):
        super().__init__()
        self.h, self.dk, self.dropout = n_heads, d_kv, dropout
        self.q = nn.Linear(d, n_heads * d_kv, bias=False)
        self.kv = nn.Linear(d, 2 * n_heads * d_kv, bias=False)
        self.o = nn.Linear(n_heads * d_kv, d, bias=False)

    def forward(self, x: torch.Tensor, mem: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``x [B, n, d]`` queries, ``mem [B, S, d]`` keys/values, ``bias`` broadcastable to ``[B, h, n, S]``."""
        k, v = self.keys_values(mem)
        return self.attend(self.queries(x), k, v, bias)

    def queries(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, n, d]`` -> ``[B, h, n, d_kv]``."""
        B, n, _ = x.shape
        return self.q(x).view(B, n, self.h, self.dk).transpose(1, 2)

    def keys_values(self, mem: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``mem [B, S, d]`` -> keys and values, each ``[B, h, S, d_kv]``."""
        B, S, _ = mem.shape
        k, v = self.kv(mem).view(B, S, 2, self.h, self.dk).permute(2, 0, 3, 1, 4)
        return k, v

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``q [B, h, n, d_kv]``, ``k, v [B, h, S, d_kv]`` -> output projection ``[B, n, d]``."""
        B, _, n, _ = q.shape
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype),
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.o(y.transpose(1, 2).reshape(B, n, self.h * self.dk))


class FFN(nn.Module):
    def __init__(self, d: int, d_ff: int, dropout: float):
        super().__init__()
        self.wi, self.wo, self.drop = nn.Linear(d, d_ff, bias=False), nn.Linear(d_ff, d, bias=False), Dropout(dropout)

    def forward(self, x):
        return self.wo(self.drop(F.relu(self.wi(x))))


class EncoderLayer(nn.Module):
    def __init__(self, cfg: TIGERConfig):
        super().__init__()
        d = cfg.d_model
        self.n1, self.attn = nn.RMSNorm(d), Attention(d, cfg.n_heads, cfg.d_kv, cfg.dropout)
        self.n2, self.ffn = nn.RMSNorm(d), FFN(d, cfg.d_ff, cfg.dropout)
        self.drop = Dropout(cfg.dropout)

    def forward(self, x, bias):
        h = self.n1(x)
        x = x + self.drop(self.attn(h, h, bias))
        return x + self.drop(self.ffn(self.n2(x)))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: TIGERConfig):
        super().__init__()
        d = cfg.d_model
        self.n1, self.self_attn = nn.RMSNorm(d), Attention(d, cfg.n_heads, cfg.d_kv, cfg.dropout)
        self.n2, self.cross_attn = nn.RMSNorm(d), Attention(d, cfg.n_heads, cfg.d_kv, cfg.dropout)
        self.n3, self.ffn = nn.RMSNorm(d), FFN(d, cfg.d_ff, cfg.dropout)
        self.drop = Dropout(cfg.dropout)

    def forward(self, y, self_bias, memory, cross_bias, k: int):
        """``y [B*k, t, d]`` (``k`` beams per user), ``memory [B, S, d]``, ``cross_bias [B, 1, 1, S]``."""
        h = self.n1(y)
        y = y + self.drop(self.self_attn(h, h, self_bias))
        # cross-attention is per query token, so a user's k beams are read as one query block of k*t tokens
        # against the user's memory (no k-fold copy of the memory)
        Bk, t, d = y.shape
        h = self.n2(y).reshape(Bk // k, k * t, d)
        y = y + self.drop(self.cross_attn(h, memory, cross_bias).reshape(Bk, t, d))
        return y + self.drop(self.ffn(self.n3(y)))


class TIGER(SIDRecommender):
    """T5-style encoder-decoder over SID tokens.

    ``encode(inputs [B, L]) -> (memory [B, L*Lc, d], memory_pad [B, L*Lc] bool, True = padding)``;
    ``decode_logits(memory, memory_pad, prefix [B*k, t]) -> [B*k, V_t]`` (DiffuReason-T can append refined
    latents to ``memory`` as extra tokens with ``memory_pad`` False).
    """

    def __init__(self, cfg: TIGERConfig, n_items: int, max_len: int, codes: torch.Tensor):
        super().__init__(codes, n_items, cfg.beam_width)
        self.cfg, self.d_model, self.max_len = cfg, cfg.d_model, max_len
        offsets = [0]
        for v in self.vocab_sizes:
            offsets.append(offsets[-1] + v)
        self.register_buffer("offsets", torch.tensor(offsets[:-1]), persistent=False)
        self.vocab = 1 + offsets[-1] + 1                           # padding, the codes of every level, BOS
        self.bos = self.vocab - 1
        tok = torch.where(self.codes >= 0, self.codes + 1 + self.offsets, torch.zeros_like(self.codes))
        self.register_buffer("item_tokens", tok, persistent=False)  # [n_items + 1, Lc]; row 0 all padding
        d = cfg.d_model
        self.tok_emb = nn.Embedding(self.vocab, d, padding_idx=0)
        self.emb_drop = Dropout(cfg.dropout)
        self.enc_bias = RelativeBias(cfg.n_heads, cfg.rel_buckets, cfg.rel_max_distance, bidirectional=True)
        self.dec_bias = RelativeBias(cfg.n_heads, cfg.rel_buckets, cfg.rel_max_distance, bidirectional=False)
        self.enc_layers = nn.ModuleList([EncoderLayer(cfg) for _ in range(cfg.n_enc_layers)])
        self.dec_layers = nn.ModuleList([DecoderLayer(cfg) for _ in range(cfg.n_dec_layers)])
        self.enc_norm, self.dec_norm = nn.RMSNorm(d), nn.RMSNorm(d)
        self.head = nn.Linear(d, self.vocab, bias=False)
        init_weights(self, cfg.init_std)

    def encode(self, seqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``seqs [B, L]`` item ids -> ``(memory [B, L*Lc, d], memory_pad [B, L*Lc])``."""
        B, L = seqs.shape
        if L > self.max_len:
            raise ValueError(f"history length {L} exceeds the model's max_len {self.max_len}")
        tokens = self.item_tokens[seqs].reshape(B, L * self.levels)
        pad = tokens == 0
        S = tokens.shape[1]
        allowed = ~pad[:, None, None, :] | torch.eye(S, dtype=torch.bool, device=seqs.device)   # [B, 1, S, S]
        bias = self.enc_bias(S, S, seqs.device)[None].masked_fill(~allowed, float("-inf"))    # [B, h, S, S]
        x = self.emb_drop(self.tok_emb(tokens))
        for layer in self.enc_layers:
            x = layer(x, bias)
        x = self.enc_norm(x) * ~pad[..., None]
        return self.emb_drop(x), pad

    def decoder_states(self, memory: torch.Tensor, memory_pad: torch.Tensor, prefix: torch.Tensor,
                       cross_bias: torch.Tensor | None = None) -> torch.Tensor:
        """``memory [B, S, d]``, ``memory_pad [B, S]``, ``prefix [B*k, t]`` codes -> states ``[B*k, t + 1, d]``
        (state ``j`` predicts level ``j``). ``cross_bias`` (optional) replaces the cross-attention mask built from
        ``memory_pad``: an additive float mask broadcastable to ``[B, h, k * (t + 1), S]``, query ``j * (t + 1) + i``
        = beam ``j``'s token ``i`` (DiffuReason-T lets each beam see its own latent token only)."""
        B = memory.shape[0]
        k, rem = divmod(prefix.shape[0], B)
        if rem or k < 1:
            raise ValueError(f"prefix rows {prefix.shape[0]} must be a multiple of memory rows {B}")
        t = prefix.shape[1]
        if t >= self.levels:
            raise ValueError(f"prefix has {t} codes but SIDs have only {self.levels} levels")
        toks = torch.cat([torch.full((prefix.shape[0], 1), self.bos, dtype=torch.long, device=prefix.device),
                          prefix + 1 + self.offsets[:t]], 1)                    # [B*k, t + 1]
        n = t + 1
        causal = torch.ones(n, n, dtype=torch.bool, device=prefix.device).tril()
        self_bias = self.dec_bias(n, n, prefix.device).masked_fill(~causal, float("-inf"))[None]
        if cross_bias is None:
            mem_ok = ~memory_pad
            mem_ok = mem_ok | ~mem_ok.any(1, keepdim=True)         # an all-padding memory: attend to all (no NaN)
            cross_bias = torch.zeros(mem_ok.shape, dtype=memory.dtype, device=memory.device)
            cross_bias = cross_bias.masked_fill(~mem_ok, float("-inf"))[:, None, None, :]
        y = self.emb_drop(self.tok_emb(toks))
        for layer in self.dec_layers:
            y = layer(y, self_bias, memory, cross_bias, k)
        return self.dec_norm(y)

    def _level_head(self, states: torch.Tensor, t: int) -> torch.Tensor:
        lo = 1 + int(self.offsets[t])
        return F.linear(states, self.head.weight[lo:lo + self.vocab_sizes[t]])

    def decode_logits(self, memory: torch.Tensor, memory_pad: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """Next-level logits ``[B*k, V_t]`` for ``prefix [B*k, t]`` (``k`` beams per memory row)."""
        return self._level_head(self.decoder_states(memory, memory_pad, prefix)[:, -1], prefix.shape[1])

    # SIDRecommender hooks
    def context(self, inputs):
        return self.encode(inputs)

    def level_logits(self, ctx, target_codes):
        s = self.decoder_states(ctx[0], ctx[1], target_codes[:, :self.levels - 1])
        return [self._level_head(s[:, t], t) for t in range(self.levels)]

    def step_logits(self, ctx, prefix):
        return self.decode_logits(ctx[0], ctx[1], prefix)

    def _repeat_ctx(self, ctx, k):
        return ctx                                                  # decode_logits groups beams per user

    def beam_decoder(self, ctx, k):
        """In eval mode (and with ``cached_decoding``), an incremental decoder: keys and values of earlier tokens
        are kept and reordered with the beams, the memory's are computed once, and level 0 is decoded once per
        user rather than once per beam, so each level costs one token per beam (the recomputing default costs
        ``t + 1``). Same outputs as :meth:`decode_logits` up to float rounding (tested)."""
        if self.training or not self.cached_decoding:
            return super().beam_decoder(ctx, k)
        return _CachedDecoder(self, ctx[0], ctx[1], k)

    cached_decoding = True


class _CachedDecoder:
    """Stateful ``logits_fn`` for :func:`~drlib.sid.constrained_beam_search` over a :class:`TIGER` (eval mode only).

    Per decoder layer it holds the memory's keys/values ``[B, h, S, d_kv]`` (computed once) and, for every level
    ``s`` decoded so far, the key/value projections of that level's tokens ``[B, h, 2, P_s, d_kv]`` (``P_0 = 1``:
    level 0 is decoded once per user; then ``P_s = k`` beams), never copied. Which of a user's level-``s`` rows
    each current beam descends from is kept in ``anc[s] [B, k]`` and updated by :meth:`reorder`; self-attention
    scores a beam's query against all ``P_s`` rows of its user and keeps its ancestor's (``k x k`` per user and
    level: cheaper than gathering the 6 x 64-wide keys, which is memory-bound on a CPU).
    """

    def __init__(self, model: TIGER, memory: torch.Tensor, memory_pad: torch.Tensor, k: int):
        self.m, self.k, self.B = model, k, memory.shape[0]
        mem_ok = ~memory_pad
        mem_ok = mem_ok | ~mem_ok.any(1, keepdim=True)             # as decoder_states: no all-masked rows
        self.cross_bias = torch.zeros(mem_ok.shape, dtype=memory.dtype, device=memory.device).masked_fill(
            ~mem_ok, float("-inf"))[:, None, None, :]                # [B, 1, 1, S]
        self.mem_kv = [tuple(x.contiguous() for x in layer.cross_attn.keys_values(memory))   # [B, h, S, d_kv]
                       for layer in model.dec_layers]
        self.self_kv: list[list[torch.Tensor]] = [[] for _ in model.dec_layers]
        self.anc: list[torch.Tensor] = []

    def reorder(self, parent: torch.Tensor) -> None:
        """``parent [B * k]``: the row of the previous call each current beam extends (within its user)."""
        local = (parent % self.k).view(self.B, self.k)
        self.anc = [a.gather(1, local) for a in self.anc]

    def _self_attention(self, att: Attention, h: torch.Tensor, cache: list[torch.Tensor], bias: torch.Tensor):
        """``h [B, P, d]`` (the current level's rows) -> attention output ``[B, P, d]``; appends to ``cache``."""
        B, P, _ = h.shape
        q = att.queries(h)                                          # [B, h, P, d_kv]
        cache.append(att.kv(h).view(B, P, 2, att.h, att.dk).transpose(1, 3))   # [B, h, 2, P, d_kv]
        anc = self.anc + [torch.arange(P, device=h.device).expand(B, P)]
        scores = torch.stack([(q @ kv[:, :, 0].transpose(-1, -2)).gather(              # [B, h, P, P_s] -> [B, h, P]
            -1, a[:, None, :, None].expand(B, att.h, P, 1))[..., 0] for kv, a in zip(cache, anc)], -1)
        p = (scores / math.sqrt(att.dk) + bias).softmax(-1)         # [B, h, P, t + 1]
        out = sum(torch.zeros(B, att.h, P, kv.shape[3], dtype=p.dtype, device=p.device).scatter_(
            -1, a[:, None, :, None].expand(B, att.h, P, 1), p[..., s:s + 1]) @ kv[:, :, 1]
            for s, (kv, a) in enumerate(zip(cache, anc)))           # [B, h, P, d_kv]
        return att.o(out.transpose(1, 2).reshape(B, P, att.h * att.dk))

    @torch.no_grad()
    def __call__(self, prefix: torch.Tensor) -> torch.Tensor:
        m, t = self.m, prefix.shape[1]
        if t == 0:                                                  # every beam starts from BOS: once per user
            tok = torch.full((self.B, 1), m.bos, dtype=torch.long, device=prefix.device)
        else:
            tok = (prefix[:, -1] + 1 + m.offsets[t - 1]).view(self.B, self.k)
        y = m.tok_emb(tok)                                          # [B, P, d]
        bias = m.dec_bias(t + 1, t + 1, prefix.device)[None, :, -1:]   # [1, h, 1, t + 1]; all earlier allowed
        for i, layer in enumerate(m.dec_layers):
            y = y + self._self_attention(layer.self_attn, layer.n1(y), self.self_kv[i], bias)
            # cross-attention as plain matmuls: SDPA's CPU kernel was slower for these k-query blocks (profiled)
            att, (key, val) = layer.cross_attn, self.mem_kv[i]
            p = (att.queries(layer.n2(y)) @ key.transpose(-1, -2) / math.sqrt(att.dk) + self.cross_bias).softmax(-1)
            y = y + att.o((p @ val).transpose(1, 2).reshape(y.shape[0], y.shape[1], att.h * att.dk))
            y = y + layer.ffn(layer.n3(y))
        logits = m._level_head(m.dec_norm(y), t)                    # [B, P, V_t]
        P = tok.shape[1]
        self.anc.append(torch.arange(P, device=y.device).expand(self.B, P).repeat_interleave(self.k // P, 1))
        return logits.repeat_interleave(self.k // P, 1).reshape(self.B * self.k, -1)


def build_tiger(cfg: TIGERConfig, n_items: int, max_len: int, codes: torch.Tensor | None = None,
               item_table=None) -> TIGER:
    """Registry builder (:func:`~drlib.models.sid_base.build_sid_model`)."""
    return build_sid_model(TIGER, cfg, n_items, max_len, codes, item_table)


__all__ = ["TIGER", "TIGERConfig", "build_tiger", "relative_bucket"]
