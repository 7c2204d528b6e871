"""`dream-agent generate PROMPT --model M`: open generation, Dream's `diffusion_generate`, with the
sampler's options, Fast-dLLM's block caches among them."""

from __future__ import annotations

from typing import Annotated

import typer

from .main import app
from .solve import DeviceOpt, EntropyBoundOpt, StepsOpt, ThreadsOpt, ThresholdOpt


@app.command("generate")
def generate(
    prompt: Annotated[str, typer.Argument(help="the prompt text")],
    model: Annotated[str, typer.Option(help="model directory, bundled name or hub id (e.g. Dream-org/Dream-v0-Instruct-7B)")],
    max_new_tokens: Annotated[int, typer.Option(min=1, help="masked positions after the prompt")] = 128,
    steps: StepsOpt = None,
    block_length: Annotated[int | None, typer.Option(min=1, help="fill the answer in blocks of this many tokens")] = None,
    cache: Annotated[str | None, typer.Option(
        help="Fast-dLLM's block cache with --block-length: prefix or dual (faster, approximate)")] = None,
    threshold: ThresholdOpt = None,
    entropy_bound: EntropyBoundOpt = None,
    chat: Annotated[bool, typer.Option(help="apply the tokenizer's chat template to the prompt")] = False,
    seed: Annotated[int | None, typer.Option(help="random seed (with a temperature)")] = None,
    temperature: Annotated[float | None, typer.Option(min=0.0)] = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
) -> None:
    """Generate text after PROMPT; prints it."""
    if cache is not None and cache not in ("prefix", "dual"):
        raise typer.BadParameter(f"unknown cache {cache!r}; use prefix or dual", param_hint="--cache")
    if cache is not None and block_length is None:
        raise typer.BadParameter("a cache needs --block-length", param_hint="--cache")
    import torch

    from dream_agent import DiffusionEngine
    from dream_agent.model import load_model

    lm = load_model(model, device=device, threads="auto" if threads is None else threads)
    given = {"block_length": block_length, "cache": cache, "threshold": threshold, "entropy_bound": entropy_bound,
             "temperature": temperature}
    engine = DiffusionEngine(lm, **{k: v for k, v in given.items() if v is not None})
    generator = torch.Generator(device=lm.device).manual_seed(seed) if seed is not None else None
    text = engine.generate(prompt, max_new_tokens, chat=chat, steps=steps or max_new_tokens, generator=generator)
    typer.echo(text)
