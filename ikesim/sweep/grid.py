"""The sweep grid: the cartesian product of the params, × replications as run numbers 0..R-1."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from ikesim.sweep.spec import SweepSpec

__all__ = ["GridRun", "expand_grid"]


@dataclass(frozen=True, slots=True)
class GridRun:
    """One run of the grid: its position, grid point, run number, id, and the param values of its point."""

    index: int
    point: int
    run: int
    run_id: str
    values: tuple[tuple[str, Any], ...]
    row_values: tuple[tuple[str, Any], ...]
    """The values as stored in the table: a param whose values mix types (``0.01``, ``5%``) is stored as text."""


def expand_grid(spec: SweepSpec) -> list[GridRun]:
    """Every run in grid order: params vary outermost-first as listed, replications innermost."""
    points = list(itertools.product(*(p.values for p in spec.params)))
    wp, wr = len(str(max(len(points) - 1, 0))), len(str(spec.replications - 1))
    keys = [p.key for p in spec.params]
    mixed = [len({float if type(v) is int else type(v) for v in p.values}) > 1 for p in spec.params]
    out: list[GridRun] = []
    for i, combo in enumerate(points):
        for r in range(spec.replications):
            out.append(GridRun(index=len(out), point=i, run=r, run_id=f"p{i:0{wp}d}-r{r:0{wr}d}",
                               values=tuple(zip(keys, combo, strict=True)),
                               row_values=tuple((k, str(v) if m else v) for k, v, m in zip(keys, combo, mixed, strict=True))))
    return out
