"""Character-level tokenizers for the small models a planner trains.

Each character of the planner's alphabet is one token, so a template slot of length n
is exactly n characters. The result is an ordinary `PreTrainedTokenizerFast`: it saves
as tokenizer.json and loads back with `AutoTokenizer.from_pretrained`, or without transformers
as a `SavedTokenizer`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

PAD, MASK, UNK, BOS, EOS = "<|pad|>", "<|mask|>", "<|unk|>", "<|bos|>", "<|eos|>"
SPECIAL_TOKENS = [PAD, MASK, UNK, BOS, EOS]


def char_tokenizer(alphabet: Iterable[str]) -> PreTrainedTokenizerFast:
    """A tokenizer with the special tokens first (pad=0, mask=1, unk=2, bos=3, eos=4), then one token a character."""
    # Imported here: planners read SPECIAL_TOKENS when listed, without paying for transformers.
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars: list[str] = []
    for ch in alphabet:
        if len(ch) != 1:
            raise ValueError(f"alphabet entries must be single characters, got {ch!r}")
        if ch not in chars:
            chars.append(ch)
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + chars)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    # Every character is its own piece, newlines included: with "." a run of newlines stayed one
    # piece ("\n\n" -> unk), which code, unlike grids, has everywhere.
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()  # join pieces back without spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token=PAD, mask_token=MASK, unk_token=UNK, bos_token=BOS, eos_token=EOS
    )


class SavedTokenizer:
    """A saved tokenizer.json (and its tokenizer_config.json) read with the `tokenizers` library
    alone: the calls the planners, templates and sampler make of a transformers tokenizer, with
    the same ids and text (tests/test_plain_model.py checks both against `AutoTokenizer`), for
    running a small model without importing transformers (`PlainDreamLM`)."""

    ROLES = ("pad", "mask", "unk", "bos", "eos")

    def __init__(self, directory: str | Path):
        from tokenizers import Tokenizer

        directory = Path(directory)
        self._backend = Tokenizer.from_file(str(directory / "tokenizer.json"))
        config_file = directory / "tokenizer_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
        for role in self.ROLES:
            token = config.get(f"{role}_token")
            token = token.get("content") if isinstance(token, dict) else token
            setattr(self, f"{role}_token", token)
            setattr(self, f"{role}_token_id", self._backend.token_to_id(token) if token else None)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self._backend.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        ids = ids.tolist() if hasattr(ids, "tolist") else ids
        return self._backend.decode([ids] if isinstance(ids, int) else list(ids), skip_special_tokens=skip_special_tokens)

    def convert_ids_to_tokens(self, ids):
        ids = ids.tolist() if hasattr(ids, "tolist") else ids
        if isinstance(ids, int):
            return self._backend.id_to_token(ids)
        return [self._backend.id_to_token(i) for i in ids]

    def convert_tokens_to_ids(self, tokens):
        if isinstance(tokens, str):
            return self._backend.token_to_id(tokens)
        return [self._backend.token_to_id(t) for t in tokens]

    def get_vocab(self) -> dict[str, int]:
        return self._backend.get_vocab(with_added_tokens=True)

    def __len__(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)
