"""Shared by the benchmark scripts: count the SimPy events a run processes."""

from __future__ import annotations

from collections.abc import Callable

import simpy


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
