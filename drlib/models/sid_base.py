"""What the two generative backbones (HSTU with SIDs, TIGER) share: the item -> SID table, the trie,
teacher-forced training over SID codes and full-catalogue scores from constrained beam search.

How a generative model meets the full-ranking evaluator (:func:`drlib.evaluate.compute_ranks`, rank = number of
items scoring ``>=`` the target): :meth:`SIDRecommender.full_scores` runs constrained beam search with width ``W``
and gives the ``W`` retrieved items strictly decreasing finite scores in beam order (their SID log-likelihoods,
nudged down by one float step where two are equal) and every other item ``-inf``. A retrieved target then gets
rank = its list position (1-based: 0-based rank + 1; history items the evaluator masks to ``-inf`` drop out of the
list ahead of it), and a target outside the beam gets rank ``n_items`` (every column ties at ``-inf``), i.e. a miss
for every ``K <= W``. So ``W`` must be at least the largest ``K`` evaluated.

Codes are ``LongTensor [n_items + 1, Lc]``, row 0 = :data:`drlib.sid.PAD_CODE` (-1); every item's SID must be
unique (:func:`default_codes` appends the disambiguation token of Appendix A when the reference SIDs collide).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.readers import DataFormatError
from ..data.registry import get_spec
from ..sid import PAD_CODE, SIDTrie, add_disambiguation, constrained_beam_search, load_reference_sids
from ..sid.build import load_codes
from ..sid.sources import ItemTable
from ..sid.store import load_stored_codes
from ..sid.tokenizer import TokenizerConfig, apply_tokenizer_overrides
from .base import Recommender

SID_SOURCES = ("reference", "random", "attributes", "collaborative")
TOKENIZER_PREFIX = "tokenizer:"   # sid_source="tokenizer:<id>": any stored tokenization (runs/tokenizer/<id>/codes.pt)

# The RQ-VAE budget behind sid_source="attributes" / "collaborative": Table 4's 20,000 epochs take about 5 hours on
# one CPU thread, so the codes are built with 500 (drlib.sid.build; the tokenizer record stores its config).
TOKENIZER_OVERRIDES = ("rqvae.epochs=500",)


def check_common_settings(cfg) -> None:
    """Validation shared by the generative configs (``dropout``, ``beam_width``, ``sid_source``, ``init_std``)."""
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"model.dropout must be in [0, 1), got {cfg.dropout}")
    if cfg.beam_width < 1:
        raise ValueError(f"model.beam_width must be >= 1 (and >= the largest K evaluated), got {cfg.beam_width}")
    if cfg.sid_source not in SID_SOURCES and not (cfg.sid_source.startswith(TOKENIZER_PREFIX)
                                                  and len(cfg.sid_source) > len(TOKENIZER_PREFIX)):
        raise ValueError(f"model.sid_source must be one of {SID_SOURCES} or '{TOKENIZER_PREFIX}<tokenizer id>' (a "
                         f"tokenization built by `python -m drlib sids`, e.g. from item text), got {cfg.sid_source!r}")
    if cfg.init_std <= 0:
        raise ValueError(f"model.init_std must be > 0, got {cfg.init_std}")


def random_codes(n_items: int, levels: int = 4, vocab: int = 256, seed: int = 0) -> torch.Tensor:
    """Uniformly random SIDs ``[n_items + 1, levels (+1)]`` (TIGER's "Random ID" ablation; also the SIDs of
    datasets without reference SIDs in quick smoke runs). Collisions get the disambiguation token."""
    if n_items < 1 or levels < 1 or vocab < 1:
        raise ValueError(f"random_codes needs n_items, levels, vocab >= 1, got {n_items}, {levels}, {vocab}")
    g = torch.Generator().manual_seed(seed)
    body = torch.randint(vocab, (n_items, levels), generator=g)
    codes = torch.cat([torch.full((1, levels), PAD_CODE, dtype=torch.long), body])
    return add_disambiguation(codes, "auto")


def default_codes(dataset_name: str, n_items: int, source: str = "reference",
                  item_table: ItemTable | None = None) -> torch.Tensor:
    """The SIDs a registry-built model uses for ``dataset_name``: ``LongTensor [n_items + 1, Lc]``.

    ``item_table`` (``run_id -> (table, info)``) is how the collaborative source reaches a trained model's item
    embeddings when its tokenization must be built (the runner hands in
    :func:`drlib.runner.collaborative_item_table`).

    ``source="reference"``: LETTER's precomputed 4 x 256 SIDs (:func:`drlib.sid.load_reference_sids`; Beauty and
    Instruments), with the disambiguation token appended when two items share a SID (both datasets have a few
    collisions, so ``Lc = 5``). ``source="random"``: :func:`random_codes` (4 x 256, seed 0).
    ``source="attributes"`` / ``"collaborative"``: our RQ-VAE's SIDs of that feature source
    (:func:`drlib.sid.build.build_sids` with :data:`TOKENIZER_OVERRIDES`, seed 0; cached, built on first use).
    ``source="tokenizer:<id>"``: the codes of any tokenization already built by ``python -m drlib sids`` (its record
    ``results/tokenizer/<id>.json``, codes ``runs/tokenizer/<id>/codes.pt``), e.g. one from item text.
    """
    if source.startswith(TOKENIZER_PREFIX):
        return _stored_tokenization(source[len(TOKENIZER_PREFIX):], dataset_name, n_items)
    if source not in SID_SOURCES:
        raise ValueError(f"sid_source must be one of {SID_SOURCES} or '{TOKENIZER_PREFIX}<id>', got {source!r}")
    if source == "random":
        return random_codes(n_items)
    if not dataset_name:
        raise ValueError("the model config's `dataset` is empty, so its Semantic IDs cannot be found; set "
                         "model.dataset to the run's dataset (e.g. --set model.dataset=beauty), or pass `codes`")
    if source in ("attributes", "collaborative"):
        tcfg = apply_tokenizer_overrides(TokenizerConfig(dataset=dataset_name, features=source), TOKENIZER_OVERRIDES)
        codes = load_codes(tcfg, build=True, progress=True, item_table=item_table)  # cached; built if absent
        if codes.shape[0] != n_items + 1:
            raise ValueError(f"the {source} SIDs of {dataset_name!r} cover {codes.shape[0] - 1} items, the dataset "
                             f"has {n_items}")
        return add_disambiguation(codes, "auto")
    try:
        has_ref = "reference_sids" in get_spec(dataset_name).extra
    except KeyError:
        has_ref = False
    if not has_ref:
        raise ValueError(f"dataset {dataset_name!r} has no reference Semantic IDs (only Beauty and Instruments "
                         "ship them). Use our RQ-VAE's (model.sid_source=attributes or collaborative; built and "
                         "cached on first use, see `python -m drlib sids --help`), or model.sid_source=random for a "
                         "quick run.")
    try:
        codes = load_reference_sids(dataset_name)
    except DataFormatError as e:
        raise ValueError(f"could not load the reference SIDs of {dataset_name!r}: {e}") from None
    if codes.shape[0] != n_items + 1:
        raise ValueError(f"reference SIDs of {dataset_name!r} cover {codes.shape[0] - 1} items but the dataset has "
                         f"{n_items}; is the dataset the one the SIDs were built for?")
    return add_disambiguation(codes, "auto")


def _stored_tokenization(tokenizer_id: str, dataset_name: str, n_items: int) -> torch.Tensor:
    """The codes of a built tokenization (``sid_source="tokenizer:<id>"``), disambiguated where items collide."""
    codes, rec = load_stored_codes(tokenizer_id)
    if dataset_name and rec.get("config", {}).get("dataset") not in (None, dataset_name):
        raise ValueError(f"tokenization {tokenizer_id!r} is for dataset {rec['config']['dataset']!r}, the model is "
                         f"for {dataset_name!r}")
    if codes.shape[0] != n_items + 1:
        raise ValueError(f"tokenization {tokenizer_id!r} covers {codes.shape[0] - 1} items, the dataset has {n_items}")
    return add_disambiguation(codes, "auto")


def sid_recommender(model) -> "SIDRecommender | None":
    """The :class:`SIDRecommender` inside ``model`` (itself, or a DiffuReason-H/T model's ``backbone.sid``), or
    ``None`` for a model without Semantic IDs."""
    sid = getattr(getattr(model, "backbone", None), "sid", model)
    return sid if isinstance(sid, SIDRecommender) else None


def check_codes(codes: torch.Tensor, n_items: int) -> torch.Tensor:
    if not isinstance(codes, torch.Tensor) or codes.dim() != 2 or codes.shape[0] != n_items + 1:
        raise ValueError(f"codes must be a LongTensor [n_items + 1, levels] = [{n_items + 1}, Lc] with row 0 = "
                         f"padding, got {getattr(codes, 'shape', type(codes))}")
    codes = codes.long().clone()
    codes[0] = PAD_CODE
    return codes


def strictly_decreasing(scores: torch.Tensor) -> torch.Tensor:
    """``[B, W]`` scores sorted descending (ties allowed) -> strictly decreasing along dim 1 (each entry at
    most one float step below its left neighbour where they tie). ``-inf`` entries stay ``-inf``."""
    out = scores.clone()
    neg_inf = torch.tensor(float("-inf"), dtype=out.dtype, device=out.device)
    for k in range(1, out.shape[1]):
        out[:, k] = torch.minimum(out[:, k], torch.nextafter(out[:, k - 1], neg_inf))
    return out


class SIDRecommender(Recommender):
    """A :class:`~drlib.models.base.Recommender` that names items by their Semantic IDs.

    Subclasses implement :meth:`context` (the per-user state the decoder conditions on, for a batch of
    histories) and :meth:`level_logits` (teacher-forced logits of every level) and :meth:`step_logits`
    (logits of the next level for ``k`` beams per user). Buffers: ``codes [n_items + 1, Lc]``.
    """

    eval_chunk = 256      # users per beam search in full_scores (bounds memory: chunk * W decoder rows)

    def __init__(self, codes: torch.Tensor, n_items: int, beam_width: int):
        super().__init__()
        codes = check_codes(codes, n_items)
        self.n_items = n_items
        self.trie = SIDTrie(codes)                 # checks uniqueness and codes >= 0
        self.levels = self.trie.levels
        self.vocab_sizes = list(self.trie.vocab_sizes)
        if beam_width < 1:
            raise ValueError(f"beam_width must be >= 1, got {beam_width}")
        self.beam_width = beam_width
        self.register_buffer("codes", codes, persistent=False)

    # ---------------------------------------------------------------- to implement
    def context(self, inputs: torch.Tensor):
        """Histories ``[B, L]`` -> whatever :meth:`level_logits` / :meth:`step_logits` take as context."""
        raise NotImplementedError

    def level_logits(self, ctx, target_codes: torch.Tensor) -> list[torch.Tensor]:
        """Teacher forcing: ``target_codes [B, Lc]`` -> per level ``t`` logits ``[B, V_t]`` given codes ``< t``."""
        raise NotImplementedError

    def step_logits(self, ctx, prefix: torch.Tensor) -> torch.Tensor:
        """``prefix [B * k, t]`` (row ``b * k + j`` = user ``b``'s beam ``j``) -> logits of level ``t`` ``[B * k, V_t]``."""
        raise NotImplementedError

    def _repeat_ctx(self, ctx, k: int):
        raise NotImplementedError

    # ---------------------------------------------------------------- training
    def sid_loss(self, ctx, targets: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Mean over levels of the per-level cross-entropy of the target's SID (teacher forced)."""
        tgt = self.codes[targets]                                         # [B, Lc]
        per_level = [F.cross_entropy(lg.float(), tgt[:, t]) for t, lg in enumerate(self.level_logits(ctx, tgt))]
        return torch.stack(per_level).mean(), per_level

    def compute_loss(self, inputs, targets):
        loss, per_level = self.sid_loss(self.context(inputs), targets)
        logs = {"loss": loss.item()}
        logs.update({f"ce_l{t}": v.item() for t, v in enumerate(per_level)})
        return loss, logs

    # ---------------------------------------------------------------- retrieval
    @torch.no_grad()
    def retrieve(self, inputs: torch.Tensor, beam_width: int | None = None, ctx=None):
        """Constrained beam search for histories ``[B, L]`` -> :class:`drlib.sid.BeamSearchResult`
        (``items [B, W]``, best first; ``scores`` = SID log-likelihoods). ``ctx`` overrides :meth:`context`."""
        W = beam_width or self.beam_width
        ctx = self.context(inputs) if ctx is None else ctx
        step = self.beam_decoder(ctx, W)
        return constrained_beam_search(step, self.device_trie(), inputs.shape[0], W,
                                       on_select=getattr(step, "reorder", None))

    def beam_decoder(self, ctx, k: int):
        """The ``logits_fn(prefix [B * k, t]) -> [B * k, V_t]`` that :meth:`retrieve` searches with. This default
        recomputes every prefix through :meth:`step_logits`; a subclass may return a stateful callable with a
        ``reorder(parent [B * k])`` method (see :func:`~drlib.sid.constrained_beam_search`'s ``on_select``)."""
        rep = self._repeat_ctx(ctx, k)
        return lambda prefix: self.step_logits(rep, prefix)

    def device_trie(self) -> SIDTrie:
        """The trie, moved (once) to the device of the model's buffers."""
        if self.trie.device != self.codes.device:
            self.trie.to(self.codes.device)
        return self.trie

    def full_scores(self, inputs):
        """``[B, L]`` -> ``[B, n_items + 1]``: the ``W`` beam items get strictly decreasing finite scores, the rest
        (and column 0) ``-inf``."""
        return self.full_scores_from(self.context, inputs)

    @torch.no_grad()
    def full_scores_from(self, ctx_fn, inputs: torch.Tensor) -> torch.Tensor:
        """:meth:`full_scores` with the decoder context of each chunk of ``inputs`` given by ``ctx_fn(chunk)``.

        ``inputs`` is any tensor with the users along dim 0 (histories ``[B, L]``, or row indices ``[B]`` into
        precomputed states, as DiffuReason-H / -T pass); users are searched ``eval_chunk`` at a time."""
        B = inputs.shape[0]
        out = torch.full((B, self.n_items + 1), float("-inf"), device=inputs.device)
        for s in range(0, B, self.eval_chunk):
            chunk = inputs[s:s + self.eval_chunk]
            res = self.retrieve(chunk, ctx=ctx_fn(chunk))
            sc = strictly_decreasing(res.scores.float())
            sc = torch.where(res.items > 0, sc, torch.full_like(sc, float("-inf")))
            out[s:s + self.eval_chunk].scatter_(1, res.items.to(inputs.device), sc.to(out.device))
        out[:, 0] = float("-inf")
        return out


__all__ = ["SIDRecommender", "SID_SOURCES", "check_codes", "default_codes", "random_codes", "sid_recommender",
           "strictly_decreasing"]


def build_sid_model(cls, cfg, n_items: int, max_len: int, codes: torch.Tensor | None = None, item_table=None):
    """The registry builder of a SID model ``cls(cfg, n_items, max_len, codes)``: ``codes=None`` ->
    :func:`default_codes` of ``cfg.dataset`` (with ``item_table`` for SIDs built from a trained model's item
    embeddings)."""
    if codes is None:
        codes = default_codes(cfg.dataset, n_items, cfg.sid_source, item_table)
    return cls(cfg, n_items, max_len, codes)
