import inspect
import itertools
import random
import re
from pathlib import Path

import pytest
import torch

from dream_agent.errors import ProblemError
from dream_agent.tokenization import char_tokenizer
from dream_agent.validation import Violation
from planners import get_planner
from planners.countdown import CountdownPlanner, CountdownProblem
from planners.countdown_generator import random_path, reaches

DATA = Path("/work/shared/data/dream_planning")
needs_data = pytest.mark.skipif(not (DATA / "cd3_test.jsonl").exists(), reason="Dream's countdown sets are not here")
FIELD = re.compile(r"_*([1-9][0-9]*|0)")  # a well-formed number field: pads, then a number without leading zero


@pytest.fixture(scope="module")
def planner():
    return CountdownPlanner()


@pytest.fixture(scope="module")
def tok(planner):
    return char_tokenizer(planner.alphabet)


@pytest.fixture(scope="module")
def problem(planner):
    return planner.parse("86,28,13,31,96")


def text(tok, ids) -> str:
    return "".join(t if len(t) == 1 else "#" for t in tok.convert_ids_to_tokens(torch.as_tensor(ids).tolist()))


# ---- problems -------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    "86,28,13,31,96", " 86, 28, 13, 31, 96 ", "86 28 13 31 96", "86 28 13 31 -> 96", "86,28,13,31->96",
    "numbers: 86 28 13 31 target: 96", "86 28 13 31 --target 96", '{"input": "86,28,13,31,96", "output": "x"}',
])
def test_parse_forms(planner, raw):
    p = planner.parse(raw)
    assert p.numbers == [86, 28, 13, 31] and p.target == 96
    assert planner.problem_text(p) == "86,28,13,31 -> 96"


@pytest.mark.parametrize("raw, words", [
    ("86,abc,13,96", "'abc'"), ("86,2.5,13,96", "'2.5'"), ("86,-28,13,96", "-28"), ("86,28,13,-96", "-96"),
    ("86,96", "at least 2 numbers"), ("", "at least 2 numbers"), ("1,2,3,4,5,6,7,10", "solves 2 to 5"),
    ("1 2 3 4 5 6 --target 720", "got 6 numbers"),
    ("86,100000,96", "100000"), ("86,0,96", "number 0"), ("86,28,123456", "target 123456"),
    ("86 28 -> 96 97", "one target"), ('{"output": "1+2=3"}', '"input"'), ("{nope", "JSON"),
])
def test_parse_errors_name_the_token(planner, raw, words):
    with pytest.raises(ProblemError) as e:
        planner.parse(raw)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_problem_model_raises_problem_error():
    with pytest.raises(ProblemError, match="number -3"):
        CountdownProblem(numbers=[1, -3], target=5)
    with pytest.raises(ProblemError, match="numbers.0"):
        CountdownProblem(numbers=["x", 3], target=5)
    assert str(CountdownProblem(numbers=[3, 4], target=7)) == "3,4 -> 7"


def test_registered_entry_point():
    assert isinstance(get_planner("countdown"), CountdownPlanner)


