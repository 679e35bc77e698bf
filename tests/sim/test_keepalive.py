"""NAT-T keepalives as datagrams (RFC 3948 §2.3): sent only after nat_keepalive s with nothing else to the peer."""

from __future__ import annotations

import ikesim
from ikesim.scenario.load import load_scenario

SCENARIO = """
name: ka
seed: 1
duration: 200s
nodes:
  client: {{addresses: [192.168.1.10]}}
  gateway: {{addresses: [198.51.100.1]}}
nats:
  home: {{public: 203.0.113.7, inside: [client], idle_timeout: 2min}}
links:
  - {{between: [client, home], delay: 1ms}}
  - {{between: [home, gateway], delay: 20ms}}
connections:
  vpn:
    initiator: client
    responder: gateway
    ike: {{rekey_time: 0, nat_keepalive: 20s}}
    child: {{rekey_time: 0, life_time: 0}}
{extra}
"""


def _keepalives(r: ikesim.Results) -> list[float]:
    p = r.packets
    return p[(p["ike_length"] == 1)]["time_sent"].round(6).tolist()


def test_an_idle_client_sends_a_keepalive_every_interval_after_its_last_datagram() -> None:
    """IKE_AUTH's request (floated to 4500) leaves at 0.044 s: keepalives at 20.044, 40.044, ... 180.044 s, each
    one 0xFF octet from the client's 4500 to the gateway's 4500 without the non-ESP marker (29-byte IP packets)."""
    r = ikesim.run(load_scenario(SCENARIO.format(extra="")))
    ka = r.packets[r.packets["ike_length"] == 1]
    first = r.packets[(r.packets["node"] == "client")]["time_sent"].iloc[1]  # IKE_AUTH
    assert _keepalives(r) == [round(first + 20 * k, 6) for k in range(1, 10)]
    assert set(ka["src"]) == {"192.168.1.10[4500]"} and set(ka["dst"]) == {"198.51.100.1[4500]"}
    assert set(ka["size"]) == {29} and set(ka["fate"]) == {"delivered"}
    assert r.summary["nat"]["keepalives"] == 9


def test_traffic_to_the_peer_suppresses_keepalives() -> None:
    """ESP from the client every second from 5 s to 100 s: no keepalive until 20 s after the last packet."""
    extra = "traffic:\n  - {connection: vpn, direction: forward, rate: 1, size: 100, start: 5s, stop: 100.5s}"
    r = ikesim.run(load_scenario(SCENARIO.format(extra=extra)))
    assert _keepalives(r) == [120.0, 140.0, 160.0, 180.0]  # the last packet went at 100 s
    assert r.summary["traffic"]["lost"] == 0


def test_analytic_keepalives_send_no_datagrams() -> None:
    r = ikesim.run(load_scenario(SCENARIO.format(extra="data_plane: {keepalives: analytic}")))
    assert _keepalives(r) == [] and r.summary["nat"]["keepalives"] == 9
