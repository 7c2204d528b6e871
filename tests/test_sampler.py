import itertools

import pytest
import torch
import torch.nn.functional as F

from dream_agent import Anchor, Slot, Template, denoise
from dream_agent.sampler import ALGS


# ---- a plain, slow, one-row re-implementation of Dream's `_sample`, from DESIGN.md ---------
# Written independently of dream_agent.sampler: Python lists, one position at a time.
# The one departure it shares with `denoise`: MASK itself is never a fill.

def reference_denoise(lm, ids, steps, alg, eps=1e-3, generator=None):
    x = list(ids)
    mask = lm.mask_token_id
    timesteps = torch.linspace(1, eps, steps + 1)
    for i in range(steps):
        masked = [p for p, tok in enumerate(x) if tok == mask]
        if not masked:
            break
        logits = lm.logits(torch.tensor([x]))[0]  # aligned: row p predicts position p
        t, s = timesteps[i], timesteps[i + 1]
        choice, conf = {}, {}
        for p in masked:
            row = logits[p].clone()
            row[mask] = torch.finfo(row.dtype).min
            probs = F.softmax(row.float(), dim=-1)
            top = sorted(probs.tolist(), reverse=True)
            choice[p] = int(torch.argmax(probs))
            conf[p] = {"maskgit_plus": top[0], "topk_margin": top[0] - top[1],
                       "entropy": float(torch.sum(probs * torch.log(probs + 1e-10)))}.get(alg)
        if alg == "origin":
            p_transfer = 1.0 if i == steps - 1 else float(1 - s / t)
            draws = torch.rand(len(masked), generator=generator)
            for p, d in zip(masked, draws.tolist()):
                if d < p_transfer:
                    x[p] = choice[p]
            continue
        n = len(masked)
        k = n if i == steps - 1 else int(torch.tensor(float(n)) * (1 - s / t))
        full = torch.full((len(x),), -float("inf"))
        for p in masked:
            full[p] = conf[p]
        for p in torch.topk(full, k).indices.tolist() if k else []:
            x[p] = choice[p]
    return x


def example_template():
    return Template([Anchor([1, 2, 3]), Slot("a", 5), Anchor([4, 5]), Slot("b", 6), Anchor([6])])


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("steps", [1, 4, 11])
def test_matches_reference_loop(tiny_lm, alg, steps):
    t = example_template()
    # top_k=None: the reference loop is Dream's `_sample` called with top_k=None (tests/test_dream_fidelity.py
    # checks the omitted-top_k default against Dream's own outputs)
    ours = denoise(tiny_lm, t, steps=steps, alg=alg, top_k=None, generator=torch.Generator().manual_seed(7))
    ids = t.input_ids.clone()
    ids[t.masked] = tiny_lm.mask_token_id
    ref = reference_denoise(tiny_lm, ids.tolist(), steps, alg, generator=torch.Generator().manual_seed(7))
    assert ours.ids[0].tolist() == ref


@pytest.mark.parametrize("alg", ALGS)
def test_fills_every_mask_and_keeps_anchors(tiny_lm, alg):
    t = example_template()
    r = denoise(tiny_lm, t, steps=4, alg=alg)
    assert not (r.ids == tiny_lm.mask_token_id).any()
    assert torch.equal(r.ids[0][t.anchor_mask], t.input_ids[t.anchor_mask])
    assert set(r.read(0)) == {"a", "b"} and len(r.read(0)["a"]) == 5
    assert r.nfe <= 4


