"""Fleet mode (``data_plane: {mode: fleet}``) against per-packet mode: the same scenarios, the same figures.

Constant-rate flows on loss-free links: identical counts by fate, identical outages and an identical IKE side
(exchanges table), byte and packet lifetimes included. Poisson flows and lossy links: counts within four standard
deviations of the draw.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import ikesim
from ikesim.errors import ConfigError
from ikesim.metrics.interval_tables import _share, _share_all
from ikesim.metrics.traffic_timeline import ConstantTimes, grid_index
from ikesim.rng import Rng
from ikesim.scenario.load import load_scenario
from ikesim.scenario.model import ScenarioModel
from ikesim.scenario.traffic_model import DataPlaneModel

ROOT = Path(__file__).resolve().parents[2] / "scenarios" / "traffic"
OUTAGE = ["flow", "direction", "start", "restored", "packets", "reason", "event"]


def _run(m: ScenarioModel, mode: str) -> ikesim.Results:
    return ikesim.run(m.model_copy(update={"data_plane": DataPlaneModel(mode=mode)}))


def _both(m: ScenarioModel) -> tuple[ikesim.Results, ikesim.Results]:
    return _run(m, "packet"), _run(m, "fleet")


def _traffic(m: ScenarioModel, **changes: object) -> ScenarioModel:
    return m.model_copy(update={"traffic": [t.model_copy(update=changes) for t in m.traffic]})


def _assert_same(packet: ikesim.Results, fleet: ikesim.Results) -> None:
    assert fleet.summary["traffic"] == packet.summary["traffic"]
    assert fleet.outages[OUTAGE].equals(packet.outages[OUTAGE])
    assert fleet.exchanges.equals(packet.exchanges)
    # the same NAT events; an expiry is noted when a packet next needs the mapping, which in per-packet mode may be
    # a user packet that fleet mode does not send (so the rows may come in another order)
    key = ["nat", "inside", "broken_from", "kind"]
    assert fleet.nat_paths.sort_values(key, ignore_index=True).equals(packet.nat_paths.sort_values(key, ignore_index=True))


@pytest.mark.parametrize(("variant", "lost"), [
    ("linger", {"link_down": 220, "no_sa": 4}),
    ("no-linger", {"link_down": 220, "no_sa": 4}),
    ("early-lost", {"link_down": 220, "no_sa": 4, "unknown_spi": 80}),
])
def test_constant_flow_over_child_rekeys_and_a_down_link_loses_the_same_packets_in_both_modes(
        variant: str, lost: dict[str, int]) -> None:
    """RFC 7296 §2.8 rekeys every 3 min, a link down for 5.5 s: the same fates, the same outages, the same IKE."""
    packet, fleet = _both(load_scenario(ROOT / "agreement-child-rekey.yaml", variant=variant))
    _assert_same(packet, fleet)
    s = fleet.summary["traffic"]
    assert s["sent"] == 36000 and s["lost_by_reason"] == lost
    out = fleet.outages
    down = out[out["reason"] == "link_down"]
    assert down["start"].tolist() == [200.0037, 200.0037] and down["restored"].tolist() == [205.5037, 205.5037]
    assert down["packets"].tolist() == [110, 110]
    if variant == "early-lost":  # the gateway sent with the new SA before the client had it: 4 s of unknown_spi
        row = out[out["reason"] == "unknown_spi"].iloc[0]
        assert (row["direction"], row["packets"], row["event"]) == ("reverse", 80, "child_rekey")
        assert row["time_to_restore"] == pytest.approx(4.0)


@pytest.mark.parametrize(("variant", "lost", "exchanges"), [
    ("both-keepalive-dpd", 2, 2),
    ("both-none", 2, 2),
    ("reverse-keepalive-dpd", 600, 25),
    ("reverse-none", 5999, 2),
])
def test_nat_rebinds_break_and_restore_the_return_path_at_the_same_times_in_both_modes(
        variant: str, lost: int, exchanges: int) -> None:
    """RFC 3948 §3: the client's next ESP moves the gateway's peer (EspPeerMoved) at once; without client
    traffic only DPD does (RFC 7296 §2.23), and ESP arriving postpones DPD (strongSwan's use stats)."""
    packet, fleet = _both(load_scenario(ROOT / "agreement-nat-rebind.yaml", variant=variant))
    _assert_same(packet, fleet)
    s = fleet.summary["traffic"]
    assert s["lost"] == lost and set(s["lost_by_reason"]) == {"nat_no_mapping"}
    assert len(fleet.exchanges) == exchanges
    if variant.startswith("both"):  # restored by the client's first packet after each rebind, 0.1 s later
        assert fleet.outages["start"].tolist() == [240.0011, 540.0011]
        assert fleet.outages["restored"].tolist() == [240.1011, 540.1011]


def test_fleet_traffic_gives_every_client_a_flow_and_both_modes_agree() -> None:
    """``fleet.traffic``: 20 clients behind rebinding NATs, 1 packet/s each way, CHILD rekeys every 10 min."""
    m = load_scenario(ROOT / "fleet-traffic.yaml")
    packet, fleet = _both(m)
    _assert_same(packet, fleet)
    t = fleet.traffic
    assert sorted(t["connection"].unique()) == [f"c{i:02d}" for i in range(20)]
    assert fleet.summary["traffic"]["sent"] == 2 * 20 * 2400
    assert fleet.summary["traffic"]["lost_by_reason"]["nat_no_mapping"] > 0


def test_poisson_flow_counts_agree_within_four_standard_deviations() -> None:
    """Poisson traffic: each mode draws its own counts; sent and link_down losses differ by at most 4 sd."""
    m = _traffic(load_scenario(ROOT / "agreement-child-rekey.yaml", variant="linger"), pattern="poisson")
    packet, fleet = _both(m)
    p, f = packet.summary["traffic"], fleet.summary["traffic"]
    mean_sent = 2 * 20 * (900 - 0.0037)
    assert abs(p["sent"] - f["sent"]) <= 4 * math.sqrt(2 * mean_sent)
    assert abs(f["sent"] - mean_sent) <= 4 * math.sqrt(mean_sent)
    mean_down = 2 * 20 * 5.4987
    assert abs(p["lost_by_reason"]["link_down"] - f["lost_by_reason"]["link_down"]) <= 4 * math.sqrt(2 * mean_down)
    assert fleet.exchanges.equals(packet.exchanges)


def test_bernoulli_link_loss_on_a_constant_flow_is_binomial() -> None:
    """A 2 % lossy link: the lost count is within 4 sd of n * p (Binomial), in both modes; IKE is the same."""
    m = load_scenario(ROOT / "agreement-child-rekey.yaml", variant="linger")
    links = [link.model_copy(update={"loss": 0.02, "down": []}) for link in m.links]
    packet, fleet = _both(m.model_copy(update={"links": links}))
    n, p = 36000 - 4, 0.02
    sd = math.sqrt(n * p * (1 - p))
    for s in (packet.summary["traffic"], fleet.summary["traffic"]):
        assert s["sent"] == 36000
        assert abs(s["lost_by_reason"]["lost"] - n * p) <= 4 * sd
    t = fleet.traffic
    assert t[t["fate"] == "lost"]["sporadic"].all()  # random losses in intervals that delivered: no outages
    assert set(fleet.outages["reason"]) == {"no_sa"}


def test_fleet_traffic_table_rows_are_intervals_of_constant_state() -> None:
    """One row per flow direction, SA and fate: the first SA's interval starts at the first packet with it."""
    fleet = _run(load_scenario(ROOT / "agreement-child-rekey.yaml", variant="linger"), "fleet")
    t = fleet.traffic
    fwd = t[t["direction"] == "forward"]
    assert fwd["fate"].tolist()[:2] == ["no_sa", "delivered"]
    assert (fwd["start"].iloc[0], fwd["end"].iloc[0], fwd["packets"].iloc[0]) == (0.0037, 0.0037 + 1 / 20, 2)
    assert fwd["start"].iloc[1] == pytest.approx(0.1037)
    assert int(t["packets"].sum()) == 36000
    assert fwd["spi"].iloc[1] != "" and fwd["spi"].nunique() == 5  # "", the first SA and three rekeys
    w = fleet.traffic_windows
    assert w["event"].tolist() == ["child_rekey"] * 3


@pytest.mark.parametrize(("change", "message"), [
    ({"pattern": "request_response", "direction": "forward"}, "request_response"),
    ({"queue": 10}, "queue"),
])
def test_fleet_mode_refuses_what_it_does_not_model(change: dict[str, object], message: str) -> None:
    """Fleet mode has no per-packet events: answers to delivered requests and held packets need packet mode."""
    m = _traffic(load_scenario(ROOT / "agreement-child-rekey.yaml", variant="linger"), **change)
    with pytest.raises(ConfigError, match=message):
        _run(m, "fleet")


def test_fleet_mode_refuses_links_with_a_bandwidth() -> None:
    """Queues depend on every packet: a link with a bandwidth needs packet mode."""
    m = load_scenario(ROOT / "agreement-child-rekey.yaml", variant="linger")
    links = [link.model_copy(update={"bandwidth": 1e6}) for link in m.links]
    with pytest.raises(ConfigError, match="bandwidth"):
        _run(m.model_copy(update={"links": links}), "fleet")


@pytest.mark.parametrize(("variant", "notes", "rekeys", "lost"), [
    ("forward", {"bytes": 20}, 16, {}),
    ("both", {"bytes": 56}, 28, {}),
    ("hard", {"packets": 38}, 26, {"no_sa": 3881, "sa_expired": 2903, "unknown_spi": 5768}),
])
def test_volume_lifetimes_are_reached_at_the_same_packets_in_both_modes(
        variant: str, notes: dict[str, int], rekeys: int, lost: dict[str, int]) -> None:
    """RFC 4301 §4.4.2.1: each SA tells its daemon at the packet that reaches a byte or packet limit (sent: outbound,
    arrived: inbound); fleet mode counts without packets and tells it at the same instants, in the same order."""
    packet, fleet = _both(load_scenario(ROOT / "agreement-byte-lifetime.yaml", variant=variant))
    _assert_same(packet, fleet)
    assert fleet.events.equals(packet.events)
    reached = fleet.events[fleet.events["event"] == "ChildSaLimitReached"]
    assert reached["counter"].value_counts().to_dict() == notes
    assert int((fleet.exchanges["purpose"] == "rekey_child").sum()) == rekeys
    s = fleet.summary["traffic"]
    assert s["sent"] == (60000 if variant == "forward" else 120000) and s["lost_by_reason"] == lost


def test_a_hard_packet_limit_expires_the_sa_after_the_packet_that_reached_it() -> None:
    """The 3300th packet passes; the gateway's outbound SA reaches its hard limit when it sends it (4.04363 s), the
    client's inbound SA when it arrives 10 ms later, just before the client sends: its packets are dropped as
    sa_expired from that instant on (the arrival's event was scheduled first, as in per-packet mode). Seed 6: with
    the scenario's own seed the two outbound SAs reach the limit at the same instant (each SA draws its own soft
    limit, so which rekey comes first, and whose answer is lost, depends on the seed)."""
    m = load_scenario(ROOT / "agreement-byte-lifetime.yaml", variant="hard").model_copy(update={"seed": 6})
    fleet = _run(m, "fleet")
    reached = fleet.events[(fleet.events["event"] == "ChildSaLimitReached") & fleet.events["hard"].eq(True)]
    assert reached[["time", "node", "counter", "handling"]].values.tolist() == [
        [4.04363, "gateway", "packets", "expire"], [4.05363, "client", "packets", "expire"]]
    t = fleet.traffic
    expired = t[(t["fate"] == "sa_expired")]
    assert expired["start"].min() == 4.05363 and int(expired["packets"].sum()) == 2753
    assert set(expired["direction"]) == {"forward"} and set(expired["where"]) == {"client"}


def _asymmetric(seed: int) -> ScenarioModel:
    """Packet limits 3000 (rand_packets 300, life 3300), the client sending 2000 packets/s and the gateway 1900, 10 ms
    one way: each of the four SAs (two per node) counts its own direction against its own soft draw."""
    m = load_scenario(ROOT / "agreement-byte-lifetime.yaml", variant="both")
    c = m.connections["vpn"]
    child = type(c.child)(rekey_time=0.0, life_time=0.0, rekey_packets=3000, life_packets=3300)
    (flow,) = m.traffic
    flows = [flow.model_copy(update={"direction": "forward", "rate": 2000, "start": 1.00013, "stop": 3.0}),
             flow.model_copy(update={"direction": "reverse", "rate": 1900, "start": 1.00029, "stop": 3.0})]
    return m.model_copy(update={"seed": seed, "duration": 4.0, "traffic": flows,
                                "connections": {"vpn": c.model_copy(update={"child": child})}})


@pytest.mark.parametrize(("seed", "draws", "reached"), [
    (29, {"client": (2708, 2792), "gateway": (2964, 2914)}, [("client", "out", "rekey"), ("client", "in", "rekeyed")]),
    (359, {"client": (2704, 2966), "gateway": (2963, 2837)}, [("client", "in", "rekey")]),
    (94, {"client": (2954, 2974), "gateway": (2946, 2703)}, [("gateway", "out", "rekey")]),
    (18, {"client": (2760, 2967), "gateway": (2700, 3000)}, [("gateway", "in", "rekey")]),
])
def test_each_sa_reaches_its_own_soft_limit_and_the_first_one_rekeys(
        seed: int, draws: dict[str, tuple[int, int]], reached: list[tuple[str, str, str]]) -> None:
    """strongSwan draws a soft limit per installed SA (``child_sa.c`` ``install_internal``): (inbound, outbound)
    packets per node, drawn by hand from ``run0/node/<name>/ike/volume_jitter``. An outbound SA reaches its limit
    when it sends the packet that makes the count, an inbound one when that packet arrives; the first of the four
    rekeys the CHILD_SA, at that exact packet, in both modes, and it rekeys once. Seed 29: the client's inbound draw
    is 84 below its outbound one, yet its outbound SA (2000 packets/s against 1900 in) gets there first; its inbound
    SA reaches its own limit 39 ms later, with the gateway's packets still in flight, and finds the CHILD_SA rekeyed.
    Seed 359: the client's inbound SA, 262 below its outbound one; seed 94: the gateway's outbound SA; seed 18: the
    gateway's inbound SA."""
    for node, (lim_in, lim_out) in draws.items():
        stream = Rng(seed, "run0").child("node", node, "ike", "volume_jitter")
        assert (3000 - stream.below(301), 3000 - stream.below(301)) == (lim_in, lim_out)
    fwd, rev = ConstantTimes(1.00013, 2000, 3.0), ConstantTimes(1.00029, 1900, 3.0)
    sends = {("client", "out"): fwd, ("client", "in"): rev, ("gateway", "out"): rev, ("gateway", "in"): fwd}

    def at(node: str, direction: str) -> float:  # the limit-th packet on that SA: sent, or arrived 10 ms later
        return sends[node, direction].time(draws[node][direction == "out"] - 1) + (0.01 if direction == "in" else 0.0)

    packet, fleet = _both(_asymmetric(seed))
    _assert_same(packet, fleet)
    assert fleet.events.equals(packet.events)
    e = fleet.events
    soft = e[e["event"] == "ChildSaLimitReached"]
    assert soft[["time", "node", "hard", "handling"]].values.tolist() == [
        [at(node, direction), node, False, handling] for node, direction, handling in reached]
    node, direction, _ = reached[0]
    started = e[e["event"] == "RekeyStarted"]
    assert started[["time", "node", "trigger"]].values.tolist() == [[at(node, direction), node, "soft_packets"]]
    x = fleet.exchanges
    assert x[["purpose", "initiator"]].values.tolist()[2:] == [["rekey_child", node], ["delete_child", node]]
    assert x["start"].tolist()[2:] == [at(node, direction), pytest.approx(at(node, direction) + 0.02)]  # one RTT
    assert fleet.summary["traffic"]["sent"] == 7800 and fleet.summary["traffic"]["lost_by_reason"] == {}


@pytest.mark.parametrize(("child", "traffic", "links", "message"), [
    ({"rekey_bytes": 4 << 20}, {"size": {"dist": "uniform", "low": 100, "high": 1400}}, None,
     "child net has rekey_bytes and traffic of varying sizes"),
    ({"rekey_packets": 3000}, {"pattern": "poisson"}, None,
     "child net has rekey_packets and pattern poisson traffic that shares its SA with another flow"),
    ({"life_bytes": 8 << 20}, {}, {"loss": 0.01}, "child net has life_bytes and link client-gateway loses packets"),
])
def test_fleet_mode_refuses_volume_lifetimes_it_cannot_count_exactly(
        child: dict[str, object], traffic: dict[str, object], links: dict[str, object] | None, message: str) -> None:
    """Which packet reaches a limit would be random per packet (varying sizes, random loss, two Poisson flows on one
    SA): fleet mode says which key, and asks for packet mode."""
    m = load_scenario(ROOT / "agreement-byte-lifetime.yaml", variant="forward")
    c = m.connections["vpn"]
    body = {"rekey_time": 0.0, "life_time": 0.0, **child}
    m = m.model_copy(update={"connections": {"vpn": c.model_copy(update={"child": type(c.child)(**body)})}})
    if traffic:
        flows = [type(t).model_validate({**t.model_dump(exclude_unset=True), **traffic}) for t in m.traffic]
        m = m.model_copy(update={"traffic": flows * 2 if traffic.get("pattern") == "poisson" else flows})
    if links:
        m = m.model_copy(update={"links": [link.model_copy(update=links) for link in m.links]})
    with pytest.raises(ConfigError, match=message):
        _run(m, "fleet")


def test_grid_counts_at_once_are_the_scalar_model_s() -> None:
    """``grid_index`` (all pieces at once) gives ``ConstantTimes``'s counts at and around its packet times."""
    g = ConstantTimes(0.0037, 20.0, 900.0)
    xs = [g.time(k) for k in (0, 1, 2, 4000, 17999)]
    xs += [math.nextafter(x, -math.inf) for x in xs] + [math.nextafter(x, math.inf) for x in xs]
    xs += [-1.0, 0.0037, 900.0, 1e9, math.inf]
    n = len(xs)
    got = grid_index(np.full(n, g.start), np.full(n, g.rate), np.full(n, g.total), np.array(xs))
    assert got.tolist() == [min(g.before(x), g.total) for x in xs]
    assert got.tolist()[:5] == [0, 1, 2, 4000, 17999] and got.tolist()[-3:] == [18000, 18000, 18000]


def test_random_losses_are_spread_over_the_parts_of_a_cut_interval_alike_row_by_row_and_at_once() -> None:
    """``_share_all`` (every cut row at once) spreads a row's packets as ``_share`` does (largest remainder)."""
    rows = [([3, 3, 3], 4), ([0, 0], 5), ([10, 0, 5], 7), ([1, 2], 3), ([7], 2)]
    counts = np.array([c for cs, _ in rows for c in cs])
    sizes = np.array([len(cs) for cs, _ in rows])
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    n = np.array([k for _, k in rows])
    j = np.arange(len(counts)) - np.repeat(first, sizes)
    got = _share_all(counts, n, np.add.reduceat(counts, first), first, sizes, j)
    assert got.tolist() == [x for cs, k in rows for x in _share(cs, k)] == [2, 1, 1, 5, 0, 5, 0, 2, 1, 2, 2]


def test_a_poisson_flow_reaches_its_packet_limit_with_the_send_times_the_tables_count() -> None:
    """Poisson send times with a packet lifetime: fleet mode draws the 3300th send time on the SA (order statistics
    of the process drawn so far, kept), tells the client then and the gateway when it arrives 10 ms later, and the
    tables count exactly 3300 packets on that SA before it expired."""
    m = _traffic(load_scenario(ROOT / "agreement-byte-lifetime.yaml", variant="hard"), pattern="poisson",
                 direction="forward")
    fleet = _run(m, "fleet")
    hard = fleet.events[(fleet.events["event"] == "ChildSaLimitReached") & fleet.events["hard"].eq(True)]
    assert hard["node"].tolist() == ["client", "gateway"] and hard["counter"].tolist() == ["packets", "packets"]
    (sent, arrived), spi = hard["time"].tolist(), hard["spi_out"].iloc[0]
    assert arrived == sent + 0.01
    t = fleet.traffic
    on_sa = t[t["spi"] == spi]
    assert int(on_sa[on_sa["fate"] != "sa_expired"]["packets"].sum()) == 3300
    assert on_sa[on_sa["fate"] == "sa_expired"]["start"].min() > sent
