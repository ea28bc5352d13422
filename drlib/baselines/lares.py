"""LARES (Liu et al. 2025, "LARES: Latent Reasoning for Sequential Recommendation", arXiv 2505.16865).

Depth-recurrent latent reasoning over *all* positions of the history, on SASRec's embeddings and blocks:

1. ``H = A(E_u + P)`` ``[B, L, d]``: item plus position embeddings through the *pre-block* ``A``
   (``pre_layers`` causal Transformer blocks).
2. ``T_0 = omega * z``, ``z ~ N(0, I)`` ``[B, L, d]`` (``omega = init_noise_std``), then for ``i = 1..k``:
   ``T_i = C(LN(T_{i-1} + H))`` with the *core-block* ``C`` (``core_layers`` causal blocks, the same weights at
   every step, so the depth grows with ``k`` while the parameters do not). At inference ``T_0 = 0`` (the
   noise's mean), so scores are deterministic.
3. The prediction of step ``i`` is ``LN_f(T_i)`` at the newest position, scored against the tied item table.

Training has two phases, switched by :meth:`LARES.start_epoch` (a function of the epoch alone):

* **SPT** (self-supervised pre-training), epochs ``0 .. spt_epochs-1``:
  ``L = L_rec + step_weight * L_step + traj_weight * L_traj``.
  ``L_rec``: full-softmax cross-entropy of the last step. ``L_step`` (step-level alignment): the same
  cross-entropy for every intermediate step ``1..k-1``, averaged, so each step is already a usable prediction
  and the recurrence refines it. ``L_traj`` (trajectory-level alignment): InfoNCE (cosine, temperature
  ``traj_temperature``, in-batch negatives) between the final state of the trajectory and that of a second
  trajectory of the same history started from another ``T_0`` draw with other dropout masks (computed without
  gradient, reusing ``H``): the end of the reasoning should not depend on where it started.
* **RPT** (reinforcement post-training), from epoch ``spt_epochs`` on (from the best checkpoint so far):
  ``L = L_rec + rl_weight * L_align``. The policy is a Gaussian around the final latent,
  ``z_g = mu + rl_sigma * eps_g`` (``G = group_size`` samples, fixed ``rl_sigma``), the reward of a sample is
  the target's reciprocal rank under it (``reward="mrr"``; ``"hit@K"`` available), advantages are normalised
  within the group and ``L_align`` is the GRPO loss of :mod:`drlib.diffureason.policy` (one update per batch,
  so the ratio is 1 and clipping never acts, as in DiffuReason).

The authors' code is not public; where the paper's description leaves a gap the choice is ours (to be listed in
the book's reproduction notes): the losses, the RL policy and reward, the weights and the phase split.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..diffureason.policy import gaussian_log_density, group_advantages, grpo_loss
from ..models.base import Recommender
from ..models.rewards import latent_rewards
from ..models.layers import Block, Dropout, causal_padding_mask, init_weights
from ..models.sasrec import SASRec, SASRecConfig


@dataclass(frozen=True)
class LARESConfig:
    """SASRec's width, heads, FFN, dropout and init (``backbone``; its ``n_layers`` is not used) plus LARES's own.

    ``pre_layers = core_layers = 1`` gives exactly the parameters of a 2-layer SASRec (plus one LayerNorm);
    ``reasoning_steps = 4`` runs the core four times, so the encoder is 5 blocks deep.
    """
    backbone: SASRecConfig = SASRecConfig()
    pre_layers: int = 1                # blocks of the pre-block A (0 = H is the embeddings)
    core_layers: int = 1               # blocks of the core-block C, shared across the k steps
    reasoning_steps: int = 4           # k
    init_noise_std: float = 0.02       # omega * sigma_1 of T_0 (training only; 0 at inference)
    step_weight: float = 0.5           # step-level alignment (intermediate steps' cross-entropy), SPT only
    traj_weight: float = 0.1           # trajectory-level alignment (InfoNCE between two trajectories), SPT only
    traj_temperature: float = 0.2
    spt_epochs: int = 10               # SPT for epochs 0..spt_epochs-1, then RPT; 0 = RPT from the start
    rl_weight: float = 0.1             # weight of the GRPO term in RPT (0 = no RPT phase: SPT throughout)
    group_size: int = 8                # G samples per history
    rl_sigma: float = 0.1              # std of the Gaussian exploration around the final latent
    reward: str = "mrr"                # reciprocal rank of the target (dense); or "hit@K"
    eps_clip: float = 0.2
    eps_adv: float = 1e-6

    def __post_init__(self):
        if self.pre_layers < 0 or self.core_layers < 1 or self.reasoning_steps < 1:
            raise ValueError(f"LARES needs pre_layers >= 0, core_layers >= 1 and reasoning_steps >= 1, got "
                             f"{self.pre_layers}, {self.core_layers}, {self.reasoning_steps}")
        if self.init_noise_std < 0:
            raise ValueError(f"init_noise_std must be >= 0, got {self.init_noise_std}")
        if self.step_weight < 0 or self.traj_weight < 0 or self.rl_weight < 0:
            raise ValueError(f"step_weight, traj_weight and rl_weight must be >= 0: {self.step_weight}, "
                             f"{self.traj_weight}, {self.rl_weight}")
        if self.traj_temperature <= 0 or self.rl_sigma <= 0:
            raise ValueError(f"traj_temperature and rl_sigma must be > 0: {self.traj_temperature}, {self.rl_sigma}")
        if self.spt_epochs < 0:
            raise ValueError(f"spt_epochs must be >= 0, got {self.spt_epochs}")
        if self.group_size < 2:
            raise ValueError(f"group_size must be >= 2 (advantages are relative to the group), got {self.group_size}")
        if not 0 < self.eps_clip < 1 or self.eps_adv <= 0:
            raise ValueError(f"need eps_clip in (0, 1) and eps_adv > 0: {self.eps_clip}, {self.eps_adv}")
        if self.reward != "mrr" and not (self.reward.startswith("hit@") and self.reward[4:].isdigit()
                                         and int(self.reward[4:]) >= 1):
            raise ValueError(f"reward must be 'mrr' or 'hit@K' (K >= 1), got {self.reward!r}")


class LARESEncoder(SASRec):
    """The LARES encoder as a :class:`~drlib.models.Backbone`: SASRec's embeddings, ``blocks`` = pre-block ``A``,
    ``core`` = core-block ``C``, ``ln_core`` the LN inside the recurrence, ``ln_f`` the read-out LN of every step.

    ``encode``: ``[B, L]`` -> ``LN_f(T_k)`` ``[B, L, d]``; ``score``/``item_logits`` as SASRec (tied item table).
    """

    def __init__(self, cfg: LARESConfig, n_items: int, max_len: int):
        nn.Module.__init__(self)   # SASRec.__init__ would build n_layers blocks; build the parts here instead
        bcfg = dataclasses.replace(cfg.backbone, n_layers=cfg.pre_layers)
        self.cfg, self.lares, self.n_items, self.d_model, self.max_len = bcfg, cfg, n_items, bcfg.d_model, max_len
        self.item_emb = nn.Embedding(n_items + 1, bcfg.d_model, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, bcfg.d_model)
        self.emb_drop = Dropout(bcfg.dropout)
        self.blocks = nn.ModuleList([Block(bcfg) for _ in range(cfg.pre_layers)])
        self.core = nn.ModuleList([Block(bcfg) for _ in range(cfg.core_layers)])
        self.ln_core = nn.LayerNorm(bcfg.d_model)
        self.ln_f = nn.LayerNorm(bcfg.d_model)
        init_weights(self, bcfg.init_std)

    def pre_block(self, seqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``seqs`` ``[B, L]`` -> ``H`` ``[B, L, d]`` (padded positions 0), the attention mask, the keep mask."""
        x, keep = self.embed(seqs)
        mask = causal_padding_mask(seqs)
        for block in self.blocks:
            x = block(x, mask) * keep
        return x, mask, keep

    def reason(self, H: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor) -> list[torch.Tensor]:
        """The recurrence from ``H`` ``[B, L, d]`` -> ``[T_1, .., T_k]``, each ``[B, L, d]`` (before ``ln_f``).

        ``T_0`` is Gaussian noise of std ``init_noise_std`` in training and 0 in eval mode.
        """
        T = torch.zeros_like(H)
        if self.training and self.lares.init_noise_std > 0:
            T = torch.randn_like(H) * self.lares.init_noise_std * keep
        steps = []
        for _ in range(self.lares.reasoning_steps):
            T = self.ln_core(T + H)                         # f = addition, then LN
            for block in self.core:
                T = block(T, mask) * keep
            steps.append(T)
        return steps

    def trajectory(self, seqs: torch.Tensor) -> dict[str, torch.Tensor]:
        """``seqs`` ``[B, L]`` -> ``H [B,L,d]``, ``steps`` ``[k, B, L, d]`` (each step read out by ``ln_f``)."""
        H, mask, keep = self.pre_block(seqs)
        steps = self.reason(H, mask, keep)
        return {"H": H, "steps": self.ln_f(torch.stack(steps))}

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        H, mask, keep = self.pre_block(seqs)
        return self.ln_f(self.reason(H, mask, keep)[-1])

    def encode_last(self, seqs: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` -> ``[B, d]``: the last step at the newest position (SASRec's shortcut does not apply)."""
        return self.encode(seqs)[:, -1]


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE with in-batch negatives: ``a``, ``b`` ``[B, d]``, row ``i`` of ``b`` is ``a_i``'s positive -> scalar.

    Cosine similarities over ``temperature``; cross-entropy of each row of ``a`` against all rows of ``b``.
    """
    logits = F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).t() / temperature
    return F.cross_entropy(logits, torch.arange(a.shape[0], device=a.device))


class LARES(Recommender):
    """LARES on SASRec's parts. ``compute_loss``/``full_scores`` as any recommender; ``backbone`` is the
    :class:`LARESEncoder` (``backbone.score``, ``backbone.item_embeddings()``, ``backbone.trajectory``).
    """

    def __init__(self, cfg: LARESConfig, n_items: int, max_len: int):
        super().__init__()
        self.cfg = cfg
        self.backbone = LARESEncoder(cfg, n_items, max_len)
        self._epoch = 0

    # ------------------------------------------------------------------ phases
    def in_rl_phase(self) -> bool:
        """RPT from epoch ``spt_epochs`` on (never when ``rl_weight`` is 0)."""
        return self.cfg.rl_weight > 0 and self._epoch >= self.cfg.spt_epochs

    def start_epoch(self, epoch: int) -> bool:
        """Record the epoch; ``True`` exactly at the SPT -> RPT switch (``epoch == spt_epochs > 0``)."""
        self._epoch = epoch
        return self.cfg.rl_weight > 0 and self.cfg.spt_epochs > 0 and epoch == self.cfg.spt_epochs

    # ------------------------------------------------------------------ losses
    def loss_terms(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict]:
        """The unweighted terms of the current phase for ``inputs`` ``[B, L]``, ``targets`` ``[B]``.

        Returns ``({name: scalar tensor}, extra logs)``; names: SPT ``rec``, ``step`` (if ``k > 1``), ``traj``
        (if ``traj_weight > 0``); RPT ``rec``, ``align``.
        """
        cfg, bb = self.cfg, self.backbone
        H, mask, keep = bb.pre_block(inputs)
        steps = bb.reason(H, mask, keep)
        last = bb.ln_f(torch.stack([T[:, -1] for T in steps]))         # [k, B, d]: each step's prediction
        mu = last[-1]                                                   # [B, d]
        terms = {"rec": bb.next_item_loss(mu, targets)}
        extra: dict[str, float] = {}
        if not self.in_rl_phase():
            if cfg.reasoning_steps > 1 and cfg.step_weight > 0:
                k1 = cfg.reasoning_steps - 1
                terms["step"] = bb.next_item_loss(last[:-1].reshape(k1 * mu.shape[0], -1), targets.repeat(k1))
            if cfg.traj_weight > 0:
                with torch.no_grad():                                   # a second trajectory: other T_0, masks
                    other = bb.ln_f(bb.reason(H, mask, keep)[-1][:, -1])
                terms["traj"] = info_nce(mu, other, cfg.traj_temperature)
            return terms, extra
        G = cfg.group_size
        sigma = mu.new_tensor(cfg.rl_sigma)
        eps = torch.randn(mu.shape[0], G, mu.shape[1], device=mu.device, dtype=mu.dtype)
        z = (mu.unsqueeze(1) + sigma * eps).detach()                    # [B, G, d] actions
        with torch.no_grad():
            rewards = latent_rewards(z, bb.item_embeddings(), targets, cfg.reward)      # [B, G]
            adv = group_advantages(rewards, cfg.eps_adv)
        logp = gaussian_log_density(z, mu.unsqueeze(1), sigma)          # [B, G]
        terms["align"], info = grpo_loss(logp, logp.detach(), adv, cfg.eps_clip)
        extra.update(reward=rewards.mean().item(),
                     informative_groups=(rewards.std(-1) > 0).float().mean().item(), **info)
        return terms, extra

    def compute_loss(self, inputs, targets):
        """``inputs`` ``[B, L]``, ``targets`` ``[B]`` -> (weighted sum of :meth:`loss_terms`, logs incl. ``loss``)."""
        cfg = self.cfg
        weights = {"rec": 1.0, "step": cfg.step_weight, "traj": cfg.traj_weight, "align": cfg.rl_weight}
        terms, extra = self.loss_terms(inputs, targets)
        loss = sum(weights[name] * t for name, t in terms.items())
        logs = {name: t.item() for name, t in terms.items()}
        logs.update(extra)
        logs["loss"] = loss.item()
        return loss, logs

    def full_scores(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs`` ``[B, L]`` -> ``[B, N]`` from the last step's newest position (column 0 = ``-inf``)."""
        return self.backbone.score(self.backbone.encode(inputs)[:, -1])


def build_lares(cfg: LARESConfig, n_items: int, max_len: int) -> LARES:
    return LARES(cfg, n_items, max_len)
