"""The LangChain examples run, on tiny random models, and say so."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def example(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))  # the examples import their `_models` helper as scripts do

    def load(name: str):
        return importlib.import_module(name)

    return load


def test_langchain_chain(example, capsys):
    example("langchain_chain").main(["--tiny"])
    out = capsys.readouterr().out
    assert "tiny random model" in out
    for label in ("answer:", "streamed:", "chat:", "infill: 'def add(a, b):\\n    return "):
        assert label in out


def test_structured_output(example, capsys):
    example("structured_output").main(["--tiny"])
    out = capsys.readouterr().out
    assert "tiny random model" in out and "valid Recipe" in out
    recipe = json.loads(out[out.index("{"):])
    assert len(recipe["ingredients"]) == 3 and recipe["difficulty"] in ("easy", "medium", "hard")


def test_sudoku_agent(example, capsys):
    example("sudoku_agent").main(["--tiny", "--max-rounds", "2"])
    out = capsys.readouterr().out
    assert "tiny random model" in out and "router -> solve_sudoku" in out
    assert "tool solve_sudoku -> {" in out and "assistant:" in out
