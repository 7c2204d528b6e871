"""The models shipped in the package: each matches its planner and, with it, solves easy problems."""

from __future__ import annotations

import random

import pytest

from dream_agent import DiffusionEngine, load_model
from dream_agent.model import bundled_models
from dream_agent.refine import solve
from planners import get_planner

SHIPPED = sorted(n for n in bundled_models() if not n.startswith("tasks-"))  # tasks models: test_tasks_bundled.py


def test_every_shipped_planner_model_is_bundled():
    assert {"sudoku", "countdown"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_model_matches_its_planner_and_has_a_card(name):
    planner, lm = get_planner(name), load_model(name, device="cpu")
    ids = lm.tokenizer.convert_tokens_to_ids(list(planner.alphabet))
    assert lm.tokenizer.unk_token_id not in ids  # one token for every character the planner writes
    card = (bundled_models()[name] / "README.md").read_text()
    for heading in ("- Command: `dream-agent train", "- Data:", "- Steps:", "- Wall time:", "Model alone"):
        assert heading in card


@pytest.mark.parametrize("name, problems", [
    ("sudoku", ["1.34 34.2 2.4. 4.2.", "0140 3401 4300 0234"]),
    ("countdown", ["86,28,13,31,96", "3 5 8 -> 16", "25 4 -> 100"]),
])
def test_full_system_solves_easy_problems(name, problems):
    planner = get_planner(name)
    engine = DiffusionEngine(load_model(name, device="cpu"))
    for text in problems:
        problem = planner.parse(text)
        result = solve(engine, planner, problem)
        assert result.valid and planner.check(problem, result.solution) == [], (text, result.solution)


def test_countdown_solving_never_calls_the_training_data_generator(monkeypatch):
    # The generator decides reachability exhaustively and writes reference paths: a solver. It
    # makes training data only; the model, the hook and the validator must solve without it.
    import planners.countdown_generator as generator

    def refuse(*args, **kwargs):
        raise AssertionError("the solve path called the training-data generator")

    for name in ("reaches", "random_path", "reachable"):
        monkeypatch.setattr(generator, name, refuse)
    planner = get_planner("countdown")
    engine = DiffusionEngine(load_model("countdown", device="cpu"))
    problem = planner.parse("75,3,9,14,49")
    assert solve(engine, planner, problem).valid


def test_countdown_model_alone_solves_some_three_number_problems():
    # The shipped model, alone, fills some 3-number problems right (54% of Dream's cd3);
    # a random-weight model of this shape fills none of them.
    planner = get_planner("countdown")
    engine = DiffusionEngine(load_model("countdown", device="cpu"))
    assert engine.settings.alg == "maskgit_plus"  # the order its generation_config.json ships (model card)
    examples = [ex for ex in planner.examples(200, random.Random(7)) if len(ex.problem.numbers) == 3][:30]
    alone = sum(solve(engine, planner, ex.problem, max_rounds=1).model_only_valid for ex in examples)
    assert alone >= 2
