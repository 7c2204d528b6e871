"""DreamConfig reads every field of a Dream-org config.json: honoured, or refused with a clear error."""

from __future__ import annotations

import pytest
import torch

from dream_agent.model import DreamConfig, DreamModel

SMALL = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
             num_key_value_heads=1, mask_token_id=63, pad_token_id=0, bos_token_id=1, eos_token_id=2)


def rotary(config: DreamConfig):
    return DreamModel(config).model.rotary_emb


def test_null_rope_scaling_is_plain_rope():
    assert DreamConfig(**SMALL, rope_scaling=None, rope_theta=1e6).rope_parameters == {"rope_type": "default", "rope_theta": 1e6}


@pytest.mark.parametrize("scaling", [{"type": "linear", "factor": 2.0}, {"rope_type": "dynamic", "factor": 2.0},
                                     {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 512}])
def test_rope_scaling_is_honoured(scaling):
    config = DreamConfig(**SMALL, rope_scaling=scaling)
    kind = scaling.get("type", scaling.get("rope_type"))
    assert config.rope_parameters["rope_type"] == kind and config.rope_parameters["factor"] == scaling["factor"]
    assert rotary(config).rope_type == kind
    if kind == "linear":  # positions divided by the factor: frequencies halved
        assert torch.allclose(rotary(config).inv_freq * 2, rotary(DreamConfig(**SMALL)).inv_freq)


@pytest.mark.parametrize("scaling,match", [({"type": "wobbly", "factor": 2}, "rope_scaling type 'wobbly' is not supported"),
                                           ("linear", "must be null or a dict")])
def test_unknown_rope_scaling_is_refused(scaling, match):
    with pytest.raises(ValueError, match=match):
        DreamConfig(**SMALL, rope_scaling=scaling)


def test_sliding_window_is_ignored_with_a_warning_as_dream_does():
    with pytest.warns(UserWarning, match="window is ignored"):
        config = DreamConfig(**SMALL, use_sliding_window=True, sliding_window=4, max_window_layers=1)
    assert config.layer_types == ["full_attention", "full_attention"]
    model = DreamModel(config).eval()
    with torch.no_grad():
        assert model(torch.randint(0, 60, (1, 12))).logits.shape == (1, 12, 64)


def test_small_vocabulary_with_dreams_special_ids_is_a_clear_error():
    with pytest.raises(ValueError, match="mask_token_id 151666 is outside the vocabulary of 100 tokens"):
        DreamConfig(vocab_size=100, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                    num_attention_heads=2, num_key_value_heads=1)


def test_dream_coder_config_differences_load(tmp_path):
    """Dream-Coder-v0's published config differs from Dream-v0's in its context (32768) and bos id
    (151665, `<|beginoftext|>`); the same loading path reads it (docs/DREAM.md)."""
    import json

    from dream_agent.model import load_model

    from .test_dream_fidelity import TINY, tiny_copy

    if not TINY.is_dir():
        pytest.skip("../shared/data/dream_tiny is absent")
    tiny_copy(tmp_path, leave_out=("config.json",))
    config = json.loads((TINY / "config.json").read_text())
    config.update(max_position_embeddings=32768, bos_token_id=151665, max_window_layers=28)
    (tmp_path / "config.json").write_text(json.dumps(config))
    lm = load_model(tmp_path, device="cpu")
    assert lm.model.config.bos_token_id == 151665 and lm.max_length == 2048 and lm.mask_token_id == 151666
