"""`dream-agent serve`: one process, the models resident, an OpenAI-compatible HTTP API and the planners.

    from dream_agent.server import ServerConfig, create_app
    uvicorn.run(create_app(ServerConfig(model="../shared/data/dream_tiny")), port=8000)

app.py: the app and its errors; routes.py: the endpoints; worker.py: the model thread batching
every request's forward passes; schemas.py: request bodies; limits.py: the body cap; metrics.py:
Prometheus; ray_app.py: the same app under Ray Serve.
"""

from .app import ServerConfig, create_app

__all__ = ["ServerConfig", "create_app"]
