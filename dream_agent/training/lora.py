"""LoRA adapters for `DreamModel` through peft: add, save, reload, merge.

    model = add_lora(DreamModel.from_pretrained("Dream-org/Dream-v0-Base-7B"), r=16)
    DiffusionTrainer(model=model, ...).train()      # only the adapter weights train
    model.save_pretrained("adapter/")               # adapter_config.json + adapter_model.safetensors
    model = load_lora(DreamModel.from_pretrained(...), "adapter/")
    merged = merge_lora(model)                      # a plain DreamModel again

Why not `task_type="CAUSAL_LM"`: peft's causal-LM wrapper expects a generation API
(`prepare_inputs_for_generation`) that a diffusion model does not have; that is the
error Dream's own tracker reports. Without a task type peft wraps any module, and the
masked-diffusion loss only needs the forward pass.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from peft import LoraConfig, PeftModel, get_peft_model

# Every attention and MLP projection of a Qwen2 block, by the checkpoints' own parameter names.
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def lora_config(r: int = 16, alpha: int | None = None, dropout: float = 0.05,
                target_modules: Sequence[str] = LORA_TARGETS) -> LoraConfig:
    if r < 1:
        raise ValueError(f"LoRA rank must be at least 1, got {r}")
    return LoraConfig(r=r, lora_alpha=alpha if alpha is not None else 2 * r, lora_dropout=dropout,
                      target_modules=list(target_modules), bias="none")


def add_lora(model, config: LoraConfig | None = None, **kwargs) -> PeftModel:
    """Wrap `model` (a DreamModel) with fresh LoRA adapters; the base weights are frozen."""
    return get_peft_model(model, config or lora_config(**kwargs))


def load_lora(model, path: str | os.PathLike, *, trainable: bool = False) -> PeftModel:
    """A saved adapter on top of `model` (the same base it was trained on)."""
    return PeftModel.from_pretrained(model, str(path), is_trainable=trainable)


def merge_lora(model: PeftModel):
    """Fold the adapter into the base weights; returns the plain base model."""
    return model.merge_and_unload()
