"""The CPU model: jobs queue for cores, cost what the calibration table says, and show up in rekey latency."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ikesim.cli import main
from ikesim.errors import ConfigError
from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy, Lifetime
from ikesim.metrics.results import Results
from ikesim.scenario.load import load_scenario_text
from ikesim.sim.cpu import CpuModel, default_costs
from ikesim.sim.simulation import Simulation
from ikesim.types import Address

OFF = Lifetime(rekey_time=0.0, life_time=0.0, rand_time=0.0)
COSTS = {"sk_open:aes256gcm16": 1e-3, "sk_seal:aes256gcm16": 2e-3, "prf_plus": 0.5e-3}
BASE = 0.1e-3
REKEY_REQUEST = BASE + 1e-3 + 2e-3 + 0.5e-3
"""A CHILD_SA rekey request at the responder: open it, derive the keys (one prf+), seal the answer."""
DELAY = 0.01


def storm(n: int, cores: int | None, warmup: float = 0.0) -> Results:
    """*n* clients, each with a tunnel to one gateway, all rekeying their CHILD_SA at 100 s."""
    psk = Credentials(psk=b"storm-psk")
    ike, child = IkePolicy(lifetime=OFF), ChildPolicy(lifetime=OFF)
    sim = Simulation(seed=2, warmup=warmup)
    gw = [Connection(name=f"t{i}", local_id="gw.sim.test", remote_id=f"c{i}@sim.test", credentials=psk, ike=ike,
                     children=(child,)) for i in range(n)]
    cpu = CpuModel(cores, dict(COSTS), BASE) if cores else None
    sim.add_node(DaemonConfig("gw", (Address("10.255.0.1"),), tuple(gw)), cpu=cpu)
    for i in range(n):
        c = Connection(name=f"t{i}", local_id=f"c{i}@sim.test", remote_id="gw.sim.test", remote_addr=Address("10.255.0.1"),
                       credentials=psk, ike=ike, children=(child,))
        sim.add_node(DaemonConfig(f"c{i}", (Address(f"10.0.0.{i + 1}"),), (c,)))
        sim.add_link(f"c{i}", "gw", delay=DELAY)
        sim.schedule(i * 1.0, f"c{i}", "initiate", connection=f"t{i}")
        sim.schedule(100.0, f"c{i}", "rekey_child", connection=f"t{i}")
    return sim.run(120.0)


@pytest.mark.parametrize("cores", [1, 2])
def test_rekey_storm_latency_is_what_the_table_predicts(cores: int) -> None:
    """20 simultaneous rekey requests: the k-th waits for the k-1 before it (per core); latency = 2 d + ceil(k / cores) x S."""
    r = storm(20, cores)
    p = r.processing
    jobs = p[((p["arrived"] - (100.0 + DELAY)).abs() < 1e-9) & (p["what"] == "CREATE_CHILD_SA request")]
    assert len(jobs) == 20
    assert jobs["service"].tolist() == pytest.approx([REKEY_REQUEST] * 20)
    expected_starts = [100.0 + DELAY + (k // cores) * REKEY_REQUEST for k in range(20)]
    assert sorted(jobs["start"]) == pytest.approx(expected_starts)
    latencies = sorted(r.rekey_latencies["initiator_latency"])
    assert latencies == pytest.approx([2 * DELAY + (k // cores + 1) * REKEY_REQUEST for k in range(20)])
    cpu = r.summary["cpu"]["gw"]
    assert (cpu["cores"], cpu["max_queue"]) == (cores, 20 - cores)
    assert cpu["wait_s"]["max"] == pytest.approx((20 // cores - 1) * REKEY_REQUEST)


def test_cpu_table_bins_busy_time_and_queue() -> None:
    """1 s bins: in the bin of the storm the gateway is busy 20 x S (+ the Delete requests); the queue is read at bin starts."""
    r = storm(20, 1)
    t = r.cpu[r.cpu["node"] == "gw"].set_index("time")
    busy_100 = r.processing[(r.processing["start"] >= 100.0) & (r.processing["start"] < 101.0)]["service"].sum()
    assert t.loc[100.0, "utilisation"] == pytest.approx(busy_100)
    assert busy_100 > 20 * REKEY_REQUEST
    assert t.loc[100.0, "queue"] == 19 and t.loc[99.0, "queue"] == 0 and t.loc[101.0, "queue"] == 0
    assert r.summary["cpu"]["gw"]["peak_utilisation"] == pytest.approx(t["utilisation"].max())


def test_warmup_leaves_the_connection_storm_out_of_the_cpu_summary() -> None:
    """Establishment (t < 20 s) is busier per second than the rekey storm on 1 core; warmup 50 s keeps only the storm."""
    full, steady = storm(20, 1).summary["cpu"]["gw"], storm(20, 1, warmup=50.0)
    p = steady.processing
    after = p[p["arrived"] >= 50.0]
    cpu = steady.summary["cpu"]["gw"]
    assert (cpu["from"], cpu["jobs"], full["from"], full["jobs"]) == (50.0, len(after), 0.0, len(p))
    assert 0 < len(after) < len(p)
    assert cpu["busy_s"] == pytest.approx(after["service"].sum())
    assert cpu["mean_utilisation"] == pytest.approx(after["service"].sum() / (120.0 - 50.0))
    bins = steady.cpu.set_index("time")["utilisation"]
    assert cpu["peak_utilisation"] == pytest.approx(bins[bins.index >= 50.0].max())
    assert full["peak_utilisation"] == pytest.approx(bins.max())
    assert cpu["max_queue"] == 19 and cpu["wait_s"]["n"] == len(after)
    with pytest.raises(ConfigError, match=r"x.yaml:3: warmup: .*must be shorter than duration"):
        load_scenario_text(BASE_SCENARIO.replace("duration: 1min\n", "duration: 1min\nwarmup: 1min\n"), "x.yaml")
    assert load_scenario_text(BASE_SCENARIO.replace("duration: 1min\n", "duration: 1min\nwarmup: 10s\n")).warmup == 10.0


def test_without_a_cpu_model_there_is_no_cpu_table_and_no_waiting() -> None:
    r = storm(5, None)
    assert r.processing.empty and r.cpu.empty and "cpu" not in r.summary
    assert sorted(r.rekey_latencies["initiator_latency"]) == pytest.approx([2 * DELAY] * 5)


def test_shipped_table_and_calibrate_command(tmp_path: Path) -> None:
    costs = default_costs()
    assert {"ke_keygen:31", "sk_seal:aes256gcm16", "prf_plus", "sign:ecdsa"} <= set(costs)
    assert all(v > 0 for v in costs.values())
    out = tmp_path / "t" / "costs.json"
    assert main(["calibrate", "--repeat", "10", "--out", str(out)]) == 0
    table = json.loads(out.read_text())
    assert set(table["costs"]) == set(costs) and all(v > 0 for v in table["costs"].values())
    assert [p.name for p in out.parent.iterdir()] == ["costs.json"]


BASE_SCENARIO = """\
name: cpu
duration: 1min
nodes:
  client: {addresses: [10.0.0.1]}
  gateway:
    addresses: [10.0.0.2]
    cpu: {cores: 2, base: 50us, costs: {"ke_keygen:31": 1ms}}
