"""The per-packet data plane: ESP SAs installed and switched as the daemons' events say, and every packet's fate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ikesim
from ikesim.errors import ConfigError
from ikesim.scenario.build import build_simulation
from ikesim.scenario.load import load_scenario

BASE = """
name: dp
seed: 3
duration: {duration}
nodes:
  client: {{addresses: [10.0.0.1]}}
  gateway: {{addresses: [10.0.0.2]}}
links:
  - {{between: [client, gateway], delay: 25ms{link}}}
connections:
  vpn:
    initiator: client
    responder: gateway
    ike: {{rekey_time: 0}}
    child: {{rekey_time: 0, life_time: 0{child}}}
{actions}
traffic:
{traffic}
"""


def _run(*, duration: str = "30s", link: str = "", child: str = "", actions: str = "", traffic: str) -> ikesim.Results:
    text = BASE.format(duration=duration, link=link, child=child, actions=actions, traffic=traffic)
    return ikesim.run(load_scenario(text))


def _first_with(df: pd.DataFrame, spi: str) -> float:
    return float(df[df["spi"] == spi]["time_sent"].iloc[0])


def test_constant_flow_over_a_child_rekey_loses_nothing_and_switches_spis_when_rfc7296_2_8_says() -> None:
    """Client rekeys at 10 s (RTT 50 ms). The client sends with the new SA from the response (10.05 s); the
    gateway keeps the old SA until the client's Delete arrives (10.075 s): RFC 7296 §2.8, strongSwan's order."""
    r = _run(actions="actions:\n  - {at: 10s, node: client, action: rekey_child, connection: vpn}",
             traffic="  - {connection: vpn, direction: both, rate: 100, size: 200, start: 1s, stop: 20s}")
    t = r.traffic
    assert len(t) == 2 * 1900
    assert (t["fate"] == "delivered").all()
    ev = r.events
    installed = ev[ev["event"] == "ChildSaInstalled"]
    switched = ev[ev["event"] == "ChildSaOutboundInstalled"]
    fwd, rev = t[t["direction"] == "forward"], t[t["direction"] == "reverse"]
    assert fwd["spi"].nunique() == 2 and rev["spi"].nunique() == 2
    new_fwd, new_rev = fwd["spi"].iloc[-1], rev["spi"].iloc[-1]
    # the client installs the new SA both ways when the response arrives (10.05 s) ...
    client_new = installed[(installed["node"] == "client") & (installed["time"] > 5)]
    assert client_new["time"].item() == pytest.approx(10.05) and bool(client_new["outbound"].item())
    # ... the gateway switches outbound when the client's Delete arrives (10.075 s)
    assert switched["node"].tolist() == ["gateway"] and switched["time"].item() == pytest.approx(10.075)
    # each side's first packet with the new SA is its first send at or after its switch: 10.05 s and 10.08 s
    # (a packet due at the very instant of the switch goes after it: the IKE datagram was scheduled first)
    assert _first_with(fwd, new_fwd) == pytest.approx(10.05) and _first_with(rev, new_rev) == pytest.approx(10.08)
    assert fwd[fwd["time_sent"] < 10.05]["spi"].nunique() == 1 and rev[rev["time_sent"] < 10.075]["spi"].nunique() == 1
    assert len(installed) == 4  # the first CHILD_SA and the rekeyed one, on both nodes
    s = r.summary["traffic"]
    assert s["sent"] == 3800 and s["delivered"] == 3800 and s["lost"] == 0
    assert s["loss_per_child_rekey"] == {"rekeys": 1, "mean": 0.0, "p95": 0.0, "max": 0}


def test_packets_before_the_child_sa_exists_are_dropped_with_no_sa() -> None:
    """Traffic from 0 s: the CHILD_SA exists on the client after IKE_AUTH's response (2 RTT = 0.1 s)."""
    r = _run(traffic="  - {connection: vpn, direction: forward, rate: 100, size: 200, stop: 1s}")
    t = r.traffic
    no_sa = t[t["fate"] == "no_sa"]
    # the client installs the CHILD_SA when IKE_AUTH's response arrives at 0.1 s (that datagram was scheduled
    # before the packet due at the same instant, so that packet finds the SA)
    assert list(no_sa["time_sent"].round(6)) == [round(0.01 * k, 6) for k in range(10)]
    assert (no_sa["spi"] == "").all() and (no_sa["where"] == "client").all()
    assert (t[t["time_sent"] >= 0.1]["fate"] == "delivered").all()
    assert r.summary["traffic"]["lost_by_reason"] == {"no_sa": 10}
    o = r.outages
    assert len(o) == 1
    assert o.iloc[0][["start", "restored", "packets", "reason"]].tolist() == [0.0, pytest.approx(0.1), 10, "no_sa"]


