"""Variable-length infilling, as DreamOn (Dream-org/DreamOn-v0-7B) does it.

A fixed-length hole forces a length on the answer. DreamOn was trained with two extra moves on
masked positions: predicting the expand token (151667, `<|expand|>`) turns that position into two
masks, and predicting end-of-text inside the span deletes the position. The span starts with a few
masks and grows or shrinks until no mask is left:

    prompt = [bos] + prefix + [MASK] * initial + suffix + [eos]      (DreamOn's README layout)
    each pass: the model scores every masked span position; the `per_step` most confident are
    revealed (Dream's confidences: entropy, maskgit_plus, topk_margin); a revealed end-of-text is
    cut out; a revealed expand becomes two masks; expansion is forbidden once the span holds
    `max_new_tokens` positions or the expansion budget (2 x max_new_tokens) is spent.

Departures from DreamOn's sampler: the span lives in a tensor of its current length (DreamOn keeps a
fixed buffer and an attention window over it: the same positions and attention), and the mask token
itself is never chosen (as in `denoise`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .decoding import CONFIDENCE, choose, token_probs

EXPAND_TOKEN = "<|expand|>"


@dataclass
class VariableFill:
    ids: list[int]  # the span's tokens, as long as the model made it
    nfe: int  # forward passes
    expansions: int  # expand tokens turned into two masks
    deletions: int  # end-of-text tokens cut out of the span


def expand_token_id(model) -> int | None:
    """The model's expand token: its config's `expand_token_id`, else the tokenizer's `<|expand|>`; None for Dream."""
    config = getattr(getattr(model, "model", None), "config", None)
    if getattr(config, "expand_token_id", None) is not None:
        return int(config.expand_token_id)
    tok = getattr(model, "tokenizer", None)
    if tok is None or EXPAND_TOKEN not in tok.get_vocab():
        return None
    return int(tok.convert_tokens_to_ids(EXPAND_TOKEN))


@torch.no_grad()
def infill_variable(
    model,
    prefix: list[int],
    suffix: list[int],
    *,
    expand_id: int,
    delete_id: int,
    initial: int = 4,
    max_new_tokens: int = 64,
    alg: str = "entropy",
    temperature: float = 0.0,
    top_p: float | None = None,
    top_k: int | None = None,
    alg_temp: float | None = None,
    per_step: int = 1,
    generator: torch.Generator | None = None,
) -> VariableFill:
    """Fill the span between `prefix` and `suffix` (token ids, framing included) at whatever length the model picks."""
    if alg not in CONFIDENCE:
        raise ValueError(f"variable-length infill ranks positions; alg must be one of {', '.join(CONFIDENCE)}, got {alg!r}")
    if not 1 <= initial <= max_new_tokens:
        raise ValueError(f"initial masks must be between 1 and max_new_tokens ({max_new_tokens}), got {initial}")
    if per_step < 1:
        raise ValueError(f"per_step must be at least 1, got {per_step}")
    mask_id = model.mask_token_id
    span = [mask_id] * initial
    budget = 2 * max_new_tokens  # DreamOn's default expansion budget
    expansions = deletions = nfe = 0
    for _ in range(2 * max_new_tokens + 2 * budget):  # DreamOn's bound on passes
        masked = [k for k, t in enumerate(span) if t == mask_id]
        if not masked:
            break
        x = torch.tensor([prefix + span + suffix], device=model.device)  # (1, N)
        logits = model.logits(x)[0, [len(prefix) + k for k in masked]]  # (M, V)
        nfe += 1
        low = torch.finfo(logits.dtype).min
        logits[:, mask_id] = low
        if len(span) >= max_new_tokens or budget == 0:
            logits[:, expand_id] = low  # the span may not grow past its maximum
        probs = token_probs(logits, temperature, top_p, top_k)  # (M, V)
        chosen_p, tokens = choose(probs, temperature, generator)
        conf = CONFIDENCE[alg](probs, chosen_p)  # (M,)
        k = min(per_step, len(masked))
        if alg_temp:
            picks = torch.multinomial(F.softmax(conf.float() / alg_temp, dim=-1), k, generator=generator)
        else:
            picks = torch.topk(conf, k).indices
        for j in picks.tolist():
            span[masked[j]] = int(tokens[j])
        # Deletions, then expansions, right to left so earlier offsets stay valid (DreamOn's order).
        revealed = sorted((masked[j] for j in picks.tolist()), reverse=True)
        for pos in revealed:
            if span[pos] == delete_id:
                del span[pos]
                deletions += 1
        for pos in sorted((p for p in range(len(span)) if span[p] == expand_id), reverse=True):
            if budget == 0 or len(span) >= max_new_tokens:
                span[pos] = mask_id  # no room: the position stays to be filled
                continue
            span[pos:pos + 1] = [mask_id, mask_id]
            expansions += 1
            budget -= 1
    return VariableFill([t for t in span if t != mask_id], nfe, expansions, deletions)
