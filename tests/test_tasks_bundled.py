"""The bundled tasks models: each ships its domain and settings, and with them solves an easy IPC problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dream_agent import DiffusionEngine, load_model
from dream_agent.model import bundled_models
from dream_agent.refine import solve
from planners.tasks.planner import TasksPlanner
from planners.tasks.vocab import check_vocabulary, object_limits

PDDL = Path("/work/shared/data/pddl")
if not PDDL.is_dir():
    PDDL = Path(__file__).resolve().parents[2] / "shared" / "data" / "pddl"
EASY = {"tasks-blocks": PDDL / "blocks" / "probBLOCKS-4-0.pddl", "tasks-gripper-strips": PDDL / "gripper" / "prob01.pddl"}
SHIPPED = sorted(n for n in bundled_models() if n.startswith("tasks-"))


def test_the_blocksworld_model_is_bundled():
    assert "tasks-blocks" in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_model_ships_domain_settings_and_card(name):
    path = bundled_models()[name]
    settings = json.loads((path / "tasks.json").read_text())
    planner = TasksPlanner.for_domain(path / "domain.pddl").configure(model_dir=path)
    assert f"tasks-{planner.domain.name}" == name and settings["max_steps"] == planner.max_steps
    lm = load_model(name, device="cpu")
    check_vocabulary(lm.tokenizer, planner.domain)
    assert object_limits(lm.tokenizer, planner.domain) == settings["max_objects"]
    card = (path / "README.md").read_text()
    for heading in ("- Command: `dream-agent train", "- Data:", "- Steps:", "- Wall time:", "Model alone"):
        assert heading in card


@pytest.mark.parametrize("name", [n for n in SHIPPED if n in EASY])
def test_full_system_solves_an_easy_ipc_problem(name):
    path = bundled_models()[name]
    planner = TasksPlanner.for_domain(path / "domain.pddl").configure(model_dir=path)
    problem = planner.problem(EASY[name])
    result = solve(DiffusionEngine(load_model(name, device="cpu")), planner, problem)
    assert result.valid and planner.check(problem, result.solution) == []
