"""The ha table (``ikesim.metrics.ha``): one row per tunnel a cluster failure touched, and how it came back.

The runs: clients c0..c<n-1> (10.0.0.1..) each with a 10 ms link to the cluster "gw" (members gw-a, gw-b, sync link
lag 1 ms, delay 0.5 ms, heartbeats every 1 s, timeout 2.1 s), each initiating connection t<i> at i * 0.1 s, DPD
every 10 s with dpd_action restart, RFC 6311 negotiated; a constant flow of 10 packets/s each way per tunnel
from 5 s on. A failure is injected at 30 s.

Timings every row below follows from:

- detection: gw-a's last heartbeat leaves at 29 s, waits the 1 ms lag, takes 36 bytes * 8 / 1 Gbit/s = 288 ns on
  the link and 0.5 ms to cross; gw-b gives up 2.1 s after it arrived: 29 + 0.001 + 288e-9 + 0.0005 + 2.1;
- stateful: gw-b activates the replicas at that instant and sends the RFC 6311 INFORMATIONAL on message ID 0;
  the client answers it (``MessageIdsSynchronized``) 10 ms later: the IKE restore;
- stateless: gw-b knows nothing; the clients' DPD starts 10 s after the last ESP packet in (gw-a's reverse
  packet sent at 29.9 s, in at 29.91 s), is retransmitted 5 times by strongSwan's schedule and given up
  4 * (1.8**6 - 1) / 0.8 = 165.06112 s later, then IKE_SA_INIT (one round trip, 20 ms) and IKE_AUTH reach gw-b,
  which establishes the new IKE_SA as responder 10 ms later: the IKE restore.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy
from ikesim.metrics.ha import HA_COLUMNS, ha_summary
from ikesim.metrics.results import Results
from ikesim.metrics.traffic_log import Flow
from ikesim.sim.cluster import ClusterConfig
from ikesim.sim.cpu import CpuModel
from ikesim.sim.simulation import Simulation
from ikesim.sim.traffic import FlowSpec, Sizes
from ikesim.types import Address

GW = "10.255.255.254"
HEARTBEAT_IN = 29.0 + 0.001 + 36 * 8 / 1e9 + 0.0005
"""When gw-a's last heartbeat before the failure at 30 s reaches gw-b."""
DETECTED = HEARTBEAT_IN + 2.1
ONE_WAY = 0.01
DPD_GIVES_UP = 29.91 + 10.0 + 4.0 * (1.8 ** 6 - 1) / 0.8
REAUTH_AT_GW = DPD_GIVES_UP + 3 * ONE_WAY


def _sim(failover: str, *, clients: int = 4, until: float, traffic: bool = True, mode: str = "active_passive",
         segments: int = 1, cpu: CpuModel | None = None) -> Simulation:
    """The cluster, its clients and their flows (see the module docstring); failures are the caller's."""
    sim = Simulation(seed=3, name="ha")
    psk = Credentials(psk=b"bench-psk-0123456789")
    child = ChildPolicy()
    gw_conns = tuple(Connection(name=f"t{i}", local_id="gw.sim.test", remote_id=f"c{i}@sim.test", credentials=psk,
                                ike=IkePolicy(message_id_sync=True), children=(child,)) for i in range(clients))
    sim.add_cluster(DaemonConfig("gw", (Address(GW),), gw_conns), ["gw-a", "gw-b"],
                    cluster=ClusterConfig(failover=failover, mode=mode, segments=segments), cpu=cpu)
    ike = IkePolicy(message_id_sync=True, dpd_delay=10.0, dpd_action="restart")
    for i in range(clients):
        conn = Connection(name=f"t{i}", local_id=f"c{i}@sim.test", remote_id="gw.sim.test", remote_addr=Address(GW),
                          credentials=psk, ike=ike, children=(child,))
        sim.add_node(DaemonConfig(f"c{i}", (Address(f"10.0.0.{i + 1}"),), (conn,)))
        sim.add_link(f"c{i}", "gw", delay=ONE_WAY)
        sim.schedule(i * 0.1, f"c{i}", "initiate", connection=f"t{i}")
    if traffic:
        data = sim.enable_data_plane()
        senders = []
        for i in range(clients):
            ends = (f"10.0.0.{i + 1}", GW)
            for direction, sender, receiver in (("forward", f"c{i}", "gw"), ("reverse", "gw", f"c{i}")):
                spec = FlowSpec(Flow(i, f"t{i}", "net", direction, sender, receiver, "constant"), rate=10.0,
                                sizes=Sizes.fixed(100), start=5.0, stop=until)
                inner = ends if direction == "forward" else ends[::-1]
                senders.append(data.add_flow(spec, policy=(f"t{i}", "net"), inner=inner))
        for s in senders:
            s.start()
    return sim


