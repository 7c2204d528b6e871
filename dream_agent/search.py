"""Model-guided backtracking: at a dead end, re-mask back to the most probable untried choice.

    result = backtrack(model, template, accept=validate, logits_hook=hooks.logits_hook,
                       dead_end=hooks.dead_end, max_nfe=600)

A denoising pass commits to every token it reveals. Under a planner's constraints a fill
can reach a dead end: a masked position no allowed token can take (or what the planner's
`dead_end` test reports), or a complete fill the validator rejects. Here the fill is then
re-masked back to a choice the model made and another of its tokens is tried there. At
each node:

  - masked positions the constraints leave exactly one token are revealed together
    (propagation: no choice, no forward pass, nothing to undo separately);
  - otherwise the model runs once, its most confident masked position (Dream's `alg`
    ranking) becomes a choice point; its most probable allowed token is placed and the
    others are kept as alternatives, each scored by the log-probability of its whole path
    (the model's probabilities of every choice that leads to it, this token's included).
    While that pass, restricted to what the constraints now allow, stays at least
    `reuse_above` sure of some position, the next choices come from it without a new pass
    (Fast-dLLM's confidence rule, one token at a time so that the constraints see each).

The fill dives greedily. At a dead end it first retreats depth-first, to the latest choice
with an untried token (by default for as many forward passes as the template has masked
positions): a nearly right fill is mostly repaired close to where it failed. After that it
resumes from the best-scored alternative anywhere in the tree (best-first backtracking), the
depth-first phase's untried alternatives included. Depth-first retreat alone cannot undo an
early mistake, such as a Countdown number's length fixed by the first few choices, within a
budget (it solved 81 of 100 generated five-number problems where best-first solved all);
best-first alone spends a hundred passes on early alternatives before it looks at the last
few choices (on 150 generated five-number problems, median 137 passes against 100 for this
order; BENCHMARKS.md).

The logits hook is read as a mask: the tokens it leaves finite on neutral logits are the ones
allowed, and the model's own logits are restricted to them (a hook that reweights logits
rather than masking them is reduced to its mask here). One hook call per node, not two.

The model ranks positions and tokens, the constraints prune, the validator accepts. A better
model needs fewer forward passes; `nfe` and `backtracks` measure it.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .batching import Forward, Job, run_job
from .decoding import CONFIDENCE, collate, constrain, token_probs
from .template import Template


@dataclass
class SearchResult:
    ids: torch.Tensor | None  # (N,) the accepted fill, else the complete fill the validator liked best (None: none)
    found: bool
    nfe: int  # forward passes: at most one per choice point (see `reuse_above`)
    choices: int  # choice points opened
    backtracks: int  # times the fill was re-masked back to a choice
    violations: list  # of `ids`, as `accept` returned them
    exhausted: bool = False  # every fill the constraints allow was tried: none is valid


def backtrack(model, template: Template, **settings) -> SearchResult:
    """Depth-first, then best-first search over fills of `template`, in the order `model` ranks them.

    The keywords are `backtrack_job`'s; the job runs here alone, one forward pass a choice point."""
    return run_job(model, backtrack_job(model, template, **settings))


