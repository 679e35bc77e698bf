"""Scenarios that cannot be right are ConfigErrors in ikesim's words, naming file, line and key (exit 2 from the CLI)."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

from ikesim.check import check_file
from ikesim.cli import main
from ikesim.errors import ConfigError
from ikesim.rng import Rng
from ikesim.scenario.build import build_simulation
from ikesim.scenario.durations import MAX_DURATION, parse_duration, parse_ratio
from ikesim.scenario.load import load_scenario_text

ROOT = Path(__file__).resolve().parents[2]

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
    loss: 1%
connections:
  vpn:
    initiator: client
    responder: gateway
    ike: {rekey_time: 4h}
    child:
      rekey_time: 1h
      life_time: 66min
"""

_LINK = "links:\n  - between: [client, gateway]\n    delay: 10ms\n    loss: 1%\n"
_IKE = "    ike: {rekey_time: 4h}"
_LIFE = "      life_time: 66min"
_MORE = "connections:\n"
"""Inserting before ``connections:`` (line 11) puts a new top-level block at line 11."""

CORPUS: list[tuple[str, str, str]] = [
    # durations: NaN, infinity, negative, zero run, absurd sizes -- on every kind of duration field
    ("duration: 1h", "duration: .inf", "x.yaml:3: duration: a duration must be finite (at most 100 years)"),
    ("duration: 1h", "duration: .nan", "x.yaml:3: duration: a duration must be a number of seconds, not NaN"),
    ("duration: 1h", "duration: 0", "x.yaml:3: duration: must be more than 0 s"),
    ("duration: 1h", "duration: 1000000d", "x.yaml:3: duration: duration '1000000d' is longer than 100 years"),
    ("duration: 1h", "duration: 1.0e+400", "x.yaml:3: duration: a duration must be finite (at most 100 years)"),
    ("duration: 1h", "duration: 1" + "0" * 400, "x.yaml:3: duration: a duration must be finite (at most 100 years)"),
    ("    delay: 10ms", "    delay: .inf", "x.yaml:9: links[0].delay: a duration must be finite (at most 100 years)"),
    ("    delay: 10ms", "    delay: 10ms\n    jitter: .nan", "x.yaml:10: links[0].jitter: a duration must be a number of seconds, not NaN"),
    ("    delay: 10ms", "    delay: {dist: normal, mean: 10ms, sd: .inf}",
     "x.yaml:9: links[0].delay.sd: a duration must be finite (at most 100 years)"),
    ("    delay: 10ms", "    delay: 10ms\n    down: [{from: 1min, until: .inf}]",
     "x.yaml:10: links[0].down[0].until: a duration must be finite (at most 100 years)"),
    ("    delay: 10ms", "    delay: 10ms\n    cost: [.nan, 1]", "x.yaml:10: links[0].cost[0]: expected a finite number, got nan"),
    ("    delay: 10ms", "    delay: 10ms\n    bandwidth: .inf", "x.yaml:10: links[0].bandwidth: expected a finite number, got inf"),
    (_IKE, "    ike: {rekey_time: 4h, retransmit: {base: .inf}}",
     "x.yaml:15: connections.vpn.ike.retransmit.base: expected a finite number, got inf"),
    (_IKE, "    ike: {rekey_time: 40000d}", "x.yaml:15: connections.vpn.ike.rekey_time: duration '40000d' is longer than 100 years"),
    (_MORE, "faults:\n  - {action: drop, after: .inf}\n" + _MORE, "x.yaml:12: faults[0].after: a duration must be finite (at "
     "most 100 years)"),
    (_MORE, "nats:\n  home: {public: 203.0.113.3, inside: [client], idle_timeout: .inf}\n" + _MORE,
     "x.yaml:12: nats.home.idle_timeout: a duration must be finite (at most 100 years)"),
    (_MORE, "nats:\n  home: {public: 203.0.113.3, inside: [client], rebind_every: 1ms}\n" + _MORE,
     "x.yaml:12: nats.home.rebind_every: 0.001s means about 3.6e+06 rebinds in the run; at most 1,000,000"),
    (_MORE, "expect:\n  max_rekey_latency: .inf\n" + _MORE, "x.yaml:12: expect.max_rekey_latency: a duration must be finite "
     "(at most 100 years)"),
    (_MORE, "warmup: .nan\n" + _MORE, "x.yaml:11: warmup: a duration must be a number of seconds, not NaN"),
    (_MORE, "clusters:\n  gateway: {heartbeat_delay: .inf}\n" + _MORE, "x.yaml:12: clusters.gateway.heartbeat_delay: a "
     "duration must be finite (at most 100 years)"),
    (_MORE, "clusters:\n  gateway: {events: [{at: 2h, crash: gateway-a}]}\n" + _MORE, "x.yaml:12: "
     "clusters.gateway.events[0].at: 7200s is not before the end of the run (3600s)"),
    # loss probabilities
    ("    loss: 1%", "    loss: .nan", "x.yaml:10: links[0].loss: a ratio must be a number in [0, 1], not NaN"),
    ("    loss: 1%", "    loss: x%", "x.yaml:10: links[0].loss: invalid ratio 'x%'"),
    ("    loss: 1%", "    loss: {model: gilbert, p: 1%, r: .nan}", "x.yaml:10: links[0].loss.r: a ratio must be a number in "
     "[0, 1], not NaN"),
    # seeds
    ("seed: 1", "seed: -1", "x.yaml:2: seed: seed -1 is outside 0 .. 2^64 - 1"),
    ("seed: 1", "seed: 18446744073709551616", "x.yaml:2: seed: seed 18446744073709551616 is outside 0 .. 2^64 - 1"),
    ("seed: 1", "seed: 1.5", "x.yaml:2: seed: expected a whole number, got the number 1.5"),
    # IP addresses, subnets, traffic selectors
    ("[10.0.0.1]", "[10.0.0.999]", "x.yaml:5: nodes.client.addresses[0]: invalid IP address '10.0.0.999'"),
    ("[10.0.0.1]", "[client.example]", "x.yaml:5: nodes.client.addresses[0]: invalid IP address 'client.example'"),
    ("[10.0.0.1]", "10.0.0.1", "x.yaml:5: nodes.client.addresses: expected a list, got the text '10.0.0.1'"),
    (_MORE, "routers:\n  r: {addresses: [10.0.0.256]}\n" + _MORE, "x.yaml:12: routers.r.addresses[0]: invalid IP address '10.0.0.256'"),
    # lifetimes (strongSwan: rekey_time - U(0, rand_time) must lie after creation; life_time after rekey_time)
    (_LIFE, _LIFE + "\n      rand_time: 1h", "x.yaml:19: connections.vpn.child.rand_time: rand_time 3600s must be shorter than "
     "rekey_time 3600s (a rekey could fall due at once)"),
    (_LIFE, "      life_time: 1h", "x.yaml:18: connections.vpn.child.life_time: life_time 3600s must be longer than rekey_time "
     "3600s (the SA would expire before it is rekeyed)"),
    (_LIFE, "      life_time: 150min", "x.yaml:16: connections.vpn.child.rand_time: the default rand_time 5400s "
     "(= life_time - rekey_time) is not shorter than rekey_time 3600s: give a rand_time below rekey_time"),
    (_LIFE, _LIFE + "\n      rekey_fraction: 0.05", "x.yaml:19: connections.vpn.child.rekey_fraction: rekey_fraction 0.05 puts "
     "the rekey at 198s, which is not after rand_time 360s"),
    (_IKE, "    ike: {rekey_time: 4h, rand_time: 5h}", "x.yaml:15: connections.vpn.ike.rand_time: rand_time 18000s must be "
     "shorter than rekey_time 14400s (a rekey could fall due at once)"),
    (_IKE, "    ike: {rekey_time: 4h, life_time: 3h}", "x.yaml:15: connections.vpn.ike.life_time: life_time 10800s must be longer "
     "than rekey_time 14400s (the SA would expire before it is rekeyed)"),
    (_IKE, "    ike: {rekey_time: 4h, over_time: 5h}", "x.yaml:15: connections.vpn.ike.rand_time: the default rand_time 18000s "
     "(= over_time) is not shorter than rekey_time 14400s: give a rand_time below rekey_time"),
    # no route between the ends of a connection
    (_LINK, "links: []\n", "x.yaml:9: connections.vpn: no route from client to gateway (no chain of links joins them)"),
    (_LINK, "routers:\n  r: {}\nlinks:\n  - between: [client, r]\n",
     "x.yaml:12: connections.vpn: no route from client to gateway (no chain of links joins them)"),
    # scenario names that are not safe file names
    ("name: v", "name: .", "x.yaml:1: name: name '.' is not a file name"),
    ("name: v", "name: ..", "x.yaml:1: name: name '..' is not a file name"),
    ("name: v", "name: ../etc", "x.yaml:1: name: name '../etc' contains a path separator: give a plain file name"),
    ("name: v", 'name: "a\\\\b"', "x.yaml:1: name: name 'a\\b' contains a path separator: give a plain file name"),
    ("name: v", "name: .hidden", "x.yaml:1: name: name '.hidden' starts with a dot (a hidden file)"),
    ("name: v", 'name: "a\\x01b"', "x.yaml:1: name: name 'a\\x01b' contains a control character"),
    ("name: v", 'name: "a\\0b"', "x.yaml:1: name: name 'a\\x00b' contains a control character"),
    ("name: v", "name: " + "a" * 101, "x.yaml:1: name: name is 101 characters long; at most 100"),
    ("name: v", "name: a b", "x.yaml:1: name: name 'a b' may contain only letters, digits, '_', '-' and '.'"),
    ("name: v", 'name: ""', "x.yaml:1: name: the name must not be empty"),
    ("name: v", "name: 12", "x.yaml:1: name: expected text, got the number 12"),
    # misspelt keys: did you mean
    (_IKE, "    ike: {rekey_tme: 4h}", "x.yaml:15: connections.vpn.ike.rekey_tme: unknown key (did you mean 'rekey_time'?)"),
    ("      rekey_time: 1h", "      rekeytime: 1h", "x.yaml:17: connections.vpn.child.rekeytime: unknown key (did you mean 'rekey_time'?)"),
    ("    delay: 10ms", "    dealy: 10ms", "x.yaml:9: links[0].dealy: unknown key (did you mean 'delay'?)"),
    ("    delay: 10ms", "    delay: 10ms\n    down: [{from: 1min, unitl: 2min}]",
     "x.yaml:10: links[0].down[0].until: required key missing\nx.yaml:10: links[0].down[0].unitl: unknown key (did you mean 'until'?)"),
    (_MORE, "faults:\n  - {action: drop, form: client}\n" + _MORE, "x.yaml:12: faults[0].form: unknown key (did you mean 'from'?)"),
    (_MORE, "fleet:\n  clients: 2\n  conection: {}\n" + _MORE, "x.yaml:13: fleet.conection: unknown key (did you mean 'connection'?)"),
    ("duration: 1h", "duration: 1h\ndurration: 2h", "x.yaml:4: durration: unknown key (did you mean 'duration'?)"),
    ("    initiator: client\n", "    initiator: client\n    auth: {method: pks}\n",
     "x.yaml:14: connections.vpn.auth.method: 'pks' is not one of 'psk', 'ecdsa' or 'ed25519' (did you mean 'psk'?)"),
    # wrong types, in ikesim's words
    ("  client: {addresses: [10.0.0.1]}", "  client: [10.0.0.1]", "x.yaml:5: nodes.client: expected a mapping of node "
     "settings, got a list"),
    ("nodes:\n  client: {addresses: [10.0.0.1]}\n  gateway: {addresses: [10.0.0.2]}\n", "nodes: [client, gateway]\n",
     "x.yaml:4: nodes: expected a mapping, got a list"),
    ("  gateway: {addresses: [10.0.0.2]}", "  gateway: {addresses: [10.0.0.2]}\n  7: {addresses: [10.0.0.7]}",
     "x.yaml:7: nodes.7: a key must be text, got the number 7"),
    ("  client: {addresses: [10.0.0.1]}", "  client: {addresses: [10.0.0.1], cookie_threshold: lots}",
     "x.yaml:5: nodes.client.cookie_threshold: expected a whole number or 'always', got the text 'lots'"),
    ("  client: {addresses: [10.0.0.1]}", "  client: {addresses: [10.0.0.1], cpu: {cores: 0}}",
     "x.yaml:5: nodes.client.cpu.cores: must be at least 1, got 0"),
    ("between: [client, gateway]", "between: [client, gateway, client]", "x.yaml:8: links[0].between: expected at most 2 entries, got 3"),
    ("between: [client, gateway]", "between: client", "x.yaml:8: links[0].between: expected a list, got the text 'client'"),
    ("    delay: 10ms", "    delay: 10ms\n    reorder: perhaps", "x.yaml:10: links[0].reorder: expected true or false, got "
     "the text 'perhaps'"),
    ("    delay: 10ms", "    delay: 10ms\n    mtu: 40", "x.yaml:10: links[0].mtu: must be at least 68, got 40"),
    ("    initiator: client\n", "    initiator: [client]\n", "x.yaml:13: connections.vpn.initiator: expected text, got a list"),
    (_IKE, "    ike: {rekey_time: 4h, retransmit: fast}", "x.yaml:15: connections.vpn.ike.retransmit: expected 'strongswan', "
     "'libreswan' or a mapping of retransmission settings (timeout, base, tries, ...), got the text 'fast'"),
    (_IKE, "    ike: {rekey_time: 4h, retransmit: {tries: 99}}", "x.yaml:15: connections.vpn.ike.retransmit.tries: must be "
     "at most 30, got 99"),
    (_IKE, "    ike: {rekey_time: 4h, rekey_fraction: abc}", "x.yaml:15: connections.vpn.ike.rekey_fraction: expected a number or "
     "a mapping of per-side values (initiator, responder), got the text 'abc'"),
    (_IKE, "    ike: {rekey_time: 4h, proposals: []}", "x.yaml:15: connections.vpn.ike.proposals: expected at least 1 entry, got 0"),
    (_MORE, "actions:\n  - {at: 1min, node: client, action: rekey, connection: vpn}\n" + _MORE,
     "x.yaml:12: actions[0].action: 'rekey' is not one of 'initiate', 'rekey_child', 'rekey_ike', 'create_child', 'delete_child', "
     "'delete_ike', 'dpd', 'pin_nonce', 'pin_child_spi', 'pin_ike_spi', 'restart', 'expire_child', 'expire_ike', "
     "'forget_child' or 'forget_ike' (did you mean 'rekey_ike'?)"),
    (_MORE, "actions: {at: 1min}\n" + _MORE, "x.yaml:11: actions: expected a list, got a mapping"),
    (_MORE, "faults:\n  - {action: drop, message_id: -1}\n" + _MORE, "x.yaml:12: faults[0].message_id: must be at least 0, got -1"),
    (_MORE, "fleet:\n  clients: many\n" + _MORE, "x.yaml:12: fleet.clients: expected a whole number, got the text 'many'"),
    # duplicate keys say where the first one was
    ("    initiator: client\n", "    initiator: client\n    initiator: gateway\n",
     "x.yaml:14: connections.vpn.initiator: duplicate key 'initiator' (first at line 13)"),
    ("duration: 1h", "duration: 1h\nduration: 2h", "x.yaml:4: duration: duplicate key 'duration' (first at line 3)"),
    # IPv6 passes nowhere it would become a node's address (the capture writer is IPv4 only)
    ("[10.0.0.1]", '["2001:db8::1"]', "x.yaml:5: nodes.client.addresses[0]: 2001:db8::1 is an IPv6 address: IPv6 is not supported "
     "yet; use IPv4"),
    (_MORE, 'routers:\n  r: {addresses: ["2001:db8::9"]}\n' + _MORE, "x.yaml:12: routers.r.addresses[0]: 2001:db8::9 is an IPv6 "
     "address: IPv6 is not supported yet; use IPv4"),
    (_MORE, 'nats:\n  home: {public: "2001:db8::7", inside: [client]}\n' + _MORE, "x.yaml:12: nats.home.public: 2001:db8::7 is "
     "an IPv6 address: IPv6 is not supported yet; use IPv4"),
    (_MORE, "fleet:\n  clients: 2\n  client_subnet: 2001:db8:1::/64\n" + _MORE, "x.yaml:13: fleet.client_subnet: 2001:db8:1::/64 "
     "is an IPv6 subnet: IPv6 is not supported yet; use IPv4"),
    (_MORE, 'fleet:\n  clients: 2\n  gateway_address: "2001:db8::1"\n' + _MORE, "x.yaml:13: fleet.gateway_address: 2001:db8::1 "
     "is an IPv6 address: IPv6 is not supported yet; use IPv4"),
    (_MORE, 'fleet:\n  clients: 2\n  nat: {public_subnet: "2001:db8:2::/64"}\n' + _MORE, "x.yaml:13: fleet.nat.public_subnet: "
     "2001:db8:2::/64 is an IPv6 subnet: IPv6 is not supported yet; use IPv4"),
    # whole numbers are whole numbers: not true (pydantic's lax int reads it as 1), not text, not 1.0
    ("seed: 1", "seed: true", "x.yaml:2: seed: expected a whole number, got true"),
    ("seed: 1", "seed: '12'", "x.yaml:2: seed: expected a whole number, got the text '12'"),
    ("seed: 1", "seed: 1.0", "x.yaml:2: seed: expected a whole number, got the number 1.0"),
    ("  client: {addresses: [10.0.0.1]}", "  client: {addresses: [10.0.0.1], cpu: {cores: true}}",
     "x.yaml:5: nodes.client.cpu.cores: expected a whole number, got true"),
    (_MORE, "fleet:\n  clients: true\n" + _MORE, "x.yaml:12: fleet.clients: expected a whole number, got true"),
    (_IKE, "    ike: {rekey_time: 4h, retransmit: {tries: true}}", "x.yaml:15: connections.vpn.ike.retransmit.tries: expected a whole "
     "number, got true"),
    (_IKE, "    ike: {rekey_time: 4h, retransmit: {base: true}}", "x.yaml:15: connections.vpn.ike.retransmit.base: expected a number, "
     "got true"),
    (_IKE, "    ike: {rekey_time: 4h, fragment_size: '1280'}", "x.yaml:15: connections.vpn.ike.fragment_size: expected a whole number, "
     "got the text '1280'"),
    ("    delay: 10ms", "    delay: 10ms\n    mtu: true", "x.yaml:10: links[0].mtu: expected a whole number, got true"),
    (_MORE, "faults:\n  - {action: drop, occurrence: true}\n" + _MORE, "x.yaml:12: faults[0].occurrence: expected a whole number, "
     "'first' or 'every', got true"),
    (_MORE, "routers:\n  r: {drop_udp: [true]}\n" + _MORE, "x.yaml:12: routers.r.drop_udp[0]: expected a whole number, got true"),
    ("  client: {addresses: [10.0.0.1]}", "  client: {addresses: [10.0.0.1], block_threshold: true}",
     "x.yaml:5: nodes.client.block_threshold: expected a whole number, got true"),
    # flood settings: counts, 'always' for the COOKIE thresholds only, a half-open timeout above 0 s
    ("  client: {addresses: [10.0.0.1]}", "  client: {addresses: [10.0.0.1], cookie_threshold: -1}",
     "x.yaml:5: nodes.client.cookie_threshold: must be at least 0, got -1"),
    ("  client: {addresses: [10.0.0.1]}", "  client: {addresses: [10.0.0.1], block_threshold: always}",
     "x.yaml:5: nodes.client.block_threshold: expected a whole number, got the text 'always'"),
    ("  client: {addresses: [10.0.0.1]}", "  client: {addresses: [10.0.0.1], half_open_timeout: 0s}",
     "x.yaml:5: nodes.client.half_open_timeout: must be more than 0 s"),
    (_MORE, "nats:\n  home: {public: 203.0.113.3, inside: [client], idle_timeout: 0}\n" + _MORE,
     "x.yaml:12: nats.home.idle_timeout: must be more than 0 s"),
    (_MORE, "fleet:\n  clients: 2\n  nat: {idle_timeout: 0}\n" + _MORE, "x.yaml:13: fleet.nat.idle_timeout: must be more than 0 s"),
    # proposals: one string or a list of them
    (_IKE, "    ike: {rekey_time: 4h, proposals: 5}", "x.yaml:15: connections.vpn.ike.proposals: expected a proposal string or a "
     "list of them, got the number 5"),
    (_LIFE, _LIFE + "\n      proposals: {aes256gcm16: 1}", "x.yaml:19: connections.vpn.child.proposals: expected a proposal string "
     "or a list of them, got a mapping"),
]

