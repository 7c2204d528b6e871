"""Character-level tokenizers for the small models a planner trains.

Each character of the planner's alphabet is one token, so a template slot of length n
is exactly n characters. The result is an ordinary `PreTrainedTokenizerFast`: it saves
as tokenizer.json and loads back with `AutoTokenizer.from_pretrained`.
"""

from __future__ import annotations

from collections.abc import Iterable
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
