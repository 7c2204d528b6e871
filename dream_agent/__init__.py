"""dream-agent: masked diffusion language models for planning and constraint problems.

The public names load on first use (PEP 562), so that `import dream_agent` and the CLI's
argument checks do not pay for torch and transformers until a model is needed.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "DiffusionEngine": ".engine", "SamplerConfig": ".engine",
    "DreamAgentError": ".errors", "ModelLoadError": ".errors", "ProblemError": ".errors", "TemplateError": ".errors",
    "DiffusionLM": ".model", "DreamConfig": ".model", "DreamDiffusionLM": ".model", "DreamModel": ".model",
    "load_model": ".model",
    "DenoiseResult": ".sampler", "denoise": ".sampler",
    "Anchor": ".template", "Slot": ".template", "Template": ".template",
    "Validator": ".validation", "Violation": ".validation",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dream_agent' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from .engine import DiffusionEngine, SamplerConfig
    from .errors import DreamAgentError, ModelLoadError, ProblemError, TemplateError
    from .model import DiffusionLM, DreamConfig, DreamDiffusionLM, DreamModel, load_model
    from .sampler import DenoiseResult, denoise
    from .template import Anchor, Slot, Template
    from .validation import Validator, Violation
