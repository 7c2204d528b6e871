"""Request bodies. The OpenAI ones accept (and ignore) the fields a client may send that do not apply
to a diffusion model (logprobs, penalties, ...); the sampler's own settings may be added as extra
fields (the openai client's `extra_body`): steps, alg, block_length, threshold, entropy_bound."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Alg = Literal["origin", "maskgit_plus", "topk_margin", "entropy"]


class Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    steps: int | None = Field(None, ge=1, le=4096, description="forward passes (default: one per new token)")
    alg: Alg | None = None
    block_length: int | None = Field(None, ge=1)
    threshold: float | None = Field(None, gt=0, le=1)
    entropy_bound: float | None = Field(None, gt=0)
    timeout: float | None = Field(None, gt=0, description="seconds before the server gives up (504)")

    def overrides(self) -> dict[str, Any]:
        fields = ("temperature", "top_p", "alg", "block_length", "threshold", "entropy_bound")
        return {f: getattr(self, f) for f in fields if getattr(self, f) is not None}


class StreamOptions(BaseModel):
    include_usage: bool = False


class CompletionRequest(Sampling):
    model: str
    prompt: str | list[str] = Field(min_length=1)
    max_tokens: int = Field(16, ge=1, le=4096)
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=1)
    stream: bool = False
    stream_options: StreamOptions | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        parts = []
        for part in self.content:
            if part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ValueError(f"a {self.role} message holds a {part.get('type')!r} part; this model reads text only")
            parts.append(part["text"])
        return "".join(parts)


class ChatRequest(Sampling):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=1)
    stream: bool = False
    stream_options: StreamOptions | None = None


class InfillRequest(Sampling):
    model: str | None = None
    text: str = Field(min_length=1, description="text with [MASK:n] holes")


class SolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt setting should not pass silently

    problem: str = Field(min_length=1, max_length=100_000)
    model: str | None = None
    steps: int | None = Field(None, ge=1)
    max_rounds: int | None = Field(None, ge=1, le=10_000)
    constraints: bool = True
    search: bool = True
    samples: int = Field(1, ge=1, le=64)
    seed: int = 0
    timeout: float | None = Field(None, gt=0)
