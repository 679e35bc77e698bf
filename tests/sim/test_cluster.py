"""HA clusters in the simulation: heartbeats, detection, takeover, RFC 6311 after it, stateless fallback, split brain,
switchover, rejoin with resync, segments; exact times on seeded runs (``ikesim.sim.cluster``).

Timing of the sync link (defaults): an update or heartbeat waits ``lag`` 1 ms, is serialized (36 B at 1 Gbit/s:
0.288 µs) and propagates 0.5 ms. gw-a's heartbeat sent at 29 s therefore reaches gw-b at 29.0015003 s, and gw-b,
hearing nothing more (gw-a crashed at 30 s), declares it failed 2.1 s later (strongSwan ``heartbeat_timeout``):
31.1015003 s. Client links: 10 ms each way.
"""

from __future__ import annotations

import pytest

from ikesim.errors import ConfigError
from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy
from ikesim.metrics.results import Results
from ikesim.sim.cluster import ClusterConfig, segment_of
from ikesim.sim.ha_link import SyncLinkConfig
from ikesim.sim.simulation import Simulation
from ikesim.types import Address

PSK = Credentials(psk=b"bench-psk-0123456789")
VIP = Address("10.255.255.254")
HEARD = 29.0 + 0.001 + 36 * 8 / 1e9 + 0.0005
DETECTED = HEARD + 2.1


def _build(failover: str = "stateful", *, n: int = 4, mid_sync: bool = True, mode: str = "active_passive",
           segments: int = 1, sync: SyncLinkConfig | None = None, crash: float | None = 30.0) -> Simulation:
    """*n* clients of a 2-member cluster ``gw`` (10 ms links, DPD every 10 s, ``dpd_action = restart``); gw-a crashes
    at *crash* s."""
    sim = Simulation(seed=3, name="ha")
    client_ike = IkePolicy(message_id_sync=mid_sync, dpd_delay=10.0, dpd_action="restart")
    gw = tuple(Connection(name=f"t{i}", local_id="gw.sim.test", remote_id=f"c{i}@sim.test", credentials=PSK,
                          ike=IkePolicy(message_id_sync=mid_sync), children=(ChildPolicy(),)) for i in range(n))
    sim.add_cluster(DaemonConfig("gw", (VIP,), gw), ["gw-a", "gw-b"],
                    cluster=ClusterConfig(failover=failover, mode=mode, segments=segments), sync_link=sync)
    for i in range(n):
        conn = Connection(name=f"t{i}", local_id=f"c{i}@sim.test", remote_id="gw.sim.test", remote_addr=VIP,
                          credentials=PSK, ike=client_ike, children=(ChildPolicy(),))
        sim.add_node(DaemonConfig(f"c{i}", (Address(f"10.0.0.{i + 1}"),), (conn,)))
        sim.add_link(f"c{i}", "gw", delay=0.01)
        sim.schedule(i * 0.1, f"c{i}", "initiate", connection=f"t{i}")
    if crash is not None:
        sim.cluster_event(crash, "gw", "crash", member="gw-a")
    return sim


def _cluster_rows(r: Results) -> list[tuple[float, str, str, str, int]]:
    ev = r.events
    rows = ev[ev.event == "ClusterChanged"]
    return [(round(t, 7), node, kind, seg, int(c)) for t, node, kind, seg, c
            in zip(rows.time, rows.node, rows.kind, rows.segments, rows["count"], strict=True)]


