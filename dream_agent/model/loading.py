"""`load_model`: a local directory, a bundled model name or a hub id -> a ready `DiffusionLM`.

A model loaded once in a process is kept (on the GPU when there is one) and reused.

A model may ship its own sampler defaults (the remasking order it was measured with, say) in
its generation_config.json, under a "dream_agent" key; `DiffusionEngine` starts from them.
Dream's own top-level keys there (`"alg": "origin"`, `"steps": 512`) are left alone: they are
defaults for open-ended chat, not for filling planning templates.

No code from a checkpoint is ever run (`trust_remote_code=False` throughout). Dream-org
checkpoints name a custom tokenizer class (`tokenization_dream.py` through `auto_map`, no
tokenizer.json); it is a Qwen2 BPE tokenizer with added tokens, so transformers' own
`Qwen2Tokenizer` reads the same files and gives the same ids and chat text.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import ModelLoadError
from .diffusion_lm import DreamDiffusionLM
from .plain import PlainDreamLM, plain_refusal

# transformers is imported where a load needs it: a small model run as a `PlainDreamLM` never does.

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "bundled"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json")
# Custom-code tokenizer classes of published checkpoints -> the transformers class that reads
# the same files. Another custom class is refused rather than run.
STAND_IN_TOKENIZERS = {"DreamTokenizer": "Qwen2Tokenizer"}

RUNTIMES = ("transformers", "plain", "auto")

_loaded: dict[tuple[str, str, str, str], DreamDiffusionLM | PlainDreamLM] = {}
# Below this many parameters a CPU forward pass is too short for more threads to pay: they only
# contend, and with both cores busy torch's default (one thread a core) made a bundled model's solve
# 12x slower than quiet, one thread 1.4x (BENCHMARKS.md, "Threads").
SMALL_MODEL_PARAMETERS = 50_000_000


def bundled_models() -> dict[str, Path]:
    """Models shipped inside the package, by name (e.g. "sudoku")."""
    if not BUNDLED_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(BUNDLED_DIR.iterdir()) if (p / "config.json").is_file()}


def available_devices() -> list[str]:
    """The devices this torch build can use here: "cpu", then "cuda:N" per GPU, "mps" on Apple silicon."""
    out = ["cpu"] + ([f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else [])
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def resolve_device(device: str | torch.device = "auto", dtype: str | torch.dtype = "auto") -> tuple[torch.device, torch.dtype]:
    """"auto": CUDA with bf16 where there is a GPU, else CPU float32. A device that is not there
    raises `ModelLoadError` naming the ones that are."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ModelLoadError(f"unknown device {str(device)!r}; available here: {', '.join(available_devices())}") from None
    usable = available_devices()
    if device.type != "cpu" and not (str(device) in usable or (device.index is None and any(d.startswith(device.type) for d in usable))):
        raise ModelLoadError(f"device {str(device)!r} is not available here; available: {', '.join(usable)}")
    if dtype == "auto":
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    elif isinstance(dtype, str):
        try:
            dtype = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                     "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}[dtype]
        except KeyError:
            raise ModelLoadError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16") from None
    return device, dtype


def _check_local_dir(path: Path) -> None:
    if not path.is_dir():
        raise ModelLoadError(f"model path {str(path)!r} is not a directory")
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"model directory {str(path)!r} has no config.json")
    if not any((path / f).is_file() for f in WEIGHT_FILES):
        raise ModelLoadError(f"model directory {str(path)!r} has no weights (model.safetensors or pytorch_model.bin)")
    index = path / "model.safetensors.index.json"
    if index.is_file() and not (path / "model.safetensors").is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (ValueError, KeyError, AttributeError):
            raise ModelLoadError(f"the weight index {str(index)!r} is not a valid model.safetensors.index.json") from None
        if missing := [s for s in shards if not (path / s).is_file()]:
            raise ModelLoadError(f"model directory {str(path)!r} lacks {len(missing)} of the {len(shards)} weight files "
                                 f"its index names (first: {missing[0]})")


def _json_file(source: str, filename: str) -> dict | None:
    """A JSON file of a local directory or hub repo, parsed; None when it has no such file."""
    if Path(source).is_dir():  # read directly: no transformers for a local model
        file = Path(source) / filename
        return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None
    from transformers.utils import cached_file

    try:
        file = cached_file(source, filename, _raise_exceptions_for_missing_entries=False,
                           _raise_exceptions_for_connection_errors=False)
    except OSError:
        return None
    return None if file is None else json.loads(Path(file).read_text(encoding="utf-8"))


def load_tokenizer(source: str, name: str):
    """The checkpoint's tokenizer without its code: a custom class through its stand-in, else AutoTokenizer."""
    try:
        config = _json_file(source, "tokenizer_config.json") or {}
    except ValueError as exc:
        raise ModelLoadError(f"the tokenizer_config.json of {name!r} is not valid JSON: {exc}") from None
    import transformers
    from transformers import AutoTokenizer

    custom = (config.get("auto_map") or {}).get("AutoTokenizer")
    try:
        if custom:
            cls_name = config.get("tokenizer_class") or str(custom)
            stand_in = STAND_IN_TOKENIZERS.get(cls_name)
            if stand_in is None:
                raise ModelLoadError(f"the tokenizer of {name!r} is custom code ({cls_name}); dream-agent never runs "
                                     f"a checkpoint's code and knows no transformers class that reads it")
            return getattr(transformers, stand_in).from_pretrained(source)
        return AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelLoadError(f"cannot load the tokenizer of {name!r}: {str(exc).splitlines()[0]}") from None


