"""Tokens a second of `generate` with Fast-dLLM's caches against none, and their token agreement.

    python benchmarks/cache_speed.py                       # ~100M Dream-shaped random config, 256 and 512 tokens
    python benchmarks/cache_speed.py --tokens 512 --per-step 1

A random-weight model of Dream's shape (Qwen2 blocks, grouped KV heads, RoPE, shifted logits),
about 100M parameters; a 64-token prompt, then `--tokens` masks in blocks of 32, `--per-step`
tokens revealed a pass (steps = tokens / per-step). Each setting runs once after a warm-up pass;
agreement is the share of generated tokens equal to the uncached run's.
"""

from __future__ import annotations

import argparse
import time

import torch

from dream_agent import DreamConfig, DreamModel, Template, denoise
from dream_agent.model import DreamDiffusionLM
from dream_agent.template import Anchor, Slot


def model_of(scale: str) -> DreamDiffusionLM:
    shapes = {"100m": dict(vocab_size=16384, hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                           num_attention_heads=12, num_key_value_heads=2),
              "tiny": dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2)}
    cfg = DreamConfig(**shapes[scale], mask_token_id=shapes[scale]["vocab_size"] - 1, pad_token_id=0, bos_token_id=1,
                      eos_token_id=2, max_position_embeddings=4096, rope_theta=1_000_000.0)
    torch.manual_seed(0)
    return DreamDiffusionLM(DreamModel(cfg).eval())


def trained_agreement(name: str, n: int, block: int) -> None:
    """Agreement on a trained model, where it means something: a bundled planner's model fills the
    templates of its own generated problems (no hooks, so the cache applies), cached and not."""
    import random

    from dream_agent import DiffusionEngine
    from planners import get_planner

    engine = DiffusionEngine(name, threads=None)
    planner = get_planner(name)
    templates = [planner.encode(e.problem, engine.tokenizer) for e in planner.examples(n, random.Random(1))]
    rows = {}
    for cache in (None, "prefix", "dual"):
        t0 = time.perf_counter()
        rows[cache] = [engine.fill(t, block_length=block, cache=cache) for t in templates]
        rows[cache + "_s" if cache else "none_s"] = time.perf_counter() - t0
    for cache in ("prefix", "dual"):
        same = total = solved = base_solved = 0
        for t, exact, cached, e in zip(templates, rows[None], rows[cache], planner.examples(n, random.Random(1))):
            a, b = exact.row_ids(0), cached.row_ids(0)
            slots = torch.tensor([p for ps in t.slots.values() for p in ps])
            same += int((a[slots] == b[slots]).sum())
            total += len(slots)
            solved += not planner.check(e.problem, planner.decode(e.problem, t, b))
            base_solved += not planner.check(e.problem, planner.decode(e.problem, t, a))
        print(f"{name}: {n} generated problems, block {block}, {cache}: {same / total:.1%} of {total} slot tokens agree; "
              f"valid fills {solved} vs {base_solved} uncached; {rows['none_s']:.1f} s vs {rows[cache + '_s']:.1f} s",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["100m", "tiny"], default="100m")
    parser.add_argument("--tokens", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--per-step", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--trained", default=None, help="instead: agreement on this bundled planner's model (e.g. code)")
    parser.add_argument("--problems", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.trained:
        trained_agreement(args.trained, args.problems, args.block)
        return
    lm = model_of(args.scale)
    params = sum(p.numel() for p in lm.model.parameters())
    print(f"# {params / 1e6:.0f}M parameters, {args.threads} threads, block {args.block}, {args.per_step} tokens a pass")
    print(f"{'tokens':>6} {'cache':>6} {'s':>8} {'tok/s':>8} {'speed-up':>8} {'agreement':>9}")
    mask = lm.mask_token_id
    for n in args.tokens:
        template = Template([Anchor(list(range(3, 67))), Slot("answer", n)], None, mask_token_id=mask)
        settings = dict(steps=n // args.per_step, block_length=args.block, alg="entropy")
        denoise(lm, template, steps=1)  # warm-up
        base = None
        for cache in (None, "prefix", "dual"):
            t0 = time.perf_counter()
            out = denoise(lm, template, cache=cache, **settings)
            seconds = time.perf_counter() - t0
            ids = out.ids[0, 64:64 + n]
            if base is None:
                base = (ids, seconds)
            agree = (ids == base[0]).float().mean().item()
            print(f"{n:>6} {str(cache):>6} {seconds:8.2f} {n / seconds:8.1f} {base[1] / seconds:7.2f}x {agree:9.1%}",
                  flush=True)


if __name__ == "__main__":
    main()
