"""The ASGI app: OpenAI-compatible text endpoints, infill, the planners, health and metrics.

    app = create_app(ServerConfig(model="../shared/data/dream_tiny"))   # uvicorn.run(app)

Every model call is a job on the one model thread (`worker.py`); a handler submits it and awaits
its future, watching for its deadline (504) and for the client leaving (the job is cancelled and
its rows freed). Errors are OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`:
413 body too large, 422 invalid input (the message names the field), 404 unknown model, planner
or route, 503 queue full (with Retry-After) or shutting down, 504 past the deadline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dream_agent.errors import DreamAgentError

from .limits import BodyLimit
from .metrics import CONTENT_TYPE_LATEST, Metrics, MetricsMiddleware
from .schemas import ChatRequest, CompletionRequest, InfillRequest, Sampling, SolveRequest
from .worker import ModelWorker, Overloaded, ShuttingDown

log = logging.getLogger("dream_agent.server")


@dataclass
class ServerConfig:
    model: str | None = None  # the default text model (a bundled name, a directory, a hub id)
    device: str = "auto"
    max_batch: int = 32  # rows in a forward pass
    max_queue: int = 256  # requests in flight before 503
    pad: bool = False  # pad rows of different lengths into one pass (else one pass per length)
    max_body_bytes: int = 1 << 20
    timeout: float = 120.0  # seconds a request may take (a request's own `timeout` may only shorten it)
    block_length: int | None = 32  # text denoised block by block (what a stream sends as it forms)
    retry_after: int = 1  # seconds, in a 503's Retry-After
    threads: int | None = None


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None, kind: str = "invalid_request_error",
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.kind, self.code, self.headers = status, message, param, kind, code, headers

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, param=self.param, kind=self.kind, code=self.code,
                              headers=self.headers)


def error_response(status: int, message: str, *, param=None, kind="invalid_request_error", code=None,
                   headers=None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status, headers=headers)


def model_id(name: str) -> str:
    """A model's id in /v1/models: a directory by its folder name, anything else as given."""
    path = Path(name)
    return path.resolve().name if path.is_dir() else name


