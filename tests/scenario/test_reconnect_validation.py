"""Re-establishment, MOBIKE and reconnect keys of ``ike:`` (dpd_action, close_action, keyingtries, mobike*, roam,
liveness_probe): bad values are ConfigErrors naming file, line and key (exit 2 from the CLI); good ones reach
``IkePolicy`` unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from ikesim.cli import main
from ikesim.errors import ConfigError
from ikesim.ike.config import IkePolicy
from ikesim.scenario.build import daemon_configs
from ikesim.scenario.load import load_scenario_text

BASE = """\
name: v
seed: 1
duration: 1h
nodes:
  client: {addresses: [10.0.0.1]}
  gateway: {addresses: [10.0.0.2]}
links:
  - between: [client, gateway]
    delay: 10ms
connections:
  vpn:
    initiator: client
    responder: gateway
    ike: {rekey_time: 4h}
"""
_IKE = "    ike: {rekey_time: 4h}"
_KEY = "x.yaml:14: connections.vpn.ike."

CORPUS: list[tuple[str, str]] = [
    ("dpd_action: reboot", "dpd_action: 'reboot' is not one of 'clear', 'trap' or 'restart'"),
    ("dpd_action: none", "dpd_action: 'none' is not one of 'clear', 'trap' or 'restart'"),
    ("dpd_action: 3", "dpd_action: expected 'clear', 'trap' or 'restart', got the number 3"),
    ("close_action: clear", "close_action: 'clear' is not one of 'none', 'trap', 'restart' or 'start'"),
    ("close_action: [restart]", "close_action: expected 'none', 'trap', 'restart' or 'start', got a list"),
    ("keyingtries: -1", "keyingtries: must be at least 0, got -1"),
    ("keyingtries: 2.5", "keyingtries: expected a whole number, got the number 2.5"),
    ("keyingtries: '3'", "keyingtries: expected a whole number, got the text '3'"),
    ("keyingtries: .inf", "keyingtries: expected a whole number, got the number inf"),
    ("keyingtries: 4294967296", "keyingtries: must be at most 4294967295, got 4294967296"),
    ("mobike: maybe", "mobike: expected true or false, got the text 'maybe'"),
    ("mobike_no_nats: true", "mobike_no_nats: needs mobike: true (it acts only on a MOBIKE IKE_SA, RFC 4555)"),
    ("mobike: false, mobike_return_routability: true",
     "mobike_return_routability: needs mobike: true (it acts only on a MOBIKE IKE_SA, RFC 4555)"),
    ("mobike: true, mobike_no_nats: [true]", "mobike_no_nats: expected true or false, got a list"),
    ("roam: teleport", "roam: 'teleport' is not one of 'reauth', 'follow', 'keep' or 'smart'"),
    ("roam: Smart", "roam: 'Smart' is not one of 'reauth', 'follow', 'keep' or 'smart' (did you mean 'smart'?)"),
    ("roam: 3", "roam: expected 'reauth', 'follow', 'keep' or 'smart', got the number 3"),
    ("roam: [smart]", "roam: expected 'reauth', 'follow', 'keep' or 'smart', got a list"),
    ("roam: null", "roam: expected 'reauth', 'follow', 'keep' or 'smart', got nothing (null)"),
    ("roam: follow, mobike: true",
     "roam: 'follow' needs mobike: false (with MOBIKE the IKE_SA moves by MOBIKE, RFC 4555 §3.5); use 'reauth' or 'smart'"),
    ("mobike: true, roam: keep",
     "roam: 'keep' needs mobike: false (with MOBIKE the IKE_SA moves by MOBIKE, RFC 4555 §3.5); use 'reauth' or 'smart'"),
    ("liveness_probe: -5", "liveness_probe: negative duration -5"),
    ("liveness_probe: -1s", "liveness_probe: invalid duration '-1s' (use e.g. 30s, 66min, 1h30m, 500ms)"),
    ("liveness_probe: fast", "liveness_probe: invalid duration 'fast' (use e.g. 30s, 66min, 1h30m, 500ms)"),
    ("liveness_probe: true", "liveness_probe: invalid duration True"),
    ("liveness_probe: .inf", "liveness_probe: a duration must be finite (at most 100 years)"),
]
"""(keys added to ``ike:``, the message after ``file:line: key path``)."""


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as err:
        load_scenario_text(text, "x.yaml")
    return str(err.value)


@pytest.mark.parametrize("keys,expected", CORPUS, ids=[k for k, _ in CORPUS])
def test_bad_value_is_an_error_naming_file_line_and_key(keys: str, expected: str) -> None:
    assert _error(BASE.replace(_IKE, "    ike: {rekey_time: 4h, " + keys + "}")) == _KEY + expected


def test_cli_exits_2_on_a_bad_dpd_action(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``ikesim run`` prints file:line: key and exits 2, writing nothing."""
    path = tmp_path / "bad.yaml"
    path.write_text(BASE.replace(_IKE, "    ike:\n      rekey_time: 4h\n      dpd_action: restrat"))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    assert ("bad.yaml:16: connections.vpn.ike.dpd_action: 'restrat' is not one of 'clear', 'trap' or 'restart'"
            in capsys.readouterr().err)
    assert not out.exists()


