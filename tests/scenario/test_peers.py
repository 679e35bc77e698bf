"""Per-peer settings (``peers:``): each end its own proposals, lifetimes, retransmission and DPD, as two swanctl.conf."""

from __future__ import annotations

import pytest

from ikesim.errors import ConfigError
from ikesim.ike.config import Lifetime, RetransmitPolicy
from ikesim.scenario.build import daemon_configs
from ikesim.scenario.load import load_scenario_text

BASE = """\
name: peers
duration: 2h
nodes:
  client: {addresses: [10.0.0.1]}
  gateway: {addresses: [10.0.0.2]}
links:
  - between: [client, gateway]
    delay: 25ms
connections:
  vpn:
    initiator: client
    responder: gateway
    auth: {method: psk, psk: peers-psk}
    ike: {rekey_time: 1h, dpd_delay: 30s}
    child: {rekey_time: 20min, local_ts: [10.1.0.0/16], remote_ts: [10.2.0.0/16]}
"""

PEERS = """\
    peers:
      gateway:
        ike: {proposals: [aes128-sha256-modp2048, aes256gcm16-prfsha256-x25519], rand_time: 1min, retransmit: libreswan}
        child: {rekey_time: 15min, rand_time: 1min, local_ts: [10.2.0.0/16, 10.3.0.0/16]}
      initiator:
        ike: {dpd_delay: 10s}
"""


def _configs(text: str) -> dict[str, object]:
    return {d.name: d.connections[0] for d in daemon_configs(load_scenario_text(text, "x.yaml"))}


def test_each_end_gets_its_own_policies() -> None:
    """A peer's keys replace the connection's key by key; the rest stays the connection's."""
    c = _configs(BASE + PEERS)
    client, gw = c["client"], c["gateway"]
    assert client.ike.proposals == ("aes256gcm16-prfsha256-x25519",)
    assert client.ike.lifetime == Lifetime(rekey_time=3600.0, life_time=3960.0, rand_time=360.0)
    assert client.ike.dpd_delay == 10.0
    assert client.ike.retransmit == RetransmitPolicy.strongswan()
    assert gw.ike.proposals == ("aes128-sha256-modp2048", "aes256gcm16-prfsha256-x25519")
    assert gw.ike.lifetime == Lifetime(rekey_time=3600.0, life_time=3960.0, rand_time=60.0)
    assert gw.ike.dpd_delay == 30.0
    assert gw.ike.retransmit == RetransmitPolicy.libreswan()
    (cc,), (gc,) = client.children, gw.children
    assert cc.lifetime == Lifetime(rekey_time=1200.0, life_time=1.1 * 1200.0, rand_time=1.1 * 1200.0 - 1200.0)
    assert gc.lifetime == Lifetime(rekey_time=900.0, life_time=1.1 * 900.0, rand_time=60.0)


def test_a_peers_selectors_are_its_own_view() -> None:
    """The gateway's local_ts is its own subnet (its swanctl.conf's), the client's remote_ts."""
    c = _configs(BASE + PEERS)
    (cc,), (gc,) = c["client"].children, c["gateway"].children
    assert (cc.local_ts, cc.remote_ts) == (("10.1.0.0/16",), ("10.2.0.0/16",))
    assert (gc.local_ts, gc.remote_ts) == (("10.2.0.0/16", "10.3.0.0/16"), ("10.1.0.0/16",))


def test_no_peers_and_empty_peers_build_the_same_configs() -> None:
    """``peers`` that override nothing change nothing (existing scenarios keep their meaning)."""
    empty = BASE + "    peers: {initiator: {}, gateway: {ike: {}, child: {}}}\n"
    assert daemon_configs(load_scenario_text(BASE)) == daemon_configs(load_scenario_text(empty))


def test_rekey_fraction_stays_a_per_side_shorthand() -> None:
    """``rekey_fraction: {initiator:, responder:}`` still staggers the two ends; a peer may give its own."""
    text = BASE.replace("child: {rekey_time: 20min,", "child: {rekey_time: 20min, rekey_fraction: {initiator: 0.7, responder: 0.8},")
    c = _configs(text)
    assert c["client"].children[0].lifetime.rekey_fraction == 0.7
    assert c["gateway"].children[0].lifetime.rekey_fraction == 0.8
    c = _configs(text + "    peers: {responder: {child: {rekey_fraction: 0.9}}}\n")
    assert c["client"].children[0].lifetime.rekey_fraction == 0.7
    assert c["gateway"].children[0].lifetime.rekey_fraction == 0.9


def test_children_per_peer() -> None:
    """With ``children``, a peer overrides the ones it names; the others stay the connection's."""
    text = BASE.replace("    child: {rekey_time: 20min, local_ts: [10.1.0.0/16], remote_ts: [10.2.0.0/16]}\n",
                        "    children:\n      a: {rekey_time: 20min}\n      b: {rekey_time: 30min}\n")
    c = _configs(text + "    peers: {gateway: {children: {b: {rekey_time: 10min}}}}\n")
    assert [(p.name, p.lifetime.rekey_time) for p in c["client"].children] == [("a", 1200.0), ("b", 1800.0)]
    assert [(p.name, p.lifetime.rekey_time) for p in c["gateway"].children] == [("a", 1200.0), ("b", 600.0)]


