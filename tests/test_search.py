"""Model-guided backtracking on a tiny random model and id-only templates."""

from __future__ import annotations

import pytest
import torch

from dream_agent import Anchor, Slot, Template
from dream_agent.search import backtrack

A, B, C = 10, 11, 12  # the tokens the slots may take


def template() -> Template:
    return Template([Anchor([1, 2]), Slot("x", 3, allowed=[A, B, C]), Anchor([3])], mask_token_id=63)


def slots(ids) -> list[int]:
    return ids[2:5].tolist()


def test_finds_the_one_accepted_fill_and_counts_its_work(tiny_lm):
    seen = []

    def accept(ids):
        seen.append(slots(ids))
        return [] if slots(ids) == [C, A, B] else ["wrong"]

    result = backtrack(tiny_lm, template(), accept=accept, max_nfe=100)
    assert result.found and slots(result.ids) == [C, A, B]
    assert result.ids[[0, 1, 5]].tolist() == [1, 2, 3]  # anchors untouched
    assert len(seen) == len({tuple(s) for s in seen})  # no complete fill is tried twice
    assert result.backtracks == len(seen) - 1
    assert result.nfe <= result.choices  # at most one forward pass per choice point, none for forced positions


def test_budget_and_exhaustion(tiny_lm):
    never = lambda ids: ["never"]  # noqa: E731
    budgeted = backtrack(tiny_lm, template(), accept=never, max_nfe=4)
    assert not budgeted.found and budgeted.nfe == 4
    exhausted = backtrack(tiny_lm, template(), accept=never, max_nfe=10_000)
    # 3 positions x 3 tokens: 27 complete fills, each tried once, then nothing is left
    assert not exhausted.found and exhausted.nfe < 10_000 and exhausted.ids is not None
    assert exhausted.violations == ["never"]


def test_constraints_prune_and_dead_ends_retreat(tiny_lm):
    # a hook that forbids repeating a token already placed: only permutations of A, B, C remain
    def all_different(step, x, logits):
        placed = x[0, 2:5]
        for tok in (A, B, C):
            if bool((placed == tok).any()):
                logits[0, 2:5, tok] = torch.where(placed == tok, logits[0, 2:5, tok], torch.finfo(logits.dtype).min)
        return logits

    fills = []

    def accept(ids):
        fills.append(slots(ids))
        return ["keep going"]

    result = backtrack(tiny_lm, template(), accept=accept, logits_hook=all_different, max_nfe=10_000)
    assert sorted(map(tuple, fills)) == sorted({(a, b, c) for a in (A, B, C) for b in (A, B, C) for c in (A, B, C)
                                                if len({a, b, c}) == 3})
    # a dead-end test that rejects any fill starting with A: no such fill reaches the validator
    fills.clear()
    starts_with_a = lambda x: x[:, 2] == A  # noqa: E731
    backtrack(tiny_lm, template(), accept=accept, logits_hook=all_different, dead_end=starts_with_a, max_nfe=10_000)
    assert fills and all(f[0] != A for f in fills) and len(fills) == 4
    assert not result.found


def test_origin_has_no_confidence_to_rank_by(tiny_lm):
    with pytest.raises(ValueError, match="alg"):
        backtrack(tiny_lm, template(), accept=lambda ids: [], alg="origin")


class ScriptedModel:
    """Probabilities that depend on the fill: position 0 first (more confident); position 1 prefers
    A strongly once position 0 holds A, and only slightly otherwise."""

    mask_token_id, pad_token_id, vocab_size, device = 63, 0, 64, torch.device("cpu")

    def logits(self, x):
        probs = torch.full((1, x.shape[1], self.vocab_size), 1e-9)
        probs[0, 0, [A, B]] = torch.tensor([0.7, 0.3])
        probs[0, 1, [A, B]] = torch.tensor([0.9, 0.1]) if int(x[0, 0]) == A else torch.tensor([0.6, 0.4])
        return probs.log()


def test_resumes_from_the_most_probable_alternative_not_the_latest():
    t = Template([Slot("x", 2, allowed=[A, B])], mask_token_id=63)
    fills = []

    def accept(ids):
        fills.append(ids.tolist())
        return ["keep going"]

    result = backtrack(ScriptedModel(), t, accept=accept, max_nfe=100, depth_first=0)
    # (A, A) first: 0.7 * 0.9. Then (B, .) at 0.3 beats the latest choice's alternative (A, B) at
    # 0.07, which a depth-first search would take; B's subtree (0.18, 0.12) still comes before it.
    assert fills == [[A, A], [B, A], [B, B], [A, B]]
    assert not result.found and result.backtracks == 3


class ConfidentModel:
    """Sure of token A at every position, whatever the fill."""

    mask_token_id, pad_token_id, vocab_size, device = 63, 0, 64, torch.device("cpu")

    def __init__(self):
        self.calls = 0

    def logits(self, x):
        self.calls += 1
        probs = torch.full((1, x.shape[1], self.vocab_size), 1e-9)
        probs[0, :, [A, B]] = torch.tensor([0.95, 0.05])
        return probs.log()


def test_a_confident_pass_is_reused_within_a_dive_but_not_after_a_retreat():
    t = Template([Slot("x", 3, allowed=[A, B])], mask_token_id=63)
    accept = lambda ids: [] if ids.tolist() == [A, B, A] else ["no"]  # noqa: E731

    model = ConfidentModel()
    result = backtrack(model, t, accept=accept, max_nfe=100, depth_first=0)
    # One pass fills (A, A, A). Each retreat (to (B, _, _), the most probable alternative, then to
    # (A, B, _)) needs a fresh pass, since the last one saw another branch; within each dive the
    # confident pass serves every choice.
    assert result.found and result.ids.tolist() == [A, B, A]
    assert (result.nfe, result.choices, result.backtracks) == (3, 6, 2) and model.calls == 3

    every = ConfidentModel()
    plain = backtrack(every, t, accept=accept, max_nfe=100, reuse_above=None, depth_first=0)
    assert plain.found and plain.ids.tolist() == [A, B, A]
    assert plain.nfe == plain.choices == every.calls == 6


def test_retreats_depth_first_until_its_passes_are_spent_then_best_first():
    t = Template([Slot("x", 3, allowed=[A, B])], mask_token_id=63)

    def fills_tried(depth_first):
        fills = []

        def accept(ids):
            fills.append("".join("AB"[int(i) - A] for i in ids))
            return ["keep going"]

        backtrack(ConfidentModel(), t, accept=accept, max_nfe=100, reuse_above=None, depth_first=depth_first)
        return fills[:4]

    # A pass a choice (reuse off), positions in order, A at 0.95 everywhere.
    assert fills_tried(0) == ["AAA", "BAA", "ABA", "AAB"]  # most probable path first: B__ at 0.05 beats AB_
    assert fills_tried(100) == ["AAA", "AAB", "ABA", "ABB"]  # the latest choice first
    # 3 passes make AAA, AAB costs none, AB_ costs the 4th: from then on best-first, whose heap
    # keeps what the depth-first phase left (B__ then ABB)
    assert fills_tried(4) == ["AAA", "AAB", "ABA", "BAA"]
    # the default, one pass per masked position: here the first dive spends all 3
    assert fills_tried(None) == fills_tried(3) == fills_tried(0)
