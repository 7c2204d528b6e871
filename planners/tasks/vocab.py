"""A word-level vocabulary built from a domain: one token a predicate, an action, an object slot.

    tok = domain_tokenizer(domain, max_objects={"o": 8})
    tok.save_pretrained(dir); AutoTokenizer.from_pretrained(dir)   # like the character tokenizers

A user's own domain gets its own tokenizer; a model trained on it reads `object_limits(tok)` back
(how many objects of each type it has slots for).
"""

from __future__ import annotations

import re

from dream_agent.tokenization import SPECIAL_TOKENS

from .domain import Domain, object_key

INIT, GOAL, NOT, PLAN, NOOP, NONE = "init", "goal", "not", "plan", "noop", "_"
STRUCTURE = [INIT, GOAL, NOT, PLAN, NOOP, NONE]
OBJECT_TOKEN = re.compile(r"^(.+?)(\d+)$")


def _word(name: str) -> str:
    return f"@{name}"  # a predicate or action name can never collide with a structure word or object slot


def domain_words(domain: Domain) -> tuple[list[str], list[str]]:
    return [_word(p) for p in domain.predicates], [_word(a) for a in domain.schemas]


def domain_tokenizer(domain: Domain, max_objects: dict[str, int]):
    """The domain's word-level `PreTrainedTokenizerFast` (transformers loads here, not when planners are listed)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    preds, acts = domain_words(domain)
    objects = [f"{key}{i + 1}" for key, n in sorted(max_objects.items()) for i in range(n)]
    words = SPECIAL_TOKENS + STRUCTURE + preds + acts + objects
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL_TOKENS[2]))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=SPECIAL_TOKENS[0], mask_token=SPECIAL_TOKENS[1],
                                   unk_token=SPECIAL_TOKENS[2], bos_token=SPECIAL_TOKENS[3], eos_token=SPECIAL_TOKENS[4])


def object_limits(tokenizer, domain: Domain) -> dict[str, int]:
    """Object slots of each type in a domain tokenizer's vocabulary."""
    keys = {object_key(t) for t in domain.types} | {"o"}
    out: dict[str, int] = {}
    for word in tokenizer.get_vocab():
        m = OBJECT_TOKEN.match(word)
        if m and m.group(1) in keys:
            out[m.group(1)] = max(out.get(m.group(1), 0), int(m.group(2)))
    return out


def check_vocabulary(tokenizer, domain: Domain) -> None:
    """A one-line error when the model's tokenizer was not built for this domain."""
    from dream_agent.errors import ProblemError

    vocab = tokenizer.get_vocab()
    preds, acts = domain_words(domain)
    missing = [w for w in STRUCTURE + preds + acts if w not in vocab]
    if missing:
        raise ProblemError(f"the model was not trained for domain {domain.name!r}: its vocabulary has no "
                           f"{missing[0].lstrip('@')!r}; train one with `dream-agent train tasks --domain ...`")
