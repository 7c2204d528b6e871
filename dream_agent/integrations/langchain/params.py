"""What `DreamLLM` and `ChatDream` share: the model (an engine, or a name loaded on first use) and the sampler fields.

Every sampler field may also be given per call (`llm.invoke(text, steps=16, seed=3)`); a field
left at None falls back to the engine's own `SamplerConfig`. Keywords other models take and a local
model has no use for (`timeout`, `max_retries`) are ignored, as LangChain's `Serializable` ignores
unknown fields, so constructor calls written for a hosted chat model still work.
"""

from __future__ import annotations

import threading
from typing import Any

import torch
from langchain_core.language_models import LangSmithParams
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dream_agent.engine import DiffusionEngine
from dream_agent.sampler import ALGS

DEFAULT_MODEL = "Dream-org/Dream-v0-Instruct-7B"
SAMPLER_FIELDS = ("steps", "temperature", "top_p", "top_k", "alg", "alg_temp", "threshold", "entropy_bound", "block_length")
CALL_OPTIONS = frozenset({*SAMPLER_FIELDS, "max_new_tokens", "max_tokens", "seed"})

_load_lock = threading.Lock()  # one model load at a time, even when a batch runs in threads


class DreamParams(BaseModel):
    """Fields and helpers mixed into both LangChain classes (listed first in their bases)."""

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    model: str = DEFAULT_MODEL  # hub id, local directory or bundled name; only a label when `engine` is given
    engine: DiffusionEngine | None = Field(default=None, exclude=True)  # built lazily from `model` when None
    device: str = "auto"
    dtype: str = "auto"

    steps: int | None = Field(default=None, ge=1)  # None: one forward pass per masked position, Dream's own setting
    max_new_tokens: int = Field(default=128, ge=1, alias="max_tokens")  # `max_tokens`, as other chat models call it
    temperature: float | None = Field(default=None, ge=0)  # 0 = argmax
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=1)
    alg: str | None = None  # remasking order: origin, maskgit_plus, topk_margin, entropy
    alg_temp: float | None = Field(default=None, ge=0)
    threshold: float | None = Field(default=None, gt=0, le=1)  # Fast-dLLM: reveal every position above it
    entropy_bound: float | None = Field(default=None, gt=0)  # EB-sampler: reveal while summed entropy stays within it
    block_length: int | None = Field(default=None, ge=1)  # LLaDA blocks; streaming then goes block by block
    seed: int | None = None  # seeds a generator per call, so sampled output repeats
    stop: list[str] | None = None
    streaming: bool = False  # invoke() streams internally, so token callbacks fire

    @field_validator("alg")
    @classmethod
    def _known_alg(cls, alg: str | None) -> str | None:
        if alg is not None and alg not in ALGS:
            raise ValueError(f"unknown alg {alg!r}; choose one of {', '.join(ALGS)}")
        return alg

    @model_validator(mode="after")
    def _name_from_engine(self):
        if self.engine is not None and "model" not in self.model_fields_set:
            self.model = str(getattr(self.engine.model, "name", "") or "dream")
        return self

    # ---- LangChain plumbing shared by both classes ------------------------------------------------

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True  # the engine is excluded; a loaded copy rebuilds it from `model` on first use

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return ["dream_agent", "integrations", "langchain"]

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "max_new_tokens": self.max_new_tokens, "seed": self.seed,
                **{f: getattr(self, f) for f in SAMPLER_FIELDS}}

    def _ls_params_for(self, model_type: str, stop: list[str] | None, kwargs: dict[str, Any]) -> LangSmithParams:
        params = LangSmithParams(ls_provider="dream_agent", ls_model_name=kwargs.get("model", self.model),
                                 ls_model_type=model_type,
                                 ls_max_tokens=kwargs.get("max_new_tokens", self.max_new_tokens))
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    # ---- the model and the settings of one call ------------------------------------------------------

    def get_engine(self) -> DiffusionEngine:
        """The engine, loading `model` the first time (so constructing never touches the hub)."""
        if self.engine is None:
            with _load_lock:
                if self.engine is None:
                    self.engine = DiffusionEngine(self.model, device=self.device, dtype=self.dtype)
        return self.engine

    def _call_options(self, kwargs: dict[str, Any]) -> tuple[dict[str, Any], int, int | None]:
        """Per-call kwargs -> (overrides for `engine.fill`, max_new_tokens, steps or None for one per mask)."""
        unknown = set(kwargs) - CALL_OPTIONS
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))}; "
                             f"{type(self).__name__} takes {', '.join(sorted(CALL_OPTIONS))}")
        merged = {f: kwargs.get(f, getattr(self, f)) for f in SAMPLER_FIELDS if f != "steps"}
        overrides = {k: v for k, v in merged.items() if v is not None}
        seed = kwargs.get("seed", self.seed)
        if seed is not None:
            engine = self.get_engine()
            overrides["generator"] = torch.Generator(device=engine.model.device).manual_seed(int(seed))
        max_new = int(kwargs.get("max_new_tokens", kwargs.get("max_tokens", self.max_new_tokens)))
        if max_new < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new}")
        steps = kwargs.get("steps", self.steps)
        if steps is not None and int(steps) < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        return overrides, max_new, None if steps is None else int(steps)

    def _stops(self, stop: list[str] | None) -> list[str]:
        return [s for s in (stop if stop is not None else self.stop) or [] if s]
