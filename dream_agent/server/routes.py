"""The endpoints. Each builds a job (`dream_agent.text`, `dream_agent.refine`), submits it to the model
thread and answers with its result; `stream: true` answers with server-sent events as text forms."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from dream_agent.errors import DreamAgentError

from .app import ApiError, ModelServer, job_result, new_id, now, sse, stops_of, usage
from .metrics import CONTENT_TYPE_LATEST
from .schemas import ChatRequest, CompletionRequest, InfillRequest, SolveRequest


def add_routes(app: FastAPI, server: ModelServer) -> None:
    @app.get("/health")
    async def health():
        return {"status": "ok", "models": list(server.worker.engines), "in_flight": server.worker.in_flight,
                "pid": os.getpid()}  # which process answered (a Ray replica, say)

    @app.get("/metrics")
    async def metrics():
        return Response(server.metrics.text(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "dream-agent"}
                                           for m in server.served_models()]}

    @app.get("/v1/planners")
    async def planners():
        from dream_agent.model.loading import bundled_models
        from planners import available_planners

        bundled = bundled_models()
        return {"object": "list", "data": [
            {"name": n, "description": server.planner(n).description, "model": n if n in bundled else None}
            for n in available_planners()]}

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request):
        from dream_agent.text import completion_job

        key, engine = await server.engine(body.model)
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if body.stream and len(prompts) > 1:
            raise ApiError(422, "prompt: a stream takes one prompt", param="prompt")

        def job(prompt, on_text=None):
            return completion_job(engine, prompt, body.max_tokens, stops=stops_of(body.stop), steps=body.steps,
                                  overrides=server.sampling(body, engine, text=True), on_text=on_text)

        rid, created = new_id("cmpl"), now()

        def envelope(choices, **extra):
            return {"id": rid, "object": "text_completion", "created": created, "model": key, "choices": choices, **extra}

        if body.stream:
            check_prompt(engine, prompts[0], body.max_tokens, "prompt")
            return stream(server, request, body, key, job, prompts[0],
                          piece=lambda text: envelope([{"index": 0, "text": text, "logprobs": None, "finish_reason": None}]),
                          last=lambda c: envelope([{"index": 0, "text": "", "logprobs": None,
                                                    "finish_reason": c.finish_reason}]),
                          usage_chunk=lambda c: envelope([], usage=usage([c])))
        deadline = server.deadline(body)
        futures = []
        try:
            for p in prompts:
                futures.append(server.submit(key, job(p)))
            done = [await server.wait(request, f, deadline, param="prompt") for f in futures]
        finally:
            for f in futures:
                f.cancel()  # a no-op for the finished ones; frees the rest when one failed
        return envelope([{"index": i, "text": c.text, "logprobs": None, "finish_reason": c.finish_reason}
                         for i, c in enumerate(done)], usage=usage(done))

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest, request: Request):
        from dream_agent.text import chat_prompt, completion_job

        key, engine = await server.engine(body.model)
        try:
            messages = [{"role": m.role, "content": m.text()} for m in body.messages]
            prompt = chat_prompt(engine.tokenizer, messages, reply=True)
        except Exception as e:  # a content part that is not text, a chat template that refuses the roles
            raise ApiError(422, f"messages: {e}", param="messages") from None
        max_new = body.max_completion_tokens or body.max_tokens or 64

        def job(prompt, on_text=None):
            return completion_job(engine, prompt, max_new, stops=stops_of(body.stop), steps=body.steps,
                                  overrides=server.sampling(body, engine, text=True), on_text=on_text)

        rid, created = new_id("chatcmpl"), now()

        def envelope(obj, choices, **extra):
            return {"id": rid, "object": obj, "created": created, "model": key, "choices": choices, **extra}

        if body.stream:
            check_prompt(engine, prompt, max_new, "messages")
            chunk = "chat.completion.chunk"
            return stream(server, request, body, key, job, prompt,
                          first=envelope(chunk, [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                  "finish_reason": None}]),
                          piece=lambda text: envelope(chunk, [{"index": 0, "delta": {"content": text},
                                                               "finish_reason": None}]),
                          last=lambda c: envelope(chunk, [{"index": 0, "delta": {}, "finish_reason": c.finish_reason}]),
                          usage_chunk=lambda c: envelope(chunk, [], usage=usage([c])))
        future = server.submit(key, job(prompt))
        c = await server.wait(request, future, server.deadline(body), param="messages")
        return envelope("chat.completion", [{"index": 0, "message": {"role": "assistant", "content": c.text},
                                             "finish_reason": c.finish_reason, "logprobs": None}], usage=usage([c]))

    @app.post("/v1/infill")
    async def infill(body: InfillRequest, request: Request):
        from dream_agent.text import holes_job, put_holes

        key, engine = await server.engine(body.model)
        job = holes_job(engine, body.text, steps=body.steps, overrides=server.sampling(body, engine, text=False))
        values, nfe = await server.wait(request, server.submit(key, job), server.deadline(body), param="text")
        return {"model": key, "text": put_holes(body.text, values), "holes": values, "nfe": nfe}

    @app.post("/v1/solve/{planner_name}")
    async def solve(planner_name: str, body: SolveRequest, request: Request):
        """The answer `dream-agent solve PLANNER PROBLEM --json` prints."""
        from dream_agent.refine import solve_job

        planner = server.planner(planner_name)
        try:
            problem = planner.parse(body.problem)
        except DreamAgentError as e:
            raise ApiError(422, f"problem: {e}", param="problem") from None
        key, engine = await server.planner_engine(planner, body.model)
        settings = dict(steps=body.steps, max_rounds=body.max_rounds, constraints=body.constraints, search=body.search,
                        samples=body.samples, seed=body.seed)
        own = getattr(planner, "solve_job", None)  # a planner that wraps the solve (code: holes at several lengths)
        job = own(engine, problem, **settings) if own else solve_job(engine, planner, problem, **settings)
        result = await server.wait(request, server.submit(key, job), server.deadline(body), param="problem")
        return result.to_dict()


def check_prompt(engine, prompt: str, max_new: int, param: str) -> None:
    """A stream's status line goes out before the job runs: catch a prompt that cannot fit first."""
    from dream_agent.text import completion_template

    try:
        completion_template(engine, prompt, max_new)
    except (DreamAgentError, ValueError) as e:
        raise ApiError(422, f"{param}: {e}", param=param) from None


