"""Code problems: a Python skeleton with holes, the tests it must pass, and rules on names.

    problem = parse_problem(skeleton_text, tests_text, forbid=["eval"])
    problem.pieces   # ("def add(a, b):\\n    return ", Hole(0, 4), "\\n")
    problem.tests    # (CodeTest("line 1", "assert add(1, 2) == 3"), ...)

Holes: `[MASK:n]` is a hole of n tokens (the engine's infill syntax); `[MASK]` a hole of
unknown length, which the planner tries at several lengths (`with_lengths`). Tests come in
three forms, told apart by reading them with `ast`: assert lines (each one a test),
pytest-style `def test_*()` functions (each one a test, called by name), and HumanEval's
`def check(candidate)` (one test, called with the entry point).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field, replace

from dream_agent.errors import ProblemError

HOLE = re.compile(r"\[MASK(?::(\d+))?\]")


@dataclass(frozen=True)
class Hole:
    index: int
    length: int | None  # tokens; None: unknown, tried at several lengths

    @property
    def name(self) -> str:
        return f"hole_{self.index}"


@dataclass(frozen=True)
class CodeTest:
    name: str
    source: str  # statements run after the program, in its namespace; passing = no exception


@dataclass(frozen=True)
class Rules:
    forbid_names: frozenset[str] = frozenset()  # names and attributes a fill may not use (eval, system, ...)
    forbid_imports: frozenset[str] = frozenset()  # modules a fill may not import (their submodules too)
    allow_imports: frozenset[str] | None = None  # if set, the only modules a fill may import


@dataclass(frozen=True)
class CodeProblem:
    pieces: tuple[str | Hole, ...]
    tests: tuple[CodeTest, ...] = ()
    rules: Rules = field(default_factory=Rules)
    name: str = "skeleton"
    # characters of fixed code the *template* keeps before the first hole and after the last
    # (None: all). A model with a short context sees a window; validators always see everything.
    window: int | None = None

    def template_pieces(self) -> tuple[str | Hole, ...]:
        if self.window is None:
            return self.pieces
        pieces = list(self.pieces)
        if isinstance(pieces[0], str):
            head = pieces[0][-self.window:]
            if len(head) < len(pieces[0]) and "\n" in head:
                head = head[head.index("\n") + 1:]  # start the window at a line
            pieces[0] = head
        if len(pieces) > 1 and isinstance(pieces[-1], str):
            pieces[-1] = pieces[-1][: self.window]
        return tuple(pieces)

    @property
    def holes(self) -> list[Hole]:
        return [p for p in self.pieces if isinstance(p, Hole)]

    def with_lengths(self, length: int) -> CodeProblem:
        """Every hole of unknown length given `length` tokens (fixed holes keep theirs)."""
        return replace(self, pieces=tuple(replace(p, length=length) if isinstance(p, Hole) and p.length is None
                                          else p for p in self.pieces))

    def program(self, fills: dict[str, str]) -> str:
        return "".join(fills.get(p.name, "") if isinstance(p, Hole) else p for p in self.pieces)

    def __str__(self) -> str:
        return "".join(f"[MASK:{p.length}]" if isinstance(p, Hole) and p.length else "[MASK]" if isinstance(p, Hole)
                       else p for p in self.pieces)


def parse_skeleton(text: str) -> tuple[str | Hole, ...]:
    pieces: list[str | Hole] = []
    pos = 0
    for n, m in enumerate(HOLE.finditer(text)):
        if m.start() > pos:
            pieces.append(text[pos:m.start()])
        length = int(m.group(1)) if m.group(1) else None
        if length is not None and length < 1:
            raise ProblemError(f"hole {n} asks for {length} tokens; a [MASK:n] hole needs n >= 1")
        pieces.append(Hole(n, length))
        pos = m.end()
    if pos < len(text):
        pieces.append(text[pos:])
    if not any(isinstance(p, Hole) for p in pieces):
        raise ProblemError("the skeleton has no hole: mark the code to write with [MASK] or [MASK:n]")
    return tuple(pieces)


def parse_tests(text: str, entry_point: str | None = None) -> tuple[CodeTest, ...]:
    """Assert lines, pytest-style functions or a HumanEval `check(candidate)`, as separate tests."""
    if not text.strip():
        return ()
    try:
        tree = ast.parse(text)
    except SyntaxError as e:
        raise ProblemError(f"the tests do not parse: {e.msg} (line {e.lineno})") from None
    lines = text.splitlines()

    def source(node: ast.AST) -> str:
        return "\n".join(lines[node.lineno - 1:node.end_lineno])

    setup = [n for n in tree.body if not isinstance(n, ast.Assert)
             and not (isinstance(n, ast.FunctionDef) and (n.name.startswith("test") or n.name == "check"))]
    prelude = "\n".join(source(n) for n in setup)
    prelude = prelude + "\n" if prelude else ""
    out: list[CodeTest] = []
    for node in tree.body:
        if isinstance(node, ast.Assert):
            out.append(CodeTest(f"line {node.lineno}", prelude + source(node)))
        elif isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            if node.args.args:
                raise ProblemError(f"test function {node.name} takes arguments; fixtures are not supported")
            out.append(CodeTest(node.name, prelude + source(node) + f"\n{node.name}()"))
        elif isinstance(node, ast.FunctionDef) and node.name == "check":
            if entry_point is None:
                raise ProblemError("the tests define check(candidate): say which function it checks (entry_point)")
            out.append(CodeTest("check", prelude + source(node) + f"\ncheck({entry_point})"))
    if not out:
        raise ProblemError("no tests found: write assert lines, def test_*() functions or def check(candidate)")
    return tuple(out)


def entry_point_of(pieces: tuple[str | Hole, ...]) -> str | None:
    """The last top-level function the skeleton defines (what a HumanEval check calls)."""
    names = re.findall(r"^def (\w+)\s*\(", "".join(p for p in pieces if isinstance(p, str)), flags=re.M)
    return names[-1] if names else None


def parse_problem(skeleton: str, tests: str = "", *, forbid: tuple[str, ...] = (), forbid_imports: tuple[str, ...] = (),
                  allow_imports: tuple[str, ...] | None = None, entry_point: str | None = None,
                  name: str = "skeleton") -> CodeProblem:
    pieces = parse_skeleton(skeleton)
    entry_point = entry_point or entry_point_of(pieces)
    rules = Rules(frozenset(forbid), frozenset(forbid_imports),
                  frozenset(allow_imports) if allow_imports is not None else None)
    return CodeProblem(pieces, parse_tests(tests, entry_point), rules, name)
