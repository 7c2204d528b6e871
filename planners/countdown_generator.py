"""Countdown training data drawn as Dream's sets were: the target first, then inputs until they reach it.

Dream's sets (built as in "Stream of Search") fix a target in 10..100 and draw inputs in 1..99
until they can reach it. Building a random path forward and reading off its end instead favours
targets that many paths reach, which are the easy ones: on five numbers the 31,500-step model,
trained that way, needed twice the forward passes on Dream-style problems (median 170 against 81).

These functions only make training and benchmark problems with a reference path; solving never
calls them (the model fills, the constraint hook prunes, the validator checks).
"""

from __future__ import annotations

import functools
import random

from .countdown import Step


def _joins(x: int, y: int, limit: int) -> list[Step]:
    """The valid steps joining x and y (larger first for - and /), results below `limit`."""
    hi, lo = (x, y) if x >= y else (y, x)
    steps = [(x, "+", y, x + y), (hi, "-", lo, hi - lo), (x, "*", y, x * y)]
    if lo > 0 and hi % lo == 0:
        steps.append((hi, "/", lo, hi // lo))
    return [s for s in steps if s[3] < limit]


@functools.lru_cache(maxsize=1 << 16)
def _splits(numbers: tuple[int, ...]) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """Each split of a sorted multiset into two non-empty parts, once, the smaller part first."""
    out: dict = {}
    for m in range(1, (1 << len(numbers)) - 1):
        small = tuple(v for i, v in enumerate(numbers) if m >> i & 1)
        large = tuple(v for i, v in enumerate(numbers) if not m >> i & 1)
        if len(small) <= len(large) and (large, small) not in out:
            out[small, large] = None
    return tuple(out)


def _partners(x: int, goal: int) -> set[int] | None:
    """The y for which some step joining x and y can make `goal` (None: any y, as in 0*y = 0)."""
    if x == 0 and goal == 0:
        return None
    ys = {goal - x, x - goal, x + goal, x * goal}  # x+y, x-y, y-x, y/x
    if x and goal % x == 0:
        ys.add(goal // x)  # x*y
    if goal and x % goal == 0:
        ys.add(x // goal)  # x/y
    return ys


@functools.lru_cache(maxsize=1 << 17)
def reachable(numbers: tuple[int, ...], limit: int) -> frozenset[int]:
    """Every value a path over all of `numbers` (a sorted tuple) can end in, each result below `limit`.

    Asked of the smaller part of a split (up to half the inputs), whose sets are small and recur."""
    if len(numbers) == 1:
        return frozenset(numbers)
    out: set[int] = set()
    for small, large in _splits(numbers):
        ys = reachable(large, limit)
        for x in reachable(small, limit):
            for y in ys:
                out.update(r for *_, r in _joins(x, y, limit))
    return frozenset(out)


def _joined(x: int, y: int, goal: int, limit: int) -> bool:
    return any(r == goal for *_, r in _joins(x, y, limit))


@functools.lru_cache(maxsize=1 << 16)
def reaches(numbers: tuple[int, ...], goal: int, limit: int) -> bool:
    """Whether a path over all of `numbers` (a sorted tuple) can end in `goal`.

    Enumerates the values of the smaller part of each split and asks the larger part for the
    partners that would make the goal, so no large part's value set is ever built."""
    if len(numbers) <= 3:
        return goal in reachable(numbers, limit)
    for small, large in _splits(numbers):
        for x in reachable(small, limit):
            ys = _partners(x, goal)
            if ys is None or any(0 <= y < limit and reaches(large, y, limit) and _joined(x, y, goal, limit) for y in ys):
                return True
    return False


def random_path(numbers: tuple[int, ...], goal: int, rng: random.Random, limit: int) -> list[Step]:
    """A random path over all of `numbers` (a sorted tuple) ending in `goal`, which they must reach.

    The last step joins the values of two parts; the parts' own steps come before it, interleaved
    at random, so paths come in varied orders (independent steps then a join, chains, ...)."""
    if len(numbers) == 1:
        return []
    options = []
    for small, large in _splits(numbers):
        for x in reachable(small, limit):
            ys = _partners(x, goal)
            if ys is None:
                ys = reachable(large, limit)  # 0*y: any y (rare enough to list them all)
            for y in ys:
                if 0 <= y < limit and reaches(large, y, limit):
                    options += [(small, large, x, y, s) for s in _joins(x, y, limit) if s[3] == goal]
    small, large, x, y, (a, op, b, r) = rng.choice(options)
    if op in "+*" and rng.random() < 0.5:
        a, b = b, a
    first, second = random_path(small, x, rng, limit), random_path(large, y, rng, limit)
    steps = []
    while first or second:
        side = first if rng.randrange(len(first) + len(second)) < len(first) else second
        steps.append(side.pop(0))
    return steps + [(a, op, b, r)]
