"""Structured output by template: the JSON skeleton of a schema is anchored, the model fills only the values.

    person = ChatDream(engine=engine).with_structured_output(Person).invoke("Describe Ada Lovelace.")

Each value is a slot (see `schema.py` for sizes and types). Which tokens a slot may take is settled
twice: a coarse allowed set in the template (digits for a number, an option's tokens for a choice), and a
logits hook that looks at what the slot already holds each step (after a filler only fillers, a choice
stays consistent with one option, a string stays inside its character budget). Each value is then read
and checked; a value that does not read, or that the schema's validation blames, is re-masked and filled
again (sampled, so the retry can differ), for at most `max_rounds` rounds. The answer is always the
canonical JSON of the values; if it is still invalid at the end, the parser raises
`OutputParserException` naming each field at fault.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import torch
from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import BaseOutputParser
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough

from dream_agent.engine import DiffusionEngine
from dream_agent.template import Anchor, Slot, Template

from .schema import FieldError, JsonSpec, Leaf, Path

DEFAULT_ROUNDS = 3  # one fill and two refills of what failed
RETRY_TEMPERATURE = 0.7  # argmax would often repeat the same value; refine.solve samples the same way
METHODS = ("json_schema", "json_mode", "function_calling")  # names other chat models use; all mean the skeleton here


# ---- which tokens may stand in a value ---------------------------------------------------------------


@dataclass
class TokenTable:
    """Per tokenizer: each token's text and the token sets a JSON value's type allows."""

    filler: int  # the model's pad token: ends a value shorter than its slot
    string_bad: torch.Tensor  # (V,) True where a token may not stand inside a JSON string
    char_len: torch.Tensor  # (V,) characters of each token
    lengths: list[int]  # the same, as a list, for counting on the host
    digits: list[int]  # "0" ... "9"
    zero: list[int]  # "0", which may not lead a number of several digits
    dots: list[int]  # "."
    minus: list[int]  # "-"

    def numeric(self, kind: str, signed: bool) -> list[int]:
        return self.digits + (self.dots if kind == "number" else []) + (self.minus if signed else [])

    def on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(string_bad, char_len) on `device`, copied there once."""
        if self.string_bad.device != device:
            self.string_bad, self.char_len = self.string_bad.to(device), self.char_len.to(device)
        return self.string_bad, self.char_len


_tables: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def token_table(engine: DiffusionEngine) -> TokenTable:
    tok = engine.tokenizer
    vocab = int(getattr(engine.model, "vocab_size", None) or len(tok))
    key = (vocab, engine.model.pad_token_id)
    per_tok = _tables.setdefault(tok, {})
    if key not in per_tok:
        n = min(len(tok), vocab)
        texts = tok.batch_decode([[i] for i in range(n)])  # one pass in the fast tokenizer, cached per tokenizer
        special = set(tok.all_special_ids) | {i for i, t in tok.added_tokens_decoder.items() if t.special}
        bad = [True] * vocab  # ids past the tokenizer (Dream pads its embedding table) stay bad
        char_len = [len(t) for t in texts] + [0] * (vocab - n)
        digits, zero, dots, minus = [], [], [], []
        for i, t in enumerate(texts):
            if i in special or not t:
                continue
            bad[i] = any(c in '"\\\ufffd' or ord(c) < 32 for c in t)
            # Numbers are written a character a token (as Qwen's tokenizer, and so Dream's, splits digits):
            # then a slot of n tokens holds at most n digits, and the bounds in the schema hold.
            if t in "0123456789" and len(t) == 1:
                digits.append(i)
                if t == "0":
                    zero.append(i)
            elif t == ".":
                dots.append(i)
            elif t == "-":
                minus.append(i)
        filler = engine.model.pad_token_id
        bad[filler] = False  # allowed or not by position, in the hook
        char_len[filler] = 0
        per_tok[key] = TokenTable(filler, torch.tensor(bad), torch.tensor(char_len), char_len,
                                  digits, zero, dots, minus)
    return per_tok[key]


# ---- per-slot rules applied every step ------------------------------------------------------------


def _keep_only(row: torch.Tensor, ids: list[int], low: float) -> None:
    kept = row[ids].clone()
    row.fill_(low)
    row[ids] = kept