STILL_RIGHT: list[tuple[str, str, str]] = [
    ("duration: 1h", "duration: -5", "x.yaml:3: duration: negative duration -5"),
    (_IKE, "    ike: {rekey_time: 4h, dpd_delay: 200y}", "x.yaml:15: connections.vpn.ike.dpd_delay: invalid duration '200y' "
     "(use e.g. 30s, 66min, 1h30m, 500ms)"),
    (_MORE, "faults:\n  - {action: delay, delay: -1}\n" + _MORE, "x.yaml:12: faults[0].delay: negative duration -1"),
    (_MORE, "nats:\n  home: {public: 203.0.113.3, inside: [client], rebind: [-1h]}\n" + _MORE,
     "x.yaml:12: nats.home.rebind[0]: invalid duration '-1h' (use e.g. 30s, 66min, 1h30m, 500ms)"),
    ("    loss: 1%", "    loss: -0.1", "x.yaml:10: links[0].loss: ratio -0.1 is outside [0, 1]"),
    ("    loss: 1%", "    loss: 101%", "x.yaml:10: links[0].loss: ratio '101%' is outside [0, 1]"),
    ("    loss: 1%", "    loss: 1%\n    duplicate: .inf", "x.yaml:11: links[0].duplicate: ratio inf is outside [0, 1]"),
    (_MORE, "nats:\n  home: {public: 203.0.113.300, inside: [client]}\n" + _MORE,
     "x.yaml:12: nats.home.public: invalid IP address '203.0.113.300'"),
    (_LIFE, _LIFE + "\n      remote_ts: [10.0.300.0/24]",
     "x.yaml:19: connections.vpn.child.remote_ts: invalid traffic selector '10.0.300.0/24' (a CIDR or 'dynamic')"),
    ("    initiator: client\n", "", "x.yaml:12: connections.vpn.initiator: required key missing"),
    (_MORE, "expect:\n  collisions: {child: lots}\n" + _MORE, "x.yaml:12: expect.collisions.child: expected a count (an integer >= 0) "
     "or a mapping with count, min or max (got 'lots')"),
]
"""Bad scenarios whose message was already right: kept for the no-pydantic-words check."""

