"""Dream 7B's shape on a GPU, random weights (no download): memory, `generate` tokens a second with
and without Fast-dLLM's caches, and problems a second of a batched Countdown search.

    python benchmarks/gpu.py                              # Dream-v0 7B shape, bf16, on cuda
    python benchmarks/gpu.py --scale tiny --device cpu    # the same script in seconds (tests run this)

Fast-dLLM's published figure to set beside it (Dream-Base, GSM8K, 256 tokens, A100): 9.1 tokens/s
without a cache, 48.2 with the prefix cache and threshold 0.9. Random weights are not confident,
so threshold 0.9 reveals about one token a pass here: the tokens-a-second figures measure the
forward passes, not the parallel reveal a trained model gets.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch

from dream_agent import DiffusionEngine, DreamConfig, DreamModel, Template, denoise
from dream_agent.model import DreamDiffusionLM
from dream_agent.refine import solve_many
from dream_agent.template import Anchor, Slot
from dream_agent.tokenization import char_tokenizer
from planners.countdown import CountdownPlanner

TINY = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2)


def build(scale: str, device: torch.device, dtype: torch.dtype, tokenizer) -> DreamDiffusionLM:
    # DreamConfig's defaults are Dream-v0 7B's (28 layers, 3584 wide, 28 heads, 4 KV heads, 152064 tokens);
    # the Countdown tokenizer's ids sit at the bottom of the vocabulary, its mask id is the model's.
    shape = {} if scale == "7b" else TINY
    cfg = DreamConfig(**shape, mask_token_id=tokenizer.mask_token_id, pad_token_id=tokenizer.pad_token_id,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # initialise in the target dtype: a float32 7B would need 30 GB first
    try:
        with torch.device(device):
            model = DreamModel(cfg).eval()
    finally:
        torch.set_default_dtype(previous)
    return DreamDiffusionLM(model, tokenizer, name=f"random Dream {scale}")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["7b", "tiny"], default="7b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--problems", type=int, default=32, help="Countdown problems for each batch size")
    parser.add_argument("--json", action="store_true", help="one JSON object a line")
    args = parser.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    planner = CountdownPlanner()
    lm = build(args.scale, device, dtype, char_tokenizer(planner.alphabet))
    params = sum(p.numel() for p in lm.model.parameters())
    out = [{"what": "model", "parameters": params, "dtype": args.dtype, "device": str(device),
            "weights_gb": round(params * lm.model.dtype.itemsize / 2**30, 2)}]
    if device.type == "cuda":
        out[0]["gpu"] = torch.cuda.get_device_name(device)

    prompt = list(range(5, 5 + 64))
    for batch in args.batch_sizes:
        for cache in (None, "prefix", "dual"):
            template = Template([Anchor(prompt), Slot("answer", args.tokens)], None, mask_token_id=lm.mask_token_id)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            sync(device)
            t0 = time.perf_counter()
            result = denoise(lm, [template] * batch, steps=args.tokens, block_length=32, threshold=0.9,
                             alg="maskgit_plus", cache=cache)
            sync(device)
            seconds = time.perf_counter() - t0
            row = {"what": "generate", "tokens": args.tokens, "batch": batch, "cache": cache, "nfe": result.nfe,
                   "seconds": round(seconds, 3), "tokens_per_s": round(batch * args.tokens / seconds, 1)}
            if device.type == "cuda":
                row["peak_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
            out.append(row)
            print(json.dumps(row) if args.json else row, flush=True)

    rng = random.Random(0)
    problems = [e.problem for e in planner.examples(args.problems, rng)]
    engine = DiffusionEngine(lm, alg="maskgit_plus")
    for batch in args.batch_sizes:
        sync(device)
        t0 = time.perf_counter()
        results = solve_many(engine, planner, problems, batch_size=batch, max_rounds=2)
        sync(device)
        seconds = time.perf_counter() - t0
        row = {"what": "countdown", "batch": batch, "problems": len(problems), "seconds": round(seconds, 2),
               "problems_per_s": round(len(problems) / seconds, 2), "solved": sum(r.valid for r in results),
               "nfe": sum(r.nfe for r in results)}
        out.append(row)
        print(json.dumps(row) if args.json else row, flush=True)
    print(json.dumps(out[0]) if args.json else out[0], flush=True)


if __name__ == "__main__":
    main()
