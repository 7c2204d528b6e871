"""Text completion over a diffusion LM: a prompt -> new text, cut at end-of-sequence and stop sequences;
`[MASK:n]` infill; chat messages -> a prompt. Shared by the LangChain classes and the server.

Each is a job (`dream_agent.batching`), so a server can run many in shared forward passes; the
LangChain classes run them alone with `run_job`.

A diffusion model reveals tokens in any order, so `on_text` receives the longest prefix of the answer
that is fully revealed (a revealed token never changes); with `block_length` that prefix grows block
by block. Once the prefix holds an end-of-sequence token or a stop sequence, everything after it would
be thrown away, so denoising stops there instead of filling text nobody reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .batching import Job
from .engine import MASK_HOLE, DiffusionEngine
from .template import Anchor, Slot, Template

# Dream-Instruct closes its turn with <|im_end|>, then pads with <|endoftext|>: both end the reply.
END_TOKENS = ("<|im_end|>", "<|endoftext|>")


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int  # tokens before the end of sequence (all of them when the answer ran to length)
    nfe: int  # forward passes of the model
    finish_reason: str  # "stop": end of sequence or a stop sequence; "length": max_new_tokens filled

    def info(self) -> dict[str, Any]:
        return {"finish_reason": self.finish_reason, "nfe": self.nfe,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


class _Finished(Exception):
    """Raised inside the sampler's tokens hook to end denoising early."""


def end_ids(engine: DiffusionEngine) -> set[int]:
    tok = engine.tokenizer
    ids = {i for i in (tok.eos_token_id, engine.model.pad_token_id) if i is not None}
    vocab = tok.get_vocab()
    return ids | {vocab[t] for t in END_TOKENS if t in vocab}


class TextCutter:
    """Token prefixes of an answer -> the text that is final so far.

    `feed` takes the answer's revealed prefix and returns the text not sent before: cut at the first
    end-of-sequence token and the first stop sequence, and, until the answer is complete, holding back
    the last characters a stop sequence could still begin in and any half of a multi-byte character.
    """

    def __init__(self, tokenizer, ends: set[int], stops: list[str]):
        self.tokenizer, self.ends, self.stops = tokenizer, ends, stops
        self.hold = max((len(s) for s in stops), default=1) - 1
        self.sent = ""
        self.finished = False  # an end of sequence or a stop sequence was reached
        self.n_tokens = 0

    def feed(self, ids: list[int], complete: bool) -> str:
        for n, i in enumerate(ids):
            if i in self.ends:
                ids, self.finished = ids[:n], True
                break
        self.n_tokens = len(ids)
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        cuts = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        if cuts:
            text, self.finished = text[: min(cuts)], True
        if not (complete or self.finished):
            text = text.rstrip("\ufffd")  # an incomplete multi-byte character decodes as U+FFFD
            text = text[: max(len(text) - self.hold, 0)]
        if not text.startswith(self.sent):
            return ""  # decoding a longer prefix changed earlier text (rare); wait for it to settle
        new, self.sent = text[len(self.sent):], text
        return new


def completion_template(engine: DiffusionEngine, prompt: str, max_new_tokens: int) -> Template:
    tok = engine._need_tokenizer("text generation")
    segments = ([Anchor(prompt)] if prompt else []) + [Slot("answer", max_new_tokens)]
    return Template(segments, tok, mask_token_id=engine.model.mask_token_id, max_length=engine.model.max_length)


def completion_job(
    engine: DiffusionEngine,
    prompt: str,
    max_new_tokens: int,
    *,
    stops: list[str],
    steps: int | None,
    overrides: dict[str, Any],
    on_text: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
) -> Job[Completion]:
    """Fill `max_new_tokens` masks after `prompt`; `on_text` receives each piece of final text as it forms.

    The template is built when the job starts (its first `next`), so a bad prompt fails there."""
    template = completion_template(engine, prompt, max_new_tokens)
    answer = template.slots["answer"]
    lo, hi = answer[0], answer[-1] + 1
    cutter = TextCutter(engine.tokenizer, end_ids(engine), stops)
    mask_id = engine.model.mask_token_id
    state = {"revealed": 0, "nfe": 0}

    def watch(step, x, logits):
        if step is not None:
            state["nfe"] += 1
        if cancel is not None and cancel.is_set():
            raise _Finished
        row = x[0, lo:hi]  # (L,) the answer as revealed so far
        masked = (row == mask_id).nonzero()
        n = int(masked[0]) if masked.numel() else hi - lo
        if n > state["revealed"]:
            state["revealed"] = n
            text = cutter.feed(row[:n].tolist(), complete=n == hi - lo)
            if text and on_text is not None:
                on_text(text)
            if cutter.finished:
                raise _Finished  # everything after this point would be cut anyway
        return x

    try:
        yield from engine.fill_job(template, steps=steps or max_new_tokens, tokens_hook=watch, **overrides)
    except _Finished:
        pass
    return Completion(cutter.sent, lo, cutter.n_tokens, state["nfe"], "stop" if cutter.finished else "length")


def completions_job(engine: DiffusionEngine, prompts: list[str], max_new_tokens: int, *, stops: list[str],
                    steps: int | None, overrides: dict[str, Any]) -> Job[list[Completion]]:
    """Several prompts in one denoising run (one forward pass a step for all of them)."""
    templates = [completion_template(engine, p, max_new_tokens) for p in prompts]
    result = yield from engine.fill_job(templates, steps=steps or max_new_tokens, **overrides)
    out = []
    for b, template in enumerate(templates):
        answer = template.slots["answer"]
        cutter = TextCutter(engine.tokenizer, end_ids(engine), stops)
        cutter.feed(result.row_ids(b)[answer].tolist(), complete=True)
        out.append(Completion(cutter.sent, answer[0], cutter.n_tokens, result.nfe,
                              "stop" if cutter.finished else "length"))
    return out


# ---- infill -------------------------------------------------------------------------------------


def has_holes(text: str) -> bool:
    return MASK_HOLE.search(text) is not None


def holes_job(engine: DiffusionEngine, text: str, *, steps: int | None,
              overrides: dict[str, Any]) -> Job[tuple[list[str], int]]:
    """The text of every `[MASK:n]` hole in `text`, in order, and the forward passes it took."""
    template = engine.infill_template(text)
    n_masked = int(template.masked.sum())
    result = yield from engine.fill_job(template, steps=steps or n_masked, **overrides)
    filled = template.read(result.row_ids(0))
    return [filled[f"mask_{k}"] for k in range(len(template.slots))], result.nfe


def put_holes(text: str, values: list[str]) -> str:
    """`text` with its `[MASK:n]` holes replaced by `values`, in order."""
    it = iter(values)
    return MASK_HOLE.sub(lambda m: next(it), text)


# ---- chat ---------------------------------------------------------------------------------------


def chat_prompt(tokenizer, messages: list[dict[str, str]], *, reply: bool) -> str:
    """The prompt text. `reply`: open the assistant's turn; otherwise the last message is left open to be
    continued (an assistant message) or stands as it is (infilling holes in it)."""
    continue_last = not reply and messages[-1]["role"] == "assistant"
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=reply,
                                             continue_final_message=continue_last)
    # No chat template (the small bundled models): a plain transcript, one "Role: text" line a message.
    text = "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)
    return text + "\nAssistant: " if reply else text
