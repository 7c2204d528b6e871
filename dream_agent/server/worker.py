"""The model loop: one thread steps a `Batcher` per resident model; request handlers submit jobs.

Handlers run on the event loop and must never wait on the model there, so every job goes through
`submit`, which returns a `concurrent.futures.Future` the handler awaits (`asyncio.wrap_future`).
Each step of the loop is one forward pass per group of same-length rows of each model: a request
that arrives while others run joins the next pass. Cancelling a future (a client gone, a deadline
passed) frees its rows at the next step.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future

from dream_agent.batching import Batcher, Job

log = logging.getLogger("dream_agent.server")


class Overloaded(Exception):
    """The queue is full: the caller should come back later."""


class ShuttingDown(Exception):
    """The server stopped before the job finished."""


class ModelWorker:
    def __init__(self, *, max_batch: int = 32, max_queue: int = 256, pad: bool = False, on_forward=None):
        self.max_batch, self.max_queue, self.pad = max_batch, max_queue, pad
        self.on_forward = on_forward  # rows of each pass (metrics)
        self.engines: dict[str, object] = {}  # model id -> DiffusionEngine
        self._batchers: dict[str, Batcher] = {}
        self._open: set[Future] = set()  # submitted, not yet done
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- models -------------------------------------------------------------------------------

    def add(self, model_id: str, engine) -> None:
        with self._lock:
            self._batchers[model_id] = Batcher(engine.model, max_batch=self.max_batch, pad=self.pad,
                                               on_forward=self.on_forward)
            self.engines[model_id] = engine

    # ---- jobs ---------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return len(self._open)

    @property
    def waiting(self) -> int:
        return sum(b.waiting for b in list(self._batchers.values()))

    @property
    def running(self) -> int:
        return sum(b.running for b in list(self._batchers.values()))

    def submit(self, model_id: str, job: Job) -> Future:
        """Queue `job` on `model_id`'s batcher; `Overloaded` when max_queue jobs are in flight already."""
        with self._lock:
            if self._stop.is_set():
                job.close()
                raise ShuttingDown("the server is shutting down")
            if len(self._open) >= self.max_queue:
                job.close()
                raise Overloaded(f"{len(self._open)} requests in flight, the most this server queues")
            future = self._batchers[model_id].submit(job)
            self._open.add(future)
        future.add_done_callback(self._done)
        self._wake.set()
        return future

    def _done(self, future: Future) -> None:
        with self._lock:
            self._open.discard(future)

    # ---- the loop -----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dream-agent-model", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            rows = 0
            for batcher in list(self._batchers.values()):
                try:
                    rows += batcher.step()
                except Exception:  # a bug in the batcher itself: log it, keep serving the others
                    log.exception("batcher step failed")
            if rows == 0:
                self._wake.wait(0.05)  # idle until a submit (or a cancelled job to drop)
                self._wake.clear()

    def stop(self, timeout: float = 10.0) -> None:
        """End the loop; every job not finished gets `ShuttingDown`."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            left = list(self._open)
        for future in left:
            if not future.done():
                try:
                    future.set_exception(ShuttingDown("the server stopped before this request finished"))
                except Exception:  # settled in between
                    pass
