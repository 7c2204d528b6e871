"""Dream's forward pass as plain torch functions over its named weights.

One definition of the inference pass that two callers share:
  - `DreamModel._direct_logits` runs it over the modules' own parameters (for the small bundled
    models on a CPU, transformers' per-module dispatch costs about a third of a pass);
  - `PlainDreamLM` (plain.py) runs it over the tensors of a model.safetensors, so that a small
    checkpoint runs without importing transformers at all (the CLI's start-up).
It covers what the small models and the full-attention Dream checkpoints use: unpadded rows,
bidirectional attention, grouped KV heads, RMSNorm, a SiLU-gated MLP, and an optional table of
absolute positions. The weights keep Qwen2's names (`model.layers.N.self_attn.q_proj.weight`, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class DreamShape:
    """The configuration fields the pass reads (a `DreamConfig`, or a config.json without transformers)."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    hidden_act: str = "silu"
    absolute_position_embeddings: int | None = None

    @classmethod
    def of(cls, config) -> DreamShape:
        heads = config.num_attention_heads
        return cls(hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
                   num_attention_heads=heads, num_key_value_heads=config.num_key_value_heads or heads,
                   head_dim=getattr(config, "head_dim", None) or config.hidden_size // heads,
                   rms_norm_eps=config.rms_norm_eps, hidden_act=getattr(config, "hidden_act", "silu"),
                   absolute_position_embeddings=getattr(config, "absolute_position_embeddings", None))


# The MLP activations known without transformers (their ACT2FN computes the same functions).
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "silu": F.silu, "swish": F.silu, "relu": F.relu, "gelu": F.gelu,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
}


def default_rope(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (1, N, head_dim) of unscaled rotary embeddings at `positions` (N,), computed in
    float32 as transformers' default rope does (the same operations, so the same bits)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=positions.device).float() / head_dim))
    freqs = (inv_freq[None, :, None] @ positions[None, None, :].float()).transpose(1, 2)  # (1, N, head_dim / 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def dream_logits(weights: Mapping[str, torch.Tensor], shape: DreamShape, input_ids: torch.Tensor,
                 cos: torch.Tensor, sin: torch.Tensor,
                 act: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Raw (unshifted) logits (B, N, V) of unpadded `input_ids` (B, N); `cos`, `sin`: (1, N, head_dim);
    `act`: the MLP's activation (default: `shape.hidden_act` from ACTIVATIONS)."""
    act = act or ACTIVATIONS[shape.hidden_act]
    batch, n = input_ids.shape
    heads, kv_heads, head_dim = shape.num_attention_heads, shape.num_key_value_heads, shape.head_dim
    width, eps = (shape.hidden_size,), shape.rms_norm_eps
    cos, sin = cos.unsqueeze(1).to(weights["lm_head.weight"].dtype), sin.unsqueeze(1).to(weights["lm_head.weight"].dtype)

    def w(name: str) -> torch.Tensor:
        return weights[name]

    def b(name: str) -> torch.Tensor | None:
        return weights.get(name)

    h = F.embedding(input_ids, w("model.embed_tokens.weight"))  # (B, N, H)
    if shape.absolute_position_embeddings:
        h = h + w("model.embed_positions.weight")[:n]
    for i in range(shape.num_hidden_layers):
        p = f"model.layers.{i}."

        def project(y: torch.Tensor, name: str, count: int) -> torch.Tensor:  # (B, count, N, head_dim)
            out = F.linear(y, w(p + name + ".weight"), b(p + name + ".bias"))
            return out.view(batch, n, count, head_dim).transpose(1, 2)

        y = F.rms_norm(h, width, w(p + "input_layernorm.weight"), eps)
        q = _rotate(project(y, "self_attn.q_proj", heads), cos, sin)
        k = _rotate(project(y, "self_attn.k_proj", kv_heads), cos, sin)
        v = project(y, "self_attn.v_proj", kv_heads)
        o = F.scaled_dot_product_attention(q, k, v, scale=head_dim ** -0.5, enable_gqa=kv_heads != heads)
        h = h + F.linear(o.transpose(1, 2).reshape(batch, n, -1), w(p + "self_attn.o_proj.weight"), b(p + "self_attn.o_proj.bias"))
        y = F.rms_norm(h, width, w(p + "post_attention_layernorm.weight"), eps)
        gate = act(F.linear(y, w(p + "mlp.gate_proj.weight"), b(p + "mlp.gate_proj.bias")))
        up = F.linear(y, w(p + "mlp.up_proj.weight"), b(p + "mlp.up_proj.bias"))
        h = h + F.linear(gate * up, w(p + "mlp.down_proj.weight"), b(p + "mlp.down_proj.bias"))
    h = F.rms_norm(h, width, w("model.norm.weight"), eps)
    return F.linear(h, w("lm_head.weight"), b("lm_head.bias"))