def test_stateful_crash_is_detected_after_the_heartbeat_timeout_and_every_tunnel_survives_with_rfc6311() -> None:
    """gw-a crashes at 30 s: gw-b detects it at 31.1015003 s, takes segment 1, activates the 4 replicated IKE_SAs and
    synchronizes their message IDs; no client re-authenticates, and c0's DPD (message ID 4, sent at 30.08 s into the
    void) is re-sealed under P2 = 5 (strongSwan re-queues it under the new ID) and answered by gw-b."""
    sim = _build()
    cluster = sim.clusters["gw"]
    before = {f"c{i}": sim.nodes[f"c{i}"] for i in range(4)}
    r = sim.run(60.0)
    assert _cluster_rows(r) == [(30.0, "gw-a", "crash", "", 0), (round(DETECTED, 7), "gw-b", "detected", "1", 0),
                                (round(DETECTED, 7), "gw-b", "take", "1", 0),
                                (round(DETECTED, 7), "gw-b", "takeover", "1", 4)]
    ev = r.events
    late = ev[ev.time > 30.0]
    assert not (late.event == "IkeSaEstablished").any()  # no re-authentication
    synced = late[late.event == "MessageIdsSynchronized"]
    peer = synced[synced.role == "peer"]
    assert sorted(peer.node) == ["c0", "c1", "c2", "c3"]
    assert peer.time.round(7).unique().tolist() == [round(DETECTED + 0.01, 7)]
    c0 = peer[peer.node == "c0"].iloc[0]
    assert (c0.next_message_id, c0.peer_message_id, bool(c0.resent)) == (5, 0, True)
    assert sorted(synced[synced.role == "cluster"].node) == ["gw-b"] * 4
    dpd = late[(late.node == "c0") & (late.event == "ExchangeCompleted") & (late.purpose == "dpd")]
    assert (round(dpd.time.iloc[0], 7), int(dpd.message_id.iloc[0]), dpd.outcome.iloc[0]) == (
        round(DETECTED + 0.03, 7), 5, "ok")
    for name, node in before.items():
        (spi,) = node.daemon.ike_sa_spis()
        info = node.daemon.ike_sa_info(spi)
        assert sim.nodes["gw-b"].daemon.ike_sa_info(info.spi_r).spi_i == info.spi_i, name
    assert cluster.members[0].up is False and sim.nodes["gw-a"].daemon.sas == {}
    assert cluster.failures == [(1, "crash", "gw-a", 30.0)]


def test_stateless_failover_waits_for_the_clients_dpd_to_give_up_then_every_client_reauthenticates() -> None:
    """Without replication gw-b knows nothing and drops the clients' DPD retransmissions (unknown IKE SPI: strongSwan
    answers nothing); each client gives up 165 s after its DPD (4+7+13+23+42+76 s, strongSwan's schedule) and
    ``dpd_action = restart`` re-establishes with gw-b."""
    sim = _build("stateless")
    r = sim.run(200.0)
    assert _cluster_rows(r) == [(30.0, "gw-a", "crash", "", 0), (round(DETECTED, 7), "gw-b", "detected", "1", 0),
                                (round(DETECTED, 7), "gw-b", "take", "1", 0)]
    ev = r.events
    dead = ev[ev.event == "DeadPeerDetected"]
    assert dead.node.tolist() == ["c0", "c1", "c2", "c3"]
    started = ev[(ev.event == "ExchangeStarted") & (ev.purpose == "dpd") & (ev.time > 30)]
    assert (dead.time.to_numpy() - started.time.to_numpy()).round(5).tolist() == [165.06112] * 4
    again = ev[(ev.event == "IkeSaEstablished") & (ev.time > 30)]
    assert sorted(again.node) == ["c0", "c1", "c2", "c3", "gw-b", "gw-b", "gw-b", "gw-b"]
    drops = ev[(ev.event == "MessageDropped") & (ev.node == "gw-b")]
    assert set(drops.reason) == {"unknown IKE SPI"}