def _crash(failover: str, until: float, **kw: object) -> Results:
    sim = _sim(failover, until=until, **kw)  # type: ignore[arg-type]
    sim.cluster_event(30.0, "gw", "crash", member="gw-a")
    return sim.run(until)


@pytest.fixture(scope="module")
def stateful() -> Results:
    return _crash("stateful", 60.0)


@pytest.fixture(scope="module")
def stateless() -> Results:
    return _crash("stateless", 220.0)


def _fixed(row: dict[str, object]) -> tuple[object, ...]:
    return tuple(row[c] for c in ("cluster", "failure", "kind", "member", "failed_at", "taken_by", "window"))


def test_stateful_crash_every_tunnel_synchronized_one_way_after_detection(stateful: Results) -> None:
    """gw-a held all four tunnels; gw-b detects, takes segment 1 and activates them; the clients answer the
    RFC 6311 synchronization 10 ms later. 23 packets lost per tunnel: forward 30.0..31.0 s (11, the one sent at
    31.1 s reaches gw-b after the takeover) and reverse 30.0..31.1 s (12: the flow leaves from gw-b once it
    activated the CHILD_SA); traffic flows again with the packets sent at 31.2 s."""
    df = stateful.ha
    assert list(df.columns) == HA_COLUMNS
    rows = df.to_dict("records")
    assert [(r["connection"], r["client"]) for r in rows] == [("t0", "c0"), ("t1", "c1"), ("t2", "c2"), ("t3", "c3")]
    for r in rows:
        assert _fixed(r) == ("gw", 1, "crash", "gw-a", 30.0, "gw-b", "gw#1")
        assert r["detected_at"] == pytest.approx(DETECTED, abs=1e-9)
        assert r["detection_s"] == pytest.approx(1.101500288, abs=1e-9)
        assert r["ike_restored_at"] == pytest.approx(DETECTED + ONE_WAY, abs=1e-9)
        assert r["ike_interruption_s"] == pytest.approx(1.111500288, abs=1e-9)
        assert (r["method"], r["retransmissions"], r["packets_lost"]) == ("sync", 0, 23)
        assert r["traffic_interruption_s"] == pytest.approx(1.2, abs=1e-9)
    mine = stateful.outages[stateful.outages["event_id"] == "gw#1"]
    assert mine.groupby("direction")["packets"].sum().to_dict() == {"forward": 44, "reverse": 48}


def test_stateless_crash_every_tunnel_reauthenticated_after_dpd_gave_up(stateless: Results) -> None:
    """gw-b drops what it does not know; each client's DPD retransmits 5 times, gives up, and reauthenticates.
    1,751 packets lost each way (sent 30.0..205.0 s: the client installs its new SA at 205.01112 s, gw-b its new
    outbound one at 205.00112 s), back with the packets sent at 205.1 s."""
    for r in stateless.ha.to_dict("records"):
        assert _fixed(r) == ("gw", 1, "crash", "gw-a", 30.0, "gw-b", "gw#1")
        assert r["detection_s"] == pytest.approx(1.101500288, abs=1e-9)
        assert r["ike_restored_at"] == pytest.approx(REAUTH_AT_GW, abs=1e-9) == pytest.approx(205.00112, abs=1e-9)
        assert (r["method"], r["retransmissions"], r["packets_lost"]) == ("reauth", 5, 2 * 1751)
        assert r["traffic_interruption_s"] == pytest.approx(175.1, abs=1e-9)
    assert len(stateless.ha) == 4


