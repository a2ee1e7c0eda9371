"""A layered layout of a project's ``needs`` graph, drawn as server-rendered SVG (no JS needed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 170, 44, 70, 22, 12


@dataclass
class Node:
    name: str
    x: int
    y: int
    valid: bool
    url: str = ""


@dataclass
class Edge:
    source: str  # runs first
    target: str  # needs ``source``
    path: str


def layout(graph: dict[str, list[str]], valid: dict[str, bool], urls: dict[str, str]) -> dict[str, Any]:
    """Nodes in columns by longest chain of needs (upstream left), edges as cubic paths; acyclic input."""
    layer: dict[str, int] = {}

    def depth(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name in layer:
            return layer[name]
        needs = [n for n in graph.get(name, []) if n in graph and n not in seen]
        layer[name] = 1 + max((depth(n, seen | {name}) for n in needs), default=-1)
        return layer[name]

    columns: dict[int, list[str]] = {}
    for name in sorted(graph):
        columns.setdefault(depth(name), []).append(name)
    nodes: dict[str, Node] = {}
    for col, names in columns.items():
        for row, name in enumerate(names):
            nodes[name] = Node(
                name,
                PAD + col * (NODE_W + GAP_X),
                PAD + row * (NODE_H + GAP_Y),
                valid.get(name, True),
                urls.get(name, ""),
            )
    edges = []
    for target, needs in sorted(graph.items()):
        for source in needs:
            if source not in nodes:
                continue
            a, b = nodes[source], nodes[target]
            x1, y1 = a.x + NODE_W, a.y + NODE_H // 2
            x2, y2 = b.x - 4, b.y + NODE_H // 2
            mid = (x1 + x2) // 2
            edges.append(Edge(source, target, f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"))
    width = PAD * 2 + (max(columns, default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    height = PAD * 2 + max((len(c) for c in columns.values()), default=1) * (NODE_H + GAP_Y) - GAP_Y
    return {
        "nodes": list(nodes.values()),
        "edges": edges,
        "width": width,
        "height": height,
        "node_w": NODE_W,
        "node_h": NODE_H,
    }