@pytest.mark.parametrize(
    "alg,threshold,block_length,batch",
    list(itertools.product(ALGS, [None, 0.02], [None, 3], [1, 3])),
)
def test_every_mode_combination(tiny_lm, alg, threshold, block_length, batch):
    """alg x threshold x blocks x batch: anchors kept, allowed sets respected, nothing left masked."""
    templates = [
        example_template(),
        Template([Anchor([9]), Slot("x", 2, allowed=[10, 11]), Anchor([12, 13, 14, 15])]),
        Template([Slot("y", 7, allowed=[20, 21, 22]), Anchor([5])]),
    ][:batch]
    r = denoise(tiny_lm, templates, steps=6, alg=alg, threshold=threshold, block_length=block_length,
                generator=torch.Generator().manual_seed(0), return_history=True)
    for b, t in enumerate(templates):
        row = r.ids[b, : len(t)]
        assert torch.equal(row[t.anchor_mask], t.input_ids[t.anchor_mask])
        assert not (row == tiny_lm.mask_token_id).any()
        for p, allowed in enumerate(t.allowed):
            if allowed is not None:
                assert int(row[p]) in allowed
        assert (r.ids[b, len(t):] == tiny_lm.pad_token_id).all()
    assert len(r.history) == r.nfe and r.nfe <= 6


def test_batch_rows_with_different_mask_counts_keep_anchors(tiny_lm):
    """Dream averages k over the batch and can overwrite anchors; per-row k must not."""
    few = Template([Anchor(list(range(3, 20))), Slot("a", 1), Anchor([4])])
    many = Template([Anchor([3]), Slot("b", 16), Anchor([5])])
    for alg in ALGS:
        r = denoise(tiny_lm, [few, many], steps=3, alg=alg)
        for b, t in enumerate([few, many]):
            row = r.ids[b, : len(t)]
            assert torch.equal(row[t.anchor_mask], t.input_ids[t.anchor_mask])
            assert not (row == tiny_lm.mask_token_id).any()


def test_threshold_reveals_more_per_step(tiny_lm):
    t = Template([Anchor([1]), Slot("a", 24), Anchor([2])])
    fixed = denoise(tiny_lm, t, steps=24, alg="maskgit_plus")
    fast = denoise(tiny_lm, t, steps=24, alg="maskgit_plus", threshold=1e-6)  # everything is above it
    assert fixed.nfe == 24 and fast.nfe == 1


def test_block_length_fills_left_to_right(tiny_lm):
    t = Template([Anchor([1]), Slot("a", 8), Anchor([2])])
    r = denoise(tiny_lm, t, steps=4, alg="entropy", block_length=4, return_history=True)
    first_block = list(range(1, 5))
    after_two = r.history[1][0]
    assert not (after_two[first_block] == tiny_lm.mask_token_id).any()
    assert (after_two[5:9] == tiny_lm.mask_token_id).all()


def test_hooks_have_dreams_signatures(tiny_lm):
    calls = []

    def logits_hook(step, x, logits):
        calls.append(("logits", step))
        logits[..., 30] = 100.0  # force token 30 everywhere
        return logits

    def tokens_hook(step, x, logits):
        calls.append(("tokens", step))
        return x

    t = example_template()
    r = denoise(tiny_lm, t, steps=3, logits_hook=logits_hook, tokens_hook=tokens_hook)
    assert calls[0] == ("tokens", None) and ("logits", 0) in calls and ("tokens", 2) in calls
    assert (r.ids[0][t.masked] == 30).all()


def test_template_with_prefilled_positions_is_refined_only_where_masked(tiny_lm):
    t = example_template()
    first = denoise(tiny_lm, t, steps=4)
    again = t.with_values(first.ids[0], remask=t.slots["b"])
    assert int(again.masked.sum()) == 6
    second = denoise(tiny_lm, again, steps=2)
    assert torch.equal(second.ids[0][t.slots["a"]], first.ids[0][t.slots["a"]])


def test_bad_arguments(tiny_lm):
    t = example_template()
    with pytest.raises(ValueError, match="unknown alg"):
        denoise(tiny_lm, t, steps=2, alg="nope")
    with pytest.raises(ValueError, match="steps"):
        denoise(tiny_lm, t, steps=0)
    with pytest.raises(ValueError, match="threshold"):
        denoise(tiny_lm, t, steps=2, threshold=1.5)
