"""Multi-homed hosts: routing through the interface of the source address, interface_down fates, NATs per
interface, InterfaceChanged records and the daemon's usable addresses (``ikesim.sim.mobility``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ikesim.errors import ConfigError
from ikesim.ike.config import Connection, Credentials, DaemonConfig
from ikesim.ike.daemon import IkeDaemon
from ikesim.metrics.recorder import InterfaceChanged
from ikesim.metrics.results import Results
from ikesim.sim.mobility import Step, commuter
from ikesim.sim.simulation import Simulation
from ikesim.sim.topology import Topology
from ikesim.types import Address, Datagram

WLAN, LTE, GW = "10.0.1.10", "10.0.2.10", "10.0.0.1"
JUNK = b"\x00" * 40
"""A payload no daemon parses (the receiving daemon drops it): these tests look at the network only."""


def two_homed(*, lte_up: bool = False, seed: int = 5) -> Simulation:
    """phone: wlan (10.0.1.10, priority 1) -5 ms- r, lte (10.0.2.10, priority 2) -40 ms- r; r -10 ms- gw."""
    sim = Simulation(seed=seed)
    sim.add_node(DaemonConfig("phone", (Address(WLAN), Address(LTE)), ()))
    sim.add_node(DaemonConfig("gw", (Address(GW),), ()))
    sim.add_router("r")
    sim.add_interface("phone", "wlan", address=WLAN, priority=1)
    sim.add_interface("phone", "lte", address=LTE, priority=2, up=lte_up)
    sim.add_link("phone/wlan", "r", delay=0.005)
    sim.add_link("phone/lte", "r", delay=0.040)
    sim.add_link("r", "gw", delay=0.010)
    return sim


def send_at(sim: Simulation, at: float, node: str, src: str, dst: str) -> None:
    """*node* sends a 40-octet datagram src:500 -> dst:500 at *at* seconds."""
    d = Datagram(JUNK, Address(src), Address(dst))
    sim.env.timeout(at).callbacks.append(lambda _ev: sim.send_datagram(node, d))


def fates(r: Results) -> list[list[object]]:
    """[time sent, sender, src, dst, fate, fate time (µs), where] per datagram."""
    p = r.packets
    return [[t, n, s, d, f, round(ft * 1e6), w] for t, n, s, d, f, ft, w in
            p[["time_sent", "node", "src", "dst", "fate", "fate_time", "fate_at"]].values.tolist()]


@pytest.fixture
def local_addresses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, float, list[str]]]]:
    """Every ``IkeDaemon.set_local_addresses`` call as (daemon, now, ips), the daemon still called."""
    calls: list[tuple[str, float, list[str]]] = []
    real = IkeDaemon.set_local_addresses

    def record(self: IkeDaemon, ips: list[str], now: float) -> None:
        calls.append((self.name, now, list(ips)))
        real(self, ips, now)

    monkeypatch.setattr(IkeDaemon, "set_local_addresses", record)
    yield calls


def test_a_host_sends_through_the_interface_of_the_source_address() -> None:
    """From wlan: 5 + 10 ms to gw; from lte: 40 + 10 ms; gw's answers come back through the same interfaces."""
    sim = two_homed(lte_up=True)
    send_at(sim, 1.0, "phone", WLAN, GW)
    send_at(sim, 2.0, "phone", LTE, GW)
    send_at(sim, 3.0, "gw", GW, WLAN)
    send_at(sim, 4.0, "gw", GW, LTE)
    assert fates(sim.run(5.0)) == [
        [1.0, "phone", f"{WLAN}[500]", f"{GW}[500]", "delivered", 1_015_000, "gw"],
        [2.0, "phone", f"{LTE}[500]", f"{GW}[500]", "delivered", 2_050_000, "gw"],
        [3.0, "gw", f"{GW}[500]", f"{WLAN}[500]", "delivered", 3_015_000, "phone"],
        [4.0, "gw", f"{GW}[500]", f"{LTE}[500]", "delivered", 4_050_000, "phone"],
    ]


def test_the_host_itself_has_no_links_each_interface_one() -> None:
    """The graph: phone alone, phone/wlan and phone/lte each joined only to r; owners still name the host."""
    sim = two_homed()
    g = sim.graph
    assert (g.degree("phone"), sorted(g.successors("phone/wlan")), sorted(g.successors("phone/lte"))) == (0, ["r"], ["r"])
    t = sim.topology
    assert (t.owner(WLAN), t.vertex(WLAN), t.owner(LTE), t.vertex(LTE), t.vertex(GW)) == (
        "phone", "phone/wlan", "phone", "phone/lte", "gw")


