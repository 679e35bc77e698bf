"""The SimPy layer: link fates, timer wake-ups, routing and two real daemons."""

from __future__ import annotations

import pytest

from ikesim.errors import ConfigError
from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy, Lifetime
from ikesim.rng import Rng
from ikesim.sim.simulation import Simulation
from ikesim.types import Address

PSK = Credentials(psk=b"sim-test-psk")


def _two_nodes(sim: Simulation, *, child_life: Lifetime | None = None, ike_life: Lifetime | None = None) -> None:
    child = ChildPolicy(lifetime=child_life or Lifetime.child_default())
    ike = IkePolicy(lifetime=ike_life or Lifetime.ike_default())
    c = Connection(name="vpn", local_id="client@sim.test", remote_id="gw.sim.test", remote_addr=Address("10.0.0.2"),
                   credentials=PSK, ike=ike, children=(child,))
    g = Connection(name="vpn", local_id="gw.sim.test", remote_id="client@sim.test", credentials=PSK, ike=ike,
                   children=(child,))
    sim.add_node(DaemonConfig("client", (Address("10.0.0.1"),), (c,)))
    sim.add_node(DaemonConfig("gw", (Address("10.0.0.2"),), (g,)))


def test_establishment_times_follow_link_delay() -> None:
    """With a 25 ms link, IKE_SA_INIT and IKE_AUTH complete at exactly 50 and 100 ms."""
    sim = Simulation(seed=3)
    _two_nodes(sim)
    sim.add_link("client", "gw", delay=0.025)
    sim.schedule(1.0, "client", "initiate", connection="vpn")
    r = sim.run(10.0)
    ex = r.exchanges
    assert list(ex["purpose"]) == ["ike_sa_init", "ike_auth"]
    assert ex["start"].tolist() == pytest.approx([1.0, 1.05])
    assert ex["latency"].tolist() == pytest.approx([0.05, 0.05])
    assert (ex["initiator"] == "client").all() and (ex["responder"] == "gw").all()
    inst = r.events[r.events["event"] == "ChildSaInstalled"]
    assert inst["node"].tolist() == ["gw", "client"]
    assert inst["time"].tolist() == pytest.approx([1.075, 1.1])
    gw, cl = inst.iloc[0], inst.iloc[1]
    assert (gw["spi_in"], gw["spi_out"]) == (cl["spi_out"], cl["spi_in"])


def test_every_datagram_has_a_fate() -> None:
    """sent = delivered + every drop + in flight; a 30 % loss link loses some and retransmission recovers."""
    sim = Simulation(seed=11)
    _two_nodes(sim)
    sim.add_link("client", "gw", delay=0.01, loss=0.3)
    sim.schedule(0.0, "client", "initiate", connection="vpn")
    r = sim.run(600.0)
    d = r.summary["datagrams"]
    assert d["sent"] == d["delivered"] + d["lost"] + d["fragment_lost"] + d["fragments_dropped"] + d["queue_overflow"] \
        + d["link_down"] + d["no_route"] + d["dropped_by_fault"] + d["by_fate"].get("held", 0) + d["in_flight"]
    assert d["sent"] == sum(d["by_fate"].values()) + d["in_flight"]
    assert d["lost"] > 0 and r.summary["retransmissions"] > 0
    assert set(r.packets["fate"]) <= {"delivered", "lost"}
    assert r.summary["sas"]["child_installed"] == 2


def test_oversize_datagrams_are_fragmented_and_delivered() -> None:
    """A 200-byte MTU IP-fragments the larger IKE packets instead of dropping them: the tunnel still comes up."""
    sim = Simulation(seed=1)
    _two_nodes(sim)
    sim.add_link("client", "gw", delay=0.01, mtu=200)
    sim.schedule(0.0, "client", "initiate", connection="vpn")
    r = sim.run(30.0)
    assert set(r.packets["fate"]) == {"delivered"}
    assert r.summary["datagrams"]["fragmented"] == int((r.packets["size"] > 200).sum()) > 0
    assert r.summary["sas"]["ike_established"] == 2


