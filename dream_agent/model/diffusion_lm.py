"""The `DiffusionLM` protocol (what the sampler needs from a model) and the Dream adapter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch

if TYPE_CHECKING:  # the protocol and the shift need no transformers (plain.py runs without it)
    from .modeling_dream import DreamModel


def align_logits(logits: torch.Tensor, shift: bool) -> torch.Tensor:
    """Raw model logits (B, N, V) -> logits whose position i predicts token i.

    With `shift` (Dream's checkpoints, adapted from an AR model) hidden state i-1 predicts
    token i; position 0 keeps its own logits, as in Dream's generation loop. The sampler
    and the training loss both go through here, so they can never disagree.
    """
    if not shift:
        return logits
    return torch.cat([logits[:, :1], logits[:, :-1]], dim=1)


@runtime_checkable
class DiffusionLM(Protocol):
    """A masked diffusion model as the sampler sees it.

    `logits(input_ids, attention_mask)` returns [B, N, V] aligned so that `logits[:, i]`
    predicts position i; any shift a checkpoint needs happens behind this call. An optional
    `sampling` dict (the model's own sampler defaults, e.g. {"alg": "maskgit_plus"}) is read
    by `DiffusionEngine` where present; it is not part of the protocol.
    """

    mask_token_id: int
    pad_token_id: int
    tokenizer: Any
    device: torch.device
    max_length: int | None

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor: ...


class DreamDiffusionLM:
    """A `DreamModel` (Dream 7B or a small bundled model) behind the `DiffusionLM` protocol."""

    def __init__(self, model: DreamModel, tokenizer=None, *, name: str | None = None, sampling: dict | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.sampling = dict(sampling or {})  # the model's own sampler defaults (see loading.py), e.g. {"alg": ...}
        self.name = name or getattr(model.config, "_name_or_path", "") or "dream"
        cfg = model.config
        self.mask_token_id = int(cfg.mask_token_id)
        pad = cfg.pad_token_id if cfg.pad_token_id is not None else getattr(tokenizer, "pad_token_id", None)
        self.pad_token_id = int(pad) if pad is not None else self.mask_token_id
        # The context the template may fill: Dream trained on 2048 tokens; small models on their position table.
        self.max_length = cfg.absolute_position_embeddings or min(cfg.max_position_embeddings, 2048)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def vocab_size(self) -> int:
        return int(self.model.config.vocab_size)

    @torch.no_grad()
    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.model(input_ids, attention_mask=attention_mask).logits  # (B, N, V)
        return align_logits(logits, self.model.config.shift_logits)

    def __repr__(self) -> str:
        return f"DreamDiffusionLM({self.name!r}, device={self.device})"
