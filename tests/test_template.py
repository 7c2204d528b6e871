import pytest
import torch
from transformers import AutoTokenizer

from dream_agent import Anchor, Slot, Template, TemplateError
from dream_agent.tokenization import char_tokenizer


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer("0123456789abcdefghijklmnopqrstuvwxyz .=")


def test_segments_positions_and_masks(tok):
    t = Template([Anchor("ab "), Slot("n", 3, allowed="0123456789"), Anchor("."), Slot("w", 2)], tok)
    assert len(t) == 9
    assert t.slots == {"n": [3, 4, 5], "w": [7, 8]}
    assert t.anchor_mask.tolist() == [True] * 3 + [False] * 3 + [True] + [False] * 2
    assert (t.input_ids[~t.anchor_mask] == tok.mask_token_id).all()
    digits = set(tok.convert_tokens_to_ids(list("0123456789")))
    assert set(t.allowed[3]) == digits and t.allowed[0] is None and t.allowed[7] is None
    ids = t.input_ids.clone()
    ids[[3, 4, 5, 7, 8]] = torch.tensor(tok.convert_tokens_to_ids(list("42xyz")))
    assert t.read(ids) == {"n": "42x", "w": "yz"}


def test_parse(tok):
    t = Template.parse("the answer is {answer:5}.", tok)
    assert list(t.slots) == ["answer"] and len(t.slots["answer"]) == 5
    assert tok.decode(t.input_ids[:14]) == "the answer is "


def test_token_ids_without_tokenizer():
    t = Template([Anchor([1, 2, 3]), Slot("a", 5), Anchor([4, 5]), Slot("b", 6), Anchor([6])])
    assert t.input_ids[:3].tolist() == [1, 2, 3] and (t.input_ids[3:8] == -1).all()
    assert t.read(torch.arange(17)) == {"a": [3, 4, 5, 6, 7], "b": [10, 11, 12, 13, 14, 15]}


@pytest.mark.parametrize(
    "segments,message",
    [
        ([Slot("a", 0)], "at least one position"),
        ([Slot("a", 1), Slot("a", 2)], "used twice"),
        ([Anchor("ABC"), Slot("a", 1)], "no token"),
        ([Slot("a", 1, allowed=["ab"])], "not a single token"),
        ([Anchor("a" * 20), Slot("a", 20)], "more than the model's context"),
    ],
)
def test_errors_are_template_errors(tok, segments, message):
    with pytest.raises(TemplateError, match=message):
        Template(segments, tok, max_length=32)


def test_text_anchor_needs_tokenizer():
    with pytest.raises(TemplateError, match="needs a tokenizer"):
        Template([Anchor("hi"), Slot("a", 1)])


def test_parse_without_slot(tok):
    with pytest.raises(TemplateError, match="no \\{name:length\\} slot"):
        Template.parse("plain text", tok)


def test_with_values_keeps_anchors_and_remasks(tok):
    t = Template([Anchor("a"), Slot("x", 2), Anchor("b"), Slot("y", 1)], tok)
    filled = torch.tensor(tok.convert_tokens_to_ids(list("z12b3")))
    again = t.with_values(filled, remask=t.slots["x"])
    assert again.masked.tolist() == [False, True, True, False, False]
    assert int(again.input_ids[4]) == tok.convert_tokens_to_ids("3")
    with pytest.raises(TemplateError, match="anchor"):
        t.with_values(filled, remask=[0])


def test_char_tokenizer_round_trip(tmp_path, tok):
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    text = "abc 123.=9"
    assert again.decode(again.encode(text, add_special_tokens=False)) == text
    assert again.mask_token_id == tok.mask_token_id == 1
