"""A plan's dependency graph: which steps must precede which, so independent ones can run in parallel.

    g = dependency_graph(task, plan)      # networkx.DiGraph over step indices 0..len(plan)-1
    layers(g)                             # [[0, 3], [1], ...]: steps of a layer can run in any order
    graph_json(task, g); to_dot(task, g)  # for --json and --dot

An edge i -> j (i earlier) where step i supplies a precondition of j (the latest step before j
that adds it), or where the two interfere and must keep their order (a threat: one deletes what
the other needs or adds). Steps with no path between them touch disjoint facts in those ways, so
any order of one layer's steps, layer after layer, is a valid plan.
"""

from __future__ import annotations

import json

import networkx as nx

from .domain import Step, Task


def _interferes(a, b) -> bool:
    """Would swapping a (earlier) and b change what happens?"""
    return bool(a.pre & b.dele or a.dele & b.pre or a.add & b.dele or a.dele & b.add
                or a.add & b.neg or a.neg & b.add)


def dependency_graph(task: Task, plan: list[Step]) -> nx.DiGraph:
    g = nx.DiGraph()
    acts = [task.by_step[s] for s in plan]
    for k, s in enumerate(plan):
        g.add_node(k, step=task.show_step(s))
    for j, b in enumerate(acts):
        for p in sorted(b.pre):
            supplier = next((i for i in range(j - 1, -1, -1) if p in acts[i].add), None)
            if supplier is not None:
                if g.has_edge(supplier, j):
                    g.edges[supplier, j]["facts"].append(task.show_fact(p))
                else:
                    g.add_edge(supplier, j, kind="supplies", facts=[task.show_fact(p)])
        for i in range(j):
            if not g.has_edge(i, j) and _interferes(acts[i], b):
                g.add_edge(i, j, kind="threat", facts=[])
    return g


def layers(g: nx.DiGraph) -> list[list[int]]:
    """Steps grouped by their earliest possible time (longest path from a source)."""
    return [sorted(layer) for layer in nx.topological_generations(g)] if g.number_of_nodes() else []


def graph_json(task: Task, g: nx.DiGraph) -> dict:
    return {
        "nodes": [{"id": k, "step": g.nodes[k]["step"]} for k in sorted(g.nodes)],
        "edges": [{"from": i, "to": j, "kind": d["kind"], "facts": d["facts"]} for i, j, d in sorted(g.edges(data=True))],
        "layers": layers(g),
    }


def to_dot(task: Task, g: nx.DiGraph) -> str:
    """Graphviz DOT text (steps numbered from 1, as printed)."""
    lines = ["digraph plan {", "  rankdir=LR;", "  node [shape=box];"]
    for k in sorted(g.nodes):
        lines.append(f"  s{k + 1} [label={json.dumps(f'{k + 1}. ' + g.nodes[k]['step'])}];")
    for i, j, d in sorted(g.edges(data=True)):
        label = ", ".join(d["facts"]) if d["kind"] == "supplies" else "threat"
        style = "" if d["kind"] == "supplies" else ", style=dashed"
        lines.append(f"  s{i + 1} -> s{j + 1} [label={json.dumps(label)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
