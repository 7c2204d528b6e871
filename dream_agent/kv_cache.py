"""Fast-dLLM's block caches (Wu et al. 2025) for block decoding over a `DreamModel`.

With `block_length`, only one block's masks change while it is denoised. At the block's first
step a full pass computes every position's keys and values; the later steps of that block run
only a window of positions and attend to the cached keys and values of the rest:
  - "prefix": the positions before the block are cached; the window is the block and everything
    after it;
  - "dual": the positions after the block are cached too; the window is the block alone.
Dream attends in both directions, so a cached position's keys would change as the block fills:
the cache is an approximation, refreshed at each block. BENCHMARKS.md ("Fast-dLLM caches")
measures how often a cached fill agrees with the uncached one.

The cache is a transformers `DynamicCache`: the window's keys and values are appended at each
step (attention is over a set of keys, and RoPE was applied before caching, so their order in
the cache does not matter) and cropped back off after it.
"""

from __future__ import annotations

import torch

from .model.diffusion_lm import align_logits

CACHE_MODES = ("prefix", "dual")


def check_cache(model, mode: str | None, *, block_length: int | None, attention_mask, hooks: bool) -> None:
    """Refuse a cache where it cannot apply, in one line."""
    if mode is None:
        return
    if mode not in CACHE_MODES:
        raise ValueError(f"unknown cache {mode!r}; use None, 'prefix' or 'dual'")
    if block_length is None:
        raise ValueError("a cache needs block decoding: set block_length")
    if attention_mask is not None:
        raise ValueError("a cache needs rows of one length (no padding)")
    if hooks:
        raise ValueError("a cache computes logits for the block only: it cannot run with logits or tokens hooks")
    if not hasattr(getattr(model, "model", None), "config") or not hasattr(model.model, "lm_head"):
        raise ValueError("a cache needs a DreamModel behind the DiffusionLM (load_model's transformers runtime)")


class BlockCache:
    """One denoise call's cache. `start(x, lo, hi)` runs the full pass at a block's first step and
    returns its aligned logits (B, N, V); `window(x)` returns the aligned logits of the block
    positions [lo, hi) only (B, hi - lo, V), from the cached rest."""

    def __init__(self, lm, mode: str):
        self.lm, self.mode = lm, mode
        self.shift = 1 if lm.model.config.shift_logits else 0
        self._cache = None

    def start(self, x: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        from transformers import DynamicCache

        n = x.shape[1]
        # aligned logit i comes from hidden state i - shift: the block's come from [lo - s, hi - s)
        self.a, self.b = lo - self.shift, (n if self.mode == "prefix" else hi - self.shift)
        self.lo, self.hi = lo, hi
        if self.a < 0:  # a block at position 0 of a shifted model reads hidden state 0 twice: no cache
            self._cache = None
            return self.lm.logits(x)
        cache = DynamicCache()
        with torch.no_grad():
            raw = self.lm.model(x, position_ids=torch.arange(n, device=x.device)[None, :], cache=cache).logits
        for layer in cache.layers:  # keep the cached positions: [0, a) and, for dual, [b, n)
            layer.keys = torch.cat([layer.keys[..., : self.a, :], layer.keys[..., self.b:, :]], dim=-2)
            layer.values = torch.cat([layer.values[..., : self.a, :], layer.values[..., self.b:, :]], dim=-2)
        self._cache = cache
        return align_logits(raw, bool(self.shift))

    def window(self, x: torch.Tensor) -> torch.Tensor:
        if self._cache is None:
            return self.lm.logits(x)[:, self.lo:self.hi]
        a, b = self.a, self.b
        with torch.no_grad():
            raw = self.lm.model(x[:, a:b], position_ids=torch.arange(a, b, device=x.device)[None, :],
                                cache=self._cache).logits  # (B, b - a, V)
        self._cache.crop(-(b - a))  # the window's own keys and values off again
        return raw[:, : self.hi - self.lo]
