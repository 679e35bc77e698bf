"""Scenario files: durations, validation errors that name file, line and key, and the built configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ikesim.errors import ConfigError
from ikesim.scenario.build import daemon_configs
from ikesim.scenario.durations import parse_duration, parse_ratio
from ikesim.scenario.load import load_scenario, load_scenario_text

ROOT = Path(__file__).resolve().parents[2]
QUICK = (ROOT / "scenarios" / "quickstart.yaml").read_text()


@pytest.mark.parametrize("text,seconds", [
    ("30s", 30.0), ("1h", 3600.0), ("66min", 3960.0), ("1h30m", 5400.0), ("500ms", 0.5), ("1d", 86400.0),
    (12, 12.0), ("2.5s", 2.5), ("90", 90.0),
])
def test_durations(text, seconds) -> None:
    """Durations accept numbers and unit strings."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["abc", "1x", "-5", "", "1h-", True])
def test_bad_durations(bad) -> None:
    """Anything else is a ValueError."""
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_ratios() -> None:
    """Loss is a probability or a percentage within [0, 1]."""
    assert parse_ratio("1%") == 0.01 and parse_ratio(0.2) == 0.2
    with pytest.raises(ValueError):
        parse_ratio("150%")


@pytest.mark.parametrize("edit,expected", [
    (("rekey_time: 1h", "rekey_time: abc"), "x.yaml:31: connections.vpn.child.rekey_time: invalid duration 'abc'"),
    (("    mtu: 1500", "    mtu: 1500\n    colour: red"), "x.yaml:16: links[0].colour: unknown key"),
    (("between: [client, gateway]", "between: [client, gw]"), "x.yaml:12: links[0].between[1]: unknown node 'gw'"),
    (("loss: 1%", "loss: 150%"), "x.yaml:14: links[0].loss: ratio '150%' is outside [0, 1]"),
    (("    initiator: client\n", "    initiator: laptop\n"), "x.yaml:18: connections.vpn.initiator: unknown node 'laptop'"),
    (("      method: psk\n      psk: quickstart-psk-0123456789\n", "      method: psk\n"),
     "x.yaml:20: connections.vpn.auth: method psk needs a non-empty psk"),
    (("duration: 24h\n", ""), "x.yaml:2: duration: required key missing"),
    (("proposals: aes256gcm16\n", "proposals: aes256gcm16-sha999\n"),
     "x.yaml:30: connections.vpn.child.proposals: unknown algorithm 'sha999'"),
    (("proposals: aes256gcm16-prfsha256-x25519", "proposals: [aes256gcm16-x25519]"),
     "x.yaml:27: connections.vpn.ike.proposals: IKE proposal 'aes256gcm16-x25519' needs a PRF"),
    (("      life_time: 66min\n", "      life_time: 66min\n      local_ts: [10.0.0.0/33]\n"),
     "x.yaml:34: connections.vpn.child.local_ts: invalid traffic selector '10.0.0.0/33'"),
    (("      life_time: 66min\n", "      life_time: 30min\n"),
     "x.yaml:33: connections.vpn.child.life_time: life_time 1800s must be longer than rekey_time 3600s"),
    (("    responder: gateway\n", "    responder: gateway\n    responder: client\n"),
     "x.yaml:20: connections.vpn.responder: duplicate key 'responder' (first at line 19)"),
    (("seed: 1\n", "seed: one\n"), "x.yaml:4: seed: expected a whole number, got the text 'one'"),
])
def test_errors_name_file_line_and_key(edit, expected) -> None:
    """Each invalid file raises ConfigError with file:line: key.path: reason."""
    assert edit[0] in QUICK
    with pytest.raises(ConfigError) as err:
        load_scenario_text(QUICK.replace(edit[0], edit[1], 1), "x.yaml")
    assert str(err.value).startswith(expected), str(err.value)


def test_yaml_syntax_error_names_the_line() -> None:
    """A YAML syntax error names its line."""
    with pytest.raises(ConfigError, match=r"^y.yaml:3: YAML syntax error"):
        load_scenario_text("name: x\nduration: 1h\nnodes: a: b\nseed: 1\n", "y.yaml")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A file that cannot be read is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_scenario(tmp_path / "nope.yaml")


