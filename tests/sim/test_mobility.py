"""Movement processes (``ikesim.sim.mobility``): scripted, commuter and random-dwell schedules, their YAML form,
and fleets of multi-homed clients each moving on its own stream."""

from __future__ import annotations

import math
from itertools import islice, takewhile

import pytest

from ikesim.ike.daemon import IkeDaemon
from ikesim.rng import Rng
from ikesim.scenario.build import build_simulation
from ikesim.scenario.fleet_expand import expand_fleet
from ikesim.scenario.load import load_scenario_text
from ikesim.sim.mobility import Step, commuter, delay_until, random_dwell, scripted

PHONE = """\
name: phone
seed: 7
duration: 10min
nodes:
  phone:
    interfaces:
      wlan: {address: 192.168.1.10, priority: 1, link: {to: home, delay: 5ms}}
      lte:  {address: 100.64.0.10, priority: 2, link: {to: internet, delay: 40ms}, up: false}
    mobility:
      script: [{at: 60s, up: lte}, {at: 61s, down: wlan}, {at: 2min, up: wlan}]
  gw: {addresses: [198.51.100.1]}
nats:
  home: {public: 203.0.113.7, inside: [phone/wlan]}
routers:
  internet: {}
links:
  - {between: [home, internet], delay: 10ms}
  - {between: [internet, gw], delay: 10ms}
connections:
  vpn: {initiator: phone, responder: gw}
"""

FLEET = """\
name: movers
seed: 3
duration: 20min
fleet:
  clients: 3
  interfaces:
    wlan: {subnet: 10.1.0.0/24, priority: 1, link: {delay: 5ms}, nat: {public_subnet: 100.64.0.0/24}}
    lte: {subnet: 10.2.0.0/24, priority: 2, link: {delay: 40ms}, up: false}
  mobility: {random_dwell: {mean: 2min, interfaces: [wlan, lte], make_before_break: false, gap: 3s}}
"""


def changes(r: object) -> list[list[object]]:
    """The InterfaceChanged rows: [time, node, interface, address, up]."""
    e = r.events  # type: ignore[attr-defined]
    return e[e["event"] == "InterfaceChanged"][["time", "node", "interface", "address", "up"]].values.tolist()


def test_commuter_make_before_break_brings_the_new_interface_up_overlap_before_the_old_goes_down() -> None:
    """period 10 min, overlap 2 s: lte up at 600 s, wlan down at 602 s, wlan up at 1200 s, lte down at 1202 s, ..."""
    steps = list(islice(commuter(period=600.0, interfaces=("wlan", "lte"), make_before_break=True, overlap=2.0), 6))
    assert steps == [Step(600.0, "lte", True), Step(602.0, "wlan", False), Step(1200.0, "wlan", True),
                     Step(1202.0, "lte", False), Step(1800.0, "lte", True), Step(1802.0, "wlan", False)]


def test_commuter_break_before_make_leaves_a_gap_with_neither_up() -> None:
    """gap 3 s: wlan down at 600 s, lte up at 603 s; lte down at 1200 s, wlan up at 1203 s."""
    steps = list(islice(commuter(period=600.0, interfaces=("wlan", "lte"), make_before_break=False, gap=3.0), 4))
    assert steps == [Step(600.0, "wlan", False), Step(603.0, "lte", True), Step(1200.0, "lte", False),
                     Step(1203.0, "wlan", True)]


def test_commuter_switch_times_are_multiples_of_the_period_without_drift() -> None:
    """The 1000th switch starts at exactly 1000 * 0.1 s (no sum of 1000 periods)."""
    steps = list(islice(commuter(period=0.1, interfaces=("a", "b")), 2000))
    assert (steps[1998].at, steps[1999].at) == (1000 * 0.1, 1000 * 0.1)


@pytest.mark.parametrize("kwargs,message", [
    ({"period": 2.0, "interfaces": ("a", "b"), "overlap": 2.0}, "period 2.0 must be finite and longer than overlap 2.0"),
    ({"period": 0.0, "interfaces": ("a", "b")}, "period 0.0 must be finite"),
    ({"period": 1.0, "interfaces": ("a", "a")}, "at least two different interfaces"),
    ({"period": 1.0, "interfaces": ("a", "b"), "gap": -1.0}, "must be finite and not negative"),
])
def test_impossible_commuters_are_value_errors(kwargs: dict[str, object], message: str) -> None:
    """A schedule that cannot be followed is refused when it is made."""
    with pytest.raises(ValueError, match=message):
        commuter(**kwargs)  # type: ignore[arg-type]