_TRAFFIC = "traffic:\n  - connection: vpn\n"
"""A flow at the end of the scenario (the item at line 20, its keys from line 21)."""
TRAFFIC_CORPUS: list[tuple[str, str]] = [
    ("    rat: 10\n", "x.yaml:21: traffic[0].rat: unknown key (did you mean 'rate'?)"),
    ("    rate: -3\n", "x.yaml:21: traffic[0].rate: must be more than 0, got -3"),
    ("    rate: 3\n    size: 10\n", "x.yaml:22: traffic[0].size: packet size 10 is outside 28 .. 65535 bytes"),
    ("    rate: 3\n    size: {dist: uniform, low: 100}\n", "x.yaml:22: traffic[0].size: uniform size needs low, high"),
    ("    rate: 3\n    pattern: onoff\n",
     "x.yaml:20: traffic[0]: on and off (mean periods) go with pattern: onoff, and it needs both"),
    ("    rate: 3\n    bitrate: 1Mbit\n", "x.yaml:20: traffic[0]: give rate (packets/s) or bitrate (e.g. 100Mbit), one of them"),
    ("    rate: 3\n    child: web\n", "x.yaml:22: traffic[0].child: connection 'vpn' has no child 'web' (has net)"),
    ("    rate: 3\n", "x.yaml:20: traffic[0].connection: unknown connection 'vpm'"),
    ("    rate: 3\n    start: 10s\n    stop: 5s\n", "x.yaml:20: traffic[0]: stop (5 s) must be after start (10 s)"),
    ("    rate: 3\n    pattern: request_response\n",
     "x.yaml:20: traffic[0]: request_response: give direction forward (the initiator asks) or reverse"),
]
"""Bad flows (``traffic:``), each appended to BASE after ``- connection: vpn``."""


