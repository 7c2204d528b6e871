"""ChatDream: prompts from messages, replies, streaming, async, stop sequences, infill, chains, serialization."""

from __future__ import annotations

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.load import dumpd, load
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from dream_agent import DiffusionEngine
from dream_agent.integrations.langchain import ChatDream
from dream_agent.integrations.langchain.chat import chat_prompt, message_dicts
from dream_agent.tokenization import char_tokenizer

from .langchain_fixtures import PRINTABLE, tiny_engine


class Tokens(BaseCallbackHandler):
    def __init__(self):
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs) -> None:
        self.tokens.append(token)


@pytest.fixture
def chat():
    return ChatDream(engine=tiny_engine(), max_new_tokens=16, steps=8)


def test_prompt_without_a_chat_template_is_a_plain_transcript():
    tok = char_tokenizer(PRINTABLE)
    msgs = message_dicts([SystemMessage("Be brief."), HumanMessage("Hi"), AIMessage("Hello"), HumanMessage("Bye")])
    assert chat_prompt(tok, msgs, reply=True) == "System: Be brief.\nUser: Hi\nAssistant: Hello\nUser: Bye\nAssistant: "
    assert chat_prompt(tok, msgs[:3], reply=False) == "System: Be brief.\nUser: Hi\nAssistant: Hello"
    with pytest.raises(ValueError, match="text only"):
        message_dicts([HumanMessage(content=[{"type": "image", "url": "http://x/y.png"}])])
    blocks = HumanMessage(content=["a", {"type": "text", "text": "b"}])
    assert message_dicts([blocks]) == [{"role": "user", "content": "ab"}]


def test_prompt_uses_the_tokenizers_chat_template():
    tok = char_tokenizer(PRINTABLE)
    tok.chat_template = ("{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
                         "{% if add_generation_prompt %}<assistant>{% endif %}")
    prompt = chat_prompt(tok, message_dicts([HumanMessage("Hi")]), reply=True)
    assert prompt == "<user>Hi\n<assistant>"


def test_invoke_returns_a_message_with_usage(chat):
    msg = chat.invoke([SystemMessage("Be brief."), HumanMessage("Hello")])
    assert isinstance(msg, AIMessage) and isinstance(msg.content, str) and len(msg.content) <= 16
    usage = msg.usage_metadata
    assert usage["output_tokens"] <= 16 and usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert msg.response_metadata["model_name"] == "tiny-char" and msg.response_metadata["nfe"] <= 8
    assert chat.invoke("Hello").content == chat.invoke([HumanMessage("Hello")]).content


def test_stream_and_callbacks(chat):
    handler = Tokens()
    chunks = list(chat.stream("Hello", config={"callbacks": [handler]}))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert chunks[-1].chunk_position == "last" and chunks[-1].usage_metadata is not None
    full = chunks[0]
    for c in chunks[1:]:
        full += c
    assert full.content == chat.invoke("Hello").content
    assert "".join(handler.tokens) == full.content

    streaming = ChatDream(engine=tiny_engine(), max_new_tokens=16, steps=8, streaming=True)
    handler = Tokens()
    assert streaming.invoke("Hello", config={"callbacks": [handler]}).content == "".join(handler.tokens) != ""

    block = ChatDream(engine=tiny_engine(), max_new_tokens=16, steps=16, block_length=4)
    texts = [c.content for c in block.stream("Hello") if c.content]
    assert len(texts) >= 2 and all(len(t) <= 4 for t in texts)


def test_stop_sequence(chat):
    text = chat.invoke("Hello", max_new_tokens=24, steps=24).content
    stop = text[6:8]
    assert chat.invoke("Hello", max_new_tokens=24, steps=24, stop=[stop]).content == text[: text.index(stop)]


async def test_async(chat):
    msg = await chat.ainvoke("Hello")
    chunks = [c async for c in chat.astream("Hello")]
    assert msg.content == "".join(c.content for c in chunks)
    assert len(await chat.abatch(["a", "b"])) == 2


def test_infill_of_the_last_message(chat):
    msg = chat.invoke([HumanMessage("Finish the code."), AIMessage("def add(a, b):\n    return [MASK:5]")])
    assert msg.content.startswith("def add(a, b):\n    return ") and "[MASK" not in msg.content
    streamed = list(chat.stream([HumanMessage("x = [MASK:2] + 1")]))
    assert len(streamed) == 1 and streamed[0].content.startswith("x = ") and streamed[0].content.endswith(" + 1")


def test_swaps_into_a_chain_written_for_another_chat_model(chat):
    prompt = ChatPromptTemplate.from_messages([("system", "You answer in one word."), ("human", "{question}")])

    def build(model):
        return prompt | model | StrOutputParser()

    fake = GenericFakeChatModel(messages=iter([AIMessage("Paris")]))
    assert build(fake).invoke({"question": "Capital of France?"}) == "Paris"
    out = build(chat).invoke({"question": "Capital of France?"})
    assert isinstance(out, str)
    assert all(isinstance(x, str) for x in build(chat).batch([{"question": "a"}, {"question": "b"}]))


def test_lazy_load_by_path(char_dir):
    chat = ChatDream(model=str(char_dir), device="cpu", max_new_tokens=4, steps=2)
    assert chat.engine is None
    assert isinstance(chat.invoke("Hi").content, str)
    assert isinstance(chat.engine, DiffusionEngine)


@pytest.mark.filterwarnings("ignore:The function `load` is in beta")
def test_serialization_round_trip(chat):
    data = dumpd(chat)
    assert data["id"][-1] == "ChatDream" and "engine" not in data["kwargs"]
    copy = load(data, valid_namespaces=["dream_agent"], allowed_objects=[ChatDream])
    assert isinstance(copy, ChatDream) and copy.engine is None and copy.asdict() == chat.asdict()
