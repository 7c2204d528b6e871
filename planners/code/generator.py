"""Generated small functions with tests: training data and held-out tasks (never evaluation files).

A task is a function over ints, lists or strings whose body is one `return` expression drawn
from a small grammar; its docstring shows three calls and their results, and the same calls
are its tests. The hole is the expression:

    def f(xs):
        \"\"\">>> f([3, 1, 2])
        [1, 2, 3]
        ...\"\"\"
        return [MASK]

The expected values come from evaluating the generator's own expression here (this module
writes the code; nothing a model wrote runs outside the sandbox).
"""

from __future__ import annotations

import random

from ..base import Example
from .skeleton import CodeProblem, CodeTest, Hole

# {k} is a digit 1-9 drawn per task, {c} a letter: the examples must be read, not just recognised
INT_EXPRS = ["a + b", "a - b", "a * b", "max(a, b)", "min(a, b)", "abs(a - b)", "a * a + b", "(a + b) * {k}",
             "a // {k} + b", "a % {k} + b", "a + b + {k}", "{k} * a - b", "a * {k}", "a - {k}", "b + {k}"]
LIST_EXPRS = ["sum(xs)", "max(xs)", "min(xs)", "len(xs)", "sorted(xs)", "xs[::-1]", "[x * {k} for x in xs]",
              "[x for x in xs if x % 2 == 0]", "[x + {k} for x in xs]", "sum(x * x for x in xs)", "xs[0] + xs[-1]",
              "sorted(xs, reverse=True)", "[x for x in xs if x > {k}]", "len(set(xs))", "sum(xs) * {k}",
              "[x - {k} for x in xs]", "xs[-1]", "max(xs) - min(xs)"]
STR_EXPRS = ["s.upper()", "s[::-1]", "s.lower()", "len(s)", "s + s", "s[0]", "s.count('{c}')", "s.replace('{c}', 'x')",
             "s[1:]", "s.title()", "''.join(sorted(s))", "s[:{k}]", "s * {k}", "s[-1]", "s + '{c}'"]
HOLE_LENGTH = 32  # characters: the longest expression fits; shorter ones end in padding, which decodes to nothing
WORDS = ["abc", "banana", "hello", "data", "apple", "zebra", "mask", "code", "alpha", "kiwi"]


def _args(kind: str, rng: random.Random):
    if kind == "int":
        return (rng.randint(-9, 20), rng.randint(-9, 20))
    if kind == "list":
        return ([rng.randint(-5, 12) for _ in range(rng.randint(1, 5))],)
    return (rng.choice(WORDS),)


def task(rng: random.Random, name: str = "f") -> tuple[CodeProblem, str]:
    """One generated task and its reference program."""
    kind = rng.choice(["int", "list", "str"])
    exprs, params = {"int": (INT_EXPRS, "a, b"), "list": (LIST_EXPRS, "xs"), "str": (STR_EXPRS, "s")}[kind]
    expr = rng.choice(exprs).format(k=rng.randint(1, 9), c=rng.choice("aeiou"))
    fn = eval(f"lambda {params}: {expr}")  # noqa: S307 (the generator's own fixed grammar, not model output)
    calls = []
    while len(calls) < 3:
        args = _args(kind, rng)
        if any(args == a for a, _ in calls):
            continue
        calls.append((args, fn(*args)))
    shown = "\n".join(f"    >>> {name}({', '.join(map(repr, a))})\n    {r!r}" for a, r in calls)
    head = f"def {name}({params}):\n    \"\"\"\n{shown}\n    \"\"\"\n    return "
    tests = tuple(CodeTest(f"call {i}", f"assert {name}({', '.join(map(repr, a))}) == {r!r}")
                  for i, (a, r) in enumerate(calls))
    problem = CodeProblem((head, Hole(0, HOLE_LENGTH), "\n"), tests, name=f"{kind}:{expr}")
    return problem, head + expr + "\n"


def generated_examples(n: int, rng: random.Random) -> list[Example]:
    return [Example(*task(rng)) for _ in range(n)]
