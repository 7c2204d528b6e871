"""Random problems of a domain, for training data (never the evaluation files).

    blocksworld(domain, rng, n_blocks=6)     # random towers to random towers, IPC style (goal: on-facts)
    gripper(domain, rng, n_balls=4)          # balls spread over two rooms, a goal room for some of them
    from_problem(task, rng)                  # a user's domain: a perturbed initial state of their own
                                             # problem and a random reachable goal from it

Each returns a `Task` in canonical names; `shuffled(task, rng)` re-declares its objects in a
random order (so canonical names carry no meaning a model could lean on).
"""

from __future__ import annotations

import random

from .domain import Domain, Task


def _towers(blocks: list[str], rng: random.Random) -> list[list[str]]:
    order = blocks[:]
    rng.shuffle(order)
    towers, current = [], []
    for b in order:
        current.append(b)
        if rng.random() < 1 / 3:
            towers.append(current)
            current = []
    if current:
        towers.append(current)
    return towers  # each tower bottom first


def blocksworld(domain: Domain, rng: random.Random, n_blocks: int) -> Task:
    """IPC's 4-operator blocksworld: random initial towers, hand empty; the goal: another random
    configuration's on-facts (as the IPC instances state them)."""
    blocks = [f"o{i + 1}" for i in range(n_blocks)]
    init = {("handempty",)}
    for tower in _towers(blocks, rng):
        init.add(("ontable", tower[0]))
        init.add(("clear", tower[-1]))
        init.update(("on", a, b) for b, a in zip(tower, tower[1:]))
    goal = []
    while not goal:  # a goal of all-on-the-table would state nothing
        goal = [(True, ("on", a, b)) for t in _towers(blocks, rng) for b, a in zip(t, t[1:])]
    rng.shuffle(goal)
    return Task(domain, [(b, "object") for b in blocks], frozenset(init), tuple(goal), {b: b for b in blocks})


def gripper(domain: Domain, rng: random.Random, n_balls: int) -> Task:
    """IPC gripper: two rooms, two grippers, the robot somewhere; move some balls to a room."""
    objects = ["rooma", "roomb", "left", "right"] + [f"ball{i + 1}" for i in range(n_balls)]
    rooms, balls = ["rooma", "roomb"], objects[4:]
    init = {("room", r) for r in rooms} | {("gripper", g) for g in ("left", "right")} | {("ball", b) for b in balls}
    init |= {("free", "left"), ("free", "right")}
    if rng.random() < 0.5:  # IPC's own shape: everything in one room, every ball to the other
        here, there = rng.sample(rooms, 2)
        init |= {("at-robby", here)} | {("at", b, here) for b in balls}
        goal = [(True, ("at", b, there)) for b in balls]
    else:
        init.add(("at-robby", rng.choice(rooms)))
        at = {b: rng.choice(rooms) for b in balls}
        init |= {("at", b, r) for b, r in at.items()}
        moved = [b for b in balls if rng.random() < 0.8] or [balls[0]]
        target = rng.choice(rooms)
        goal = [(True, ("at", b, target if rng.random() < 0.85 else at[b])) for b in moved]
    rng.shuffle(goal)
    task = Task(domain, [(o, "object") for o in objects], frozenset(init), tuple(goal), {o: o for o in objects})
    return shuffled(task, rng)


def random_walk(task: Task, state: frozenset, rng: random.Random, steps: int) -> frozenset:
    for _ in range(steps):
        options = task.applicable(state)
        if not options:
            break
        state = rng.choice(options).apply(state)
    return state


def from_problem(task: Task, rng: random.Random, *, walk: tuple[int, int] = (0, 12),
                 goal_walk: tuple[int, int] = (2, 16), goal_facts: tuple[int, int] = (1, 6)) -> Task:
    """A problem of a user's domain with the user's objects: the initial state perturbed by a random
    walk, the goal a random subset of the changed facts a second walk reaches (so it is reachable)."""
    start = random_walk(task, task.init, rng, rng.randint(*walk))
    for _ in range(20):
        end = random_walk(task, start, rng, rng.randint(*goal_walk))
        static = task.domain.static
        changed = sorted(f for f in end - start if f[0] not in static)
        if changed:
            k = min(len(changed), rng.randint(*goal_facts))
            goal = tuple((True, f) for f in rng.sample(changed, k))
            made = Task(task.domain, list(task.objects), start, goal, dict(task.original))
            return shuffled(made, rng)
    raise ValueError("no action changes this problem's state; nothing to generate")


def shuffled(task: Task, rng: random.Random) -> Task:
    """The same problem with its objects declared in a random order (canonical names follow)."""
    from .domain import canonical_names

    order = task.objects[:]
    rng.shuffle(order)
    names = canonical_names(task.domain, order)  # old canonical -> new canonical
    ren = lambda f: (f[0], *(names[a] for a in f[1:]))  # noqa: E731
    objects = [(names[o], t) for o, t in order]
    original = {names[o]: task.original.get(o, o) for o, _ in order}
    return Task(task.domain, objects, frozenset(ren(f) for f in task.init),
                tuple((p, ren(f)) for p, f in task.goal), original)


def rename_steps(steps, mapping: dict[str, str]):
    return [(s[0], *(mapping[a] for a in s[1:])) for s in steps]
