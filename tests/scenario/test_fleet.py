"""``fleet:``: expansion into nodes, links and connections, start times, validation errors, a small fleet end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import ikesim
from ikesim.errors import ConfigError
from ikesim.ike.config import DaemonConfig
from ikesim.scenario.build import build_simulation, daemon_configs
from ikesim.scenario.fleet import client_addresses, client_names, start_times
from ikesim.scenario.fleet_expand import expand_fleet
from ikesim.scenario.load import load_scenario, load_scenario_text
from ikesim.types import Address

ROOT = Path(__file__).resolve().parents[2]
FLEET_DIR = ROOT / "scenarios" / "fleet"

TINY = """\
name: tiny-fleet
seed: 1
duration: 2h
fleet:
  clients: 5
  client_subnet: 10.1.0.0/29
  gateway: gw
  gateway_address: 10.255.255.254
  link: {delay: 25ms}
  start: {spread: 60s}
  connection:
    auth: {method: psk, psk: fleet-psk-0123456789}
    ike: {rekey_time: 4h}
    child: {rekey_time: 3h}
"""


def _configs(text: str, seed: int | None = None) -> dict[str, DaemonConfig]:
    return {c.name: c for c in daemon_configs(load_scenario_text(text), seed=seed)}


def test_expansion_names_addresses_links_and_connections() -> None:
    """Five clients c0..c4 at 10.1.0.1..5, one link each to gw, one connection each, gw answering all five."""
    m = expand_fleet(load_scenario_text(TINY))
    assert m.fleet is None
    assert list(m.nodes) == ["gw", "c0", "c1", "c2", "c3", "c4"]
    assert {n: node.addresses for n, node in m.nodes.items()} == {
        "gw": ["10.255.255.254"], "c0": ["10.1.0.1"], "c1": ["10.1.0.2"], "c2": ["10.1.0.3"], "c3": ["10.1.0.4"],
        "c4": ["10.1.0.5"]}
    assert [(link.between, link.delay, link.loss, link.mtu) for link in m.links] == [
        ((f"c{i}", "gw"), 0.025, 0.0, 1500) for i in range(5)]
    assert [(name, c.initiator, c.responder, c.ids.initiator, c.ids.responder) for name, c in m.connections.items()] == [
        (f"c{i}", f"c{i}", "gw", f"c{i}@sim.test", "gw.sim.test") for i in range(5)]
    assert {c.ike.rekey_time for c in m.connections.values()} == {14400.0}
    assert {c.child_items()[0][1].rekey_time for c in m.connections.values()} == {10800.0}


def test_daemon_configs_of_a_fleet() -> None:
    """The gateway has one responder connection per client; each client one connection initiating to the gateway."""
    cfgs = _configs(TINY)
    assert list(cfgs) == ["gw", "c0", "c1", "c2", "c3", "c4"]
    gw = cfgs["gw"]
    assert gw.addresses == (Address("10.255.255.254"),)
    assert [(c.name, c.local_id, c.remote_id, c.remote_addr) for c in gw.connections] == [
        (f"c{i}", "gw.sim.test", f"c{i}@sim.test", None) for i in range(5)]
    (c3,) = cfgs["c3"].connections
    assert (c3.name, c3.local_id, c3.remote_id, c3.remote_addr) == ("c3", "c3@sim.test", "gw.sim.test", Address("10.255.255.254"))
    assert c3.credentials.psk == b"fleet-psk-0123456789"


def test_thousand_clients_are_zero_padded_and_numbered_in_order() -> None:
    """1,000 clients: c0000 .. c0999 at 10.1.0.1 .. 10.1.3.232 (the /16's host addresses in order)."""
    fleet = load_scenario(FLEET_DIR / "fleet-no-jitter.yaml").fleet
    assert fleet is not None
    names, addrs = client_names(fleet), client_addresses(fleet)
    assert (len(names), names[0], names[9], names[999]) == (1000, "c0000", "c0009", "c0999")
    assert (len(set(addrs)), addrs[0], addrs[255], addrs[999]) == (1000, "10.1.0.1", "10.1.1.0", "10.1.3.232")
    m = expand_fleet(load_scenario(FLEET_DIR / "fleet-no-jitter.yaml"))
    assert (len(m.nodes), len(m.links), len(m.connections)) == (1001, 1000, 1000)


@pytest.mark.parametrize("clients,first,last", [(1, "c0", "c0"), (10, "c00", "c09"), (11, "c00", "c10"), (100, "c000", "c099")])
def test_names_are_padded_to_the_digits_of_clients(clients: int, first: str, last: str) -> None:
    """The index is zero-padded to as many digits as ``clients`` has."""
    m = load_scenario_text(TINY.replace("clients: 5", f"clients: {clients}").replace("/29", "/24"))
    assert m.fleet is not None
    names = client_names(m.fleet)
    assert (names[0], names[-1]) == (first, last)


def test_start_times_are_reproducible_per_seed_and_differ_across_seeds() -> None:
    """Starts come from Rng(seed, "fleet-starts"): same seed, same times; another seed (or --seed), other times."""
    m = load_scenario_text(TINY)
    assert m.fleet is not None
    one, again, two = start_times(m.fleet, 1), start_times(m.fleet, 1), start_times(m.fleet, 2)
    assert one == again and one != two
    assert len(set(one)) == 5 and all(0.0 <= t < 60.0 for t in one + two)
    assert [c.start for c in expand_fleet(m).connections.values()] == one
    assert [c.start for c in expand_fleet(m, seed=2).connections.values()] == two
    assert [c.start for c in expand_fleet(load_scenario_text(TINY.replace("seed: 1", "seed: 2"))).connections.values()] == two


def test_every_spaces_starts_evenly_and_no_start_means_zero() -> None:
    """``start: {every: 50ms}`` starts client i at i * 50 ms; without ``start`` every client starts at 0 s."""
    m = load_scenario_text(TINY.replace("{spread: 60s}", "{every: 50ms}"))
    assert [c.start for c in expand_fleet(m).connections.values()] == [0.0, 0.05, 0.1, 0.15000000000000002, 0.2]
    m = load_scenario_text(TINY.replace("  start: {spread: 60s}\n", ""))
    assert [c.start for c in expand_fleet(m).connections.values()] == [0.0] * 5


def test_ids_may_use_index_and_name() -> None:
    """``{i}`` is the client's index, ``{name}`` its node name."""
    text = TINY.replace("    ike: {rekey_time: 4h}\n", "    ike: {rekey_time: 4h}\n    ids: {initiator: 'user{i}@{name}.example'}\n")
    assert [c.ids.initiator for c in expand_fleet(load_scenario_text(text)).connections.values()] == [
        f"user{i}@c{i}.example" for i in range(5)]


@pytest.mark.parametrize("edit,expected", [
    (("10.1.0.0/29", "10.1.0.0/30"), "x.yaml:6: fleet.client_subnet: 10.1.0.0/30 has 2 client addresses, fewer than clients (5)"),
    (("10.1.0.0/29", "10.1.0.1/29"), "x.yaml:6: fleet.client_subnet: invalid subnet '10.1.0.1/29': 10.1.0.1/29 has host bits set"),
    (("gateway_address: 10.255.255.254", "gateway_address: 10.1.0.3"),
     "x.yaml:8: fleet.gateway_address: 10.1.0.3 is one of the client addresses (10.1.0.1 .. 10.1.0.5)"),
    (("gateway: gw", "gateway: c3"), "x.yaml:7: fleet.gateway: 'c3' is also the name of a client"),
    (("clients: 5", "clients: 0"), "x.yaml:5: fleet.clients: must be at least 1, got 0"),
    (("{delay: 25ms}", "{delay: 25ms, colour: red}"), "x.yaml:9: fleet.link.colour: unknown key (known here: delay, jitter, "
     "reorder, bandwidth, queue, loss, duplicate, down, mtu, "
     "drop_fragments)"),
    (("{spread: 60s}", "{spread: 60s, every: 1s}"), "x.yaml:10: fleet.start: give either spread or every, not both"),
    (("{spread: 60s}", "{spread: 3h}"), "x.yaml:4: fleet: start: the last client starts at 10800s, after the end of the run (7200s)"),
    (("    ike: {rekey_time: 4h}\n", "    ike: {rekey_time: 4h}\n    ids: {initiator: me@sim.test}\n"),
     "x.yaml:14: fleet.connection.ids.initiator: 'me@sim.test' needs {i} or {name} so that every client has its own identity"),
    (("    ike: {rekey_time: 4h}\n", "    ike: {rekey_time: 4h}\n    initiator: c0\n"),
     "x.yaml:14: fleet.connection.initiator: unknown key (known here: auth, ids, ike, child, child_name, children, peers, start_action)"),
    (("    child: {rekey_time: 3h}\n", "    child: {rekey_time: 3h}\n    children: {net: {}}\n"),
     "x.yaml:11: fleet.connection: give either child or children, not both"),
    (("fleet:\n", "nodes:\n  c1: {addresses: [10.9.0.1]}\nconnections:\n  c2: {initiator: c1, responder: gw}\nfleet:\n"),
     "x.yaml:8: fleet: nodes.c1 is also the name of a fleet client (client_prefix 'c', 5 clients); "
     "connections.c2 is also the name of a fleet client (client_prefix 'c', 5 clients)"),
    (("fleet:\n", "nodes:\n  x: {addresses: [10.1.0.2]}\nfleet:\n"),
     "x.yaml:6: fleet: nodes.x.addresses[0] 10.1.0.2 is the address of fleet client number 1"),
    (("fleet:\n", "nodes:\n  x: {addresses: [10.255.255.254]}\nfleet:\n"),
     "x.yaml:6: fleet: nodes.x.addresses[0] 10.255.255.254 is the fleet gateway's address"),
])
def test_fleet_errors_name_file_line_and_key(edit: tuple[str, str], expected: str) -> None:
    """Each invalid fleet raises ConfigError with file:line: key.path: reason."""
    assert edit[0] in TINY
    with pytest.raises(ConfigError) as err:
        load_scenario_text(TINY.replace(edit[0], edit[1], 1), "x.yaml")
    assert str(err.value) == expected


@pytest.mark.parametrize("text,expected", [
    ("name: x\nduration: 1h\n", "x.yaml:1: fleet: a scenario needs a fleet, or at least one entry under nodes and connections"),
    ("name: x\nduration: 1h\nnodes: {a: {addresses: [10.0.0.1]}}\n",
     "x.yaml:1: fleet: a scenario needs a fleet, or at least one entry under connections"),
])
def test_a_scenario_needs_nodes_and_connections_or_a_fleet(text: str, expected: str) -> None:
    """Without a fleet, nodes and connections must each have an entry."""
    with pytest.raises(ConfigError) as err:
        load_scenario_text(text, "x.yaml")
    assert str(err.value) == expected


def test_listed_gateway_and_explicit_tunnel_coexist_with_the_fleet() -> None:
    """A gateway listed under nodes keeps its settings and first address; an explicit tunnel to it joins the fleet's."""
    text = TINY.replace("  gateway_address: 10.255.255.254\n", "").replace("fleet:\n", """\
nodes:
  gw: {addresses: [192.0.2.1, 192.0.2.2], cookie_threshold: 10}
  laptop: {addresses: [198.51.100.7]}
links:
  - {between: [laptop, gw], delay: 5ms}
connections:
  vpn: {initiator: laptop, responder: gw, ids: {initiator: laptop@sim.test}}
fleet:
""")
    cfgs = _configs(text)
    assert list(cfgs) == ["gw", "laptop", "c0", "c1", "c2", "c3", "c4"]
    assert cfgs["gw"].addresses == (Address("192.0.2.1"), Address("192.0.2.2")) and cfgs["gw"].cookie_threshold == 10
    assert [c.name for c in cfgs["gw"].connections] == ["vpn", "c0", "c1", "c2", "c3", "c4"]
    assert cfgs["c0"].connections[0].remote_addr == Address("192.0.2.1")
    with pytest.raises(ConfigError, match=r"^x.yaml:\d+: fleet: gateway_address 10.9.9.9 is not an address of nodes.gw$"):
        load_scenario_text(text.replace("  gateway: gw\n", "  gateway: gw\n  gateway_address: 10.9.9.9\n"), "x.yaml")
    r = ikesim.run(load_scenario_text(text), until="5min")
    assert r.summary["sas"]["ike_established"] == 12


def test_five_client_fleet_runs_end_to_end() -> None:
    """Five tunnels come up: 5 IKE_SAs and 5 CHILD_SAs, each seen by the client and the gateway, nothing else."""
    r = ikesim.run(load_scenario_text(TINY))
    assert r.summary["sas"] == {"ike_established": 10, "child_installed": 10, "ike_deleted": 0, "child_deleted": 0}
    assert r.summary["auth_failures"] == 0 and r.summary["retransmissions"] == 0
    per_node = r.sas.groupby(["node", "kind"]).size().to_dict()
    assert per_node == {**{(f"c{i}", k): 1 for i in range(5) for k in ("ike", "child")}, ("gw", "ike"): 5, ("gw", "child"): 5}


STAGGER = TINY.replace("    child: {rekey_time: 3h}\n", """\
    child:
      rekey_time: 1h
      life_time: 66min
      rand_time: 0s
      rekey_fraction: {initiator: 0.7, responder: 0.8}
""")


def test_stagger_reaches_each_sides_lifetime() -> None:
    """``rekey_fraction: {initiator: 0.7, responder: 0.8}`` gives clients 0.7 and the gateway 0.8 (46.2 / 52.8 min of 66)."""
    cfgs = _configs(STAGGER)
    gw_lifetimes = {c.children[0].lifetime for c in cfgs["gw"].connections}
    client_lifetimes = {cfgs[f"c{i}"].connections[0].children[0].lifetime for i in range(5)}
    assert len(gw_lifetimes) == len(client_lifetimes) == 1
    (gw,), (client,) = gw_lifetimes, client_lifetimes
    assert (client.rekey_fraction, client.life_time, client.rand_time, client.soft_after()) == (0.7, 3960.0, 0.0, 2772.0)
    assert (gw.rekey_fraction, gw.life_time, gw.rand_time, gw.soft_after()) == (0.8, 3960.0, 0.0, 3168.0)


def test_staggered_fleet_rekeys_without_collisions() -> None:
    """The clients rekey first, every 46.2 min: two CHILD_SA rekeys per tunnel in 2 h, no collision."""
    r = build_simulation(load_scenario_text(STAGGER)).run(7200.0)
    assert r.summary["collisions"] == 0
    assert r.summary["sas"]["child_installed"] == 5 * 3 * 2


def test_the_three_fleet_scenarios_differ_only_in_lifetimes() -> None:
    """fleet-no-jitter, fleet-rand-time and fleet-stagger: same fleet, link and starts; only ike/child policies differ."""
    models = {n: load_scenario(FLEET_DIR / f"{n}.yaml") for n in ("fleet-no-jitter", "fleet-rand-time", "fleet-stagger")}
    rest = {n: m.model_dump(exclude={"name": True, "description": True, "fleet": {"connection": {"ike", "child"}}})
            for n, m in models.items()}
    assert rest["fleet-no-jitter"] == rest["fleet-rand-time"] == rest["fleet-stagger"]
    lifetimes = {}
    for n, m in models.items():
        cfg = {c.name: c for c in daemon_configs(m)}
        lifetimes[n] = [(c.ike.lifetime, c.children[0].lifetime) for c in (cfg["c0000"].connections[0], cfg["gw"].connections[0])]
    ike, child = lifetimes["fleet-no-jitter"][0]
    assert lifetimes["fleet-no-jitter"][1] == (ike, child)
    assert (ike.rekey_time, ike.life_time, ike.rand_time, child.rekey_time, child.life_time, child.rand_time) == (
        14400.0, 15840.0, 0.0, 3600.0, 3960.0, 0.0)
    ike, child = lifetimes["fleet-rand-time"][0]
    assert (ike.rand_time, child.rand_time) == (1440.0, 360.0)
    assert [(i.rekey_fraction, c.rekey_fraction, i.rand_time, c.rand_time) for i, c in lifetimes["fleet-stagger"]] == [
        (0.7, 0.7, 0.0, 0.0), (0.8, 0.8, 0.0, 0.0)]


def test_fleet_link_takes_every_link_key() -> None:
    """Bursty loss, a PMTU black hole, bandwidth and a queue on the fleet's link reach every client's link."""
    text = """
name: f
duration: 1h
fleet:
  clients: 3
  link: {delay: {dist: uniform, low: 10ms, high: 20ms}, loss: {model: gilbert, p: 1%, r: 10%, loss_bad: 50%},
         mtu: 1280, drop_fragments: true, bandwidth: 2Mbit, queue: 8, duplicate: 1%, down: [{from: 10min, until: 11min}]}
  connection: {auth: {method: psk, psk: fleet-psk-0123456789}}
"""
    links = expand_fleet(load_scenario(text)).links
    assert [link.between for link in links] == [("c0", "gw"), ("c1", "gw"), ("c2", "gw")]
    for link in links:
        assert (link.mtu, link.drop_fragments, link.bandwidth, link.queue, link.duplicate) == (1280, True, 2e6, (8, "packets"), 0.01)
        assert (link.loss.p, link.loss.r, link.loss.loss_bad) == (0.01, 0.1, 0.5)
        assert (link.delay.low, link.delay.high, link.down[0].start, link.down[0].until) == (0.01, 0.02, 600.0, 660.0)
    with pytest.raises(ConfigError, match=r"x.yaml:\d+: fleet.link: .*queue needs a bandwidth"):
        load_scenario_text(text.replace("bandwidth: 2Mbit, ", ""), "x.yaml")


def test_readme_fleet_example_is_valid() -> None:
    """The ``yml`` fleet example in README.md loads and expands (the docs cannot drift from the schema)."""
    import re

    (block,) = re.findall(r"```yml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    m = load_scenario_text("name: readme-fleet\nduration: 6h\n" + block, "README.md")
    cfgs = {c.name: c for c in daemon_configs(m)}
    assert len(cfgs) == 1001 and len(cfgs["gw"].connections) == 1000
    assert cfgs["c0999"].addresses == (Address("10.1.3.232"),)
    assert cfgs["c0999"].connections[0].children[0].lifetime.rekey_fraction == 0.7
    assert cfgs["gw"].connections[999].children[0].lifetime.rekey_fraction == 0.8


@pytest.mark.parametrize("first", ["ikesim.scenario.fleet", "ikesim.scenario.model", "ikesim.scenario.build", "ikesim.runner"])
def test_modules_import_in_any_order(first: str) -> None:
    """fleet.py and model.py share base types from base.py (no import circle): either may be imported first."""
    code = f"import {first}\nfrom ikesim.scenario.load import load_scenario_text\nload_scenario_text({TINY!r})\n"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


NAT_FLEET = """\
name: natfleet
seed: 5
duration: 10min
nodes:
  gw: {addresses: [198.51.100.1]}
fleet:
  clients: 5
  client_subnet: 10.0.0.0/24
  gateway: gw
  nat: {share: 2, public_subnet: 100.64.0.0/29, idle_timeout: 1min, rebinding: {fraction: 50%, every: 2min}}
  vary:
    delay: {dist: uniform, low: 10ms, high: 80ms}
    loss: {dist: uniform, low: 0, high: 1%}
  start: {spread: 10s}
"""


def test_fleet_nats_and_per_client_draws() -> None:
    """nat: groups clients behind generated NATs; vary: draws each NAT's WAN link from the seed, in bounds."""
    from ikesim.scenario.load import load_scenario_text

    m = expand_fleet(load_scenario_text(NAT_FLEET))
    assert {n: (x.public, x.inside) for n, x in m.nats.items()} == {
        "cnat0": ("100.64.0.1", ["c0", "c1"]), "cnat1": ("100.64.0.2", ["c2", "c3"]), "cnat2": ("100.64.0.3", ["c4"])}
    wan = [link for link in m.links if link.between[1] == "gw"]
    assert [link.between[0] for link in wan] == ["cnat0", "cnat1", "cnat2"]
    assert all(0.01 <= link.delay < 0.08 and 0 <= link.loss < 0.01 for link in wan)
    assert len({link.delay for link in wan}) == 3
    again = expand_fleet(load_scenario_text(NAT_FLEET))
    assert [link.delay for link in again.links] == [link.delay for link in m.links]
    other = expand_fleet(load_scenario_text(NAT_FLEET), seed=6)
    assert [link.delay for link in other.links] != [link.delay for link in m.links]
    rebinding = [n for n, x in m.nats.items() if x.rebind_every is not None]
    assert all(m.nats[n].rebind_every == 120.0 for n in rebinding)


def test_fleet_behind_nats_runs_clean() -> None:
    """Every client behind a (shared) NAT establishes over UDP 4500; rebinds are followed; no violation."""
    import ikesim

    r = ikesim.run(NAT_FLEET)
    s = r.summary
    assert s["sas"]["ike_established"] == 10 and s["invariant_violations"] == 0
    assert (r.events["event"] == "NatTraversalStarted").sum() == 10
    assert s["nat"]["mappings_created"] >= 10
