"""Dream's architecture, its loading, and the `DiffusionLM` protocol the sampler sees.

Names load on first use (PEP 562): `PlainDreamLM` and the protocol need no transformers, and a
small model run through them never imports it (plain.py)."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

_EXPORTS = {
    "DiffusionLM": ".diffusion_lm", "DreamDiffusionLM": ".diffusion_lm", "DreamConfig": ".configuration_dream",
    "DreamModel": ".modeling_dream", "PlainDreamLM": ".plain",
    "bundled_models": ".loading", "load_model": ".loading", "resolve_device": ".loading",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dream_agent.model' has no attribute {name!r}")
    if name in ("DreamConfig", "DreamModel"):
        import_module(".register", __name__)  # "Dream" with the Auto classes, as before the lazy names
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from .configuration_dream import DreamConfig
    from .diffusion_lm import DiffusionLM, DreamDiffusionLM
    from .loading import bundled_models, load_model, resolve_device
    from .modeling_dream import DreamModel
    from .plain import PlainDreamLM
