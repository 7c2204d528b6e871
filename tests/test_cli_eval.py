"""`dream-agent eval` and the metrics behind it (`dream_agent.evaluation`), with tiny random models."""

from __future__ import annotations

import json
import shutil

import pytest

from dream_agent.cli.main import main
from dream_agent.evaluation import default_plot_steps, parse_steps_list, percentile, summarize
from dream_agent.refine import SolveResult
from dream_agent.tokenization import char_tokenizer
from planners import get_planner

from .test_cli_solve import save_random_model

SUDOKU_ROWS = [  # 4x4 in Dream's jsonl format, 6 blanks each
    {"input": "1034\n3402\n2040\n4020", "output": "1234\n3412\n2143\n4321"},
    {"input": "0140\n3401\n4300\n0234", "output": "2143\n3421\n4312\n1234"},
    {"input": "0142\n4030\n1420\n0014", "output": "3142\n4231\n1423\n2314"},
]
COUNTDOWN_ROWS = [{"input": "3,5,8", "output": "3+5=8"}, {"input": "86,28,13,31,96", "output": "86+28=114,31-13=18,114-18=96"}]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    files = {}
    for name, rows in (("sudoku", SUDOKU_ROWS), ("countdown", COUNTDOWN_ROWS)):
        files[name] = root / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps(r) + "\n" for r in rows))
    models = {name: save_random_model(root / f"{name}_model", get_planner(name).alphabet) for name in files}
    return files, models


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_table(capsys, setup):
    files, models = setup
    code, out, err = run(capsys, "eval", "sudoku", "--data", files["sudoku"], "--model", models["sudoku"])
    assert code == 0, err
    for header in ("problems", "solved", "model", "NFE", "rounds", "median", "p95"):
        assert header in out
    row = next(line for line in out.splitlines() if line.strip().startswith("auto"))
    assert row.split()[1:3] == ["3", "100.0%"]  # constraints + refinement solve these even with a random model


def test_json_metrics_and_limit(capsys, setup):
    files, models = setup
    code, out, _ = run(capsys, "eval", "sudoku", "--data", files["sudoku"], "--model", models["sudoku"],
                       "--limit", "2", "--no-constraints", "--steps", "3", "--max-rounds", "2", "--json")
    assert code == 0
    d = json.loads(out.strip().splitlines()[-1])
    assert d["problems"] == 2 and d["steps"] == 3 and d["max_rounds"] == 2 and d["constraints"] is False
    for key in ("solve_rate", "model_only_rate"):
        assert 0 <= d[key] <= 1
    assert d["model_only_rate"] <= d["solve_rate"]  # a valid first pass stops the loop: it counts as solved
    assert 1 <= d["mean_rounds"] <= 2 and 0 < d["mean_nfe"] <= 6
    assert 0 <= d["median_seconds"] <= d["p95_seconds"]

    code, out, _ = run(capsys, "eval", "countdown", "--data", files["countdown"], "--model", models["countdown"],
                       "--max-rounds", "2", "--json")
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["problems"] == 2


def test_batch_size_changes_throughput_not_results(capsys, setup):
    files, models = setup
    figures = {}
    for size in ("1", "3"):
        code, out, err = run(capsys, "eval", "sudoku", "--data", files["sudoku"], "--model", models["sudoku"],
                             "--batch-size", size, "--json")
        assert code == 0, err
        d = json.loads(out.strip().splitlines()[-1])
        assert d["batch_size"] == int(size) and d["problems_per_second"] > 0 and d["wall_seconds"] > 0
        figures[size] = (d["solved"], d["model_only"], d["mean_nfe"], d["mean_rounds"])
    assert figures["1"] == figures["3"]


