"""The code validators, each a list of `Violation`s on the holes at fault.

  - syntax: `ast.parse` of the whole program; a syntax error blames the hole tokens on its line;
  - rules: forbidden names and imports, found by walking the AST of the fills' lines;
  - tests: run in the sandbox; each failing test a violation carrying its assertion message.

A fill's place in the program is a `HoleSpan`: its characters and, where the planner decoded
it from a template, the template position of each token, so that a line's fault re-masks
that line's tokens only.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass

from dream_agent.sandbox import Sandbox
from dream_agent.validation import Violation

from .skeleton import CodeProblem


@dataclass(frozen=True)
class HoleSpan:
    name: str
    start: int  # character offsets in the program
    end: int
    tokens: tuple[tuple[int, int, int], ...] = ()  # (template position, char start, char end)


def spans_of(problem: CodeProblem, fills: dict[str, str]) -> list[HoleSpan]:
    out, pos = [], 0
    for p in problem.pieces:
        if isinstance(p, str):
            pos += len(p)
        else:
            text = fills.get(p.name, "")
            out.append(HoleSpan(p.name, pos, pos + len(text)))
            pos += len(text)
    return out


def _line_range(program: str, lineno: int) -> tuple[int, int]:
    lines = program.splitlines(keepends=True)
    start = sum(len(line) for line in lines[:lineno - 1])
    end = start + (len(lines[lineno - 1]) if 0 < lineno <= len(lines) else 0)
    return start, max(end, start + 1)


def _blame_lines(spans: list[HoleSpan], program: str, first: int, last: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The holes, and their token positions, that touch lines first..last (1-based)."""
    lo, _ = _line_range(program, first)
    _, hi = _line_range(program, last)
    slots, positions = [], []
    for s in spans:
        # a hole that ends exactly where the line starts (its newline) touches it too
        if s.start < hi and s.end >= lo:
            hit = [p for p, a, b in s.tokens if a < hi and b >= lo]
            if hit:
                positions += hit
            else:
                slots.append(s.name)
    return tuple(slots), tuple(positions)


def syntax_violations(program: str, spans: list[HoleSpan]) -> list[Violation]:
    try:
        with warnings.catch_warnings():  # invalid escapes and the like warn; only errors count
            warnings.simplefilter("ignore")
            ast.parse(program)
    except SyntaxError as e:
        line = e.lineno or 1
        slots, positions = _blame_lines(spans, program, line, e.end_lineno or line)
        if not slots and not positions:  # the error is reported in an anchor: a hole before it caused it
            slots = tuple(s.name for s in spans if s.start <= _line_range(program, line)[1])
        return [Violation(f"syntax error on line {line}: {e.msg}", slots, positions)]
    return []


def _module_root(name: str | None) -> str:
    return (name or "").split(".")[0]


def rule_violations(problem: CodeProblem, program: str, spans: list[HoleSpan]) -> list[Violation]:
    rules = problem.rules
    if not (rules.forbid_names or rules.forbid_imports or rules.allow_imports is not None):
        return []
    out: list[Violation] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = ast.parse(program)
    for node in ast.walk(tree):
        found: list[str] = []
        if isinstance(node, ast.Name) and node.id in rules.forbid_names:
            found.append(f"uses the forbidden name {node.id!r}")
        elif isinstance(node, ast.Attribute) and node.attr in rules.forbid_names:
            found.append(f"uses the forbidden attribute {node.attr!r}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for m in modules:
                if m in rules.forbid_imports or _module_root(m) in rules.forbid_imports:
                    found.append(f"imports the forbidden module {m!r}")
                elif rules.allow_imports is not None and _module_root(m) not in rules.allow_imports:
                    found.append(f"imports {m!r}, which the rules do not allow")
            if isinstance(node, ast.ImportFrom):
                found += [f"imports the forbidden name {a.name!r}" for a in node.names if a.name in rules.forbid_names]
        if not found:
            continue
        slots, positions = _blame_lines(spans, program, node.lineno, node.end_lineno or node.lineno)
        if slots or positions:  # a rule broken by the skeleton itself is not a fill's fault (see `check_rules`)
            out += [Violation(f"line {node.lineno} {why}", slots, positions) for why in found]
    return out


def test_violations(problem: CodeProblem, program: str, sandbox: Sandbox) -> list[Violation]:
    result = sandbox.run(program, [(t.name, t.source) for t in problem.tests])
    if result.passed:
        return []
    every_hole = tuple(h.name for h in problem.holes)
    if result.program_error is not None:
        return [Violation(f"the program fails before any test: {result.program_error}", every_hole)]
    out = [Violation(f"test {t.name} fails: {t.message}", every_hole) for t in result.failures]
    return out or [Violation(f"the tests did not pass: {result.reason}", every_hole)]