def test_quickstart_builds_strongswan_like_policies() -> None:
    """The quickstart gives both nodes the same lifetimes: CHILD 1 h/66 min/6 min, IKE 4 h + 24 min."""
    m = load_scenario(ROOT / "scenarios" / "quickstart.yaml")
    assert m.duration == 86400.0
    configs = {c.name: c for c in daemon_configs(m)}
    client, gw = configs["client"].connections[0], configs["gateway"].connections[0]
    assert client.remote_addr is not None and client.remote_addr.ip == "10.0.0.2" and gw.remote_addr is None
    for conn in (client, gw):
        life = conn.children[0].lifetime
        assert (life.rekey_time, life.life_time, life.rand_time) == (3600.0, 3960.0, 360.0)
        ike = conn.ike.lifetime
        assert (ike.rekey_time, ike.life_time, ike.rand_time) == (14400.0, 15840.0, 1440.0)
        assert conn.ike.proposals == ("aes256gcm16-prfsha256-x25519",)
        assert conn.ike.retransmit.timeouts()[:2] == [4.0, 7.2]


def test_per_side_stagger() -> None:
    """rekey_fraction {initiator, responder} gives each side its own soft deadline fraction."""
    text = QUICK.replace("      life_time: 66min\n", "      life_time: 66min\n      rekey_fraction: {initiator: 0.7, responder: 0.8}\n")
    configs = {c.name: c for c in daemon_configs(load_scenario_text(text))}
    assert configs["client"].connections[0].children[0].lifetime.soft_after() == pytest.approx(0.7 * 3960)
    assert configs["gateway"].connections[0].children[0].lifetime.soft_after() == pytest.approx(0.8 * 3960)


ACTIONS = "actions:\n  - {at: 2h, node: gateway, action: rekey_child, connection: vpn, child: net}\n"


@pytest.mark.parametrize("action,expected", [
    ("{at: 1h, node: router, action: dpd, connection: vpn}", "x.yaml:37: actions[0].node: unknown node 'router'"),
    ("{at: 1h, node: client, action: dpd, connection: tunnel}", "x.yaml:37: actions[0].connection: unknown connection 'tunnel'"),
    ("{at: 1h, node: client, action: rekey_child, connection: vpn, child: web}",
     "x.yaml:37: actions[0].child: connection 'vpn' has no child 'web' (has net)"),
    ("{at: 25h, node: client, action: dpd, connection: vpn}", "x.yaml:37: actions[0].at: 90000s is not before the end"),
    ("{at: 1h, node: client, action: reboot, connection: vpn}", "x.yaml:37: actions[0].action: 'reboot' is not one of 'initiate', "),
])
def test_action_errors(action: str, expected: str) -> None:
    """Actions are checked against the nodes, the connections and their children, with the line."""
    with pytest.raises(ConfigError) as err:
        load_scenario_text(QUICK + "actions:\n  - " + action + "\n", "x.yaml")
    assert str(err.value).startswith(expected), str(err.value)


def test_action_node_must_be_an_end_of_its_connection() -> None:
    """An action on a node that is neither end of the connection is an error."""
    text = QUICK.replace("  gateway:\n", "  other:\n    addresses: [10.0.0.9]\n  gateway:\n", 1)
    with pytest.raises(ConfigError, match=r"^x.yaml:39: actions\[0\].node: node 'other' is not an end of connection 'vpn'"):
        load_scenario_text(text + "actions:\n  - {at: 1h, node: other, action: dpd, connection: vpn}\n", "x.yaml")


def test_valid_actions_and_yaml_text_load() -> None:
    """load_scenario takes YAML text too; a valid action survives validation unchanged."""
    m = load_scenario(QUICK + ACTIONS)
    assert [(a.at, a.node, a.action, a.connection, a.child) for a in m.actions] == [
        (7200.0, "gateway", "rekey_child", "vpn", "net")]


def test_every_error_is_reported_at_once() -> None:
    """Several pydantic errors come back together, one line each."""
    text = QUICK.replace("loss: 1%", "loss: 2").replace("rekey_time: 4h", "rekey_time: 4 hours")
    with pytest.raises(ConfigError) as err:
        load_scenario_text(text, "x.yaml")
    lines = str(err.value).splitlines()
    assert [ln.split(": ")[0:2] for ln in lines] == [["x.yaml:14", "links[0].loss"], ["x.yaml:28", "connections.vpn.ike.rekey_time"]]