def test_drop_fragments_drops_oversize_datagrams_with_reason() -> None:
    """With drop_fragments a 200-byte MTU drops the 228-byte IKE_SA_INIT packets (fragments_dropped); nothing is established."""
    sim = Simulation(seed=1)
    _two_nodes(sim)
    sim.add_link("client", "gw", delay=0.01, mtu=200, drop_fragments=True)
    sim.schedule(0.0, "client", "initiate", connection="vpn")
    r = sim.run(30.0)
    assert set(r.packets["fate"]) == {"fragments_dropped"}
    assert r.summary["datagrams"]["fragmented"] == r.summary["datagrams"]["fragments_dropped"] == len(r.packets)
    assert r.packets["size"].min() > 200 and (r.packets["size"] == r.packets["ike_length"] + 28).all()
    assert r.packets["time_delivered"].isna().all()
    assert r.summary["sas"]["ike_established"] == 0
    # the daemon retransmitted on its schedule: 4 s then 7.2 s later
    assert r.packets["time_sent"].tolist() == pytest.approx([0.0, 4.0, 11.2, 24.16][: len(r.packets)])


def test_timer_wakes_daemon_exactly_at_retransmit_deadlines() -> None:
    """With no link, the client retransmits at exactly the strongSwan schedule and gives up at 165.06 s."""
    sim = Simulation(seed=2)
    _two_nodes(sim)
    sim.schedule(0.0, "client", "initiate", connection="vpn")
    r = sim.run(200.0)
    assert r.packets["time_sent"].tolist() == pytest.approx([0.0, 4.0, 11.2, 24.16, 47.488, 89.4784])
    assert set(r.packets["fate"]) == {"no_route"}
    done = r.exchanges.iloc[0]
    assert done["outcome"] == "timeout" and done["end"] == pytest.approx(165.06112)
    assert r.summary["retransmissions"] == 5


def test_lifetimes_drive_rekeys_and_tables_agree() -> None:
    """Short lifetimes over an hour: every CHILD_SA row ends rekeyed before its hard expiry, latencies measured."""
    sim = Simulation(seed=6)
    _two_nodes(sim, child_life=Lifetime(rekey_time=300, life_time=330, rand_time=30),
               ike_life=Lifetime(rekey_time=1200, life_time=1320, rand_time=120))
    sim.add_link("client", "gw", delay=0.02)
    sim.schedule(0.0, "client", "initiate", connection="vpn")
    r = sim.run(3600.0)
    sas = r.sas
    child = sas[sas["kind"] == "child"]
    ended = child.dropna(subset=["rekeyed_at"])
    assert len(ended) >= 2 * 10
    assert (ended["rekeyed_at"] <= ended["expire_planned"]).all()
    assert (ended["rekeyed_at"] >= ended["created"] + 300 - 30 - 1e-9).all()
    lat = r.summary["rekey_latency"]["child"]
    assert lat["initiator"]["p50"] == pytest.approx(0.04) and lat["responder"]["p50"] == pytest.approx(0.02)
    # Both sides' whole-second soft timers fell due less than a transit apart near t=2197.26: a simultaneous rekey
    # (RFC 7296 §2.8.1). Both exchanges complete; the gateway's SA holds the higher nonces and survives, the client
    # deletes its own redundant SA and the gateway the old one. No TEMPORARY_FAILURE, no retry, so no slow rekey.
    assert lat["initiator"]["max"] == pytest.approx(0.04)
    assert r.summary["collisions"] == 1 and "TEMPORARY_FAILURE" not in r.summary["exchange_outcomes"]
    assert r.collisions[["kind", "nodes", "reports", "count"]].values.tolist() == [["child", "client,gw", 2, 1]]
    col = r.events[r.events["event"] == "RekeyCollision"]
    assert col[["node", "won", "resolution"]].values.tolist() == [["client", False, "nonces"], ["gw", True, "nonces"]]
    redundant = r.events[(r.events["event"] == "ChildSaDeleted") & (r.events["reason"] == "redundant")]
    assert sorted(redundant["node"]) == ["client", "gw"] and len(set(redundant["spi_in"])) == 2
    assert r.summary["rekeys"]["ike"] >= 2 and r.summary["exchanges_failed"] == 0


