"""`PlainDreamLM`: a small float32 Dream checkpoint on the CPU, run without transformers.

Importing transformers' Qwen2 modelling code costs about twice `import torch` (it pulls in
torch._dynamo and torch.distributed), more than a bundled model's whole Sudoku solve. For a
checkpoint the toolkit saved itself (one model.safetensors, full attention, default RoPE, float32),
the same pass runs from the safetensors tensors through `functional.dream_logits`, with the
tokenizer read by the `tokenizers` library: `load_model(name, runtime="auto")`, the CLI's default.
The logits equal `DreamDiffusionLM`'s over `DreamModel` bit for bit (tests/test_plain_model.py).
Padded batches, which the plain pass does not cover, go to a `DreamDiffusionLM` of the same
directory, built on first need.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import ModelLoadError
from .diffusion_lm import align_logits
from .functional import ACTIVATIONS, DreamShape, default_rope, dream_logits

# config.json fields the plain pass reads; a config without one of them (a Dream-org checkpoint
# relies on DreamConfig's defaults) goes through transformers.
REQUIRED = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "rms_norm_eps",
            "vocab_size", "mask_token_id", "rope_parameters")


def plain_refusal(directory: Path) -> str | None:
    """Why the checkpoint in `directory` cannot run as a `PlainDreamLM`; None when it can."""
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "its config.json cannot be read"
    if not isinstance(config, dict) or config.get("model_type") != "Dream":
        return "it is not a Dream config"
    if missing := [k for k in REQUIRED if config.get(k) is None]:
        return f"its config.json leaves {missing[0]} to the defaults"
    rope = config["rope_parameters"]
    if not isinstance(rope, dict) or rope.get("rope_type", "default") != "default" or "rope_theta" not in rope:
        return "it scales its rotary embeddings"
    if any(kind != "full_attention" for kind in config.get("layer_types") or ["full_attention"]) or config.get("use_sliding_window"):
        return "not every layer attends to the whole sequence"
    if config.get("hidden_act", "silu") not in ACTIVATIONS:
        return f"its activation {config.get('hidden_act')!r} is not one the plain pass knows"
    if config.get("dtype", config.get("torch_dtype", "float32")) != "float32":
        return "its weights are not float32"
    if not (directory / "model.safetensors").is_file():
        return "its weights are not one model.safetensors"
    if (directory / "adapter_config.json").is_file():
        return "it is an adapter"
    return None


class PlainDreamLM:
    """A `DiffusionLM` over a directory's model.safetensors and tokenizer.json, CPU and float32 only."""

    def __init__(self, directory: str | Path, *, name: str | None = None, sampling: dict | None = None):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from ..tokenization import SavedTokenizer

        directory = Path(directory)
        self.name = name or directory.name
        if (reason := plain_refusal(directory)) is not None:
            raise ModelLoadError(f"model {self.name!r} cannot run without transformers: {reason}")
        self.directory = directory
        self.config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        weights = directory / "model.safetensors"
        try:
            self.weights = load_file(weights)
        except (SafetensorError, OSError) as exc:
            raise ModelLoadError(f"cannot load model {self.name!r}: {weights} is corrupt or truncated "
                                 f"({str(exc).splitlines()[0]})") from None
        if any(t.dtype != torch.float32 for t in self.weights.values()):
            raise ModelLoadError(f"model {self.name!r} cannot run without transformers: its weights are not float32")
        if "lm_head.weight" not in self.weights and self.config.get("tie_word_embeddings"):
            self.weights["lm_head.weight"] = self.weights["model.embed_tokens.weight"]
        self.shape = DreamShape.of(_Fields(self.config))
        self.theta = float(self.config["rope_parameters"]["rope_theta"])
        self.shift = bool(self.config.get("shift_logits", True))
        self.tokenizer = SavedTokenizer(directory) if (directory / "tokenizer.json").is_file() else None
        self.sampling = dict(sampling or {})
        self.mask_token_id = int(self.config["mask_token_id"])
        pad = self.config.get("pad_token_id")
        if pad is None and self.tokenizer is not None:
            pad = self.tokenizer.pad_token_id
        self.pad_token_id = int(pad) if pad is not None else self.mask_token_id
        # as DreamDiffusionLM: the position table of a small model, else Dream's 2048-token training context
        self.max_length = self.shape.absolute_position_embeddings or min(self.config.get("max_position_embeddings", 2048), 2048)
        self._rope: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._padded_lm = None

    device = torch.device("cpu")

    @property
    def vocab_size(self) -> int:
        return int(self.config["vocab_size"])

    @property
    def parameter_count(self) -> int:
        return sum(t.numel() for t in self.weights.values())

    @torch.no_grad()
    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is not None and not bool(attention_mask.all()):
            return self._padded().logits(input_ids, attention_mask)
        n = input_ids.shape[1]
        if n not in self._rope:
            self._rope[n] = default_rope(torch.arange(n), self.shape.head_dim, self.theta)
        cos, sin = self._rope[n]
        return align_logits(dream_logits(self.weights, self.shape, input_ids, cos, sin), self.shift)

    def _padded(self):
        """Padded rows need the masked attention path: the same directory through transformers."""
        if self._padded_lm is None:
            from .loading import load_model

            self._padded_lm = load_model(self.directory, device="cpu", dtype="float32", runtime="transformers")
        return self._padded_lm

    def __repr__(self) -> str:
        return f"PlainDreamLM({self.name!r})"


class _Fields:
    """config.json's dict read as attributes, for `DreamShape.of`."""

    def __init__(self, config: dict):
        self.__dict__.update(config)

    def __getattr__(self, name: str):
        return None