def stream(server: ModelServer, request: Request, body, key: str, job, prompt: str, *, piece, last, usage_chunk,
           first: dict[str, Any] | None = None) -> StreamingResponse:
    """Server-sent events: `first`, a `piece` per text that became final, `last` with the finish reason,
    the usage when asked (stream_options.include_usage), then [DONE]. An error after the status line
    is sent as an event `{"error": ...}` and ends the stream."""
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue = asyncio.Queue()
    future = server.submit(key, job(prompt, on_text=lambda text: loop.call_soon_threadsafe(pieces.put_nowait, text)))
    deadline = server.deadline(body)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    async def events():
        wrapped = asyncio.wrap_future(future)
        try:
            if first is not None:
                yield sse(first)
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    future.cancel()
                    yield sse({"error": {"message": "the request ran past its deadline", "type": "timeout",
                                         "param": None, "code": "deadline_exceeded"}})
                    return
                getter = asyncio.ensure_future(pieces.get())
                done, _ = await asyncio.wait({getter, wrapped}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    yield sse(piece(getter.result()))
                    continue
                getter.cancel()
                if wrapped in done:
                    # the pieces were queued before the result (the same thread, call_soon_threadsafe's order)
                    while not pieces.empty():
                        yield sse(piece(pieces.get_nowait()))
                    try:
                        completion = job_result(wrapped, None)
                    except ApiError as e:
                        yield sse({"error": {"message": e.message, "type": e.kind, "param": e.param, "code": e.code}})
                        return
                    yield sse(last(completion))
                    if include_usage:
                        yield sse(usage_chunk(completion))
                    yield sse("[DONE]")
                    return
        finally:
            future.cancel()  # the client left (Starlette cancels this generator) or the stream ended

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
