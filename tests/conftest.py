"""Shared fixtures: tiny random Dream models saved the way real checkpoints are."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import settings

# Property-based tests (tests/test_properties.py): a bounded run in CI, 100,000 examples a target in
# the long run (benchmarks/property_run.py). No example database: runs do not depend on earlier ones.
settings.register_profile("ci", max_examples=150, deadline=None, database=None)
settings.register_profile("long", max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", 100_000)), deadline=None,
                          database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

from dream_agent import DreamConfig, DreamModel, load_model
from dream_agent.tokenization import char_tokenizer


def tiny_config(**overrides) -> DreamConfig:
    kwargs = dict(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, mask_token_id=63, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        max_position_embeddings=512, rope_theta=10000.0,
    )
    kwargs.update(overrides)
    return DreamConfig(**kwargs)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A tiny Dream checkpoint directory without tokenizer files (ids-only templates)."""
    path = tmp_path_factory.mktemp("tiny_dream")
    torch.manual_seed(0)
    DreamModel(tiny_config()).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_lm(tiny_dir):
    return load_model(str(tiny_dir), device="cpu")


@pytest.fixture(scope="session")
def char_dir(tmp_path_factory):
    """A tiny model with a character tokenizer over printable ASCII and no logit shift."""
    path = tmp_path_factory.mktemp("char_dream")
    tok = char_tokenizer([chr(c) for c in range(32, 127)] + ["\n"])
    torch.manual_seed(0)
    cfg = tiny_config(vocab_size=len(tok), mask_token_id=tok.mask_token_id, pad_token_id=tok.pad_token_id,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, shift_logits=False,
                      absolute_position_embeddings=256)
    DreamModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path