def test_a_datagram_from_or_to_a_down_interface_is_dropped_interface_down() -> None:
    """lte is down: sent from it, dropped at once in phone/lte; sent to it, dropped when it arrives (40 + 10 ms)."""
    sim = two_homed(lte_up=False)
    send_at(sim, 1.0, "phone", LTE, GW)
    send_at(sim, 2.0, "gw", GW, LTE)
    send_at(sim, 3.0, "phone", "10.9.9.9", GW)  # an address on no interface of phone
    assert fates(sim.run(5.0)) == [
        [1.0, "phone", f"{LTE}[500]", f"{GW}[500]", "interface_down", 1_000_000, "phone/lte"],
        [2.0, "gw", f"{GW}[500]", f"{LTE}[500]", "interface_down", 2_050_000, "phone/lte"],
        [3.0, "phone", "10.9.9.9[500]", f"{GW}[500]", "no_route", 3_000_000, "phone"],
    ]


def test_a_datagram_in_flight_to_an_interface_that_goes_down_is_dropped_on_arrival() -> None:
    """gw sends to wlan at 1 s (arrives 1.015 s); wlan goes down at 1.010 s: interface_down at 1.015 s."""
    sim = two_homed()
    send_at(sim, 1.0, "gw", GW, WLAN)
    sim.interface_event(1.010, "phone", "wlan", False)
    assert fates(sim.run(2.0)) == [[1.0, "gw", f"{GW}[500]", f"{WLAN}[500]", "interface_down", 1_015_000, "phone/wlan"]]


def test_each_interface_behind_its_own_nat_or_none() -> None:
    """wlan behind home (203.0.113.7), lte behind carrier (198.51.100.7), eth behind none: each outbound datagram
    makes a mapping only on its own interface's NAT, and the gateway's answer to each public address gets home."""
    sim = Simulation(seed=2)
    eth = "10.0.3.10"
    sim.add_node(DaemonConfig("phone", (Address(WLAN), Address(LTE), Address(eth)), ()))
    sim.add_node(DaemonConfig("gw", (Address(GW),), ()))
    sim.add_router("r")
    sim.add_nat("home", public="203.0.113.7", inside=[WLAN])
    sim.add_nat("carrier", public="198.51.100.7", inside=[LTE])
    for name, ip, to in (("wlan", WLAN, "home"), ("lte", LTE, "carrier"), ("eth", eth, "r")):
        sim.add_interface("phone", name, address=ip)
        sim.add_link(f"phone/{name}", to, delay=0.001)
    for nat in ("home", "carrier"):
        sim.add_link(nat, "r", delay=0.002)
    sim.add_link("r", "gw", delay=0.003)
    send_at(sim, 1.0, "phone", WLAN, GW)
    send_at(sim, 2.0, "phone", LTE, GW)
    send_at(sim, 3.0, "phone", eth, GW)

    def answer(nat: str, public: str) -> None:  # gw answers the NAT's mapping: through it to the interface behind it
        (port,) = sim.boxes[nat].by_port  # type: ignore[attr-defined]
        sim.send_datagram("gw", Datagram(JUNK, Address(GW), Address(public, port)))

    sim.env.timeout(3.5).callbacks.append(lambda _ev: answer("home", "203.0.113.7"))
    sim.env.timeout(3.6).callbacks.append(lambda _ev: answer("carrier", "198.51.100.7"))
    send_at(sim, 3.7, "gw", GW, eth)
    r = sim.run(4.0)
    nat = r.events[r.events["event"] == "NatEvent"]
    created = [(n, i, str(new).split("[")[0]) for n, i, new in nat[["node", "inside", "new"]].values.tolist()]
    assert created == [("home", f"{WLAN}[500]", "203.0.113.7"), ("carrier", f"{LTE}[500]", "198.51.100.7")]
    assert [f[4:] for f in fates(r)] == [["delivered", 1_006_000, "gw"], ["delivered", 2_006_000, "gw"],
                                        ["delivered", 3_004_000, "gw"], ["delivered", 3_506_000, "phone"],
                                        ["delivered", 3_606_000, "phone"], ["delivered", 3_704_000, "phone"]]


