"""An LCEL chain: prompt | Dream | parser, streamed, then a chat chain and an infill.

    python examples/langchain_chain.py                                         # tiny random model, seconds
    python examples/langchain_chain.py --model Dream-org/Dream-v0-Instruct-7B  # the real thing (GPU)
"""

from __future__ import annotations

from _models import text_engine_from_args
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate

from dream_agent.integrations.langchain import ChatDream, DreamLLM


def main(argv: list[str] | None = None) -> None:
    engine = text_engine_from_args(argv, __doc__.splitlines()[0])

    # 1. A completion chain, exactly as with any LangChain LLM.
    llm = DreamLLM(engine=engine, max_new_tokens=32, steps=32, stop=["\n"])
    prompt = PromptTemplate.from_template("Question: {question}\nAnswer:")
    chain = prompt | llm | StrOutputParser()
    print("answer:", repr(chain.invoke({"question": "What is the capital of France?"})))

    # 2. Streaming: text is sent once final; with 8-token blocks filled left to right it flows steadily.
    blocks = prompt | llm.bind(block_length=8) | StrOutputParser()
    print("streamed:", end=" ")
    for piece in blocks.stream({"question": "Name three colours."}):
        print(repr(piece), end=" ", flush=True)
    print()

    # 3. The same chain shape with a chat model: ChatDream drops in where ChatOpenAI would be.
    chat = ChatDream(engine=engine, max_new_tokens=32, steps=32, block_length=8)
    chat_prompt = ChatPromptTemplate.from_messages([("system", "Answer in one sentence."), ("human", "{question}")])
    print("chat:", repr((chat_prompt | chat | StrOutputParser()).invoke({"question": "Why is the sky blue?"})))

    # 4. What only a diffusion model does: fill holes in the middle of a text.
    print("infill:", repr(llm.invoke("def add(a, b):\n    return [MASK:5]\n")))


if __name__ == "__main__":
    main()
