"""The denoising loop: fill every masked position of a batch of templates.

This is Dream's `diffusion_generate` (`_sample` in Dream's generation_utils.py), made a
pure function over the `DiffusionLM` contract, with these departures (each marked below):
  - the number of positions revealed each step is computed per row (Dream averages it over
    the batch, which lets a row with few masks overwrite its anchors with MASK);
  - hard constraints: a template's allowed-token sets, and the mask token itself, get the
    lowest logit before sampling, so they are never chosen;
  - `threshold` (Fast-dLLM's parallel decoding): also reveal every masked position whose
    chosen token has probability above it; at least one a step; `steps` stays the cap;
  - `entropy_bound` (EB-sampler, Ben-Hamu et al. 2025): also reveal the most confident masked
    positions while their summed entropy, less the largest, stays within the bound; at least one
    a step; `steps` stays the cap;
  - `block_length` (LLaDA's semi-autoregressive blocks): masks are filled block by block,
    left to right, each block with its share of the steps;
  - `cache` (Fast-dLLM's prefix and dual caches, kv_cache.py) with blocks: a block's later passes
    run a window of positions against cached keys and values, an approximation;
  - the loop stops once nothing is masked (Dream keeps calling the model; same tokens);
  - random draws take an optional `torch.Generator`, so a run can be repeated;
  - a batch is right-padded by default; `padding_side="left"` lays it out as Dream's batched
    demo does (the same tokens in float32; in bf16 rounding follows the layout). Hooks see the
    padded batch; the result is always right-padded.
Dream's defaults are kept: top_k 50 when none is given, probabilities in the logits' dtype
(`float32_softmax=True` departs). docs/DREAM.md tabulates every difference.

The loop is a job (`denoise_job`, see `dream_agent.batching`): it yields each step's forward pass,
so that many denoising calls can share passes; `denoise` runs one alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .batching import Forward, Job, run_job
from .decoding import ALGS, CONFIDENCE, DREAM_TOP_K, choose, collate, constrain, token_probs  # noqa: F401 (re-exported)
from .kv_cache import BlockCache, check_cache
from .template import Template


LogitsHook = Callable[[int | None, torch.Tensor, torch.Tensor | None], torch.Tensor]
TokensHook = Callable[[int | None, torch.Tensor, torch.Tensor | None], torch.Tensor]


# ---- results ----------------------------------------------------------------------------


@dataclass
class DenoiseResult:
    ids: torch.Tensor  # (B, N) filled token ids, padding right
    nfe: int  # forward passes of the model
    confidence: torch.Tensor  # (B, N) probability of each token when it was revealed; 1 for fixed
    attention_mask: torch.Tensor  # (B, N) 1 for real positions
    templates: list[Template]
    history: list[torch.Tensor] | None = None  # (B, N) after every step, when asked

    def read(self, row: int = 0) -> dict:
        return self.templates[row].read(self.ids[row, : len(self.templates[row])])

    def row_ids(self, row: int = 0) -> torch.Tensor:
        return self.ids[row, : len(self.templates[row])]


# ---- the loop -----------------------------------------------------------------------------


def denoise(model, templates: Template | Sequence[Template], **settings) -> DenoiseResult:
    """Fill the masked positions of `templates` with `model` over at most `steps` forward passes.

    The keywords are `denoise_job`'s; the job runs here alone, one forward pass a step."""
    return run_job(model, denoise_job(model, templates, **settings))


