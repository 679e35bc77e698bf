"""ikesim: a discrete-event simulator for IKEv2 rekeying and mobility.

The public API: ``run`` a scenario (file or model) and get ``Results``;
``load_scenario`` to validate a file (``load_scenarios`` for every variant of one);
``check_paths`` to run scenario files against their expectations; ``FaultRule``
for scripted faults; ``Simulation`` to build one by hand.
Names are imported lazily (PEP 562) so that importing the sans-IO core
(``ikesim.ike``, ``ikesim.wire``, ...) never loads SimPy or pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ikesim._version import __version__

if TYPE_CHECKING:
    from ikesim.check import check_paths
    from ikesim.metrics.results import Results
    from ikesim.runner import run
    from ikesim.scenario.load import load_scenario, load_scenarios
    from ikesim.sim.faults import FaultRule
    from ikesim.sim.simulation import Simulation

__all__ = ["__version__", "FaultRule", "Results", "Simulation", "check_paths", "load_scenario", "load_scenarios", "run"]

_LAZY = {
    "Results": "ikesim.metrics.results",
    "Simulation": "ikesim.sim.simulation",
    "load_scenario": "ikesim.scenario.load",
    "load_scenarios": "ikesim.scenario.load",
    "check_paths": "ikesim.check",
    "FaultRule": "ikesim.sim.faults",
    "run": "ikesim.runner",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ikesim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
