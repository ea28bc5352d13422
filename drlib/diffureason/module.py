"""DiffuReason wrapped around any :class:`~drlib.models.Backbone` (Algorithm 1).

Forward pass for a batch of histories ``[B, L]``:

1. ``(state, H, pad) = backbone.reasoning_memory(x)`` (``H = encode(x)`` ``[B, L, d]`` for SASRec); thinking
   tokens ``tau`` ``[B, R, d]`` (Eq. 1, attending to ``H`` with padding mask ``pad``); ``c = psi(tau)`` (Eq. 2).
2. ``x^T = tau_R + eps`` (Eq. 3); for ``t = T..1``: ``(mu_t, sigma_t) = Denoiser(x^t, t, c)`` and
   ``x^{t-1} = mu_t + k_t * sigma_t * eps_t`` in training (reparameterised; ``k_t = sqrt(1 - alpha_bar_{t-1})``
   when ``schedule_scales_noise`` is on, else 1), ``x^{t-1} = mu_t`` at inference (deterministic, C.1.2).
3. The last step's ``(mu, sigma)`` is the policy (Eq. 5, 18): anchor ``z = mu``, samples ``z_i = mu + sigma eps_i``.
4. Losses: ``L_rec`` = CE(score(mu)) (Eq. 13), ``L_diff = ||mu - sg[v_target]||^2`` (Eq. 7), ``L_align`` = GRPO
   over ``G`` samples with Hit@1 rewards (Eq. 9-11); ``L = L_rec + alpha L_diff + beta L_align`` (Eq. 12).

The module reaches the backbone only through the hooks of :class:`~drlib.models.base.Backbone`:
``reasoning_memory`` (step 1), ``latent_loss`` (``L_rec``), ``target_latent`` (``v_target``), ``latent_rewards``
(Eq. 8-9) and ``latent_scores`` (``full_scores``). Their defaults are the ID-based (SASRec) behaviour above;
the Semantic-ID backbones (DiffuReason-H / -T) override them in :mod:`drlib.diffureason.adapters` (the refined
latent becomes an extra decoder context token; rewards and scores come from constrained SID decoding).
``fit_reasoner_heads=True`` (used by DiffuReason-H / -T only) gives the reasoner the largest head count
``<= reasoner_heads`` that divides ``d`` (HSTU's ``d = 50``: 5 heads of width 10; DiffuReason-S keeps the strict
check, and its hash, since the settings are unchanged).

Inference is deterministic: ``x^T = tau_R`` (the mean of Eq. 3's start) and every step takes the mean. The
paper keeps ``eps_init`` at test time but calls inference deterministic; we drop the one random draw.

How the schedule enters (the paper does not say): ``alpha_bar`` sets how much of the learned ``sigma`` is
injected at each intermediate training step, ``k_t = sqrt(1 - alpha_bar_{t-1})``: early (noisy) steps explore
with almost the full ``sigma``, the last steps are nearly deterministic, as in DDPM's posterior variance
that shrinks towards ``t = 0``. The policy samples of step 3 always use the full ``sigma``. With
``schedule_scales_noise=False`` every step samples with the full ``sigma`` (Algorithm 1 literally).

Table 3's extra rows: ``kl_weight > 0`` adds ``KL(pi_theta || pi_ref)`` (analytic, diagonal Gaussians), where
``pi_ref`` is a frozen copy of the whole model taken at the start of each epoch and run on the same noise
and dropout masks. ``two_stage_epochs = E`` trains ``L_rec + alpha L_diff`` for ``E`` epochs, then, from the
best checkpoint so far, ``L_rec + beta L_align`` (the MSE term dropped). With one policy update per batch the
GRPO ratio is exactly 1, so clipping never acts (the paper's behaviour, kept); ``reward`` can replace the
sparse Hit@1 by Hit@K or the target's reciprocal rank.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.base import Backbone, Recommender
from ..utils import eval_mode
from .denoiser import Denoiser
from .policy import gaussian_log_density, group_advantages, grpo_loss
from .reasoner import AttentionPooling, LatentReasoner
from .schedule import CosineSchedule


@dataclass(frozen=True)
class DiffuReasonSettings:
    reasoning_steps: int = 3        # R (Table 5: CoT length 3); 1 = "w/o CoT"
    reasoner_layers: int = 2        # Table 5
    reasoner_heads: int = 8         # Table 5
    use_diffusion: bool = True      # False = "w/o Diffusion": the policy sits on the reasoning output
    diffusion_steps: int = 16       # T (Table 5)
    schedule_s: float = 0.008       # Eq. 17
    schedule_scales_noise: bool = True
    denoiser_dropout: float = 0.1   # C.1.2
    denoiser_input_norm: bool = True  # LayerNorm on x_t at the denoiser input (ours: keeps the 16-step chain bounded)
    group_size: int = 8             # G (Table 5)
    alpha: float = 1.0              # L_diff weight (0 = "w/o MSE")
    diff_reduction: str = "mean"    # Eq. 7 as an MSE: "mean" over the d coordinates; "sum" = the squared norm
    beta: float = 1.0               # L_align weight (0 = "w/o RL")
    eps_clip: float = 0.2           # Eq. 11 (not given in the paper; PPO's usual value)
    eps_adv: float = 1e-6           # Eq. 10
    reward: str = "hit@1"           # Eq. 9 (paper); "hit@K" or "mrr" (1/rank of the target, dense) as options
    kl_weight: float = 0.0          # "with KL" (Table 3): 0.1; reference = the model at the start of the epoch
    two_stage_epochs: int = 0       # "with Two-stage": epochs of MSE pre-training before RL fine-tuning; 0 = off
    # Readings of the paper (the issue on DiffuReason's readings; the reproduction notes quote what each reads).
    # The defaults are the behaviour before these switches existed and are left out of the config hash
    # (config.HASH_NEUTRAL), so older records keep their ids.
    align_scope: str = "all"        # "all": L_align's gradient reaches every parameter; "refinement": only the
                                    # reasoner, pooling and denoiser (backbone and item table get none of it)
    logp_reduction: str = "sum"     # Eq. 20's log-density over the d coordinates: "sum" (literal) or "mean"
    rollouts: int = 0               # A.1: 0 = mu is the prediction; k >= 1 = mu re-enters the backbone as an
                                    # extra input token, k chained passes, prediction and reward from its output
    backbone_weight: float = 0.0    # weight of the backbone's own CE on h_L beside L_rec (0 = off)
    init_noise: float = 1.0         # scale of Eq. 3's N(0, I) at training (inference starts from tau_R: 0)
    sample_scale: float = 1.0       # the policy is N(mu, (sample_scale * sigma)^2) (Eq. 6, 18; 1 = literal)
    reward_screen: int = 32         # speed only, the rewards are the same: Hit@K first screens each sample on
                                    # the items its group's mean ranks highest (models.rewards); 0 = no screen

    def __post_init__(self):
        if self.reasoning_steps < 1 or self.diffusion_steps < 1 or self.group_size < 2:
            raise ValueError(f"need reasoning_steps >= 1, diffusion_steps >= 1 and group_size >= 2: {self}")
        if self.alpha < 0 or self.beta < 0 or not 0 < self.eps_clip < 1:
            raise ValueError(f"alpha and beta must be >= 0 and eps_clip in (0, 1): {self}")
        if self.kl_weight < 0 or self.two_stage_epochs < 0:
            raise ValueError(f"kl_weight and two_stage_epochs must be >= 0: {self}")
        if (self.kl_weight > 0 or self.two_stage_epochs > 0) and self.beta == 0:
            raise ValueError("kl_weight and two_stage_epochs act on the RL term; they make no sense with beta=0")
        if self.diff_reduction not in ("mean", "sum"):
            raise ValueError(f"diff_reduction must be 'mean' or 'sum', got {self.diff_reduction!r}")
        if self.align_scope not in ("all", "refinement"):
            raise ValueError(f"align_scope must be 'all' or 'refinement', got {self.align_scope!r}")
        if self.logp_reduction not in ("sum", "mean"):
            raise ValueError(f"logp_reduction must be 'sum' or 'mean', got {self.logp_reduction!r}")
        if (self.rollouts < 0 or self.backbone_weight < 0 or self.init_noise < 0 or not self.sample_scale > 0
                or self.reward_screen < 0):
            raise ValueError("rollouts, backbone_weight, init_noise and reward_screen must be >= 0 and "
                             f"sample_scale > 0: {self}")
        if self.reward != "mrr" and not (self.reward.startswith("hit@") and self.reward[4:].isdigit()
                                         and int(self.reward[4:]) >= 1):
            raise ValueError(f"reward must be 'hit@K' (K >= 1) or 'mrr', got {self.reward!r}")


def fitted_heads(d: int, heads: int) -> int:
    """The largest head count ``<= heads`` that divides ``d`` (HSTU's ``d = 50`` with 8 heads -> 5)."""
    return next(h for h in range(min(heads, d), 0, -1) if d % h == 0)


def gaussian_kl(mu: torch.Tensor, sigma: torch.Tensor, mu_ref: torch.Tensor, sigma_ref: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, sigma^2) || N(mu_ref, sigma_ref^2))`` for diagonal Gaussians, summed over the last dim."""
    return (torch.log(sigma_ref / sigma) + (sigma ** 2 + (mu - mu_ref) ** 2) / (2 * sigma_ref ** 2) - 0.5).sum(-1)


class DiffuReason(Recommender):
    """``compute_loss``/``full_scores`` as any recommender; ``trajectory`` exposes every stage for the probes."""

    def __init__(self, backbone: Backbone, cfg: DiffuReasonSettings = DiffuReasonSettings(),
                 fit_reasoner_heads: bool = False):
        super().__init__()
        d = backbone.d_model
        self.backbone, self.cfg = backbone, cfg
        heads = fitted_heads(d, cfg.reasoner_heads) if fit_reasoner_heads else cfg.reasoner_heads
        self.reasoner = LatentReasoner(d, cfg.reasoning_steps, cfg.reasoner_layers, heads)
        self.pool = AttentionPooling(d)
        self.schedule = CosineSchedule(cfg.diffusion_steps, cfg.schedule_s)
        if cfg.use_diffusion:
            self.denoiser = Denoiser(d, cfg.denoiser_dropout, cfg.denoiser_input_norm)
            self.register_buffer("noise_scale", torch.sqrt(1 - self.schedule.alpha_bars()).float(), persistent=False)
        else:
            self.sigma_head = nn.Linear(d, d)   # w/o Diffusion: mu = c, sigma from c
        if cfg.rollouts > 0 and type(backbone).rollout is Backbone.rollout:
            raise ValueError(f"model.module.rollouts={cfg.rollouts}: {type(backbone).__name__} cannot read extra "
                             "input tokens; the rollout reading (Appendix A.1) is for SASRec (diffureason-s)")
        self._epoch = 0
        object.__setattr__(self, "_reference", None)   # not a submodule: never saved, rebuilt every epoch

    # ------------------------------------------------------------------ phases (two-stage, KL reference)
    def in_rl_phase(self) -> bool:
        return self.cfg.beta > 0 and self._epoch >= self.cfg.two_stage_epochs

    def start_epoch(self, epoch: int) -> bool:
        """Two-stage: RL starts at ``two_stage_epochs``. KL: the reference policy is refreshed here."""
        self._epoch = epoch
        if self.cfg.kl_weight > 0 and self.in_rl_phase():
            self._refresh_reference()
        return self.cfg.two_stage_epochs > 0 and epoch == self.cfg.two_stage_epochs

    def epoch_state(self) -> dict | None:
        """The KL term's reference policy (a copy of the model at the epoch's start), for mid-epoch checkpoints."""
        ref = getattr(self, "_reference", None)
        return None if ref is None else {"reference": {k: v.detach().cpu() for k, v in ref.state_dict().items()}}

    def load_epoch_state(self, state: dict | None) -> None:
        if state and "reference" in state:
            if self._reference is None:
                self._refresh_reference()
            self._reference.load_state_dict(state["reference"])

    def _refresh_reference(self):
        object.__setattr__(self, "_reference", None)
        ref = copy.deepcopy(self)
        for p in ref.parameters():
            p.requires_grad_(False)
        object.__setattr__(self, "_reference", ref)

    # ------------------------------------------------------------------ stages
    def trajectory(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every stage for ``inputs`` ``[B, L]``: ``H [B,S,d]`` (``S = L`` for ID backbones), ``tau [B,R,d]``,
        ``c [B,d]``, ``mu``, ``sigma [B,d]``, and the backbone's ``state`` (see ``Backbone.reasoning_memory``)."""
        state, H, pad = self.backbone.reasoning_memory(inputs)
        tau = self.reasoner(H, pad)
        c, weights = self.pool(tau)
        if not self.cfg.use_diffusion:
            sigma = (F.softplus(self.sigma_head(c)) + 1e-5).clamp(Denoiser.SIGMA_MIN, Denoiser.SIGMA_MAX)
            return {"H": H, "state": state, "tau": tau, "c": c, "pool_weights": weights, "mu": c, "sigma": sigma,
                    "pred": self.readout(inputs, c[:, None])[:, 0]}
        x = tau[:, -1]
        if self.training and self.cfg.init_noise > 0:
            x = x + self.cfg.init_noise * torch.randn_like(x)          # Eq. 3 (inference: the noise's mean, 0)
        cond = self.denoiser.condition(c)                               # c's part of the first layer, once
        for t in self.schedule.timesteps():
            mu, sigma = self.denoiser.step(x, torch.full((1,), t, device=inputs.device), cond)   # t broadcasts
            if self.training and t > 1:
                k = self.noise_scale[t - 1] if self.cfg.schedule_scales_noise else 1.0
                x = mu + k * sigma * torch.randn_like(mu)
            else:
                x = mu
        return {"H": H, "state": state, "tau": tau, "c": c, "pool_weights": weights, "mu": mu, "sigma": sigma,
                "pred": self.readout(inputs, mu[:, None])[:, 0]}

    def readout(self, inputs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The latent that is scored, for refined latents ``z [B, G, d]`` -> ``[B, G, d]``.

        ``rollouts = 0``: ``z`` itself. ``rollouts = k`` (Appendix A.1's reading for SASRec): ``z`` re-enters the
        backbone as an extra input token (:meth:`Backbone.latent_token`) after the history; the backbone's output
        there is the prediction; each further rollout appends that output and reads the backbone again
        (:meth:`Backbone.rollout`, each of the ``G`` latents on its own)."""
        if self.cfg.rollouts == 0:
            return z
        tokens = self.backbone.latent_token(z)[:, :, None]                     # [B, G, 1, d]
        for r in range(self.cfg.rollouts):
            y = self.backbone.rollout(inputs, tokens)                           # [B, G, d]
            tokens = torch.cat([tokens, y[:, :, None]], 2)
        return y

    def refinement_parameters(self) -> list[nn.Parameter]:
        """The reasoner, the pooling and the denoiser (or the ``sigma_head`` of "w/o Diffusion"): the parameters
        ``align_scope="refinement"`` lets L_align update."""
        head = self.denoiser if self.cfg.use_diffusion else self.sigma_head
        return [p for m in (self.reasoner, self.pool, head) for p in m.parameters() if p.requires_grad]

    # ------------------------------------------------------------------ Recommender interface
    def full_scores(self, inputs: torch.Tensor) -> torch.Tensor:
        out = self.trajectory(inputs)
        return self.backbone.latent_scores(out["state"], out["pred"])

    def loss_terms(self, inputs, targets):
        """The terms of Eq. 12 for a batch, unweighted, with their weights.

        Returns ``(terms, weights, logs, out)``: ``terms`` maps ``rec``, ``diff`` and, in the RL phase,
        ``align`` (and ``kl`` for "with KL") to scalar tensors; ``weights`` maps the same keys to floats;
        ``logs`` holds loggable floats; ``out`` is the :meth:`trajectory`. ``compute_loss`` is the weighted sum;
        :mod:`drlib.diffureason.diagnostics` takes each term's gradient separately.
        """
        cfg = self.cfg
        rl = self.in_rl_phase()
        rng = _rng_state(inputs.device)
        out = self.trajectory(inputs)
        mu, sigma = out["mu"], out["sigma"]
        l_rec = self.backbone.latent_loss(out["state"], out["pred"], targets)   # Eq. 13
        v_target = self.backbone.target_latent(targets).detach()
        sq = (mu - v_target) ** 2                                              # Eq. 7
        l_diff = sq.mean() if cfg.diff_reduction == "mean" else sq.sum(-1).mean()
        two_stage_rl = rl and cfg.two_stage_epochs > 0                         # stage 2 drops the MSE term
        terms = {"rec": l_rec, "diff": l_diff}
        weights = {"rec": 1.0, "diff": 0.0 if two_stage_rl else cfg.alpha}
        logs = {"rec": l_rec.item(), "diff": l_diff.item()}
        if cfg.backbone_weight > 0:
            l_bb = self.backbone.backbone_loss(out["state"], out["H"], targets)
            terms["backbone"], weights["backbone"] = l_bb, cfg.backbone_weight
            logs["backbone"] = l_bb.item()
        if rl:
            pol_sigma = cfg.sample_scale * sigma                                # the policy's std (Eq. 18)
            eps = torch.randn(mu.shape[0], cfg.group_size, mu.shape[1], device=mu.device, dtype=mu.dtype)
            z = (mu.unsqueeze(1) + pol_sigma.unsqueeze(1) * eps).detach()   # actions, Eq. 6
            with torch.no_grad(), eval_mode(self.backbone):
                pred = self.readout(inputs, z)                                 # rollouts: the backbone's outputs
                rewards = self.backbone.latent_rewards(out["state"], pred, targets, cfg.reward,
                                                       cfg.reward_screen)                       # Eq. 8-9
                adv = group_advantages(rewards, cfg.eps_adv)                   # Eq. 10
            logp = gaussian_log_density(z, mu.unsqueeze(1), pol_sigma.unsqueeze(1),
                                        cfg.logp_reduction)                     # Eq. 20
            l_align, info = grpo_loss(logp, logp.detach(), adv, cfg.eps_clip)           # Eq. 11, 21
            terms["align"], weights["align"] = l_align, cfg.beta
            logs.update(align=l_align.item(), reward=rewards.mean().item(),
                        informative_groups=(rewards.std(-1) > 0).float().mean().item(), **info)
            if cfg.kl_weight > 0:
                if self._reference is None:
                    self._refresh_reference()
                with torch.no_grad(), torch.random.fork_rng(devices=_cuda_devices(inputs.device)):
                    _set_rng_state(rng, inputs.device)                        # same noise and dropout masks
                    ref = self._reference.train(self.training).trajectory(inputs)
                kl = gaussian_kl(mu, sigma, ref["mu"], ref["sigma"]).mean()
                terms["kl"], weights["kl"] = kl, cfg.kl_weight
                logs["kl"] = kl.item()
        return terms, weights, logs, out

    def compute_loss(self, inputs, targets):
        """``L = L_rec + alpha L_diff + beta L_align (+ kl_weight KL) (+ backbone_weight L_bb)`` (Eq. 12), logs.

        ``align_scope="refinement"``: L_align enters through :func:`restricted_gradient` (its value, with its
        gradient on :meth:`refinement_parameters` alone)."""
        terms, weights, logs, _ = self.loss_terms(inputs, targets)
        loss = terms["rec"] + weights["diff"] * terms["diff"]
        for k in ("align", "kl", "backbone"):
            if k in terms:
                term = terms[k]
                if k == "align" and self.cfg.align_scope == "refinement":
                    term = restricted_gradient(term, self.refinement_parameters())
                loss = loss + weights[k] * term
        logs["loss"] = loss.item()
        return loss, logs


def restricted_gradient(loss: torch.Tensor, params: list[nn.Parameter]) -> torch.Tensor:
    """A scalar equal to ``loss`` whose gradient is ``d loss / d params`` on ``params`` and zero everywhere else:
    the term's backward pass reaches only ``params`` (the graph of ``loss`` is kept for the other terms)."""
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    out = loss.detach().clone()
    for p, g in zip(params, grads):
        if g is not None:
            s = (p * g).sum()
            out = out + (s - s.detach())
    return out


def _cuda_devices(device: torch.device) -> list:
    return [device] if device.type == "cuda" else []


def _rng_state(device: torch.device):
    return (torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None)


def _set_rng_state(state, device: torch.device):
    torch.set_rng_state(state[0])
    if device.type == "cuda":
        torch.cuda.set_rng_state(state[1], device)
