"""Where rows meet the model: decoding jobs, and many of them sharing each forward pass.

A job is a generator: it yields a `Forward` when it needs the model's logits for its rows,
receives them (R, N, V), and returns its result. The sampler (`denoise_job`), the search
(`backtrack_job`) and a whole solve (`solve_job`) are jobs; their plain functions run one
job alone:

    result = run_job(model, job)                                  # one job, one row set a pass
    results = run_jobs(model, jobs, batch_size=32)                # continuous batching
    batcher = Batcher(model, max_batch=32)                        # a server's loop:
    future = batcher.submit(job); while batcher.step(): ...       #   submit from any thread

Continuous batching, as LLM servers do it: each step gathers every running job's pending rows
into one forward pass; a job that finishes frees its rows and the next waiting job takes them
at the next step. By default rows are grouped by sequence length and never padded, so a row's
logits are what it would get alone (a padded row runs through the masked attention path, whose
rounding differs): a problem's result does not depend on which others share its batch.
`pad=True` pads rows of different lengths into one pass instead (fewer passes when lengths vary,
at the cost of that exactness).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

T = TypeVar("T")


@dataclass
class Forward:
    """A job's request for the model's logits of its rows."""

    input_ids: torch.Tensor  # (R, N)
    attention_mask: torch.Tensor | None = None  # (R, N) 1 = real position; None = no padding
    compute: Callable[[], torch.Tensor] | None = None  # a pass the job runs itself (a cached window): runs alone

    @property
    def rows(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def padded(self) -> bool:
        return self.attention_mask is not None and not bool(self.attention_mask.all())


Job = Generator[Forward, torch.Tensor, T]


def run_job(model, job: Job[T]) -> T:
    """Drive one job with the model, one forward pass per request."""
    try:
        request = next(job)
        while True:
            request = job.send(_logits_alone(model, request))
    except StopIteration as done:
        return done.value


def _logits_alone(model, request: Forward) -> torch.Tensor:
    if request.compute is not None:
        return request.compute()
    return _logits(model, request.input_ids, request.attention_mask)


def _logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    # unpadded rows get no mask argument: a DiffusionLM may take only the ids when nothing is padded
    return model.logits(input_ids) if attention_mask is None else model.logits(input_ids, attention_mask)


@dataclass
class BatchStats:
    forwards: int = 0  # forward passes run
    rows: int = 0  # rows over all passes (rows / forwards = the mean batch)
    completed: int = 0  # jobs finished (result or error)
    batch_sizes: list[int] = field(default_factory=list)  # rows of each pass, when `keep_sizes`


@dataclass
class _Running:
    job: Job
    future: Future
    request: Forward


class Batcher:
    """Runs submitted jobs together: each `step()` is one forward pass per group of same-length rows.

    `submit` may be called from any thread; `step` from one thread at a time (a worker loop).
    A job's exception is set on its future and the others go on; a cancelled future's job is closed
    at the next step and its rows freed."""

    def __init__(self, model, *, max_batch: int = 32, pad: bool = False,
                 on_forward: Callable[[int], None] | None = None, keep_sizes: bool = False):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.model = model
        self.max_batch = max_batch
        self.pad = pad
        self.on_forward = on_forward  # called with each pass's row count (metrics)
        self.stats = BatchStats()
        self._keep_sizes = keep_sizes
        self._waiting: deque[tuple[Job, Future]] = deque()
        self._running: list[_Running] = []
        self._lock = threading.Lock()

    def submit(self, job: Job[T]) -> Future:
        future: Future = Future()
        with self._lock:
            self._waiting.append((job, future))
        return future

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._running)

    def step(self) -> int:
        """Admit waiting jobs into free rows, then run one pass per group; returns the rows run (0: idle)."""
        self._drop_cancelled()
        self._admit()
        if not self._running:
            return 0
        done = 0
        for group in self._groups():
            done += sum(slot.request.rows for slot in group)
            try:
                logits = self._forward([slot.request for slot in group])
            except Exception as error:  # the pass failed (out of memory, say): its jobs fail, others go on
                for slot in group:
                    self._finish(slot, error=error)
                continue
            for slot, part in zip(group, logits):
                self._advance(slot, part)
        return done

    def run(self) -> None:
        """Step until every submitted job has finished."""
        while self.step() or self._waiting:
            pass

    # ---- internals ------------------------------------------------------------------------

    def _drop_cancelled(self) -> None:
        for slot in [s for s in self._running if s.future.cancelled()]:
            slot.job.close()
            self._running.remove(slot)
            self.stats.completed += 1

    def _admit(self) -> None:
        rows = sum(slot.request.rows for slot in self._running)
        while rows < self.max_batch:
            with self._lock:
                if not self._waiting:
                    return
                job, future = self._waiting.popleft()
            if future.cancelled():
                job.close()
                continue
            try:
                request = next(job)
            except StopIteration as finished:  # a job that needed no model at all
                self._settle(future, result=finished.value)
                continue
            except Exception as error:
                self._settle(future, error=error)
                continue
            self._running.append(_Running(job, future, request))
            rows += request.rows

    def _groups(self) -> list[list[_Running]]:
        """Slots whose requests share one pass: same length and padding (any length with `pad`),
        at most max_batch rows (a larger request runs alone); a self-computed request alone."""
        by_key: dict[Any, list[_Running]] = {}
        alone: list[list[_Running]] = []
        for slot in self._running:
            r = slot.request
            if r.compute is not None:
                alone.append([slot])
            else:
                by_key.setdefault("any" if self.pad else (r.input_ids.shape[1], r.padded), []).append(slot)
        groups = []
        for slots in by_key.values():
            chunk, rows = [], 0
            for slot in slots:
                if chunk and rows + slot.request.rows > self.max_batch:
                    groups.append(chunk)
                    chunk, rows = [], 0
                chunk.append(slot)
                rows += slot.request.rows
            groups.append(chunk)
        return groups + alone

    def _forward(self, requests: list[Forward]) -> list[torch.Tensor]:
        """One pass over the requests' rows; each request's logits back, at its own length."""
        if len(requests) == 1 and requests[0].compute is not None:
            out = [requests[0].compute()]
        elif len(requests) == 1:
            out = [_logits(self.model, requests[0].input_ids, requests[0].attention_mask)]
        else:
            width = max(r.input_ids.shape[1] for r in requests)
            ids, masks, mask_needed = [], [], False
            for r in requests:
                n = r.input_ids.shape[1]
                mask = r.attention_mask if r.attention_mask is not None else torch.ones_like(r.input_ids)
                if n < width:  # only with `pad`: right-pad, hidden from attention
                    ids.append(torch.nn.functional.pad(r.input_ids, (0, width - n), value=self.model.pad_token_id))
                    mask = torch.nn.functional.pad(mask, (0, width - n), value=0)
                else:
                    ids.append(r.input_ids)
                masks.append(mask)
                mask_needed |= n < width or r.attention_mask is not None
            logits = _logits(self.model, torch.cat(ids), torch.cat(masks) if mask_needed else None)
            out, at = [], 0
            for r in requests:
                out.append(logits[at:at + r.rows, : r.input_ids.shape[1]])
                at += r.rows
        rows = sum(r.rows for r in requests)
        self.stats.forwards += 1
        self.stats.rows += rows
        if self._keep_sizes:
            self.stats.batch_sizes.append(rows)
        if self.on_forward is not None:
            self.on_forward(rows)
        return out

    def _advance(self, slot: _Running, logits: torch.Tensor) -> None:
        try:
            slot.request = slot.job.send(logits)
        except StopIteration as finished:
            self._finish(slot, result=finished.value)
        except Exception as error:
            self._finish(slot, error=error)

    def _finish(self, slot: _Running, *, result: Any = None, error: BaseException | None = None) -> None:
        if slot in self._running:
            self._running.remove(slot)
        if error is not None:
            slot.job.close()
        self._settle(slot.future, result=result, error=error)

    def _settle(self, future: Future, *, result: Any = None, error: BaseException | None = None) -> None:
        self.stats.completed += 1
        if future.cancelled():
            return
        try:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
        except Exception:  # cancelled in between, from another thread
            pass


def run_jobs(model, jobs: Iterable[Job[T]], *, batch_size: int = 32,
             on_result: Callable[[int, T], None] | None = None, pad: bool = False) -> list[T]:
    """Run every job, up to `batch_size` rows a pass, a finished job replaced at once by the next.

    Results come back in the jobs' order; `on_result(i, result)` is called as each finishes (a
    progress bar). The first job to fail raises its exception here after the others finish."""
    batcher = Batcher(model, max_batch=batch_size, pad=pad)
    futures = [batcher.submit(job) for job in jobs]
    if on_result is not None:
        for i, future in enumerate(futures):
            future.add_done_callback(lambda f, i=i: f.exception() is None and on_result(i, f.result()))
    batcher.run()
    return [future.result() for future in futures]
