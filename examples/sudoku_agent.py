"""An agent-style flow: a request is routed to the planner tool that can read it, the tool is called as an
agent's tool call, and its JSON answer becomes the reply.

    python examples/sudoku_agent.py                 # the bundled sudoku model if installed, else a tiny random one
    python examples/sudoku_agent.py --llm-router --model Dream-org/Dream-v0-Instruct-7B
                                                    # Dream picks the tool (always a valid name: structured output)
"""

from __future__ import annotations

import argparse
import json
from typing import Literal

from _models import planner_engine, text_engine
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from pydantic import Field, create_model

from dream_agent.errors import ProblemError
from dream_agent.integrations.langchain import ChatDream, planner_tools
from planners import get_planner

PUZZLE = """\
53..7....
6..195...
.98....6.
8...6...3
4..8.3..1
7...2...6
.6....28.
...419..5
....8..79"""


def find_problem(text: str, names: list[str]) -> tuple[str, str] | None:
    """Rule-based routing: the first planner whose parser reads the message from some line on."""
    lines = text.splitlines()
    for name in names:
        planner = get_planner(name)
        for i in range(len(lines)):
            chunk = "\n".join(lines[i:])
            try:
                planner.parse(chunk)
            except ProblemError:
                continue
            return name, chunk
    return None


def llm_route(chat: ChatDream, request: str, tool_names: list[str]) -> str:
    """Model-based routing: structured output guarantees the answer is one of the tool names."""
    route = create_model("Route", tool=(Literal[tuple(tool_names)], Field(description="the tool to call")))
    return chat.with_structured_output(route).invoke([HumanMessage(f"Tools: {', '.join(tool_names)}.\n{request}")]).tool


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a sudoku model path (or, with --llm-router, a chat model for routing)")
    parser.add_argument("--tiny", action="store_true", help="use tiny random models even if others are available")
    parser.add_argument("--llm-router", action="store_true", help="let a chat model choose the tool")
    parser.add_argument("--max-rounds", type=int, default=10, help="refinement rounds of the solver")
    args = parser.parse_args(argv)

    engine, note = planner_engine(get_planner("sudoku"), None if args.llm_router else args.model, args.tiny)
    print(f"[sudoku model: {note}]")
    tools = {t.name: t for t in planner_tools(engines={"sudoku": engine}, max_rounds=args.max_rounds)}
    request = HumanMessage(f"Please solve this sudoku:\n{PUZZLE}")
    print(f"user: {request.content}\n")

    # 1. Route: which tool, with which problem text.
    found = find_problem(request.content, [n.removeprefix("solve_") for n in tools])
    if found is None:
        print("assistant: no tool can read that request.")
        return
    planner_name, problem = found
    tool_name = f"solve_{planner_name}"
    if args.llm_router:
        chat_engine, chat_note = text_engine(args.model, args.tiny)
        print(f"[router model: {chat_note}]")
        tool_name = llm_route(ChatDream(engine=chat_engine), request.content, list(tools))
    print(f"router -> {tool_name}")

    # 2. The tool call, in the shape an agent's chat model emits it, and the tool's message back.
    call = AIMessage(content="", tool_calls=[{"name": tool_name, "args": {"problem": problem}, "id": "call_1"}])
    result: ToolMessage = tools[tool_name].invoke({**call.tool_calls[0], "type": "tool_call"})
    print(f"tool {tool_name} -> {result.content[:200]}{'...' if len(result.content) > 200 else ''}\n")

    # 3. The reply.
    try:
        answer = json.loads(result.content)
    except json.JSONDecodeError:  # the tool could not read the problem: its message is the reply
        print(f"assistant: {result.content}")
        return
    planner = get_planner(planner_name)
    grid = planner.render(planner.parse(problem), answer["solution"])
    left = len(answer["violations"])
    verdict = "solved and checked" if answer["valid"] else f"not solved ({left} rule violations left)"
    stats = answer["stats"]
    print(f"assistant: {verdict} in {stats['rounds']} round(s), {stats['nfe']} forward passes:\n{grid}")


if __name__ == "__main__":
    main()