def test_summary_of_both_failovers(stateful: Results, stateless: Results) -> None:
    """Counts, methods, percentiles, and per failure the time until all tunnels were back and the reconnect peak:
    the four reauthentications reach gw-b within one second (175 s after the failure)."""
    s = stateful.summary["ha"]
    assert (s["count"], s["failures"], s["by_method"], s["unrestored"]) == (4, 1, {"sync": 4}, 0)
    assert (s["packets_lost"], s["retransmissions"], s["reauth_per_s_peak"]) == (92, 0, 0)
    assert s["detection_s"] == {"n": 4, "p50": 1.1015, "p95": 1.1015, "max": 1.1015}
    assert s["ike_interruption_s"] == {"n": 4, "p50": 1.1115, "p95": 1.1115, "max": 1.1115}
    assert s["traffic_interruption_s"] == {"n": 4, "p50": 1.2, "p95": 1.2, "max": 1.2}
    assert s["all_restored_s"] == {"n": 1, "p50": 1.1115, "p95": 1.1115, "max": 1.1115}
    assert (s["survivor_cpu_peak"], s["survivor_queue_peak"]) == (None, None)  # no CPU model
    (f,) = s["per_failure"]
    assert (f["cluster"], f["failure"], f["kind"], f["member"], f["failed_at"], f["tunnels"]) == (
        "gw", 1, "crash", "gw-a", 30.0, 4)
    t = stateless.summary["ha"]
    assert (t["by_method"], t["packets_lost"], t["retransmissions"], t["reauth_per_s_peak"]) == (
        {"reauth": 4}, 4 * 2 * 1751, 20, 4)
    assert t["all_restored_s"]["max"] == 175.00112
    alone = ha_summary(stateless.ha)  # the table alone: no survivors known, so no reconnect figures
    assert {k: alone[k] for k in ("count", "failures", "by_method", "all_restored_s", "reauth_per_s_peak")} == {
        "count": 4, "failures": 1, "by_method": {"reauth": 4}, "all_restored_s": t["all_restored_s"],
        "reauth_per_s_peak": 0}


