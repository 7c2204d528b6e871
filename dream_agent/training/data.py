"""Training data from a planner's own generator: datasets and the collator.

    collate = PlannerCollator(planner, tokenizer)
    batch = collate(planner.examples(8, random.Random(0)))
    batch["input_ids"]       # (B, N) the filled template, right-padded with pad_token_id
    batch["maskable"]        # (B, N) True at slot positions: what the forward process may mask
    batch["labels"]          # (B, N) input_ids at maskable positions, -100 elsewhere
    batch["attention_mask"]  # (B, N) 1 on real positions

Two datasets: `PlannerDataset` draws n examples once (a fixed set, for HF `Trainer`
epochs); `PlannerStream` generates fresh examples forever, which suits small models
trained from scratch: no overfitting, no data file. Both are deterministic in the seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from planners.base import Example, Planner

from .losses import IGNORE_INDEX


def stream_rng(seed: int, chunk: int) -> random.Random:
    """The generator of chunk `chunk` of a stream: a string seed, stable across Python runs."""
    return random.Random(f"dream-agent/{seed}/{chunk}")


class MemoTokenizer:
    """A tokenizer whose `encode` remembers its answers; everything else passes through.

    Templates encode each anchor and each allowed character one call at a time (a 9x9
    Sudoku: ~400 calls of ~25 us); training encodes the same few strings millions of
    times, so the collator hands planners this wrapper. The cache is bounded.
    """

    MAX_ENTRIES = 200_000

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer
        self._cache: dict[tuple[str, bool], tuple[int, ...]] = {}
        # Read once: a transformers tokenizer resolves these through a slow __getattr__ on every access.
        for name in ("unk_token_id", "mask_token_id", "pad_token_id", "bos_token_id", "eos_token_id"):
            setattr(self, name, getattr(tokenizer, name, None))

    def encode(self, text, add_special_tokens: bool = True, **kwargs):
        if kwargs or not isinstance(text, str):
            return self._tokenizer.encode(text, add_special_tokens=add_special_tokens, **kwargs)
        key = (text, add_special_tokens)
        ids = self._cache.get(key)
        if ids is None:
            if len(self._cache) >= self.MAX_ENTRIES:
                self._cache.clear()
            ids = self._cache[key] = tuple(self._tokenizer.encode(text, add_special_tokens=add_special_tokens))
        return list(ids)

    def __len__(self) -> int:
        return len(self._tokenizer)

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)


class PlannerCollator:
    """Examples (problem + solution) -> a right-padded batch of filled templates."""

    def __init__(self, planner: Planner, tokenizer, *, pad_to_multiple_of: int | None = None):
        self.planner = planner
        self.tokenizer = MemoTokenizer(tokenizer)
        self.pad_token_id = int(tokenizer.pad_token_id)
        self.mask_token_id = tokenizer.mask_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def encode(self, example: Example):
        """One example -> (input_ids (N,), maskable (N,)), checked to be fully filled."""
        if example.solution is None:
            raise ValueError(f"a training example needs a solution; {example.problem!r} has none")
        template = self.planner.encode(example.problem, self.tokenizer, example.solution)
        ids = template.input_ids
        if (self.mask_token_id is not None and bool((ids == self.mask_token_id).any())) or bool((ids < 0).any()):
            raise ValueError(f"planner {self.planner.name!r} left masked positions in a training target")
        return ids, ~template.anchor_mask

    def __call__(self, examples: Sequence[Example]) -> dict[str, torch.Tensor]:
        encoded = [self.encode(ex) for ex in examples]
        n = max(len(ids) for ids, _ in encoded)
        if self.pad_to_multiple_of:
            n = -(-n // self.pad_to_multiple_of) * self.pad_to_multiple_of
        B = len(encoded)
        input_ids = torch.full((B, n), self.pad_token_id, dtype=torch.long)
        maskable = torch.zeros((B, n), dtype=torch.bool)
        attention_mask = torch.zeros((B, n), dtype=torch.long)
        for b, (ids, mk) in enumerate(encoded):
            input_ids[b, : len(ids)] = ids
            maskable[b, : len(ids)] = mk
            attention_mask[b, : len(ids)] = 1
        labels = input_ids.masked_fill(~maskable, IGNORE_INDEX)
        return {"input_ids": input_ids, "maskable": maskable, "labels": labels, "attention_mask": attention_mask}


class PlannerDataset(Dataset):
    """`planner.examples(n, random.Random(seed))`, drawn once."""

    def __init__(self, planner: Planner, n: int, seed: int = 0):
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        self.examples = planner.examples(n, random.Random(seed))

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> Example:
        return self.examples[i]


class PlannerStream(IterableDataset):
    """Fresh examples forever: chunk c is `planner.examples(chunk_size, stream_rng(seed, c))`.

    `start` skips that many examples (resuming a run lands on the same data it would
    have seen). With DataLoader workers, worker w makes chunks w, w+W, ...; with
    `chunk_size` equal to the batch size the DataLoader's round robin over workers then
    yields chunk k as batch k, so the order does not depend on the number of workers
    (when `start` is a multiple of `chunk_size`, as a resumed run's is).
    """

    def __init__(self, planner: Planner, seed: int = 0, *, chunk_size: int = 128, start: int = 0):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        self.planner, self.seed, self.chunk_size, self.start = planner, seed, chunk_size, start

    def chunk(self, c: int) -> list[Example]:
        out = self.planner.examples(self.chunk_size, stream_rng(self.seed, c))
        return out[: self.chunk_size]

    def __iter__(self) -> Iterator[Example]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        first, skip = divmod(self.start, self.chunk_size)
        c = first + worker
        while True:
            examples = self.chunk(c)
            if c == first:
                examples = examples[skip:]
            yield from examples
            c += workers
