"""DiffusionEngine: a model, its tokenizer and default sampling settings in one object.

    engine = DiffusionEngine("path/to/model", steps=64)
    engine.fill(Template.parse("2+2={a:1}", engine.tokenizer))      # DenoiseResult
    engine.generate("Write a haiku.", max_new_tokens=64)            # str
    engine.infill("def add(a, b):\\n    return [MASK:4]")           # str
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from .errors import TemplateError
from .model import DiffusionLM, load_model
from .batching import Job
from .sampler import ALGS, DREAM_TOP_K, DenoiseResult, denoise, denoise_job
from .kv_cache import CACHE_MODES
from .template import Anchor, Slot, Template, slot_length

MASK_HOLE = re.compile(r"\[MASK:([0-9]+)\]")
OPEN_HOLE = "[MASK]"  # a hole of unknown length: DreamOn's variable-length infill


# What Dream's `diffusion_generate` uses for the settings a caller leaves out (transformers 4.46: the
# model config's legacy generation fields, not generation_config.json). SamplerConfig's defaults are
# for filling planning templates; `DiffusionEngine(model, **DREAM_GENERATE_DEFAULTS)` restores Dream's.
DREAM_GENERATE_DEFAULTS = {"alg": "origin", "steps": 512, "temperature": 1.0, "top_k": DREAM_TOP_K, "eps": 1e-3}


@dataclass(frozen=True)
class SamplerConfig:
    """Default sampling settings; every `fill`/`generate` call may override any of them."""

    steps: int = 64  # forward passes at most; fewer is faster, more is better
    alg: str = "entropy"  # Dream's recommended remasking order for planning
    temperature: float = 0.0  # 0 = argmax; planners want determinism
    top_p: float | None = None
    top_k: int | None = DREAM_TOP_K  # Dream's diffusion_generate without top_k samples with 50; None = off
    alg_temp: float | None = None
    eps: float = 1e-3
    threshold: float | None = None  # Fast-dLLM parallel reveal
    entropy_bound: float | None = None  # EB-sampler parallel reveal (nats)
    block_length: int | None = None  # LLaDA blocks
    cache: str | None = None  # Fast-dLLM's "prefix" or "dual" cache, with block_length (kv_cache.py); None: exact
    float32_softmax: bool = False  # Dream takes probabilities in the logits' dtype (bf16 on a GPU)
    padding_side: str = "right"  # of a batch of templates; "left" lays rows out as Dream's batched demo

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.alg not in ALGS:
            raise ValueError(f"unknown alg {self.alg!r}; choose one of {', '.join(ALGS)}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be at least 1 (or None for no top-k), got {self.top_k}")
        if self.threshold is not None and not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.entropy_bound is not None and not self.entropy_bound > 0:
            raise ValueError(f"entropy_bound must be above 0, got {self.entropy_bound}")
        if self.entropy_bound is not None and self.alg == "origin":
            raise ValueError("entropy_bound ranks positions by confidence: use it with maskgit_plus, topk_margin "
                             "or entropy, not origin")
        if self.padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {self.padding_side!r}")
        if self.cache is not None and self.cache not in CACHE_MODES:
            raise ValueError(f"unknown cache {self.cache!r}; use None, 'prefix' or 'dual'")


class DiffusionEngine:
    def __init__(self, model: DiffusionLM | str, *, device: str = "auto", dtype: str = "auto",
                 threads: int | str | None = "auto", **settings: Any):
        """`model`: a loaded `DiffusionLM`, or a name `load_model` reads (with `device`, `dtype` and
        `threads`: torch's CPU threads, "auto" = one for a small model on the CPU)."""
        self.model = load_model(model, device=device, dtype=dtype, threads=threads) if isinstance(model, str) else model
        # SamplerConfig's defaults, then the model's own (a model may carry none), then the caller's.
        self.settings = SamplerConfig(**{**getattr(self.model, "sampling", {}), **settings})

    @property
    def tokenizer(self):
        return self.model.tokenizer

    def _need_tokenizer(self, what: str):
        if self.tokenizer is None:
            raise TemplateError(f"{what} needs a tokenizer, and this model has none; build templates from token ids")
        return self.tokenizer

    def _settings(self, overrides: dict[str, Any]) -> dict[str, Any]:
        hooks = {k: overrides.pop(k) for k in ("logits_hook", "tokens_hook", "generator", "return_history") if k in overrides}
        return {**asdict(replace(self.settings, **overrides)), **hooks}

    def fill(self, templates: Template | Sequence[Template], **overrides: Any) -> DenoiseResult:
        """Denoise one template or a batch with the engine's settings, overridden per call."""
        return denoise(self.model, templates, **self._settings(overrides))

    def fill_job(self, templates: Template | Sequence[Template], **overrides: Any) -> Job[DenoiseResult]:
        """`fill` as a job, for `dream_agent.batching` to run beside others."""
        return denoise_job(self.model, templates, **self._settings(overrides))

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """Messages -> prompt text through the tokenizer's chat template (Dream-Instruct has one)."""
        tok = self._need_tokenizer("a chat prompt")
        if not getattr(tok, "chat_template", None):
            raise TemplateError("this model's tokenizer has no chat template")
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def generate(self, prompt: str | list[dict[str, str]], max_new_tokens: int = 128, *, chat: bool = False,
                 **overrides: Any) -> str:
        """The prompt followed by `max_new_tokens` masks, as Dream's `diffusion_generate`; returns the new text.

        With `chat=True` (or a list of messages) the tokenizer's chat template is applied first.
        Text after the first end-of-sequence token is dropped.
        """
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        tok = self._need_tokenizer("generate")
        if chat or not isinstance(prompt, str):
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
            prompt = self.chat_prompt(messages)
        segments = [Anchor(prompt)] if prompt else []
        template = Template(segments + [Slot("answer", max_new_tokens)], tok,
                            mask_token_id=self.model.mask_token_id, max_length=self.model.max_length)
        result = self.fill(template, **overrides)
        ids = result.row_ids(0)[template.slots["answer"]].tolist()
        return self.decode_until_eos(ids)

    def decode_until_eos(self, ids: list[int]) -> str:
        tok = self._need_tokenizer("decoding")
        stops = {i for i in (tok.eos_token_id, self.model.pad_token_id) if i is not None}
        for n, i in enumerate(ids):
            if i in stops:
                ids = ids[:n]
                break
        return tok.decode(ids, skip_special_tokens=True)

    def infill_template(self, text: str) -> Template:
        """`"a [MASK:3] b"` -> Anchor("a "), Slot("mask_0", 3), Anchor(" b")."""
        if not isinstance(text, str):
            raise TemplateError(f"infill text is a string, not {type(text).__name__}")
        tok = self._need_tokenizer("infill")
        segments: list[Anchor | Slot] = []
        pos = 0
        for n, m in enumerate(MASK_HOLE.finditer(text)):
            if m.start() > pos:
                segments.append(Anchor(text[pos:m.start()]))
            segments.append(Slot(f"mask_{n}", slot_length(m.group(1), f"mask_{n}")))
            pos = m.end()
        if pos < len(text):
            segments.append(Anchor(text[pos:]))
        if not any(isinstance(s, Slot) for s in segments):
            raise TemplateError("the text has no [MASK:n] hole to fill")
        return Template(segments, tok, mask_token_id=self.model.mask_token_id, max_length=self.model.max_length)

    def infill(self, text: str, **overrides: Any) -> str:
        """Fill every `[MASK:n]` hole (n tokens) in place and return the whole text.

        One `[MASK]` hole of unknown length is filled at the length the model chooses, when the model
        is a DreamOn model (it has an expand token; see dream_agent/dreamon.py)."""
        if OPEN_HOLE in text:
            return self._infill_open(text, **overrides)
        template = self.infill_template(text)
        result = self.fill(template, **overrides)
        filled = template.read(result.row_ids(0))
        out, pos = [], 0
        for n, m in enumerate(MASK_HOLE.finditer(text)):
            out += [text[pos:m.start()], filled[f"mask_{n}"]]
            pos = m.end()
        return "".join(out) + text[pos:]

    def _infill_open(self, text: str, *, initial: int = 4, max_new_tokens: int = 64, per_step: int = 1,
                     **overrides: Any) -> str:
        from .dreamon import expand_token_id, infill_variable

        expand = expand_token_id(self.model)
        if expand is None:
            raise TemplateError("a [MASK] hole without a length needs a DreamOn model (one with an expand token); "
                                "write [MASK:n] for a hole of n tokens")
        if text.count(OPEN_HOLE) != 1 or MASK_HOLE.search(text):
            raise TemplateError("variable-length infill takes exactly one [MASK] hole and no [MASK:n] holes")
        tok = self._need_tokenizer("infill")
        before, after = text.split(OPEN_HOLE)
        settings = self._settings(overrides)
        bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
        prefix = bos + tok.encode(before, add_special_tokens=False)  # DreamOn's layout: bos, prefix, masks, suffix, eos
        suffix = tok.encode(after, add_special_tokens=False) + ([tok.eos_token_id] if tok.eos_token_id is not None else [])
        fill = infill_variable(self.model, prefix, suffix, expand_id=expand, delete_id=tok.eos_token_id,
                               initial=initial, max_new_tokens=max_new_tokens, per_step=per_step,
                               alg=settings["alg"], temperature=settings["temperature"], top_p=settings["top_p"],
                               top_k=settings["top_k"], alg_temp=settings["alg_temp"],
                               generator=settings.get("generator"))
        return before + tok.decode(fill.ids, skip_special_tokens=True) + after