@pytest.mark.parametrize("keys,expected", TRAFFIC_CORPUS, ids=[k.strip()[:30] for k, _ in TRAFFIC_CORPUS])
def test_bad_traffic_is_an_error_naming_file_line_and_key(keys: str, expected: str) -> None:
    traffic = _TRAFFIC.replace("vpn", "vpm") if "unknown connection" in expected else _TRAFFIC
    assert _error(BASE + traffic + keys) == expected


PYDANTIC_PHRASES = ("Input should be", "instance of", "For further information", "pydantic", "Field required",
                    "Value error", "Extra inputs", "Assertion failed", "validation error")


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as err:
        load_scenario_text(text, "x.yaml")
    return str(err.value)


def test_base_scenario_is_valid() -> None:
    """The corpus edits one valid scenario."""
    assert load_scenario_text(BASE, "x.yaml").name == "v"


@pytest.mark.parametrize("old,new,expected", CORPUS, ids=[f"{i}:{c[1].strip()[:40]}" for i, c in enumerate(CORPUS)])
def test_bad_scenario_is_an_error_naming_file_line_and_key(old: str, new: str, expected: str) -> None:
    """Each impossible scenario gives exactly this ``file:line: key: message`` (and nothing else)."""
    assert old in BASE
    assert _error(BASE.replace(old, new, 1)) == expected


