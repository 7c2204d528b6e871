"""Masked templates: fixed anchors where the answer is known, masked slots where it is not.

    t = Template([Anchor("The answer is "), Slot("answer", 5, allowed="0123456789"), Anchor(".")], tok)
    t.input_ids    # LongTensor [N], MASK at slot positions
    t.anchor_mask  # BoolTensor [N], True where the problem fixes the token
    t.masked       # BoolTensor [N], True where the sampler must fill
    t.allowed      # per position: tuple of allowed token ids, or None (anything)
    t.slots        # {"answer": [14, 15, 16, 17, 18]}
    t.read(ids)    # {"answer": "42000"}

A template carries no model: where the mask id is not known yet (no tokenizer, no
`mask_token_id`), masked positions hold -1 and the sampler writes the model's mask id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import TemplateError, quoted

if TYPE_CHECKING:  # torch loads when a template is built, not when a planner's parser is imported
    import torch

UNKNOWN_MASK = -1  # placeholder id for masked positions until a model supplies its mask id
MAX_POSITIONS = 1 << 20  # no model here reads a million positions: a longer template is a mistake, not a job


@dataclass(frozen=True)
class Anchor:
    """Fixed content: text (needs a tokenizer) or token ids."""

    content: str | Sequence[int]


@dataclass(frozen=True)
class Slot:
    """`length` masked positions the model fills; `allowed` limits the tokens each may take.

    `allowed` holds token ids or strings; a string stands for one token, and a plain
    string such as "0123456789" is read as its characters when the tokenizer has them.
    """

    name: str
    length: int
    allowed: Sequence[int | str] | str | None = None


class Template:
    def __init__(
        self,
        segments: Sequence[Anchor | Slot],
        tokenizer=None,
        *,
        mask_token_id: int | None = None,
        max_length: int | None = None,
    ):
        import torch

        self.tokenizer = tokenizer
        if mask_token_id is None and tokenizer is not None:
            mask_token_id = getattr(tokenizer, "mask_token_id", None)
        self.mask_token_id = mask_token_id
        if isinstance(segments, (str, bytes)) or not isinstance(segments, Sequence):
            raise TemplateError(f"a template is a list of Anchor and Slot segments, not {type(segments).__name__}")
        self.segments = list(segments)
        # Lengths are checked before any list of that length is built.
        for seg in self.segments:
            if isinstance(seg, Slot) and (not isinstance(seg.length, int) or isinstance(seg.length, bool)):
                raise TemplateError(f"slot {seg.name!r} has length {quoted(seg.length)}; a length is a whole number")
        if (total := sum(seg.length for seg in self.segments if isinstance(seg, Slot))) > MAX_POSITIONS:
            raise TemplateError(f"the slots hold {total:,} positions, more than {MAX_POSITIONS:,}")

        ids: list[int] = []
        anchor: list[bool] = []
        allowed: list[tuple[int, ...] | None] = []
        self.slots: dict[str, list[int]] = {}
        for seg in self.segments:
            if isinstance(seg, Anchor):
                piece = self._anchor_ids(seg.content)
                ids += piece
                anchor += [True] * len(piece)
                allowed += [None] * len(piece)
            elif isinstance(seg, Slot):
                if seg.length <= 0:
                    raise TemplateError(f"slot {seg.name!r} has length {seg.length}; a slot needs at least one position")
                if seg.name in self.slots:
                    raise TemplateError(f"slot name {seg.name!r} is used twice; slot names must be unique")
                ids_allowed = self._allowed_ids(seg)
                self.slots[seg.name] = list(range(len(ids), len(ids) + seg.length))
                ids += [UNKNOWN_MASK if mask_token_id is None else mask_token_id] * seg.length
                anchor += [False] * seg.length
                allowed += [ids_allowed] * seg.length
            else:
                raise TemplateError(f"a template segment must be Anchor or Slot, not {type(seg).__name__}")
        if not ids:
            raise TemplateError("the template is empty")
        if max_length is not None and len(ids) > max_length:
            raise TemplateError(f"the template has {len(ids)} tokens, more than the model's context of {max_length}")

        self.input_ids = torch.tensor(ids, dtype=torch.long)  # [N]
        self.anchor_mask = torch.tensor(anchor, dtype=torch.bool)  # [N]
        self.masked = ~self.anchor_mask  # [N] positions still to fill
        self.allowed = allowed

    # ---- construction helpers -------------------------------------------------------

    @classmethod
    def parse(cls, text: str, tokenizer, **kwargs) -> Template:
        """`"The answer is {answer:5}."` -> Anchor("The answer is "), Slot("answer", 5), Anchor(".")."""
        if not isinstance(text, str):
            raise TemplateError(f"template text is a string, not {type(text).__name__}")
        segments: list[Anchor | Slot] = []
        pos = 0
        for m in re.finditer(r"\{(\w+):(-?[0-9]+)\}", text):
            if m.start() > pos:
                segments.append(Anchor(text[pos : m.start()]))
            segments.append(Slot(m.group(1), slot_length(m.group(2), m.group(1))))
            pos = m.end()
        if pos < len(text):
            segments.append(Anchor(text[pos:]))
        if not any(isinstance(s, Slot) for s in segments):
            raise TemplateError("the template text has no {name:length} slot")
        return cls(segments, tokenizer, **kwargs)

    def _anchor_ids(self, content: str | Sequence[int]) -> list[int]:
        if isinstance(content, str):
            if self.tokenizer is None:
                raise TemplateError("a text anchor needs a tokenizer; pass token ids or a tokenizer")
            ids = list(self.tokenizer.encode(content, add_special_tokens=False))
            unk = getattr(self.tokenizer, "unk_token_id", None)
            if unk is not None and unk in ids:
                raise TemplateError(f"the tokenizer has no token for part of {content!r}")
            return ids
        return [int(i) for i in content]

    def _token_id(self, token: int | str) -> int:
        if isinstance(token, int):
            return token
        if self.tokenizer is None:
            raise TemplateError(f"allowed token {token!r} is text; pass token ids or a tokenizer")
        ids = self.tokenizer.encode(token, add_special_tokens=False)
        unk = getattr(self.tokenizer, "unk_token_id", None)
        if len(ids) != 1 or ids[0] == unk:
            raise TemplateError(f"allowed token {token!r} is not a single token of this tokenizer")
        return int(ids[0])

    def _allowed_ids(self, slot: Slot) -> tuple[int, ...] | None:
        if slot.allowed is None:
            return None
        items: Iterable[int | str] = list(slot.allowed) if isinstance(slot.allowed, str) else slot.allowed
        out = tuple(sorted({self._token_id(t) for t in items}))
        if not out:
            raise TemplateError(f"slot {slot.name!r} allows no token at all")
        return out

    # ---- use ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.input_ids.numel())

    def __repr__(self) -> str:
        return f"Template(len={len(self)}, slots={list(self.slots)}, masked={int(self.masked.sum())})"

    def with_values(self, ids: torch.Tensor | Sequence[int], remask: Iterable[int] = ()) -> Template:
        """A copy whose slot positions hold `ids`, except `remask` positions, which are masked again.

        This is how refinement keeps the positions a validator accepted and asks the
        model again for the rest.
        """
        import torch

        ids = torch.as_tensor(ids, dtype=torch.long)[: len(self)]
        new = object.__new__(Template)
        new.__dict__.update(self.__dict__)
        new.input_ids = torch.where(self.anchor_mask, self.input_ids, ids)
        new.masked = torch.zeros_like(self.masked)
        remask = [int(p) for p in remask]
        if any(self.anchor_mask[p] for p in remask):
            raise TemplateError("an anchor position cannot be re-masked")
        new.masked[remask] = True
        new.input_ids[new.masked] = UNKNOWN_MASK if self.mask_token_id is None else self.mask_token_id
        return new

    def slot_of(self, position: int) -> str | None:
        for name, positions in self.slots.items():
            if position in positions:
                return name
        return None

    def read(self, ids: torch.Tensor | Sequence[int]) -> dict[str, str | list[int]]:
        """Slot name -> decoded text (with a tokenizer; special tokens dropped) or token ids."""
        import torch

        ids = torch.as_tensor(ids).tolist()
        out: dict[str, str | list[int]] = {}
        for name, positions in self.slots.items():
            piece = [ids[p] for p in positions]
            out[name] = self.tokenizer.decode(piece, skip_special_tokens=True) if self.tokenizer is not None else piece
        return out


def slot_length(digits: str, name: str) -> int:
    """A slot length written in text ("{name:12}", "[MASK:12]"), read without Python's 4,300-digit limit."""
    if len(digits.lstrip("-0")) > len(str(MAX_POSITIONS)):
        raise TemplateError(f"slot {name!r} has length {quoted(digits)}, more than {MAX_POSITIONS:,} positions")
    return int(digits)
