"""``clusters:`` (HA gateway clusters): the schema, its rules (file:line: key errors, exit 2 from the CLI), what the
builder makes of it (``Simulation.add_cluster`` and ``cluster_event``), random failures, and traffic with a cluster
as an end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ikesim.cli import main
from ikesim.errors import ConfigError
from ikesim.rng import Rng
from ikesim.scenario.build import build_simulation
from ikesim.scenario.cluster_model import ClusterFailuresModel, random_failures
from ikesim.scenario.load import load_scenario_text
from ikesim.sim.cluster import ClusterConfig
from ikesim.sim.ha_link import SyncLinkConfig

BASE = """\
name: ha
seed: 1
duration: 10min
nodes:
  gw: {addresses: [10.255.255.254]}
  c1: {addresses: [10.0.0.1]}
clusters:
  gw:
    members: [gw-a, gw-b]
    sync_link: {delay: 0.5ms, bandwidth: 1Gbit, partitions: [[60s, 70s]]}
    events:
      - {at: 60s, crash: gw-a}
      - {at: 200s, rejoin: gw-a}
links:
  - {between: [c1, gw], delay: 10ms}
connections:
  vpn: {initiator: c1, responder: gw}
"""
_MEMBERS = "    members: [gw-a, gw-b]\n"
_CRASH = "{at: 60s, crash: gw-a}"
_PART = "partitions: [[60s, 70s]]"
_CONN = "connections:"


def _with(key: str) -> tuple[str, str]:
    """Add *key* (a line of the cluster) after ``members``."""
    return _MEMBERS, _MEMBERS + f"    {key}\n"


CORPUS: list[tuple[str, str, str]] = [
    # members: at least two, distinct, plain names, none already a node, NAT, router or fleet client
    ("members: [gw-a, gw-b]", "members: [gw-a, c1]", "x.yaml:9: clusters.gw.members[1]: member 'c1' is also a node"),
    ("members: [gw-a, gw-b]", "members: [gw-a]", "x.yaml:9: clusters.gw.members: a cluster needs at least two members, "
     "got 1"),
    ("members: [gw-a, gw-b]", "members: [gw-a, gw-a]", "x.yaml:9: clusters.gw.members: member 'gw-a' is listed twice"),
    ("members: [gw-a, gw-b]", "members: [gw-a, 'gw b']", "x.yaml:9: clusters.gw.members: member name 'gw b' may contain "
     "only letters, digits, '_', '-' and '.'"),
    (_CONN, "nats:\n  gw-b: {public: 1.2.3.4, inside: [c1]}\n" + _CONN, "x.yaml:9: clusters.gw.members[1]: member "
     "'gw-b' is also a NAT"),
    ("  c1: {addresses: [10.0.0.1]}\nclusters:\n  gw:\n" + _MEMBERS, "  c1: {addresses: [10.0.0.1]}\n  gw-a: {addresses: "
     "[10.0.0.9]}\nclusters:\n  gw:\n", "x.yaml:9: clusters.gw: member 'gw-a' is also a node"),  # the default members
    # the cluster is a node with addresses
    ("  gw:\n    members", "  gateway:\n    members", "x.yaml:8: clusters.gateway: 'gateway' is not a node: declare it "
     "under nodes (its addresses are the cluster's virtual addresses)"),
    ("  gw: {addresses: [10.255.255.254]}", "  gw:\n    interfaces: {eth: {address: 10.255.255.254, link: {to: c1}}}",
     "x.yaml:16: links[0].between[1]: node 'gw' has interfaces: its links are interfaces.<name>.link\n"
     "x.yaml:9: clusters.gw: node 'gw' has interfaces: a cluster's virtual addresses are its addresses"),
    # settings
    (*_with("mode: active-active"), "x.yaml:10: clusters.gw.mode: 'active-active' is not one of 'active_passive' or "
     "'active_active' (did you mean 'active_active'?)"),
    (*_with("failover: hot"), "x.yaml:10: clusters.gw.failover: 'hot' is not one of 'stateful' or 'stateless'"),
    (*_with("segments: 0"), "x.yaml:10: clusters.gw.segments: must be at least 1, got 0"),
    (*_with("segments: 17"), "x.yaml:10: clusters.gw.segments: must be at most 16, got 17"),
    (*_with("heartbeat_timeout: 1s"), "x.yaml:8: clusters.gw: heartbeat_timeout 1s must be longer than heartbeat_delay "
     "1s (a member would miss every peer between two heartbeats)"),
    (*_with("heartbeat_delay: 0s"), "x.yaml:10: clusters.gw.heartbeat_delay: must be more than 0 s"),
    (*_with("esp_seq_margin: -1"), "x.yaml:10: clusters.gw.esp_seq_margin: must be at least 0, got -1"),
    (*_with("replay_delta: 4294967296"), "x.yaml:10: clusters.gw.replay_delta: must be at most 4294967295, got "
     "4294967296"),
    (*_with("hearbeat_delay: 1s"), "x.yaml:10: clusters.gw.hearbeat_delay: unknown key (did you mean "
     "'heartbeat_delay'?)"),
    (*_with("failures: {mtbf: 2h}"), "x.yaml:10: clusters.gw.failures.repair: required key missing"),
    (*_with("failures: {mtbf: 1us, repair: 1s}"), "x.yaml:10: clusters.gw.failures.mtbf: 1e-06s means about 6e+08 "
     "crashes per member in the run; at most 1,000,000"),
    # the sync link
    (_PART, "partitions: [[70s, 60s]]", "x.yaml:10: clusters.gw.sync_link.partitions[0]: [70s, 60s] must end after it "
     "starts"),
    (_PART, "partitions: [[60s, -70s]]", "x.yaml:10: clusters.gw.sync_link.partitions[0][1]: invalid duration '-70s' "
     "(use e.g. 30s, 66min, 1h30m, 500ms)"),
    (_PART, "partitions: [[11min, 12min]]", "x.yaml:10: clusters.gw.sync_link.partitions[0]: starts at 660s, not "
     "before the end of the run (600s)"),
    ("bandwidth: 1Gbit", "bandwidth: fast", "x.yaml:10: clusters.gw.sync_link.bandwidth: invalid bandwidth 'fast' (use "
     "bits/s or e.g. 512kbit, 10Mbit, 1Gbit)"),
    ("bandwidth: 1Gbit", "bandwidth: 1Gbit, loss: 100%", "x.yaml:10: clusters.gw.sync_link.loss: a sync link that loses "
     "every message is no link: give a loss below 1 (100%)"),
    # events: one kind each, a known member, within the run, downtime with restart only
    (_CRASH, "{at: 60s, crash: gw-c}", "x.yaml:12: clusters.gw.events[0].crash: cluster 'gw' has no member 'gw-c' "
     "(members: gw-a, gw-b)"),
    (_CRASH, "{at: -5s, crash: gw-a}", "x.yaml:12: clusters.gw.events[0].at: invalid duration '-5s' (use e.g. 30s, "
     "66min, 1h30m, 500ms)"),
    (_CRASH, "{at: 20min, crash: gw-a}", "x.yaml:12: clusters.gw.events[0].at: 1200s is not before the end of the run "
     "(600s)"),
    (_CRASH, "{at: 60s, crash: gw-a, rejoin: gw-b}", "x.yaml:12: clusters.gw.events[0]: give one of crash, restart, "
     "rejoin, partition or switchover (not crash and rejoin)"),
    (_CRASH, "{at: 60s}", "x.yaml:12: clusters.gw.events[0]: give one of crash, restart, rejoin, partition or "
     "switchover"),
    (_CRASH, "{at: 60s, restart: gw-a}", "x.yaml:12: clusters.gw.events[0]: restart needs a downtime (how long the "
     "member stays down, e.g. 5s)"),
    (_CRASH, "{at: 60s, crash: gw-a, downtime: 5s}", "x.yaml:12: clusters.gw.events[0]: downtime goes with restart, not "
     "crash"),
    (_CRASH, "{at: 60s, partition: 0s}", "x.yaml:12: clusters.gw.events[0].partition: must be more than 0 s"),
    (_CRASH, "{at: 60s, explode: gw-a}", "x.yaml:12: clusters.gw.events[0].explode: unknown key (known here: at, "
     "crash, rejoin, restart, switchover, partition, downtime)"),
    # the rest of the scenario names the cluster (links, connections) or a member (actions, faults' senders)
    ("  - {between: [c1, gw], delay: 10ms}", "  - {between: [c1, gw-a], delay: 10ms}", "x.yaml:15: links[0].between[1]: "
     "'gw-a' is a member of cluster 'gw': name the cluster"),
    ("vpn: {initiator: c1, responder: gw}", "vpn: {initiator: c1, responder: gw-b}", "x.yaml:17: "
     "connections.vpn.responder: 'gw-b' is a member of cluster 'gw': name the cluster"),
    ("vpn: {initiator: c1, responder: gw}", "vpn: {initiator: gw, responder: c1}", "x.yaml:17: "
     "connections.vpn.initiator: 'gw' is a cluster: clusters answer connections (make it the responder)"),
    (_CONN, "actions:\n  - {at: 1min, node: gw, action: dpd, connection: vpn}\n" + _CONN, "x.yaml:17: actions[0].node: "
     "'gw' is a cluster: actions run on one of its members (gw-a, gw-b)"),
    (_CONN, "faults:\n  - {from: gw, exchange: INFORMATIONAL, action: drop}\n" + _CONN, "x.yaml:17: faults[0].from: 'gw' "
     "is a cluster: it sends from its members (gw-a, gw-b)"),
    (_CONN, "faults:\n  - {to: gw-a, exchange: INFORMATIONAL, action: drop}\n" + _CONN, "x.yaml:17: faults[0].to: 'gw-a' "
     "is a member of cluster 'gw', which owns no address: datagrams to the cluster go to 'gw'"),
    # fleet mode's data plane does not model clusters
    (_CONN, "traffic: [{connection: vpn, rate: 1}]\ndata_plane: {mode: fleet}\n" + _CONN, "x.yaml:17: data_plane.mode: "
     "fleet mode does not model clusters (ikesim.sim.cluster): use mode: packet"),
]


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as err:
        load_scenario_text(text, "x.yaml")
    return str(err.value)


def test_base_scenario_is_valid_and_builds_the_configs() -> None:
    """The corpus edits a valid scenario; its cluster becomes these ``ClusterConfig`` and ``SyncLinkConfig``."""
    c = load_scenario_text(BASE, "x.yaml").clusters["gw"]
    assert c.member_names("gw") == ["gw-a", "gw-b"]
    assert c.config() == ClusterConfig()
    assert c.sync_link.config() == SyncLinkConfig(delay=0.0005, bandwidth=1e9, partitions=((60.0, 70.0),))
    assert [(e.at, e.kind, e.member, e.duration) for e in c.events] == [(60.0, "crash", "gw-a", 0.0),
                                                                        (200.0, "rejoin", "gw-a", 0.0)]


@pytest.mark.parametrize("old,new,expected", CORPUS, ids=[f"{i}:{c[1].strip()[:40]}" for i, c in enumerate(CORPUS)])
def test_bad_clusters_are_errors_naming_file_line_and_key(old: str, new: str, expected: str) -> None:
    """Each impossible cluster gives exactly this ``file:line: key: message``."""
    assert old in BASE
    assert _error(BASE.replace(old, new, 1)) == expected


def test_default_members_are_named_after_the_cluster() -> None:
    """Without ``members`` a cluster has ``<name>-a`` and ``<name>-b``."""
    m = load_scenario_text(BASE.replace(_MEMBERS, ""), "x.yaml")
    assert m.clusters["gw"].member_names("gw") == ["gw-a", "gw-b"]
    assert m.clusters["gw"].members is None


def test_a_member_may_not_be_named_like_a_fleet_client() -> None:
    """A fleet of 10 clients owns c00 .. c09: a member called c03 is an error at its key."""
    text = ("name: f\nseed: 1\nduration: 10min\nnodes:\n  gw: {addresses: [10.255.255.254]}\nclusters:\n"
            "  gw: {members: [gw-a, c03]}\nfleet: {clients: 10, gateway: gw}\n")
    assert _error(text) == "x.yaml:7: clusters.gw.members[1]: member 'c03' is also the name of a fleet client"


def test_actions_and_faults_may_name_a_member() -> None:
    """A member is a node of the run: it pins and acts (its cluster is an end of the connection), and sends faults."""
    text = BASE.replace(_CONN, "actions:\n  - {at: 1min, node: gw-a, action: rekey_child, connection: vpn}\n"
                               "  - {at: 1min, node: gw-b, action: pin_child_spi, value: '9b'}\n"
                               "faults:\n  - {from: gw-b, to: c1, exchange: INFORMATIONAL, action: drop}\n" + _CONN)
    m = load_scenario_text(text, "x.yaml")
    assert [a.node for a in m.actions] == ["gw-a", "gw-b"] and m.faults[0].from_ == "gw-b"


def test_every_setting_reaches_the_simulation() -> None:
    """``add_cluster`` gets the node's daemon config and cpu per member, the settings, and every scripted event."""
    text = BASE.replace("  gw: {addresses: [10.255.255.254]}", "  gw: {addresses: [10.255.255.254], cpu: {cores: 3}}")
    text = text.replace(_MEMBERS, _MEMBERS + "    mode: active_active\n    segments: 2\n    failover: stateless\n"
                        "    heartbeat_delay: 500ms\n    heartbeat_timeout: 1.6s\n    esp_seq_margin: 100\n"
                        "    esp_sync_interval: 2s\n    replay_delta: 8\n")
    text = text.replace("sync_link: {delay: 0.5ms, bandwidth: 1Gbit,", "sync_link: {delay: 1ms, loss: 1%, "
                        "bandwidth: 100Mbit, lag: 2ms,")
    text = text.replace("      - {at: 200s, rejoin: gw-a}\n", "      - {at: 200s, rejoin: gw-a}\n"
                        "      - {at: 300s, restart: gw-b, downtime: 5s}\n      - {at: 400s, partition: 10s}\n"
                        "      - {at: 500s, switchover: gw-a}\n")
    m = load_scenario_text(text, "x.yaml")
    sim = build_simulation(m)
    c = sim.clusters["gw"]
    assert c.config == ClusterConfig(mode="active_active", segments=2, failover="stateless", heartbeat_delay=0.5,
                                     heartbeat_timeout=1.6, esp_seq_margin=100, esp_sync_interval=2.0, replay_delta=8)
    assert c.link.config == SyncLinkConfig(delay=0.001, loss=0.01, bandwidth=1e8, lag=0.002, partitions=((60.0, 70.0),))
    assert sorted(sim.nodes) == ["c1", "gw-a", "gw-b"]
    assert [sim.nodes[n].cpu.cores for n in ("gw-a", "gw-b")] == [3, 3]  # type: ignore[union-attr]
    assert [x.name for x in sim.nodes["gw-b"].daemon.config.connections] == ["vpn"]
    events = sim.run(m.duration).events
    injected = events[(events.event == "ClusterChanged") & events.kind.isin(
        ["crash", "rejoin", "restart", "partition", "heal", "switchover"])]
    assert list(zip(injected.time, injected.member, injected.kind, strict=True)) == [
        (60.0, "gw-a", "crash"), (200.0, "gw-a", "rejoin"), (300.0, "gw-b", "restart"), (305.0, "gw-b", "rejoin"),
        (400.0, "gw-a", "partition"), (410.0, "gw-a", "heal"), (500.0, "gw-a", "switchover")]


