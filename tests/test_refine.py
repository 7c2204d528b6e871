"""The refinement loop on tiny random models: what the hooks, the validators and the bookkeeping do.

A random model knows nothing, so whatever gets solved here is the work of the toolkit's own
mechanisms (constraint hooks, re-masking, resampling), and whatever the model writes on its
own is noise: the tests check the loop's behaviour, not the model's skill.
"""

from __future__ import annotations

import random

import pytest
import torch

from dream_agent import DiffusionEngine, DreamModel
from dream_agent.model import DreamDiffusionLM
from dream_agent.refine import solve
from dream_agent.tokenization import char_tokenizer
from dream_agent.training.small import small_config
from planners import get_planner
from planners.sudoku import generate

TOP95_FIRST = "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......"
UNSOLVABLE_4 = "12.. ...4 ..3. ...."  # r1c3 has no candidate, though no two clues conflict


def random_engine(planner) -> DiffusionEngine:
    tok = char_tokenizer(planner.alphabet)
    torch.manual_seed(0)
    model = DreamModel(small_config(tok, size="tiny", max_length=128))
    return DiffusionEngine(DreamDiffusionLM(model, tok, name=f"random-{planner.name}"))


@pytest.fixture(scope="module")
def sudoku():
    planner = get_planner("sudoku")
    return planner, random_engine(planner)


@pytest.fixture(scope="module")
def countdown():
    planner = get_planner("countdown")
    return planner, random_engine(planner)


class Recorder:
    """`on_step` callback keeping every frame: (round, step, x row, template)."""

    def __init__(self):
        self.frames: list[tuple[int, int | None, list[int], object]] = []

    def __call__(self, round_, step, x, template):
        self.frames.append((round_, step, x[: len(template)].tolist(), template))

    def round_start(self, round_):
        return next(f for f in self.frames if f[0] == round_ and f[1] is None)

    def round_end(self, round_):
        return [f for f in self.frames if f[0] == round_][-1]


def digit_of(planner, engine, problem, base):
    """Template position -> cell, and token id -> digit (0 for anything else)."""
    tok = engine.tokenizer
    cells = planner.slot_cells(problem, base)
    digits = {tok.convert_tokens_to_ids(str(d)): d for d in range(1, problem.size + 1)}
    return cells, lambda token: digits.get(token, 0)


def grid_of(problem, cells, digit, ids):
    grid = list(problem.cells)
    for pos, cell in cells.items():
        grid[cell] = digit(ids[pos])
    return grid


# ---- sudoku -------------------------------------------------------------------------------


def test_full_system_solves_small_puzzles_with_a_random_model(sudoku):
    planner, engine = sudoku
    rng = random.Random(7)
    for _ in range(6):
        cells, _ = generate(4, rng, clues=10)  # six blanks, unique solution
        problem = planner.parse("".join(map(str, cells)))
        result = solve(engine, planner, problem)
        assert result.valid and result.violations == []
        assert planner.check(problem, result.solution) == []
        assert all(result.solution[i] == str(d) for i, d in problem.givens.items())  # clues kept


def test_constraint_hooks_forbid_digits_a_peer_already_holds(sudoku):
    planner, engine = sudoku
    problem = planner.parse(TOP95_FIRST)
    base = planner.encode(problem, engine.tokenizer)
    cells, digit = digit_of(planner, engine, problem, base)
    rec = Recorder()
    result = solve(engine, planner, problem, max_rounds=2, search=False, on_step=rec)
    assert result.rounds == 2  # the random model cannot fill 64 cells alone

    def conflicts(round_):
        """Cells revealed in `round_` with a digit a peer already held in the frame before."""
        frames = [f for f in rec.frames if f[0] == round_]
        out = []
        for (_, _, before, _), (_, _, after, _) in zip(frames, frames[1:]):
            grid = grid_of(problem, cells, digit, before)
            for pos, cell in cells.items():
                if digit(before[pos]) == 0 and (d := digit(after[pos])):
                    held = {grid[j] for j in problem.peers(cell)}
                    if d in held and len(held - {0}) < problem.size:  # a cell with no candidate is left free
                        out.append(cell)
        return out

    assert conflicts(1), "the unconstrained model-only pass should show what the hooks prevent"
    assert conflicts(2) == []


def test_violations_remask_the_blamed_cells_and_their_related_ones(sudoku):
    planner, engine = sudoku
    problem = planner.parse(TOP95_FIRST)
    base = planner.encode(problem, engine.tokenizer)
    cells, digit = digit_of(planner, engine, problem, base)
    rec = Recorder()
    # Without hooks, round 2 re-masks exactly what round 1's violations blame (with hooks it starts over).
    result = solve(engine, planner, problem, max_rounds=2, constraints=False, on_step=rec)
    assert result.rounds == 2
    first_fill = rec.round_end(1)[2]
    violations = planner.check(problem, result.history[0])
    assert violations and planner.decode(problem, base, first_fill) == result.history[0]

    start = rec.round_start(2)[2]
    remasked = {pos for pos in cells if start[pos] == engine.model.mask_token_id}
    named = {base.slots[s][0] for v in violations for s in v.slots}
    assert named <= remasked
    # related cells go too: those sharing a unit with a blamed cell (a fix may have to move them)
    assert remasked > named
    blamed_cells = {cells[p] for p in named}
    for pos in remasked - named:
        assert any(cells[pos] in problem.peers(c) for c in blamed_cells)
    # everything else keeps round 1's fill, and anchors never change
    for pos in range(len(base)):
        if pos not in remasked:
            assert start[pos] == first_fill[pos]