def test_interface_changes_are_recorded_and_the_daemon_hears_its_usable_addresses(
        local_addresses: list[tuple[str, float, list[str]]]) -> None:
    """At the start: [wlan]; lte up at 10 s: [wlan, lte] (wlan preferred); wlan down at 20 s: [lte]; wlan up
    at 30 s: [wlan, lte]; a change to the state it already has does nothing. Each change is an InterfaceChanged."""
    sim = two_homed()
    for at, name, up in ((10.0, "lte", True), (20.0, "wlan", False), (25.0, "wlan", False), (30.0, "wlan", True)):
        sim.interface_event(at, "phone", name, up)
    r = sim.run(40.0)
    assert local_addresses == [("phone", 0.0, [WLAN]), ("phone", 10.0, [WLAN, LTE]), ("phone", 20.0, [LTE]),
                               ("phone", 30.0, [WLAN, LTE])]
    ev = r.events[r.events["event"] == "InterfaceChanged"]
    assert ev[["time", "node", "interface", "address", "up"]].values.tolist() == [
        [10.0, "phone", "lte", LTE, True], [20.0, "phone", "wlan", WLAN, False], [30.0, "phone", "wlan", WLAN, True]]


def test_the_daemon_sends_what_it_wants_after_each_change(local_addresses: list[tuple[str, float, list[str]]],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """After ``set_local_addresses`` the node is serviced: a datagram the daemon queues then leaves at that instant."""
    sim = two_homed()
    daemon = sim.nodes["phone"].daemon
    real = IkeDaemon.datagrams_to_send
    queued: list[Datagram] = []

    def to_send(self: IkeDaemon, now: float) -> list[Datagram]:
        out = real(self, now)
        if self is daemon and queued:
            out = [*out, *queued]
            queued.clear()
        return out

    def told(self: IkeDaemon, ips: list[str], now: float) -> None:
        if self is daemon and now > 0:
            queued.append(Datagram(JUNK, Address(ips[0]), Address(GW)))

    monkeypatch.setattr(IkeDaemon, "datagrams_to_send", to_send)
    monkeypatch.setattr(IkeDaemon, "set_local_addresses", told)
    sim.interface_event(7.0, "phone", "lte", True)
    sim.interface_event(8.0, "phone", "wlan", False)
    assert fates(sim.run(9.0)) == [[7.0, "phone", f"{WLAN}[500]", f"{GW}[500]", "delivered", 7_015_000, "gw"],
                                   [8.0, "phone", f"{LTE}[500]", f"{GW}[500]", "delivered", 8_050_000, "gw"]]


def test_a_commuter_moves_the_host_at_exactly_its_schedule(local_addresses: list[tuple[str, float, list[str]]]) -> None:
    """Commuter every 100 s, make-before-break with 2 s overlap: the usable addresses at 0, 100, 102, 200, 202, 300, 302."""
    sim = two_homed()
    sim.add_mobility("phone", commuter(period=100.0, interfaces=("wlan", "lte"), make_before_break=True, overlap=2.0))
    sim.run(350.0)
    assert local_addresses == [
        ("phone", 0.0, [WLAN]), ("phone", 100.0, [WLAN, LTE]), ("phone", 102.0, [LTE]), ("phone", 200.0, [WLAN, LTE]),
        ("phone", 202.0, [WLAN]), ("phone", 300.0, [WLAN, LTE]), ("phone", 302.0, [LTE])]


def test_a_scripted_step_at_zero_applies_after_the_first_announcement(local_addresses: list[tuple[str, float, list[str]]]) -> None:
    """The run starts with [wlan]; a step bringing lte up at 0 s follows at once: [wlan, lte] at 0 s."""
    sim = two_homed()
    sim.add_mobility("phone", iter([Step(0.0, "lte", True), Step(5.0, "wlan", False)]))
    sim.run(10.0)
    assert local_addresses == [("phone", 0.0, [WLAN]), ("phone", 0.0, [WLAN, LTE]), ("phone", 5.0, [LTE])]


def test_equal_priorities_keep_the_order_the_interfaces_were_added_in(
        local_addresses: list[tuple[str, float, list[str]]]) -> None:
    """Two interfaces of priority 0: usable in the order added (lte first here), whatever their addresses."""
    sim = Simulation(seed=1)
    sim.add_node(DaemonConfig("phone", (Address(WLAN), Address(LTE)), ()))
    sim.add_interface("phone", "lte", address=LTE)
    sim.add_interface("phone", "wlan", address=WLAN)
    sim.run(1.0)
    assert local_addresses == [("phone", 0.0, [LTE, WLAN])]


def test_nodes_without_interfaces_are_never_told_addresses(local_addresses: list[tuple[str, float, list[str]]]) -> None:
    """Only multi-homed hosts hear ``set_local_addresses``: gw keeps the daemon's default (every address usable)."""
    two_homed().run(1.0)
    assert [c[0] for c in local_addresses] == ["phone"]


def test_a_single_interface_host_behaves_as_a_plain_host() -> None:
    """One always-up interface with the plain host's link: the same exchanges, at the same times, same fates."""
    psk = Credentials(psk=b"interfaces-psk-0123456")

    def run(multi: bool) -> Results:
        sim = Simulation(seed=9)
        c = Connection(name="vpn", local_id="phone@sim.test", remote_id="gw.sim.test", remote_addr=Address(GW), credentials=psk)
        g = Connection(name="vpn", local_id="gw.sim.test", remote_id="phone@sim.test", credentials=psk)
        sim.add_node(DaemonConfig("phone", (Address(WLAN),), (c,)))
        sim.add_node(DaemonConfig("gw", (Address(GW),), (g,)))
        if multi:
            sim.add_interface("phone", "wlan", address=WLAN)
        sim.add_link("phone/wlan" if multi else "phone", "gw", delay=0.02)
        sim.schedule(0.0, "phone", "initiate", connection="vpn")
        return sim.run(10.0)

    plain, multi = run(False), run(True)
    cols = ["time_sent", "node", "src", "dst", "size", "fate", "fate_time", "fate_at", "exchange", "message_id", "response"]
    assert multi.packets[cols].values.tolist() == plain.packets[cols].values.tolist()
    assert multi.packets["exchange"].tolist() == ["IKE_SA_INIT", "IKE_SA_INIT", "IKE_AUTH", "IKE_AUTH"]
    assert multi.exchanges.drop(columns=["spi_i", "spi_r"], errors="ignore").values.tolist() == \
        plain.exchanges.drop(columns=["spi_i", "spi_r"], errors="ignore").values.tolist()


def test_interface_changed_is_a_plain_record() -> None:
    """The record's fields: node, interface, address, up."""
    e = InterfaceChanged(node="phone", interface="wlan", address=WLAN, up=False)
    assert (e.node, e.interface, e.address, e.up) == ("phone", "wlan", WLAN, False)


@pytest.mark.parametrize("build,message", [
    (lambda s: s.add_interface("nobody", "wlan", address=WLAN), "interface 'wlan': unknown node 'nobody'"),
    (lambda s: s.add_interface("phone", "eth", address="10.9.9.9"), "interface phone/eth: address 10.9.9.9 is not an "
     "address of 'phone'"),
    (lambda s: s.add_interface("phone", "wlan", address=LTE), "duplicate interface 'wlan' on 'phone'"),
    (lambda s: s.add_interface("phone", "eth", address=WLAN), "interface phone/eth: address 10.0.1.10 is already on "
     "interface phone/wlan"),
    (lambda s: s.add_link("phone", "r", delay=0.01), "link phone-r: 'phone' has interfaces: link one of them "
     "(phone/<interface>)"),
    (lambda s: s.add_link("phone/wlan", "gw", delay=0.01), "link phone/wlan-gw: interface phone/wlan already has its link"),
    (lambda s: s.add_interface("gw", "eth", address=GW), "interface 'eth': 'gw' has links of its own (link its "
     "interfaces instead)"),
    (lambda s: s.set_interface("phone", "wifi", True), "'phone' has no interface 'wifi' (has: wlan, lte)"),
    (lambda s: s.interface_event(1.0, "gw", "eth", True), "'gw' has no interface 'eth' (has: none)"),
    (lambda s: s.add_mobility("gw", iter(())), "mobility: 'gw' has no interfaces"),
])
def test_impossible_interfaces_are_config_errors(build: object, message: str) -> None:
    """Each misuse is a ConfigError saying what is wrong."""
    sim = two_homed()
    with pytest.raises(ConfigError) as err:
        build(sim)  # type: ignore[operator]
    assert str(err.value) == message


def test_topology_add_interface_moves_where_an_address_is_routed() -> None:
    """``vertex`` follows the interface; ``owner`` keeps naming the host; the host's other address stays on it."""
    t = Topology()
    t.add_node("h", ["10.0.0.1", "10.0.0.2"])
    t.add_interface("h", "h/a", "10.0.0.1")
    assert (t.owner("10.0.0.1"), t.vertex("10.0.0.1"), t.vertex("10.0.0.2"), t.vertex("10.0.0.3")) == ("h", "h/a", "h", None)
