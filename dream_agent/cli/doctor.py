"""`dream-agent doctor [MODEL]`: load a model, say what it is, and run one short fill.

For a user who has just downloaded weights (`dream-agent doctor Dream-org/Dream-v0-Instruct-7B`
or a local directory): architecture, dtype, device, mask id, chat template, the sampler defaults
an engine will use, and the time of one 8-token fill. A checkpoint that cannot be used gets one
line saying why, and exit 2.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Annotated

import typer

from .main import app

PROBE_TOKENS = 8


def report(model: str, device: str, dtype: str) -> dict:
    from dream_agent import DiffusionEngine, Slot, Template
    from dream_agent.dreamon import expand_token_id
    from dream_agent.model import load_model

    lm = load_model(model, device=device, dtype=dtype)
    engine = DiffusionEngine(lm)
    tok, config = lm.tokenizer, lm.model.config
    chat = bool(getattr(tok, "chat_template", None))
    start = time.perf_counter()
    if chat:
        probe = engine.generate("Say hello.", max_new_tokens=PROBE_TOKENS, chat=True, steps=PROBE_TOKENS)
    else:  # a planner's small model: fill a bare slot
        result = engine.fill(Template([Slot("probe", PROBE_TOKENS)], tok, mask_token_id=lm.mask_token_id),
                             steps=PROBE_TOKENS)
        probe = tok.decode(result.row_ids(0).tolist()) if tok is not None else str(result.row_ids(0).tolist())
    seconds = time.perf_counter() - start
    return {
        "model": model,
        "architecture": (config.architectures or [type(lm.model).__name__])[0],
        "model_type": config.model_type,
        "parameters": sum(p.numel() for p in lm.model.parameters()),
        "layers": config.num_hidden_layers, "hidden_size": config.hidden_size, "vocab_size": config.vocab_size,
        "dtype": str(next(lm.model.parameters()).dtype).removeprefix("torch."),
        "device": str(lm.device),
        "mask_token_id": lm.mask_token_id,
        "context": lm.max_length,
        "tokenizer": type(tok).__name__ if tok is not None else None,
        "chat_template": chat,
        "variable_length_infill": expand_token_id(lm) is not None,  # DreamOn's expand token
        "sampler_defaults": asdict(engine.settings),
        "model_sampler_defaults": dict(lm.sampling),  # the "dream_agent" block of generation_config.json
        "probe": {"tokens": PROBE_TOKENS, "seconds": round(seconds, 3), "text": probe},
    }


@app.command("doctor")
def doctor(
    model: Annotated[str | None, typer.Argument(help="a bundled model name, a directory, or a hub id; "
                                                     "omitted: every bundled model")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16, float16")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object a model, a line each, on stdout")] = False,
) -> None:
    """Load a model, print what it is and the settings it will use, and run one short fill."""
    from dream_agent.model import bundled_models

    names = [model] if model is not None else list(bundled_models())
    for n, name in enumerate(names):
        info = report(name, device, dtype)
        if as_json:
            typer.echo(json.dumps(info))
            continue
        width = max(len(k) for k in info)
        if n:
            typer.echo()  # a blank line between models
        for key, value in info.items():
            if key == "probe":
                value = f"{value['tokens']} tokens in {value['seconds']} s: {value['text']!r}"
            elif key == "parameters":
                value = f"{value:,}"
            typer.echo(f"{key.ljust(width)}  {value}")
