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
    (("rekey_time: 1h", "rekey_time: abc"), "x.yaml:31: connections.vpn.child.rekey_time: Value error, invalid duration 'abc'"),
    (("    mtu: 1500", "    mtu: 1500\n    colour: red"), "x.yaml:16: links[0].colour: unknown key"),
    (("between: [client, gateway]", "between: [client, gw]"), "x.yaml:12: links[0].between[1]: unknown node 'gw'"),
    (("loss: 1%", "loss: 150%"), "x.yaml:14: links[0].loss: Value error, ratio '150%' is outside [0, 1]"),
    (("    initiator: client\n", "    initiator: laptop\n"), "x.yaml:18: connections.vpn.initiator: unknown node 'laptop'"),
    (("      method: psk\n      psk: quickstart-psk-0123456789\n", "      method: psk\n"),
     "x.yaml:20: connections.vpn.auth: Value error, method psk needs a non-empty psk"),
    (("duration: 24h\n", ""), "x.yaml:2: duration: Field required"),
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
