"""Text generation behind the LangChain classes: the jobs of `dream_agent.text` run alone, in one piece,
as a stream (in a worker thread), or for a batch of prompts; and infilling of `[MASK:n]` holes."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from dream_agent.batching import run_job
from dream_agent.engine import DiffusionEngine
from dream_agent.text import Completion, completion_job, completions_job, has_holes, holes_job, put_holes  # noqa: F401

__all__ = ["Completion", "fill_holes", "generate", "generate_batch", "has_holes", "put_holes", "stream"]


def generate(engine: DiffusionEngine, prompt: str, max_new_tokens: int, **kwargs: Any) -> Completion:
    """Fill `max_new_tokens` masks after `prompt` (keywords: `completion_job`'s)."""
    return run_job(engine.model, completion_job(engine, prompt, max_new_tokens, **kwargs))


def stream(engine: DiffusionEngine, prompt: str, max_new_tokens: int, **kwargs: Any) -> Iterator[str | Completion]:
    """`generate` in a worker thread: yields text pieces as they become final, then the `Completion`."""
    pieces: queue.Queue = queue.Queue()
    cancel = threading.Event()

    def work():
        try:
            pieces.put(generate(engine, prompt, max_new_tokens, on_text=pieces.put, cancel=cancel, **kwargs))
        except BaseException as exc:  # handed to the reading thread, which raises it
            pieces.put(exc)

    worker = threading.Thread(target=work, name="dream-agent-stream", daemon=True)
    worker.start()
    try:
        while True:
            item = pieces.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if isinstance(item, Completion):
                return
    finally:
        cancel.set()  # the reader stopped early: end denoising at the next step
        worker.join()


def generate_batch(engine: DiffusionEngine, prompts: list[str], max_new_tokens: int, *, stops: list[str],
                   steps: int | None, overrides: dict[str, Any]) -> list[Completion]:
    """Several prompts in one denoising run (one forward pass a step for all of them)."""
    return run_job(engine.model, completions_job(engine, prompts, max_new_tokens, stops=stops, steps=steps,
                                                 overrides=overrides))


def fill_holes(engine: DiffusionEngine, text: str, *, steps: int | None,
               overrides: dict[str, Any]) -> tuple[list[str], int]:
    """The text of every `[MASK:n]` hole in `text`, in order, and the forward passes it took."""
    return run_job(engine.model, holes_job(engine, text, steps=steps, overrides=overrides))
