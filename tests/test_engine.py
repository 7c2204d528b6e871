import pytest
import torch

from dream_agent import Anchor, DiffusionEngine, Slot, Template, TemplateError, load_model


def test_done_criterion_from_a_saved_tiny_config(tiny_dir):
    """The foundation issue's acceptance: a saved tiny DreamConfig loads and fills the example template."""
    lm = load_model(str(tiny_dir), device="cpu")
    t = Template([Anchor([1, 2, 3]), Slot("a", 5), Anchor([4, 5]), Slot("b", 6), Anchor([6])])
    other = Template([Anchor([7, 8, 9, 10]), Slot("c", 2), Anchor([11])])
    for alg in ["origin", "maskgit_plus", "topk_margin", "entropy"]:
        engine = DiffusionEngine(lm, steps=5, alg=alg)
        r = engine.fill([t, other])
        for b, tmpl in enumerate([t, other]):
            row = r.ids[b, : len(tmpl)]
            assert torch.equal(row[tmpl.anchor_mask], tmpl.input_ids[tmpl.anchor_mask])
            assert not (row == lm.mask_token_id).any()


def test_generate_and_infill_with_a_tokenizer(char_dir):
    engine = DiffusionEngine(str(char_dir), device="cpu", steps=8)
    out = engine.generate("hello", max_new_tokens=8)
    assert isinstance(out, str) and len(out) <= 8
    filled = engine.infill("ab [MASK:3] cd [MASK:2]!")
    assert filled.startswith("ab ") and " cd " in filled and filled.endswith("!")
    assert len(filled) <= len("ab ") + 3 + len(" cd ") + 2 + 1  # special tokens decode to nothing


def test_overrides_and_errors(tiny_lm, char_dir):
    engine = DiffusionEngine(tiny_lm, steps=4)
    t = Template([Anchor([1]), Slot("a", 4)])
    assert engine.fill(t, steps=2).nfe <= 2
    with pytest.raises(TemplateError, match="needs a tokenizer"):
        engine.generate("hi")
    with pytest.raises(ValueError, match="unknown alg"):
        DiffusionEngine(tiny_lm, alg="bogus")
    with pytest.raises(TemplateError, match="no \\[MASK:n\\] hole"):
        DiffusionEngine(str(char_dir), device="cpu").infill("no holes")
