"""Tiny random Dream models with character tokenizers, built in memory for the LangChain tests.

Random weights produce noise, so these tests check plumbing and shapes (a valid skeleton, the right
callbacks, the JSON a tool returns), never that an answer is correct.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from dream_agent import DiffusionEngine, DreamConfig, DreamDiffusionLM, DreamModel
from dream_agent.tokenization import char_tokenizer

PRINTABLE = "".join(chr(c) for c in range(32, 127)) + "\n"


def _random_lm(tok, seed: int, context: int, name: str) -> DreamDiffusionLM:
    cfg = DreamConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=context, rope_theta=10000.0, shift_logits=False,
        absolute_position_embeddings=context, mask_token_id=tok.mask_token_id, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
    )
    with torch.random.fork_rng():  # leave the global seed of other tests alone
        torch.manual_seed(seed)
        model = DreamModel(cfg)
    return DreamDiffusionLM(model, tok, name=name)


def tiny_lm(alphabet: str = PRINTABLE, seed: int = 0, context: int = 512) -> DreamDiffusionLM:
    """A 2-layer, 32-wide random Dream model over `alphabet`, one token a character (built once a setting)."""
    return _tiny_lm(alphabet, seed, context)


@lru_cache(maxsize=None)
def _tiny_lm(alphabet: str, seed: int, context: int) -> DreamDiffusionLM:
    return _random_lm(char_tokenizer(alphabet), seed, context, "tiny-char")


BPE_TEXT = [  # enough to learn multi-character pieces: ' 36', '":', 'lace', and byte pieces of 'é', 'ö'
    '{"name": "Ada Lovelace", "age": 36, "vip": true, "score": 3.14}',
    "héllo wörld 12345 -7 false null [1, 2, 3]",
    "The quick brown fox jumps over the lazy dog in 2024.",
]


@lru_cache(maxsize=None)
def bpe_lm(seed: int = 0) -> DreamDiffusionLM:
    """A random model with a small byte-level BPE tokenizer: tokens of several characters, some of
    them half of a UTF-8 character, as Dream's own tokenizer has."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|pad|>", "<|mask|>", "<|eos|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(BPE_TEXT, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<|pad|>", mask_token="<|mask|>",
                                  eos_token="<|eos|>")
    return _random_lm(tok, seed, 512, "tiny-bpe")


def tiny_engine(alphabet: str = PRINTABLE, seed: int = 0, **settings) -> DiffusionEngine:
    return DiffusionEngine(tiny_lm(alphabet, seed), **settings)