def test_load_dataset_errors_name_file_and_line(planner, tmp_path):
    with pytest.raises(ProblemError, match="no such file"):
        planner.load_dataset(str(tmp_path / "missing.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "1,2,3", "output": "1+2=3"}\n\n{"input": "1,x,3"}\n')
    with pytest.raises(ProblemError, match=r"bad.jsonl:3: 'x'"):
        planner.load_dataset(str(bad))
    bad.write_text('{"input": "1,2,3"}\nnot json\n')
    with pytest.raises(ProblemError, match=r"bad.jsonl:2: not valid JSON"):
        planner.load_dataset(str(bad))


# ---- Dream's reference data ----------------------------------------------------------------------


@needs_data
@pytest.mark.parametrize("name, n", [("cd3", 3), ("cd4", 4), ("cd5", 5)])
def test_every_reference_output_is_valid(planner, name, n):
    examples = planner.load_dataset(str(DATA / f"{name}_test.jsonl"))
    assert len(examples) == 1000 and all(len(e.problem.numbers) == n for e in examples)
    failures = [(e.solution, planner.check(e.problem, e.solution)) for e in examples if planner.check(e.problem, e.solution)]
    assert failures == []


@needs_data
@pytest.mark.parametrize("name", ["cd3", "cd4", "cd5"])
def test_reference_roundtrip_through_the_template(planner, tok, name):
    examples = planner.load_dataset(str(DATA / f"{name}_test.jsonl"))
    wide = [e for e in examples if max(map(int, re.findall(r"\d+", e.solution))) >= 10**planner.width]
    assert len(wide) == (1 if name == "cd5" else 0)  # cd5 has one 5-digit intermediate (10560)
    for e in wide:
        with pytest.raises(ProblemError, match="does not fit"):
            planner.encode(e.problem, tok, e.solution)
    for e in [e for e in examples if e not in wide][::4]:  # a quarter of each set keeps the test fast
        t = planner.encode(e.problem, tok, e.solution)
        assert not t.masked.any()
        assert planner.decode(e.problem, t, t.input_ids) == e.solution


# ---- the template ------------------------------------------------------------------------------------


def test_template_layout(planner, tok, problem):
    t = planner.encode(problem, tok)
    assert text(tok, t.input_ids) == "86,28,13,31>96|" + "#########=####," * 2 + "#########=__96"
    assert list(t.slots) == ["s1.a", "s1.op", "s1.b", "s1.r", "s2.a", "s2.op", "s2.b", "s2.r", "s3.a", "s3.op", "s3.b"]
    assert all(len(t.slots[s]) == (1 if s.endswith(".op") else 4) for s in t.slots)
    assert set(t.allowed[t.slots["s1.op"][0]]) == set(tok.convert_tokens_to_ids(list("+-*/")))
    assert set(t.allowed[t.slots["s2.r"][0]]) == set(tok.convert_tokens_to_ids(list("0123456789_")))
    filled = planner.encode(problem, tok, "86+28=114,31-13=18,114-18=96")
    assert text(tok, filled.input_ids) == "86,28,13,31>96|__86+__28=_114,__31-__13=__18,_114-__18=__96"


def test_encode_rejects_solutions_that_do_not_fit(planner, tok, problem):
    for bad in ["86+28=114,31-13=18", "86+28=114,31-13=18,114-18=95", "hello", "86+28=114,31-13=18,12345-18=96"]:
        with pytest.raises(ProblemError):
            planner.encode(problem, tok, bad)


def test_malformed_fill_decodes_to_a_rejected_solution(planner, tok, problem):
    t = planner.encode(problem, tok)
    assert planner.check(problem, planner.decode(problem, t, t.input_ids))  # all masks: "?" everywhere
    ids = planner.encode(problem, tok, "86+28=114,31-13=18,114-18=96").input_ids.clone()
    ids[t.slots["s1.a"]] = torch.tensor(tok.convert_tokens_to_ids(list("_8_6")))
    ids[t.slots["s2.r"]] = torch.tensor(tok.convert_tokens_to_ids(list("____")))
    ids[t.slots["s3.op"]] = 10**6  # outside the vocabulary
    decoded = planner.decode(problem, t, ids.unsqueeze(0))
    assert decoded == "8_6+28=114,31-13=,114?18=96"
    violations = planner.check(problem, decoded)
    assert {v.slots[0][:2] for v in violations} >= {"s1", "s2", "s3"}


# ---- the validator ------------------------------------------------------------------------------------


@pytest.mark.parametrize("solution, message, slots", [
    ("86+28=114,31-13=17,114-17=97", "step 2: 31-13 is 18, not 17", ("s2.a", "s2.op", "s2.b", "s2.r")),
    ("50+28=78,31-13=18,78-18=60", "step 1 uses 50, which is not available", ("s1.a",)),
    ("86+28=114,86-13=73,114-73=41", "step 2 uses 86, which is already used", ("s2.a",)),
    ("86+28=114,28-13=15,114-15=99", "input 31 is never used", ("s3.a", "s3.op", "s3.b")),
    ("86+28=114,31/13=2,114-2=112", "step 2: division 31/13 is not exact", ("s2.a", "s2.op", "s2.b")),
    ("86+28=114,13-31=-18,114-18=96", "step 2: 13-31 is -18, a negative intermediate result", ("s2.a", "s2.op", "s2.b")),
    ("86+28=114,31-13=18,114+18=132", "step 3 result 132 is not the target 96", ("s3.a", "s3.op", "s3.b")),
    ("86+28=114,31-13=18", "the solution has 2 steps; 4 numbers need 3", ("s3.a", "s3.op", "s3.b")),
    ("86+28=114,hello,114-18=96", "step 2: cannot read 'hello'", ("s2.a", "s2.op", "s2.b", "s2.r")),
    ("86+28=114,31-13=18,114*0=0,0+96=96", "the solution has 4 steps", ("s3.a", "s3.op", "s3.b")),
    # no last step can work with what step 2 left: blame step 2, so refinement re-chooses from there
    ("86+28=114,31+13=44,114-44=96", "step 2 leaves 44, 114, from which no single step makes the target 96",
     ("s2.a", "s2.op", "s2.b", "s2.r")),
])
def test_violations_are_localized(planner, problem, solution, message, slots):
    found = {v.message: v.slots for v in planner.check(problem, solution)}
    hit = [m for m in found if m.startswith(message)]
    assert hit, found
    assert found[hit[0]] == slots


def test_valid_solutions_pass(planner, problem):
    assert planner.check(problem, "86+28=114,31-13=18,114-18=96") == []
    assert planner.check(problem, " 31 - 13 = 18 , 28+86=114,114-18=96") == []  # any order, spaces
    assert planner.check(planner.parse("5,5,7,7,7"), "5-5=0,0*7=0,0+7=7") == []  # zero is a legal result


@pytest.mark.parametrize("garbage", ["", "   ", "hello", ",,,", "86+28", "1/0=0,2+2=4,4+4=8", "é" * 500, "=" * 9, "-1--1=0"])
def test_garbage_gives_violations_not_exceptions(planner, problem, garbage):
    violations = planner.check(problem, garbage)
    assert violations and all(isinstance(v, Violation) for v in violations)


def test_related_slots_are_the_failing_step_and_later(planner, tok, problem):
    t = planner.encode(problem, tok)
    v = planner.check(problem, "86+28=114,31-13=17,114-17=97")[0]
    assert planner.related_slots(problem, t, v) == ["s2.a", "s2.op", "s2.b", "s2.r", "s3.a", "s3.op", "s3.b"]
    assert planner.related_slots(problem, t, Violation("no step", ())) == list(t.slots)
    left = [v for v in planner.check(problem, "86+28=114,31+13=44,114-44=96") if "leaves" in v.message]
    assert planner.related_slots(problem, t, left[0])[0] == "s2.a"


def test_a_fixable_last_step_blames_only_itself(planner, problem):
    # 114 and 18 are left and 114-18 makes 96: only the last step is wrong
    found = planner.check(problem, "86+28=114,31-13=18,114+18=96")
    assert [v.slots for v in found] == [("s3.a", "s3.op", "s3.b")]
    # a cd3 fill with no possible last step blames step 1 (the only earlier step)
    p3 = planner.parse("86,28,13,99")
    assert any(v.slots == ("s1.a", "s1.op", "s1.b", "s1.r") for v in planner.check(p3, "86+28=114,114-13=99"))


def test_validator_never_evaluates_text(planner, problem):
    import planners.countdown as module

    assert "eval(" not in inspect.getsource(module) and "exec(" not in inspect.getsource(module)
    for text_ in ["__import__('os').system('true')+1=1", "1+1=2;2+2=4", "(1+2)*3=9"]:
        assert planner.check(problem, text_)  # unreadable steps, not executed


# ---- the logits hook -------------------------------------------------------------------------------------


def allowed_chars(tok, logits, pos) -> str:
    low = torch.finfo(logits.dtype).min
    return "".join(sorted(t for i, t in enumerate(tok.convert_ids_to_tokens(range(logits.shape[-1]))) if logits[pos, i] > low))


def test_hook_keeps_fields_well_formed(planner, tok, problem):
    t = planner.encode(problem, tok)
    hook = planner.constraints(problem, t, tok).logits_hook
    x = t.input_ids.unsqueeze(0).clone()  # (1, N)
    logits = torch.zeros(1, len(t) + 3, len(tok) + 2)  # extra columns and vocab a padded model may have
    out = hook(0, torch.cat([x, torch.zeros(1, 3, dtype=torch.long)], 1), logits)[0]
    a, r1, r = t.slots["s1.a"], t.slots["s1.r"], t.slots["s2.r"]
    assert [allowed_chars(tok, out, p) for p in a] == ["_", "_", "1238", "1368"]  # step 1 takes inputs only
    assert allowed_chars(tok, out, r1[0]) == "12_"  # 4-digit results of two inputs: 1118 (86*13), 2408, 2666
    assert allowed_chars(tok, out, r[3]) == "0123456789"  # the last position of a number is a digit
    assert (out[: len(t)][~t.masked] == 0).all() and (out[len(t) :] == 0).all()  # anchors and padding untouched

    x[0, a[2]] = tok.convert_tokens_to_ids("8")  # s1.a shows 8_: only 86 agrees
    x[0, r[1]] = tok.convert_tokens_to_ids("1")  # s2.r shows _1__: no pad right of it
    out = hook(0, x, torch.zeros(1, len(t), len(tok)))[0]
    assert allowed_chars(tok, out, a[3]) == "6"
    assert "_" in allowed_chars(tok, out, r[0])
    assert "_" not in allowed_chars(tok, out, r[2]) + allowed_chars(tok, out, r[3])
    x[0, r[1]] = tok.convert_tokens_to_ids("_")  # a pad: everything left of it is pad, no leading zero right of it
    out = hook(0, x, torch.zeros(1, len(t), len(tok)))[0]
    assert allowed_chars(tok, out, r[0]) == "_" and "_" in allowed_chars(tok, out, r[2])
    assert "0" not in allowed_chars(tok, out, r[2]) and "_" not in allowed_chars(tok, out, r[3])
    assert hook(0, x, torch.zeros(1, len(t), len(tok), dtype=torch.bfloat16)).dtype == torch.bfloat16


def fill(tok, t, x, **fields):
    """Write `fields` (slot name with "_" for ".", e.g. s1_a="__86"; "?" stays masked) into row x (N,)."""
    for name, value in fields.items():
        for p, ch in zip(t.slots[name.replace("_", ".", 1)], value):
            if ch != "?":
                x[p] = tok.convert_tokens_to_ids(ch)
    return x


def allowed(planner, tok, problem, **fields):
    """The hook on one row with `fields` revealed: {slot: allowed characters per position}, dead end."""
    t = planner.encode(problem, tok)
    cons = planner.constraints(problem, t, tok)
    x = fill(tok, t, t.input_ids.clone(), **fields).unsqueeze(0)
    out = cons.logits_hook(0, x, torch.zeros(1, len(t), len(tok)))[0]
    return {s: [allowed_chars(tok, out, p) for p in ps] for s, ps in t.slots.items()}, bool(cons.dead_end(x)[0])


def test_hook_operands_are_available_items(planner, tok, problem):
    # step 1 consumed 86 and 28 and made 114: step 2 takes 13, 31 or 114
    sets, dead = allowed(planner, tok, problem, s1_a="__86", s1_op="+", s1_b="__28", s1_r="_114")
    assert sets["s2.a"] == ["_", "1_", "13", "134"] and not dead
    # once step 2 takes 114 (one item), its other operand is 13 or 31
    sets, _ = allowed(planner, tok, problem, s1_a="__86", s1_op="+", s1_b="__28", s1_r="_114", s2_a="_114")
    assert sets["s2.b"] == ["_", "_", "13", "13"]
    # two equal inputs are two items; one input is one item
    sets, _ = allowed(planner, tok, planner.parse("5,5,7,7"), s1_a="___5")
    assert sets["s1.b"] == ["_", "_", "_", "57"]
    sets, _ = allowed(planner, tok, planner.parse("5,7,3,7"), s1_a="___5")
    assert sets["s1.b"] == ["_", "_", "_", "37"]
    # a partly revealed operand with one candidate left counts as that number: 86 is used up
    # (step 1's possible results 114, 58, 2408, 99, 73, 1118, 117, 55, 2666 have no 8 there either)
    sets, _ = allowed(planner, tok, problem, s1_a="??8?")
    assert "8" not in sets["s2.a"][2] and "1" in sets["s2.a"][2]


def test_hook_forces_the_result(planner, tok, problem):
    sets, _ = allowed(planner, tok, problem, s1_a="__86", s1_op="+", s1_b="__28")
    assert sets["s1.r"] == ["_", "1", "1", "4"]  # 86+28: only 114
    # ?*31 = ?6??: of 86, 28 and 13 only 86*31 = 2666 fits, so a and the result are forced
    sets, _ = allowed(planner, tok, problem, s1_op="*", s1_b="__31", s1_r="?6??")
    assert sets["s1.a"] == ["_", "_", "8", "6"] and sets["s1.r"] == ["2", "6", "6", "6"]
    # a revealed result limits the operands to pairs making it
    sets, _ = allowed(planner, tok, problem, s1_r="__18")
    assert sets["s1.a"] == ["_", "_", "3", "1"] and sets["s1.b"] == ["_", "_", "1", "3"] and sets["s1.op"] == ["-"]


def test_hook_limits_operators(planner, tok, problem):
    sets, _ = allowed(planner, tok, problem, s1_a="__13", s1_b="__31")
    assert sets["s1.op"] == ["*+"]  # 13-31 < 0, 13/31 is not exact
    sets, _ = allowed(planner, tok, problem, s1_a="__31", s1_b="__13")
    assert sets["s1.op"] == ["*+-"]
    # the last step must make the target: 114 and 18 are left, only 114-18 makes 96
    sets, dead = allowed(planner, tok, problem, s1_a="__86", s1_op="+", s1_b="__28", s1_r="_114",
                         s2_a="__31", s2_op="-", s2_b="__13", s2_r="__18")
    assert sets["s3.a"] == ["_", "1", "1", "4"] and sets["s3.b"] == ["_", "_", "1", "8"] and sets["s3.op"] == ["-"]
    assert not dead


def test_hook_last_step_takes_pairs_that_make_the_target(planner, tok):
    problem = planner.parse("86,28,13,99")
    # a revealed: b must complete it (86+13=99); 28 cannot, nor can step 1's result
    sets, _ = allowed(planner, tok, problem, s2_a="__86")
    assert sets["s2.b"] == ["_", "_", "1", "3"] and sets["s2.op"] == ["+"]
    # step 1 is 28-13=15 (forced): the last step has 86 and 15 left, and only 86+15 or 15+86 make 101
    sets, dead = allowed(planner, tok, planner.parse("86,28,13,101"), s1_a="__28", s1_op="-", s1_b="__13")
    assert sets["s1.r"] == ["_", "_", "1", "5"] and not dead
    assert sets["s2.a"] == sets["s2.b"] == ["_", "_", "18", "56"] and sets["s2.op"] == ["+"]
    # no lookahead: step 1 is not pruned by what step 2 will need (28 is not in any final pair)
    sets, _ = allowed(planner, tok, problem)
    assert sets["s1.a"] == ["_", "_", "128", "368"]


def test_hook_falls_back_where_nothing_fits(planner, tok, problem):
    # no input reads 9_: the number rules leave s1.a nothing; the field only stays well formed
    sets, dead = allowed(planner, tok, problem, s1_a="__9")
    assert sets["s1.a"][3] == "0123456789" and dead
    # 86/28 is not exact: the result is left to the template's sets and the validator
    sets, dead = allowed(planner, tok, problem, s1_a="__86", s1_op="/", s1_b="__28")
    assert sets["s1.r"] == ["123456789_", "0123456789_", "0123456789_", "0123456789"] and dead
    # 13 and 31 make no 18: the operator falls back to all four
    sets, dead = allowed(planner, tok, problem, s1_a="__13", s1_b="__31", s1_r="__18")
    assert sets["s1.op"] == ["*+-/"] and dead
    # the last step says 114+?: no b makes 96, b is only kept well formed
    sets, dead = allowed(planner, tok, problem, s3_a="_114", s3_op="+")
    assert sets["s3.b"] == ["123456789_", "0123456789_", "0123456789_", "0123456789"] and dead


def test_hook_never_prunes_a_solution(planner, tok):
    """Reveal correct solutions in random orders: their tokens stay allowed, and no dead end is reported."""
    rng = random.Random(5)
    for e in planner.examples(12, rng):
        truth = planner.encode(e.problem, tok, e.solution).input_ids
        t = planner.encode(e.problem, tok)
        cons = planner.constraints(e.problem, t, tok)
        x = t.input_ids.clone().unsqueeze(0)
        order = t.masked.nonzero().flatten().tolist()
        rng.shuffle(order)
        for p in order:
            out = cons.logits_hook(0, x, torch.zeros(1, len(t), len(tok)))[0]
            masked = x[0] == tok.mask_token_id
            assert (out[masked, truth[masked]] == 0).all(), (e.solution, text(tok, x[0]))
            assert not bool(cons.dead_end(x)[0])
            x[0, p] = truth[p]


def test_hook_one_position_at_a_time_gives_well_formed_fields(planner, tok):
    """Reveal one random position a step, sampled from random logits under the hook: every field parses."""
    gen = torch.Generator().manual_seed(0)
    rng = random.Random(0)
    for _ in range(5):
        ex = planner.examples(1, rng)[0]
        t = planner.encode(ex.problem, tok)
        hook = planner.constraints(ex.problem, t, tok).logits_hook
        x = t.input_ids.repeat(4, 1)  # (B, N)
        while (x == tok.mask_token_id).any():
            logits = hook(0, x, torch.randn(x.shape[0], x.shape[1], len(tok), generator=gen) * 3)
            for b in range(x.shape[0]):
                masked = (x[b] == tok.mask_token_id).nonzero().flatten()
                if masked.numel():
                    p = int(masked[torch.randint(masked.numel(), (1,), generator=gen)])
                    x[b, p] = int(logits[b, p].argmax())
        for b in range(x.shape[0]):
            fields = {s: text(tok, x[b, ps]) for s, ps in t.slots.items() if not s.endswith(".op")}
            assert all(FIELD.fullmatch(f) for f in fields.values()), fields
            assert {int(fields["s1.a"].lstrip("_")), int(fields["s1.b"].lstrip("_"))} <= set(ex.problem.numbers)


class RandomLM:
    """Random logits behind the sampler's `DiffusionLM` contract."""

    def __init__(self, tok):
        self.tokenizer, self.mask_token_id, self.pad_token_id = tok, tok.mask_token_id, tok.pad_token_id
        self.vocab_size, self.max_length, self.device = len(tok), None, torch.device("cpu")
        self.gen = torch.Generator().manual_seed(0)

    def logits(self, input_ids, attention_mask=None):
        return torch.randn(*input_ids.shape, self.vocab_size, generator=self.gen)  # (B, N, V)


def test_hook_runs_inside_denoise(planner, tok, problem):
    from dream_agent import denoise

    t = planner.encode(problem, tok)
    hook = planner.constraints(problem, t, tok).logits_hook
    result = denoise(RandomLM(tok), [t, t], steps=int(t.masked.sum()), logits_hook=hook)
    for row in range(2):
        decoded = planner.decode(problem, t, result.ids[row, : len(t)])
        assert "?" not in decoded and isinstance(planner.check(problem, decoded), list)


# ---- generated examples --------------------------------------------------------------------------------


def test_examples_are_valid_and_in_range(tok):
    planner = CountdownPlanner(sizes=(3, 4, 5))
    examples = planner.examples(600, random.Random(1))
    assert len(examples) == 600
    assert {len(e.problem.numbers) for e in examples} == {3, 4, 5}
    for e in examples:
        assert all(1 <= v <= 99 for v in e.problem.numbers) and 10 <= e.problem.target <= 100
        assert planner.check(e.problem, e.solution) == []
        assert max(int(v) for v in re.findall(r"\d+", e.solution)) < 10**planner.width
    for e in examples[:50]:  # and they fit the template
        t = planner.encode(e.problem, tok, e.solution)
        assert planner.decode(e.problem, t, t.input_ids) == e.solution
    assert [e.solution for e in planner.examples(20, random.Random(3))] == [e.solution for e in planner.examples(20, random.Random(3))]
    assert len({e.solution.split(",")[0] for e in examples}) > 400  # varied


def _every_end(numbers: list[int], limit: int = 10**4) -> set[int]:
    """Every value reached by joining two items at a time until one is left (Dream's step order), by brute force."""
    if len(numbers) == 1:
        return set(numbers)
    out = set()
    for i, j in itertools.combinations(range(len(numbers)), 2):
        x, y = numbers[i], numbers[j]
        rest = [v for k, v in enumerate(numbers) if k not in (i, j)]
        joined = {x + y, abs(x - y), x * y} | ({max(x, y) // min(x, y)} if min(x, y) and max(x, y) % min(x, y) == 0 else set())
        for r in (r for r in joined if r < limit):
            out |= _every_end(rest + [r], limit)
    return out


@pytest.mark.parametrize("size,count", [(2, 40), (3, 40), (4, 25), (5, 3)])
def test_reaches_agrees_with_brute_force(size, count):
    rng = random.Random(size)
    for _ in range(count):
        numbers = [rng.randint(1, 99) for _ in range(size)]
        ends = _every_end(numbers)
        for goal in range(0, 150):
            assert reaches(tuple(sorted(numbers)), goal, 10**4) == (goal in ends), (numbers, goal)


@pytest.mark.parametrize("numbers,goal", [((5, 5, 7), 0), ((3, 3, 50), 50), ((1, 2, 3, 4, 5), 100), ((2, 3), 6)])
def test_random_path_is_a_valid_solution(numbers, goal):
    rng = random.Random(0)
    for _ in range(10):
        steps = random_path(tuple(sorted(numbers)), goal, rng, 10**4)
        solution = ",".join(f"{a}{op}{b}={r}" for a, op, b, r in steps)
        assert CountdownPlanner().check(CountdownProblem(numbers=list(numbers), target=goal), solution) == [], solution


def test_examples_draw_the_target_first_as_dreams_sets_do():
    # Dream's sets fix a target, then draw inputs until they reach it: targets come out uniform, and
    # many problems have few solutions (a random path's end would favour targets many paths reach).
    examples = CountdownPlanner(sizes=(3,)).examples(900, random.Random(0))
    targets = [e.problem.target for e in examples]
    # uniform on 10..100: mean 55 (sd of a 900-mean about 0.9); drawing target and inputs together
    # until they meet gives about 51.8 here, a forward path's end about 50.7
    assert 52.5 <= sum(targets) / len(targets) <= 57.5
    assert not reaches((2, 3), 7, 10**4)


def test_sizes_option_and_render(planner, problem):
    assert {len(e.problem.numbers) for e in CountdownPlanner(sizes=(4,)).examples(30, random.Random(0))} == {4}
    with pytest.raises(ValueError):
        CountdownPlanner(sizes=(1,))
    assert planner.render(problem, "86+28=114,31-13=18,114-18=96") == "86 + 28 = 114\n31 - 13 = 18\n114 - 18 = 96"
    assert planner.render(problem, "garbage") == "garbage"
