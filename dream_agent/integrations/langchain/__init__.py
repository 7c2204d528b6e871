"""LangChain integration: dream-agent models as LangChain LLMs and chat models, planners as tools.

    from dream_agent.integrations.langchain import ChatDream, DreamLLM, planner_tools

| name                    | module          | what                                                        |
|-------------------------|-----------------|-------------------------------------------------------------|
| `DreamLLM`              | `llm.py`        | `BaseLLM`: text in, text out; infill of `[MASK:n]` holes    |
| `ChatDream`             | `chat.py`       | `BaseChatModel`: messages in, a message out                 |
| `with_structured_output`| `structured.py` | a schema's JSON skeleton anchored, the values filled        |
| `planner_tools`         | `tools.py`      | each registered planner as a `StructuredTool`               |
| `DreamParams`           | `params.py`     | the fields both model classes share                         |
"""

from .chat import ChatDream
from .llm import DreamLLM
from .params import DEFAULT_MODEL, DreamParams
from .schema import JsonSpec
from .structured import JsonSkeletonParser, fill_json
from .structured import structured_output as with_structured_output
from .tools import planner_tool, planner_tools

__all__ = [
    "DEFAULT_MODEL", "ChatDream", "DreamLLM", "DreamParams", "JsonSkeletonParser", "JsonSpec", "fill_json",
    "planner_tool", "planner_tools", "with_structured_output",
]
