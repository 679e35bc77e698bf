"""Impossible interfaces and movements are ConfigErrors naming file, line and key (exit 2 from the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ikesim.cli import main
from ikesim.errors import ConfigError
from ikesim.scenario.load import load_scenario_text

PHONE = """\
name: phone
seed: 7
duration: 10min
nodes:
  phone:
    interfaces:
      wlan: {address: 192.168.1.10, priority: 1, link: {to: home, delay: 5ms}}
      lte:  {address: 100.64.0.10, priority: 2, link: {to: internet, delay: 40ms}, up: false}
    mobility:
      script: [{at: 60s, up: lte}, {at: 61s, down: wlan}, {at: 2min, up: wlan}]
  gw: {addresses: [198.51.100.1]}
nats:
  home: {public: 203.0.113.7, inside: [phone/wlan]}
routers:
  internet: {}
links:
  - {between: [home, internet], delay: 10ms}
  - {between: [internet, gw], delay: 10ms}
connections:
  vpn: {initiator: phone, responder: gw}
"""

FLEET = """\
name: movers
seed: 3
duration: 20min
fleet:
  clients: 3
  interfaces:
    wlan: {subnet: 10.1.0.0/24, priority: 1, link: {delay: 5ms}, nat: {public_subnet: 100.64.0.0/24}}
    lte: {subnet: 10.2.0.0/24, priority: 2, link: {delay: 40ms}, up: false}
  mobility: {random_dwell: {mean: 2min, interfaces: [wlan, lte], make_before_break: false, gap: 3s}}
