"""DreamLLM: construction without loading, generation, stop sequences, streaming, async, infill, serialization."""

from __future__ import annotations

import asyncio
import time

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, load
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate

from dream_agent import DiffusionEngine
from dream_agent.integrations.langchain import DEFAULT_MODEL, DreamLLM

from .langchain_fixtures import tiny_engine, tiny_lm


class Tokens(BaseCallbackHandler):
    def __init__(self):
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs) -> None:
        self.tokens.append(token)


class SlowLM:
    """A model that takes 20 ms a forward pass, so a blocked event loop would show."""

    def __init__(self, lm):
        self.lm = lm

    def __getattr__(self, name):
        return getattr(self.lm, name)

    def logits(self, input_ids, attention_mask=None):
        time.sleep(0.02)
        return self.lm.logits(input_ids, attention_mask)


@pytest.fixture
def llm():
    return DreamLLM(engine=tiny_engine(), max_new_tokens=16, steps=8)


def test_construction_is_lazy_and_identifies_itself():
    llm = DreamLLM(temperature=0.2, steps=32, max_tokens=64)  # the 7B default: nothing is loaded here
    assert llm.engine is None and llm.model == DEFAULT_MODEL
    assert llm.max_new_tokens == 64 and llm._llm_type == "dream-diffusion"
    assert llm._identifying_params["steps"] == 32
    ls = llm._get_ls_params(stop=["\n"])
    assert ls["ls_provider"] == "dream_agent" and ls["ls_model_type"] == "llm" and ls["ls_stop"] == ["\n"]
    assert DreamLLM(engine=tiny_engine()).model == "tiny-char"  # the label comes from the engine's model
    with pytest.raises(ValueError, match="unknown alg"):
        DreamLLM(alg="bogus")


def test_invoke_batch_and_a_chain(llm):
    text = llm.invoke("Hello")
    assert isinstance(text, str) and len(text) <= 16
    assert llm.invoke("Hello") == text  # argmax by default: repeatable
    outs = llm.batch(["Hello", "abc", "x"])
    assert len(outs) == 3 and all(isinstance(o, str) and len(o) <= 16 for o in outs)
    chain = PromptTemplate.from_template("Q: {q}\nA:") | llm | StrOutputParser()
    assert isinstance(chain.invoke({"q": "2+2?"}), str)
    result = llm.generate(["Hello", "abc"])
    assert result.llm_output["token_usage"]["completion_tokens"] > 0
    assert all(g[0].generation_info["nfe"] >= 1 for g in result.generations)
    with pytest.raises(ValueError, match="unknown option"):
        llm.invoke("Hello", stepz=3)


def test_stop_sequences_truncate(llm):
    text = llm.invoke("Hello", max_new_tokens=24, steps=24)
    stop = text[5:7]
    cut = llm.invoke("Hello", max_new_tokens=24, steps=24, stop=[stop])
    assert cut == text[: text.index(stop)]
    assert DreamLLM(engine=tiny_engine(), max_new_tokens=24, steps=24, stop=[stop]).invoke("Hello") == cut


def test_seed_makes_sampling_repeatable(llm):
    a = llm.invoke("Hello", temperature=1.0, seed=3)
    assert a == llm.invoke("Hello", temperature=1.0, seed=3)
    assert len({llm.invoke("Hello", temperature=1.0, seed=s) for s in range(4)}) > 1


def test_stream_matches_invoke_and_fires_callbacks(llm):
    handler = Tokens()
    pieces = list(llm.stream("Hello", config={"callbacks": [handler]}))
    assert "".join(pieces) == llm.invoke("Hello")
    assert [p for p in pieces if p] == handler.tokens

    streaming = DreamLLM(engine=tiny_engine(), max_new_tokens=16, steps=8, streaming=True)
    handler = Tokens()
    assert streaming.invoke("Hello", config={"callbacks": [handler]}) == "".join(handler.tokens) != ""


def test_block_streaming_goes_block_by_block_and_stops_early():
    llm = DreamLLM(engine=tiny_engine(), max_new_tokens=16, steps=16, block_length=4)
    pieces = [p for p in llm.stream("Hello") if p]
    assert len(pieces) >= 2 and all(len(p) <= 4 for p in pieces)  # one character a token here
    full = llm.generate(["Hello"]).generations[0][0]
    assert full.text == "".join(pieces) and full.generation_info["nfe"] == 16
    # A stop inside the first block: the three later blocks are never denoised.
    stopped = llm.generate(["Hello"], stop=[full.text[1:3]]).generations[0][0]
    stop = full.text[1:3]
    assert stopped.text == full.text[: full.text.index(stop)] and stopped.generation_info["nfe"] == 4


def test_infill_fills_holes_in_place(llm):
    out = llm.invoke("ab [MASK:3] cd [MASK:2]!")
    assert out.startswith("ab ") and " cd " in out and out.endswith("!")
    assert "[MASK" not in out and len(out) <= len("ab  cd !") + 5


async def test_async_does_not_block_the_event_loop():
    llm = DreamLLM(engine=DiffusionEngine(SlowLM(tiny_lm())), max_new_tokens=8, steps=8)  # ~160 ms of work
    ticks = 0

    async def tick():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.create_task(tick())
    text = await llm.ainvoke("Hello")
    pieces = [p async for p in llm.astream("Hello")]
    ticker.cancel()
    assert text == "".join(pieces)
    assert ticks >= 10  # the loop kept running while the model worked in a thread


@pytest.mark.filterwarnings("ignore:The function `load` is in beta")
def test_serialization_round_trip():
    llm = DreamLLM(engine=tiny_engine(), model="tiny-char", steps=4, temperature=0.5, stop=["\n"])
    data = dumpd(llm)
    assert data["id"] == ["dream_agent", "integrations", "langchain", "DreamLLM"]
    assert "engine" not in data["kwargs"]  # a model is not JSON; the copy reloads `model` when first used
    copy = load(data, valid_namespaces=["dream_agent"], allowed_objects=[DreamLLM])
    assert isinstance(copy, DreamLLM) and copy.engine is None and copy.asdict() == llm.asdict()


def test_entropy_bound_is_a_sampler_field():
    """The EB-sampler's bound reaches the denoising loop: a bound above every step's summed entropy
    reveals everything in the first pass, where steps=16 without it take 16 passes."""
    plain = DreamLLM(engine=tiny_engine(), max_new_tokens=16, steps=16)
    loose = DreamLLM(engine=tiny_engine(), max_new_tokens=16, steps=16, entropy_bound=1e6)
    assert plain.generate(["Hello"]).generations[0][0].generation_info["nfe"] == 16
    assert loose.generate(["Hello"]).generations[0][0].generation_info["nfe"] == 1
    assert loose._identifying_params["entropy_bound"] == 1e6
    assert plain.generate(["Hello"], entropy_bound=1e6).generations[0][0].generation_info["nfe"] == 1