CHILDREN = QUICK.replace("""    child:
      proposals: aes256gcm16
      rekey_time: 1h
      rand_time: 6min
      life_time: 66min
""", """    children:
      net:
        proposals: aes256gcm16
        rekey_time: 1h
      voip:
        proposals: aes128gcm16-x25519
        rekey_time: 20min
        local_ts: [10.1.0.0/16]
        remote_ts: [10.2.0.0/16]
        start: 2min
      web:
        rekey_time: 30min
""")


def test_children_give_each_side_every_child_policy() -> None:
    """`children` names several CHILD_SAs; traffic selectors are mirrored on the responder."""
    assert CHILDREN != QUICK
    m = load_scenario_text(CHILDREN)
    configs = {c.name: c for c in daemon_configs(m)}
    client, gw = configs["client"].connections[0], configs["gateway"].connections[0]
    assert [c.name for c in client.children] == ["net", "voip", "web"] == [c.name for c in gw.children]
    assert client.children[1].proposals == ("aes128gcm16-x25519",)
    assert client.children[1].local_ts == ("10.1.0.0/16",) and gw.children[1].local_ts == ("10.2.0.0/16",)
    assert gw.children[2].lifetime.rekey_time == 1800.0 and gw.children[2].lifetime.life_time == pytest.approx(1980.0)
    conn = m.connections["vpn"]
    assert [conn.child_start(i) for i in range(3)] == [None, 120.0, 10.0]


@pytest.mark.parametrize("edit,expected", [
    (("    children:\n", "    child: {rekey_time: 1h}\n    children:\n"), "give either child or children, not both"),
    (("        rekey_time: 1h\n", "        rekey_time: 1h\n        start: 1min\n"), "the first child is created by IKE_AUTH"),
])
def test_children_errors(edit: tuple[str, str], expected: str) -> None:
    """child and children exclude each other; the first child has no start."""
    with pytest.raises(ConfigError, match=r"^x.yaml:\d+: connections.vpn: " + expected):
        load_scenario_text(CHILDREN.replace(edit[0], edit[1], 1), "x.yaml")


def test_children_run_creates_the_extra_child_sas() -> None:
    """A scenario with children installs all three CHILD_SAs (two by CREATE_CHILD_SA)."""
    from ikesim.runner import run

    text = CHILDREN.replace("loss: 1%", "loss: 0")
    r = run(text, until=600.0)
    assert r.summary["sas"]["child_installed"] == 6  # three children on each node
    assert r.summary["exchanges_by_type"].get("create_child", 0) == 2


def test_certificate_credentials_are_deterministic_per_seed() -> None:
    """ecdsa scenarios get a CA and end-entity certs from the seed: same seed, same certs."""
    m = load_scenario(ROOT / "scenarios" / "certs-ecdsa.yaml")
    a = daemon_configs(m)[0].connections[0].credentials
    b = daemon_configs(m)[0].connections[0].credentials
    c = daemon_configs(m, seed=99)[0].connections[0].credentials
    assert a.certificate == b.certificate and a.certificate != c.certificate
    assert a.trust_anchors == b.trust_anchors and len(a.trust_anchors) == 1


def test_readme_example_scenario_is_valid() -> None:
    """The YAML example in README.md loads and builds (the docs cannot drift from the schema)."""
    import re

    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) == 4  # the scenario reference, the mobility example, the HA cluster example, coming back
    back = load_scenario_text(blocks[3], "README.md")
    assert back.fleet is not None and back.fleet.connection.ike.resumption is True
    assert [(a.at, a.node, a.action) for a in back.actions] == [(120.0, "gw", "restart")]
    assert back.nodes["gw"].ticket_secret == "kept across restarts" and back.aaa["radius"].capacity == 16
    ha = load_scenario_text(blocks[2], "README.md")
    cluster = ha.clusters["gw"]
    assert (cluster.members, cluster.mode, cluster.failover, len(cluster.events)) == (
        ["gw-a", "gw-b"], "active_passive", "stateful", 5)
    assert ha.fleet is not None and ha.fleet.clients == 100
    mobility = load_scenario_text(blocks[1], "README.md")
    assert {c.name for c in daemon_configs(mobility)} == {"phone", "gateway"}
    assert mobility.connections["vpn"].ike.mobike is True
    m = load_scenario_text(blocks[0], "README.md")
    configs = {c.name: c for c in daemon_configs(m)}
    client, gateway = configs["client"].connections[0], configs["gateway"].connections[0]
    assert client.children[0].lifetime.rekey_fraction == 0.7 and gateway.children[0].lifetime.rekey_fraction == 0.8