@torch.no_grad()
def denoise_job(
    model,
    templates: Template | Sequence[Template],
    *,
    steps: int,
    alg: str = "entropy",
    temperature: float = 0.0,
    top_p: float | None = None,
    top_k: int | None = DREAM_TOP_K,
    float32_softmax: bool = False,
    alg_temp: float | None = None,
    eps: float = 1e-3,
    threshold: float | None = None,
    entropy_bound: float | None = None,
    block_length: int | None = None,
    logits_hook: LogitsHook | None = None,
    tokens_hook: TokensHook | None = None,
    generator: torch.Generator | None = None,
    return_history: bool = False,
    padding_side: str = "right",
    cache: str | None = None,
) -> Job[DenoiseResult]:
    """The denoising loop as a job (`dream_agent.batching`): each step yields its forward pass over
    the batch and receives the logits, so that other jobs' rows may share the pass.

    `cache` ("prefix" or "dual", with `block_length`): Fast-dLLM's block caches (kv_cache.py); each
    block's first pass is full, its later passes run a window against cached keys and values.

    Settings are checked when the job starts (its first `next`)."""
    templates = [templates] if isinstance(templates, Template) else list(templates)
    if not templates:
        raise ValueError("denoise needs at least one template")
    if alg not in ALGS:
        raise ValueError(f"unknown alg {alg!r}; choose one of {', '.join(ALGS)}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if threshold is not None and not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if entropy_bound is not None and not entropy_bound > 0:
        raise ValueError(f"entropy_bound must be above 0, got {entropy_bound}")
    if entropy_bound is not None and alg == "origin":
        raise ValueError("entropy_bound ranks positions by confidence: use it with maskgit_plus, topk_margin or "
                         "entropy, not origin")
    if block_length is not None and block_length < 1:
        raise ValueError(f"block_length must be at least 1, got {block_length}")
    max_len = getattr(model, "max_length", None)
    if max_len is not None and max(len(t) for t in templates) > max_len:
        raise ValueError(f"a template of {max(len(t) for t in templates)} tokens exceeds the model's context of {max_len}")

    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
    x, real, allow_row, table = collate(model, templates, padding_side)
    attention_mask = None if bool(real.all()) else real.long()
    check_cache(model, cache, block_length=block_length, attention_mask=attention_mask,
                hooks=logits_hook is not None or tokens_hook is not None)
    block_cache = BlockCache(model, cache) if cache is not None else None
    mask_id = model.mask_token_id
    confidence = torch.where(x == mask_id, torch.zeros_like(x, dtype=torch.float), torch.ones_like(x, dtype=torch.float))
    history = [] if return_history else None
    nfe = 0

    if tokens_hook is not None:
        x = tokens_hook(None, x, None)

    # Blocks (LLaDA): fill positions [start, start + L), then the next block; one block = Dream.
    masked_cols = ((x == mask_id) & real).any(0).nonzero().flatten()
    if masked_cols.numel() == 0:
        return _result(x, 0, confidence, real, templates, history, padding_side)
    first, last = int(masked_cols[0]), int(masked_cols[-1]) + 1
    length = block_length or (last - first)
    spans = [(s, min(s + length, last)) for s in range(first, last, length)]
    per_block = [steps // len(spans) + (1 if j < steps % len(spans) else 0) for j in range(len(spans))]

    positions = torch.arange(x.shape[1], device=x.device)
    for (lo, hi), block_steps in zip(spans, per_block):
        in_block = (positions >= lo) & (positions < hi)  # (N,)
        block_steps = max(block_steps, 1)
        timesteps = torch.linspace(1, eps, block_steps + 1, device=x.device)
        for i in range(block_steps):
            mask_index = (x == mask_id) & real & in_block  # (B, N)
            if not bool(mask_index.any()):
                break  # departure: nothing left to fill in this block, skip the remaining passes
            at = mask_index  # where `logits` holds the masked positions: all of them, or the block's window
            if block_cache is None:
                logits = yield Forward(x, attention_mask)  # (B, N, V), aligned
            elif i == 0:  # a block's first pass is full and fills the cache
                logits = yield Forward(x, compute=lambda x=x, lo=lo, hi=hi: block_cache.start(x, lo, hi))
            else:
                logits = yield Forward(x, compute=lambda x=x: block_cache.window(x))  # (B, hi - lo, V)
                at = mask_index[:, lo:hi]
            nfe += 1
            if logits_hook is not None:
                logits = logits_hook(i, x, logits)
            mask_logits = constrain(logits[at], allow_row[mask_index], table, mask_id)  # (M, V)
            t, s = timesteps[i], timesteps[i + 1]
            last_step = i == block_steps - 1
            if alg == "origin":
                x = _step_origin(x, mask_index, mask_logits, confidence, t, s, last_step,
                                 temperature, top_p, top_k, float32_softmax, generator)
            else:
                x = _step_ranked(x, mask_index, mask_logits, confidence, t, s, last_step, alg,
                                 temperature, top_p, top_k, float32_softmax, alg_temp, threshold, generator,
                                 entropy_bound)
            if tokens_hook is not None:
                x = tokens_hook(i, x, logits)
            if history is not None:
                history.append(x.clone())
    return _result(x, nfe, confidence, real, templates, history, padding_side)


def _result(x, nfe, confidence, real, templates, history, padding_side) -> DenoiseResult:
    """The result, always right-padded (row b's template at ids[b, :len]), whichever side was padded."""
    if padding_side == "left":
        shifts = [len(t) - x.shape[1] for t in templates]  # roll each row left by its padding

        def right(v: torch.Tensor) -> torch.Tensor:
            return torch.stack([torch.roll(row, s) for row, s in zip(v, shifts)])

        x, confidence, real = right(x), right(confidence), right(real)
        history = None if history is None else [right(h) for h in history]
    return DenoiseResult(x, nfe, confidence, real.long(), templates, history)


def _step_origin(x, mask_index, mask_logits, confidence, t, s, last_step, temperature, top_p, top_k, float32_softmax,
                 generator):
    """Dream's `origin`: each masked position is revealed with probability 1 - s/t."""
    p_transfer = 1.0 if last_step else float(1 - s / t)
    draws = torch.rand(mask_logits.shape[0], device=x.device, generator=generator)
    transfer = draws < p_transfer  # (M,)
    x0 = x[mask_index].clone()  # (M,) still MASK unless transferred
    if bool(transfer.any()):
        probs = token_probs(mask_logits[transfer], temperature, top_p, top_k, float32_softmax)
        chosen_p, tokens = choose(probs, temperature, generator)
        x0[transfer] = tokens
        conf = confidence[mask_index]
        conf[transfer] = chosen_p.to(conf.dtype)
        confidence[mask_index] = conf
    x = x.clone()
    x[mask_index] = x0
    return x


def entropy_bounded_count(full_conf: torch.Tensor, entropy: torch.Tensor, masked: torch.Tensor,
                          bound: float) -> torch.Tensor:
    """EB-sampler's reveal count (Ben-Hamu et al. 2025, "Accelerated Sampling from Masked Diffusion
    Models via Entropy Bounded Unmasking"): per row, the largest k such that the k most confident
    masked positions U satisfy sum_{U} H - max_{U} H <= bound. The left side bounds the error of
    revealing U from one forward pass instead of one at a time; it is 0 for one position, so k >= 1
    wherever a row has a masked position.

    full_conf (B, N): confidence (higher is revealed first); entropy (B, N): of each position's token
    distribution, in nats; masked (B, N): the positions to count. Returns (B,) counts."""
    full_conf = full_conf.masked_fill(~masked, -math.inf)
    order = torch.argsort(full_conf, dim=1, descending=True, stable=True)  # (B, N) most confident first
    h = torch.gather(entropy.float().masked_fill(~masked, 0.0), 1, order)  # (B, N) entropies in that order
    excess = torch.cumsum(h, dim=1) - torch.cummax(h, dim=1).values  # (B, N) sum - max of each prefix
    return ((excess <= bound) & torch.gather(masked, 1, order)).sum(1)  # excess only grows: a prefix


def _step_ranked(x, mask_index, mask_logits, confidence, t, s, last_step, alg, temperature, top_p, top_k,
                 float32_softmax, alg_temp, threshold, generator, entropy_bound=None):
    """maskgit_plus / topk_margin / entropy: reveal the k most confident masked positions."""
    probs = token_probs(mask_logits, temperature, top_p, top_k, float32_softmax)  # (M, V)
    chosen_p, x0 = choose(probs, temperature, generator)
    conf = CONFIDENCE[alg](probs, chosen_p)  # (M,)

    n_masked = mask_index.sum(1)  # (B,) departure: per row, not averaged over the batch
    if last_step:
        k = n_masked
    else:
        k = (n_masked.to(torch.float32) * (1 - s / t)).floor().long()
    full_conf = torch.full(x.shape, -math.inf, device=x.device, dtype=conf.dtype)  # (B, N)
    full_conf[mask_index] = conf
    if entropy_bound is not None:
        # EB-sampler: at least the schedule's k, more while the bound allows (with alg_temp the count
        # comes from the confidence order and the positions are still drawn).
        entropy = torch.zeros(x.shape, device=x.device, dtype=torch.float)  # (B, N)
        entropy[mask_index] = torch.special.entr(probs.float()).sum(-1)
        k = torch.maximum(k, entropy_bounded_count(full_conf, entropy, mask_index, entropy_bound))
    above = None
    if threshold is not None:
        above = torch.zeros(x.shape, device=x.device, dtype=torch.bool)  # (B, N)
        above[mask_index] = chosen_p > threshold
        k = torch.maximum(k, (n_masked > 0).long())  # at least one a step

    candidates = torch.zeros(x.shape, dtype=torch.long, device=x.device)
    candidates[mask_index] = x0
    chosen_conf = torch.zeros(x.shape, device=x.device, dtype=torch.float)
    chosen_conf[mask_index] = chosen_p.float()
    x = x.clone()
    for b in range(x.shape[0]):
        kb = int(k[b])
        row_conf = full_conf[b]
        sure = None
        if above is not None and bool(above[b].any()):
            # Fast-dLLM: every position above the threshold, topped up to the schedule's k by confidence.
            sure = above[b].nonzero().flatten()
            kb = max(kb - sure.numel(), 0)
            row_conf = row_conf.masked_fill(above[b], -math.inf)
        if kb == 0:
            idx = sure if sure is not None else None
        elif alg_temp is None or alg_temp == 0:
            idx = torch.topk(row_conf, kb).indices
        else:
            weights = F.softmax(row_conf / alg_temp, dim=-1)
            idx = torch.multinomial(weights, kb, generator=generator)
        if idx is None:
            continue
        if sure is not None and kb > 0:
            idx = torch.cat([sure, idx])
        x[b, idx] = candidates[b, idx]
        confidence[b, idx] = chosen_conf[b, idx]
    return x