def _policies(keys: str) -> tuple[IkePolicy, IkePolicy]:
    """(initiator's, responder's) IkePolicy of the tunnel with *keys* added to ``ike:``."""
    m = load_scenario_text(BASE.replace(_IKE, "    ike: {rekey_time: 4h" + keys + "}"), "x.yaml")
    client, gateway = daemon_configs(m)
    return client.connections[0].ike, gateway.connections[0].ike


def test_values_reach_both_sides_ike_policy_and_start_is_restart() -> None:
    """Every key reaches both ends' IkePolicy; swanctl.conf's ``close_action: start`` is ``restart``."""
    keys = (", dpd_action: trap, close_action: start, keyingtries: 0, mobike: true, mobike_no_nats: true, "
            "mobike_return_routability: true")
    for pol in _policies(keys):
        assert (pol.dpd_action, pol.close_action, pol.keyingtries, pol.mobike, pol.mobike_no_nats,
                pol.mobike_return_routability) == ("trap", "restart", 0, True, True, True)
    client, _ = _policies(", dpd_action: restart, close_action: restart, keyingtries: 5")
    assert (client.dpd_action, client.close_action, client.keyingtries) == ("restart", "restart", 5)


@pytest.mark.parametrize("keys,roam,probe", [
    (", roam: follow, liveness_probe: 10s", "follow", 10.0),
    (", roam: keep, liveness_probe: 500ms", "keep", 0.5),
    (", roam: smart, mobike: true, liveness_probe: 1m", "smart", 60.0),
    (", roam: reauth, mobike: true", "reauth", 0.0),
])
def test_roam_and_liveness_probe_reach_both_sides_ike_policy(keys: str, roam: str, probe: float) -> None:
    """``roam`` and ``liveness_probe`` (a duration) reach both ends' IkePolicy (only the client acts on them)."""
    for pol in _policies(keys):
        assert (pol.roam, pol.liveness_probe) == (roam, probe)


def test_defaults_are_strongswans_and_ikepolicys() -> None:
    """Without the keys the policies are IkePolicy's defaults (strongSwan's, MOBIKE off): existing runs are unchanged."""
    default = IkePolicy()
    for pol in _policies(""):
        assert (pol.dpd_action, pol.close_action, pol.keyingtries, pol.mobike, pol.mobike_no_nats,
                pol.mobike_return_routability) == ("clear", "none", 1, False, False, False)
        assert (pol.dpd_action, pol.close_action, pol.keyingtries, pol.mobike) == (
            default.dpd_action, default.close_action, default.keyingtries, default.mobike)
        assert (pol.roam, pol.liveness_probe) == (default.roam, default.liveness_probe) == ("reauth", 0.0)
