"""A node's CPU: cores, a FIFO of work, and per-operation costs from a calibration table.

Without a CPU model a node does its work in zero time (the default). With
one, every datagram that arrives and every timer that fires is a job: it
waits for a free core, the daemon then runs it (at the job's start time),
and the job costs ``base`` plus, for each crypto operation the daemon
counted meanwhile, that operation's cost (``ikesim calibrate`` measures
them on this machine; ``ikesim/data/op_costs.json`` ships a table). The
datagrams the daemon produced leave when the job ends. Jobs are scheduled
callbacks and a deque per node, no SimPy process per packet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

__all__ = ["CpuModel", "default_costs", "load_costs", "DEFAULT_BASE"]

DEFAULT_BASE = 20e-6
"""Seconds of work per job besides crypto (parsing, state machine, bookkeeping)."""


def default_costs() -> dict[str, float]:
    """The shipped calibration table (``ikesim/data/op_costs.json``): seconds per operation name."""
    text = resources.files("ikesim").joinpath("data/op_costs.json").read_text()
    return {k: float(v) for k, v in json.loads(text)["costs"].items()}


def load_costs(path: str | Path) -> dict[str, float]:
    """A calibration table written by ``ikesim calibrate --out FILE``."""
    data = json.loads(Path(path).read_text())
    costs = data.get("costs", data) if isinstance(data, dict) else None
    if not isinstance(costs, dict) or not all(isinstance(v, (int, float)) and v >= 0 for v in costs.values()):
        raise ValueError(f"{path}: not a calibration table (a JSON object of operation name -> seconds)")
    return {str(k): float(v) for k, v in costs.items()}


@dataclass(slots=True)
class CpuModel:
    """*cores* cores; *costs*: seconds per counted crypto operation; *base*: seconds per job."""

    cores: int
    costs: dict[str, float] = field(default_factory=default_costs)
    base: float = DEFAULT_BASE

    def __post_init__(self) -> None:
        if self.cores < 1:
            raise ValueError(f"a CPU needs at least 1 core (got {self.cores})")
        if self.base < 0 or any(v < 0 for v in self.costs.values()):
            raise ValueError("CPU costs must not be negative")

    def service_time(self, before: dict[str, int], after: dict[str, int]) -> float:
        """Seconds of CPU for the operations counted between two meter snapshots."""
        costs = self.costs
        total = self.base
        for op, n in after.items():
            d = n - before.get(op, 0)
            if d:
                total += d * costs.get(op, 0.0)
        return total
