"""Forward passes and wall time to fill 256 masked tokens: fixed steps against `threshold`.

    python benchmarks/sampler_speed.py                 # random small Dream config
    python benchmarks/sampler_speed.py --model sudoku  # a trained model: 9x9 Sudoku blanks

A random-weight model measures the loop's cost per forward pass, but its confidences are
near uniform, so `threshold` (Fast-dLLM) reveals about one position a step there; a trained
model (the bundled Sudoku model, whose 9x9 blanks in a batch add up to 256 or so masks) is
where threshold decoding saves forward passes. Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time

import torch

from dream_agent import Anchor, DreamConfig, DreamDiffusionLM, DreamModel, Slot, Template, denoise, load_model


def random_setup(masks: int, prompt: int):
    config = DreamConfig(vocab_size=4096, hidden_size=256, intermediate_size=704, num_hidden_layers=4,
                         num_attention_heads=8, num_key_value_heads=2, mask_token_id=4095, pad_token_id=0, bos_token_id=None, eos_token_id=None,
                         max_position_embeddings=1024, rope_theta=10000.0)
    torch.manual_seed(0)
    lm = DreamDiffusionLM(DreamModel(config).eval())
    template = Template([Anchor(list(range(1, prompt + 1))), Slot("answer", masks)])
    return lm, [template], "random Dream config (4 layers, hidden 256, vocab 4096)"


def sudoku_setup(model: str, masks: int):
    from planners import get_planner

    lm = load_model(model, device="cpu")
    planner = get_planner("sudoku")
    templates, total = [], 0
    for ex in planner.examples(64, random.Random("sampler-bench"), sizes=(9,)):
        template = planner.encode(ex.problem, lm.tokenizer)
        templates.append(template)
        total += int(template.masked.sum())
        if total >= masks:
            break
    return lm, templates, f"{model} model, {len(templates)} generated 9x9 Sudokus ({total} blanks)"


def run(lm, templates, repeats: int, **kwargs):
    times, nfe = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = denoise(lm, templates, alg="entropy", **kwargs)
        times.append(time.perf_counter() - t0)
        nfe = result.nfe
        assert not any((result.ids[b] == lm.mask_token_id).any() for b in range(len(templates)))
    return nfe, statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a trained model (name or path) instead of random weights")
    ap.add_argument("--masks", type=int, default=256)
    ap.add_argument("--prompt", type=int, default=32, help="anchor tokens before the masks (random model)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lm, templates, what = sudoku_setup(args.model, args.masks) if args.model else random_setup(args.masks, args.prompt)
    masks = sum(int(t.masked.sum()) for t in templates)

    print(f"{what}; {masks} masked tokens; {platform.machine()}, {args.threads} threads, torch {torch.__version__}")
    print("| setting | forward passes | median seconds | tokens / pass |")
    print("|---|---:|---:|---:|")
    for steps in (masks, masks // 2, masks // 4, masks // 8):
        nfe, sec = run(lm, templates, args.repeats, steps=steps)
        print(f"| steps={steps} | {nfe} | {sec:.3f} | {masks / nfe:.1f} |")
    for threshold in (0.99, 0.9, 0.7, 0.5):
        nfe, sec = run(lm, templates, args.repeats, steps=masks, threshold=threshold)
        print(f"| threshold={threshold} (steps cap {masks}) | {nfe} | {sec:.3f} | {masks / nfe:.1f} |")


if __name__ == "__main__":
    main()