def test_random_dwell_draws_exponential_stays_from_its_stream_in_turn() -> None:
    """Each stay is -mean * ln(1 - u) of the next draw; the next stay starts after the switch's gap; a, b, c, a ..."""
    steps = list(islice(random_dwell(Rng(11, "mobility", "x"), mean=300.0, interfaces=["a", "b", "c"],
                                     make_before_break=False, gap=3.0), 8))
    rng, t, expected = Rng(11, "mobility", "x"), 0.0, []
    for old, new in (("a", "b"), ("b", "c"), ("c", "a"), ("a", "b")):
        t += -300.0 * math.log(1.0 - rng.random())
        expected += [Step(t, old, False), Step(t + 3.0, new, True)]
        t += 3.0
    assert steps == expected
    assert [round(s.at, 6) for s in steps[:2]] == [round(expected[0].at, 6), round(expected[0].at + 3.0, 6)]


def test_random_dwell_make_before_break_overlaps() -> None:
    """make-before-break, overlap 1 s: the next interface up at the end of a stay, the old one down 1 s later."""
    a, b, c, d = islice(random_dwell(Rng(4, "m"), mean=60.0, interfaces=["wlan", "lte"], overlap=1.0), 4)
    assert (a.interface, a.up, b.interface, b.up, b.at - a.at) == ("lte", True, "wlan", False, 1.0)
    assert (c.interface, c.up, d.interface, d.up, d.at - c.at) == ("wlan", True, "lte", False, 1.0)
    assert c.at > b.at


def test_random_dwell_is_reproducible_and_streams_differ() -> None:
    """One stream, one schedule; another stream, another."""
    def first(*path: str) -> list[Step]:
        return list(islice(random_dwell(Rng(1, *path), mean=60.0, interfaces=["a", "b"]), 10))
    assert first("p") == first("p")
    assert [s.at for s in first("p")] != [s.at for s in first("q")]


def test_scripted_steps_run_in_time_order_keeping_the_order_of_equal_times() -> None:
    """Sorted by time, stable: two steps at 5 s stay in the order given."""
    steps = [Step(9.0, "a", True), Step(5.0, "b", True), Step(5.0, "a", False)]
    assert list(scripted(steps)) == [Step(5.0, "b", True), Step(5.0, "a", False), Step(9.0, "a", True)]


@pytest.mark.parametrize("now,at", [(0.1, 0.3), (1 / 3, 2 / 3), (1e9 + 0.1, 1e9 + 0.7), (5.0, 4.0)])
def test_delay_until_lands_on_the_step_time(now: float, at: float) -> None:
    """``now + delay_until(now, at)`` is exactly *at* (a step's time already past: 0)."""
    d = delay_until(now, at)
    assert (now + d == at) if at > now else d == 0.0


def test_a_scripted_phone_in_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    """The script's changes at 60 s, 61 s and 120 s are recorded and told to the daemon, best address first."""
    calls: list[tuple[str, float, list[str]]] = []
    real = IkeDaemon.set_local_addresses

    def record(self: IkeDaemon, ips: list[str], now: float) -> None:
        calls.append((self.name, now, list(ips)))
        real(self, ips, now)

    monkeypatch.setattr(IkeDaemon, "set_local_addresses", record)
    m = load_scenario_text(PHONE, "phone.yaml")
    assert m.nodes["phone"].addresses == ["192.168.1.10", "100.64.0.10"]
    r = build_simulation(m).run(m.duration)
    assert changes(r) == [[60.0, "phone", "lte", "100.64.0.10", True], [61.0, "phone", "wlan", "192.168.1.10", False],
                          [120.0, "phone", "wlan", "192.168.1.10", True]]
    assert calls == [("phone", 0.0, ["192.168.1.10"]), ("phone", 60.0, ["192.168.1.10", "100.64.0.10"]),
                     ("phone", 61.0, ["100.64.0.10"]), ("phone", 120.0, ["192.168.1.10", "100.64.0.10"])]
    first = r.packets.iloc[0]
    assert (first["src"], first["fate"], round(first["fate_time"], 6), first["fate_at"]) == (
        "192.168.1.10[500]", "delivered", 0.025, "gw")


