"""`ChatDream`: a dream-agent model as a LangChain chat model (`BaseChatModel`).

    chat = ChatDream(max_new_tokens=128)                 # Dream-v0-Instruct-7B, loaded on the first call
    chat.invoke([("system", "Be brief."), ("human", "Name a prime.")])
    chat.with_structured_output(Person).invoke("Describe Ada Lovelace.")      # always a valid Person
    chat.invoke([("human", "Finish it."), ("ai", "def add(a, b):\\n    return [MASK:4]")])  # infill

Messages become a prompt through the tokenizer's chat template (Dream-Instruct has one); a tokenizer
without one (the small models) gets a plain "User: ...\\nAssistant: " transcript.

| LangChain asks for          | here                                                                   |
|-----------------------------|------------------------------------------------------------------------|
| `_generate`                 | the reply: denoised after the prompt, ended at end-of-sequence/stop;   |
|                             | if the last message holds `[MASK:n]` holes: that message, filled in    |
| `_stream`                   | the reply as it becomes final (block by block with `block_length`);    |
|                             | LangChain fires `on_llm_new_token` for each chunk                      |
| `_agenerate`, `_astream`    | LangChain's defaults: the two above in an executor thread              |
| `with_structured_output`    | the schema's JSON skeleton anchored, values filled (`structured.py`)   |
| `_identifying_params`, ...  | `params.py`, shared with `DreamLLM`                                    |
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable

from dream_agent.engine import MASK_HOLE
from dream_agent.text import chat_prompt

from .generation import Completion, fill_holes, generate, has_holes, put_holes, stream
from .params import DreamParams
from .structured import DEFAULT_ROUNDS, fill_json, structured_output

ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "function"}


def message_dicts(messages: list[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages -> [{"role", "content"}], text only (a diffusion LM here reads no images)."""
    out = []
    for m in messages:
        role = getattr(m, "role", None) if m.type == "chat" else ROLES.get(m.type, m.type)
        if isinstance(m.content, str):
            text = m.content
        else:
            pieces = []
            for block in m.content:
                if isinstance(block, str):
                    pieces.append(block)
                elif isinstance(block, dict) and block.get("type") == "text":
                    pieces.append(block.get("text", ""))
                else:
                    kind = block.get("type") if isinstance(block, dict) else type(block).__name__
                    raise ValueError(f"ChatDream reads text only; a {role} message holds a {kind!r} block")
            text = "".join(pieces)
        out.append({"role": role or "user", "content": text})
    return out


class ChatDream(DreamParams, BaseChatModel):
    """A masked diffusion LM for LangChain's messages-in, message-out interface. Fields: see `DreamParams`."""

    @property
    def _llm_type(self) -> str:
        return "dream-diffusion-chat"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return self._ls_params_for("chat", stop, kwargs)

    def with_structured_output(self, schema: Any, *, include_raw: bool = False, **kwargs: Any) -> Runnable:
        """Runnable: input -> an instance of `schema` (pydantic model, TypedDict or JSON schema dict).

        Takes `method` ("json_schema", "json_mode", "function_calling": all the anchored skeleton), `strict`
        (ignored: the skeleton is always strict) and `max_rounds` (fills of the fields at fault, default 3).
        """
        return structured_output(self, schema, include_raw=include_raw, **kwargs)

    # ---- generation ----------------------------------------------------------------------------------

    def _one(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> AIMessage | None:
        """Structured output or infill (one fill, no stream); None for a plain reply."""
        spec, max_rounds = kwargs.get("structured_output"), kwargs.get("max_rounds", DEFAULT_ROUNDS)
        options = {k: v for k, v in kwargs.items() if k not in ("structured_output", "max_rounds")}
        dicts = message_dicts(messages)
        last = dicts[-1]["content"] if dicts else ""
        if spec is None and not has_holes(last):
            return None
        overrides, _, steps = self._call_options(options)
        engine = self.get_engine()
        if spec is not None:
            fill = fill_json(engine, chat_prompt(engine.tokenizer, dicts, reply=True), spec, steps=steps,
                             overrides=overrides, max_rounds=max_rounds)
            return self._message(fill.text, fill.info())
        # Holes in the last message: fill the whole prompt; the last message's holes are the last ones.
        values, nfe = fill_holes(engine, chat_prompt(engine.tokenizer, dicts, reply=False), steps=steps,
                                 overrides=overrides)
        own = len(MASK_HOLE.findall(last))
        return self._message(put_holes(last, values[len(values) - own:]), {"finish_reason": "stop", "nfe": nfe})

    def _message(self, text: str, info: dict[str, Any], cls=AIMessage, **extra: Any):
        usage = None
        if "prompt_tokens" in info:
            usage = {"input_tokens": info["prompt_tokens"], "output_tokens": info["completion_tokens"],
                     "total_tokens": info["prompt_tokens"] + info["completion_tokens"]}
        return cls(content=text, usage_metadata=usage, response_metadata={"model_name": self.model, **info}, **extra)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        message = self._one(messages, kwargs)
        if message is None:
            overrides, max_new, steps = self._call_options(kwargs)
            engine = self.get_engine()
            prompt = chat_prompt(engine.tokenizer, message_dicts(messages), reply=True)
            done = generate(engine, prompt, max_new, stops=self._stops(stop), steps=steps, overrides=overrides)
            message = self._message(done.text, done.info())
        return ChatResult(generations=[ChatGeneration(message=message)], llm_output={"model_name": self.model})

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        whole = self._one(messages, kwargs)
        if whole is not None:
            yield ChatGenerationChunk(message=AIMessageChunk(
                content=whole.content, usage_metadata=whole.usage_metadata,
                response_metadata=whole.response_metadata, chunk_position="last"))
            return
        overrides, max_new, steps = self._call_options(kwargs)
        engine = self.get_engine()
        prompt = chat_prompt(engine.tokenizer, message_dicts(messages), reply=True)
        for piece in stream(engine, prompt, max_new, stops=self._stops(stop), steps=steps, overrides=overrides):
            if isinstance(piece, Completion):  # the last chunk carries usage and the finish reason
                last = self._message("", piece.info(), AIMessageChunk, chunk_position="last")
                chunk = ChatGenerationChunk(message=last)
            else:
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager is not None:  # LangChain's own stream() passes none and fires the callback itself
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
