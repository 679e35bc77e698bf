"""One sweep row per run: grid columns, param values and the run's summary flattened to columns."""

from __future__ import annotations

import json
from typing import Any

from ikesim.sweep.grid import GridRun

__all__ = ["GRID_COLUMNS", "flatten", "make_row"]

GRID_COLUMNS = ("run_id", "point")


def flatten(summary: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict keys joined with "."; lists, empty dicts and dicts with non-str or dotted keys as JSON strings."""
    out: dict[str, Any] = {}
    for k, v in summary.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict) and v and all(isinstance(x, str) and "." not in x for x in v):
            out.update(flatten(v, name + "."))
        elif isinstance(v, dict | list | tuple):
            out[name] = json.dumps(v, sort_keys=True)
        else:
            out[name] = v
    return out


def make_row(run: GridRun, summary: dict[str, Any]) -> dict[str, Any]:
    """The row of *run*: run_id, point, the param values, then the flattened summary (seed, run, figures).

    A summary column whose name equals a param key (e.g. ``duration``) is stored as ``summary.<name>``.
    """
    row: dict[str, Any] = {"run_id": run.run_id, "point": run.point}
    row.update(dict(run.row_values))
    for k, v in flatten(summary).items():
        row[f"summary.{k}" if k in row else k] = v
    return row
