"""The masked-diffusion loss against values worked out by hand, and the forward process."""

from __future__ import annotations

import math

import pytest
import torch

from dream_agent.training.losses import DiffusionLoss, forward_mask, masked_diffusion_loss

LN2, LN4 = math.log(2), math.log(4)


def _case():
    """Two rows of four positions, target token 0 everywhere, p(target) chosen per position.

    row 0: anchor at 0; masked 1 (p=1/4, CE ln4) and 3 (p=1/2, CE ln2); 3 maskable; t=1/2
    row 1: positions 2-3 are padding; masked 0 (p=1/2, CE ln2); 2 maskable; t=1/4
    """
    p_target = torch.tensor([[0.5, 0.25, 1.0, 0.5], [0.5, 0.5, 0.5, 0.5]])
    probs = torch.stack([p_target, 1 - p_target], dim=-1).clamp(min=1e-12)
    logits = probs.log()  # (2, 4, 2)
    targets = torch.zeros(2, 4, dtype=torch.long)
    masked = torch.tensor([[0, 1, 0, 1], [1, 0, 0, 0]], dtype=torch.bool)
    maskable = torch.tensor([[0, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    real = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    t = torch.tensor([0.5, 0.25])
    return logits, targets, masked, maskable, real, t


def _loss(**config) -> float:
    return float(masked_diffusion_loss(*_case(), DiffusionLoss(**config)).loss)


def test_inverse_t_weight_by_hand():
    row0 = (1 / 0.5) * (LN4 + LN2) / 3
    row1 = (1 / 0.25) * LN2 / 2
    assert _loss(weight="inverse_t") == pytest.approx((row0 + row1) / 2, rel=1e-5)


def test_linear_weight_by_hand():
    row0 = (1 - 0.5) * (LN4 + LN2) / 3
    row1 = (1 - 0.25) * LN2 / 2
    assert _loss(weight="linear") == pytest.approx((row0 + row1) / 2, rel=1e-5)


def test_none_weight_normalised_by_masked_tokens():
    assert _loss(weight="none", normalize="masked") == pytest.approx((LN4 + LN2 + LN2) / 3, rel=1e-5)


def test_cart_weight_by_hand():
    # w(n) = sum over clean i of 0.5 p (1-p)^(|n-i|-1), p = 1/2.
    # row 0: clean {0, 2}. n=1: 0.25 + 0.25 = 0.5; n=3: 0.25 (i=2) + 0.25*0.25 (i=0) = 0.3125
    # row 1: clean {1} (2, 3 are padding). n=0: 0.25
    row0 = (0.5 * LN4 + 0.3125 * LN2) / 3
    row1 = 0.25 * LN2 / 2
    assert _loss(weight="cart", cart_p=0.5) == pytest.approx((row0 + row1) / 2, rel=1e-5)


def test_token_reweighting_by_hand():
    def f(loss):  # alpha=2, gamma=2
        return 2 * (1 - math.exp(-loss)) ** 2 * loss

    expected = (f(LN4) + 2 * f(LN2)) / 3
    got = _loss(weight="none", normalize="masked", token_reweighting=True, token_alpha=2.0, token_gamma=2.0)
    assert got == pytest.approx(expected, rel=1e-5)


def test_reported_ce_is_unweighted_mean_over_masked():
    out = masked_diffusion_loss(*_case(), DiffusionLoss(weight="cart"))
    assert float(out.ce) == pytest.approx((LN4 + 2 * LN2) / 3, rel=1e-5)
    assert out.n_masked == 3


@pytest.mark.parametrize("bad", [dict(weight="cosine"), dict(normalize="tokens"), dict(eps=0.0), dict(cart_p=1.5)])
def test_bad_settings_are_rejected(bad):
    with pytest.raises(ValueError):
        DiffusionLoss(**bad)


def test_forward_mask_respects_maskable_and_never_leaves_a_row_clean():
    g = torch.Generator().manual_seed(0)
    maskable = torch.zeros(64, 50, dtype=torch.bool)
    maskable[:, 10:40] = True
    maskable[-1] = False  # a row with nothing to mask stays clean
    t = torch.full((64,), 1e-3)  # so small that the draw alone would mask nothing
    masked = forward_mask(maskable, t, generator=g)
    assert not (masked & ~maskable).any()
    assert (masked[:-1].sum(1) >= 1).all() and not masked[-1].any()


def test_forward_mask_rate_follows_t():
    g = torch.Generator().manual_seed(1)
    maskable = torch.ones(4, 20_000, dtype=torch.bool)
    t = torch.tensor([0.1, 0.4, 0.7, 0.95])
    rates = forward_mask(maskable, t, generator=g).float().mean(1)
    assert torch.allclose(rates, t, atol=0.02)
