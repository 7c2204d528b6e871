"""The sudoku planner: parsing, templates, validation, the logits hook and puzzle generation."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from dream_agent.errors import ProblemError
from dream_agent.template import Anchor, Slot
from dream_agent.tokenization import char_tokenizer
from planners import get_planner
from planners.sudoku import BOX_SHAPES, SudokuPlanner, SudokuProblem, cell_name, geometry, solutions

DATA = Path("/work/shared/data")
SUDOKU = DATA / "sudoku"
DREAM = sorted((DATA / "dream_planning").glob("sudoku_4x4_*.jsonl"))
needs_data = pytest.mark.skipif(not SUDOKU.is_dir() or not DREAM, reason="shared sudoku data not present")

TOP95_FIRST = "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......"
PUZZLE_4 = "1000\n0002\n4003\n0000"
SOLUTION_4 = "1234341241232341"


@pytest.fixture(scope="module")
def planner() -> SudokuPlanner:
    return SudokuPlanner()


@pytest.fixture(scope="module")
def tok(planner):
    return char_tokenizer(planner.alphabet)


def test_registered():
    assert isinstance(get_planner("sudoku"), SudokuPlanner)


# ---- parse ---------------------------------------------------------------------------------


def test_parse_formats(planner):
    p9 = planner.parse(TOP95_FIRST)
    assert p9.size == 9 and (p9.box_rows, p9.box_cols) == (3, 3) and p9.cells[:7] == [4, 0, 0, 0, 0, 0, 8]
    assert planner.parse(TOP95_FIRST.replace(".", "0")) == p9
    assert planner.parse(planner.render(p9, str(p9))) == p9  # the boxed grid with '|' and '---+---' rules
    assert planner.parse("\n".join(TOP95_FIRST[i : i + 9] for i in range(0, 81, 9))) == p9
    p4 = planner.parse(PUZZLE_4)
    assert p4.size == 4 and p4.cells == [1, 0, 0, 0, 0, 0, 0, 2, 4, 0, 0, 3, 0, 0, 0, 0]
    assert planner.parse(json.dumps({"input": PUZZLE_4, "output": "1234\n3412\n4123\n2341"})) == p4
    assert planner.parse("4x4\n" + PUZZLE_4 + "\n") == p4  # a decoded template reads back
    p6 = planner.parse("1" + "." * 35)
    assert p6.size == 6 and (p6.box_rows, p6.box_cols) == (2, 3)
    assert planner.problem_text(p4) == "1......24..3...." == str(p4)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("  \n\t", "empty"),
        ("1" + "." * 79, "expected 16, 36 or 81 cells, got 80"),
        ("1x00\n0002\n4003\n0000", "'x'"),
        ("hello world", "'h'"),
        ("5000\n0002\n4003\n0000", "r1c1 holds 5"),
        ("7" + "." * 35, "digits 1-6"),
        ("4...4" + "." * 76, "clues conflict: r1c1 and r1c5 both hold 4"),
        ("1000\n1002\n4003\n0000", "clues conflict: r1c1 and r2c1 both hold 1"),
        ("1000\n0100\n0000\n0000", "clues conflict: r1c1 and r2c2 both hold 1"),  # same box
        ("{not json", "not valid JSON"),
        ('{"output": "1234"}', '"input"'),
        ("9x9\n" + PUZZLE_4, "header says 9x9"),
    ],
)
def test_parse_errors(planner, text, message):
    with pytest.raises(ProblemError, match=message.replace("(", r"\(")) as err:
        planner.parse(text)
    assert "\n" not in str(err.value)


@needs_data
def test_every_shared_puzzle_parses(planner):
    for name, count in (("top95.txt", 95), ("hardest.txt", 11)):
        examples = planner.load_dataset(str(SUDOKU / name))
        assert len(examples) == count and all(e.problem.size == 9 and e.solution is None for e in examples)
    for path in DREAM:
        examples = planner.load_dataset(str(path))
        assert len(examples) == 108 and all(e.problem.size == 4 for e in examples)
        clues = int(path.stem.rsplit("_", 1)[1])  # Dream's files are named by clue count
        assert all(len(e.problem.givens) == clues for e in examples)
        first = json.loads(path.read_text().splitlines()[0])
        assert planner.parse(first["input"]) == examples[0].problem


def test_load_dataset_errors(planner, tmp_path):
    with pytest.raises(ProblemError, match="no such file"):
        planner.load_dataset(str(tmp_path / "missing.txt"))
    txt = tmp_path / "p.txt"
    txt.write_text(f"# comment\n\n{TOP95_FIRST}\n{TOP95_FIRST[:-1]}\n")
    with pytest.raises(ProblemError, match=r"p\.txt, line 4: expected 16, 36 or 81 cells, got 80"):
        planner.load_dataset(str(txt))
    jl = tmp_path / "p.jsonl"
    jl.write_text(json.dumps({"input": PUZZLE_4, "output": "1234\n3412\n4123\n2314"}) + "\n")
    with pytest.raises(ProblemError, match="line 1: the output is not a solution"):
        planner.load_dataset(str(jl))


# ---- template ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [PUZZLE_4, TOP95_FIRST, "1" + "." * 35])
def test_encode_template(planner, tok, text):
    problem = planner.parse(text)
    n = problem.size
    t = planner.encode(problem, tok)
    blanks = [i for i, d in enumerate(problem.cells) if not d]
    assert len(t) == len(f"{n}x{n}\n") + n * (n + 1)
    assert list(t.slots) == [cell_name(i, n) for i in blanks]
    assert int(t.masked.sum()) == len(blanks)
    assert not any(isinstance(a, Anchor) and isinstance(b, Anchor) for a, b in zip(t.segments, t.segments[1:]))
    assert all(s.allowed == "123456789"[:n] for s in t.segments if isinstance(s, Slot))
    assert planner.slot_cells(problem, t) == {t.slots[cell_name(i, n)][0]: i for i in blanks}
    text = tok.decode(t.input_ids).replace(tok.mask_token, ".")
    assert text == f"{n}x{n}\n" + "".join(str(problem)[r * n : r * n + n] + "\n" for r in range(n))


def test_encode_with_solution_round_trips(planner, tok):
    problem = planner.parse(PUZZLE_4)
    t = planner.encode(problem, tok)
    full = planner.encode(problem, tok, SOLUTION_4)
    assert not full.masked.any()
    assert tok.decode(full.input_ids) == "4x4\n1234\n3412\n4123\n2341\n"
    assert planner.decode(problem, t, full.input_ids) == SOLUTION_4
    assert planner.decode(problem, t, t.input_ids) == "1000000240030000"  # masks decode as blanks
    with pytest.raises(ProblemError, match="changes clues at r1c1"):
        planner.encode(problem, tok, "2" + SOLUTION_4[1:])
    with pytest.raises(ProblemError, match="16 digits"):
        planner.encode(problem, tok, SOLUTION_4[:-1])


# ---- validation ----------------------------------------------------------------------------


@needs_data
def test_check_reference_solutions(planner):
    rows = [json.loads(line) for line in (DATA / "dream_planning" / "sudoku_4x4_10.jsonl").read_text().splitlines()]
    for row in rows:
        assert planner.check(planner.parse(row["input"]), row["output"]) == []


def test_check_localizes_a_swap(planner):
    problem = planner.parse(PUZZLE_4)
    bad = SOLUTION_4[:1] + SOLUTION_4[2] + SOLUTION_4[1] + SOLUTION_4[3:]  # swap r1c2 and r1c3
    violations = planner.check(problem, bad)
    blanks = {cell_name(i, 4) for i, d in enumerate(problem.cells) if not d}
    assert violations and all(v.slots and set(v.slots) <= blanks for v in violations)
    near = {cell_name(j, 4) for i in (1, 2) for j in (i, *problem.peers(i))}  # the swapped cells and their peers
    assert all({"r1c2", "r1c3"} & set(v.slots) and set(v.slots) <= near for v in violations)
    assert any(v.message.startswith("column 2 has two 3s") for v in violations)


def test_check_messages_and_clues(planner):
    problem = planner.parse(PUZZLE_4)
    messages = {v.message: v.slots for v in planner.check(problem, "1334" + SOLUTION_4[4:])}
    assert messages == {
        "row 1 has two 3s (r1c2, r1c3)": ("r1c2", "r1c3"),
        "column 2 has two 3s (r1c2, r4c2)": ("r1c2", "r4c2"),
        "box 1 has two 3s (r1c2, r2c1)": ("r1c2", "r2c1"),
    }
    dup = planner.check(problem, SOLUTION_4[:10] + "3" + SOLUTION_4[11:])  # r3c3 = 3 next to the clue r3c4 = 3
    assert "row 3 has two 3s (r3c3, r3c4)" in [v.message for v in dup]
    assert all("r3c4" not in v.slots for v in dup)  # a clue is an anchor: never named as a slot
    changed = planner.check(problem, SOLUTION_4[:11] + "1" + SOLUTION_4[12:])
    assert any("r3c4 is the clue 3" in v.message and v.slots == () for v in changed)
    assert [v.message for v in planner.check(problem, SOLUTION_4[:-1] + "0")] == ["r4c4 is empty"]
    assert [v.slots for v in planner.check(problem, SOLUTION_4[:-1] + "x")] == [("r4c4",)]
    assert planner.check(problem, SOLUTION_4[:-1])[0].message.startswith("the solution has 15 cells")


def test_related_slots_is_modest(planner, tok):
    problem = planner.parse(TOP95_FIRST)
    rng = random.Random(3)
    solution = "".join(map(str, solutions(problem.geometry, problem.cells, limit=1)[0]))
    row = [i for i in problem.rows()[1] if not problem.cells[i]]
    a, b = rng.sample(row, 2)
    bad = list(solution)
    bad[b] = bad[a]  # row 2 now holds one digit twice and lacks another
    bad = "".join(bad)
    template = planner.encode(problem, tok)
    ids = planner.encode(problem, tok, solution).input_ids.clone()
    ids[template.slots[cell_name(b, 9)][0]] = tok.convert_tokens_to_ids(bad[b])
    filled = template.with_values(ids)
    assert planner.decode(problem, template, ids) == bad
    dup = next(v for v in planner.check(problem, bad) if v.message.startswith("row 2"))
    assert set(dup.slots) == {cell_name(a, 9), cell_name(b, 9)}
    related = planner.related_slots(problem, filled, dup)
    blanks = {cell_name(i, 9) for i, d in enumerate(problem.cells) if not d}
    assert related[:2] == list(dup.slots) and set(related) <= blanks and len(related) <= 2 + 4 * 2
    missing = solution[b]
    for i in related[2:]:
        r, c = map(int, i[1:].split("c"))
        assert bad[(r - 1) * 9 + c - 1] in (missing, bad[a])
    assert planner.related_slots(problem, template, dup) == list(dup.slots)  # nothing filled: nothing more


# ---- constraint hook -----------------------------------------------------------------------


def test_logits_hook_masks_peer_digits(planner, tok):
    problem = planner.parse(PUZZLE_4)
    template = planner.encode(problem, tok)
    hook = planner.constraints(problem, template, tok).logits_hook
    digit = {d: tok.convert_tokens_to_ids(str(d)) for d in range(1, 5)}
    pos = {name: ps[0] for name, ps in template.slots.items()}
    x = template.input_ids.repeat(2, 1)  # [B, N]
    x[1, pos["r1c2"]] = digit[3]  # row 1 of the batch has revealed r1c2 = 3
    x[1, pos["r4c4"]] = digit[4]
    logits = torch.randn(2, len(template), len(tok))
    before = logits.clone()
    out = hook(0, x, logits)
    low = torch.finfo(out.dtype).min
    banned = out == low
    # r1c3 sees clues 1 (row), 2 (box r2c4) -> banned in both rows; 3 too once r1c2 shows it
    assert banned[0, pos["r1c3"], [digit[1], digit[2]]].all() and not banned[0, pos["r1c3"], [digit[3], digit[4]]].any()
    assert banned[1, pos["r1c3"], [digit[1], digit[2], digit[3]]].all() and not banned[1, pos["r1c3"], digit[4]]
    assert not banned[1, pos["r1c2"]].any()  # a revealed cell is not touched
    assert not banned[:, template.anchor_mask].any()
    only_digits = torch.zeros(len(tok), dtype=torch.bool)
    only_digits[list(digit.values())] = True
    assert not banned[..., ~only_digits].any()
    assert torch.equal(out[~banned], before[~banned])


def test_logits_hook_leaves_dead_cells_and_prefix(planner, tok):
    problem = planner.parse("1200\n0000\n0000\n0000")
    template = planner.encode(problem, tok)
    hook = planner.constraints(problem, template, tok).logits_hook
    pos = {name: ps[0] for name, ps in template.slots.items()}
    x = template.input_ids.clone()
    x[pos["r2c3"]] = tok.convert_tokens_to_ids("3")
    x[pos["r2c4"]] = tok.convert_tokens_to_ids("4")  # r1c3 / r1c4 now see 1, 2, 3, 4: no candidate left
    prefix = torch.full((5,), tok.pad_token_id)
    x = torch.cat([prefix, x])[None]  # a prompt before the template
    logits = torch.zeros(1, x.shape[1], len(tok))
    out = hook(0, x, logits)
    assert not (out[0, 5 + pos["r1c3"]] < 0).any() and not (out[0, 5 + pos["r1c4"]] < 0).any()
    assert (out[0, 5 + pos["r3c3"]] < 0).nonzero().flatten().tolist() == [tok.convert_tokens_to_ids("3")]  # column 3


def test_logits_hook_forces_hidden_singles(planner, tok):
    # Column 2 holds a 1 (r3c2) and box 2 holds a 1 (r2c4): in row 1 only r1c1 can take 1,
    # although r1c1 itself still has all four digits open (not a naked single).
    problem = planner.parse("0000\n0001\n0100\n0000")
    template = planner.encode(problem, tok)
    hook = planner.constraints(problem, template, tok).logits_hook
    pos = {name: ps[0] for name, ps in template.slots.items()}
    digits = [tok.convert_tokens_to_ids(str(d)) for d in range(1, 5)]
    out = hook(0, template.input_ids[None].clone(), torch.zeros(1, len(template), len(tok)))
    open_digits = lambda name: [d + 1 for d, tid in enumerate(digits) if out[0, pos[name], tid] == 0]  # noqa: E731
    assert open_digits("r1c1") == [1]
    assert 1 not in open_digits("r1c2") and 1 not in open_digits("r1c3")  # peers of the 1s
    assert len(open_digits("r4c4")) > 1  # nothing forced there yet


# ---- generation and rendering --------------------------------------------------------------


@pytest.mark.parametrize("size", [4, 6, 9])
def test_examples_have_unique_solutions(planner, size):
    examples = planner.examples(12 if size < 9 else 5, random.Random(size), sizes=(size,))
    geo = geometry(size, *BOX_SHAPES[size])
    for e in examples:
        assert isinstance(e.problem, SudokuProblem) and e.problem.size == size
        assert planner.check(e.problem, e.solution) == []
        assert ["".join(map(str, s)) for s in solutions(geo, e.problem.cells, limit=2)] == [e.solution]
    clues = {len(e.problem.givens) for e in examples}
    assert len(clues) > 1  # a range of difficulties


def test_examples_mix_sizes():
    sizes = {e.problem.size for e in SudokuPlanner().examples(30, random.Random(0))}
    assert sizes == {4, 6, 9}
    assert {e.problem.size for e in SudokuPlanner(sizes=(6,)).examples(3, random.Random(0))} == {6}
    with pytest.raises(ValueError):
        SudokuPlanner(sizes=(5,))


def test_render(planner):
    p9 = planner.parse(TOP95_FIRST)
    lines = planner.render(p9, TOP95_FIRST).splitlines()
    assert len(lines) == 11 and {len(line) for line in lines} == {21}
    assert lines[0] == "4 . . | . . . | 8 . 5" and lines[3] == "------+-------+------"
    lines = planner.render(planner.parse(PUZZLE_4), SOLUTION_4).splitlines()
    assert lines == ["1 2 | 3 4", "3 4 | 1 2", "----+----", "4 1 | 2 3", "2 3 | 4 1"]
    lines = planner.render(planner.parse("1" + "." * 35), "1" + "." * 35).splitlines()
    assert len(lines) == 8 and lines[0] == "1 . . | . . ." and lines[2] == "------+------"