def test_anchors_never_change(sudoku, countdown):
    for (planner, engine), text in ((sudoku, TOP95_FIRST), (countdown, "86 28 13 31 -> 96")):
        problem = planner.parse(text)
        base = planner.encode(problem, engine.tokenizer)
        anchors = base.anchor_mask.nonzero().flatten().tolist()
        expected = base.input_ids.tolist()
        for search, rounds in ((False, {1, 2, 3}), (True, {1, 2})):
            rec = Recorder()
            solve(engine, planner, problem, max_rounds=3, search=search, on_step=rec)
            assert {f[0] for f in rec.frames} == rounds
            for _, _, ids, _ in rec.frames:
                assert [ids[p] for p in anchors] == [expected[p] for p in anchors]


@pytest.mark.parametrize("name, text, steps", [
    ("sudoku", UNSOLVABLE_4, None),
    ("sudoku", "1.34 34.2 2.4. 4.2.", 2),
    ("countdown", "86 28 13 31 -> 96", 3),
    ("countdown", "1 1 -> 99", None),  # impossible: never valid
])
def test_result_bookkeeping_is_consistent(sudoku, countdown, name, text, steps):
    planner, engine = sudoku if name == "sudoku" else countdown
    problem = planner.parse(text)
    rec = Recorder()
    result = solve(engine, planner, problem, steps=steps, max_rounds=4, search=False, on_step=rec)

    assert result.rounds == len(result.history) == sum(f[1] is None for f in rec.frames)
    assert result.nfe == sum(f[1] is not None for f in rec.frames)  # one frame per forward pass
    if steps is not None:
        assert result.nfe <= steps * result.rounds
    assert result.model_only_valid == (planner.check(problem, result.history[0]) == [])
    assert result.model_only_solution == result.history[0]
    assert result.valid == (result.violations == [])
    assert [v.message for v in result.violations] == [v.message for v in planner.check(problem, result.solution)]
    # the answer returned is the round with the fewest violations; rounds stop at the first valid one
    counts = [len(planner.check(problem, h)) for h in result.history]
    assert len(result.violations) == min(counts)
    if result.valid:
        assert counts.index(0) == result.rounds - 1
    else:
        assert result.rounds == 4
    d = result.to_dict()
    assert set(d) == {"solution", "valid", "violations", "stats"}
    assert set(d["stats"]) == {"nfe", "rounds", "seconds", "model_only_valid", "exhausted"}
    assert all(set(v) == {"message", "slots"} for v in d["violations"])


def test_unsolvable_puzzle_spends_the_budget_and_names_the_fault(sudoku):
    planner, engine = sudoku
    result = solve(engine, planner, planner.parse(UNSOLVABLE_4), max_rounds=3, search=False)
    assert not result.valid and result.rounds == 3
    assert result.violations and all(v.message for v in result.violations)
    assert not result.exhausted  # re-masking rounds prove nothing
    searched = solve(engine, planner, planner.parse(UNSOLVABLE_4), max_rounds=3)
    masks = 16 - 4
    assert not searched.valid and searched.violations
    assert searched.nfe <= masks + 2 * masks  # the model-only pass, then the search's budget
    assert searched.exhausted and searched.to_dict()["stats"]["exhausted"]  # propagation empties r1c3: nothing to try


def test_search_solves_a_hard_9x9_with_a_random_model_within_budget(sudoku):
    # A random model ranks nothing well, so this is the toolkit's mechanism alone: propagation
    # prunes, backtracking re-masks to the most probable untried choice. A trained model needs fewer passes.
    planner, engine = sudoku
    problem = planner.parse(TOP95_FIRST)
    base = planner.encode(problem, engine.tokenizer)
    cells, digit = digit_of(planner, engine, problem, base)
    rec = Recorder()
    result = solve(engine, planner, problem, max_rounds=40, on_step=rec)
    assert result.valid and planner.check(problem, result.solution) == []
    assert not result.model_only_valid
    assert result.nfe <= 64 + 39 * 64
    assert result.rounds == len(result.history) >= 2 and result.history[-1] == result.solution
    # every frame of the search keeps the clues and only ever holds digits a peer does not hold
    # at the time it is written (a cell is written only when propagation or the model picks it)
    for _, _, ids, _ in (f for f in rec.frames if f[0] == 2):
        grid = grid_of(problem, cells, digit, ids)
        assert all(grid[i] == d for i, d in problem.givens.items())


def test_countdown_answers_in_dreams_format(countdown):
    planner, engine = countdown
    problem = planner.parse("86,28,13,31,96")
    result = solve(engine, planner, problem, max_rounds=2)
    steps = result.solution.split(",")
    assert len(steps) == 3 and steps[-1].endswith("=96")  # the target is an anchor
    impossible = solve(engine, planner, planner.parse("1 1 -> 99"), max_rounds=2)
    assert not impossible.valid and impossible.solution.endswith("=99") and impossible.exhausted


def test_model_only_budget_and_argument_errors(sudoku):
    planner, engine = sudoku
    problem = planner.parse(TOP95_FIRST)
    result = solve(engine, planner, problem, max_rounds=1)
    assert result.rounds == 1 and result.valid == result.model_only_valid
    assert 1 <= result.nfe <= 64  # one pass per masked cell at most
    with pytest.raises(ValueError, match="max_rounds"):
        solve(engine, planner, problem, max_rounds=0)
    with pytest.raises(ValueError, match="samples"):
        solve(engine, planner, problem, samples=0)


def test_same_seed_same_run_and_samples(sudoku):
    planner, engine = sudoku
    problem = planner.parse(UNSOLVABLE_4)
    a = solve(engine, planner, problem, max_rounds=4, seed=3)
    b = solve(engine, planner, problem, max_rounds=4, seed=3)
    assert a.history == b.history and a.nfe == b.nfe
    batched = solve(engine, planner, planner.parse("1.34 34.2 2.4. 4.2."), samples=3)
    assert batched.valid