links:
  - {between: [client, gateway], delay: 10ms}
connections:
  vpn: {initiator: client, responder: gateway}
"""


def test_scenario_cpu_block() -> None:
    import ikesim

    m = load_scenario_text(BASE_SCENARIO)
    cpu = m.nodes["gateway"].cpu.build()
    assert (cpu.cores, cpu.base, cpu.costs["ke_keygen:31"]) == (2, pytest.approx(50e-6), pytest.approx(1e-3))
    assert cpu.costs["prf_plus"] == default_costs()["prf_plus"]
    r = ikesim.run(m)
    assert set(r.processing["node"]) == {"gateway"} and r.summary["cpu"]["gateway"]["cores"] == 2
    # IKE_SA_INIT at the gateway now costs at least its 1 ms key generation
    assert r.exchanges["latency"].iloc[0] > 0.02 + 1e-3


@pytest.mark.parametrize("edit,expected", [
    ("cpu: {cores: 2,", "x.yaml:7: nodes.gateway.cpu.cores: must be at least 1, got 0"),
    ("base: 50us", "x.yaml:7: nodes.gateway.cpu.base: invalid duration"),
    ('"ke_keygen:31"', "x.yaml:7: nodes.gateway.cpu.costs: unknown operation(s) x25519_keygen (known: hash, "),
])
def test_scenario_cpu_errors(edit: str, expected: str) -> None:
    bad = {"cpu: {cores: 2,": "cpu: {cores: 0,", "base: 50us": "base: soon", '"ke_keygen:31"': "x25519_keygen"}[edit]
    with pytest.raises(ConfigError) as err:
        load_scenario_text(BASE_SCENARIO.replace(edit, bad), "x.yaml")
    assert str(err.value).startswith(expected), str(err.value)


def test_cpu_table_of_a_node_that_ran_no_job_is_idle_not_an_error() -> None:
    """A node with a CPU model that processed nothing (a standby cluster member): every bin idle, queue 0."""
    import pandas as pd

    from ikesim.metrics.cpu_tables import cpu_table

    empty = pd.DataFrame({"node": pd.Series([], dtype=str), "arrived": pd.Series([], dtype=float),
                          "start": pd.Series([], dtype=float), "end": pd.Series([], dtype=float)})
    t = cpu_table(empty, {"gw": 2}, 3.0)
    assert t.to_dict("list") == {"node": ["gw"] * 3, "time": [0.0, 1.0, 2.0], "utilisation": [0.0] * 3,
                                 "queue": [0, 0, 0]}
