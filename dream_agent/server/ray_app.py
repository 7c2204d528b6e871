"""The same app under Ray Serve: one replica a GPU (or CPU replicas), Ray's proxy routing requests
across them. Each replica is the whole server (its own model thread, batcher and /metrics).

    dream-agent serve --ray --replicas 2 --model ../shared/data/dream_tiny
    serve run dream_agent.server.ray_app:build_app model=../shared/data/dream_tiny replicas=2   # Ray's CLI
    serve deploy docs/serve_ray.yaml                                                          # a deployment file

Needs `pip install 'dream-agent[ray]'`.
"""

from __future__ import annotations

from dataclasses import asdict, fields

from .app import ServerConfig, create_app


def deployment(config: ServerConfig, replicas: int = 1, gpus_per_replica: float | None = None):
    """The Ray Serve application: `replicas` copies of `create_app(config)`, built on each replica."""
    from ray import serve

    if gpus_per_replica is None:
        import torch

        gpus_per_replica = 1 if torch.cuda.is_available() else 0
    settings = asdict(config)  # plain data crosses to the replicas; each builds its own app there

    def build():
        return create_app(ServerConfig(**settings))

    cls = serve.ingress(build)(type("DreamAgentServer", (), {}))
    return serve.deployment(cls, name="dream-agent", num_replicas=replicas,
                            ray_actor_options={"num_gpus": gpus_per_replica, "num_cpus": 1}).bind()


def build_app(args: dict):
    """For `serve run dream_agent.server.ray_app:build_app key=value ...` and deployment files:
    keys are ServerConfig's fields, plus `replicas`."""
    known = {f.name: f.type for f in fields(ServerConfig)}
    replicas = int(args.pop("replicas", 1))
    config = {}
    for key, value in args.items():
        if key not in known:
            raise ValueError(f"unknown setting {key!r}; give {', '.join(known)} or replicas")
        default = getattr(ServerConfig(), key)
        config[key] = type(default)(value) if default is not None and not isinstance(default, bool) else (
            str(value).lower() in ("1", "true", "yes") if isinstance(default, bool) else value)
    return deployment(ServerConfig(**config), replicas)


def run_ray(config: ServerConfig, *, host: str, port: int, replicas: int) -> None:
    """Start a local Ray instance (or join RAY_ADDRESS), serve the app on host:port until Ctrl-C."""
    import ray
    from ray import serve

    ray.init()
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(deployment(config, replicas), name="dream-agent", route_prefix="/", blocking=True)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
        ray.shutdown()
