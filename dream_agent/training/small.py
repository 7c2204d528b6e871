"""Small Dream-architecture models trained from scratch on a planner's generated data.

    tok = char_tokenizer(planner.alphabet)
    config = small_config(tok, size="small", max_length=context_for(planner, tok))
    model = DreamModel(config)

Same code path as Dream 7B (DreamModel on Qwen2's modules, bidirectional attention),
with two dream-agent switches: `shift_logits=False` (trained here, hidden state i predicts
token i) and learned absolute positions (`benchmarks/small_arch.py` measures why).
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass

from dream_agent.model import DreamConfig

from .data import MemoTokenizer


@dataclass(frozen=True)
class SmallSize:
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int


SIZES = {
    # tests and smoke runs: trains a few hundred steps a minute on 2 CPU cores, learns little
    "tiny": SmallSize(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2, intermediate_size=64),
    # ~0.7M parameters: the bundled models (about 1 batch of 128 Sudoku grids a second on 2 CPU cores)
    "small": SmallSize(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4, intermediate_size=256),
    # ~0.76M parameters, wide and shallow: learned fastest per CPU minute in benchmarks/small_arch.py
    # (BENCHMARKS.md, "Small architecture"); measured after the bundled models had started training
    "wide": SmallSize(hidden_size=192, num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=6, intermediate_size=384),
}
ROPE_THETA = 10_000.0  # contexts of a few hundred tokens: Dream's 1e6 would leave most rotary bands unused


def small_config(
    tokenizer,
    *,
    size: str | SmallSize = "small",
    max_length: int,
    absolute_positions: bool = True,
    rope_theta: float = ROPE_THETA,
) -> DreamConfig:
    """A DreamConfig for a character tokenizer (`char_tokenizer`) and contexts up to `max_length`."""
    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
        size = SIZES[size]
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}")
    if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer needs a mask token and a pad token")
    return DreamConfig(
        vocab_size=len(tokenizer),
        **asdict(size),
        max_position_embeddings=max_length,
        rope_parameters={"rope_type": "default", "rope_theta": float(rope_theta)},
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        mask_token_id=tokenizer.mask_token_id,
        shift_logits=False,  # trained from scratch: hidden state i predicts token i
        absolute_position_embeddings=max_length if absolute_positions else None,
        attn_implementation="sdpa",
    )


def longest_template(planner, tokenizer, n: int = 256, seed: int = 0) -> int:
    """The longest filled template among `n` generated examples."""
    tok = MemoTokenizer(tokenizer)
    examples = planner.examples(n, random.Random(f"dream-agent/context/{seed}"))
    return max(len(planner.encode(ex.problem, tok, ex.solution)) for ex in examples)


def context_for(planner, tokenizer, n: int = 256) -> int:
    """Positions a small model gets: the longest generated template plus a margin (a quarter,
    at least 16) for rarer, longer problems, rounded up to a multiple of 16."""
    longest = longest_template(planner, tokenizer, n)
    return 16 * math.ceil((longest + max(16, longest // 4)) / 16)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
