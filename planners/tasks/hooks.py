"""Constraint hooks for the search: applicable actions only, and dead ends seen early.

    hook = PlanHook(task, rules, template, vocab, max_steps)
    logits = hook(step, x, logits)     # disallowed tokens -> -inf
    hook.dead_end(x)                   # (B,) True where the partial plan cannot be completed

Reading a row's plan from step 1: while every token of a step is known, the step is simulated
(grounded STRIPS, `domain.Grounded`). At the first step with a masked token, only the actions
applicable in the simulated state that agree with its known tokens are allowed (no-op only where
the goal already holds), minus what the user's rules rule out. Later steps are only held to the
domain's shapes (an action's arity, its parameter types, no-op padding after a no-op).

Dead end: a known step that is not applicable, a no-op before the goal holds, an action after a
no-op, a return to a state the plan was already in (without user rules), or a goal the relaxed planning graph (delete effects ignored, h_max layers) cannot reach
in the steps left. No planner is called: the model proposes, these only prune.
"""

from __future__ import annotations

import torch

from dream_agent.template import Template

from .domain import Grounded, Task
from .encoding import Vocab, step_words
from .rules import Rules
from .vocab import NONE, NOOP, _word


class PlanHook:
    def __init__(self, task: Task, rules: Rules, template: Template, vocab: Vocab, max_steps: int):
        self.task, self.rules, self.vocab, self.max_steps = task, rules, vocab, max_steps
        self.start, self.width = template.plan_start, template.step_width
        self.arity = task.domain.max_arity
        self.V = len(vocab.ids)
        self.noop, self.none = vocab.ids[NOOP], vocab.ids[NONE]
        self.mask_id = template.mask_token_id
        self.action_id = {a: vocab.ids[_word(a)] for a in task.domain.schemas}
        self.id_action = {i: a for a, i in self.action_id.items()}
        self.object_id = {o: vocab.ids[o] for o, _ in task.objects}
        self.id_object = {i: o for o, i in self.object_id.items()}
        # Each ground action as the token ids of its step.
        self.step_ids: dict[Grounded, tuple[int, ...]] = {
            g: tuple(vocab(step_words(g.step, self.arity))) for g in task.actions}
        self.noop_ids = tuple(vocab(step_words(None, self.arity)))
        # Shape of a step whose state is unknown: per action, the tokens each argument position may hold.
        types = dict(task.objects)
        self.shape: dict[int, list[set[int]]] = {}
        for name, schema in task.domain.schemas.items():
            cols = []
            for j in range(self.arity):
                if j < len(schema.params):
                    pt = schema.params[j][1]
                    cols.append({self.object_id[o] for o in self.object_id if task.domain.subtype(types[o], pt)})
                else:
                    cols.append({self.none})
            self.shape[self.action_id[name]] = cols
        self.any_arg = set(self.object_id.values()) | {self.none}
        self.goal_pos = frozenset(f for p, f in task.goal if p)
        # The most goal facts one action can add: unmet goals / this is a second lower bound on the steps left.
        self.goal_adds = max([len(g.add & self.goal_pos) for g in task.actions] + [1]) or 1
        # Without user rules a plan that revisits a state can be cut short, so no shortest plan does:
        # returning to an earlier state is a dead end. (Anchors or orderings may need a detour.)
        self.no_cycles = not rules
        self._seen: set = set()
        self._memo: dict = {}  # a row's steps -> what _walk read from them (dead_end and the hook ask alike)
        self._app: dict = {}  # state -> applicable ground actions
        self._hmax: dict[frozenset, int] = {}

    # ---- reading a row -------------------------------------------------------------------

    def _steps(self, row: list[int]) -> list[tuple[int, ...]]:
        s, w = self.start, self.width
        return [tuple(row[s + k * w: s + (k + 1) * w]) for k in range(self.max_steps)]

    def _prefix_state(self, steps: list[tuple[int, ...]]):
        key = tuple(steps)
        hit = self._memo.get(key)
        if hit is None:
            if len(self._memo) > 50_000:
                self._memo.clear()
            hit = self._memo[key] = (self._walk(steps), self._seen)
        self._seen = hit[1]
        return hit[0]

    def _applicable(self, state: frozenset):
        out = self._app.get(state)
        if out is None:
            out = self._app[state] = self.task.applicable(state)
        return out

    def _walk(self, steps: list[tuple[int, ...]]):
        """(k, state, done, dead): k = index of the first step with a masked token (or max_steps),
        state after steps before k, the steps done (canonical), dead = the known prefix is broken."""
        state, done, ended = self.task.init, [], False
        seen = {state}
        for k, ids in enumerate(steps):
            if self.mask_id in ids:
                self._seen = seen
                return k, state, done, ended, False
            if ids[0] == self.noop:
                if not ended and not self.task.satisfied(state):
                    return k, state, done, ended, True
                if any(i != self.none for i in ids[1:]):
                    return k, state, done, ended, True
                ended = True
                continue
            if ended:
                return k, state, done, ended, True
            g = self._ground(ids)
            if g is None or not g.applicable(state) or not self.rules.allows(g.step, done):
                return k, state, done, ended, True
            state = g.apply(state)
            if self.no_cycles and state in seen:
                return k, state, done, ended, True
            seen.add(state)
            done = done + [g.step]
        last_ok = self.rules.last is None or (done and done[-1] == self.rules.last)
        return len(steps), state, done, ended, not (self.task.satisfied(state) and last_ok)

    def _ground(self, ids: tuple[int, ...]) -> Grounded | None:
        name = self.id_action.get(ids[0])
        if name is None:
            return None
        n = len(self.task.domain.schemas[name].params)
        args = [self.id_object.get(i) for i in ids[1:1 + n]]
        if any(a is None for a in args) or any(i != self.none for i in ids[1 + n:]):
            return None
        return self.task.by_step.get((name, *args))

    # ---- relaxed reachability ----------------------------------------------------------------

    def h_max(self, state: frozenset) -> int | None:
        """A lower bound on the steps to the goal: parallel relaxed layers until the positive goals hold
        (delete effects ignored), or the unmet goals over the most one action adds; None: unreachable."""
        if state in self._hmax:
            return self._hmax[state]
        reached, layer, actions = set(state), 0, self.task.actions
        unmet = len(self.goal_pos - state)
        while not self.goal_pos <= reached:
            new = set()
            for g in actions:
                if g.pre <= reached:
                    new |= g.add - reached
            if not new:
                self._hmax[state] = None
                return None
            reached |= new
            layer += 1
        layer = max(layer, -(-unmet // self.goal_adds))
        self._hmax[state] = layer
        return layer

    def dead_end(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], dtype=torch.bool)
        for b, row in enumerate(x.tolist()):
            steps = self._steps(row)
            k, state, done, ended, dead = self._prefix_state(steps)
            acts = [j for j, ids in enumerate(steps) if ids[0] not in (self.noop, self.mask_id)]
            noops = [j for j, ids in enumerate(steps) if ids[0] == self.noop]
            if dead or (acts and noops and min(noops) < max(acts)):  # an action after the no-op end
                out[b] = True
            elif not ended and k < self.max_steps:
                h = self.h_max(state)
                if h is None or h > self.max_steps - k or not self._later_steps_reachable(steps, k, state):
                    out[b] = True
        return out

    def _later_steps_reachable(self, steps, k, state) -> bool:
        """Every fully known later step is a ground action whose preconditions the relaxed graph
        reaches in the steps between (a known no-op: the goal, likewise)."""
        later = [(j, ids) for j, ids in enumerate(steps) if j > k and self.mask_id not in ids]
        if not later:
            return True
        depth = self._relaxed_depths(state)
        for j, ids in later:
            if ids[0] == self.noop:
                need = self.goal_pos
            else:
                g = self._ground(ids)
                if g is None:
                    return False
                need = g.pre
            if any(depth.get(f, 10**6) > j - k for f in need):
                return False
        return True

    def _relaxed_depths(self, state: frozenset) -> dict:
        """The relaxed layer at which each fact is first reached from `state` (cached per state)."""
        key = ("depths", state)
        if key in self._hmax:
            return self._hmax[key]
        depth = {f: 0 for f in state}
        layer = 0
        while True:
            layer += 1
            new = {f for g in self.task.actions if g.pre <= depth.keys() for f in g.add if f not in depth}
            if not new:
                break
            for f in new:
                depth[f] = layer
        self._hmax[key] = depth
        return depth

    # ---- the logits hook --------------------------------------------------------------------------

    def allowed(self, row: list[int]) -> list[tuple[int, set[int]]]:
        """(position, allowed token ids) for each masked plan position of a row."""
        steps = self._steps(row)
        k, state, done, ended, dead = self._prefix_state(steps)
        out = []
        if dead or k >= self.max_steps:
            return out
        # A known action later on means the plan has not ended before it; a known no-op, that it has after it.
        last_action = max((j for j, ids in enumerate(steps) if ids[0] not in (self.noop, self.mask_id)), default=-1)
        first_noop = min((j for j, ids in enumerate(steps) if ids[0] == self.noop), default=self.max_steps)
        # Step k: applicable actions consistent with its known tokens.
        ids = steps[k]
        cands = []
        if not ended:
            seen = self._seen
            for g in self._applicable(state):
                if self.no_cycles and g.apply(state) in seen:
                    continue
                if self.rules.allows(g.step, done):
                    if k == self.max_steps - 1 and self.rules.last is not None and g.step != self.rules.last:
                        continue
                    cands.append(self.step_ids[g])
        ok_noop = (ended or self.task.satisfied(state) and (self.rules.last is None or (done and done[-1] == self.rules.last)))
        if ok_noop and last_action <= k:
            cands.append(self.noop_ids)
        cands = [c for c in cands if all(t == self.mask_id or t == c[j] for j, t in enumerate(ids))]
        base = self.start + k * self.width
        for j, t in enumerate(ids):
            if t == self.mask_id:
                out.append((base + j, {c[j] for c in cands}))
        # Later steps: shapes only (an action and arguments that agree with each other).
        for k2 in range(k + 1, self.max_steps):
            ids = steps[k2]
            if self.mask_id not in ids:
                continue
            base = self.start + k2 * self.width
            shapes = [] if ids[0] not in (self.mask_id, self.noop) else [(self.noop, [{self.none}] * self.arity)]
            if ids[0] == self.mask_id and last_action > k2:
                shapes = []  # a known action comes later: this step is no no-op
            if first_noop >= k2:  # after a no-op only no-ops
                shapes += [(a, cols) for a, cols in self.shape.items() if ids[0] in (self.mask_id, a)]
            shapes = [(a, cols) for a, cols in shapes
                      if all(t == self.mask_id or t in cols[j - 1] for j, t in enumerate(ids) if j)]
            if ids[0] == self.mask_id:
                out.append((base, {a for a, _ in shapes}))
            for j in range(1, self.width):
                if ids[j] == self.mask_id:
                    out.append((base + j, set().union(*(cols[j - 1] for _, cols in shapes)) if shapes else set()))
        return out

    def __call__(self, step, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        keep = torch.zeros_like(logits, dtype=torch.bool)  # (B, N, V)
        touched = torch.zeros(logits.shape[:2], dtype=torch.bool)
        for b, row in enumerate(x.tolist()):
            for pos, ids in self.allowed(row):
                touched[b, pos] = True
                if ids:
                    keep[b, pos, list(ids)] = True
        keep |= ~touched.to(logits.device).unsqueeze(-1)
        return logits.masked_fill(~keep, torch.finfo(logits.dtype).min)