def test_no_message_is_in_pydantic_words() -> None:
    """No message of the corpus (nor of a few odd shapes) quotes pydantic."""
    odd = ["name: v\nduration: 1h\nnodes: 3\n", "name: [v]\nduration: {a: 1}\n", "name: v\nduration: 1h\n1: 2\n",
           "name: v\nduration: 1h\nnodes: {1: {addresses: [10.0.0.1]}}\n", "name: v\nduration: 1h\nfleet: {clients: 1, nat: []}\n",
           "name: v\nduration: 1h\nfleet: {clients: 1, link: {delay: {dist: pareto}}}\n", "name: v\nduration: 1h\nexpect: 5\n"]
    messages = [_error(BASE.replace(old, new, 1)) for old, new, _ in CORPUS + STILL_RIGHT] + [_error(text) for text in odd]
    for msg in messages:
        assert not any(p.lower() in msg.lower() for p in PYDANTIC_PHRASES), msg
        assert all(line.startswith("x.yaml:") for line in msg.splitlines()), msg


@pytest.mark.parametrize("value,message", [
    (math.inf, "finite"), (-math.inf, "finite"), (math.nan, "NaN"), (-1, "negative"), (MAX_DURATION + 1, "100 years"),
    ("36525d1s", "100 years"), (10**400, "finite"),
])
def test_parse_duration_bounds(value: object, message: str) -> None:
    """Durations are finite, not negative and at most 100 years."""
    with pytest.raises(ValueError, match=message):
        parse_duration(value)
    assert parse_duration("36525d") == MAX_DURATION