def test_same_seed_same_events_other_seed_other_spis() -> None:
    """Two runs with one seed give identical event tables; another seed changes the SPIs."""
    def once(seed: int):
        sim = Simulation(seed=seed)
        _two_nodes(sim)
        sim.add_link("client", "gw", delay=0.02, loss=0.05, jitter=0.005)
        sim.schedule(0.0, "client", "initiate", connection="vpn")
        return sim.run(3 * 3600.0)

    a, b, c = once(7), once(7), once(8)
    assert a.events.equals(b.events) and a.summary == b.summary
    assert set(a.events["spi_i"].dropna()) != set(c.events["spi_i"].dropna())


def test_actions_that_cannot_apply_are_recorded_not_raised() -> None:
    """A rekey before anything exists becomes an ActionSkipped event; unknown nodes/actions are ConfigErrors."""
    sim = Simulation(seed=1)
    _two_nodes(sim)
    sim.add_link("client", "gw", delay=0.01)
    sim.schedule(0.0, "client", "rekey_child", connection="vpn")
    sim.schedule(1.0, "client", "initiate", connection="vpn")
    sim.schedule(2.0, "client", "rekey_child", connection="vpn")
    r = sim.run(5.0)
    ev = r.events
    assert ev[ev["event"] == "ActionSkipped"]["time"].tolist() == [0.0]
    assert r.summary["rekeys"]["child"] == 1
    with pytest.raises(ConfigError):
        sim.schedule(3.0, "nobody", "initiate", connection="vpn")
    with pytest.raises(ConfigError):
        sim.schedule(3.0, "client", "explode", connection="vpn")


def test_two_simulations_are_independent() -> None:
    """No global state: interleaving two simulations does not change either's result."""
    def build(seed: int) -> Simulation:
        s = Simulation(seed=seed)
        _two_nodes(s)
        s.add_link("client", "gw", delay=0.01, loss=0.1)
        s.schedule(0.0, "client", "initiate", connection="vpn")
        return s

    alone = build(4).run(2000.0).events
    s1, s2 = build(4), build(9)
    s2.run(1000.0)
    assert s1.run(2000.0).events.equals(alone)
    assert Rng(4).bytes(8) == Rng(4).bytes(8)


def test_gateway_selects_connection_by_initiator_identity() -> None:
    """A gateway with one connection per client picks the one matching IDi at IKE_AUTH (RFC 7296 §2.15)."""
    sim = Simulation(seed=6)
    gw_conns, clients = [], []
    for i in range(3):
        psk = Credentials(psk=f"psk-{i}-0123456789".encode())
        gw_conns.append(Connection(name=f"t{i}", local_id="gw.sim.test", remote_id=f"c{i}@sim.test", credentials=psk))
        clients.append(Connection(name=f"t{i}", local_id=f"c{i}@sim.test", remote_id="gw.sim.test",
                                  remote_addr=Address("10.0.9.9"), credentials=psk))
    sim.add_node(DaemonConfig("gw", (Address("10.0.9.9"),), tuple(gw_conns)))
    for i, conn in enumerate(clients):
        sim.add_node(DaemonConfig(f"c{i}", (Address(f"10.0.0.{i + 1}"),), (conn,)))
        sim.add_link(f"c{i}", "gw", delay=0.01)
        sim.schedule(float(i), f"c{i}", "initiate", connection=f"t{i}")
    r = sim.run(10.0)
    est = r.events[(r.events["event"] == "IkeSaEstablished") & (r.events["node"] == "gw")]
    assert est["connection"].tolist() == ["t0", "t1", "t2"]
    assert est["peer_id"].tolist() == ["c0@sim.test", "c1@sim.test", "c2@sim.test"]
    assert r.summary["auth_failures"] == 0
