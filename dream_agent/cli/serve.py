"""`dream-agent serve`: the HTTP server (dream_agent/server), one process, the models resident.

    dream-agent serve --model ../shared/data/dream_tiny --port 8000
    dream-agent serve --ray --replicas 2            # the same app under Ray Serve, one replica a GPU

Ctrl-C or SIGTERM stops it: requests in flight finish (up to --grace seconds), then the model thread ends.
"""

from __future__ import annotations

from typing import Annotated

import typer

from dream_agent.errors import DreamAgentError

from .main import app


@app.command("serve")
def serve_command(
    model: Annotated[str | None, typer.Option(
        help="the default text model: a bundled name, a directory, a Dream-org checkpoint or a hub id "
             "(planners use their bundled models either way)")] = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port (0: any free one)")] = 8000,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="rows in one forward pass")] = 32,
    max_queue: Annotated[int, typer.Option("--max-queue", min=1, help="requests in flight before 503")] = 256,
    timeout: Annotated[float, typer.Option(min=0.001, help="seconds a request may take before 504")] = 120.0,
    pad: Annotated[bool, typer.Option("--pad/--no-pad", help="pad rows of different lengths into one pass")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, ...")] = "auto",
    grace: Annotated[float, typer.Option(min=0, help="seconds in-flight requests get to finish on shutdown")] = 30.0,
    ray: Annotated[bool, typer.Option("--ray", help="run under Ray Serve (pip install 'dream-agent[ray]')")] = False,
    replicas: Annotated[int, typer.Option(min=1, help="Ray Serve replicas (one GPU each when there are GPUs)")] = 1,
) -> None:
    """Serve the models over HTTP: OpenAI-compatible completions and chat, infill, and the planners."""
    try:
        import uvicorn  # noqa: F401

        from dream_agent.server import ServerConfig, create_app
    except ImportError as e:
        raise DreamAgentError(f"serve needs the server extra: pip install 'dream-agent[serve]' ({e.name} is missing)")
    config = ServerConfig(model=model, device=device, max_batch=max_batch, max_queue=max_queue, timeout=timeout, pad=pad)
    if ray:
        from dream_agent.server.ray_app import run_ray

        return run_ray(config, host=host, port=port, replicas=replicas)
    import uvicorn

    application = create_app(config)
    if model:
        application.state.server.load(model)  # a --model that cannot load fails here, in one line, before listening
    uvicorn.run(application, host=host, port=port, timeout_graceful_shutdown=grace, log_level="info")