def test_without_message_id_sync_the_takeover_keeps_the_replicated_message_ids() -> None:
    """No RFC 6311 negotiated: gw-b activates the IKE_SAs with the message IDs gw-a synchronized and sends nothing;
    c0's DPD (message ID 4, lost at 30.08 s) is retransmitted at 34.08 s and gw-b, expecting 4, answers it."""
    sim = _build(mid_sync=False)
    r = sim.run(40.0)
    ev = r.events
    assert not (ev.event == "MessageIdsSynchronized").any()
    done = ev[(ev.node == "c0") & (ev.event == "ExchangeCompleted") & (ev.time > 30)]
    assert (round(done.time.iloc[0], 5), int(done.message_id.iloc[0]), done.outcome.iloc[0]) == (34.1, 4, "ok")


def test_a_crashed_member_sends_nothing_and_datagrams_to_the_vip_find_no_owner_until_the_takeover() -> None:
    sim = _build()
    r = sim.run(32.0)
    p = r.packets
    lost = p[(p.time_sent > 30.0) & (p.time_sent < DETECTED)]
    assert set(lost.fate) == {"cluster_no_owner"}  # the clients' DPDs at 30.08 .. 30.38 s
    assert lost.node.tolist() == ["c0", "c1", "c2", "c3"]


def test_switchover_moves_every_segment_after_the_last_update_crossed() -> None:
    """A planned switchover at 30 s (strongSwan ``ha.ctl``: the target activates, its HA_SEGMENT_TAKE makes the
    other drop): gw-a's IKE_SAs become passive (no Delete sent) and gw-b activates its replicas at the same instant."""
    sim = _build(crash=None)
    sim.cluster_event(30.0, "gw", "switchover", member="gw-b")
    r = sim.run(40.0)
    t = 30.0
    assert _cluster_rows(r) == [(30.0, "gw-b", "switchover", "", 0), (30.0, "gw-a", "drop", "1", 0),
                                (t, "gw-b", "take", "1", 0), (t, "gw-b", "takeover", "1", 4)]
    ev = r.events
    assert set(ev[(ev.event == "IkeSaDeleted") & (ev.node == "gw-a")].reason) == {"ha_passive"}
    assert not (ev[ev.node.str.startswith("c")].event == "IkeSaDeleted").any()


def test_split_brain_both_members_run_every_tunnel_until_the_link_heals_then_the_preferred_one_keeps_them() -> None:
    """The sync link carries nothing from 30 s to 40 s: gw-b misses gw-a's heartbeats and takes segment 1 (gw-a
    keeps it: both answer); the first heartbeat after the heal (gw-a's of 40 s) makes gw-b drop it again (active/
    passive prefers gw-a, strongSwan's "handled twice, dropping"; the heal comes first at 40 s, so the heartbeat
    gw-a sends then crosses); gw-a, whose state may be behind what the clients saw from gw-b, keeps the segment as a
    member taking over does (outbound sequence numbers jumped, message IDs synchronized again) and pushes its state
    to gw-b (resync)."""
    sim = _build(crash=None)
    sim.cluster_event(30.0, "gw", "partition", duration=10.0)
    r = sim.run(45.0)
    rows = _cluster_rows(r)
    assert rows[:4] == [(30.0, "gw-a", "partition", "", 0), (round(DETECTED, 7), "gw-b", "detected", "1", 0),
                        (round(DETECTED, 7), "gw-b", "take", "1", 0),
                        (round(DETECTED, 7), "gw-b", "takeover", "1", 4)]
    assert (40.0, "gw-a", "heal", "", 0) in rows
    t = round(HEARD + 11.0, 7)
    assert [row for row in rows if row[0] > 40.0] == [(t, "gw-b", "drop", "1", 0), (t, "gw-a", "take", "1", 0),
                                                      (t, "gw-a", "takeover", "1", 4), (t, "gw-a", "resync", "", 4)]
    # gw-a keeps the tunnels as a member taking over would: it synchronizes message IDs with every client again
    ev = r.events
    synced = ev[(ev.event == "MessageIdsSynchronized") & (ev.time > 40.0)]
    assert sorted(zip(synced.node, synced.role, synced.time.round(7), strict=True)) == sorted(
        [(f"c{i}", "peer", round(t + 0.01, 7)) for i in range(4)] + [("gw-a", "cluster", round(t + 0.02, 7))] * 4)
    assert len(r.violations) == 0
    cluster = sim.clusters["gw"]
    assert [sorted(m.segments) for m in cluster.members] == [[1], []]