@pytest.mark.parametrize(("peers", "message"), [
    ("{router: {}}", "x.yaml:10: connections.vpn: peers: 'router' is neither initiator nor responder nor one of the "
                     "connection's nodes (client, gateway)"),
    ("{client: {}, initiator: {}}", "x.yaml:10: connections.vpn: peers: 'client' and 'initiator' are the same end "
                                    "(the initiator)"),
    ("{gateway: {children: {x: {}}}}", "x.yaml:10: connections.vpn: peers.gateway.children: the connection has no "
                                       "children (it has one child: give peers.gateway.child)"),
    ("{gateway: {child: {start: 1min}}}", "x.yaml:10: connections.vpn: peers.gateway.child.start: start is the "
                                          "connection's (when the initiator creates the child): give it there"),
    ("{gateway: {ike: {life_time: 50min}}}", "x.yaml:16: connections.vpn.peers.gateway.ike.life_time: life_time 3000s "
                                             "must be longer than rekey_time 3600s (the SA would expire before it is "
                                             "rekeyed)"),
    ("{gateway: {ike: {rekey_tme: 1h}}}", "x.yaml:16: connections.vpn.peers.gateway.ike.rekey_tme: unknown key"),
])
def test_bad_peers_name_file_line_and_key(peers: str, message: str) -> None:
    """A peers entry that names no end, one end twice, a child the connection lacks or an invalid merge is refused."""
    with pytest.raises(ConfigError) as exc:
        load_scenario_text(BASE + f"    peers: {peers}\n", "x.yaml")
    assert str(exc.value).splitlines()[0].startswith(message), str(exc.value)


def test_fleet_peers_by_role() -> None:
    """A fleet template names the ends by role (its clients have no names yet); every client gets the override."""
    text = """\
name: f
duration: 1h
fleet:
  clients: 2
  client_subnet: 10.8.0.0/24
  gateway: gateway
  gateway_address: 10.0.0.1
  link: {delay: 10ms}
  connection:
    child: {rekey_time: 20min}
    peers: {responder: {child: {rekey_time: 10min}}}
"""
    m = load_scenario_text(text, "f.yaml")
    configs = {d.name: d.connections for d in daemon_configs(m)}
    assert {c.children[0].lifetime.rekey_time for c in configs["gateway"]} == {600.0}
    assert [c.children[0].lifetime.rekey_time for n, cs in configs.items() if n != "gateway" for c in cs] == [1200.0] * 2


def test_readme_peers_example_loads() -> None:
    """The ``peers`` example of README.md gives the values its text promises (docs cannot drift)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"```yaml peers\n(.*?)```", readme, re.S)
    assert block is not None
    base = ("name: readme\nduration: 2min\nnodes:\n  client: {addresses: [10.0.0.1]}\n  gateway: {addresses: [10.0.0.2]}\n"
            "links:\n  - {between: [client, gateway]}\n")
    c = {d.name: d.connections[0] for d in daemon_configs(load_scenario_text(base + block.group(1), "README.md"))}
    assert (c["client"].ike.dpd_delay, c["gateway"].ike.dpd_delay) == (10.0, 30.0)
    assert c["gateway"].ike.retransmit == RetransmitPolicy.libreswan()
    assert c["gateway"].children[0].lifetime == Lifetime(rekey_time=900.0, life_time=1.1 * 900.0, rand_time=60.0)


def test_each_end_acts_on_its_own_settings_in_a_run() -> None:
    """The gateway's own 10 min CHILD rekey_time drives every rekey, 10 min after the last (25 ms links; the client's
    is 20 min); its own proposal list still finds the client's proposal (RFC 7296 §2.7: the responder picks from what
    it is offered)."""
    from ikesim.runner import run

    text = BASE.replace("duration: 2h", "duration: 35min").replace(
        "    ike: {rekey_time: 1h, dpd_delay: 30s}\n", "    ike: {rekey_time: 4h}\n").replace(
        "    child: {rekey_time: 20min, local_ts: [10.1.0.0/16], remote_ts: [10.2.0.0/16]}\n",
        "    child: {rekey_time: 20min, rand_time: 0, life_time: 30min}\n")
    text += ("    peers:\n      gateway:\n        ike: {proposals: [aes128-sha256-modp2048, aes256gcm16-prfsha256-x25519]}\n"
             "        child: {rekey_time: 10min, life_time: 15min}\n")
    e = run(load_scenario_text(text, "x.yaml")).events
    est = e[e.event == "IkeSaEstablished"]
    assert est[["node", "encr", "prf", "group"]].values.tolist() == [["gateway", "aes256gcm16", "prfsha256", "x25519"],
                                                                     ["client", "aes256gcm16", "prfsha256", "x25519"]]
    rekeys = [(round(t, 6), n, k) for t, n, k in e[e.event == "RekeyStarted"][["time", "node", "kind"]].values.tolist()]
    assert rekeys == [(600.075, "gateway", "child"), (1200.125, "gateway", "child"), (1800.175, "gateway", "child")]
