"""Models for the examples: the one asked for, a bundled one, or a tiny random one built on the fly.

A tiny random model runs anywhere in a second but writes noise: the examples then show the plumbing
(prompts, chains, valid JSON, tool calls), not answers. Each example says which model it used.
"""

from __future__ import annotations

import argparse

import torch

from dream_agent import DiffusionEngine, DreamConfig, DreamDiffusionLM, DreamModel
from dream_agent.model import bundled_models, load_model
from dream_agent.tokenization import char_tokenizer

PRINTABLE = "".join(chr(c) for c in range(32, 127)) + "\n"
TINY_NOTE = "a tiny random model built on the fly (its output is noise; the plumbing is what this shows)"


def tiny_random_lm(alphabet: str = PRINTABLE, seed: int = 0) -> DreamDiffusionLM:
    tok = char_tokenizer(alphabet)
    cfg = DreamConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      absolute_position_embeddings=512, shift_logits=False, rope_theta=10000.0,
                      mask_token_id=tok.mask_token_id, pad_token_id=tok.pad_token_id,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    with torch.random.fork_rng():  # a fixed model, without touching the caller's random state
        torch.manual_seed(seed)
        model = DreamModel(cfg)
    return DreamDiffusionLM(model, tok, name="tiny-random")


def text_engine(model: str | None, tiny: bool) -> tuple[DiffusionEngine, str]:
    """For free text: `--model` (e.g. Dream-org/Dream-v0-Instruct-7B on a GPU), else a tiny random model.
    The bundled models are trained on their planner's templates only, so they are no use here."""
    if model and not tiny:
        return DiffusionEngine(load_model(model)), f"model {model}"
    return DiffusionEngine(tiny_random_lm()), f"no --model given: {TINY_NOTE}"


def planner_engine(planner, model: str | None, tiny: bool) -> tuple[DiffusionEngine, str]:
    """For a planner: `--model`, else its bundled model if this install has one, else a tiny random one."""
    if not tiny:
        if model:
            return DiffusionEngine(load_model(model)), f"model {model}"
        if planner.name in bundled_models():
            return DiffusionEngine(load_model(planner.name)), f"the bundled {planner.name} model"
    return DiffusionEngine(tiny_random_lm(planner.alphabet)), f"no bundled {planner.name} model used: {TINY_NOTE}"


def text_engine_from_args(argv: list[str] | None, description: str) -> DiffusionEngine:
    """An example's command line (--model, --tiny) -> its text engine, saying which model it is."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", help="a model path or hub id")
    parser.add_argument("--tiny", action="store_true", help="use a tiny random model even if --model is given")
    args = parser.parse_args(argv)
    engine, note = text_engine(args.model, args.tiny)
    print(f"[model: {note}]")
    return engine
