"""Code: fill the holes of a Python skeleton so that it parses, keeps the rules and passes its tests.

    planner = CodePlanner()
    problem = planner.parse_parts("def add(a, b):\\n    return [MASK:8]\\n", "assert add(1, 2) == 3")
    result = planner.solve_with(engine, problem)      # every unknown-length hole tried at several lengths

Everything outside the holes is an anchor and never changes. A hole's tokens that decode to
padding or end-of-text are dropped, so a hole may come out shorter than its length (the
"shrink" half of DreamOn's expand/shrink, with the tokenizer's own pad/eos; `[MASK]` holes
are tried at each of `lengths`, the "expand" half). Validators: `ast.parse`, the rules,
and the tests in the sandbox (`dream_agent.sandbox`); the search's dead end is a known
prefix that can no longer parse (`hooks.py`).
"""

from __future__ import annotations

import random
import re
from collections import OrderedDict
from dataclasses import dataclass, fields, replace
from pathlib import Path

from dream_agent.errors import ProblemError, TemplateError
from dream_agent.template import Anchor, Slot, Template
from dream_agent.validation import Violation

from ..base import Constraints, Example, Planner
from .hooks import DeadEnd
from .skeleton import CodeProblem, CodeTest, Hole, Rules, parse_problem, parse_skeleton, parse_tests
from .validators import HoleSpan, rule_violations, spans_of, syntax_violations, test_violations

ALPHABET = "".join(chr(c) for c in range(32, 127)) + "\n"  # the small model's characters: printable ASCII


