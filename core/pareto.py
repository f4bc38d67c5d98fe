"""Pareto dominance, fronts and hypervolume over (size, error) points."""

from __future__ import annotations

Point = tuple[float, float]


# ---------------------------------------------------------------- Pareto fronts (minimisation)

def dominates(a: Point, b: Point) -> bool:
    """`a` is no worse than `b` on both objectives and better on one."""
    return a[0] <= b[0] and a[1] <= b[1] and a != b


def pareto_front(points: list[Point]) -> list[int]:
    """Indices of the non-dominated points, in order of the first objective.

    One sort and one sweep: a point survives if its second objective beats every point
    with a smaller first objective and ties the best among points with an equal first.
    Equal points do not dominate each other, so duplicates on the front all survive.
    """
    order = sorted(range(len(points)), key=lambda i: points[i])
    front: list[int] = []
    best_y = float("inf")  # lowest second objective among strictly smaller first objectives
    j = 0
    while j < len(order):
        x = points[order[j]][0]
        k = j
        while k < len(order) and points[order[k]][0] == x:
            k += 1
        group_y = points[order[j]][1]  # sorted, so the group's lowest comes first
        if group_y < best_y:
            front += [i for i in order[j:k] if points[i][1] == group_y]
            best_y = group_y
        j = k
    return front


def hypervolume(points: list[Point], ref: Point) -> float:
    """Area dominated by `points` and bounded by `ref` (2-D, both minimised).

    Points not strictly better than `ref` on both objectives add nothing.
    """
    inside = [p for p in points if p[0] < ref[0] and p[1] < ref[1]]
    front = [inside[i] for i in pareto_front(inside)]
    area = 0.0
    for n, (x, y) in enumerate(front):
        next_x = front[n + 1][0] if n + 1 < len(front) else ref[0]
        area += (next_x - x) * (ref[1] - y)
    return area
