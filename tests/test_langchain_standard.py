"""langchain-tests' standard unit suite for chat models, run against a tiny random ChatDream.

langchain-tests 1.1.9 has no standard suite for plain LLMs; `test_langchain_llm.py` covers DreamLLM.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.unit_tests import ChatModelUnitTests

from dream_agent.integrations.langchain import ChatDream

from .langchain_fixtures import tiny_engine


class TestChatDreamStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatDream]:
        return ChatDream

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # `model` is only a label next to an engine; a fixed one keeps serialized output stable.
        return {"engine": tiny_engine(), "model": "tiny-char", "steps": 4}

    @property
    def has_tool_calling(self) -> bool:
        return False  # a diffusion model here fills templates; tool use goes through planner tools instead

    @property
    def has_structured_output(self) -> bool:
        return True  # the anchored JSON skeleton, for every `method`

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @pytest.mark.xfail(reason="langchain-core 1.7's load(allowed_objects='all') admits only classes in its own "
                              "mapping; ChatDream round-trips with allowed_objects=[ChatDream] (test_langchain_chat)",
                       raises=ValueError, strict=True)
    def test_serdes(self, model, snapshot) -> None:
        super().test_serdes(model, snapshot)
