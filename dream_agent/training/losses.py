"""The masked-diffusion training loss: forward process, per-token weights, normalisation.

    loss = DiffusionLoss(weight="inverse_t")
    out = diffusion_loss(model, batch, loss)   # LossOutput(loss, ce, n_masked, t)
    out.loss.backward()

Forward process (MDLM, Sahoo et al. 2024; LLaDA, Nie et al. 2025): per sequence draw
t ~ U(eps, 1); mask each *maskable* position independently with probability t. Anchors
(the prompt, a puzzle's givens) are never maskable. Every sequence with a maskable
position gets at least one mask, so no row contributes an empty, zero-gradient term.

Loss: cross-entropy on masked positions only, times a per-token weight from
`LOSS_WEIGHTS` (below), optionally token-reweighted, then normalised:

    normalize="maskable" (default, LLaDA's SFT loss): per sequence, sum over masked tokens
        divided by the sequence's number of maskable tokens; mean over the batch. With
        weight "inverse_t" this is an unbiased estimate of the per-token ELBO.
    normalize="masked" ("Beyond Autoregression"'s code): sum over every masked token of the
        batch divided by the number of masked tokens in the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dream_agent.model.diffusion_lm import align_logits

IGNORE_INDEX = -100  # the label of a position that is never scored (anchors, padding)

WeightFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]


# ---- per-token weights: (t (B,), masked (B, N), clean (B, N), p) -> (B, N) ----------------


def weight_inverse_t(t: torch.Tensor, masked: torch.Tensor, clean: torch.Tensor, p: float) -> torch.Tensor:
    """1/t: the continuous-time ELBO weight of the linear schedule alpha_t = 1 - t (MDLM, LLaDA)."""
    return (1.0 / t)[:, None].expand(masked.shape).to(torch.float32)


def weight_linear(t: torch.Tensor, masked: torch.Tensor, clean: torch.Tensor, p: float) -> torch.Tensor:
    """1 - t: the "linear" time reweighting of RDM (Zheng et al. 2023), lambda_t = 1 - (t-1)/T,
    in continuous time; "Beyond Autoregression" (Ye et al., ICLR 2025) used it for Sudoku and
    Countdown. Lightly masked sequences (small t, much context) weigh most."""
    return (1.0 - t)[:, None].expand(masked.shape).to(torch.float32)


def weight_cart(t: torch.Tensor, masked: torch.Tensor, clean: torch.Tensor, p: float) -> torch.Tensor:
    """Dream's context-adaptive reweighting (CART): w(n) = sum over clean i of 0.5 * p * (1-p)^(|n-i|-1).

    A masked token weighs more the more clean tokens sit close to it (a geometric kernel
    in the distance). "Clean" means unmasked and real: anchors count, padding does not.
    Replaces the 1/t factor (Dream tech report, Ye et al. 2025).
    """
    n = masked.shape[1]
    pos = torch.arange(n, device=masked.device)
    dist = (pos[:, None] - pos[None, :]).abs()  # (N, N)
    kernel = 0.5 * p * (1.0 - p) ** (dist - 1).clamp(min=0).to(torch.float32)  # (N, N)
    kernel.fill_diagonal_(0.0)  # a position is never its own context
    return clean.to(torch.float32) @ kernel  # (B, N); the kernel is symmetric


def weight_none(t: torch.Tensor, masked: torch.Tensor, clean: torch.Tensor, p: float) -> torch.Tensor:
    """1: plain masked-token cross-entropy (MaskGIT-style)."""
    return torch.ones(masked.shape, dtype=torch.float32, device=masked.device)


LOSS_WEIGHTS: Mapping[str, WeightFn] = {
    "inverse_t": weight_inverse_t,
    "linear": weight_linear,
    "cart": weight_cart,
    "none": weight_none,
}
NORMALIZE = ("maskable", "masked")


def token_reweight(ce: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    """alpha * (1 - exp(-l))^gamma * l: hard tokens (high loss l) weigh more; a focal-loss
    shape, the "multi-granularity" token weight of Ye et al. (ICLR 2025)."""
    return alpha * (1.0 - torch.exp(-ce)) ** gamma * ce


# ---- configuration and result -------------------------------------------------------------


@dataclass(frozen=True)
class DiffusionLoss:
    """Settings of the masked-diffusion loss; every check on them happens here."""

    weight: str = "inverse_t"  # the ELBO weight; see LOSS_WEIGHTS
    eps: float = 1e-3  # t ~ U(eps, 1): keeps 1/t finite (LLaDA's value)
    cart_p: float = 0.1  # CART's geometric kernel: context ~1/p positions away still counts
    token_reweighting: bool = False  # multiply the CE by alpha * (1 - exp(-l))^gamma
    token_alpha: float = 1.0
    token_gamma: float = 1.0
    normalize: str = "maskable"  # see the module docstring

    def __post_init__(self):
        if self.weight not in LOSS_WEIGHTS:
            raise ValueError(f"unknown loss weight {self.weight!r}; choose one of {', '.join(LOSS_WEIGHTS)}")
        if self.normalize not in NORMALIZE:
            raise ValueError(f"unknown normalize {self.normalize!r}; choose one of {', '.join(NORMALIZE)}")
        if not 0 < self.eps < 1:
            raise ValueError(f"eps must be in (0, 1), got {self.eps}")
        if not 0 < self.cart_p < 1:
            raise ValueError(f"cart_p must be in (0, 1), got {self.cart_p}")
        if self.token_alpha <= 0 or self.token_gamma < 0:
            raise ValueError("token_alpha must be > 0 and token_gamma >= 0")


@dataclass
class LossOutput:
    loss: torch.Tensor  # scalar to backpropagate
    ce: torch.Tensor  # scalar, detached: mean unweighted CE over masked tokens (comparable across weights)
    n_masked: int  # masked tokens in the batch
    t: torch.Tensor  # (B,) the mask rates drawn
    masked: torch.Tensor  # (B, N) where the forward process put MASK


# ---- the forward process ------------------------------------------------------------------


def sample_t(batch_size: int, eps: float, *, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """t ~ U(eps, 1), one per sequence."""
    u = torch.rand(batch_size, device=device, generator=generator)  # (B,)
    return eps + (1.0 - eps) * u


def forward_mask(maskable: torch.Tensor, t: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mask each maskable position with probability t (per row); at least one per row that has any."""
    u = torch.rand(maskable.shape, device=maskable.device, generator=generator)  # (B, N)
    masked = (u < t[:, None]) & maskable
    empty = ~masked.any(1) & maskable.any(1)  # (B,) rows the draw left unmasked
    if bool(empty.any()):
        # Departure from LLaDA (which may draw an all-clean row): force one random maskable position.
        score = torch.where(maskable, u, torch.full_like(u, 2.0))  # the lowest draw among maskable ones
        pick = F.one_hot(score.argmin(1), maskable.shape[1]).bool()  # (B, N)
        masked = masked | (pick & empty[:, None])
    return masked