def test_cli_prints_the_ha_figures(stateless: Results, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``ikesim run`` prints the summary's ha figures after the traffic table."""
    from ikesim.cli import print_summary

    monkeypatch.setenv("COLUMNS", "160")  # one line per figure
    print_summary(stateless.summary, 1.0, None)
    out = capsys.readouterr().out
    assert "HA failovers" in out and "restored by: reauth" in out
    assert "1101.5 ms / 1101.5 ms / 1101.5 ms" in out and "175001.1 ms / 175001.1 ms / 175001.1 ms" in out


def test_switchover_is_detected_at_once_and_loses_nothing() -> None:
    """A planned switchover to gw-b: gw-a drops segment 1 and gw-b takes it at the same instant (30 s) and
    synchronizes; the clients answer 10 ms later. No packet is lost: the forward packet sent at 30 s reaches gw-b
    at 30.01 s, and the reverse flow leaves from gw-b as soon as it activated the CHILD_SAs."""
    sim = _sim("stateful", until=40.0)
    sim.cluster_event(30.0, "gw", "switchover", member="gw-b")
    r = sim.run(40.0)
    for row in r.ha.to_dict("records"):
        assert (row["kind"], row["member"], row["detected_at"], row["detection_s"], row["taken_by"]) == (
            "switchover", "gw-b", 30.0, 0.0, "gw-b")
        assert row["ike_restored_at"] == pytest.approx(30.0 + ONE_WAY, abs=1e-9)
        assert (row["method"], row["packets_lost"]) == ("sync", 0) and math.isnan(row["traffic_interruption_s"])
    assert list(r.ha["connection"]) == ["t0", "t1", "t2", "t3"]


def test_active_active_crash_touches_only_the_failed_members_segment() -> None:
    """Two segments, active/active: segment 1 prefers gw-b, segment 2 gw-a (``s % 2``); CRC-32 puts 10.0.0.1-3 in
    segment 1 and 10.0.0.4-6 in segment 2, so gw-a's crash concerns t3..t5 only, and gw-b takes segment 2."""
    sim = _sim("stateful", clients=6, until=40.0, mode="active_active", segments=2, traffic=False)
    sim.cluster_event(30.0, "gw", "crash", member="gw-a")
    r = sim.run(40.0)
    assert list(r.ha["connection"]) == ["t3", "t4", "t5"]
    assert list(r.ha["client"]) == ["c3", "c4", "c5"]
    assert set(r.ha["taken_by"]) == {"gw-b"} and set(r.ha["method"]) == {"sync"}
    assert set(r.ha["packets_lost"]) == {0} and r.ha["traffic_interruption_s"].isna().all()  # no data plane


def test_second_failure_finds_the_tunnels_the_survivor_took_over() -> None:
    """gw-a crashes at 30 s and rejoins at 35 s as a standby (gw-b pushes it every IKE_SA, HA_RESYNC); gw-b crashes
    at 50 s: failure 2 touches the four tunnels gw-b activated, and gw-a takes them back by synchronization."""
    sim = _sim("stateful", until=60.0, traffic=False)
    sim.cluster_event(30.0, "gw", "crash", member="gw-a")
    sim.cluster_event(35.0, "gw", "rejoin", member="gw-a")
    sim.cluster_event(50.0, "gw", "crash", member="gw-b")
    r = sim.run(60.0)
    second = r.ha[r.ha["failure"] == 2]
    assert sorted(second["connection"]) == ["t0", "t1", "t2", "t3"]  # in the order gw-b activated them
    assert set(second["member"]) == {"gw-b"} and set(second["taken_by"]) == {"gw-a"}
    assert set(second["method"]) == {"sync"} and set(second["window"]) == {"gw#2"}
    # gw-b's last heartbeat before 50 s left at 49 s (its heartbeats tick on whole seconds)
    assert second["detected_at"].iloc[0] == pytest.approx(49.0 + 0.001 + 288e-9 + 0.0005 + 2.1, abs=1e-9)
    assert len(r.summary["ha"]["per_failure"]) == 2


def test_partition_touches_every_tunnel_of_the_cluster() -> None:
    """A 10 s partition of the sync link: both members stop hearing each other and gw-b takes segment 1 (split
    brain), so every tunnel gets a row. Nothing broke: gw-a still answers, and the first exchange after the failure
    is each client's DPD (no traffic: c<i> established at 0.1 i + 0.04 s, two round trips, and sends DPD after 10 s
    idle, each taking one 20 ms round trip: completed at 30.1 + 0.1 i s), before gw-b's synchronization: ``kept``."""
    sim = _sim("stateful", until=40.0, traffic=False)
    sim.cluster_event(30.0, "gw", "partition", duration=10.0)
    r = sim.run(40.0)
    rows = r.ha.to_dict("records")
    assert [row["connection"] for row in rows] == ["t0", "t1", "t2", "t3"]
    for i, row in enumerate(rows):
        assert (row["kind"], row["member"], row["taken_by"], row["method"]) == ("partition", "", "gw-b", "kept")
        assert row["detected_at"] == pytest.approx(DETECTED, abs=1e-9)
        assert row["ike_restored_at"] == pytest.approx(30.1 + 0.1 * i, abs=1e-9)


def test_survivor_cpu_and_queue_peaks_with_a_cpu_model() -> None:
    """With a CPU model on the members, the summary reports the survivors' busiest 1 s bin and longest queue from
    the failure on (the ``cpu`` table's), here the stateless reconnect storm on one core."""
    r = _crash("stateless", 220.0, traffic=False, clients=8, cpu=CpuModel(cores=1))
    s = r.summary["ha"]
    cpu = r.cpu[(r.cpu["node"] == "gw-b") & (r.cpu["time"] >= 30.0)]
    assert s["survivor_cpu_peak"] == round(float(cpu["utilisation"].max()), 6) > 0
    assert s["survivor_queue_peak"] == int(cpu["queue"].max())
    assert s["reauth_per_s_peak"] == 8


def test_ha_parquet_is_written_and_reads_back(stateful: Results, tmp_path: Path) -> None:
    """ha.parquet is among a cluster run's files; the summary has an ``ha`` key."""
    assert "ha.parquet" in stateful.written_files()
    stateful.write(tmp_path)
    back = pd.read_parquet(tmp_path / "ha.parquet")
    pd.testing.assert_frame_equal(back, stateful.ha)


def test_run_without_a_cluster_has_no_ha_table(tmp_path: Path) -> None:
    """No cluster: the ha table is empty (its columns), no summary key, no file."""
    sim = Simulation(seed=3, name="plain")
    psk = Credentials(psk=b"bench-psk-0123456789")
    for name, peer, ip in (("a", "b", "10.0.0.1"), ("b", "a", "10.0.0.2")):
        conn = Connection(name="t", local_id=f"{name}@sim.test", remote_id=f"{peer}@sim.test",
                          remote_addr=Address("10.0.0.2") if name == "a" else None, credentials=psk,
                          children=(ChildPolicy(),))
        sim.add_node(DaemonConfig(name, (Address(ip),), (conn,)))
    sim.add_link("a", "b", delay=0.01)
    sim.schedule(0.0, "a", "initiate", connection="t")
    r = sim.run(5.0)
    assert r.trace.ha is None and list(r.ha.columns) == HA_COLUMNS and len(r.ha) == 0
    assert "ha" not in r.summary and "ha.parquet" not in r.written_files()