def test_a_commuter_in_yaml_break_before_make() -> None:
    """commuter every 4 min, break-before-make with a 3 s gap, over 10 min: switches at 240 s and 480 s."""
    text = PHONE.replace("script: [{at: 60s, up: lte}, {at: 61s, down: wlan}, {at: 2min, up: wlan}]",
                         "commuter: {period: 4min, interfaces: [wlan, lte], make_before_break: false, gap: 3s}")
    r = build_simulation(load_scenario_text(text)).run(600.0)
    assert changes(r) == [[240.0, "phone", "wlan", "192.168.1.10", False], [243.0, "phone", "lte", "100.64.0.10", True],
                          [480.0, "phone", "lte", "100.64.0.10", False], [483.0, "phone", "wlan", "192.168.1.10", True]]


def test_a_fleet_of_multi_homed_clients_expands_per_interface() -> None:
    """Client i: wlan at 10.1.0.(i+1) behind its own NAT (100.64.0.(i+1)) whose link goes to the gateway, lte at
    10.2.0.(i+1) linked straight to the gateway, lte down at first; every client moves as the fleet says."""
    m = expand_fleet(load_scenario_text(FLEET))
    c1 = m.nodes["c1"]
    assert c1.addresses == ["10.1.0.2", "10.2.0.2"]
    assert c1.interfaces is not None and c1.mobility is not None and c1.mobility.random_dwell is not None
    assert {n: (f.address, f.priority, f.up, f.link.to, f.link.delay) for n, f in c1.interfaces.items()} == {
        "wlan": ("10.1.0.2", 1, True, "cwlan-nat1", 0.001), "lte": ("10.2.0.2", 2, False, "gw", 0.04)}
    assert {n: (nat.public, nat.inside) for n, nat in m.nats.items()} == {
        "cwlan-nat0": ("100.64.0.1", ["c0/wlan"]), "cwlan-nat1": ("100.64.0.2", ["c1/wlan"]),
        "cwlan-nat2": ("100.64.0.3", ["c2/wlan"])}
    assert [(link.between, link.delay) for link in m.links] == [((f"cwlan-nat{i}", "gw"), 0.005) for i in range(3)]


def test_fleet_clients_dwell_on_their_own_streams_reproducibly() -> None:
    """Each client's changes are ``random_dwell`` of ``rng.child("mobility", client)``: the same for one seed,
    different between clients, different for another seed."""
    def run(seed: int | None = None) -> list[list[object]]:
        m = load_scenario_text(FLEET)
        return changes(build_simulation(m, seed=seed).run(m.duration))

    rows = run()
    assert rows == run()
    for i in range(3):
        name = f"c{i}"
        steps = random_dwell(Rng(3, "run0", "mobility", name), mean=120.0, interfaces=["wlan", "lte"],
                             make_before_break=False, gap=3.0)
        addr = {"wlan": f"10.1.0.{i + 1}", "lte": f"10.2.0.{i + 1}"}
        expected = [[s.at, name, s.interface, addr[s.interface], s.up] for s in takewhile(lambda s: s.at < 1200.0, steps)]
        assert [row for row in rows if row[1] == name] == expected
        assert len(expected) >= 4
    times = {name: [row[0] for row in rows if row[1] == name] for name in ("c0", "c1", "c2")}
    assert len({tuple(t[:2]) for t in times.values()}) == 3
    assert run(seed=4) != rows


def test_packets_go_out_through_the_fleet_clients_interfaces() -> None:
    """Each client's IKE_SA_INIT leaves from its wlan address (the preferred one) and reaches the gateway after
    1 ms to its NAT and 5 ms on to the gateway."""
    m = load_scenario_text(FLEET.replace("mean: 2min", "mean: 1h"))
    r = build_simulation(m).run(1.0)
    p = r.packets
    init = p[(p["exchange"] == "IKE_SA_INIT") & ~p["response"]]
    assert [(n, s, f, round(t - s0, 6)) for n, s, f, t, s0 in
            init[["node", "src", "fate", "fate_time", "time_sent"]].values.tolist()] == [
        (f"c{i}", f"10.1.0.{i + 1}[500]", "delivered", 0.006) for i in range(3)]