def test_a_rejoined_member_gets_the_state_and_survives_the_second_failure() -> None:
    """gw-a crashes at 30 s and rejoins at 60 s as a standby; gw-b resyncs its 4 IKE_SAs to it; gw-b crashes at 90 s
    and gw-a takes every tunnel over again, still without re-authentication."""
    sim = _build()
    sim.cluster_event(60.0, "gw", "rejoin", member="gw-a")
    sim.cluster_event(90.0, "gw", "crash", member="gw-b")
    r = sim.run(100.0)
    rows = _cluster_rows(r)
    kinds = [(node, kind, count) for _t, node, kind, _s, count in rows]
    assert kinds == [("gw-a", "crash", 0), ("gw-b", "detected", 0), ("gw-b", "take", 0), ("gw-b", "takeover", 4),
                     ("gw-a", "rejoin", 0), ("gw-b", "resync", 4), ("gw-b", "crash", 0), ("gw-a", "detected", 0),
                     ("gw-a", "take", 0), ("gw-a", "takeover", 4)]
    ev = r.events
    assert not (ev[ev.time > 30.0].event == "IkeSaEstablished").any()
    assert len(sim.nodes["gw-a"].daemon.sas) == 4


def test_active_active_fails_over_only_the_crashed_members_segments() -> None:
    """Two segments, active/active: segment 1 prefers gw-b (1 % 2), segment 2 gw-a; gw-a's crash moves segment 2."""
    sim = _build(mode="active_active", segments=2)
    owner = {f"c{i}": segment_of(f"10.0.0.{i + 1}", 2) for i in range(4)}
    r = sim.run(40.0)
    rows = _cluster_rows(r)
    assert rows[1:3] == [(round(DETECTED, 7), "gw-b", "detected", "2", 0), (round(DETECTED, 7), "gw-b", "take", "2", 0)]
    moved = sum(1 for s in owner.values() if s == 2)
    assert rows[3] == (round(DETECTED, 7), "gw-b", "takeover", "2", moved)
    assert 0 < moved < 4  # the seed puts clients in both segments
    ev = r.events
    synced = ev[(ev.event == "MessageIdsSynchronized") & (ev.role == "peer")]
    assert sorted(synced.node) == sorted(c for c, s in owner.items() if s == 2)


def test_cluster_configuration_errors_name_the_value() -> None:
    sim = Simulation(seed=1)
    conn = Connection(name="t", local_id="gw", remote_id=None, credentials=PSK, ike=IkePolicy(),
                      children=(ChildPolicy(),))
    with pytest.raises(ConfigError, match="at least two distinct members"):
        sim.add_cluster(DaemonConfig("gw", (VIP,), (conn,)), ["gw-a"])
    with pytest.raises(ConfigError, match="cluster mode 'hot'"):
        ClusterConfig(mode="hot")
    with pytest.raises(ConfigError, match="failover"):
        ClusterConfig(failover="magic")
    with pytest.raises(ValueError, match="partition"):
        SyncLinkConfig(partitions=((5.0, 4.0),))
    sim.add_cluster(DaemonConfig("gw", (VIP,), (conn,)), ["gw-a", "gw-b"])
    with pytest.raises(ConfigError, match="no member 'gw-c'"):
        sim.cluster_event(1.0, "gw", "crash", member="gw-c")
    with pytest.raises(ConfigError, match="unknown cluster event 'explode'"):
        sim.cluster_event(1.0, "gw", "explode", member="gw-a")
    with pytest.raises(ConfigError, match="needs a duration"):
        sim.cluster_event(1.0, "gw", "partition")
