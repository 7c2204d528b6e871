"""DreamOn's variable-length infill: an expand token grows the span, end-of-text inside it shrinks it."""

from __future__ import annotations

import pytest
import torch

from dream_agent import DiffusionEngine, TemplateError
from dream_agent.dreamon import expand_token_id, infill_variable
from dream_agent.model import DreamConfig, DreamDiffusionLM, DreamModel
from dream_agent.tokenization import char_tokenizer

MASK, EOS, EXPAND, V = 1, 4, 30, 32


class ScriptedLM:
    """Predicts, for every masked position, the token its script names for that pass (a fake DreamOn)."""

    mask_token_id, pad_token_id, tokenizer, max_length, device = MASK, 0, None, None, torch.device("cpu")

    def __init__(self, script):
        self.script, self.calls = script, 0

    def logits(self, x, attention_mask=None):
        token = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        out = torch.zeros(x.shape[0], x.shape[1], V)
        out[..., token] = 5.0
        return out


def fill(script, **kw):
    return infill_variable(ScriptedLM(script), [2, 7], [8, EOS], expand_id=EXPAND, delete_id=EOS, **kw)


def test_expand_turns_one_mask_into_two():
    result = fill([EXPAND, EXPAND, 10], initial=2, max_new_tokens=8)
    assert result.expansions == 2 and result.ids == [10] * 4  # 2 masks, +1, +1, then every one filled


def test_end_of_text_inside_the_span_is_deleted():
    result = fill([EOS, 11], initial=3, max_new_tokens=8)
    assert result.deletions == 1 and result.ids == [11, 11]


def test_span_never_grows_past_max_new_tokens():
    result = fill([EXPAND], initial=2, max_new_tokens=5)  # the model always wants to expand
    assert len(result.ids) == 5 and EXPAND not in result.ids  # expansion forbidden once full


def test_whole_span_deleted_gives_empty_middle():
    result = fill([EOS], initial=3, max_new_tokens=8)
    assert result.ids == [] and result.deletions == 3


def tiny_dreamon(vocab_with_expand: bool):
    tok = char_tokenizer("abcdefghijklmnopqrstuvwxyz ():=+\n")
    if vocab_with_expand:
        tok.add_special_tokens({"additional_special_tokens": ["<|expand|>"]})
    torch.manual_seed(0)
    cfg = DreamConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, mask_token_id=tok.mask_token_id,
                      pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    return DreamDiffusionLM(DreamModel(cfg), tok)


def test_engine_uses_dreamon_for_a_hole_of_unknown_length():
    lm = tiny_dreamon(True)
    assert expand_token_id(lm) == lm.tokenizer.convert_tokens_to_ids("<|expand|>")
    out = DiffusionEngine(lm).infill("def f(x):\n    return [MASK]\n", max_new_tokens=12)
    assert out.startswith("def f(x):\n    return ") and out.endswith("\n")
    assert len(out) <= len("def f(x):\n    return \n") + 12


def test_hole_of_unknown_length_needs_dreamon():
    with pytest.raises(TemplateError, match="needs a DreamOn model"):
        DiffusionEngine(tiny_dreamon(False)).infill("x = [MASK]")
    with pytest.raises(TemplateError, match="exactly one"):
        DiffusionEngine(tiny_dreamon(True)).infill("x = [MASK] + [MASK:2]")