def test_alg_is_the_models_own_unless_given(capsys, setup, tmp_path):
    files, models = setup
    shipped = tmp_path / "shipped"
    shutil.copytree(models["countdown"], shipped)
    (shipped / "generation_config.json").write_text('{"dream_agent": {"alg": "topk_margin"}}')
    for model, extra, alg in ((models["countdown"], [], "entropy"), (shipped, [], "topk_margin"),
                              (shipped, ["--alg", "maskgit_plus"], "maskgit_plus")):
        code, out, err = run(capsys, "eval", "countdown", "--data", files["countdown"], "--model", model,
                             "--max-rounds", "1", "--json", *extra)
        assert code == 0, err
        assert json.loads(out.strip().splitlines()[-1])["alg"] == alg


def test_default_rounds_are_the_planners(capsys, setup):
    """Without --max-rounds each planner gets its own budget (countdown's search goes deeper)."""
    files, models = setup
    for name in ("sudoku", "countdown"):
        code, out, _ = run(capsys, "eval", name, "--data", files[name], "--model", models[name], "--limit", "1",
                           "--json")
        assert code == 0
        assert json.loads(out.strip().splitlines()[-1])["max_rounds"] == get_planner(name).max_rounds
    assert get_planner("countdown").max_rounds > get_planner("sudoku").max_rounds


def test_plot_writes_a_png(capsys, setup, tmp_path):
    files, models = setup
    png = tmp_path / "curve.png"
    code, out, _ = run(capsys, "eval", "sudoku", "--data", files["sudoku"], "--model", models["sudoku"], "--limit", "2",
                       "--plot", png, "--plot-steps", "1,2", "--max-rounds", "3", "--json")
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    d = json.loads(out.strip().splitlines()[-1])
    assert [m["steps"] for m in d["curve"]] == [1, 2] and all(m["problems"] == 2 for m in d["curve"])


@pytest.mark.parametrize("extra, words", [
    (["--plot", "x.png", "--plot-steps", "4,a"], "step counts"),
    (["--plot", "x.png", "--plot-steps", "0,4"], "at least 1"),
    (["--limit", "0"], "--limit"),
])
def test_bad_options_are_one_line(capsys, setup, extra, words):
    files, models = setup
    code, out, err = run(capsys, "eval", "sudoku", "--data", files["sudoku"], "--model", models["sudoku"], *extra)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and words in err


def test_bad_data_is_one_line(capsys, setup, tmp_path):
    _, models = setup
    code, _, err = run(capsys, "eval", "sudoku", "--data", tmp_path / "missing.jsonl", "--model", models["sudoku"])
    assert code == 2 and "no such file" in err and len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "12"}\n')
    code, _, err = run(capsys, "eval", "sudoku", "--data", bad, "--model", models["sudoku"])
    assert code == 2 and "line 1" in err and "Traceback" not in err


# ---- the library --------------------------------------------------------------------------


def fake(valid, model_only, nfe, rounds, seconds):
    return SolveResult("", valid, [], rounds, nfe, seconds, model_only)


def test_summarize():
    results = [fake(True, True, 4, 1, 0.1), fake(True, False, 10, 2, 0.2), fake(False, False, 30, 3, 0.3),
               fake(True, False, 12, 2, 1.0)]
    m = summarize(results, steps=8, max_rounds=3)
    assert (m.problems, m.solved, m.model_only) == (4, 3, 1)
    assert m.solve_rate == 0.75 and m.model_only_rate == 0.25
    assert m.mean_nfe == 14 and m.mean_rounds == 2
    assert m.median_seconds == pytest.approx(0.25) and m.p95_seconds == pytest.approx(0.895)
    assert m.to_dict()["steps"] == 8


def test_helpers():
    assert percentile([3, 1, 2], 50) == 2 and percentile([], 95) == 0 and percentile([5], 95) == 5
    assert parse_steps_list("8, 4,4,16") == [4, 8, 16]
    planner = get_planner("sudoku")
    tok = char_tokenizer(planner.alphabet)
    problems = [planner.parse(r["input"]) for r in SUDOKU_ROWS]
    assert default_plot_steps(planner, problems, tok) == [1, 2, 3, 6]  # 6 masks: 1/16 ... all of them
    nine = planner.parse("4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......")
    assert default_plot_steps(planner, [nine], tok) == [4, 8, 16, 32, 64]