def test_a_queue_holds_packets_until_the_child_sa_exists() -> None:
    """queue: 4 holds the first 4 packets (sent when the SA appears), the other 6 before it are dropped."""
    r = _run(traffic="  - {connection: vpn, direction: forward, rate: 100, size: 200, stop: 1s, queue: 4}")
    t = r.traffic
    assert t["fate"].value_counts().to_dict() == {"delivered": 94, "no_sa": 6}
    held = t[t["packet"] <= 4]
    assert (held["fate"] == "delivered").all()
    assert held["time_fate"].round(6).tolist() == [0.125] * 4  # sent at 0.1 s when the SA was installed, +25 ms


def test_link_loss_is_drawn_from_the_links_data_stream_and_leaves_ike_unchanged() -> None:
    """1 % loss: user packets are lost (fate ``lost``), and the IKE exchanges are the same as without traffic."""
    traffic = "  - {connection: vpn, direction: both, rate: 50, size: 200, start: 1s}"
    r = _run(duration="60s", link=", loss: 1%", traffic=traffic)
    lost = r.traffic[r.traffic["fate"] == "lost"]
    assert len(r.traffic) == 2 * 50 * 59
    assert 0 < len(lost) < 0.03 * len(r.traffic)
    assert set(lost["where"]) <= {"client->gateway", "gateway->client"}
    plain = ikesim.run(load_scenario(BASE.format(duration="60s", link=", loss: 1%", child="", actions="",
                                                 traffic="  []").replace("traffic:\n  []", "")))
    cols = ["exchange", "purpose", "start", "end", "outcome"]
    pd.testing.assert_frame_equal(r.exchanges[cols], plain.exchanges[cols])


def test_request_response_answers_only_delivered_requests() -> None:
    """Every delivered request gets one answer of response_size bytes, think s later."""
    r = _run(link=", loss: 5%",
             traffic="  - {connection: vpn, direction: forward, pattern: request_response, rate: 20, size: 100,\n"
                     "     response_size: 1400, think: 10ms, start: 1s, stop: 25s}")
    t = r.traffic
    requests, answers = t[t["direction"] == "forward"], t[t["direction"] == "reverse"]
    assert len(requests) == 20 * 24
    assert len(answers) == (requests["fate"] == "delivered").sum()
    assert (answers["size"] == 1400).all() and (requests["size"] == 100).all()


def test_same_seed_same_traffic_and_capture_holds_the_first_packets_of_each_sa(tmp_path) -> None:
    traffic = "  - {connection: vpn, direction: both, pattern: poisson, rate: 30, size: imix, start: 1s}"
    a = _run(traffic=traffic, actions="actions:\n  - {at: 10s, node: client, action: rekey_child, connection: vpn}")
    b = _run(traffic=traffic, actions="actions:\n  - {at: 10s, node: client, action: rekey_child, connection: vpn}")
    pd.testing.assert_frame_equal(a.traffic, b.traffic)
    assert set(a.traffic["size"]) == {40, 576, 1500}
    assert a.trace.traffic is not None
    captured = a.trace.traffic.captured
    per_spi = pd.Series([bytes(d[:4]).hex() for _i, _t, _s, _d, d in captured]).value_counts()
    assert len(per_spi) == 4 and (per_spi == 20).all()  # 2 SAs x 2 directions, capture_per_sa 20
    # ESP without NAT: IP protocol 50 (ports 0)
    assert {(s.port, d.port) for _i, _t, s, d, _x in captured} == {(0, 0)}