def sampling_defaults(source: str, name: str) -> dict:
    """The "dream_agent" block of the model's generation_config.json, checked; {} when there is none."""
    from ..engine import SamplerConfig

    try:
        block = (_json_file(source, "generation_config.json") or {}).get("dream_agent", {})
        SamplerConfig(**block)  # unknown keys or bad values fail here, at load time
    except (ValueError, TypeError, AttributeError) as exc:
        raise ModelLoadError(f"bad sampler defaults in the generation_config.json of {name!r}: {exc}") from None
    return dict(block)


def set_threads(parameters: int, threads: int | str | None, device: torch.device) -> None:
    """torch's CPU threads for this process: `threads` when a number; "auto": one thread for a small
    model (of `parameters`) on the CPU (SMALL_MODEL_PARAMETERS); None, or a larger model: torch's
    setting is left alone."""
    if isinstance(threads, int) and not isinstance(threads, bool):
        if threads < 1:
            raise ModelLoadError(f"threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    elif threads not in (None, "auto"):
        raise ModelLoadError(f"threads is a whole number, 'auto' or None, not {threads!r}")
    elif threads == "auto" and device.type == "cpu" and parameters < SMALL_MODEL_PARAMETERS:
        torch.set_num_threads(1)


def weights_file(source: str) -> Path | None:
    """The local weights file a load read (for naming it when it is corrupt)."""
    for f in WEIGHT_FILES:
        if (Path(source) / f).is_file():
            return Path(source) / f
    return None


def load_model(name_or_path: str | Path, device: str | torch.device = "auto", dtype: str | torch.dtype = "auto",
               threads: int | str | None = None, runtime: str = "transformers") -> DreamDiffusionLM | PlainDreamLM:
    """A model by bundled name, directory or hub id, on `device`. `threads`: torch's CPU threads
    (a number); "auto": one for a small model on the CPU, where more only contend (the CLI's and
    `DiffusionEngine(name)`'s default); None: torch's setting as it is.

    `runtime`: "transformers" (a `DreamDiffusionLM` over `DreamModel.from_pretrained`: training,
    adapters, any device); "plain" (a `PlainDreamLM`: a small local float32 checkpoint on the CPU,
    without importing transformers, the same logits); "auto" (plain where the checkpoint and device
    allow it, else transformers: the CLI's solve and eval)."""
    if runtime not in RUNTIMES:
        raise ModelLoadError(f"unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
    name = str(name_or_path)
    bundled = bundled_models()
    if name in bundled:
        path: Path | None = bundled[name]
    else:
        path = Path(name).expanduser()
        looks_local = path.exists() or name.startswith((".", "/", "~")) or name.count("/") != 1
        path = path if looks_local else None
    if path is not None:
        _check_local_dir(path)
        source = str(path.resolve())
    else:
        source = name  # a hub id such as Dream-org/Dream-v0-Instruct-7B

    dev, dt = resolve_device(device, dtype)
    if runtime != "transformers":
        why = ("it is not a local directory" if path is None else "it runs on the CPU in float32 only"
               if (dev.type, dt) != ("cpu", torch.float32) else plain_refusal(path))
        if why is not None and runtime == "plain":
            raise ModelLoadError(f"model {name!r} cannot run without transformers: {why}")
        runtime = "transformers" if why is not None else "plain"
    key = (source, str(dev), str(dt), runtime)
    if key in _loaded:
        set_threads(_parameters(_loaded[key]), threads, dev)
        return _loaded[key]
    if runtime == "plain":
        lm = PlainDreamLM(path, name=name, sampling=sampling_defaults(source, name))
        set_threads(lm.parameter_count, threads, dev)
        _loaded[key] = lm
        return lm
    from safetensors import SafetensorError
    from transformers import AutoModel

    from . import register  # noqa: F401  (registers "Dream" with the Auto classes)

    try:
        model = AutoModel.from_pretrained(source, dtype=dt, trust_remote_code=False)
    except SafetensorError as exc:  # a corrupt or truncated file: name it
        file = weights_file(source) if path is not None else None
        what = str(file) if file is not None else f"the weights of {name!r}"
        raise ModelLoadError(f"cannot load model {name!r}: {what} is corrupt or truncated ({str(exc).splitlines()[0]})") from None
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = "" if path is not None else " (not a local directory, and the Hugging Face hub has no such model or cannot be reached)"
        raise ModelLoadError(f"cannot load model {name!r}{hint}: {first}") from None
    if not hasattr(model, "config") or getattr(model.config, "model_type", None) != "Dream":
        raise ModelLoadError(f"model {name!r} is a {getattr(model.config, 'model_type', '?')!r} model; dream-agent loads Dream models")
    tokenizer = None
    if path is None or any((path / f).is_file() for f in TOKENIZER_FILES):
        tokenizer = load_tokenizer(source, name)
    lm = DreamDiffusionLM(model.to(dev), tokenizer, name=name, sampling=sampling_defaults(source, name))
    set_threads(_parameters(lm), threads, dev)
    _loaded[key] = lm
    return lm


def _parameters(lm: DreamDiffusionLM | PlainDreamLM) -> int:
    if isinstance(lm, PlainDreamLM):
        return lm.parameter_count
    return sum(p.numel() for p in lm.model.parameters())
