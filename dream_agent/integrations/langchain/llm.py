"""`DreamLLM`: a dream-agent model as a LangChain text-completion LLM (`BaseLLM`).

    llm = DreamLLM(max_new_tokens=64)                  # Dream-v0-Instruct-7B, loaded on the first call
    llm = DreamLLM(engine=DiffusionEngine(my_model))   # any DiffusionLM
    (PromptTemplate.from_template("Q: {q}\\nA:") | llm | StrOutputParser()).invoke({"q": "2+2?"})
    llm.invoke("def add(a, b):\\n    return [MASK:4]")  # infill: the whole text back, holes filled in place

| LangChain asks for          | here                                                                   |
|-----------------------------|------------------------------------------------------------------------|
| `_generate`                 | one prompt: denoise, ending early at end-of-sequence or a stop;        |
|                             | several: one batched fill; prompts with `[MASK:n]` holes: infill       |
| `_stream`                   | text as it becomes final (block by block when `block_length` is set)   |
| `_agenerate`, `_astream`    | LangChain's defaults: the two above in an executor thread              |
| `with_structured_output`    | the schema's JSON skeleton anchored, values filled (`structured.py`)   |
| `_identifying_params`, ...  | `params.py`, shared with `ChatDream`                                   |
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseLLM, LangSmithParams
from langchain_core.outputs import Generation, GenerationChunk, LLMResult
from langchain_core.runnables import Runnable

from .generation import Completion, fill_holes, generate, generate_batch, has_holes, put_holes, stream
from .params import DreamParams
from .structured import DEFAULT_ROUNDS, fill_json, structured_output


class DreamLLM(DreamParams, BaseLLM):
    """A masked diffusion LM for LangChain's string-in, string-out interface. Fields: see `DreamParams`."""

    @property
    def _llm_type(self) -> str:
        return "dream-diffusion"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return self._ls_params_for("llm", stop, kwargs)

    def with_structured_output(self, schema: Any, *, include_raw: bool = False, **kwargs: Any) -> Runnable:
        return structured_output(self, schema, include_raw=include_raw, **kwargs)

    # ---- generation ----------------------------------------------------------------------------------

    def _one(self, prompt: str, kwargs: dict[str, Any]) -> Generation | None:
        """Structured output or infill (one fill, no stream); None for a plain completion."""
        spec, max_rounds = kwargs.get("structured_output"), kwargs.get("max_rounds", DEFAULT_ROUNDS)
        options = {k: v for k, v in kwargs.items() if k not in ("structured_output", "max_rounds")}
        if spec is None and not has_holes(prompt):
            return None
        overrides, _, steps = self._call_options(options)
        engine = self.get_engine()
        if spec is not None:
            fill = fill_json(engine, prompt, spec, steps=steps, overrides=overrides, max_rounds=max_rounds)
            return Generation(text=fill.text, generation_info=fill.info())
        values, nfe = fill_holes(engine, prompt, steps=steps, overrides=overrides)
        return Generation(text=put_holes(prompt, values), generation_info={"finish_reason": "stop", "nfe": nfe})

    def _generate(self, prompts: list[str], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> LLMResult:
        out: list[Generation | None] = [self._one(p, kwargs) for p in prompts]
        plain = [i for i, g in enumerate(out) if g is None]
        if plain and self.streaming:  # stream so that the token callbacks fire, as invoke() promised
            for i in plain:
                chunks = list(self._stream(prompts[i], stop, run_manager, **kwargs))
                total = chunks[0]
                for c in chunks[1:]:
                    total += c
                out[i] = Generation(text=total.text, generation_info=total.generation_info)
        elif plain:
            overrides, max_new, steps = self._call_options(kwargs)
            engine = self.get_engine()
            args = dict(stops=self._stops(stop), steps=steps, overrides=overrides)
            if len(plain) == 1:  # alone, it can stop denoising at the end of sequence
                done = [generate(engine, prompts[plain[0]], max_new, **args)]
            else:
                done = generate_batch(engine, [prompts[i] for i in plain], max_new, **args)
            for i, c in zip(plain, done):
                out[i] = Generation(text=c.text, generation_info=c.info())
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        for g in out:
            for k in usage:
                usage[k] += int((g.generation_info or {}).get(k, 0))
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return LLMResult(generations=[[g] for g in out], llm_output={"model_name": self.model, "token_usage": usage})

    def _stream(self, prompt: str, stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[GenerationChunk]:
        whole = self._one(prompt, kwargs)
        if whole is not None:
            pieces: Iterator[str | Completion] = iter([whole])
        else:
            overrides, max_new, steps = self._call_options(kwargs)
            pieces = stream(self.get_engine(), prompt, max_new, stops=self._stops(stop), steps=steps,
                            overrides=overrides)
        for piece in pieces:
            if isinstance(piece, str):
                chunk = GenerationChunk(text=piece)
            elif isinstance(piece, Completion):
                chunk = GenerationChunk(text="", generation_info=piece.info())
            else:
                chunk = GenerationChunk(text=piece.text, generation_info=piece.generation_info)
            if run_manager is not None and chunk.text:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
