"""Topology: address ownership, shortest-path next hops, and multi-hop forwarding in a simulation."""

from __future__ import annotations

import pytest

from ikesim.errors import ConfigError
from ikesim.ike.config import Connection, Credentials, DaemonConfig
from ikesim.sim.simulation import Simulation
from ikesim.sim.topology import Topology
from ikesim.types import Address


def test_next_hop_follows_the_lowest_total_delay() -> None:
    """a-b direct costs 0.5 s, a-r-b 0.2 s: the next hop from a to b is r; the cache follows new links."""
    t = Topology()
    for n, ip in (("a", "10.0.0.1"), ("b", "10.0.0.2"), ("r", "10.0.0.3"), ("x", "10.0.0.4")):
        t.add_node(n, [ip])
    t.add_link("a", "b", delay=0.5)
    assert t.next_hop("a", "b") == "b"
    t.add_link("a", "r", delay=0.1)
    t.add_link("r", "b", delay=0.1)
    assert t.next_hop("a", "b") == "r" and t.next_hop("r", "b") == "b" and t.next_hop("b", "a") == "r"
    assert t.next_hop("a", "x") is None and t.next_hop("a", "a") is None
    assert t.owner("10.0.0.2") == "b" and t.owner("192.0.2.1") is None


def test_an_address_on_two_nodes_is_a_config_error() -> None:
    """Two nodes cannot own one IP address."""
    t = Topology()
    t.add_node("a", ["10.0.0.1"])
    with pytest.raises(ConfigError, match="10.0.0.1"):
        t.add_node("b", ["10.0.0.1"])


def test_datagrams_cross_an_intermediate_node() -> None:
    """client - router - gw, 10 ms per hop: IKE_SA_INIT and IKE_AUTH each take 40 ms; the router sees no events."""
    psk = Credentials(psk=b"multihop-psk-0123456")
    sim = Simulation(seed=4)
    sim.add_node(DaemonConfig("client", (Address("10.0.0.1"),), (
        Connection(name="v", local_id="c@x.test", remote_id="g@x.test", remote_addr=Address("10.0.2.1"),
                   credentials=psk),)))
    sim.add_node(DaemonConfig("router", (Address("10.0.1.1"),), ()))
    sim.add_node(DaemonConfig("gw", (Address("10.0.2.1"),), (Connection(name="v", local_id="g@x.test",
                                                                        credentials=psk),)))
    sim.add_link("client", "router", delay=0.01)
    sim.add_link("router", "gw", delay=0.01)
    sim.schedule(0.0, "client", "initiate", connection="v")
    r = sim.run(5.0)
    assert r.exchanges["purpose"].tolist() == ["ike_sa_init", "ike_auth"]
    assert r.exchanges["latency"].tolist() == pytest.approx([0.04, 0.04])
    assert (r.packets["fate"] == "delivered").all() and (r.packets["fate_at"] != "router").all()
    assert (r.packets["time_delivered"] - r.packets["time_sent"]).tolist() == pytest.approx([0.02] * 4)
    assert "router" not in set(r.events["node"]) and r.summary["nodes"] == ["client", "gw", "router"]
