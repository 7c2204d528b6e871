"""Property-based checks of every parser and validator: whatever they are given, a parser returns
a problem or raises one of the project's own errors (`DreamAgentError`), and a validator returns
violations. Inputs: arbitrary text, text made of the characters each parser reads, numbers of
thousands of digits (past Python's 4,300-digit limit for int()), deep nesting, non-strings.

CI runs a bounded number of examples (profile "ci", tests/conftest.py); the long run is
`benchmarks/property_run.py` (profile "long": 100,000 examples a target).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dream_agent.engine import DiffusionEngine
from dream_agent.errors import DreamAgentError, ProblemError
from dream_agent.evaluation import parse_steps_list
from dream_agent.template import Template
from dream_agent.tokenization import char_tokenizer
from dream_agent.validation import Violation
from planners.base import dream_row
from planners.countdown import CountdownPlanner, CountdownProblem
from planners.sudoku import SudokuPlanner, SudokuProblem

SUDOKU, COUNTDOWN = SudokuPlanner(), CountdownPlanner()
TOKENIZER = char_tokenizer([chr(c) for c in range(32, 127)] + ["\n"])

# ---- inputs -----------------------------------------------------------------------------------

huge_number = st.integers(4_000, 6_000).map(lambda n: "9" * n)  # int() of it raises ValueError
big_number = st.integers(10, 40).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n))
non_strings = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.binary(max_size=20),
                        st.lists(st.integers(), max_size=5), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
                        st.just(object()))


def deep(opening: str, closing: str = "") -> st.SearchStrategy[str]:
    """Nesting thousands deep (json.loads raises RecursionError past about 1,000 levels)."""
    return st.integers(500, 3_000).map(lambda n: opening * n + closing * (n // 2))


def texts(alphabet: str) -> st.SearchStrategy[str]:
    """Arbitrary text, text of the characters a parser reads, and the pieces above glued into it."""
    pieces = st.one_of(st.text(alphabet, max_size=40), big_number, st.sampled_from(["->", "target:", "=>", "numbers:", "\n"]))
    return st.one_of(
        st.text(max_size=200),
        st.text(alphabet, max_size=200),
        st.lists(pieces, max_size=12).map(" ".join),
        st.lists(pieces | huge_number, min_size=1, max_size=4).map(" ".join),
        deep("["), deep('{"input": ', "}"), deep("{", "}"),
        st.builds(lambda inner: json.dumps({"input": inner, "output": inner}), st.text(alphabet, max_size=100) | huge_number),
        st.builds(lambda n: f'{{"input": {n}}}', huge_number),
    )


def parses_or_refuses(parse, value) -> None:
    try:
        parse(value)
    except DreamAgentError as e:
        assert str(e) and "\n" not in str(e)  # a one-line message
        assert len(str(e)) < 400  # input is quoted, not echoed whole


def is_violations(out) -> None:
    assert isinstance(out, list) and all(isinstance(v, Violation) and v.message for v in out)


CI = dict(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ---- sudoku -------------------------------------------------------------------------------------

SUDOKU_CHARS = "0123456789.|-+ \n\tx{}\"input:"


@settings(**CI)
@given(st.one_of(texts(SUDOKU_CHARS), non_strings))
def test_sudoku_parse(value):
    parses_or_refuses(SUDOKU.parse, value)


@st.composite
def sudoku_problems(draw):
    size = draw(st.sampled_from([4, 6, 9]))
    return SudokuProblem(size=size, cells=draw(st.lists(st.integers(0, size), min_size=size * size, max_size=size * size)))


@settings(**CI)
@given(sudoku_problems(), st.one_of(texts("0123456789. \n"), st.text("123456789", min_size=16, max_size=81), non_strings))
def test_sudoku_check(problem, solution):
    is_violations(SUDOKU.check(problem, solution))


@settings(**CI)
@given(sudoku_problems())
def test_sudoku_parse_reads_its_own_text(problem):
    try:
        parsed = SUDOKU.parse(str(problem))
    except ProblemError as e:  # random clues often conflict: parse must say so
        assert "clues conflict" in str(e)
    else:
        assert parsed == problem


# ---- countdown ----------------------------------------------------------------------------------

COUNTDOWN_CHARS = "0123456789 ,+-*/=>_:target\n{}\"input"


@settings(**CI)
@given(st.one_of(texts(COUNTDOWN_CHARS), non_strings))
def test_countdown_parse(value):
    parses_or_refuses(COUNTDOWN.parse, value)


countdown_problems = st.builds(CountdownProblem, numbers=st.lists(st.integers(1, 9999), min_size=2, max_size=6),
                               target=st.integers(0, 9999))
step = st.builds(lambda a, op, b, r: f"{a}{op}{b}={r}", st.integers(0, 10**6) | huge_number | big_number,
                 st.sampled_from("+-*/"), st.integers(0, 10**6) | big_number, st.integers(-10, 10**6) | huge_number)


@settings(**CI)
@given(countdown_problems, st.one_of(texts("0123456789+-*/=,_ "), st.lists(step, max_size=7).map(",".join), non_strings))
def test_countdown_check(problem, solution):
    is_violations(COUNTDOWN.check(problem, solution))


# ---- shared pieces: Dream's jsonl rows, data files, --plot-steps --------------------------------


@settings(**CI)
@given(st.one_of(texts('{}[]":,0123456789input'), non_strings))
def test_dream_row(value):
    parses_or_refuses(dream_row, value)


@pytest.mark.parametrize("planner, suffix", [(SUDOKU, ".txt"), (SUDOKU, ".jsonl"), (COUNTDOWN, ".jsonl")])
@settings(**CI)
@given(data=st.one_of(st.binary(max_size=300), texts(SUDOKU_CHARS + COUNTDOWN_CHARS).map(str.encode)))
def test_load_dataset(tmp_path_factory, planner, suffix, data):
    # one file, rewritten for each example: a fresh numbered directory each (mktemp) made long runs
    # quadratic, as pytest scans the existing ones to number the next
    path = tmp_path_factory.getbasetemp() / f"dataset-{planner.name}{suffix}"
    path.write_bytes(data)
    parses_or_refuses(planner.load_dataset, str(path))


@settings(**CI)
@given(st.one_of(texts("0123456789, -"), non_strings))
def test_plot_steps_list(value):
    try:
        parse_steps_list(value)
    except ValueError as e:  # the CLI prints a ValueError here as one line, exit 2
        assert "\n" not in str(e) and len(str(e)) < 400


# ---- templates and the engine's infill syntax ---------------------------------------------------

TEMPLATE_CHARS = "{}:-0123456789abc_ [MASK]\n"


@settings(**CI)
@given(st.one_of(texts(TEMPLATE_CHARS), st.builds(lambda n: f"a{{x:{n}}}", huge_number | big_number), non_strings))
def test_template_parse(value):
    parses_or_refuses(lambda text: Template.parse(text, TOKENIZER, max_length=512), value)


ENGINE = DiffusionEngine(SimpleNamespace(tokenizer=TOKENIZER, mask_token_id=TOKENIZER.mask_token_id, max_length=512))


@settings(**CI)
@given(st.one_of(texts(TEMPLATE_CHARS), st.builds(lambda n: f"x [MASK:{n}] y", huge_number | big_number), non_strings))
def test_infill_syntax(value):
    parses_or_refuses(ENGINE.infill_template, value)
