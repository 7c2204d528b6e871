"""The entropy-bounded reveal (EB-sampler) in `denoise`, the engine and the CLI."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from dream_agent import Anchor, DiffusionEngine, Slot, Template, denoise
from dream_agent.engine import SamplerConfig
from dream_agent.sampler import CONFIDENCE

from .test_cli_solve import PUZZLE_4, run, save_random_model

RANKED = tuple(CONFIDENCE)  # every alg but origin


class FixedLM:
    """A `DiffusionLM` whose every masked position gets a hand-made token distribution."""

    mask_token_id, pad_token_id, tokenizer, device, max_length = 7, 0, None, torch.device("cpu"), None

    def __init__(self, dists: list[list[float]], offset: int):
        self.dists, self.offset = dists, offset  # dists[j] for position offset + j

    def logits(self, input_ids, attention_mask=None):
        out = torch.zeros(*input_ids.shape, 8)  # (B, N, V); MASK (7) is forbidden by the sampler anyway
        for j, p in enumerate(self.dists):
            out[:, self.offset + j, :len(p)] = torch.log(torch.tensor(p))
        return out


# Five distributions over tokens 0-6 (all nonzero, so log is finite). Their entropies rise down the
# list, but the order by top probability differs: the third (0.9 on top, the rest spread) is
# revealed before the second under maskgit_plus, though its entropy is larger, so the bound's
# "less the largest" is not always the last one's.
DISTS = [
    [0.994, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001],
    [0.86, 0.135, 0.001, 0.001, 0.001, 0.001, 0.001],
    [0.9, 0.02, 0.02, 0.02, 0.02, 0.01, 0.01],
    [0.6, 0.3, 0.04, 0.03, 0.01, 0.01, 0.01],
    [0.3, 0.25, 0.2, 0.1, 0.1, 0.03, 0.02],
]


def entropy(p):
    return -sum(q * math.log(q) for q in p)


def expected_reveal(alg: str, bound: float) -> set[int]:
    """The largest prefix of the confidence order whose entropies, summed less their largest, stay within bound."""
    conf = {"maskgit_plus": max, "topk_margin": lambda p: sorted(p)[-1] - sorted(p)[-2],
            "entropy": lambda p: -entropy(p)}[alg]
    order = sorted(range(len(DISTS)), key=lambda j: -conf(DISTS[j]))
    chosen: list[int] = []
    for j in order:
        hs = [entropy(DISTS[i]) for i in chosen + [j]]
        if sum(hs) - max(hs) > bound:
            break
        chosen.append(j)
    return set(chosen)


@pytest.mark.parametrize("alg", RANKED)
def test_the_revealed_set_respects_the_bound_exactly(alg):
    t = Template([Anchor([1, 2]), Slot("a", len(DISTS)), Anchor([3])])
    lm = FixedLM(DISTS, offset=2)
    hs = sorted(entropy(p) for p in DISTS)
    # bounds just below and just above every partial sum the rule can meet, and a few in between
    sums = sorted({sum(c) - max(c) for k in range(2, 6) for c in itertools.combinations(hs, k)})
    bounds = [b for s in sums for b in (s - 1e-4, s + 1e-4)] + [0.05, 0.5, 1.5]
    seen = set()
    for bound in bounds:
        if bound <= 0:
            continue
        # steps = masks: the schedule's own count is 0 on the first step, so the bound alone decides
        r = denoise(lm, t, steps=len(DISTS), alg=alg, top_k=None, entropy_bound=bound, return_history=True)
        first = r.history[0][0, 2:2 + len(DISTS)]
        revealed = {j for j in range(len(DISTS)) if int(first[j]) != lm.mask_token_id}
        assert revealed == expected_reveal(alg, bound), bound
        assert all(int(first[j]) == 0 for j in revealed)  # each took its most probable token
        seen.add(len(revealed))
    assert seen == {1, 2, 3, 4, 5}  # the bounds above cover every count


def one_at_a_time(lm, t: Template, alg: str) -> list[int]:
    """Reveal the single most confident masked position a pass (argmax), until none is left."""
    x = t.input_ids.clone()
    x[t.masked] = lm.mask_token_id
    while (masked := (x == lm.mask_token_id).nonzero().flatten()).numel():
        logits = lm.logits(x[None])[0].clone()
        logits[:, lm.mask_token_id] = torch.finfo(logits.dtype).min
        probs = torch.softmax(logits[masked], dim=-1)
        conf = CONFIDENCE[alg](probs, probs.max(-1).values)
        best = int(conf.argmax())
        x[masked[best]] = int(probs[best].argmax())
    return x.tolist()


class Sharpened:
    """A model's logits times a factor: the random tiny model's near-uniform distributions (entropies
    equal to 6 digits, so ties) become distinct enough to rank."""

    def __init__(self, lm, factor: float):
        self.lm, self.factor = lm, factor
        self.mask_token_id, self.pad_token_id, self.tokenizer = lm.mask_token_id, lm.pad_token_id, lm.tokenizer
        self.device, self.max_length = lm.device, lm.max_length

    def logits(self, input_ids, attention_mask=None):
        return self.lm.logits(input_ids, attention_mask) * self.factor


@pytest.mark.parametrize("alg", RANKED)
def test_a_bound_near_zero_reveals_one_position_a_step(tiny_lm, alg):
    lm = Sharpened(tiny_lm, 30.0)
    t = Template([Anchor([1, 2, 3]), Slot("a", 5), Anchor([4, 5]), Slot("b", 6), Anchor([6])])
    n = int(t.masked.sum())
    r = denoise(lm, t, steps=n, alg=alg, top_k=None, entropy_bound=1e-9, return_history=True)
    assert r.nfe == n
    left = [int((h == lm.mask_token_id).sum()) for h in r.history]
    assert left == list(range(n - 1, -1, -1))  # one a step, none wasted
    assert r.ids[0].tolist() == one_at_a_time(lm, t, alg)


@pytest.mark.parametrize("alg", RANKED)
def test_a_huge_bound_reveals_everything_in_one_pass(tiny_lm, alg):
    templates = [Template([Anchor([1]), Slot("a", 24), Anchor([2])]),
                 Template([Slot("b", 3, allowed=[10, 11]), Anchor([5])])]
    r = denoise(tiny_lm, templates, steps=24, alg=alg, entropy_bound=1e6)
    assert r.nfe == 1 and not (r.ids == tiny_lm.mask_token_id).any()
    assert set(r.ids[1, :3].tolist()) <= {10, 11}


@pytest.mark.parametrize("alg,threshold,block_length,batch",
                         list(itertools.product(RANKED, [None, 0.02], [None, 3], [1, 3])))
def test_every_mode_combination_with_the_bound(tiny_lm, alg, threshold, block_length, batch):
    templates = [
        Template([Anchor([1, 2, 3]), Slot("a", 5), Anchor([4, 5]), Slot("b", 6), Anchor([6])]),
        Template([Anchor([9]), Slot("x", 2, allowed=[10, 11]), Anchor([12, 13, 14, 15])]),
        Template([Slot("y", 7, allowed=[20, 21, 22]), Anchor([5])]),
    ][:batch]
    r = denoise(tiny_lm, templates, steps=6, alg=alg, threshold=threshold, entropy_bound=0.5, block_length=block_length,
                alg_temp=None if batch == 1 else 0.5, generator=torch.Generator().manual_seed(0), return_history=True)
    for b, t in enumerate(templates):
        row = r.ids[b, : len(t)]
        assert torch.equal(row[t.anchor_mask], t.input_ids[t.anchor_mask])
        assert not (row == tiny_lm.mask_token_id).any()
        for p, allowed in enumerate(t.allowed):
            if allowed is not None:
                assert int(row[p]) in allowed
    assert len(r.history) == r.nfe and r.nfe <= 6


def test_bad_bounds(tiny_lm):
    t = Template([Anchor([1]), Slot("a", 3)])
    for bad in (0, -0.5, float("nan")):
        with pytest.raises(ValueError, match="entropy_bound must be above 0"):
            denoise(tiny_lm, t, steps=3, entropy_bound=bad)
        with pytest.raises(ValueError, match="entropy_bound must be above 0"):
            SamplerConfig(entropy_bound=bad)
    with pytest.raises(ValueError, match="not origin"):
        denoise(tiny_lm, t, steps=3, alg="origin", entropy_bound=0.1)
    with pytest.raises(ValueError, match="not origin"):
        DiffusionEngine(tiny_lm, alg="origin", entropy_bound=0.1)
    with pytest.raises(ValueError, match="threshold must be in"):
        SamplerConfig(threshold=1.5)


def test_the_engine_carries_the_bound(tiny_lm):
    t = Template([Anchor([1]), Slot("a", 12), Anchor([2])])
    engine = DiffusionEngine(tiny_lm, entropy_bound=1e6)
    assert engine.settings.entropy_bound == 1e6
    assert engine.fill(t, steps=12).nfe == 1
    assert engine.fill(t, steps=12, entropy_bound=None).nfe == 12  # a call's own setting wins


# ---- the CLI -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_setup(tmp_path_factory):
    """A random sudoku model and a data file of one 4x4 puzzle with 6 blanks."""
    from planners import get_planner

    root = tmp_path_factory.mktemp("eb_cli")
    data = root / "one.jsonl"
    data.write_text(json.dumps({"input": "1034\n3402\n2040\n4020", "output": "1234\n3412\n2143\n4321"}) + "\n")
    return save_random_model(root / "sudoku", get_planner("sudoku").alphabet), data


@pytest.mark.parametrize("option, value", [("--entropy-bound", "1000"), ("--threshold", "0.000001")])
def test_cli_options_govern_the_model_only_round(capsys, cli_setup, option, value):
    """6 blanks: one pass a blank by default, one pass in all when the rule may reveal everything."""
    model, data = cli_setup
    nfe = []
    for extra in ([], [option, value]):
        code, out, err = run(capsys, "solve", "sudoku", PUZZLE_4, "--model", model, "--max-rounds", "1",
                             "--no-constraints", "--json", *extra)
        assert code in (0, 1), err
        nfe.append(json.loads(out.strip().splitlines()[-1])["stats"]["nfe"])
    assert nfe == [6, 1]
    code, out, err = run(capsys, "eval", "sudoku", "--data", data, "--model", model, "--max-rounds", "1",
                         "--no-constraints", "--json", option, value)
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["mean_nfe"] == 1


@pytest.mark.parametrize("extra, words", [
    (["--entropy-bound", "0"], "--entropy-bound"),
    (["--entropy-bound", "-1"], "--entropy-bound"),
    (["--threshold", "1.5"], "--threshold"),
    (["--threshold", "0"], "--threshold"),
    (["--entropy-bound", "0.5", "--alg", "origin"], "not origin"),
])
@pytest.mark.parametrize("command", ["solve", "eval"])
def test_cli_bad_reveal_options_are_one_line(capsys, cli_setup, command, extra, words):
    model, data = cli_setup
    where = [PUZZLE_4] if command == "solve" else ["--data", data]
    code, out, err = run(capsys, command, "sudoku", *where, "--model", model, *extra)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and words in err, err