class ModelServer:
    """The state behind the routes: the worker, the models it holds, the planners."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.metrics: Metrics | None = None
        self.worker = ModelWorker(max_batch=config.max_batch, max_queue=config.max_queue, pad=config.pad,
                                  on_forward=lambda rows: self.metrics and self.metrics.forward(rows))
        self.metrics = Metrics(self.worker)
        self.default_model = model_id(config.model) if config.model else None
        self._load_lock = threading.Lock()
        self._planners: dict[str, Any] = {}

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self.config.model:
            self.load(self.config.model)
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()

    # ---- models -------------------------------------------------------------------------------

    def load(self, name: str | None, planner=None) -> str:
        """Load `name` (or, with none, `planner`'s bundled model, checked to fit it) under its id."""
        from dream_agent import DiffusionEngine
        from dream_agent.cli.solve import load_engine
        from dream_agent.model import load_model

        key = planner.name if name is None else model_id(name)
        threads = "auto" if self.config.threads is None else self.config.threads
        with self._load_lock:
            if key not in self.worker.engines:
                if name is None:
                    engine = load_engine(planner, None, self.config.device, threads=self.config.threads)
                else:
                    engine = DiffusionEngine(load_model(name, device=self.config.device, threads=threads))
                self.worker.add(key, engine)
        return key

    def served_models(self) -> list[str]:
        from dream_agent.model.loading import bundled_models

        return list(dict.fromkeys([*self.worker.engines, *bundled_models()]))

    async def engine(self, name: str | None, *, param: str = "model"):
        """(id, engine) of a served model: loaded, or bundled (loaded now, off the event loop)."""
        from dream_agent.model.loading import bundled_models

        name = name or self.default_model
        if name is None:
            raise ApiError(422, "give a model: this server has no default one (see GET /v1/models)", param=param)
        if name not in self.worker.engines:
            if name not in bundled_models():
                raise ApiError(404, f"the model {name!r} does not exist here; served: {', '.join(self.served_models())}",
                               param=param, code="model_not_found")
            await asyncio.to_thread(self.load, name)
        return name, self.worker.engines[name]

    def planner(self, name: str):
        from planners import available_planners, get_planner

        if name not in self._planners:
            if name not in available_planners():
                raise ApiError(404, f"no planner named {name!r}; available: {', '.join(available_planners())}",
                               param="planner", code="planner_not_found")
            self._planners[name] = get_planner(name)
        return self._planners[name]

    async def planner_engine(self, planner, name: str | None):
        """The model `name` (a served one), or the planner's bundled model, checked to fit the planner."""
        from dream_agent.cli.solve import check_model_fits
        from dream_agent.model.loading import bundled_models

        if name is not None:
            key, engine = await self.engine(name)
            try:
                check_model_fits(planner, engine.model, key)
            except DreamAgentError as e:
                raise ApiError(422, str(e), param="model") from None
            return key, engine
        if planner.name not in bundled_models():
            raise ApiError(422, f"no bundled {planner.name} model is installed: give a served model in 'model'",
                           param="model")
        if planner.name not in self.worker.engines:
            await asyncio.to_thread(self.load, None, planner)
        return planner.name, self.worker.engines[planner.name]

    # ---- jobs ---------------------------------------------------------------------------------

    def submit(self, key: str, job):
        try:
            return self.worker.submit(key, job)
        except Overloaded as e:
            raise ApiError(503, f"the server is busy ({e}); retry shortly", kind="server_busy", code="overloaded",
                           headers={"Retry-After": str(self.config.retry_after)}) from None
        except ShuttingDown as e:
            raise ApiError(503, str(e), kind="server_busy", code="shutting_down") from None

    def deadline(self, body) -> float:
        timeout = min(body.timeout or self.config.timeout, self.config.timeout)
        return asyncio.get_running_loop().time() + timeout

    async def wait(self, request: Request, future, deadline: float, *, param: str | None):
        """The job's result; 504 past the deadline; the job cancelled if the client leaves."""
        loop = asyncio.get_running_loop()
        wrapped = asyncio.wrap_future(future)
        try:
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    future.cancel()
                    raise ApiError(504, "the request ran past its deadline", kind="timeout", code="deadline_exceeded")
                done, _ = await asyncio.wait({wrapped}, timeout=min(0.25, left))
                if done:
                    return job_result(wrapped, param)
                if await request.is_disconnected():
                    future.cancel()
                    raise ApiError(499, "the client closed the connection", kind="client_closed")
        except asyncio.CancelledError:
            future.cancel()
            raise

    def sampling(self, body: Sampling, engine, *, text: bool) -> dict[str, Any]:
        overrides = body.overrides()
        if text and "block_length" not in overrides and self.config.block_length:
            overrides["block_length"] = self.config.block_length
        if body.seed is not None:
            import torch

            overrides["generator"] = torch.Generator(device=engine.model.device).manual_seed(body.seed)
        return overrides


def job_result(wrapped: asyncio.Future, param: str | None):
    try:
        return wrapped.result()
    except asyncio.CancelledError:
        raise ApiError(503, "the request was cancelled", kind="server_busy") from None
    except ShuttingDown as e:
        raise ApiError(503, str(e), kind="server_busy", code="shutting_down") from None
    except (DreamAgentError, ValueError) as e:  # the input does not fit the model (too long, bad setting)
        raise ApiError(422, str(e).splitlines()[0] if str(e) else type(e).__name__, param=param) from None
    except Exception as e:
        log.exception("a job failed")
        raise ApiError(500, f"the model failed on this request: {type(e).__name__}: {e}", kind="server_error") from None


def stops_of(stop: str | list[str] | None) -> list[str]:
    return [s for s in ([stop] if isinstance(stop, str) else stop or []) if s]


def usage(completions) -> dict[str, int]:
    prompt = sum(c.prompt_tokens for c in completions)
    done = sum(c.completion_tokens for c in completions)
    return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}


def create_app(config: ServerConfig | None = None) -> FastAPI:
    from .routes import add_routes

    server = ModelServer(config or ServerConfig())

    @asynccontextmanager
    async def lifespan(app):
        await asyncio.to_thread(server.start)
        try:
            yield
        finally:
            await asyncio.to_thread(server.stop)

    app = FastAPI(title="dream-agent", lifespan=lifespan)
    app.state.server = server

    @app.exception_handler(ApiError)
    async def api_error(request, exc: ApiError):
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        first = exc.errors()[0]
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        if first.get("type") == "json_invalid":
            return error_response(422, f"the body is not valid JSON: {first.get('ctx', {}).get('error', first['msg'])}")
        field = ".".join(loc) or None
        message = f"{field}: {first['msg']}" if field else first["msg"]
        return error_response(422, message, param=field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def bug(request, exc: Exception):  # a bug of ours: the request gets a 500, the server goes on
        log.error("unhandled error on %s", request.url.path, exc_info=exc)
        return error_response(500, f"internal error: {type(exc).__name__}", kind="server_error")

    add_routes(app, server)
    app.add_middleware(BodyLimit, max_bytes=server.config.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=server.metrics)
    return app


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


def sse(data: dict | str) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()


__all__ = ["ApiError", "ModelServer", "ServerConfig", "create_app", "Response", "StreamingResponse",
           "CONTENT_TYPE_LATEST"]