def test_random_failures_follow_their_own_stream() -> None:
    """Exponential up times of mean mtbf per member (each its own stream), repair later a rejoin, in time order."""
    f = ClusterFailuresModel(mtbf=3600, repair=300)
    out = random_failures(f, ["gw-a", "gw-b"], 6 * 3600, Rng(5, "cluster-failures", "gw"))
    assert [(round(t, 6), k, m) for t, k, m in out[:6]] == [
        (588.062295, "crash", "gw-b"), (888.062295, "rejoin", "gw-b"), (1150.385647, "crash", "gw-a"),
        (1450.385647, "rejoin", "gw-a"), (4433.952722, "crash", "gw-b"), (4733.952722, "rejoin", "gw-b")]
    assert len(out) == 32 and round(out[-1][0], 6) == 20937.832276
    other = random_failures(f, ["gw-a", "gw-b"], 6 * 3600, Rng(5, "cluster-failures", "other"))
    assert round(other[0][0], 6) == 1536.950125


def test_the_builder_schedules_the_random_failures_of_the_run_stream() -> None:
    """``failures:`` draws from ``rng.child("cluster-failures", seed_stream or name)`` of the run: the crashes
    and rejoins recorded are exactly those ``random_failures`` gives, and a seed_stream names other ones."""
    text = BASE.replace("    events:\n      - {at: 60s, crash: gw-a}\n      - {at: 200s, rejoin: gw-a}\n",
                        "    failures: {mtbf: 5min, repair: 1min}\n").replace("duration: 10min", "duration: 30min")
    for stream in (None, "s2"):
        t = text if stream is None else text.replace("repair: 1min}", f"repair: 1min, seed_stream: {stream}}}")
        m = load_scenario_text(t, "x.yaml")
        sim = build_simulation(m)
        want = random_failures(m.clusters["gw"].failures, ["gw-a", "gw-b"], m.duration,  # type: ignore[arg-type]
                               sim.rng.child("cluster-failures", stream or "gw"))
        ev = sim.run(m.duration).events
        got = ev[(ev.event == "ClusterChanged") & ev.kind.isin(["crash", "rejoin"])]
        # a crash of a member already down, or a rejoin of one up, changes nothing and is not recorded
        assert [(round(t, 9), k, n) for t, k, n in zip(got.time, got.kind, got.member, strict=True)] == \
            [(round(t, 9), k, n) for t, k, n in want if (t, k, n) in _effective(want)]
        assert len(got) >= 6


