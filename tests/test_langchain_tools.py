"""Planner tools: one StructuredTool a registered planner, calling refine.solve; checked for plumbing and
JSON shape with tiny random models (which will not solve anything)."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import StructuredTool

from dream_agent import DiffusionEngine
from dream_agent.integrations.langchain import planner_tool, planner_tools
from dream_agent.integrations.langchain import tools as tools_module
from planners import available_planners, get_planner

from .langchain_fixtures import tiny_lm

SUDOKU = "1000\n0002\n4003\n0000"
COUNTDOWN = "86,28,13,31,96"


def planner_engine(name: str) -> DiffusionEngine:
    return DiffusionEngine(tiny_lm(get_planner(name).alphabet))  # a random model over the planner's alphabet


@pytest.fixture(scope="module")
def tools() -> dict[str, StructuredTool]:
    engines = {name: planner_engine(name) for name in ("sudoku", "countdown")}
    return {t.name: t for t in planner_tools(engines=engines, max_rounds=2)}


def test_every_registered_planner_is_a_tool(tools):
    assert {f"solve_{n}" for n in available_planners()} <= set(tools)
    tool = tools["solve_sudoku"]
    assert list(tool.args) == ["problem"] and tool.args_schema.model_json_schema()["required"] == ["problem"]
    assert "Sudoku" in tool.description


@pytest.mark.parametrize("name, problem", [("sudoku", SUDOKU), ("countdown", COUNTDOWN)])
def test_a_tool_returns_the_solve_result(tools, name, problem):
    out = tools[f"solve_{name}"].invoke({"problem": problem})
    assert set(out) == {"solution", "valid", "violations", "stats"}
    assert isinstance(out["solution"], str) and isinstance(out["valid"], bool)
    assert 1 <= out["stats"]["rounds"] <= 2 and out["stats"]["nfe"] >= 1
    assert all(isinstance(v, dict) for v in out["violations"])
    json.dumps(out)  # an agent gets it as JSON


def test_a_tool_call_gives_a_tool_message(tools):
    call = {"name": "solve_sudoku", "args": {"problem": SUDOKU}, "id": "call_1", "type": "tool_call"}
    msg = tools["solve_sudoku"].invoke(call)
    assert isinstance(msg, ToolMessage) and msg.tool_call_id == "call_1"
    assert json.loads(msg.content)["solution"]


def test_a_bad_problem_comes_back_as_a_message(tools):
    out = tools["solve_sudoku"].invoke({"problem": "not a sudoku"})
    assert isinstance(out, str) and "unexpected character" in out


async def test_async_tool(tools):
    out = await tools["solve_countdown"].ainvoke({"problem": COUNTDOWN})
    assert set(out) >= {"solution", "valid"}


def test_the_bundled_model_loads_on_first_call(monkeypatch):
    loaded = []

    def fake_load(name, device="auto", **kwargs):
        loaded.append(name)
        return tiny_lm(get_planner("sudoku").alphabet)

    monkeypatch.setattr(tools_module, "load_model", fake_load)
    tool = planner_tool("sudoku", max_rounds=1)
    assert loaded == []  # building the tool loads nothing
    tool.invoke({"problem": SUDOKU})
    tool.invoke({"problem": SUDOKU})
    assert loaded == ["sudoku"]  # the planner's bundled model, by name, once
