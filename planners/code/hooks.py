"""Cheap, sound constraints on a partial fill: is it already a dead end?

The known text is everything before the first masked position: anchors and revealed hole
tokens. It is a dead end when

  - Python rejects it on a line that is already complete: the parser (PEG) reports an error
    at the furthest token it examined, so an error on a line before the cut cannot be undone
    by any continuation, except the errors that only mean "not finished yet" (a bracket or a
    triple-quoted string still open, a block still to come);
  - a hole's known tokens already spell a name or import the rules forbid, as a whole token
    (not the last one, which may still grow: `ev` could become `every`).

Brackets are covered by the first rule: a closer without its opener, or the wrong closer, is
an error on its line as soon as the line is complete. Sound means never a false dead end:
tests/test_code_planner.py cuts every HumanEval reference fill at every character and
checks that none is called one.
"""

from __future__ import annotations

import io
import tokenize
import warnings
from typing import TYPE_CHECKING

from dream_agent.template import Template

from .skeleton import CodeProblem, Hole

if TYPE_CHECKING:
    import torch

NOT_FINISHED = ("was never closed", "expected 'except' or 'finally' block", "unterminated triple-quoted", "unexpected EOF", "expected an indented block",
                "incomplete input")


def prefix_is_dead(prefix: str, forbidden: frozenset[str] = frozenset(), hole_start: int | None = None,
                   fills: list[tuple[int, int]] | None = None) -> str | None:
    """Why no continuation of `prefix` can be a valid program (None: it may still be). A forbidden
    name counts only inside the fill: the spans `fills` (start, end), or from `hole_start` on."""
    last_line = prefix.count("\n") + 1
    try:
        with warnings.catch_warnings():  # a fill such as "1if" warns before it fails; the warning is noise here
            warnings.simplefilter("ignore")
            compile(prefix, "<prefix>", "exec", dont_inherit=True, flags=0x400)  # PyCF_ONLY_AST: no code generated
    except SyntaxError as e:
        if e.lineno is not None and e.lineno < last_line and not any(s in (e.msg or "") for s in NOT_FINISHED):
            return f"syntax error on line {e.lineno}: {e.msg}"
    except ValueError:  # a NUL byte: no continuation helps
        return "the fill holds a NUL byte"
    if fills is None and hole_start is not None:
        fills = [(hole_start, len(prefix))]
    if forbidden and fills:
        toks = []
        try:
            for t in tokenize.generate_tokens(io.StringIO(prefix).readline):
                toks.append(t)
        except (tokenize.TokenError, IndentationError, SyntaxError):
            pass
        offsets = [0]
        for line in prefix.splitlines(keepends=True):
            offsets.append(offsets[-1] + len(line))
        names = [t for t in toks if t.type == tokenize.NAME]
        for t in names[:-1]:  # the last name may still be growing
            start = offsets[t.start[0] - 1] + t.start[1]
            if t.string in forbidden and any(lo <= start < hi for lo, hi in fills):
                return f"the fill uses the forbidden name {t.string!r}"
    return None


class DeadEnd:
    """`dead_end(x)` for `dream_agent.search.backtrack`: (B, N) ids -> (B,) bool."""

    def __init__(self, problem: CodeProblem, template: Template, tokenizer, layout: list[tuple[str | Hole, list[int]]]):
        self.problem = problem
        self.tokenizer = tokenizer
        self.layout = layout  # each piece with its template positions
        self.mask_id = template.mask_token_id
        self.skip = {i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id) if i is not None}
        rules = problem.rules
        self.forbidden = frozenset(rules.forbid_names | rules.forbid_imports)
        self._text: dict[int, str] = {}
        self.reasons: list[str] = []  # why each dead end was called (for tests and the curious)

    def _token_text(self, i: int) -> str:
        if i not in self._text:
            self._text[i] = "" if i in self.skip else self.tokenizer.decode([i])
        return self._text[i]

    def known_prefix(self, row: list[int]) -> tuple[str, list[tuple[int, int]]]:
        """The text before the first masked position, and the (start, end) spans of fill text in it
        (the fixed code between holes is the user's: its names are not the fill's)."""
        parts: list[str] = []
        fills: list[tuple[int, int]] = []
        at = 0
        for piece, positions in self.layout:
            if isinstance(piece, str):
                parts.append(piece)
                at += len(piece)
                continue
            start = at
            for p in positions:
                text = "" if row[p] == self.mask_id else self._token_text(row[p])
                if row[p] == self.mask_id or "\ufffd" in text:  # masked, or a partial UTF-8 byte of a BPE token
                    return "".join(parts), fills + [(start, at)]
                parts.append(text)
                at += len(text)
            fills.append((start, at))
        return "".join(parts), fills

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        for row in x.tolist():
            prefix, fills = self.known_prefix(row)
            reason = prefix_is_dead(prefix, self.forbidden, fills=fills) if fills else None
            if reason:
                self.reasons.append(reason)
            out.append(reason is not None)
        import torch  # here: listing planners loads no torch

        return torch.tensor(out, dtype=torch.bool)