def _effective(events: list[tuple[float, str, str]]) -> set[tuple[float, str, str]]:
    """Scripted crashes/rejoins that change a member's state (a member fails and repairs on its own stream only)."""
    up: dict[str, bool] = {}
    out = set()
    for t, k, n in events:
        if (k == "crash") == up.get(n, True):
            out.add((t, k, n))
            up[n] = k == "rejoin"
    return out


_TRAFFIC = BASE.replace("    events:\n      - {at: 60s, crash: gw-a}\n      - {at: 200s, rejoin: gw-a}\n", "").replace(
    _PART, "partitions: []").replace(
    "vpn: {initiator: c1, responder: gw}", "vpn: {initiator: c1, responder: gw, ike: {message_id_sync: true}}") + (
    "traffic:\n  - {connection: vpn, direction: both, pattern: constant, rate: 10, size: 200, start: 5s, stop: 25s}\n")


def test_traffic_with_the_cluster_as_an_end_is_delivered_both_ways() -> None:
    """A flow sent "by the cluster" leaves from the active member's ESP plane; both directions arrive: 200 packets
    each way (10/s from 5 s to 25 s), the client's at gw-a, the cluster's at c1."""
    m = load_scenario_text(_TRAFFIC.replace("duration: 10min", "duration: 30s"), "x.yaml")
    sim = build_simulation(m)
    assert sim.data is not None and sim.data.planes["gw"] is sim.nodes["gw-a"].plane
    t = sim.run(m.duration).traffic
    got = t.groupby(["direction", "sender", "fate", "where"]).size().to_dict()
    assert got == {("forward", "c1", "delivered", "gw-a"): 200, ("reverse", "gw", "delivered", "c1"): 200}