# ---- the loss -----------------------------------------------------------------------------


def masked_diffusion_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    masked: torch.Tensor,
    maskable: torch.Tensor,
    real: torch.Tensor,
    t: torch.Tensor,
    config: DiffusionLoss,
) -> LossOutput:
    """The loss from aligned logits (B, N, V) (`logits[:, i]` predicts token i) and clean targets (B, N)."""
    ce = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")  # (B, N)
    ce = ce * masked  # only masked positions are scored
    n_masked = int(masked.sum())
    mean_ce = (ce.sum() / max(n_masked, 1)).detach()

    tok = token_reweight(ce, config.token_alpha, config.token_gamma) if config.token_reweighting else ce
    clean = real & ~masked
    w = LOSS_WEIGHTS[config.weight](t, masked, clean, config.cart_p)  # (B, N)
    per_token = w * tok * masked  # (B, N)
    if config.normalize == "maskable":
        per_seq = per_token.sum(1) / maskable.sum(1).clamp(min=1)  # (B,)
        loss = per_seq.mean()
    else:
        loss = per_token.sum() / max(n_masked, 1)
    return LossOutput(loss=loss, ce=mean_ce, n_masked=n_masked, t=t, masked=masked)


def diffusion_loss(
    model,
    batch: Mapping[str, torch.Tensor],
    config: DiffusionLoss | None = None,
    *,
    mask_token_id: int | None = None,
    shift_logits: bool | None = None,
    generator: torch.Generator | None = None,
) -> LossOutput:
    """Noise a batch from `PlannerCollator` (input_ids, maskable, attention_mask), run `model`, score.

    `model` is a `DreamModel` (or a peft/DDP wrapper of one); `mask_token_id` and
    `shift_logits` default to its config (pass them when a wrapper hides the config).
    """
    config = config or DiffusionLoss()
    cfg = getattr(getattr(model, "module", model), "config", None)
    if mask_token_id is None:
        mask_token_id = int(cfg.mask_token_id)
    if shift_logits is None:
        shift_logits = bool(getattr(cfg, "shift_logits", True))

    x0 = batch["input_ids"]  # (B, N) clean
    maskable = batch["maskable"].bool()  # (B, N)
    attention_mask = batch.get("attention_mask")
    real = attention_mask.bool() if attention_mask is not None else torch.ones_like(maskable)

    t = sample_t(x0.shape[0], config.eps, device=x0.device, generator=generator)  # (B,)
    masked = forward_mask(maskable, t, generator=generator)  # (B, N)
    xt = x0.masked_fill(masked, mask_token_id)
    logits = model(input_ids=xt, attention_mask=attention_mask).logits  # (B, N, V) raw
    logits = align_logits(logits, shift_logits)
    return masked_diffusion_loss(logits, x0, masked, maskable, real, t, config)
