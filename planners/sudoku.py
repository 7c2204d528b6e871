"""Sudoku (4x4, 6x6, 9x9): clues are anchors, blank cells are one-token slots the model fills jointly.

    planner = SudokuPlanner()
    tok = char_tokenizer(planner.alphabet)
    problem = planner.parse("1000\\n0002\\n4003\\n0000")
    template = planner.encode(problem, tok)       # "4x4\\n1" [r1c2] [r1c3] [r1c4] "\\n" ...
    planner.check(problem, "1234341241232341")    # [] means solved

A decoded template reads as the grid itself: the header "4x4\\n", then each row's cells and "\\n".
The backtracking solver at the bottom only generates training puzzles; solving is the model's job,
so nothing in encode/decode/check/constraints calls it.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from dream_agent.errors import ProblemError
from dream_agent.template import UNKNOWN_MASK, Anchor, Slot, Template
from dream_agent.validation import Violation

from .base import Constraints, Example, Planner, dream_row, read_text_file, require_text

if TYPE_CHECKING:  # torch loads with the model: parsing a puzzle does not need it
    import torch

BOX_SHAPES = {4: (2, 2), 6: (2, 3), 9: (3, 3)}  # (rows, cols) of a box; 6x6 boxes are 2 high, 3 wide
SIZE_OF_COUNT = {16: 4, 36: 6, 81: 9}
CLUE_RANGES = {4: (4, 12), 6: (10, 24), 9: (22, 45)}  # target clues, hard to easy; 4x4 as Dream's sets
SIZE_WEIGHTS = {4: 1.0, 6: 1.0, 9: 3.0}  # generated mix favours 9x9, the size people care about
RULE_CHARS = set("-+=| \t")  # a line made only of these is a box rule between bands
NUMBER_WORDS = ["", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


# ---- geometry: units and peers, computed once per size -------------------------------------


@dataclass(frozen=True, eq=False)  # one instance a shape (cached below), so identity is equality
class Geometry:
    size: int
    box_rows: int
    box_cols: int
    rows: tuple[tuple[int, ...], ...]
    cols: tuple[tuple[int, ...], ...]
    boxes: tuple[tuple[int, ...], ...]
    row_of: tuple[int, ...]
    col_of: tuple[int, ...]
    box_of: tuple[int, ...]
    peers: tuple[tuple[int, ...], ...]  # the cells sharing a row, column or box, itself excluded
    units: tuple[tuple[str, tuple[int, ...]], ...]  # ("row 1", cells), ..., ("column 1", ...), ("box 1", ...)

    def units_of(self, cell: int) -> tuple[tuple[int, ...], ...]:
        return self.rows[self.row_of[cell]], self.cols[self.col_of[cell]], self.boxes[self.box_of[cell]]


@lru_cache(maxsize=None)
def geometry(size: int, box_rows: int, box_cols: int) -> Geometry:
    n = size
    row_of = tuple(i // n for i in range(n * n))
    col_of = tuple(i % n for i in range(n * n))
    box_of = tuple((r // box_rows) * (n // box_cols) + c // box_cols for r, c in zip(row_of, col_of))
    rows = tuple(tuple(i for i in range(n * n) if row_of[i] == k) for k in range(n))
    cols = tuple(tuple(i for i in range(n * n) if col_of[i] == k) for k in range(n))
    boxes = tuple(tuple(i for i in range(n * n) if box_of[i] == k) for k in range(n))
    peers = tuple(
        tuple(j for j in range(n * n) if j != i and (row_of[j] == row_of[i] or col_of[j] == col_of[i] or box_of[j] == box_of[i]))
        for i in range(n * n)
    )
    units = tuple((f"{kind} {k + 1}", u) for kind, group in (("row", rows), ("column", cols), ("box", boxes)) for k, u in enumerate(group))
    return Geometry(n, box_rows, box_cols, rows, cols, boxes, row_of, col_of, box_of, peers, units)


@lru_cache(maxsize=None)
def peer_matrix(geo: Geometry) -> torch.Tensor:
    import torch

    m = torch.zeros(geo.size**2, geo.size**2)  # [C, C] 1.0 where two cells are peers
    for i, ps in enumerate(geo.peers):
        m[i, list(ps)] = 1.0
    return m


@lru_cache(maxsize=None)
def unit_matrix(geo: Geometry) -> torch.Tensor:
    import torch

    m = torch.zeros(len(geo.units), geo.size**2)  # [U, C] 1.0 where a unit (row, column, box) holds a cell
    for u, (_, cells) in enumerate(geo.units):
        m[u, list(cells)] = 1.0
    return m


def cell_name(cell: int, size: int) -> str:
    return f"r{cell // size + 1}c{cell % size + 1}"


# ---- the problem ---------------------------------------------------------------------------


class SudokuProblem(BaseModel):
    """An n x n puzzle; `cells` row-major, 0 for a blank."""

    model_config = ConfigDict(frozen=True)

    size: Literal[4, 6, 9]
    box_rows: int
    box_cols: int
    cells: list[int]

    @model_validator(mode="before")
    @classmethod
    def _default_boxes(cls, data):
        if isinstance(data, dict) and data.get("size") in BOX_SHAPES:
            br, bc = BOX_SHAPES[data["size"]]
            data = {"box_rows": br, "box_cols": bc, **data}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> SudokuProblem:
        n = self.size
        if self.box_rows * self.box_cols != n:
            raise ValueError(f"boxes of {self.box_rows}x{self.box_cols} do not tile a {n}x{n} grid")
        if len(self.cells) != n * n:
            raise ValueError(f"a {n}x{n} puzzle has {n * n} cells, got {len(self.cells)}")
        if any(not 0 <= d <= n for d in self.cells):
            raise ValueError(f"cells of a {n}x{n} puzzle hold 0 (blank) or 1-{n}")
        return self

    @property
    def geometry(self) -> Geometry:
        return geometry(self.size, self.box_rows, self.box_cols)

    def rows(self) -> tuple[tuple[int, ...], ...]:
        return self.geometry.rows

    def cols(self) -> tuple[tuple[int, ...], ...]:
        return self.geometry.cols

    def boxes(self) -> tuple[tuple[int, ...], ...]:
        return self.geometry.boxes

    def peers(self, cell: int) -> tuple[int, ...]:
        return self.geometry.peers[cell]

    @property
    def givens(self) -> dict[int, int]:
        return {i: d for i, d in enumerate(self.cells) if d}

    def candidates(self, grid: list[int] | None = None) -> list[set[int]]:
        """For each blank cell of `grid` (default: the clues) the digits no peer holds; filled cells get set()."""
        grid = self.cells if grid is None else grid
        digits = set(range(1, self.size + 1))
        return [set() if grid[i] else digits - {grid[j] for j in ps} for i, ps in enumerate(self.geometry.peers)]

    def __str__(self) -> str:
        return "".join(str(d) if d else "." for d in self.cells)


@dataclass(frozen=True)
class DuplicateViolation(Violation):
    """A digit twice in one unit; `unit` and `digit` let `related_slots` find the cells to re-mask with it."""

    unit: tuple[int, ...] = ()  # the cells of the row, column or box with the duplicate
    digit: int = 0


# ---- parsing -------------------------------------------------------------------------------


def parse_grid(text: str) -> SudokuProblem:
    """A grid from one line of 16/36/81 cells or from several lines; '.' or '0' for blanks."""
    lines = require_text(text, "a sudoku puzzle").strip().splitlines()
    if not lines:
        raise ProblemError("the puzzle is empty: give 16, 36 or 81 cells, digits with '.' or '0' for blanks")
    header = re.fullmatch(r"\s*(\d)x(\d)\s*", lines[0])  # a decoded template starts with "9x9"
    if header:
        lines = lines[1:]
    cells: list[int] = []
    for lineno, line in enumerate(lines, 1 + bool(header)):
        if set(line) <= RULE_CHARS:
            continue  # blank line or a rule such as "------+-------+------"
        for col, ch in enumerate(line, 1):
            if ch == "|" or ch.isspace():
                continue
            if ch in "0.":
                cells.append(0)
            elif ch in "123456789":
                cells.append(int(ch))
            else:
                where = f"line {lineno}, column {col}" if len(lines) > 1 else f"position {col}"
                raise ProblemError(f"unexpected character {ch!r} at {where}; use digits, and '.' or '0' for blanks")
    size = SIZE_OF_COUNT.get(len(cells))
    if size is None:
        raise ProblemError(f"expected 16, 36 or 81 cells, got {len(cells)}")
    if header and not header.group(1) == header.group(2) == str(size):
        raise ProblemError(f"the header says {header.group(1)}x{header.group(2)} but the grid has {len(cells)} cells")
    for i, d in enumerate(cells):
        if d > size:
            raise ProblemError(f"{cell_name(i, size)} holds {d}, but a {size}x{size} puzzle uses digits 1-{size}")
    problem = SudokuProblem(size=size, cells=cells)
    for _, unit in problem.geometry.units:
        seen: dict[int, int] = {}
        for i in unit:
            if d := cells[i]:
                if d in seen:
                    raise ProblemError(f"clues conflict: {cell_name(seen[d], size)} and {cell_name(i, size)} both hold {d}")
                seen[d] = i
    return problem


# ---- the planner ---------------------------------------------------------------------------


class SudokuPlanner(Planner):
    name = "sudoku"
    alphabet = "123456789x\n"
    description = "Sudoku 4x4, 6x6 and 9x9: clues are anchors, each blank cell one masked token"

    def __init__(self, sizes: tuple[int, ...] = (4, 6, 9), weights: dict[int, float] | None = None):
        bad = [s for s in sizes if s not in BOX_SHAPES]
        if bad or not sizes:
            raise ValueError(f"sudoku sizes must be among 4, 6, 9; got {sizes}")
        self.sizes = tuple(sizes)
        self.weights = {**SIZE_WEIGHTS, **(weights or {})}

    # -- text in and out

    def parse(self, text: str) -> SudokuProblem:
        if require_text(text, "a sudoku puzzle").lstrip().startswith("{"):
            text = dream_row(text.strip())["input"]  # a row of Dream's jsonl sets
        return parse_grid(text)

    def problem_text(self, problem: SudokuProblem) -> str:
        return str(problem)

    def render(self, problem: SudokuProblem, solution: str) -> str:
        """The grid with box rules; blanks (or an unreadable solution) show as '.'."""
        n, geo = problem.size, problem.geometry
        sol = "".join(solution.split())
        chars = list(sol) if len(sol) == n * n else [str(d) if d else "." for d in problem.cells]
        chars = [ch if ch in "123456789" else "." for ch in chars]
        lines = []
        for r, row in enumerate(geo.rows):
            if r and r % geo.box_rows == 0:
                lines.append("".join("+" if ch == "|" else "-" for ch in lines[-1]))
            stacks = [" ".join(chars[i] for i in row[k : k + geo.box_cols]) for k in range(0, n, geo.box_cols)]
            lines.append(" | ".join(stacks))
        return "\n".join(lines)

    def load_dataset(self, path: str) -> list[Example]:
        """One puzzle a line (.txt; blank lines and # comments skipped) or Dream's jsonl (input/output)."""
        p = Path(path)
        out: list[Example] = []
        for lineno, line in enumerate(read_text_file(path).splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                if p.suffix == ".jsonl":
                    row = dream_row(line)
                    problem = parse_grid(row["input"])
                    solution = None if row.get("output") is None else "".join(str(row["output"]).split())
                    if solution is not None and (bad := self.check(problem, solution)):
                        raise ProblemError(f"the output is not a solution: {bad[0].message}")
                    out.append(Example(problem, solution))
                else:
                    out.append(Example(parse_grid(line)))
            except ProblemError as e:
                raise ProblemError(f"{path}, line {lineno}: {e}") from None
        return out

    # -- template

    def encode(self, problem: SudokuProblem, tokenizer, solution: str | None = None) -> Template:
        n = problem.size
        segments: list[Anchor | Slot] = []
        text = f"{n}x{n}\n"  # anchor text not yet emitted; consecutive clues merge into one Anchor
        digits = "".join(str(d) for d in range(1, n + 1))
        for i, d in enumerate(problem.cells):
            if d:
                text += str(d)
            else:
                if text:
                    segments.append(Anchor(text))
                    text = ""
                segments.append(Slot(cell_name(i, n), 1, allowed=digits))
            if i % n == n - 1:
                text += "\n"
        segments.append(Anchor(text))
        template = Template(segments, tokenizer)
        if solution is None:
            return template
        sol = "".join(solution.split())
        if len(sol) != n * n or any(ch not in digits for ch in sol):
            raise ProblemError(f"a {n}x{n} solution is {n * n} digits 1-{n}, got {solution!r}")
        if changed := [cell_name(i, n) for i, d in problem.givens.items() if sol[i] != str(d)]:
            raise ProblemError(f"the solution changes clues at {', '.join(changed)}")
        ids = template.input_ids.clone()
        digit_ids = _digit_ids(tokenizer, n)
        for pos, cell in self.slot_cells(problem, template).items():
            ids[pos] = digit_ids[int(sol[cell]) - 1]
        return template.with_values(ids, remask=[])

    def slot_cells(self, problem: SudokuProblem, template: Template) -> dict[int, int]:
        """Template position -> cell index (row-major) for every blank cell's slot."""
        out = {}
        for name, positions in template.slots.items():
            r, c = map(int, re.fullmatch(r"r(\d+)c(\d+)", name).groups())
            out[positions[0]] = (r - 1) * problem.size + c - 1
        return out

    def decode(self, problem: SudokuProblem, template: Template, ids) -> str:
        values = template.read(ids)
        n = problem.size
        out = []
        for i, d in enumerate(problem.cells):
            if d:
                out.append(str(d))
            else:
                ch = str(values[cell_name(i, n)]).strip()
                out.append(ch if len(ch) == 1 and ch in "123456789" else "0")  # check() reports the '0'
        return "".join(out)

    # -- validation

    def check(self, problem: SudokuProblem, solution: str) -> list[Violation]:
        n, geo = problem.size, problem.geometry
        blanks = [cell_name(i, n) for i, d in enumerate(problem.cells) if not d]
        if not isinstance(solution, str):  # a validator answers with violations, whatever it is given
            return [Violation(f"the solution is {type(solution).__name__}, not text", tuple(blanks))]
        sol = "".join(solution.split())
        if len(sol) != n * n:
            return [Violation(f"the solution has {len(sol)} cells; a {n}x{n} grid has {n * n}", tuple(blanks))]
        out: list[Violation] = []
        grid = list(problem.cells)  # clues from the problem, the rest from the solution
        for i, ch in enumerate(sol):
            name = cell_name(i, n)
            if problem.cells[i]:
                if ch != str(problem.cells[i]):
                    out.append(Violation(f"{name} is the clue {problem.cells[i]}, but the solution has {ch!r}"))
            elif ch in "123456789"[:n]:
                grid[i] = int(ch)
            elif ch in "0.":
                out.append(Violation(f"{name} is empty", (name,)))
            else:
                out.append(Violation(f"{name} holds {ch!r}, not a digit 1-{n}", (name,)))
        for unit_name, unit in geo.units:
            by_digit: dict[int, list[int]] = {}
            for i in unit:
                if grid[i]:
                    by_digit.setdefault(grid[i], []).append(i)
            for d, cells in sorted(by_digit.items()):
                if len(cells) > 1:
                    names = ", ".join(cell_name(i, n) for i in cells)
                    slots = tuple(cell_name(i, n) for i in cells if not problem.cells[i])  # clues cannot be re-masked
                    out.append(DuplicateViolation(f"{unit_name} has {NUMBER_WORDS[len(cells)]} {d}s ({names})", slots, unit=unit, digit=d))
        return out

    def related_slots(self, problem: SudokuProblem, template: Template, violation: Violation) -> list[str]:
        """The violation's slots, plus the filled blank cells in their other units that hold the
        duplicated digit or a digit the unit lacks: the cells a fix would have to move.

        Values come from `template` (pass the filled one, `template.with_values(ids)`); masked
        positions count as unknown.
        """
        slots = list(violation.slots)
        if not isinstance(violation, DuplicateViolation) or template.tokenizer is None:
            return slots
        n, geo = problem.size, problem.geometry
        grid = list(problem.cells)
        read = template.read(template.input_ids)
        for pos, cell in self.slot_cells(problem, template).items():
            ch = str(read[cell_name(cell, n)]).strip()
            if not template.masked[pos] and len(ch) == 1 and ch in "123456789":
                grid[cell] = int(ch)
        wanted = {violation.digit} | (set(range(1, n + 1)) - {grid[i] for i in violation.unit})
        cells = [i for i in violation.unit if cell_name(i, n) in violation.slots]
        for i in cells:
            for unit in geo.units_of(i):
                if unit == violation.unit:
                    continue
                for j in unit:
                    name = cell_name(j, n)
                    if j != i and not problem.cells[j] and grid[j] in wanted and name not in slots:
                        slots.append(name)
        return slots

    # -- constraint while denoising

    def constraints(self, problem: SudokuProblem, template: Template, tokenizer) -> Constraints:
        """A logits hook that propagates the grid's constraints into the model's choices.

        At each still-masked cell it forbids the digits a peer already holds (naked singles
        follow: a cell with one digit left has probability 1), and where a unit has only one
        cell left that can take some digit, that cell may take only that digit (hidden
        singles). The model still picks every digit; this only prunes. A cell with no digit
        left is a dead end the hook leaves alone, for the validator and refinement to see;
        `dead_end(x)` reports such fills (and units that can no longer be completed) early.
        """
        import torch
        import torch.nn.functional as F

        n = problem.size
        cells_of = self.slot_cells(problem, template)
        if not cells_of:
            return Constraints()
        digit_ids = torch.tensor(_digit_ids(tokenizer, n))  # [n]
        lut = torch.zeros(int(digit_ids.max()) + 1, dtype=torch.long)  # token id -> digit, 0 for anything else
        lut[digit_ids] = torch.arange(1, n + 1)
        cell = torch.tensor(list(cells_of.values()))  # [S]
        clues = torch.zeros(n * n, n)  # [C, n] one-hot of the clues
        for i, d in problem.givens.items():
            clues[i, d - 1] = 1.0
        units = unit_matrix(problem.geometry)  # [U, C]
        base = {
            "pos": torch.tensor(list(cells_of)),  # [S] template positions of the slots
            "cell": cell,
            "peers": peer_matrix(problem.geometry)[cell],  # [S, C]
            "units": units[:, cell],  # [U, S] which slots each unit holds
            "clues": clues,
            "unit_clues": units @ clues,  # [U, n] digits each unit holds as clues
            "lut": lut,
            "digit_ids": digit_ids,
        }
        mask_id = tokenizer.mask_token_id
        length = len(template)
        on_device: dict[torch.device, dict[str, torch.Tensor]] = {}

        last: list = []  # [x, result] of the latest call: the search asks dead_end and then the hook of one x

        def propagate(x: torch.Tensor):
            """(slot positions in x, allowed digits [B, S, n], masked [B, S], dead [B])."""
            if last and last[0].shape == x.shape and last[0].device == x.device and torch.equal(last[0], x):
                return last[1]
            last[:] = [x.clone(), _propagate(x)]
            return last[1]

        def _propagate(x: torch.Tensor):
            t = on_device.get(x.device)
            if t is None:
                t = on_device[x.device] = {k: v.to(x.device) for k, v in base.items()}
            offset = x.shape[1] - length  # the template is the tail of x (after any prompt)
            if offset < 0:
                raise ValueError(f"x has {x.shape[1]} positions, fewer than the template's {length}")
            pos = t["pos"] + offset
            xs = x[:, pos]  # [B, S]
            vals = t["lut"][xs.clamp(0, len(t["lut"]) - 1)] * (xs < len(t["lut"]))  # [B, S] digit, 0 if none
            placed = F.one_hot(vals, n + 1)[..., 1:].to(t["clues"].dtype)  # [B, S, n]
            seen = t["clues"].expand(x.shape[0], -1, -1).clone()  # [B, C, n]
            seen[:, t["cell"]] = placed
            banned = torch.matmul(t["peers"], seen) > 0  # [B, S, n] digit held by a peer
            masked = (xs == mask_id) | (xs == UNKNOWN_MASK)  # [B, S]
            cand = ~banned & masked[..., None]  # [B, S, n] digits a masked cell may still take

            # Hidden singles: digit d missing from unit u, and only one masked cell of u can take it.
            holds = t["unit_clues"] + torch.matmul(t["units"], placed)  # [B, U, n]
            room = torch.matmul(t["units"], cand.to(placed.dtype))  # [B, U, n] cells of u that can take d
            hidden = (room == 1) & (holds == 0)  # [B, U, n]
            forced = (torch.matmul(t["units"].T, hidden.to(placed.dtype)) > 0) & cand  # [B, S, n]
            allowed = torch.where(forced.any(-1, keepdim=True), forced, cand)

            dead = (
                (masked & ~cand.any(-1)).any(-1)  # a blank no digit fits
                | ((room == 0) & (holds == 0)).any(-1).any(-1)  # a unit lacks a digit no blank can take
                | (holds > 1).any(-1).any(-1)  # a unit holds a digit twice
                | (forced.sum(-1) > 1).any(-1)  # a blank forced to two digits at once
            )
            return pos, allowed, masked, dead

        def hook(step, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
            pos, allowed, masked, _ = propagate(x)
            ban = ~allowed & (masked & allowed.any(-1))[..., None]  # a cell with no candidate is left alone
            idx = (slice(None), pos[:, None], base["digit_ids"].to(x.device)[None, :])
            logits[idx] = logits[idx].masked_fill(ban, torch.finfo(logits.dtype).min)  # in place: no copy of [B, N, V]
            return logits

        return Constraints(logits_hook=hook, dead_end=lambda x: propagate(x)[3])

    # -- training data

    def examples(self, n: int, rng: random.Random, sizes: tuple[int, ...] | None = None) -> list[Example]:
        """`n` generated puzzles with unique solutions, sizes mixed by `self.weights`."""
        sizes = tuple(sizes or self.sizes)
        if any(s not in BOX_SHAPES for s in sizes):
            raise ValueError(f"sudoku sizes must be among 4, 6, 9; got {sizes}")
        out = []
        for size in rng.choices(sizes, [self.weights[s] for s in sizes], k=n):
            cells, solution = generate(size, rng)
            out.append(Example(SudokuProblem(size=size, cells=cells), "".join(map(str, solution))))
        return out


def _digit_ids(tokenizer, n: int) -> list[int]:
    ids = [tokenizer.encode(str(d), add_special_tokens=False) for d in range(1, n + 1)]
    if any(len(i) != 1 for i in ids):
        raise ValueError("the tokenizer must have a single token for each digit 1-9")
    return [i[0] for i in ids]


# ---- generator machinery (training data only; never used to solve) -------------------------


@lru_cache(maxsize=None)
def _bit_tables(n: int) -> tuple[int, tuple[int, ...], tuple[tuple[int, ...], ...]]:
    """Digit d is bit d. Returns the full mask, popcount by mask and the digits of each mask."""
    full = sum(1 << d for d in range(1, n + 1))
    digits = tuple(tuple(d for d in range(1, n + 1) if m >> d & 1) for m in range(full + 1))
    return full, tuple(len(ds) for ds in digits), digits


def solutions(geo: Geometry, grid: list[int], limit: int = 2, rng: random.Random | None = None, exclude: tuple[int, int] | None = None) -> list[list[int]]:
    """Up to `limit` solutions by backtracking on the most constrained cell. `rng` shuffles the
    digit order (random grids); `exclude=(cell, digit)` asks only for solutions where cell != digit."""
    full, pop, digits_of = _bit_tables(geo.size)
    R, C, B = geo.row_of, geo.col_of, geo.box_of
    rm, cm, bm = [0] * geo.size, [0] * geo.size, [0] * geo.size
    g = list(grid)
    empties = []
    for i, d in enumerate(g):
        if d:
            rm[R[i]] |= 1 << d
            cm[C[i]] |= 1 << d
            bm[B[i]] |= 1 << d
        else:
            empties.append(i)
    found: list[list[int]] = []

    def rec(k: int) -> bool:
        if k == len(empties):
            found.append(g[:])
            return len(found) >= limit
        best, best_m, best_c = k, 0, 99
        for j in range(k, len(empties)):
            i = empties[j]
            m = full & ~(rm[R[i]] | cm[C[i]] | bm[B[i]])
            c = pop[m]
            if c < best_c:
                best, best_m, best_c = j, m, c
                if c <= 1:
                    break
        if best_c == 0:
            return False
        empties[k], empties[best] = empties[best], empties[k]
        i = empties[k]
        r, c, b = R[i], C[i], B[i]
        ds = digits_of[best_m]
        if rng is not None:
            ds = rng.sample(ds, len(ds))
        for d in ds:
            bit = 1 << d
            rm[r] |= bit
            cm[c] |= bit
            bm[b] |= bit
            g[i] = d
            if rec(k + 1):
                return True
            rm[r] ^= bit
            cm[c] ^= bit
            bm[b] ^= bit
        g[i] = 0
        return False

    if exclude is None:
        rec(0)
    elif exclude[0] in empties:
        # branch on the excluded cell first, over its other digits: where a second solution must differ
        i, j = exclude[0], empties.index(exclude[0])
        empties[0], empties[j] = empties[j], empties[0]
        m = full & ~(rm[R[i]] | cm[C[i]] | bm[B[i]]) & ~(1 << exclude[1])
        for d in digits_of[m]:
            bit = 1 << d
            rm[R[i]] |= bit
            cm[C[i]] |= bit
            bm[B[i]] |= bit
            g[i] = d
            if rec(1):
                break
            rm[R[i]] ^= bit
            cm[C[i]] ^= bit
            bm[B[i]] ^= bit
    return found


def _forced(geo: Geometry, grid: list[int], cell: int, digit: int, full: int, masks) -> bool:
    """True when the clues alone force `digit` into blank `cell` (naked or hidden single)."""
    rm, cm, bm = masks
    R, C, B = geo.row_of, geo.col_of, geo.box_of
    if full & ~(rm[R[cell]] | cm[C[cell]] | bm[B[cell]]) == 1 << digit:
        return True
    bit = 1 << digit
    for unit in geo.units_of(cell):
        if all(j == cell or grid[j] or (rm[R[j]] | cm[C[j]] | bm[B[j]]) & bit for j in unit):
            return True
    return False


def generate(size: int, rng: random.Random, clues: int | None = None) -> tuple[list[int], list[int]]:
    """A puzzle with a unique solution and that solution. Clues are removed in random order while
    the solution stays unique, down to `clues` (default: drawn from CLUE_RANGES) or until no clue
    can go; one pass, so a low target ends at a minimal puzzle a little above it."""
    geo = geometry(size, *BOX_SHAPES[size])
    full, _, _ = _bit_tables(size)
    solution = solutions(geo, [0] * size * size, limit=1, rng=rng)[0]
    target = rng.randint(*CLUE_RANGES[size]) if clues is None else clues
    grid = list(solution)
    rm, cm, bm = [0] * size, [0] * size, [0] * size
    for i, d in enumerate(grid):
        rm[geo.row_of[i]] |= 1 << d
        cm[geo.col_of[i]] |= 1 << d
        bm[geo.box_of[i]] |= 1 << d
    left = size * size
    for i in rng.sample(range(size * size), size * size):
        if left <= target:
            break
        d, bit = grid[i], 1 << grid[i]
        grid[i] = 0
        rm[geo.row_of[i]] ^= bit
        cm[geo.col_of[i]] ^= bit
        bm[geo.box_of[i]] ^= bit
        if _forced(geo, grid, i, d, full, (rm, cm, bm)) or not solutions(geo, grid, limit=1, exclude=(i, d)):
            left -= 1
        else:  # another solution differs here: the clue stays
            grid[i] = d
            rm[geo.row_of[i]] |= bit
            cm[geo.col_of[i]] |= bit
            bm[geo.box_of[i]] |= bit
    return grid, solution