def test_traffic_resumes_after_a_stateful_takeover() -> None:
    """gw-a crashes at 10 s, before its heartbeat of 10 s; gw-b takes over 2.1 s after the one of 9 s (11.1015 s):
    from the next packet on (11.2 s) every packet of both directions is delivered again, at gw-b and at c1."""
    text = _TRAFFIC.replace("duration: 10min", "duration: 30s").replace(
        "    sync_link:", "    events: [{at: 10s, crash: gw-a}]\n    sync_link:")
    m = load_scenario_text(text, "x.yaml")
    t = build_simulation(m).run(m.duration).traffic
    after = t[t.time_sent >= 11.2]
    assert after.groupby(["direction", "fate", "where"]).size().to_dict() == {
        ("forward", "delivered", "gw-b"): 138, ("reverse", "delivered", "c1"): 138}


def test_cli_runs_a_cluster_scenario_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``ikesim run``: exit 0, the summary printed, results written with the cluster's members as nodes."""
    path = tmp_path / "ha.yaml"
    path.write_text(BASE.replace("duration: 10min", "duration: 5min"))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 0
    assert "results written to" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["nodes"] == ["c1", "gw-a", "gw-b"]
    assert (out / "events.parquet").exists()


def test_cli_exits_2_on_a_bad_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``ikesim run`` prints file:line: key and exits 2, writing nothing."""
    path = tmp_path / "bad.yaml"
    path.write_text(BASE.replace(_CRASH, "{at: 60s, crash: gw-c}"))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    assert "bad.yaml:12: clusters.gw.events[0].crash: cluster 'gw' has no member 'gw-c' (members: gw-a, gw-b)" in \
        capsys.readouterr().err
    assert not out.exists()
