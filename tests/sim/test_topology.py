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


def test_hub_trees_give_shortest_paths_like_a_plain_search() -> None:
    """Routes to and from a hub (degree >= HUB_DEGREE) come from a cached tree; their length equals nx's."""
    import networkx as nx

    from ikesim.rng import Rng
    from ikesim.sim.topology import HUB_DEGREE, Topology

    rng = Rng(7, "topology")
    t = Topology()
    t.add_node("hub", ["10.0.0.1"])
    names = [f"n{i}" for i in range(HUB_DEGREE + 20)]
    for i, n in enumerate(names):
        t.add_node(n, [f"10.1.{i // 250}.{i % 250 + 1}"])
        t.add_link(n, "hub", delay=0.001 + rng.uniform(0.0, 0.05))
    for _ in range(30):  # shortcuts between leaves, some shorter than via the hub
        a, b = names[rng.below(len(names))], names[rng.below(len(names))]
        if a != b:
            t.add_link(a, b, delay=rng.uniform(0.0, 0.03))

    def length(src: str, dst: str) -> float:
        total, here = 0.0, src
        while here != dst:
            nxt = t.next_hop(here, dst)
            assert nxt is not None
            total += t.graph[here][nxt]["delay"]
            here = nxt
        return total

    for src, dst in [("hub", n) for n in names] + [(n, "hub") for n in names] + [(names[0], n) for n in names[1:]]:
        assert length(src, dst) == pytest.approx(nx.shortest_path_length(t.graph, src, dst, weight="delay"))


def test_asymmetric_costs_route_each_direction_its_own_way() -> None:
    """a-b direct is cheap one way only: a->b goes direct, b->a goes round through r."""
    t = Topology()
    for n, ip in (("a", "10.0.0.1"), ("b", "10.0.0.2"), ("r", "10.0.0.3")):
        t.add_node(n, [ip])
    t.add_link("a", "b", delay=0.01, cost=0.01, cost_back=1.0)
    t.add_link("a", "r", delay=0.01)
    t.add_link("r", "b", delay=0.01)
    assert (t.next_hop("a", "b"), t.next_hop("b", "a"), t.next_hop("r", "a")) == ("b", "r", "a")


def test_asymmetric_path_in_a_scenario() -> None:
    """Requests take the direct 10 ms link; answers come back through a router (2 x 30 ms): IKE_SA_INIT
    completes after 10 + 60 ms, IKE_AUTH likewise."""
    import ikesim

    text = """\
name: asym
duration: 10s
nodes:
  client: {addresses: [10.0.0.1]}
  gateway: {addresses: [10.0.0.2]}
routers:
  r: {}
links:
  - {between: [client, gateway], delay: 10ms, cost: [0.01, 1]}   # routing weights, like delays in s
  - {between: [client, r], delay: 30ms}
  - {between: [r, gateway], delay: 30ms}
connections:
  vpn: {initiator: client, responder: gateway}
"""
    r = ikesim.run(text)
    ex = r.exchanges
    assert ex["latency"].round(6).tolist() == [0.07, 0.07]