class CodePlanner(Planner):
    name = "code"
    alphabet = ALPHABET
    description = "Code: fill [MASK] holes in a Python skeleton; syntax, rules and tests (in a sandbox) validate"
    max_rounds = 8
    lengths = (16, 32, 64)  # tokens tried, shortest first, for a [MASK] hole of unknown length

    def __init__(self, sandbox=None):
        self._sandbox = sandbox
        self._spans: OrderedDict[str, list[HoleSpan]] = OrderedDict()  # program -> where its fills are (last decodes)

    @property
    def sandbox(self):
        if self._sandbox is None:
            from dream_agent.sandbox import Sandbox

            self._sandbox = Sandbox()
        return self._sandbox

    # -- problems --

    def parse(self, text: str) -> CodeProblem:
        """A skeleton whose tests follow a line `# tests` (or none: then only syntax and rules validate)."""
        parts = re.split(r"^#\s*tests\s*$", text, maxsplit=1, flags=re.M)
        return parse_problem(parts[0], parts[1] if len(parts) > 1 else "")

    def parse_parts(self, skeleton: str, tests: str = "", **rules) -> CodeProblem:
        return parse_problem(skeleton, tests, **rules)

    def problem_from_args(self, args: list[str]) -> CodeProblem:
        """`--skeleton f.py [--tests t.py] [--forbid NAME ...] [--forbid-import MOD ...]`, as the CLI passes them."""
        opts: dict[str, list[str]] = {"--skeleton": [], "--tests": [], "--forbid": [], "--forbid-import": []}
        it = iter(args)
        for a in it:
            key, _, value = a.partition("=")
            if key not in opts:
                raise ProblemError(f"the code planner reads --skeleton FILE [--tests FILE] [--forbid NAME]; got {a!r}")
            value = value or next(it, None)
            if value is None:
                raise ProblemError(f"{key} needs a value")
            opts[key].append(value)
        if len(opts["--skeleton"]) != 1:
            raise ProblemError("give one --skeleton FILE (a Python file with [MASK] or [MASK:n] holes)")

        def read(path: str) -> str:
            p = Path(path)
            if not p.is_file():
                raise ProblemError(f"{path}: no such file")
            return p.read_text(encoding="utf-8")

        tests = "\n".join(read(p) for p in opts["--tests"])
        return parse_problem(read(opts["--skeleton"][0]), tests, forbid=tuple(opts["--forbid"]),
                             forbid_imports=tuple(opts["--forbid-import"]))

    def problem_text(self, problem: CodeProblem) -> str:
        return str(problem)

    def load_dataset(self, path: str) -> list[Example]:
        from .humaneval import load_rows

        return load_rows(path)

    def examples(self, n: int, rng: random.Random) -> list[Example]:
        from .generator import generated_examples

        return generated_examples(n, rng)

    # -- templates --

    def layout(self, problem: CodeProblem, tokenizer) -> list[tuple[str | Hole, list[int]]]:
        """Each piece with the template positions it takes (anchors tokenized one at a time)."""
        out, pos = [], len(self._ends(tokenizer)[0])
        for p, shown in zip(problem.pieces, self._shown(problem, tokenizer)):
            n = len(tokenizer.encode(shown, add_special_tokens=False)) if isinstance(p, str) else self._length(p)
            # a windowed anchor keeps its full text here: the dead-end test parses the real program
            out.append((p, list(range(pos, pos + n))))
            pos += n
        return out

    @staticmethod
    def _shown(problem: CodeProblem, tokenizer) -> list[str | Hole]:
        """The pieces the model sees: the window, and any character the tokenizer has no token for
        (a character model's "➞" in a docstring) as a space. Validators see the real text."""
        unk = getattr(tokenizer, "unk_token_id", None)
        out: list[str | Hole] = []
        for p in problem.template_pieces():
            if isinstance(p, str) and unk is not None and unk in tokenizer.encode(p, add_special_tokens=False):
                p = "".join(ch if unk not in tokenizer.encode(ch, add_special_tokens=False) else " " for ch in p)
            out.append(p)
        return out

    def _length(self, hole: Hole) -> int:
        return hole.length if hole.length is not None else self.lengths[0]

    @staticmethod
    def _ends(tokenizer) -> tuple[list[int], list[int]]:
        """Dream's infill format (DreamOn's and Dream-Coder's demos): [bos] prefix [mask]*n suffix [eos],
        raw code, no chat template and no fill-in-the-middle tokens."""
        bos, eos = getattr(tokenizer, "bos_token_id", None), getattr(tokenizer, "eos_token_id", None)
        return ([bos] if bos is not None else []), ([eos] if eos is not None else [])

    def encode(self, problem: CodeProblem, tokenizer, solution: str | None = None) -> Template:
        import torch  # here, so that listing planners and parsing input load no torch

        head, tail = self._ends(tokenizer)
        segments = [Anchor(p) if isinstance(p, str) else Slot(p.name, self._length(p))
                    for p in self._shown(problem, tokenizer) if p != ""]
        segments = ([Anchor(head)] if head else []) + segments + ([Anchor(tail)] if tail else [])
        template = Template(segments, tokenizer)
        if solution is None:
            return template
        fills = self.fills_of(problem, solution)
        if fills is None:
            raise ProblemError("the solution does not keep the skeleton's fixed code")
        ids = template.input_ids.clone()
        pad = tokenizer.pad_token_id
        for hole in problem.holes:
            piece = tokenizer.encode(fills[hole.name], add_special_tokens=False)
            positions = template.slots[hole.name]
            if len(piece) > len(positions):
                raise TemplateError(f"{hole.name}'s fill takes {len(piece)} tokens; the hole has {len(positions)}")
            ids[positions] = torch.tensor(piece + [pad] * (len(positions) - len(piece)), dtype=torch.long)
        return template.with_values(ids, remask=[])

    def decode(self, problem: CodeProblem, template: Template, ids) -> str:
        import torch  # here, so that listing planners and parsing input load no torch

        ids = torch.as_tensor(ids)
        ids = (ids[0] if ids.dim() == 2 else ids).tolist()
        tok = template.tokenizer
        drop = {i for i in (tok.pad_token_id, tok.eos_token_id, tok.bos_token_id, tok.mask_token_id,
                            getattr(tok, "unk_token_id", None)) if i is not None}
        parts, spans, at = [], [], 0
        for piece in problem.pieces:
            if isinstance(piece, str):
                parts.append(piece)
                at += len(piece)
                continue
            start, tokens = at, []
            for p in template.slots[piece.name]:
                text = "" if ids[p] in drop or ids[p] >= len(tok) else tok.decode([ids[p]])
                tokens.append((p, at, at + len(text)))
                parts.append(text)
                at += len(text)
            spans.append(HoleSpan(piece.name, start, at, tuple(tokens)))
        program = "".join(parts)
        self._spans[program] = spans
        while len(self._spans) > 256:
            self._spans.popitem(last=False)
        return program

    def constraints(self, problem: CodeProblem, template: Template, tokenizer) -> Constraints:
        return Constraints(dead_end=DeadEnd(problem, template, tokenizer, self.layout(problem, tokenizer)))

    # -- validation --

    def fills_of(self, problem: CodeProblem, program: str) -> dict[str, str] | None:
        """Each hole's text in `program`, read back between the anchors (None: an anchor changed)."""
        pattern = "".join(re.escape(p) if isinstance(p, str) else f"(?P<{p.name}>.*?)" for p in problem.pieces)
        m = re.fullmatch(pattern, program, flags=re.S)
        return None if m is None else m.groupdict()

    def check(self, problem: CodeProblem, solution: str) -> list[Violation]:
        every_hole = tuple(h.name for h in problem.holes)
        spans = self._spans.get(solution)
        if spans is None:
            fills = self.fills_of(problem, solution)
            if fills is None:
                return [Violation("the program changes the skeleton's fixed code", every_hole)]
            spans = spans_of(problem, fills)
        if violations := syntax_violations(solution, spans):
            return violations
        if violations := rule_violations(problem, solution, spans):
            return violations
        if not problem.tests:
            return []
        return test_violations(problem, solution, self.sandbox)

    def null_solution(self, problem: CodeProblem, reference: str) -> str | None:
        """The reference with every hole filled by `pass` at the fill's own indentation: what
        `eval --check-references` requires to fail (a test set that a do-nothing body passes tests nothing)."""
        fills = self.fills_of(problem, reference)
        if fills is None:
            return None
        null = {}
        for name, text in fills.items():
            first = next((line for line in text.splitlines() if line.strip()), "")
            indent = first[: len(first) - len(first.lstrip())]
            null[name] = indent + "pass" + ("\n" if text.endswith("\n") else "")
        return problem.program(null)

    def render(self, problem: CodeProblem, solution: str) -> str:
        return solution

    # -- solving: holes of unknown length tried at several lengths --

    def solve_with(self, engine, problem: CodeProblem, **kwargs):
        """`refine.solve` at each length of `lengths` for `[MASK]` holes (once if all are fixed);
        the first valid result, else the one with fewest violations. Forward passes and seconds add up;
        model-only validity is that of the first length tried."""
        from dream_agent.batching import run_job

        return run_job(engine.model, self.solve_job(engine, problem, **kwargs))

    def solve_job(self, engine, problem: CodeProblem, **kwargs):
        """`solve_with` as a job (`dream_agent.batching`), so that `solve_many` batches code problems too."""
        from dream_agent.refine import solve_job

        lengths = self.lengths if any(h.length is None for h in problem.holes) else (None,)
        total, best = None, None
        for length in lengths:
            concrete = problem if length is None else problem.with_lengths(length)
            concrete = self._fit(concrete, engine)
            try:
                result = yield from solve_job(engine, self, concrete, **kwargs)
            except TemplateError:
                continue  # longer than the model's context
            if total is None:
                total = result
            else:
                total.nfe += result.nfe
                total.seconds += result.seconds
                total.rounds += result.rounds
                total.history += result.history
            if best is None or len(result.violations) < len(best.violations):
                best = result
            if result.valid:
                break
        if total is None:
            raise TemplateError("the skeleton does not fit the model's context at any hole length")
        total.solution, total.valid, total.violations = best.solution, best.valid, best.violations
        total.problem = problem
        from .result import CodeSolveResult  # the model stack loads only once something is solved

        return CodeSolveResult(**{f.name: getattr(total, f.name) for f in fields(total)})


    def _fit(self, problem: CodeProblem, engine) -> CodeProblem:
        """The problem with a window of fixed code that fits the model's context, if the whole does not."""
        limit = getattr(engine.model, "max_length", None)
        tok = engine.tokenizer
        if limit is None or len(self.encode(problem, tok)) <= limit:
            return problem
        holes = sum(self._length(h) for h in problem.holes)
        middle = sum(len(tok.encode(p, add_special_tokens=False)) for p in problem.pieces[1:-1] if isinstance(p, str))
        room = limit - holes - middle - 2
        window = max(room // 2, 0)
        while window > 0:
            fitted = replace(problem, window=window)
            if len(self.encode(fitted, tok)) <= limit:
                return fitted
            window = int(window * 0.8)
        return problem  # nothing fits: solve raises TemplateError, and this length is skipped


__all__ = ["CodePlanner", "CodeProblem", "CodeTest", "Hole", "Rules", "parse_problem", "parse_skeleton", "parse_tests"]
