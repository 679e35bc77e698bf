"""Fleet mode (``data_plane: {mode: fleet}``) against per-packet mode: the same scenarios, the same figures.

Constant-rate flows on loss-free links: identical counts by fate, identical outages and an identical IKE side
(exchanges table). Poisson flows and lossy links: counts within four standard deviations of the draw.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import ikesim
from ikesim.errors import ConfigError
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