def test_traffic_needs_a_known_connection_and_child() -> None:
    with pytest.raises(ConfigError, match="traffic\\[0\\].connection: unknown connection 'nope'"):
        load_scenario(BASE.format(duration="10s", link="", child="", actions="",
                                  traffic="  - {connection: nope, rate: 1}"))
    with pytest.raises(ConfigError, match="give rate \\(packets/s\\) or bitrate"):
        load_scenario(BASE.format(duration="10s", link="", child="", actions="", traffic="  - {connection: vpn}"))


def test_bitrate_sets_the_packet_rate_from_the_mean_size() -> None:
    r = _run(traffic="  - {connection: vpn, direction: forward, bitrate: 80kbit, size: 1000, start: 1s, stop: 2s}")
    assert len(r.traffic) == 10
    assert np.allclose(np.diff(r.traffic["time_sent"]), 0.1)


def test_start_action_trap_initiates_on_the_first_packet_and_drops_or_queues_until_the_sa_exists() -> None:
    """start_action: trap: nothing happens until the first packet at 2 s; it initiates (IKE_SA_INIT + IKE_AUTH:
    2 RTT = 100 ms); the 10 packets sent meanwhile are dropped (no_sa), or with queue: 3 the first 3 are held."""
    text = BASE.format(duration="5s", link="", child="", actions="",
                       traffic="  - {connection: vpn, direction: forward, rate: 100, size: 200, start: 2s, queue: QUEUE}")
    text = text.replace("    initiator: client\n", "    initiator: client\n    start_action: trap\n")
    for queue, fates in ((0, {"delivered": 288, "in_flight": 2, "no_sa": 10}),
                         (3, {"delivered": 291, "in_flight": 2, "no_sa": 7})):
        r = ikesim.run(load_scenario(text.replace("QUEUE", str(queue))))
        started = r.exchanges[r.exchanges["exchange"] == "IKE_SA_INIT"]
        assert started["start"].tolist() == [2.0]
        assert r.traffic["fate"].value_counts().to_dict() == fates
        assert r.traffic[r.traffic["fate"] == "no_sa"]["time_sent"].max() < 2.1


def test_sequence_number_exhaustion_forces_a_rekey() -> None:
    """RFC 4303 §3.3.3: a non-ESN SA must not wrap. The client's outbound SA is moved to 10 numbers below the
    soft threshold (2^32 - 1 - 2^32 // 10, the ESP plane's margin) at 5 s: 10 packets later the plane reports the
    soft "seq" limit, the daemon rekeys (trigger soft_seq) and the packets go on with the new SA, none lost."""
    text = BASE.format(duration="10s", link="", child="", actions="",
                       traffic="  - {connection: vpn, direction: forward, rate: 100, size: 200, start: 1s}")
    sim = build_simulation(load_scenario(text))
    sim.advance(5.0)
    plane = sim.nodes["client"].plane
    assert plane is not None
    sa = plane.esp.outbound(("vpn", "net"))
    soft = 0xFFFFFFFF - 0x100000000 // 10
    sa.seq = soft - 10
    r = sim.run(10.0)
    started = r.events[r.events["event"] == "RekeyStarted"]
    assert started[["node", "trigger"]].values.tolist() == [["client", "soft_seq"]]
    assert started["time"].item() == pytest.approx(5.09)  # the 10th packet after 5 s reaches the threshold
    t = r.traffic
    old = t[t["spi"] == sa.spi.hex()]
    assert old["time_sent"].max() < 5.2 and (t["fate"].isin(["delivered", "in_flight"])).all()
    assert t["spi"].nunique() == 2
