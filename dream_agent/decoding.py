"""One decoding step's pieces, shared by the sampler, the search and DreamOn's infill.

A step lays templates out as a batch (`collate`), asks the model for logits (that happens in
`dream_agent.batching`, the one place rows meet the model), forbids what the template and
MASK rule out (`constrain`), turns logits into probabilities as Dream does (`token_probs`),
picks tokens (`choose`) and ranks positions by confidence (`CONFIDENCE`, Dream's `alg`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .template import Template

# Dream's diffusion_generate on transformers 4.46, called without top_k, samples with top_k=50: the
# legacy generation defaults of the model config (Dream's demo relies on it). None = no top-k.
DREAM_TOP_K = 50


# ---- token choice (Dream's sample_tokens, with an optional generator) -------------------


def top_p_logits(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    sorted_logits, sorted_idx = torch.sort(logits, descending=True)
    cumulative = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
    remove = cumulative > top_p
    remove[..., 1:] = remove[..., :-1].clone()  # keep the first token that crosses top_p
    remove[..., 0] = False
    mask = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, sorted_idx, remove)
    return logits.masked_fill(mask, torch.finfo(logits.dtype).min)


def top_k_logits(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    top_k = min(top_k, logits.size(-1))
    kth = torch.topk(logits, top_k)[0][..., -1, None]
    return logits.masked_fill(logits < kth, torch.finfo(logits.dtype).min)


def token_probs(logits: torch.Tensor, temperature: float, top_p: float | None, top_k: int | None,
                float32_softmax: bool = False) -> torch.Tensor:
    """Token probabilities (M, V) in the logits' dtype, as Dream computes them; in float32 with
    `float32_softmax` (a departure that changes bf16 fills: ties and rounding of confidences)."""
    if temperature > 0:
        logits = logits / temperature
    # Departure: a row whose every token was forbidden becomes uniform instead of NaN.
    logits = logits.clamp(min=torch.finfo(logits.dtype).min)
    if top_p is not None and top_p < 1:
        logits = top_p_logits(logits, top_p)
    if top_k is not None:
        logits = top_k_logits(logits, top_k)
    return torch.softmax(logits.float() if float32_softmax else logits, dim=-1)  # [M, V]


def choose(probs: torch.Tensor, temperature: float, generator: torch.Generator | None):
    """(probability, token) of each row's choice: argmax at temperature 0, else a draw."""
    if temperature > 0:
        x0 = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        return torch.gather(probs, -1, x0[:, None]).squeeze(-1), x0
    return probs.max(dim=-1)  # (confidence, x0)


# Confidence of a masked position, by Dream's `alg`: higher is revealed first.
def _conf_maskgit_plus(probs, chosen_p):
    return chosen_p


def _conf_topk_margin(probs, chosen_p):
    top2 = torch.topk(probs, 2, dim=-1).values
    return top2[:, 0] - top2[:, 1]


def _conf_entropy(probs, chosen_p):
    return torch.sum(probs * torch.log(probs + 1e-10), dim=-1)  # negative entropy


CONFIDENCE = {"maskgit_plus": _conf_maskgit_plus, "topk_margin": _conf_topk_margin, "entropy": _conf_entropy}
ALGS = ("origin", *CONFIDENCE)


# ---- a batch of templates ---------------------------------------------------------------


def collate(model, templates: Sequence[Template], padding_side: str = "right"):
    """Pad templates into x (masks written), a real-position mask, and the allowed-token table.

    Returns x (B, N), real (B, N) bool, allow_row (B, N): the row of `table` that constrains
    position (b, i), -1 for none, and table (K, V) bool, True = allowed (None: no sets)."""
    B, N = len(templates), max(len(t) for t in templates)
    device = model.device
    x = torch.full((B, N), model.pad_token_id, dtype=torch.long)
    real = torch.zeros((B, N), dtype=torch.bool)
    masked = torch.zeros((B, N), dtype=torch.bool)
    allow_row = torch.full((B, N), -1, dtype=torch.long)
    rows: dict[tuple[int, ...], int] = {}
    for b, t in enumerate(templates):
        n = len(t)
        at = N - n if padding_side == "left" else 0  # where the row's first token goes
        x[b, at:at + n] = t.input_ids
        real[b, at:at + n] = True
        masked[b, at:at + n] = t.masked
        for i, allowed in enumerate(t.allowed):
            if allowed is not None and bool(t.masked[i]):
                allow_row[b, at + i] = rows.setdefault(tuple(allowed), len(rows))
    x[masked] = model.mask_token_id
    table = None
    if rows:
        vocab = getattr(model, "vocab_size", None) or (max(max(k) for k in rows) + 1)
        table = torch.zeros((len(rows), vocab), dtype=torch.bool)
        for allowed, r in rows.items():
            if max(allowed) >= vocab:
                raise ValueError(f"an allowed token id ({max(allowed)}) is outside the model's vocabulary of {vocab}")
            table[r, list(allowed)] = True
        table = table.to(device)
    return x.to(device), real.to(device), allow_row.to(device), table


def constrain(mask_logits: torch.Tensor, allow_rows: torch.Tensor, table: torch.Tensor | None,
              mask_id: int) -> torch.Tensor:
    """Forbidden tokens get the lowest logit: the template's allowed sets, and MASK everywhere.

    Departure: Dream may pick MASK itself as a token; here it never does, so a finished
    fill has no mask left."""
    low = torch.finfo(mask_logits.dtype).min
    mask_logits = mask_logits.clone()
    mask_logits[:, mask_id] = low
    if table is not None:
        constrained = allow_rows >= 0
        if bool(constrained.any()):
            allowed = table[allow_rows[constrained]]  # (K, V)
            mask_logits[constrained] = mask_logits[constrained].masked_fill(~allowed, low)
    return mask_logits
