"""DreamModel: the Dream 7B architecture on transformers' Qwen2 modules.

Dream is Qwen2 with bidirectional attention. Main diffs with Qwen2ForCausalLM:
  - attention is non-causal (config.is_causal False, and every attention module's flag off,
    because SDPA falls back to `module.is_causal` when it gets no mask);
  - a 2-D padding mask becomes a 4-D key-padding mask and position ids follow the padding,
    as Dream's `diffusion_generate` does;
  - logits are returned raw and unshifted, like the published modeling code: the shift
    (hidden state i-1 predicts token i) is applied by `DreamDiffusionLM`, not here;
  - float32 inference on unpadded input runs the same layers' weights through
    torch.nn.functional directly (`_direct_logits`, functional.py): for the small bundled
    models on a CPU, transformers' per-module dispatch costs about a third of a forward pass.
Parameter names are Qwen2's (`model.layers.N.self_attn.q_proj`, `lm_head`, ...), so the
Dream-org safetensors load as they are.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import MaskedLMOutput
from transformers.models.qwen2.modeling_qwen2 import Qwen2Model, Qwen2PreTrainedModel

from .configuration_dream import DreamConfig
from .functional import DreamShape, dream_logits


def padding_to_4d(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[B, N] 1/0 padding mask -> additive [B, 1, N, N] mask: every query sees every real key.

    Padding keys are hidden from all queries; padding queries still see the real keys, so
    no softmax row is empty (an empty row gives NaN, which would then leak through values).
    """
    keys = attention_mask[:, None, None, :].to(torch.bool)  # [B, 1, 1, N]
    mask = torch.zeros(keys.shape, dtype=dtype, device=attention_mask.device)
    mask = mask.masked_fill(~keys, torch.finfo(dtype).min)
    return mask.expand(-1, -1, attention_mask.shape[1], -1)  # [B, 1, N, N]


def positions_from_padding(attention_mask: torch.Tensor) -> torch.Tensor:
    """Dream's position ids: count real tokens; padding positions get 1 (they are never attended to)."""
    pos = attention_mask.long().cumsum(-1) - 1
    return pos.masked_fill(attention_mask == 0, 1)


class DreamPreTrainedModel(Qwen2PreTrainedModel):
    config_class = DreamConfig
    config: DreamConfig
    base_model_prefix = "model"
    _supports_flash_attn = False  # flash-attn kernels assume causal or varlen; SDPA and eager are exact


class DreamModel(DreamPreTrainedModel):
    def __init__(self, config: DreamConfig):
        super().__init__(config)
        config.is_causal = False
        self.model = Qwen2Model(config)
        for layer in self.model.layers:
            layer.self_attn.is_causal = False
        if config.absolute_position_embeddings:
            self.model.embed_positions = nn.Embedding(config.absolute_position_embeddings, config.hidden_size)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        # the direct path knows full bidirectional attention only
        self._direct_ok = all(t == "full_attention" for t in (config.layer_types or ["full_attention"]))
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        **kwargs,
    ) -> MaskedLMOutput:
        unpadded = attention_mask is None or (attention_mask.dim() == 2 and bool(attention_mask.all()))
        if (unpadded and position_ids is None and not kwargs and not self.training and not torch.is_grad_enabled()
                and self._direct_ok and self.lm_head.weight.dtype == torch.float32 and self._plain_layers()):
            return MaskedLMOutput(logits=self._direct_logits(input_ids))
        embeds = self.model.embed_tokens(input_ids)  # (B, N, H)
        if attention_mask is not None and attention_mask.dim() == 2:
            if position_ids is None:
                position_ids = positions_from_padding(attention_mask)
            if bool(attention_mask.all()):
                attention_mask = None  # no padding: full attention, SDPA's fastest path
            else:
                attention_mask = padding_to_4d(attention_mask, embeds.dtype)
        elif attention_mask is not None and attention_mask.dtype == torch.bool:  # 4-D, True = attend
            attention_mask = torch.zeros(attention_mask.shape, dtype=embeds.dtype, device=embeds.device).masked_fill(
                ~attention_mask, torch.finfo(embeds.dtype).min
            )  # eager attention adds the mask, so it must be additive
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :]  # (1, N)
        if self.config.absolute_position_embeddings:
            embeds = embeds + self.model.embed_positions(position_ids)
        masks = {"full_attention": attention_mask}  # a dict bypasses Qwen2's causal-mask builder
        # `cache`: a transformers Cache whose keys and values the new positions attend to beside their
        # own, and which gets theirs appended (kv_cache.py's block caches crop them back off)
        cache = kwargs.pop("cache", None)
        hidden = self.model(
            inputs_embeds=embeds, attention_mask=masks, position_ids=position_ids, cache=cache,
            use_cache=cache is not None, **kwargs
        ).last_hidden_state  # (B, N, H)
        return MaskedLMOutput(logits=self.lm_head(hidden))  # (B, N, V), unshifted

    def _plain_layers(self) -> bool:
        """No projection was wrapped or replaced (a LoRA adapter, say): the direct path reads plain weights."""
        return type(self.lm_head) is nn.Linear and all(
            type(proj) is nn.Linear
            for layer in self.model.layers
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj, layer.self_attn.o_proj,
                         layer.mlp.gate_proj, layer.mlp.up_proj, layer.mlp.down_proj)
        )

    def _direct_logits(self, input_ids: torch.LongTensor) -> torch.Tensor:
        """forward() for unpadded float32 input, without grad: the same weights, operations and
        order as the modules, called as functions (functional.py). A 0.7M model's pass over 85
        tokens on two CPU threads takes about 1.3 ms this way against 1.7 ms through the modules
        (tests/test_model.py checks that both give the same logits)."""
        h = self.model.embed_tokens.weight
        cos, sin = self.model.rotary_emb(h, torch.arange(input_ids.shape[1], device=h.device)[None, :])
        weights = dict(self.named_parameters(remove_duplicate=False))  # tied heads keep both names
        return dream_logits(weights, DreamShape.of(self.config), input_ids, cos, sin, act=self.model.layers[0].mlp.act_fn)
