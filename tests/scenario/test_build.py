"""Scenario nodes -> DaemonConfig: the IKE_SA_INIT flood settings (RFC 7296 §2.6; strongSwan charon defaults)."""

from __future__ import annotations

import pytest

import ikesim
from ikesim.errors import ConfigError
from ikesim.scenario.build import daemon_configs
from ikesim.scenario.load import load_scenario

BASE = """\
name: flood
seed: 1
duration: 1h
nodes:
  client: {addresses: [10.0.0.1]}
  gateway: {addresses: [10.0.0.2]%s}
links:
  - between: [client, gateway]
connections:
  vpn:
    initiator: client
    responder: gateway
    auth: {method: psk, psk: flood-psk-0123456789}
"""


def _gateway(extra: str = ""):
    configs = {c.name: c for c in daemon_configs(load_scenario(BASE % extra))}
    return configs["gateway"]


def test_nodes_default_to_strongswan_flood_settings() -> None:
    """Without settings a node gets charon's cookie_threshold 30, cookie_threshold_ip 3, block_threshold 5, 30 s."""
    gw = _gateway()
    assert (gw.cookie_threshold, gw.cookie_threshold_ip, gw.block_threshold, gw.init_limit_half_open,
            gw.half_open_timeout) == (30, 3, 5, None, 30.0)


def test_flood_settings_reach_the_daemon() -> None:
    """Every flood setting of a node is passed to its daemon; null turns a threshold off."""
    gw = _gateway(", cookie_threshold: null, cookie_threshold_ip: 10, block_threshold: 20, "
                  "init_limit_half_open: 1000, half_open_timeout: 10s")
    assert (gw.cookie_threshold, gw.cookie_threshold_ip, gw.block_threshold, gw.init_limit_half_open,
            gw.half_open_timeout) == (None, 10, 20, 1000, 10.0)


def test_zero_turns_a_threshold_off_as_in_strongswan_conf() -> None:
    """strongswan.conf's 0 means off for all four thresholds: the daemon gets None (its 0 would mean "always")."""
    gw = _gateway(", cookie_threshold: 0, cookie_threshold_ip: 0, block_threshold: 0, init_limit_half_open: 0")
    assert (gw.cookie_threshold, gw.cookie_threshold_ip, gw.block_threshold, gw.init_limit_half_open) == (None, None, None, None)


def test_always_makes_every_ike_sa_init_carry_a_cookie() -> None:
    """``always`` is the daemon's 0: the first IKE_SA_INIT is answered with N(COOKIE) (RFC 7296 §2.6); with 0 (off) it is not."""
    gw = _gateway(", cookie_threshold: always, cookie_threshold_ip: always")
    assert (gw.cookie_threshold, gw.cookie_threshold_ip) == (0, 0)
    always = ikesim.run(load_scenario(BASE % ", cookie_threshold: always")).summary
    off = ikesim.run(load_scenario(BASE % ", cookie_threshold: 0, cookie_threshold_ip: 0")).summary
    assert always["exchange_outcomes"] == {"COOKIE": 1, "ok": 4} and always["sas"]["ike_established"] == 2
    assert off["exchange_outcomes"] == {"ok": 4} and off["sas"]["ike_established"] == 2


@pytest.mark.parametrize("extra,expected", [
    (", cookie_threshold_ip: -1", "<string>:6: nodes.gateway.cookie_threshold_ip: must be at least 0, got -1"),
    (", half_open_timeout: 0s", "<string>:6: nodes.gateway.half_open_timeout: must be more than 0 s"),
    (", init_limit_half_open: always", "<string>:6: nodes.gateway.init_limit_half_open: expected a whole number, got the text "
     "'always'"),
])
def test_impossible_flood_setting_is_an_error_naming_the_key(extra: str, expected: str) -> None:
    """A negative threshold, a half-open timeout of 0 s (no IKE_SA could ever finish) and 'always' where it means nothing."""
    with pytest.raises(ConfigError) as err:
        _gateway(extra)
    assert str(err.value) == expected
