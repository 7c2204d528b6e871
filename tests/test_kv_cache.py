"""Fast-dLLM's block caches: exact where nothing changed, an approximation that runs otherwise,
and refused where they cannot apply."""

from __future__ import annotations

import pytest
import torch

from dream_agent import DiffusionEngine, DreamModel, SamplerConfig, Template, denoise
from dream_agent.kv_cache import BlockCache
from dream_agent.model import DreamDiffusionLM
from dream_agent.template import Anchor, Slot

from .conftest import tiny_config


def lm_of(**overrides) -> DreamDiffusionLM:
    torch.manual_seed(0)
    return DreamDiffusionLM(DreamModel(tiny_config(**overrides)).eval())


def prompt_template(n_prompt=10, n_new=24) -> Template:
    return Template([Anchor(list(range(3, 3 + n_prompt))), Slot("answer", n_new)], None, mask_token_id=63)


@pytest.mark.parametrize("mode", ["prefix", "dual"])
@pytest.mark.parametrize("shift", [True, False])
def test_a_window_over_unchanged_tokens_equals_the_full_pass(mode, shift):
    lm = lm_of(shift_logits=shift)
    x = torch.randint(0, 63, (2, 40))
    lo, hi = 16, 24
    cache = BlockCache(lm, mode)
    full = cache.start(x, lo, hi)
    torch.testing.assert_close(full, lm.logits(x))  # the block's first pass is the full pass
    for _ in range(2):  # and again: the window's own keys were cropped back off
        torch.testing.assert_close(cache.window(x), full[:, lo:hi], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["prefix", "dual"])
def test_cached_denoise_fills_everything_with_fewer_positions_computed(mode):
    lm = lm_of()
    t = prompt_template()
    exact = denoise(lm, t, steps=24, block_length=8, alg="maskgit_plus")
    cached = denoise(lm, t, steps=24, block_length=8, alg="maskgit_plus", cache=mode)
    assert cached.nfe == exact.nfe == 24
    assert not bool((cached.ids == 63).any())
    # the first block's first step is the full pass in both, so its first revealed token agrees
    assert cached.ids[0, :10].tolist() == exact.ids[0, :10].tolist()


def test_engine_and_config_take_the_cache():
    lm = lm_of()
    engine = DiffusionEngine(lm, steps=16, block_length=8, cache="dual")
    assert engine.fill(prompt_template(n_new=16)).nfe == 16
    with pytest.raises(ValueError, match="unknown cache"):
        SamplerConfig(cache="both")


def test_refusals():
    lm = lm_of()
    t = prompt_template()
    with pytest.raises(ValueError, match="needs block decoding"):
        denoise(lm, t, steps=8, cache="prefix")
    with pytest.raises(ValueError, match="hooks"):
        denoise(lm, t, steps=8, block_length=8, cache="prefix", logits_hook=lambda i, x, logits: logits)
    with pytest.raises(ValueError, match="no padding"):
        denoise(lm, [t, prompt_template(n_prompt=4)], steps=8, block_length=8, cache="prefix")

    class Bare:  # a DiffusionLM without a DreamModel behind it
        mask_token_id, pad_token_id, tokenizer, max_length = 63, 0, None, None
        device = torch.device("cpu")

        def logits(self, ids, attention_mask=None):
            return lm.logits(ids)

    with pytest.raises(ValueError, match="needs a DreamModel"):
        denoise(Bare(), t, steps=8, block_length=8, cache="dual")