def _shape(tokens: list[int], mask_id: int, filler: int) -> tuple[list[int], int, int]:
    """Masked offsets, the first filler's offset (len if none), the last content token's offset (-1 if none)."""
    masked = [k for k, t in enumerate(tokens) if t == mask_id]
    first_filler = next((k for k, t in enumerate(tokens) if t == filler), len(tokens))
    last_content = max((k for k, t in enumerate(tokens) if t not in (mask_id, filler)), default=-1)
    return masked, first_filler, last_content


class StringRule:
    """Text, then fillers; no quote, backslash or control character; within `max_length` characters.

    Every allowed token has at least one character, so `min_length` tokens before any filler give at
    least `min_length` characters; a string without `min_length` gets one ("" is rarely what is meant)."""

    def __init__(self, leaf: Leaf, positions: list[int], table: TokenTable):
        self.positions, self.table = positions, table
        self.min_tokens = 1 if leaf.min_length is None else leaf.min_length
        self.max_chars = leaf.max_length

    def allowed(self) -> list[int] | None:
        return None  # a whole vocabulary's worth: enforced in `restrict`, cheaper than a template set

    def restrict(self, tokens: list[int], logits: torch.Tensor, mask_id: int, low: float) -> None:
        t = self.table
        masked, first_filler, last_content = _shape(tokens, mask_id, t.filler)
        if not masked:
            return
        string_bad, char_len = t.on(logits.device)
        idx = torch.tensor([self.positions[k] for k in masked], device=logits.device)
        block = logits[idx].masked_fill_(string_bad, low)  # (M, V)
        room = None
        if self.max_chars is not None:
            used = sum(t.lengths[tok] for tok in tokens[:first_filler] if tok != mask_id)
            room = self.max_chars - used
            block.masked_fill_(char_len > max(room, 0), low)
        for j, k in enumerate(masked):
            if k > first_filler:
                _keep_only(block[j], [t.filler], low)
            elif (k < self.min_tokens or k < last_content) and (room is None or room > 0):
                block[j, t.filler] = low
        logits[idx] = block


class NumberRule:
    """Digits (a leading minus; for a number, one decimal point), then fillers; never a lone minus.

    A positive minimum of d digits asks for at least d digits, the first not 0: `ge=10000, le=99999`
    can then only be filled with a valid value."""

    def __init__(self, leaf: Leaf, positions: list[int], table: TokenTable):
        self.positions, self.table, self.kind = positions, table, leaf.kind
        self.signed = leaf.minimum is None or leaf.minimum < 0
        self.min_tokens = len(str(int(leaf.minimum))) if leaf.minimum is not None and leaf.minimum >= 1 else 1

    def allowed(self) -> list[int]:
        return self.table.numeric(self.kind, self.signed) + [self.table.filler]

    def restrict(self, tokens: list[int], logits: torch.Tensor, mask_id: int, low: float) -> None:
        t = self.table
        masked, first_filler, last_content = _shape(tokens, mask_id, t.filler)
        has_dot = any(tok in t.dots for tok in tokens)
        for k in masked:
            row = logits[self.positions[k]]
            if k > first_filler:
                _keep_only(row, [t.filler], low)
                continue
            banned = list(t.minus) if k > 0 or first_filler == 1 else []  # a minus only leads, before a digit
            if k < self.min_tokens or k < last_content or (k == 1 and tokens[0] in t.minus):
                banned.append(t.filler)
            if k == 0 and self.min_tokens > 1:
                banned += t.zero
            if has_dot:
                banned += t.dots
            if banned:
                row[banned] = low


class ChoiceRule:
    """Exactly one option's tokens (padded with fillers): each step, only options still consistent remain."""

    def __init__(self, leaf: Leaf, positions: list[int], table: TokenTable, options: list[tuple[int, ...]]):
        self.positions, self.options = positions, options

    def allowed(self) -> list[int]:
        return sorted({tok for option in self.options for tok in option})

    def ban(self, tokens: list[int]) -> None:
        """Drop the option the schema's validation rejected, so a refill cannot pick it again."""
        if tuple(tokens) in self.options and len(self.options) > 1:
            self.options = [o for o in self.options if o != tuple(tokens)]

    def restrict(self, tokens: list[int], logits: torch.Tensor, mask_id: int, low: float) -> None:
        masked = [k for k, tok in enumerate(tokens) if tok == mask_id]
        if not masked:
            return
        alive = [o for o in self.options if all(tok in (mask_id, o[k]) for k, tok in enumerate(tokens))]
        if not alive:
            return  # two positions revealed in one step disagree; reading fails and the slot is refilled
        for k in masked:
            _keep_only(logits[self.positions[k]], sorted({o[k] for o in alive}), low)


