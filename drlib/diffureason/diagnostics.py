"""Where the gradient of each loss term goes: a diagnostic of Eq. 12 on real batches.

``term_gradients(model, inputs, targets)`` runs one training forward pass (:meth:`DiffuReason.loss_terms`) and
takes the gradient of each *weighted* term separately:

* ``mu_norm``: the mean over users of ``|| d(w_k L_k) / d mu_b || * B`` (the per-user gradient on the anchor;
  the terms are batch means, hence the factor ``B``);
* ``<group>_norm``: the norm of the term's gradient on the parameters of ``backbone``, ``reasoner`` (reasoner and
  pooling) and ``denoiser`` (denoiser, or the ``sigma_head`` of "w/o Diffusion");
* ``cos_rec``: the cosine between the term's gradient and ``L_rec``'s on all parameters together (negative:
  the term pulls against the recommendation loss).

plus the policy's ``sigma`` (mean, and the fraction at either clamp) and the logs of ``compute_loss``.
``summarise`` averages a list of these over batches.
"""
from __future__ import annotations

import torch

from .denoiser import Denoiser


def _groups(model) -> dict[str, list[torch.nn.Parameter]]:
    den = model.denoiser if hasattr(model, "denoiser") else model.sigma_head
    groups = {"backbone": list(model.backbone.parameters()),
              "reasoner": list(model.reasoner.parameters()) + list(model.pool.parameters()),
              "denoiser": list(den.parameters())}
    return {k: [p for p in v if p.requires_grad] for k, v in groups.items()}


def term_gradients(model, inputs: torch.Tensor, targets: torch.Tensor, vectors: dict | None = None
                   ) -> dict[str, float]:
    """One batch ``inputs [B, L]``, ``targets [B]`` -> flat dict ``{term}_{quantity}: float`` (see module doc).

    With ``vectors`` (a dict), each term's flattened parameter gradient is also stored there under its name
    (for :func:`consistency`)."""
    model.train()
    terms, weights, logs, out = model.loss_terms(inputs, targets)
    mu, sigma = out["mu"], out["sigma"]
    groups = _groups(model)
    params = [p for g in groups.values() for p in g]
    B = mu.shape[0]
    res: dict[str, float] = {f"log_{k}": float(v) for k, v in logs.items()}
    flat = {}
    names = list(terms)
    for i, k in enumerate(names):
        w = weights[k]
        grads = torch.autograd.grad(w * terms[k], [mu] + params, retain_graph=i < len(names) - 1,
                                    allow_unused=True)
        g_mu, g_par = grads[0], grads[1:]
        res[f"{k}_weight"] = float(w)
        res[f"{k}_mu_norm"] = float(g_mu.norm(dim=-1).mean() * B) if g_mu is not None else 0.0
        pos = 0
        vecs = []
        for name, ps in groups.items():
            gs = [(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(g_par[pos:pos + len(ps)], ps)]
            pos += len(ps)
            v = torch.cat(gs) if gs else torch.zeros(0)
            res[f"{k}_{name}_norm"] = float(v.norm())
            vecs.append(v)
        flat[k] = torch.cat(vecs)
        if vectors is not None:
            vectors[k] = flat[k]
    for k in names:
        a, b = flat[k].double(), flat["rec"].double()   # float64: in fp32 a vector's cosine with itself was 1 + 1.2e-5
        res[f"{k}_cos_rec"] = float(a @ b / (a.norm() * b.norm() + 1e-30))
    with torch.no_grad():
        res["sigma_mean"] = float(sigma.mean())
        res["sigma_at_min"] = float((sigma <= Denoiser.SIGMA_MIN * 1.0001).float().mean())
        res["sigma_at_max"] = float((sigma >= Denoiser.SIGMA_MAX * 0.9999).float().mean())
        res["mu_norm"] = float(mu.norm(dim=-1).mean())
    return res


def consistency(batches: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Over ``n`` batches of :func:`term_gradients` vectors: for each term, ``signal`` = ``||mean g||^2 /
    mean ||g||^2`` (1 when every batch points the same way, about ``1/n`` for pure noise) and ``cos_rec_mean`` =
    the cosine between the term's mean gradient and ``L_rec``'s mean gradient."""
    out = {"n_batches": float(len(batches))}
    means = {}
    for k in batches[0]:
        gs = torch.stack([b[k] for b in batches]).double()
        means[k] = gs.mean(0)
        out[f"{k}_signal"] = float(means[k].norm() ** 2 / (gs.norm(dim=1) ** 2).mean().clamp_min(1e-30))
    for k, m in means.items():
        r = means["rec"]
        out[f"{k}_cos_rec_mean"] = float(m @ r / (m.norm() * r.norm() + 1e-30))
    return out


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each key over batches."""
    keys = sorted({k for r in rows for k in r})
    return {k: sum(r.get(k, 0.0) for r in rows) / len(rows) for k in keys}


__all__ = ["consistency", "term_gradients", "summarise"]
