"""langchain-tests' standard *integration* suite for chat models, run offline against a tiny random ChatDream.

The suite is meant for live models; a local random one passes it too, which is the check that ChatDream
drops into code written for other chat models: invoke, batch, stream, async, stream events, stop
sequences, usage metadata, multi-turn conversations and structured output (pydantic 1 and 2, TypedDict,
JSON schema, json_mode). Capabilities ChatDream does not have are declared below, so their tests skip.
"""

from __future__ import annotations

from typing import Any

from langchain_tests.integration_tests import ChatModelIntegrationTests

from dream_agent.integrations.langchain import ChatDream

from .langchain_fixtures import tiny_engine


class TestChatDreamIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatDream]:
        return ChatDream

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"engine": tiny_engine(), "model": "tiny-char", "steps": 8, "max_new_tokens": 16}

    @property
    def has_tool_calling(self) -> bool:
        return False  # tools run through planner tools, not through the model's own output

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True  # with a schema: the same anchored skeleton

    @property
    def supports_model_override(self) -> bool:
        return False  # one engine an instance; another model is another ChatDream