@pytest.mark.parametrize("value", [math.nan, "nan", "nan%", math.inf, "-0.5"])
def test_parse_ratio_rejects_nan_and_out_of_range(value: object) -> None:
    """A probability is a number in [0, 1]."""
    with pytest.raises(ValueError):
        parse_ratio(value)


FLEET = """\
name: f
duration: 1h
nodes:
  gw: {addresses: [198.51.100.1]}
fleet:
  clients: 2
  gateway: gw
  nat: {rebinding: {fraction: 100%, every: EVERY}}
"""


@pytest.mark.parametrize("every,expected", [
    ("0", "f.yaml:8: fleet.nat.rebinding.every: must be more than 0 s"),
    ("1us", "f.yaml:5: fleet: nat.rebinding.every: 1e-06s means about 3.6e+09 rebinds per NAT in the run; at most 1,000,000"),
])
def test_fleet_rebinding_interval_that_would_never_finish_building(every: str, expected: str) -> None:
    """A zero or absurdly short mean rebinding interval is an error, not a build that never ends."""
    with pytest.raises(ConfigError) as err:
        load_scenario_text(FLEET.replace("EVERY", every), "f.yaml")
    assert str(err.value) == expected


def test_seed_and_run_number_ranges() -> None:
    """build_simulation (and so ``--seed``/``--run``) accepts seeds 0 .. 2^64 - 1 and run numbers >= 0 only."""
    m = load_scenario_text(BASE, "x.yaml")
    for seed in (-1, 2**64):
        with pytest.raises(ConfigError, match=r"^seed: .* is outside 0 \.\. 2\^64 - 1"):
            build_simulation(m, seed=seed)
    with pytest.raises(ConfigError, match=r"^run number -1: runs are numbered 0, 1, 2"):
        build_simulation(m, run=-1)
    assert build_simulation(m, seed=2**64 - 1).seed == 2**64 - 1
    assert Rng(2**63 - 1, "a").bytes(8) != Rng(2**63, "a").bytes(8)


