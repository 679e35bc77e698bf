"""``Simulation.results``: the results of a run are built from the simulation's plain parts, however it was run."""

from __future__ import annotations

import pandas as pd

from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy, Lifetime
from ikesim.sim.simulation import Simulation
from ikesim.types import Address

PSK = Credentials(psk=b"results-test-psk")


def make_sim() -> Simulation:
    """client -- gw over a 10 ms link; the CHILD_SA rekeys every 20 s, so a 65 s run has rekeys to measure."""
    child = ChildPolicy(lifetime=Lifetime(rekey_time=20.0, life_time=30.0, rand_time=0.0))
    ike = IkePolicy(lifetime=Lifetime(rekey_time=0.0, life_time=0.0, rand_time=0.0))
    c = Connection(name="vpn", local_id="client@sim.test", remote_id="gw.sim.test", remote_addr=Address("10.0.0.2"),
                   credentials=PSK, ike=ike, children=(child,))
    g = Connection(name="vpn", local_id="gw.sim.test", remote_id="client@sim.test", credentials=PSK, ike=ike,
                   children=(child,))
    sim = Simulation(seed=3, run=2, name="pair")
    sim.add_node(DaemonConfig("client", (Address("10.0.0.1"),), (c,)))
    sim.add_node(DaemonConfig("gw", (Address("10.0.0.2"),), (g,)))
    sim.add_link("client", "gw", delay=0.01)
    sim.schedule(0.0, "client", "initiate", connection="vpn")
    return sim


def test_advance_then_results_equals_run() -> None:
    """``advance`` then ``results()`` gives exactly the tables and summary ``run`` returns (benchmarks time them apart)."""
    ran = make_sim().run(65.0)
    sim = make_sim()
    sim.advance(65.0)
    built = sim.results()
    assert ran.summary["rekeys"] == {"child": 3, "ike": 0}
    assert (built.name, built.seed, built.run, built.duration) == ("pair", 3, 2, 65.0)
    assert built.summary == ran.summary
    for table in ("events", "exchanges", "sas", "packets", "rekey_latencies"):
        pd.testing.assert_frame_equal(getattr(built, table), getattr(ran, table))


def test_results_duration_is_the_run_length_given() -> None:
    """An explicit *duration* is what the summary reports; by default it is the simulated time reached."""
    sim = make_sim()
    sim.advance(30.0)
    assert sim.results().summary["duration"] == 30.0
    assert sim.results(duration=40.0).summary["duration"] == 40.0
