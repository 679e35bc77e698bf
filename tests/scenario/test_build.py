"""Scenario nodes -> DaemonConfig: the IKE_SA_INIT flood settings (RFC 7296 §2.6; strongSwan charon defaults)."""

from __future__ import annotations

import pytest

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


def test_negative_threshold_is_an_error_naming_the_key() -> None:
    """A negative threshold is refused with the file line and key."""
    with pytest.raises(ConfigError, match=r"<string>:6: nodes.gateway.cookie_threshold_ip"):
        _gateway(", cookie_threshold_ip: -1")
