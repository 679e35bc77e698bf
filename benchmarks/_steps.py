"""Shared by the benchmark scripts: count the SimPy events a run processes, calibrate, build every table."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import simpy

from ikesim.calibration import measure_op_costs
from ikesim.errors import TraceNotRecorded

TABLES = ("events", "exchanges", "sas", "packets", "rekey_latencies", "collisions", "violations", "nat_paths",
          "processing", "cpu", "summary")
"""Everything ``Results`` offers: the benchmarks build all of it (what the trace level records)."""


def count_steps(env: simpy.Environment) -> Callable[[], int]:
    """Wrap ``env.step`` to count processed events; returns a function giving the count so far."""
    steps = 0
    original = env.step

    def counting_step() -> None:
        nonlocal steps
        steps += 1
        original()

    env.step = counting_step  # type: ignore[method-assign]
    return lambda: steps


def median_costs(calibrations: int = 5) -> dict[str, float]:
    """Per-operation crypto cost: the median over *calibrations* runs of ``measure_op_costs`` (one run varies ±25 %)."""
    runs = [measure_op_costs() for _ in range(calibrations)]
    return {op: statistics.median(r[op] for r in runs) for op in runs[0]}


def build_tables(results: Any) -> int:
    """Build every table the run's trace level recorded; returns how many."""
    built = 0
    for name in TABLES:
        try:
            getattr(results, name)
        except TraceNotRecorded:
            continue
        built += 1
    return built