def _write(tmp_path: Path, old: str, new: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(BASE.replace(old, new, 1))
    return path


@pytest.mark.parametrize("old,new,expected", [
    ("duration: 1h", "duration: .inf", "bad.yaml:3: duration: a duration must be finite (at most 100 years)"),
    (_LINK, "links: []\n", "bad.yaml:9: connections.vpn: no route from client to gateway (no chain of links joins them)"),
    ("name: v", "name: ..", "bad.yaml:1: name: name '..' is not a file name"),
    ("[10.0.0.1]", '["2001:db8::1"]', "bad.yaml:5: nodes.client.addresses[0]: 2001:db8::1 is an IPv6 address: IPv6 is not "
     "supported yet; use IPv4"),
    (_MORE, "clusters:\n  gateway: {members: [gw-a, client]}\n" + _MORE, "bad.yaml:12: clusters.gateway.members[1]: member "
     "'client' is also a node"),
])
def test_cli_run_exits_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str,
                                            expected: str) -> None:
    """``ikesim run`` on an impossible scenario prints file:line: key and exits 2 without writing results."""
    path = _write(tmp_path, old, new)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    assert expected in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("command,args,expected", [
    ("run", ["--seed", "-1"], "argument --seed: -1 is outside 0 .. 2^64 - 1"),
    ("run", ["--seed", str(2**64)], f"argument --seed: {2**64} is outside 0 .. 2^64 - 1"),
    ("run", ["--run", "-2"], "argument --run: -2 is negative"),
    ("check", ["--seed", str(2**64)], f"argument --seed: {2**64} is outside 0 .. 2^64 - 1"),
])
def test_cli_seed_and_run_out_of_range_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, args: list[str],
                                              expected: str) -> None:
    """``--seed`` outside 0 .. 2^64 - 1 and a negative ``--run`` are usage errors (exit 2) before anything runs."""
    path = tmp_path / "ok.yaml"
    path.write_text(BASE)
    with pytest.raises(SystemExit) as exc:
        main([command, str(path), *args, "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_ipv6_traffic_selectors_negotiate_and_the_capture_is_written(tmp_path: Path) -> None:
    """IPv6 inside the tunnel is fine (only node addresses reach the IPv4 capture writer): both CHILD_SAs install, pcap written."""
    import ikesim

    text = BASE.replace(_LIFE, _LIFE + '\n      local_ts: ["2001:db8:1::/48", 10.1.0.0/16]\n      remote_ts: ["2001:db8:2::/48"]', 1)
    results = ikesim.run(load_scenario_text(text.replace("duration: 1h", "duration: 2min"), "x.yaml"))
    assert results.summary["sas"]["ike_established"] == 2 and results.summary["sas"]["child_installed"] == 2
    results.write(tmp_path)
    assert (tmp_path / "capture.pcap").stat().st_size > 24


def test_check_reports_a_connection_without_route_as_an_error(tmp_path: Path) -> None:
    """``ikesim check`` no longer passes a scenario whose ends cannot reach each other."""
    [outcome] = check_file(_write(tmp_path, _LINK, "links: []\n"))
    assert outcome.status == "error"
    assert outcome.error is not None and outcome.error.endswith("bad.yaml:9: connections.vpn: no route from client to gateway "
                                                                "(no chain of links joins them)")


def test_every_shipped_scenario_still_loads() -> None:
    """The checks reject nothing under scenarios/ (they all have routes, sane lifetimes and safe names)."""
    from ikesim.scenario.load import load_scenarios

    files = sorted((ROOT / "scenarios").rglob("*.yaml"))
    assert files
    for f in files:
        assert load_scenarios(f)


_CHILD = "    child:\n      rekey_time: 1h\n      life_time: 66min\n"

CHILD_FORMS = [
    ("    child: {rekey_time: 1h}\n    children: {a: {rekey_time: 1h}}\n", "give either child or children, not both"),
    ("    child_name: x\n    children: {a: {rekey_time: 1h}}\n", "child_name goes with child; with children the keys are the names"),
    ("    child: {rekey_time: 1h, start: 1min}\n", "the first child is created by IKE_AUTH: it takes no start"),
]


@pytest.mark.parametrize("keys,message", CHILD_FORMS)
def test_connection_and_fleet_template_share_one_body(keys: str, message: str) -> None:
    """``ConnectionBody`` holds the keys and child rules of a connection and of a fleet's template: one message, each at its key."""
    from ikesim.scenario.connection_model import ConnectionBody, ConnectionModel
    from ikesim.scenario.fleet import FleetConnectionModel

    assert issubclass(ConnectionModel, ConnectionBody) and issubclass(FleetConnectionModel, ConnectionBody)
    assert list(ConnectionModel.model_fields) == ["initiator", "responder", "start", *ConnectionBody.model_fields]
    assert _error(BASE.replace(_CHILD, keys, 1)) == f"x.yaml:12: connections.vpn: {message}"
    fleet = f"name: f\nduration: 1h\nfleet:\n  clients: 2\n  connection:\n{keys}"
    with pytest.raises(ConfigError) as err:
        load_scenario_text(fleet, "f.yaml")
    assert str(err.value) == f"f.yaml:5: fleet.connection: {message}"


PARTS = ["base", "durations", "node_model", "link_model", "connection_model", "network_model", "faults_model", "fleet",
         "expect_model", "messages", "cluster_model", "cluster_checks"]


def _runtime_imports(path: Path) -> set[str]:
    """Modules imported at the top level of *path* (not under ``if TYPE_CHECKING:``), with ``from x import y`` as x and x.y."""
    out: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


@pytest.mark.parametrize("module", PARTS)
def test_model_parts_do_not_import_the_whole_schema(module: str) -> None:
    """No import circle: the parts of the schema never import ``ikesim.scenario.model`` (it imports them)."""
    imported = _runtime_imports(ROOT / "ikesim" / "scenario" / f"{module}.py")
    assert not any(m == "ikesim.scenario.model" or m.startswith("ikesim.scenario.model.") for m in imported), imported
