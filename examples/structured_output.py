"""Structured output whose JSON skeleton is guaranteed: the model fills only the values.

    python examples/structured_output.py                                         # tiny random model
    python examples/structured_output.py --model Dream-org/Dream-v0-Instruct-7B  # the real thing (GPU)

Even a random model returns a valid `Recipe` here: braces, keys, quotes and commas are anchors, each
value is a slot whose tokens its type allows, and whatever validation still rejects is refilled.
"""

from __future__ import annotations

from typing import Literal

from _models import text_engine_from_args
from pydantic import BaseModel, Field

from dream_agent.integrations.langchain import ChatDream


class Ingredient(BaseModel):
    name: str = Field(max_length=16)
    grams: int = Field(ge=1, le=999)


class Recipe(BaseModel):
    title: str = Field(max_length=24)
    servings: int = Field(ge=1, le=12)  # a small range: filled as a choice among 1..12
    vegetarian: bool
    difficulty: Literal["easy", "medium", "hard"]
    ingredients: list[Ingredient] = Field(min_length=3, max_length=3)  # arrays have a fixed length
    note: str = Field(json_schema_extra={"max_length": 12})  # the slot's size in tokens


def main(argv: list[str] | None = None) -> None:
    engine = text_engine_from_args(argv, __doc__.splitlines()[0])

    chat = ChatDream(engine=engine, temperature=0.7, seed=0)
    structured = chat.with_structured_output(Recipe, include_raw=True)
    out = structured.invoke("Give me a simple pancake recipe.")
    recipe: Recipe = out["parsed"]
    meta = out["raw"].response_metadata
    print(f"valid Recipe after {meta['rounds']} fill(s), {meta['nfe']} forward passes:")
    print(recipe.model_dump_json(indent=2))
    print()


if __name__ == "__main__":
    main()