class SkeletonHook:
    """The sampler's `logits_hook`: every slot's rule, on every row, each step."""

    def __init__(self, rules: dict[str, StringRule | NumberRule | ChoiceRule], mask_id: int):
        self.rules, self.mask_id = rules, mask_id  # by slot name

    def __call__(self, step, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        low = torch.finfo(logits.dtype).min
        for b in range(x.shape[0]):
            row = x[b].tolist()
            for rule in self.rules.values():
                rule.restrict([row[p] for p in rule.positions], logits[b], self.mask_id, low)
        return logits


# ---- the template and the refill loop -----------------------------------------------------------------


def _choice_tokens(tok, leaf: Leaf) -> list[list[int]]:
    out = []
    for text, _ in leaf.options:
        ids = list(tok.encode(text, add_special_tokens=False)) if text else []
        if getattr(tok, "unk_token_id", None) in ids:
            raise ValueError(f"{leaf.where}: the tokenizer cannot write the option {text!r}")
        out.append(ids)
    return out


def skeleton_template(engine: DiffusionEngine, prompt: str,
                      spec: JsonSpec) -> tuple[Template, dict[str, Leaf], SkeletonHook]:
    """The prompt, then the skeleton: literal JSON as anchors, one slot a leaf; and the hook that guards the slots."""
    tok, table = engine.tokenizer, token_table(engine)
    segments: list[Anchor | Slot] = [Anchor(prompt)] if prompt else []
    leaves: dict[str, Leaf] = {}
    rules: dict[str, StringRule | NumberRule | ChoiceRule] = {}
    text = ""
    for part in spec.parts:
        if isinstance(part, str):
            text += part
            continue
        if text:
            segments.append(Anchor(text))
            text = ""
        name = f"leaf{len(leaves)}"
        leaves[name] = part
        length = part.length
        if part.kind == "choice":
            ids = _choice_tokens(tok, part)
            length = max(1, max(len(o) for o in ids))  # the longest option; shorter ones end in fillers
            rules[name] = ChoiceRule(part, [], table, [tuple(o + [table.filler] * (length - len(o))) for o in ids])
        elif part.kind == "string":
            rules[name] = StringRule(part, [], table)
        else:
            rules[name] = NumberRule(part, [], table)
        segments.append(Slot(name, length, allowed=rules[name].allowed()))
    if text:
        segments.append(Anchor(text))
    template = Template(segments, tok, mask_token_id=engine.model.mask_token_id, max_length=engine.model.max_length)
    for name, rule in rules.items():
        rule.positions = template.slots[name]  # known once the template has laid the slots out
    return template, leaves, SkeletonHook(rules, engine.model.mask_token_id)


@dataclass
class JsonFill:
    text: str  # canonical JSON of the values (a value that did not read is there as its raw text, a string)
    valid: bool
    rounds: int
    nfe: int
    errors: list[FieldError]
    prompt_tokens: int
    completion_tokens: int

    def info(self) -> dict[str, Any]:
        return {"finish_reason": "stop", "nfe": self.nfe, "rounds": self.rounds, "valid": self.valid,
                "errors": [str(e) for e in self.errors],
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


def _read(template: Template, leaves: dict[str, Leaf], ids: list[int], filler: int, tok):
    """Filled ids -> (values by path, raw JSON texts by path, errors)."""
    values: dict[Path, Any] = {}
    texts: dict[Path, str] = {}
    errors: list[FieldError] = []
    for name, leaf in leaves.items():
        tokens = [ids[p] for p in template.slots[name]]
        if filler in tokens:
            tokens = tokens[: tokens.index(filler)]
        raw = tok.decode(tokens, skip_special_tokens=True)
        try:
            values[leaf.path] = leaf.from_text(raw)
            texts[leaf.path] = json.dumps(values[leaf.path], ensure_ascii=False)
        except ValueError as e:
            errors.append(FieldError(leaf.path, str(e)))
            texts[leaf.path] = json.dumps(raw, ensure_ascii=False)
    return values, texts, errors


def fill_json(engine: DiffusionEngine, prompt: str, spec: JsonSpec, *, steps: int | None,
              overrides: dict[str, Any], max_rounds: int = DEFAULT_ROUNDS) -> JsonFill:
    """Fill the skeleton after `prompt`; refill what fails to read or validate, up to `max_rounds` fills."""
    if max_rounds < 1:
        raise ValueError(f"max_rounds must be at least 1, got {max_rounds}")
    base, leaves, hook = skeleton_template(engine, prompt, spec)
    name_of = {leaf.path: name for name, leaf in leaves.items()}
    filler = token_table(engine).filler
    prompt_tokens = len(engine.tokenizer.encode(prompt, add_special_tokens=False)) if prompt else 0
    counts = (prompt_tokens, len(base) - prompt_tokens)
    template, nfe = base, 0
    for round_ in range(1, max_rounds + 1):
        settings = dict(overrides)
        if round_ > 1:
            settings["temperature"] = settings.get("temperature", engine.settings.temperature) or RETRY_TEMPERATURE
        n_masked = int(template.masked.sum())
        result = engine.fill(template, steps=min(steps or n_masked, n_masked), logits_hook=hook, **settings)
        nfe += result.nfe
        ids = result.row_ids(0).tolist()
        values, texts, errors = _read(base, leaves, ids, filler, engine.tokenizer)
        if not errors:
            _, errors = spec.check(spec.assemble(values))
        if not errors:
            return JsonFill(spec.render(texts), True, round_, nfe, [], *counts)
        # Re-mask the leaves at fault (every leaf under an error's path; all of them for a model-level error).
        blamed = {name_of[leaf.path] for e in errors for leaf in (spec.leaves_at(e.path) or spec.leaves)}
        for e in errors:
            rule = hook.rules.get(name_of.get(tuple(e.path), ""))
            if isinstance(rule, ChoiceRule):  # the value itself was rejected: offer the others
                rule.ban([ids[p] for p in base.slots[name_of[tuple(e.path)]]])
        template = base.with_values(ids, remask=sorted(p for name in blamed for p in base.slots[name]))
    return JsonFill(spec.render(texts), False, max_rounds, nfe, errors, *counts)


# ---- LangChain: the parser and the runnable ----------------------------------------------------------


class JsonSkeletonParser(BaseOutputParser[Any]):
    """The filled JSON -> the schema's object (a pydantic instance, or a dict); `OutputParserException` if invalid."""

    spec: Any  # a JsonSpec

    def parse(self, text: str) -> Any:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise OutputParserException(f"the structured output is not JSON ({e.msg})", llm_output=text) from None
        result, errors = self.spec.check(obj)
        if errors:
            raise OutputParserException(
                f"the model's fill for {self.spec.title} is still invalid after re-masking the fields at fault: "
                + "; ".join(map(str, errors)), llm_output=text)
        return result

    @property
    def _type(self) -> str:
        return "dream_json_skeleton"


def structured_output(model, schema: Any, *, include_raw: bool = False, method: str = "json_schema",
                      max_rounds: int = DEFAULT_ROUNDS, strict: bool | None = None, **kwargs: Any) -> Runnable:
    """`model` (a `ChatDream` or a `DreamLLM`) | a parser, filling `schema`'s JSON skeleton.

    `method` and `strict` are accepted so code written for other chat models runs unchanged: every method
    is the anchored skeleton here, and the skeleton is always strict.
    """
    if kwargs:
        raise ValueError(f"unsupported arguments {sorted(kwargs)}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if schema is None:
        raise ValueError("structured output needs a schema: a pydantic model, a TypedDict or a JSON schema dict")
    spec = JsonSpec.from_schema(schema)
    bound = {"structured_output": spec, "max_rounds": max_rounds}
    if isinstance(model, BaseChatModel):  # chat models trace the schema under this key
        bound["ls_structured_output_format"] = {"kwargs": {"method": method}, "schema": schema}
    llm = model.bind(**bound)
    parser = JsonSkeletonParser(spec=spec)
    if not include_raw:
        return llm | parser
    parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
    failed = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=llm) | parsed.with_fallbacks([failed], exception_key="parsing_error")