@torch.no_grad()
def backtrack_job(
    model,
    template: Template,
    *,
    accept: Callable[[torch.Tensor], list],
    logits_hook: Callable | None = None,
    dead_end: Callable[[torch.Tensor], torch.Tensor] | None = None,
    max_nfe: int = 1000,
    alg: str = "entropy",
    reuse_above: float | None = 0.9,
    depth_first: int | None = None,
    window: int | None = None,
    on_step: Callable[[int, torch.Tensor], None] | None = None,
) -> Job[SearchResult]:
    """The search as a job (`dream_agent.batching`): it yields each forward pass it needs.

    accept(ids) returns the validator's violations of a complete fill (empty: valid);
    dead_end(x) (B, N) -> (B,) bool says a partial fill can no longer be completed;
    reuse_above: while the dive's latest forward pass, restricted to what the constraints now
        allow, is at least this sure of some position, the next choice is made from it without
        a new pass (None: a pass at every choice);
    depth_first: retreat to the latest choice until this many forward passes are spent, then to
        the most probable alternative (None: one pass per masked position; 0: best-first only);
    window: choose only among the first `window` masked positions, left to right (a semi-autoregressive
        search, as LLaDA's blocks are for the sampler: a plan is built step by step); None: anywhere;
    on_step(nfe, x_row) sees the fill after every node (a live view).
    """
    if alg not in CONFIDENCE:
        raise ValueError(f"backtracking ranks positions by confidence; alg must be one of {', '.join(CONFIDENCE)}")
    x, real, allow_row, table = collate(model, [template])
    mask_id = model.mask_token_id
    # Untried alternatives: (-path log-prob, tie-break, the fill before the choice, position, token).
    # Depth-first phase: a stack, the latest choice's most probable token on top. Then a heap:
    # the most probable path first; among equals, the one pushed first.
    alternatives: list[tuple[float, int, torch.Tensor, int, int]] = []
    if depth_first is None:
        depth_first = int(((x[0] == mask_id) & real[0]).sum())
    stacked = depth_first > 0
    pushed = itertools.count()
    path_logp = 0.0  # of the fill being built: the sum of its choices' log-probabilities
    nfe = choices = backtracks = 0
    best: tuple[torch.Tensor, list] | None = None
    vocab = getattr(model, "vocab_size", None) or (table.shape[1] if table is not None else mask_id + 1)
    blank = torch.zeros((1, x.shape[1], vocab), device=x.device)  # logits that favour nothing
    low = torch.finfo(blank.dtype).min
    dive_logits: torch.Tensor | None = None  # the latest forward pass of the fill being built

    def allowed_probs(logits: torch.Tensor, where: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """(M, V) the model's probabilities at the masked positions `where`, zero where not allowed."""
        # float32: the search's own path scores sum log-probabilities, which bf16 would round away
        return token_probs(logits[0, where].masked_fill(~allowed, low), 0.0, None, None, float32_softmax=True)

    def retreat() -> torch.Tensor | None:
        """The fill of the next untried alternative (the latest, later the most probable), its token
        placed; None when exhausted."""
        nonlocal backtracks, path_logp, dive_logits, stacked
        dive_logits = None  # it saw another branch
        if not alternatives:
            return None
        if stacked and nfe >= depth_first:
            heapq.heapify(alternatives)
            stacked = False
        neg_logp, _, before, pos, token = alternatives.pop() if stacked else heapq.heappop(alternatives)
        backtracks += 1
        path_logp = -neg_logp
        nxt = before.clone()
        nxt[0, pos] = token
        return nxt

    while nfe < max_nfe:
        masked = (x[0] == mask_id) & real[0]  # (N,)
        if not bool(masked.any()):
            ids = x[0].clone()
            violations = accept(ids)
            if not violations:
                return SearchResult(ids, True, nfe, choices, backtracks, [])
            if best is None or len(violations) < len(best[1]):
                best = (ids, violations)
            x = retreat()
            if x is None:
                break
            continue
        if dead_end is not None and bool(dead_end(x)[0]):
            x = retreat()
            if x is None:
                break
            continue

        # Propagation needs no forward pass: the constraints alone say which tokens remain.
        where = masked.nonzero().flatten()  # (M,)
        hooked = blank.clone() if logits_hook is None else logits_hook(nfe, x, blank.clone())
        allowed = constrain(hooked[0, where], allow_row[0, where], table, mask_id) > low  # (M, V)
        counts = allowed.sum(-1)  # (M,)
        if bool((counts == 0).any()):  # a position nothing may fill
            x = retreat()
            if x is None:
                break
            continue

        x = x.clone()
        forced = counts == 1
        if bool(forced.any()):
            x[0, where[forced]] = allowed[forced].float().argmax(-1)
        else:  # a choice: the model ranks positions and tokens
            # `allowed` already holds the template's sets and the hook's mask for this x: no second hook call
            probs = None
            if dive_logits is not None and reuse_above is not None:
                probs = allowed_probs(dive_logits, where, allowed)
                if float(probs.max()) < reuse_above:
                    probs = None  # unsure on the old pass: ask the model about this fill
            if probs is None:
                dive_logits = yield Forward(x)  # (1, N, V)
                nfe += 1
                probs = allowed_probs(dive_logits, where, allowed)
            chosen_p, _ = probs.max(-1)  # (M,)
            score = CONFIDENCE[alg](probs, chosen_p)  # (M,)
            if window is not None:
                score = score[:window]  # `where` is in position order: the leftmost masked positions
            at = int(score.argmax())
            order = [int(t) for t in torch.argsort(probs[at], descending=True)[: int(counts[at])]]
            # only the allowed tokens' log-probabilities: a vocabulary-wide list would cost Dream 7B 152k floats
            logp = probs[at, order].clamp_min(torch.finfo(probs.dtype).tiny).log().tolist()
            choices += 1
            before, pos = x.clone(), int(where[at])  # shared by the alternatives: never written to
            untried = [(-(path_logp + lp), next(pushed), before, pos, t) for t, lp in zip(order[1:], logp[1:])]
            if stacked:
                alternatives.extend(reversed(untried))  # the most probable on top
            else:
                for alternative in untried:
                    heapq.heappush(alternatives, alternative)
            path_logp += logp[0]
            x[0, pos] = order[0]
        if on_step is not None:
            on_step(nfe, x[0])

    ids, violations = best if best is not None else (None, [])
    return SearchResult(ids, False, nfe, choices, backtracks, violations, exhausted=x is None)
