"""The code planner: skeletons and tests parsed, validators blame the right holes, the dead-end
hook is sound on HumanEval's references, solving with a tiny random model, and the CLI."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest
import torch

from dream_agent import DiffusionEngine, load_model
from dream_agent.errors import ProblemError
from dream_agent.references import check_references
from dream_agent.cli.main import main
from planners import get_planner
from planners.code import CodePlanner, Hole, parse_problem, parse_skeleton, parse_tests
from planners.code.hooks import prefix_is_dead

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "code"
SINGLE = DATA / "HumanEval-SingleLineInfilling.jsonl.gz"


@pytest.fixture(scope="module")
def planner():
    return CodePlanner()


@pytest.fixture(scope="module")
def engine(char_dir):
    return DiffusionEngine(load_model(str(char_dir), device="cpu"))


def test_registered():
    assert isinstance(get_planner("code"), CodePlanner)


def test_skeleton_holes():
    pieces = parse_skeleton("def f(x):\n    return [MASK:3] + [MASK]\n")
    assert pieces == ("def f(x):\n    return ", Hole(0, 3), " + ", Hole(1, None), "\n")
    with pytest.raises(ProblemError, match="no hole"):
        parse_skeleton("def f(): pass")
    with pytest.raises(ProblemError, match="n >= 1"):
        parse_skeleton("x = [MASK:0]")


def test_three_test_forms():
    asserts = parse_tests("import math\nassert f(1) == 2\nassert f(2) == 3, 'two'\n")
    assert [t.name for t in asserts] == ["line 2", "line 3"] and asserts[0].source.startswith("import math\n")
    pytest_style = parse_tests("def test_one():\n    assert f(1) == 2\n\ndef helper():\n    return 1\n")
    assert [t.name for t in pytest_style] == ["test_one"] and pytest_style[0].source.endswith("test_one()")
    check = parse_tests("def check(candidate):\n    assert candidate(1) == 2\n", entry_point="f")
    assert check[0].source.endswith("check(f)")
    with pytest.raises(ProblemError, match="entry_point"):
        parse_tests("def check(candidate):\n    pass\n")
    with pytest.raises(ProblemError, match="do not parse"):
        parse_tests("assert (")


def test_syntax_error_blames_the_hole_tokens_on_its_line(planner, engine):
    problem = parse_problem("def f(x):\n    y = [MASK:6]\n    return [MASK:4]\n", "assert f(1) == 2")
    template = planner.encode(problem, engine.tokenizer)
    ids = template.input_ids.clone()
    tok = engine.tokenizer
    for name, text in (("hole_0", "x + 1 "), ("hole_1", "y)))")):
        ids[template.slots[name]] = torch.tensor(tok.encode(text, add_special_tokens=False))
    program = planner.decode(problem, template, ids)
    assert program == "def f(x):\n    y = x + 1 \n    return y)))\n"
    [v] = planner.check(problem, program)
    assert "line 3" in v.message
    assert set(v.positions) <= set(template.slots["hole_1"]) and v.positions and not v.slots


def test_padding_shrinks_a_hole(planner, engine):
    problem = parse_problem("def f(x):\n    return [MASK:8]\n", "assert f(2) == 3")
    template = planner.encode(problem, engine.tokenizer, solution="def f(x):\n    return x + 1\n")
    program = planner.decode(problem, template, template.input_ids)
    assert program == "def f(x):\n    return x + 1\n"
    assert planner.check(problem, program) == []


def test_rules(planner):
    problem = parse_problem("def f(x):\n    return [MASK]\n", "", forbid=("eval",), forbid_imports=("os",))
    [v] = planner.check(problem, "def f(x):\n    return eval('x')\n")
    assert "eval" in v.message and v.slots == ("hole_0",)
    [v] = planner.check(problem, "def f(x):\n    return __import__('os') or x\n") or [None]
    assert v is None  # not a name the rules list: only the sandbox stands between it and the system
    [v] = planner.check(parse_problem("[MASK]\ndef f(x):\n    return x\n", "", forbid_imports=("os",)),
                        "import os.path\ndef f(x):\n    return x\n")
    assert "os.path" in v.message
    allow = parse_problem("[MASK]\nx = 1\n", "", allow_imports=("math",))
    assert planner.check(allow, "import math\nx = 1\n") == []
    assert planner.check(allow, "import json\nx = 1\n")


def test_failing_tests_carry_their_messages(planner):
    problem = parse_problem("def f(x):\n    return [MASK]\n",
                            "assert f(1) == 2, 'one plus one'\nassert f(0) == 1\n")
    violations = planner.check(problem, "def f(x):\n    return x\n")
    assert len(violations) == 2
    assert "one plus one" in violations[0].message and "assert f(0) == 1" in violations[1].message
    assert planner.check(problem, "def f(x):\n    return x + 1\n") == []
    [v] = planner.check(problem, "def f(x):\n    return x\nraise ValueError('boom')\n")
    assert "fails before any test" in v.message and "boom" in v.message
    [v] = planner.check(problem, "def g(x):\n    return x\n")
    assert "changes the skeleton" in v.message


def test_dead_end_rule():
    assert prefix_is_dead("def f(x):\n    return x)\n    ") is not None  # a closer without its opener, line done
    assert prefix_is_dead("def f(x):\n    return (x") is None  # the bracket may still close
    assert prefix_is_dead("def f(x):\n    s = '''abc\n") is None  # a triple-quoted string may still close
    assert prefix_is_dead("if x:\n") is None  # the block is still to come
    assert prefix_is_dead("x = eval(1)\ny", frozenset({"eval"}), hole_start=0) is not None
    assert prefix_is_dead("x = ev", frozenset({"eval"}), hole_start=0) is None  # `ev` may still grow
    # a forbidden name in the fixed code after a filled hole is the user's, not the fill's
    assert prefix_is_dead("x = y\nz = eval(x)\nw", frozenset({"eval"}), fills=[(4, 5)]) is None
    assert prefix_is_dead("x = eval\nz = 1\nw", frozenset({"eval"}), fills=[(4, 8)]) is not None


@pytest.mark.skipif(not SINGLE.exists(), reason="HumanEval infilling data not in ../shared/data/code")
def test_dead_end_is_sound_on_references(planner):
    """No cut of a reference fill is called a dead end (every tenth row, every character)."""
    examples = planner.load_dataset(str(SINGLE))[::10]
    for ex in examples:
        prompt = ex.problem.pieces[0]
        fill = planner.fills_of(ex.problem, ex.solution)["hole_0"]
        for cut in range(len(fill) + 1):
            assert prefix_is_dead(prompt + fill[:cut]) is None, (ex.problem.name, fill[:cut])


@pytest.mark.skipif(not SINGLE.exists(), reason="HumanEval infilling data not in ../shared/data/code")
def test_references_pass_and_pass_fills_fail(planner):
    examples = planner.load_dataset(str(SINGLE))[:12]
    report = check_references(planner, examples)
    assert report.passed == 12 and report.null_checked == 12 and not report.null_passes
    # a wrong reference is caught
    ex = examples[0]
    broken = ex.solution.replace("return True", "return False", 1)
    assert broken != ex.solution and planner.check(ex.problem, broken)


def test_solve_finds_a_fill_with_a_random_model(planner, engine):
    # one masked character: the model ranks the alphabet, the search tries it in that order
    problem = parse_problem("x = [MASK:1]\n", "assert x == 7")
    result = planner.solve_with(engine, problem, max_rounds=3)
    assert result.valid and result.solution == "x = 7\n"
    assert result.rounds >= 2 and result.to_dict()["code"] == "x = 7\n"


def test_unknown_length_tries_every_length(engine):
    planner = CodePlanner()
    planner.lengths = (2, 3)
    problem = parse_problem("def f():\n    return [MASK]\n", "assert f() == 'never'")
    result = planner.solve_with(engine, problem, max_rounds=1)
    assert not result.valid and result.rounds == 2  # one model-only round at each length
    assert result.violations and "fails" in result.violations[0].message


def test_generated_examples_are_valid(planner):
    for ex in planner.examples(8, random.Random(0)):
        assert planner.check(ex.problem, ex.solution) == [], ex.problem.name
        null = planner.null_solution(ex.problem, ex.solution)
        assert planner.check(ex.problem, null)


# ---- CLI ------------------------------------------------------------------------------------


def test_cli_solve_json(tmp_path, char_dir, capsys):
    skeleton = tmp_path / "f.py"
    skeleton.write_text("x = [MASK:1]\n")
    tests = tmp_path / "t.py"
    tests.write_text("assert x == 4\n")
    code = main(["solve", "code", "--skeleton", str(skeleton), "--tests", str(tests), "--forbid", "eval",
                 "--model", str(char_dir), "--json", "--max-rounds", "3"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and out["valid"] and out["code"] == "x = 4\n"
    assert set(out) >= {"code", "valid", "violations", "stats"}


def test_cli_bad_input(tmp_path, capsys):
    assert main(["solve", "code", "--tests", "t.py"]) == 2
    assert "--skeleton" in capsys.readouterr().err
    assert main(["solve", "code", "--skeleton", str(tmp_path / "missing.py")]) == 2
    bad = tmp_path / "bad.py"
    bad.write_text("no holes here\n")
    assert main(["solve", "code", "--skeleton", str(bad)]) == 2
    assert "no hole" in capsys.readouterr().err


@pytest.mark.skipif(not SINGLE.exists(), reason="HumanEval infilling data not in ../shared/data/code")
def test_cli_check_references(tmp_path, capsys):
    rows = [json.loads(line) for line in gzip.open(SINGLE, "rt")][:4]
    good = tmp_path / "good.jsonl.gz"
    with gzip.open(good, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    assert main(["eval", "code", "--data", str(good), "--check-references", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["references_passed"] == 4 and out["null_false_passes"] == 0
    rows[1]["canonical_solution"] = rows[1]["canonical_solution"].replace("idx2", "idx", 1)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["eval", "code", "--data", str(bad), "--check-references"]) == 1


def test_a_long_skeleton_is_windowed_for_the_model_but_validated_whole(planner, engine):
    header = "".join(f"# line {i} of a long preamble\n" for i in range(40))  # ~1100 characters, context 256
    problem = parse_problem(header + "x = [MASK:1]\n" + "y = 2\n" * 60, "assert x == 5 and y == 2")
    result = planner.solve_with(engine, problem, max_rounds=3)
    assert result.valid and result.solution.startswith(header) and result.solution.count("y = 2") == 60


def test_dream_infill_format_on_a_tiny_dream(planner, engine):
    """[bos] prefix [mask]*n suffix [eos]: no chat template, no fill-in-the-middle tokens (DreamOn's format)."""
    tok = engine.tokenizer
    problem = parse_problem("def f(x):\n    return [MASK:5]\n", "assert f(1) == 1")
    template = planner.encode(problem, tok)
    ids = template.input_ids.tolist()
    prefix = tok.encode("def f(x):\n    return ", add_special_tokens=False)
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert ids[1:1 + len(prefix)] == prefix and ids[1 + len(prefix):6 + len(prefix)] == [engine.model.mask_token_id] * 5
    assert template.slots["hole_0"] == list(range(1 + len(prefix), 6 + len(prefix)))
    filled = engine.fill(template, steps=5)  # the tiny random Dream fills the holes and nothing else
    out = filled.row_ids(0).tolist()
    assert out[: 1 + len(prefix)] == ids[: 1 + len(prefix)] and out[-2:] == ids[-2:]