"""

_S = "script: [{at: 60s, up: lte}, {at: 61s, down: wlan}, {at: 2min, up: wlan}]"
_W = "wlan: {address: 192.168.1.10, priority: 1, link: {to: home, delay: 5ms}}"
_L = "lte:  {address: 100.64.0.10, priority: 2, link: {to: internet, delay: 40ms}, up: false}"
_GW = "gw: {addresses: [198.51.100.1]}"
_TO = "link: {to: home, delay: 5ms}"
_FLEET_IFACES = FLEET[FLEET.index("  interfaces:"):FLEET.index("  mobility:")]

CORPUS: list[tuple[str, str, str]] = [
    # a node has addresses or interfaces, not both, not neither
    (_GW, "gw: {cookie_threshold: 3}", "x.yaml:11: nodes.gw: give addresses (a list of IP addresses) or interfaces"),
    (_GW, "gw: {addresses: []}", "x.yaml:11: nodes.gw.addresses: expected at least 1 entry, got 0"),
    ("  phone:\n", "  phone:\n    addresses: [10.0.0.1]\n", "x.yaml:5: nodes.phone: give addresses or interfaces, not both "
     "(the addresses of a node with interfaces are theirs)"),
    ("    interfaces:\n", "    interfaces: {}\n    old:\n", "x.yaml:6: nodes.phone.interfaces: give at least one interface\n"
     "x.yaml:7: nodes.phone.old: unknown key (known here: addresses, interfaces, mobility, cookie_threshold, "
     "cookie_threshold_ip, block_threshold, init_limit_half_open, half_open_timeout, ticket_secret, "
     "ticket_key_rotation, cpu, processing)"),
    (_W, _W.replace("wlan", "wl an", 1), "x.yaml:6: nodes.phone.interfaces: interface name 'wl an' may contain only "
     "letters, digits, '_', '-' and '.'"),
    # an interface's own fields
    ("address: 192.168.1.10,", "address: 192.168.1.300,", "x.yaml:7: nodes.phone.interfaces.wlan.address: invalid IP "
     "address '192.168.1.300'"),
    (", link: {to: home, delay: 5ms}}", "}", "x.yaml:7: nodes.phone.interfaces.wlan.link: required key missing"),
    ("priority: 1,", "priority: -1,", "x.yaml:7: nodes.phone.interfaces.wlan.priority: must be at least 0, got -1"),
    ("up: false}", "up: maybe}", "x.yaml:8: nodes.phone.interfaces.lte.up: expected true or false, got the text 'maybe'"),
    (_TO, "link: {to: home, delay: 5ms, cost: [1, 2]}", "x.yaml:7: nodes.phone.interfaces.wlan.link.cost: unknown key "
     "(known here: delay, jitter, reorder, bandwidth, queue, loss, duplicate, down, mtu, drop_fragments, to)"),
    # duplicate addresses: on two interfaces, on an interface and another node
    (_L, _L.replace("100.64.0.10", "192.168.1.10"), "x.yaml:8: nodes.phone.interfaces.lte.address: address 192.168.1.10 "
     "is also on interface 'phone/wlan'"),
    (_GW, "gw: {addresses: [192.168.1.10]}", "x.yaml:11: nodes.gw.addresses[0]: address 192.168.1.10 is also on interface "
     "'phone/wlan'"),
    # links: an interface's link ends at a known node without interfaces; a node with interfaces has no links:
    (_TO, "link: {to: hme, delay: 5ms}", "x.yaml:7: nodes.phone.interfaces.wlan.link.to: unknown node 'hme'"),
    (_TO, "link: {to: phone, delay: 5ms}", "x.yaml:7: nodes.phone.interfaces.wlan.link.to: node 'phone' has interfaces: "
     "a link cannot end at it"),
    ("  - {between: [internet, gw], delay: 10ms}", "  - {between: [internet, gw], delay: 10ms}\n  - {between: [phone, gw]}",
     "x.yaml:19: links[2].between[0]: node 'phone' has interfaces: its links are interfaces.<name>.link"),
    ("  - {between: [internet, gw], delay: 10ms}\n", "", "x.yaml:19: connections.vpn: no route from phone to gw (no "
     "chain of links joins them)"),
    # NATs name a node or one of its interfaces
    ("inside: [phone/wlan]", "inside: [phone/wifi]", "x.yaml:13: nats.home.inside[0]: node 'phone' has no interface 'wifi'"),
    ("inside: [phone/wlan]", "inside: [phon/wlan]", "x.yaml:13: nats.home.inside[0]: unknown node 'phon'"),
    # scripts
    (_S, "script: [{at: 60s, up: lte}, {at: 61s, down: wifi}]", "x.yaml:10: nodes.phone.mobility.script[1].down: no "
     "interface 'wifi' (interfaces: wlan, lte)"),
    (_S, "script: [{at: 60s, up: lte, down: wlan}]", "x.yaml:10: nodes.phone.mobility.script[0]: give up: <interface> or "
     "down: <interface> (one of them)"),
    (_S, "script: [{at: 60s}]", "x.yaml:10: nodes.phone.mobility.script[0]: give up: <interface> or down: <interface> "
     "(one of them)"),
    ("{at: 2min, up: wlan}", "{at: 20min, up: wlan}", "x.yaml:10: nodes.phone.mobility.script[2].at: 1200s is not before "
     "the end of the run (600s)"),
    (_S, "script: [{at: 60s, up: lte}]\n      commuter: {period: 1h, interfaces: [wlan, lte]}", "x.yaml:9: "
     "nodes.phone.mobility: give one of script, commuter or random_dwell (not script and commuter)"),
    (_GW, "gw: {addresses: [198.51.100.1], mobility: {commuter: {period: 1h, interfaces: [a, b]}}}", "x.yaml:11: nodes.gw: "
     "mobility moves between interfaces: give the node interfaces instead of addresses"),
    # commuters and random dwells
    (_S, "commuter: {period: 1h, interfaces: [wlan, lte, wlan]}", "x.yaml:10: nodes.phone.mobility.commuter.interfaces: "
     "expected at most 2 entries, got 3"),
    (_S, "commuter: {period: 2s, interfaces: [wlan, lte], overlap: 2s}", "x.yaml:10: nodes.phone.mobility.commuter: a "
     "switch (2s) must be shorter than the period (2s)"),
    (_S, "commuter: {period: 1h, interfaces: [wlan, lte], gap: 2s}", "x.yaml:10: nodes.phone.mobility.commuter: gap is the "
     "pause of a break-before-make switch: give overlap with make_before_break: true"),
    (_S, "commuter: {period: 1h, interfaces: [wlan, lte], make_before_break: false, overlap: 2s}", "x.yaml:10: "
     "nodes.phone.mobility.commuter: overlap belongs to a make-before-break switch: give gap with make_before_break: false"),
    (_S, "commuter: {period: 1h, interfaces: [lte, wlan]}", "x.yaml:8: nodes.phone.interfaces.lte.up: mobility.commuter "
     "starts on lte: it must start up\nx.yaml:7: nodes.phone.interfaces.wlan.up: mobility.commuter starts on lte: wlan "
     "must start down (up: false)"),
    (_S, "commuter: {period: 1h, interfaces: [wlan, lte], gap: .nan}", "x.yaml:10: nodes.phone.mobility.commuter.gap: a "
     "duration must be a number of seconds, not NaN"),
    (_S, "random_dwell: {mean: 0s, interfaces: [wlan, lte]}", "x.yaml:10: nodes.phone.mobility.random_dwell.mean: must be "
     "more than 0 s"),
    (_S, "random_dwell: {mean: 1min, interfaces: [wlan, wlan]}", "x.yaml:10: nodes.phone.mobility.random_dwell: an "
     "interface is listed twice in ['wlan', 'wlan']"),
    (_S, "random_dwell: {mean: 1min, interfaces: [wlan]}", "x.yaml:10: nodes.phone.mobility.random_dwell.interfaces: "
     "expected at least 2 entries, got 1"),
    (_S, "random_dwell: {mean: 1min, interfaces: [wlan, lte, eth]}", "x.yaml:10: "
     "nodes.phone.mobility.random_dwell.interfaces[2]: no interface 'eth' (interfaces: wlan, lte)"),
    # fleet mode's data plane has no interfaces
    ("connections:\n", "data_plane: {mode: fleet}\nconnections:\n", "x.yaml:19: data_plane.mode: fleet mode does not model "
     "interfaces (ikesim.sim.mobility): use mode: packet"),
]

FLEET_CORPUS: list[tuple[str, str, str]] = [
    ("  clients: 3\n", "  clients: 3\n  link: {delay: 1ms}\n", "x.yaml:4: fleet: with interfaces, each interface has its own "
     "subnet, link and nat: link cannot be given"),
    ("  clients: 3\n", "  clients: 3\n  client_subnet: 10.9.0.0/24\n", "x.yaml:4: fleet: with interfaces, each interface "
     "has its own subnet, link and nat: client_subnet cannot be given"),
    ("  clients: 3\n", "  clients: 3\n  nat: {}\n", "x.yaml:4: fleet: with interfaces, each interface has its own subnet, "
     "link and nat: nat cannot be given"),
    ("  interfaces:\n", "  interfaces: {}\n  x:\n", "x.yaml:6: fleet.interfaces: give at least one interface\n"
     "x.yaml:7: fleet.x: unknown key"),
    ("interfaces: [wlan, lte]", "interfaces: [wlan, wifi]", "x.yaml:9: fleet.mobility.random_dwell.interfaces[1]: no "
     "interface 'wifi' (interfaces: wlan, lte)"),
    ("up: false}", "up: true}", "x.yaml:8: fleet.interfaces.lte.up: mobility.random_dwell starts on wlan: lte must start "
     "down (up: false)"),
    ("subnet: 10.2.0.0/24", "subnet: 10.1.0.0/25", "x.yaml:4: fleet: interfaces.wlan.subnet 10.1.0.0/24 overlaps "
     "interfaces.lte.subnet 10.1.0.0/25"),
    ("subnet: 10.2.0.0/24", "subnet: 100.64.0.0/24", "x.yaml:4: fleet: interfaces.wlan.nat.public_subnet 100.64.0.0/24 "
     "overlaps interfaces.lte.subnet 100.64.0.0/24"),
    ("subnet: 10.2.0.0/24", "subnet: 10.2.0.0/31", "x.yaml:4: fleet: interfaces.lte.subnet 10.2.0.0/31 has 2 client "
     "addresses, fewer than clients (3)"),
    ("subnet: 10.2.0.0/24", "subnet: 10.2.0.1/24", "x.yaml:8: fleet.interfaces.lte.subnet: invalid subnet '10.2.0.1/24': "
     "10.2.0.1/24 has host bits set"),
    ("public_subnet: 100.64.0.0/24", "public_subnet: 100.64.0.0/31", "x.yaml:4: fleet: interfaces.wlan.nat.public_subnet "
     "100.64.0.0/31 has 2 addresses, fewer than the 3 NATs"),
    ("link: {delay: 40ms}", "link: {to: carrier, delay: 40ms}", "x.yaml:8: fleet.interfaces.lte.link.to: unknown node "
     "'carrier'"),
    ("  clients: 3\n", "  clients: 3\n  gateway_address: 10.2.0.2\n", "x.yaml:6: fleet.gateway_address: 10.2.0.2 is one of "
     "the client addresses (10.2.0.1 .. 10.2.0.3)"),
    ("duration: 20min\n", "duration: 20min\nnodes:\n  x: {addresses: [10.2.0.3]}\n", "x.yaml:6: fleet: nodes.x.addresses[0] "
     "10.2.0.3 is the address of fleet client number 2"),
    ("duration: 20min\n", "duration: 20min\ndata_plane: {mode: fleet}\n", "x.yaml:4: data_plane.mode: fleet mode does not "
     "model interfaces (ikesim.sim.mobility): use mode: packet"),
    (_FLEET_IFACES, "", "x.yaml:4: fleet: mobility moves between interfaces: give the fleet interfaces"),
    ("duration: 20min\n", "duration: 20min\nnodes:\n  gw:\n    interfaces: {eth: {address: 10.255.255.254, link: {to: r}}}\n"
     "routers:\n  r: {}\n", "x.yaml:9: fleet.gateway: node 'gw' has interfaces: the clients' links cannot end at it"),
]


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as err:
        load_scenario_text(text, "x.yaml")
    return str(err.value)


def test_base_scenarios_are_valid() -> None:
    """The corpora edit two valid scenarios."""
    assert load_scenario_text(PHONE, "x.yaml").nodes["phone"].addresses == ["192.168.1.10", "100.64.0.10"]
    assert load_scenario_text(FLEET, "x.yaml").fleet is not None


@pytest.mark.parametrize("old,new,expected", CORPUS, ids=[f"{i}:{c[1].strip()[:40]}" for i, c in enumerate(CORPUS)])
def test_bad_interfaces_are_errors_naming_file_line_and_key(old: str, new: str, expected: str) -> None:
    """Each impossible multi-homed node gives exactly this ``file:line: key: message``."""
    assert old in PHONE
    assert _error(PHONE.replace(old, new, 1)) == expected


@pytest.mark.parametrize("old,new,expected", FLEET_CORPUS, ids=[f"{i}:{c[1].strip()[:40]}" for i, c in enumerate(FLEET_CORPUS)])
def test_bad_fleet_interfaces_are_errors_naming_file_line_and_key(old: str, new: str, expected: str) -> None:
    """Each impossible fleet of multi-homed clients gives exactly this ``file:line: key: message``."""
    assert old in FLEET
    assert _error(FLEET.replace(old, new, 1)) == expected


def test_a_route_through_any_interface_will_do() -> None:
    """Without internet-gw, lte linked straight to gw still joins phone and gw: no error."""
    text = PHONE.replace("  - {between: [internet, gw], delay: 10ms}\n", "").replace("{to: internet, delay: 40ms}",
                                                                                     "{to: gw, delay: 40ms}")
    assert load_scenario_text(text, "x.yaml").nodes["phone"].interfaces["lte"].link.to == "gw"  # type: ignore[index]


def test_no_message_is_in_pydantic_words() -> None:
    """No message of either corpus quotes pydantic."""
    phrases = ("Input should be", "instance of", "For further information", "pydantic", "Field required", "Value error",
               "Extra inputs", "Assertion failed", "validation error", "String should")
    messages = [_error(PHONE.replace(o, n, 1)) for o, n, _ in CORPUS] + [_error(FLEET.replace(o, n, 1)) for o, n, _ in FLEET_CORPUS]
    for msg in messages:
        assert not any(p.lower() in msg.lower() for p in phrases), msg


def test_cli_run_exits_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``ikesim run`` on a script naming an unknown interface prints file:line: key and exits 2."""
    path = tmp_path / "bad.yaml"
    path.write_text(PHONE.replace(_S, "script: [{at: 60s, up: wifi}]"))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    assert f"{path}:10: nodes.phone.mobility.script[0].up: no interface 'wifi' (interfaces: wlan, lte)" in capsys.readouterr().err
    assert not out.exists()
