"""HSTU (Zhai et al. 2024, "Actions speak louder than words") with Semantic IDs, as in the paper's Appendix A.1.

Encoder (Table 5: d = 50, 2 layers, 1 head, dropout 0.2, no FFN). Input token of item ``i``:
``(E_item[i] + sum_t E_t[c_t(i)]) * sqrt(d) + P[pos]`` (the item-ID and the SID codes embedded with separate
tables and summed, Appendix A.1; the ``sqrt(d)`` scale and learned absolute positions are the reference HSTU
input preprocessor's). Each layer (Zhai et al., Eq. 1-3):

    U, V, Q, K = split(SiLU(f1(LN(x))))
    A          = SiLU(Q K^T + rab) / n           pointwise, no softmax; causal and padding masked
    x          = x + f2(Dropout(LN(A V) * U))

``rab`` is a learned relative position bias per head and causal offset ``i - j`` (0 .. max_len - 1; one bucket
per offset: histories are at most ``max_len`` = 20 long, and there are no timestamps, so the reference code's
time buckets do not apply). ``n`` is the constant ``max_len`` (the reference code divides by the padded length,
which it keeps fixed; a batch-dependent length would make a user's scores depend on the other rows). A final
LayerNorm replaces the reference code's L2 normalisation of the outputs (which serves its sampled dot-product
softmax, not a decoder).

Two retrieval heads (``head``):

* ``"item"`` (default; the Table 2 HSTU): ``score(i) = h_L . e(i)`` over the whole catalogue, with
  ``e(i) = E_item[i] + sum_t E_t[c_t(i)]`` the input token's embedding (tied; without the input's ``sqrt(d)``, as
  SASRec's output table), trained with full-softmax cross-entropy. This is the reference HSTU's own retrieval
  (a dot product with the item table) and the reading that reaches the paper's HSTU numbers (reproduction notes,
  "Strong backbones").
* ``"sid"``: the autoregressive SID decoder below, with constrained beam search (Appendix A.1 describes
  "an autoregressive SID decoder"; Table 6's 21.8 s of HSTU test inference also hints at decoding). Measured on
  Beauty it stays ~45% below the paper's HSTU row: the single ``d``-wide ``h_L`` token is a bottleneck.

SID decoder (Appendix A.1 says only "an autoregressive SID decoder"; ours): a small pre-LN causal Transformer
(``decoder_layers`` SASRec blocks) over ``[context_1..context_m, e_1(c_1), .., e_{t-1}(c_{t-1})]`` (per-level
code tables plus a level embedding); level ``t``'s logits are a per-level linear head on the last token's state.
The context is an explicit argument: the backbone passes ``h_L`` (``m = 1``); DiffuReason-H can pass
``[h_L, z]`` or ``h_L + z``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import Block, Dropout, init_weights
from .sasrec import SASRecConfig
from .sid_base import SIDRecommender, build_sid_model, check_common_settings


@dataclass(frozen=True)
class HSTUConfig:
    d_model: int = 50            # Table 5: embedding dim
    n_layers: int = 2            # Table 5: encoder layers
    n_heads: int = 1             # Table 5: attention heads
    dropout: float = 0.2         # Table 5
    head: str = "item"           # "item": h_L . e(item), full softmax (Table 2 HSTU); "sid": SID decoder + beam search
    decoder_layers: int = 1      # not in the paper: SID decoder depth (head="sid")
    decoder_d_ff: int = 200      # not in the paper: SID decoder FFN width (4 d)
    beam_width: int = 20         # not in the paper: constrained beam search width (>= largest K evaluated)
    sid_source: str = "reference"  # "reference" (LETTER SIDs) or "random"; see drlib.models.sid_base.default_codes
    dataset: str = ""            # whose SIDs to load (the run's dataset)
    init_std: float = 0.02

    def __post_init__(self):
        if self.d_model <= 0 or self.n_layers < 0 or self.n_heads <= 0 or self.decoder_layers < 1 \
                or self.decoder_d_ff <= 0:
            raise ValueError(f"HSTU sizes must be positive (n_layers >= 0, decoder_layers >= 1): {self}")
        if self.d_model % self.n_heads:
            raise ValueError(f"model.d_model={self.d_model} must be divisible by model.n_heads={self.n_heads}")
        if self.head not in HSTU_HEADS:
            raise ValueError(f"model.head must be one of {HSTU_HEADS} ('item': dot product with the item table, "
                             f"'sid': SID decoder with constrained beam search), got {self.head!r}")
        check_common_settings(self)



HSTU_HEADS = ("item", "sid")


class HSTULayer(nn.Module):
    """One HSTU layer (pointwise aggregated attention, no FFN). ``x [B, L, d]``, ``allowed [B, 1, L, L]``."""

    def __init__(self, d: int, n_heads: int, dropout: float, max_len: int):
        super().__init__()
        self.d, self.h, self.max_len = d, n_heads, max_len
        self.ln_in = nn.LayerNorm(d)
        self.f1 = nn.Linear(d, 4 * d)
        self.ln_av = nn.LayerNorm(d)
        self.f2 = nn.Linear(d, d)
        self.rab = nn.Parameter(torch.zeros(n_heads, max_len))   # bias per head and causal offset i - j
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        B, L, d = x.shape
        u, v, q, k = F.silu(self.f1(self.ln_in(x))).split(d, dim=-1)
        q, k, v = (t.view(B, L, self.h, d // self.h).transpose(1, 2) for t in (q, k, v))   # [B, h, L, dh]
        pos = torch.arange(L, device=x.device)
        offset = (pos[:, None] - pos[None, :]).clamp(0, self.max_len - 1)                # [L, L]
        att = F.silu(q @ k.transpose(-1, -2) + self.rab[:, offset]) / self.max_len      # [B, h, L, L]
        att = att * allowed
        av = (att @ v).transpose(1, 2).reshape(B, L, d)
        return x + self.f2(self.drop(self.ln_av(av) * u))


class SIDDecoder(nn.Module):
    """Autoregressive SID decoder conditioned on an explicit context ``[B, m, d]`` (see the module docstring)."""

    def __init__(self, d: int, vocab_sizes: list[int], n_layers: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.levels = len(vocab_sizes)
        self.code_emb = nn.ModuleList([nn.Embedding(v, d) for v in vocab_sizes])
        self.level_emb = nn.Embedding(self.levels, d)
        block_cfg = SASRecConfig(d_model=d, n_layers=n_layers, n_heads=n_heads, d_ff=d_ff, dropout=dropout)
        self.blocks = nn.ModuleList([Block(block_cfg) for _ in range(n_layers)])
        self.ln_f = nn.LayerNorm(d)
        self.heads = nn.ModuleList([nn.Linear(d, v) for v in vocab_sizes])

    def states(self, context: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """``context [B, m, d]``, ``prefix [B, t]`` -> final states ``[B, m + t, d]``."""
        B, t = prefix.shape
        toks = [context] + [(self.code_emb[j](prefix[:, j]) + self.level_emb.weight[j])[:, None] for j in range(t)]
        x = torch.cat(toks, 1)
        n = x.shape[1]
        mask = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()[None, None]
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_f(x)

    def forward(self, context: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """Logits of level ``t = prefix.shape[1]``: ``context [B, m, d]`` (or ``[B, d]``), ``prefix [B*k, t]``
        (row ``b*k + j`` = context row ``b``) -> ``[B*k, V_t]``."""
        context = context[:, None] if context.dim() == 2 else context
        t = prefix.shape[1]
        if t >= self.levels:
            raise ValueError(f"prefix has {t} codes but SIDs have only {self.levels} levels")
        k, rem = divmod(prefix.shape[0], context.shape[0])
        if rem or k < 1:
            raise ValueError(f"prefix rows {prefix.shape[0]} must be a multiple of context rows {context.shape[0]}")
        if k > 1:
            context = context.repeat_interleave(k, 0)
        return self.heads[t](self.states(context, prefix)[:, -1])

    def teacher_forced(self, context: torch.Tensor, codes: torch.Tensor) -> list[torch.Tensor]:
        """``context [B, m, d]`` (or ``[B, d]``), target ``codes [B, Lc]`` -> per level ``[B, V_t]`` (one pass)."""
        context = context[:, None] if context.dim() == 2 else context
        m = context.shape[1]
        s = self.states(context, codes[:, :self.levels - 1])
        return [self.heads[t](s[:, m - 1 + t]) for t in range(self.levels)]


class HSTU(SIDRecommender):
    """HSTU encoder over item-ID + SID embeddings, with an item-level head or an autoregressive SID decoder.

    ``encode(inputs [B, L]) -> H [B, L, d]``.

    * ``head="item"``: ``item_table() -> [N, d]``; training = full-softmax cross-entropy of ``h_L . e(i)``;
      ``full_scores [B, N]`` = those dot products (column 0 ``-inf``).
    * ``head="sid"``: ``decode_logits(context [B, d] | [B, m, d], prefix [B*k, t]) -> [B*k, V_t]``; training =
      teacher-forced SID cross-entropy (mean over levels); ``full_scores`` = constrained beam search (see
      :class:`~drlib.models.sid_base.SIDRecommender`).
    """

    def __init__(self, cfg: HSTUConfig, n_items: int, max_len: int, codes: torch.Tensor):
        super().__init__(codes, n_items, cfg.beam_width)
        self.cfg, self.d_model, self.max_len, self.head = cfg, cfg.d_model, max_len, cfg.head
        d = cfg.d_model
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.sid_emb = nn.ModuleList([nn.Embedding(v + 1, d, padding_idx=0) for v in self.vocab_sizes])  # code+1
        self.pos_emb = nn.Embedding(max_len, d)
        self.emb_drop = Dropout(cfg.dropout)
        self.layers = nn.ModuleList([HSTULayer(d, cfg.n_heads, cfg.dropout, max_len) for _ in range(cfg.n_layers)])
        self.ln_f = nn.LayerNorm(d)
        self.decoder = SIDDecoder(d, self.vocab_sizes, cfg.decoder_layers, cfg.n_heads, cfg.decoder_d_ff,
                                  cfg.dropout) if cfg.head == "sid" else None
        init_weights(self, cfg.init_std)

    def embed(self, seqs: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` item ids -> input tokens ``[B, L, d]`` (before position embedding and dropout)."""
        x = self.item_emb(seqs)
        codes = self.codes[seqs] + 1                                    # padding (-1) -> 0
        for t, emb in enumerate(self.sid_emb):
            x = x + emb(codes[..., t])
        return x

    def item_table(self) -> torch.Tensor:
        """``e(i) = E_item[i] + sum_t E_t[c_t(i)]`` for every item: ``[N, d]`` (row 0, padding, is 0)."""
        x = self.item_emb.weight
        codes = self.codes + 1                                          # [N, Lc], padding row -> 0
        for t, emb in enumerate(self.sid_emb):
            x = x + emb.weight[codes[:, t]]
        return x

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        """``seqs [B, L]`` (left-padded) -> ``H [B, L, d]``; ``H[:, -1]`` is ``h_L``. Causal: position ``i`` sees
        items ``<= i`` only."""
        B, L = seqs.shape
        if L > self.max_len:
            raise ValueError(f"history length {L} exceeds the model's max_len {self.max_len}")
        pos = torch.arange(self.max_len - L, self.max_len, device=seqs.device)
        keep = (seqs != 0).unsqueeze(-1)
        x = self.emb_drop((self.embed(seqs) * math.sqrt(self.d_model) + self.pos_emb(pos)) * keep)
        causal = torch.ones(L, L, dtype=torch.bool, device=seqs.device).tril()
        allowed = (causal & (seqs != 0)[:, None, :])[:, None]          # [B, 1, L, L]
        for layer in self.layers:
            x = layer(x, allowed) * keep
        return self.ln_f(x)

    # ---------------------------------------------------------------- item head
    def item_logits(self, latent: torch.Tensor) -> torch.Tensor:
        """``latent [..., d]`` -> ``[..., N-1]``: dot products with the real items' ``e(i)`` (column ``j`` = item
        ``j+1``)."""
        return latent @ self.item_table()[1:].t()

    def compute_loss(self, inputs, targets):
        if self.head == "sid":
            return super().compute_loss(inputs, targets)
        loss = F.cross_entropy(self.item_logits(self.encode(inputs)[:, -1]).float(), targets - 1)
        return loss, {"loss": loss.item()}

    def full_scores(self, inputs):
        if self.head == "sid":
            return super().full_scores(inputs)
        scores = self.encode(inputs)[:, -1] @ self.item_table().t()
        scores[:, 0] = float("-inf")
        return scores

    # ---------------------------------------------------------------- SID head
    def _decoder(self) -> SIDDecoder:
        if self.decoder is None:
            raise ValueError("this HSTU has the item-level head (model.head='item') and no SID decoder; build it "
                             "with model.head=sid for SID decoding and constrained beam search")
        return self.decoder

    def decode_logits(self, context: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """Next-level logits: ``context [B, d]`` or ``[B, m, d]``, ``prefix [B*k, t]`` -> ``[B*k, V_t]``."""
        return self._decoder()(context, prefix)

    # SIDRecommender hooks
    def context(self, inputs):
        return self.encode(inputs)[:, -1:]                              # [B, 1, d]

    def level_logits(self, ctx, target_codes):
        return self._decoder().teacher_forced(ctx, target_codes)

    def step_logits(self, ctx, prefix):
        return self._decoder()(ctx, prefix)

    def _repeat_ctx(self, ctx, k):
        return ctx.repeat_interleave(k, 0)


def build_hstu(cfg: HSTUConfig, n_items: int, max_len: int, codes: torch.Tensor | None = None,
               item_table=None) -> HSTU:
    """Registry builder (:func:`~drlib.models.sid_base.build_sid_model`)."""
    return build_sid_model(HSTU, cfg, n_items, max_len, codes, item_table)


__all__ = ["HSTU", "HSTUConfig", "HSTU_HEADS", "HSTULayer", "SIDDecoder", "build_hstu"]
