"""Continuous batching: jobs share forward passes, and no problem's result depends on its batch-mates."""

from __future__ import annotations

import random

import pytest
import torch

from dream_agent import DiffusionEngine
from dream_agent.batching import Batcher, Forward, run_job, run_jobs
from dream_agent.refine import solve, solve_many
from dream_agent.sampler import denoise, denoise_job
from dream_agent.template import Anchor, Slot, Template
from planners import get_planner


class CountingModel:
    """Logits that say which row and position asked: row r's logits at position i are r * 1000 + i."""

    mask_token_id, pad_token_id, vocab_size, device, max_length = 9, 0, 10, torch.device("cpu"), None

    def __init__(self):
        self.calls: list[tuple[int, int, bool]] = []  # (rows, length, masked)

    def logits(self, input_ids, attention_mask=None):
        rows, n = input_ids.shape
        self.calls.append((rows, n, attention_mask is not None))
        value = input_ids[:, :1].float() * 1000 + torch.arange(n).float()  # (R, N): the row's first id tags it
        return value[..., None].expand(rows, n, self.vocab_size).clone()


def echo_job(tag: int, length: int, passes: int, rows: int = 1):
    """Asks `passes` times for logits of `rows` rows tagged `tag`; returns what it saw at position 0."""
    seen = []
    for _ in range(passes):
        logits = yield Forward(torch.full((rows, length), tag))
        seen.append(logits[:, 0, 0].tolist())
    return tag, seen


def test_rows_of_one_length_share_a_pass_and_each_job_gets_its_own_rows():
    model = CountingModel()
    results = run_jobs(model, [echo_job(t, 5, passes=3) for t in (1, 2, 3)], batch_size=8)
    assert model.calls == [(3, 5, False)] * 3  # three passes of three rows, not nine of one
    assert results == [(t, [[t * 1000.0]] * 3) for t in (1, 2, 3)]


def test_lengths_are_grouped_not_padded_unless_asked():
    model = CountingModel()
    run_jobs(model, [echo_job(1, 5, 1), echo_job(2, 7, 1), echo_job(3, 5, 1)], batch_size=8)
    assert sorted(model.calls) == [(1, 7, False), (2, 5, False)]

    padded = CountingModel()
    results = run_jobs(padded, [echo_job(1, 5, 1), echo_job(2, 7, 1)], batch_size=8, pad=True)
    assert padded.calls == [(2, 7, True)]  # one pass, the short row right-padded and hidden
    assert results == [(1, [[1000.0]]), (2, [[2000.0]])]


def test_a_finished_job_is_replaced_at_the_next_step():
    model = CountingModel()
    batcher = Batcher(model, max_batch=2)
    futures = [batcher.submit(echo_job(t, 4, passes=p)) for t, p in ((1, 1), (2, 3), (3, 1))]
    assert batcher.step() == 2 and futures[0].done() and not futures[2].done()
    assert batcher.step() == 2  # job 3 took job 1's place
    assert futures[2].done()
    assert batcher.step() == 1 and futures[1].done() and batcher.step() == 0
    assert [f.result()[0] for f in futures] == [1, 2, 3]


def test_max_batch_splits_a_group_and_a_larger_request_runs_alone():
    model = CountingModel()
    run_jobs(model, [echo_job(t, 4, 1) for t in range(1, 6)], batch_size=2)
    assert [c[0] for c in model.calls] == [2, 2, 1]
    big = CountingModel()
    assert run_jobs(big, [echo_job(1, 4, 1, rows=3)], batch_size=2)[0][0] == 1
    assert big.calls == [(3, 4, False)]


def test_a_failing_job_fails_alone_and_a_cancelled_one_frees_its_row():
    def broken():
        yield Forward(torch.full((1, 4), 5))
        raise RuntimeError("validator crashed")

    model = CountingModel()
    batcher = Batcher(model, max_batch=4)
    bad, good, dropped = batcher.submit(broken()), batcher.submit(echo_job(1, 4, 2)), batcher.submit(echo_job(2, 4, 5))
    batcher.step()
    assert dropped.cancel()
    batcher.run()
    with pytest.raises(RuntimeError, match="validator crashed"):
        bad.result()
    assert good.result() == (1, [[1000.0], [1000.0]])
    assert [c[0] for c in model.calls] == [3, 1]  # the cancelled job's row left after the first pass
    with pytest.raises(RuntimeError, match="validator crashed"):
        run_jobs(model, [broken(), echo_job(1, 4, 1)])


def test_run_job_drives_a_job_alone_and_a_job_that_needs_no_model():
    def no_model():
        return "done"
        yield  # a generator all the same

    assert run_job(CountingModel(), no_model()) == "done"
    assert run_jobs(CountingModel(), [no_model(), echo_job(1, 3, 1)])[0] == "done"


def test_denoise_rows_in_a_shared_pass_fill_as_alone(tiny_lm):
    templates = [Template([Anchor([5 + i, 6, 7]), Slot("a", 4 + i % 2), Anchor([8])], mask_token_id=63)
                 for i in range(5)]
    alone = [denoise(tiny_lm, t, steps=3, alg=alg) for t, alg in zip(templates, ["entropy", "maskgit_plus"] * 3)]
    together = run_jobs(tiny_lm, [denoise_job(tiny_lm, t, steps=3, alg=alg)
                                  for t, alg in zip(templates, ["entropy", "maskgit_plus"] * 3)], batch_size=8)
    for a, b in zip(alone, together):
        assert torch.equal(a.ids, b.ids) and a.nfe == b.nfe


@pytest.mark.parametrize("name, sizes", [("countdown", None), ("sudoku", (4, 9))])
def test_solve_many_equals_one_at_a_time_on_the_bundled_models(name, sizes):
    planner = get_planner(name)
    rng = random.Random(20261202)
    examples = planner.examples(6, rng) if sizes is None else planner.examples(6, rng, sizes=sizes)
    problems = [ex.problem for ex in examples]
    engine = DiffusionEngine(name, threads=1)
    alone = [solve(engine, planner, p, seed=7 + i) for i, p in enumerate(problems)]
    for batch_size in (1, 4, 32):
        finished = []
        many = solve_many(engine, planner, problems, batch_size=batch_size, seed=7,
                          on_result=lambda i, r: finished.append(i))
        assert sorted(finished) == list(range(len(problems)))
        for a, b in zip(alone, many):
            assert (b.solution, b.nfe, b.valid, b.rounds, b.model_only_valid, b.model_only_solution) == (
                a.solution, a.nfe, a.valid, a.rounds, a.model_only_valid, a.model_only_solution)
    assert sum(r.valid for r in alone) >= 4  # a trained model: most are solved, so the comparison has content
