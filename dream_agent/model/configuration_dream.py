"""DreamConfig: Qwen2's configuration with Dream 7B's values as defaults, plus the mask token.

A Dream-org config.json (model_type "Dream", `auto_map` to remote code, `rope_theta`)
loads through this class without `trust_remote_code`, because the package registers it
with `AutoConfig` under "Dream".
"""

from __future__ import annotations

import warnings

from huggingface_hub.dataclasses import strict
from transformers import Qwen2Config
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS


@strict
class DreamConfig(Qwen2Config):
    model_type = "Dream"

    # Dream-v0-7B (Qwen2.5-7B body): the defaults are the published checkpoint's values.
    vocab_size: int = 152064
    hidden_size: int = 3584
    intermediate_size: int = 18944
    num_hidden_layers: int = 28
    num_attention_heads: int = 28
    num_key_value_heads: int | None = 4
    max_position_embeddings: int = 131072  # RoPE range; Dream was trained on 2048-token contexts
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    bos_token_id: int | None = 151643
    eos_token_id: int | list[int] | None = 151643
    pad_token_id: int | None = 151643
    mask_token_id: int = 151666

    # dream-agent extensions (absent from Dream's config.json, so Dream keeps its behaviour):
    # Dream was adapted from an autoregressive model, so hidden state i-1 predicts token i;
    # small models trained from scratch here predict position i from hidden state i.
    shift_logits: bool = True
    # Learned absolute positions added to the token embeddings: grids (Sudoku) need to know
    # which row, column and box a position is in, which RoPE's relative offsets make hard to
    # learn for a small model. None (Dream) adds nothing.
    absolute_position_embeddings: int | None = None
    # DreamOn's expand token (151667 in DreamOn-v0-7B): predicting it turns a masked position into two,
    # for infilling at a length the model chooses (dream_agent/dreamon.py). None: the tokenizer's
    # `<|expand|>`, if it has one.
    expand_token_id: int | None = None

    def __post_init__(self, **kwargs):
        # Dream's config.json (transformers 4.x) carries `rope_theta` and `rope_scaling` (null, or a
        # linear / dynamic / yarn dict); transformers 5 folds both into `rope_parameters`.
        scaling = kwargs.pop("rope_scaling", None)
        theta = kwargs.pop("rope_theta", None)
        if self.rope_parameters is None:
            self.rope_parameters = {"rope_type": "default", "rope_theta": 1_000_000.0 if theta is None else theta}
            if scaling:
                self.rope_parameters = {**self.rope_parameters, **_rope_scaling(scaling)}
        if self.use_sliding_window and self.layer_types is None:
            # Dream's modeling code ignores the window under SDPA (with a warning): every layer attends
            # to the whole sequence. Keep that behaviour rather than build sliding-window masks.
            warnings.warn("use_sliding_window is set, but Dream attends to the whole sequence in every layer "
                          "(as Dream's own code does under SDPA); the window is ignored", stacklevel=2)
            self.layer_types = ["full_attention"] * self.num_hidden_layers
        self.is_causal = False  # Dream attends in both directions
        super().__post_init__(**kwargs)
        for field in ("mask_token_id", "pad_token_id", "bos_token_id", "expand_token_id"):
            value = getattr(self, field)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ValueError(f"{field} {value} is outside the vocabulary of {self.vocab_size} tokens; "
                                 f"set {field} below vocab_size (Dream's defaults are for its 152064-token vocabulary)")


def _rope_scaling(scaling: dict) -> dict:
    """A 4.x `rope_scaling` dict -> `rope_parameters` entries; a kind transformers cannot compute is refused."""
    if not isinstance(scaling, dict):
        raise ValueError(f"rope_scaling must be null or a dict, got {scaling!r}")
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind != "default" and kind not in ROPE_INIT_FUNCTIONS:
        raise ValueError(f"rope_scaling type {kind!r} is not supported; use one of "
                         f"{', '.join(['default', *ROPE_INIT_FUNCTIONS])}")
    return {**{k: v for k, v in scaling.items() if k != "type"}, "rope_type": kind}
