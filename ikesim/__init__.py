"""ikesim: a discrete-event simulator for IKEv2 rekeying and mobility.

The public API: ``run`` a scenario (file or model) and get ``Results``;
``load_scenario`` to validate a file; ``Simulation`` to build one by hand.
"""

from ikesim._version import __version__
from ikesim.metrics.results import Results
from ikesim.runner import run
from ikesim.scenario.load import load_scenario
from ikesim.sim.simulation import Simulation

__all__ = ["__version__", "Results", "Simulation", "load_scenario", "run"]
