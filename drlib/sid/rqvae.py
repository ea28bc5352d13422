"""RQ-VAE tokenizer for Semantic IDs (Appendix A, Eq. 14-15, Table 4, Fig. 6 after TIGER [26]).

``v [N, F]`` item features -> ``y = Enc(v) [N, d_e]`` -> residual quantization over ``M`` codebooks (Eq. 14):
``rho^(1) = y``, ``j_m = argmin_k ||rho^(m) - e_k^(m)||``, ``q^(m) = e_{j_m}^(m)``, ``rho^(m+1) = rho^(m) - q^(m)``
-> ``y_hat = sum_m q^(m)`` -> ``v_hat = Dec(y_hat)``. The SID is ``(j_1, ..., j_M)``.

Loss (Eq. 15): ``||v_hat - v||^2 + sum_m (||sg[rho^(m)] - q^(m)||^2 + beta ||rho^(m) - sg[q^(m)]||^2)``.

Choices where the paper is silent (each documented again where it acts):

* Squared norms are taken as MSE (mean over batch and coordinates), as Table 4's "MSE" and the LC-Rec RQ-VAE
  code that Table 4's names (``e_dim``, ``num_emb_list``) come from do; the level terms are *summed* (Eq. 15).
* ``beta`` (``lambda_cm``) = 0.25: Eq. 15 refers to Table 4 for it but Table 4 omits it; 0.25 is VQ-VAE's,
  TIGER's and LC-Rec's value.
* Encoder/decoder: MLP with hidden sizes 512-256-128 and ReLU (TIGER's tokenizer; decoder mirrored). LC-Rec
  uses 2048-1024-512-256-128-64 for 4096-d LLM embeddings; set ``hidden`` for that.
* Residuals are passed on as ``rho^(m+1) = rho^(m) - sg[q^(m)]``, so each codebook is moved only by its own
  codebook term and the encoder by the commitment terms; the decoder's gradient reaches the encoder through
  the straight-through estimator ``y + sg[y_hat - y]``.
* k-means initialization on the first training batch (TIGER), level by level on that batch's residuals;
  codes unused during an epoch are re-seeded from random residuals of that level in the epoch's last batch
  (not in the paper; keeps utilization high). No Sinkhorn balancing on the last level (LC-Rec has it; the
  paper does not mention it); collisions are resolved by the appended disambiguation token instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .features import PAD_CODE


@dataclass(frozen=True)
class RQVAEConfig:
    latent_dim: int = 32                                   # Table 4: e_dim
    codebook_sizes: tuple[int, ...] = (256, 256, 256, 256)  # Table 4: num_emb_list (4 levels)
    hidden: tuple[int, ...] = (512, 256, 128)              # not in the paper: TIGER's encoder
    beta: float = 0.25                                     # Eq. 15 lambda_cm (not in Table 4; VQ-VAE/TIGER value)
    recon_weight: float = 1.0                              # Table 4: MSE (weight=1.0)
    quant_weight: float = 1.0                              # weight of the summed codebook+commitment terms
    lr: float = 1e-3                                       # Table 4
    weight_decay: float = 1e-4                             # Table 4 (Adam, coupled L2)
    batch_size: int = 1024                                 # Table 4
    epochs: int = 20000                                    # Table 4; set smaller for quick runs
    kmeans_init: bool = True                               # TIGER: k-means on the first batch
    kmeans_iters: int = 25
    reseed_dead: bool = True                               # re-seed codes unused for a whole epoch
    device: str = "cpu"

    def __post_init__(self):
        object.__setattr__(self, "codebook_sizes", tuple(self.codebook_sizes))  # lists from JSON/CLI are fine
        object.__setattr__(self, "hidden", tuple(self.hidden))
        if self.latent_dim <= 0 or not self.codebook_sizes or any(k < 1 for k in self.codebook_sizes):
            raise ValueError(f"rqvae.latent_dim and every rqvae.codebook_sizes entry must be >= 1: {self}")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"rqvae.hidden sizes must be positive (use () for a linear encoder): {self.hidden}")
        if self.beta < 0 or self.recon_weight <= 0 or self.quant_weight < 0:
            raise ValueError("rqvae.beta and rqvae.quant_weight must be >= 0 and rqvae.recon_weight > 0, got "
                             f"{self.beta}, {self.quant_weight}, {self.recon_weight}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(f"rqvae.lr must be > 0 and rqvae.weight_decay >= 0: {self.lr}, {self.weight_decay}")
        if self.batch_size < 1 or self.epochs < 0 or self.kmeans_iters < 0:
            raise ValueError(f"rqvae.batch_size >= 1, rqvae.epochs >= 0, rqvae.kmeans_iters >= 0 needed: {self}")

    @property
    def levels(self) -> int:
        return len(self.codebook_sizes)


@dataclass
class RQVAEOutput:
    """One forward pass on ``N`` items. Losses are scalars; ``residuals[m]`` is ``rho^(m+1)`` (detached)."""
    recon: torch.Tensor              # v_hat [N, F]
    codes: torch.Tensor              # (j_1..j_M) [N, M] long
    latent: torch.Tensor             # y [N, d_e]
    quantized: torch.Tensor          # y_hat [N, d_e] (values, no straight-through)
    residuals: list[torch.Tensor]    # rho^(1..M), each [N, d_e], detached
    loss: torch.Tensor
    recon_loss: torch.Tensor
    codebook_loss: torch.Tensor
    commit_loss: torch.Tensor


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def nearest_code(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """``x [N, d]``, ``codebook [K, d]`` -> index of the nearest codeword ``[N]`` (ties: the lowest index)."""
    d = x.pow(2).sum(1, keepdim=True) - 2 * x @ codebook.T + codebook.pow(2).sum(1)[None]
    return d.argmin(1)


def kmeans(x: torch.Tensor, k: int, iters: int, generator: torch.Generator) -> torch.Tensor:
    """Lloyd's k-means with k-means++ seeding. ``x [N, d]`` -> centres ``[k, d]``.

    With fewer distinct points than ``k`` the surplus centres are copies of random points plus small noise
    (they stay dead until re-seeded). Empty clusters are re-seeded from a random point. Deterministic given
    ``generator``.
    """
    x = x.detach().float()
    n = x.shape[0]
    centres = torch.empty(k, x.shape[1], dtype=x.dtype, device=x.device)
    first = int(torch.randint(n, (1,), generator=generator))
    centres[0] = x[first]
    d2 = (x - centres[0]).pow(2).sum(1)
    scale = x.std().clamp_min(1e-6)
    for i in range(1, k):                                     # k-means++: sample ~ squared distance
        if float(d2.sum()) <= 1e-12:
            j = torch.randint(n, (1,), generator=generator)
            centres[i] = x[j] + 1e-3 * scale * torch.randn(x.shape[1], generator=generator).to(x)
            continue
        j = int(torch.multinomial(d2.cpu(), 1, generator=generator))
        centres[i] = x[j]
        d2 = torch.minimum(d2, (x - centres[i]).pow(2).sum(1))
    for _ in range(iters):
        assign = nearest_code(x, centres)
        counts = torch.bincount(assign, minlength=k)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        alive = counts > 0
        centres[alive] = sums[alive] / counts[alive, None].to(x.dtype)
        n_dead = int((~alive).sum())
        if n_dead and n >= k:
            centres[~alive] = x[torch.randint(n, (n_dead,), generator=generator)]
    return centres


class RQVAE(nn.Module):
    """MLP encoder -> ``M``-level residual quantizer (Eq. 14) -> MLP decoder. ``forward(v [N, F])`` -> :class:`RQVAEOutput`."""

    def __init__(self, cfg: RQVAEConfig, in_dim: int):
        super().__init__()
        if in_dim < 1:
            raise ValueError(f"in_dim must be >= 1, got {in_dim}")
        self.cfg, self.in_dim = cfg, in_dim
        self.encoder = _mlp([in_dim, *cfg.hidden, cfg.latent_dim])
        self.decoder = _mlp([cfg.latent_dim, *reversed(cfg.hidden), in_dim])
        self.codebooks = nn.ParameterList(
            [nn.Parameter(torch.randn(k, cfg.latent_dim) / math.sqrt(cfg.latent_dim)) for k in cfg.codebook_sizes])
        self.register_buffer("initialized", torch.tensor(not cfg.kmeans_init))

    def quantize(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor],
                                                    torch.Tensor, torch.Tensor]:
        """Eq. 14 on ``y [N, d_e]`` -> ``(codes [N, M], y_hat [N, d_e], residuals, codebook_loss, commit_loss)``.

        ``residuals`` are ``rho^(1..M)`` (detached). Losses: Eq. 15's level terms, MSE each, summed over levels.
        """
        rho = y
        codes, residuals, qs = [], [], []
        cb_loss = y.new_zeros(())
        cm_loss = y.new_zeros(())
        for book in self.codebooks:
            j = nearest_code(rho.detach(), book.detach())
            q = book[j]                                        # [N, d_e]
            cb_loss = cb_loss + F.mse_loss(q, rho.detach())    # ||sg[rho] - q||^2: moves the codebook
            cm_loss = cm_loss + F.mse_loss(rho, q.detach())    # ||rho - sg[q]||^2: moves the encoder
            codes.append(j)
            residuals.append(rho.detach())
            qs.append(q)
            rho = rho - q.detach()
        y_hat = torch.stack(qs).sum(0)
        return torch.stack(codes, 1), y_hat, residuals, cb_loss, cm_loss

    def forward(self, v: torch.Tensor) -> RQVAEOutput:
        y = self.encoder(v)
        codes, y_hat, residuals, cb_loss, cm_loss = self.quantize(y)
        y_st = y + (y_hat - y).detach()                        # straight-through: value y_hat, gradient to y
        recon = self.decoder(y_st)
        recon_loss = F.mse_loss(recon, v)
        loss = (self.cfg.recon_weight * recon_loss
                + self.cfg.quant_weight * (cb_loss + self.cfg.beta * cm_loss))
        return RQVAEOutput(recon, codes, y, y_hat.detach(), residuals, loss, recon_loss, cb_loss, cm_loss)

    @torch.no_grad()
    def init_codebooks(self, v: torch.Tensor, generator: torch.Generator) -> None:
        """k-means initialization (TIGER): level ``m``'s codebook = k-means of ``rho^(m)`` on the batch ``v``."""
        rho = self.encoder(v)
        for book in self.codebooks:
            book.copy_(kmeans(rho, book.shape[0], self.cfg.kmeans_iters, generator))
            rho = rho - book[nearest_code(rho, book)]
        self.initialized.fill_(True)

    @torch.no_grad()
    def encode_codes(self, v: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
        """``v [N, F]`` -> codes ``[N, M]`` (eval mode, in chunks)."""
        out = []
        for s in range(0, v.shape[0], batch_size):
            out.append(self.quantize(self.encoder(v[s:s + batch_size]))[0])
        return torch.cat(out) if out else torch.empty(0, self.cfg.levels, dtype=torch.long)


def _features_body(features: torch.Tensor) -> torch.Tensor:
    if not isinstance(features, torch.Tensor) or features.dim() != 2 or features.shape[0] < 2:
        raise ValueError("features must be a 2-D tensor [n_items + 1, F] with row 0 = padding and at least one "
                         f"item row; got {getattr(features, 'shape', type(features))}")
    if not torch.isfinite(features).all():
        raise ValueError("features contain NaN or inf; clean them (e.g. torch.nan_to_num) before training")
    return features[1:].float()


def train_rqvae(features: torch.Tensor, cfg: RQVAEConfig, seed: int, progress: bool = True
                ) -> tuple[RQVAE, list[dict]]:
    """Train an :class:`RQVAE` on ``features [n_items + 1, F]`` (row 0 = padding, skipped).

    Adam (Table 4: lr 1e-3, weight decay 1e-4), minibatches of ``cfg.batch_size`` items in a seeded random
    order, ``cfg.epochs`` epochs. k-means initialization on the first batch; after every epoch, codes not
    selected by any item in that epoch are re-seeded from random residuals ``rho^(m)`` of the epoch's last batch.
    Deterministic given ``seed`` (on CPU). Returns ``(model in eval mode, history)``; ``history`` holds one dict
    per epoch: mean ``loss``, ``recon``, ``codebook``, ``commit`` over the epoch's batches, ``used`` (codes
    selected per level) and ``reseeded`` (codes re-seeded per level).
    """
    device = torch.device(cfg.device)
    x = _features_body(features).to(device)
    n = x.shape[0]
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RQVAE(cfg, x.shape[1]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: list[dict] = []
    bs = min(cfg.batch_size, n)
    model.train()
    bar = tqdm(range(cfg.epochs), disable=not progress, desc="rqvae", leave=False)
    for epoch in bar:
        perm = torch.randperm(n, generator=gen).to(device)
        usage = [torch.zeros(k, dtype=torch.long, device=device) for k in cfg.codebook_sizes]
        sums = {"loss": 0.0, "recon": 0.0, "codebook": 0.0, "commit": 0.0}
        n_batches = 0
        last = None
        for s in range(0, n, bs):
            v = x[perm[s:s + bs]]
            if not bool(model.initialized):
                model.init_codebooks(v, gen)
            out = model(v)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            opt.step()
            for m in range(cfg.levels):
                usage[m] += torch.bincount(out.codes[:, m], minlength=cfg.codebook_sizes[m])
            for key, val in zip(sums, (out.loss, out.recon_loss, out.codebook_loss, out.commit_loss)):
                sums[key] += float(val.detach())
            n_batches += 1
            last = out.residuals
        reseeded = [0] * cfg.levels
        if cfg.reseed_dead and last is not None:
            with torch.no_grad():
                for m, book in enumerate(model.codebooks):
                    dead = (usage[m] == 0).nonzero().squeeze(1)
                    if dead.numel():
                        pick = torch.randint(last[m].shape[0], (dead.numel(),), generator=gen).to(device)
                        book[dead] = last[m][pick]
                        reseeded[m] = int(dead.numel())
        rec = {k: v / n_batches for k, v in sums.items()}
        rec.update(epoch=epoch, used=[int((u > 0).sum()) for u in usage], reseeded=reseeded)
        history.append(rec)
        if progress:
            bar.set_postfix(loss=f"{rec['loss']:.4f}", recon=f"{rec['recon']:.4f}", used=rec["used"])
    model.eval()
    return model, history


def add_disambiguation(codes: torch.Tensor, mode: str | bool = "auto") -> torch.Tensor:
    """Append the disambiguation token (Appendix A) to codes ``[n_items + 1, M]`` (row 0 = padding).

    Items whose ``M`` codes collide get ``0, 1, ..., c - 1`` in item-id order within their group of ``c``;
    unique items get 0. ``mode``: ``"auto"`` appends the column only if some SIDs collide, ``True`` always,
    ``False`` never. Row 0 stays :data:`PAD_CODE`. Returns ``[n_items + 1, M]`` or ``[n_items + 1, M + 1]``.
    """
    if mode not in ("auto", True, False):
        raise ValueError(f"mode must be 'auto', True or False, got {mode!r}")
    body = codes[1:]
    _, inv, counts = torch.unique(body, dim=0, return_inverse=True, return_counts=True)
    if mode is False or (mode == "auto" and int(counts.max()) == 1):
        return codes.clone()
    order = torch.argsort(inv, stable=True)                 # groups in turn, item-id order inside each
    starts = torch.cumsum(counts, 0) - counts               # first sorted position of each group
    rank = torch.empty_like(inv)
    rank[order] = torch.arange(inv.numel(), device=inv.device) - starts[inv[order]]
    extra = torch.cat([torch.full((1,), PAD_CODE, dtype=codes.dtype, device=codes.device), rank.to(codes.dtype)])
    return torch.cat([codes, extra[:, None]], 1)


@torch.no_grad()
def assign_sids(model: RQVAE, features: torch.Tensor, disambiguate: str | bool = "auto",
                batch_size: int = 8192) -> torch.Tensor:
    """Semantic IDs of all items: ``LongTensor [n_items + 1, M (+1)]``, row 0 = :data:`PAD_CODE`.

    Columns ``0..M-1`` are Eq. 14's ``(j_1..j_M)``; a last column (the disambiguation token, see
    :func:`add_disambiguation`) is appended when ``disambiguate`` asks for it (``"auto"``: only on collisions).
    """
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    body = model.encode_codes(_features_body(features).to(dev), batch_size).cpu()
    model.train(was_training)
    codes = torch.cat([torch.full((1, body.shape[1]), PAD_CODE, dtype=torch.long), body])
    return add_disambiguation(codes, disambiguate)


def sid_stats(codes: torch.Tensor, codebook_sizes: int | tuple[int, ...] | None = 256,
              levels: int | None = None) -> dict:
    """Quality of a code matrix ``[n_items + 1, L]`` (row 0 = padding, ignored).

    ``levels``: how many leading columns form the SID (default: all; pass 4 to ignore a disambiguation column).
    ``codebook_sizes``: per-level vocabulary (an int for all levels; ``None`` = ``max code + 1``).
    Returns ``utilization`` (per level: distinct codes used / codebook size), ``codes_used`` (per level),
    ``collision_rate`` (fraction of items whose ``levels``-code SID is shared with another item),
    ``max_collision`` (largest group of items sharing one SID; 1 = all unique), ``unique_sids``, ``n_items``.
    """
    body = codes[1:]
    if body.dim() != 2 or body.shape[0] == 0:
        raise ValueError(f"codes must be [n_items + 1, L] with at least one item row, got {tuple(codes.shape)}")
    levels = body.shape[1] if levels is None else levels
    if not 1 <= levels <= body.shape[1]:
        raise ValueError(f"levels must be in 1..{body.shape[1]}, got {levels}")
    body = body[:, :levels]
    if codebook_sizes is None:
        sizes = [int(body[:, m].max()) + 1 for m in range(levels)]
    elif isinstance(codebook_sizes, int):
        sizes = [codebook_sizes] * levels
    else:
        sizes = list(codebook_sizes)[:levels]
        if len(sizes) != levels:
            raise ValueError(f"codebook_sizes has {len(codebook_sizes)} entries, need {levels}")
    used = [int(torch.unique(body[:, m]).numel()) for m in range(levels)]
    _, inv, counts = torch.unique(body, dim=0, return_inverse=True, return_counts=True)
    shared = counts[inv] > 1
    return {
        "utilization": [u / k for u, k in zip(used, sizes)],
        "codes_used": used,
        "collision_rate": float(shared.float().mean()),
        "max_collision": int(counts.max()),
        "unique_sids": int(counts.numel()),
        "n_items": int(body.shape[0]),
    }
