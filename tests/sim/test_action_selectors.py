"""Scripted actions aimed at one SA (``ikesim.sim.actions``): spi and ordinal selectors, expire and forget actions,
what a selector that finds nothing records, and how the scenario model checks them."""

from __future__ import annotations

from typing import Any

import pytest

from ikesim.errors import ConfigError
from ikesim.scenario.build import build_simulation
from ikesim.scenario.load import load_scenario_text

BASE = """\
name: pick
seed: 5
duration: 1min
nodes:
  client: {addresses: [10.0.0.1], processing: none}     # exact times: no per-message processing time
  gateway: {addresses: [10.0.0.2], processing: none}
links:
  - {between: [client, gateway], delay: 10ms}
connections:
  vpn:
    initiator: client
    responder: gateway
    ike: {rekey_time: 0}
    children:
      net: {rekey_time: 0, life_time: 0}
      voice: {rekey_time: 0, life_time: 0, start: 5s, local_ts: [10.9.1.0/24], remote_ts: [10.9.2.0/24]}
actions:
  - {at: 0s, node: client, action: pin_child_spi, value: "c1c1c1c1"}
  - {at: 0s, node: gateway, action: pin_child_spi, value: "a1a1a1a1"}
  - {at: 1s, node: client, action: pin_child_spi, value: "c2c2c2c2"}
  - {at: 1s, node: gateway, action: pin_child_spi, value: "a2a2a2a2"}
"""


def run(actions: str) -> Any:
    m = load_scenario_text(BASE + actions, "pick.yaml")
    return build_simulation(m).run(m.duration)


def rows(r: Any, event: str, *cols: str) -> list[list[Any]]:
    ev = r.events
    return [[round(t, 6), *rest] for t, *rest in ev[ev["event"] == event][["time", "node", *cols]].values.tolist()]


@pytest.mark.parametrize("selector,target", [
    ("", "c1c1c1c1"), ("ordinal: 1", "c1c1c1c1"), ("ordinal: 2", "c2c2c2c2"), ("child: voice", "c2c2c2c2"),
    ("spi: 0xc2c2c2c2", "c2c2c2c2"), ("spi: '0xA2A2A2A2'", "c2c2c2c2"), ("spi: a1a1a1a1", "c1c1c1c1"),
    ("child: voice, ordinal: 1", "c2c2c2c2"),
])
def test_rekey_child_acts_on_the_chosen_sa(selector: str, target: str) -> None:
    """No selector: the first installed CHILD_SA; ordinal n: the n-th held; spi: the one with that inbound or
    outbound SPI on this node."""
    r = run(f"  - {{at: 20s, node: client, action: rekey_child, connection: vpn{', ' + selector if selector else ''}}}\n")
    assert rows(r, "ActionExecuted", "action", "target")[-1] == [20.0, "client", "rekey_child", target]
    assert rows(r, "RekeyStarted", "old_spi") == [[20.0, "client", target]]


def test_selectors_reach_a_rekeyed_sa_still_lingering() -> None:
    """After a rekey the old SA lingers inbound 5 s after its Delete: ordinal 1 still names it. A second Delete of it
    is refused (RFC 7296 §1.4.1: the Deletes were exchanged); forget_child drops it at once, silently."""
    r = run("  - {at: 20s, node: client, action: rekey_child, connection: vpn}\n"
            "  - {at: 21s, node: client, action: delete_child, connection: vpn, ordinal: 1}\n"
            "  - {at: 22s, node: client, action: forget_child, connection: vpn, ordinal: 1}\n")
    assert rows(r, "ActionSkipped", "action", "reason") == [
        [21.0, "client", "delete_child", "CHILD_SA c1c1c1c1 is rekeyed and deleted with the peer, lingering inbound "
                                         "until 25.04 s"]]
    assert rows(r, "ActionExecuted", "action", "target")[-2:] == [[20.0, "client", "rekey_child", "c1c1c1c1"],
                                                                    [22.0, "client", "forget_child", "c1c1c1c1"]]
    assert rows(r, "ChildSaDeleted", "spi_in", "reason") == [[22.0, "client", "c1c1c1c1", "forgotten"],
                                                              [25.03, "gateway", "a1a1a1a1", "rekeyed"]]
    assert rows(r, "ExchangeStarted", "purpose")[-2:] == [[20.0, "client", "rekey_child"],
                                                          [20.02, "client", "delete_child"]]


@pytest.mark.parametrize("action,reason", [
    ("{at: 20s, node: client, action: delete_child, connection: vpn, spi: 0xdeadbeef}",
     "no target: no CHILD_SA with SPI deadbeef"),
    ("{at: 20s, node: client, action: forget_child, connection: vpn, ordinal: 3}", "no target: CHILD_SA #3 asked, 2 held"),
    ("{at: 20s, node: client, action: expire_child, connection: vpn, child: voice, ordinal: 2}",
     "no target: CHILD_SA 'voice' #2 asked, 1 held"),
    ("{at: 20s, node: client, action: rekey_ike, connection: vpn, spi: '0x0102030405060708'}",
     "no target: no IKE_SA with SPI 0102030405060708"),
    ("{at: 20s, node: client, action: forget_ike, connection: vpn, ordinal: 2}", "no target: IKE_SA #2 asked, 1 held"),
])
def test_a_selector_that_finds_nothing_is_recorded_as_skipped(action: str, reason: str) -> None:
    """Never an exception: ActionSkipped with a reason naming what was looked for; nothing else happens."""
    r = run(f"  - {action}\n")
    assert rows(r, "ActionSkipped", "reason") == [[20.0, "client", reason]]
    assert r.installed["client"] == {"in": ["c1c1c1c1", "c2c2c2c2"], "out": ["a1a1a1a1", "a2a2a2a2"]}


def test_expire_child_is_the_hard_lifetime_now() -> None:
    """RFC 7296 §2.8: SaExpired, the SA is no longer used, and it is deleted with reason expired."""
    r = run("  - {at: 20s, node: gateway, action: expire_child, connection: vpn, spi: 0xc2c2c2c2}\n")
    assert rows(r, "SaExpired", "spi") == [[20.0, "gateway", "a2a2a2a2"]]
    assert rows(r, "ChildSaDeleted", "spi_in", "reason") == [[20.01, "client", "c2c2c2c2", "deleted_by_peer"],
                                                              [20.02, "gateway", "a2a2a2a2", "expired"]]
    assert r.installed == {"client": {"in": ["c1c1c1c1"], "out": ["a1a1a1a1"]},
                           "gateway": {"in": ["a1a1a1a1"], "out": ["c1c1c1c1"]}}


def test_expire_ike_deletes_the_ike_sa() -> None:
    """RFC 7296 §2.8: SaExpired, then the IKE_SA's Delete takes its CHILD_SAs on both sides."""
    r = run("  - {at: 20s, node: gateway, action: expire_ike, connection: vpn, ordinal: 1}\n")
    assert [x[:2] for x in rows(r, "SaExpired", "kind")] == [[20.0, "gateway"]]
    assert rows(r, "IkeSaDeleted", "reason") == [[20.01, "client", "deleted_by_peer"], [20.02, "gateway", "expired"]]
    assert r.installed == {"client": {"in": [], "out": []}, "gateway": {"in": [], "out": []}}


def test_forget_child_leaves_the_peer_holding_it() -> None:
    """forget_child: ChildSaDeleted(forgotten) on that node only; no exchange; the peer still holds both halves."""
    r = run("  - {at: 20s, node: gateway, action: forget_child, connection: vpn, spi: 0xa2a2a2a2}\n")
    assert rows(r, "ChildSaDeleted", "spi_in", "reason") == [[20.0, "gateway", "a2a2a2a2", "forgotten"]]
    assert rows(r, "ExchangeStarted", "purpose")[-1][0] < 20.0
    assert r.installed == {"client": {"in": ["c1c1c1c1", "c2c2c2c2"], "out": ["a1a1a1a1", "a2a2a2a2"]},
                           "gateway": {"in": ["a1a1a1a1"], "out": ["c1c1c1c1"]}}


@pytest.mark.parametrize("action,message", [
    ("{at: 1s, node: client, action: rekey_child, connection: vpn, spi: 0xc1, ordinal: 1}", "give spi or ordinal, not both"),
    ("{at: 1s, node: client, action: initiate, connection: vpn, ordinal: 1}",
     "initiate acts on no single SA: it takes no spi or ordinal"),
    ("{at: 1s, node: client, action: rekey_child, connection: vpn, spi: c1}",
     "spi 'c1': a CHILD_SA SPI is 4 bytes of hex (e.g. \"0xc1c1c1c1\")"),
    ("{at: 1s, node: client, action: rekey_child, connection: vpn, spi: 0x1c1c1c1c1}",
     "spi 0x1c1c1c1c1: a CHILD_SA SPI is 4 bytes of hex (e.g. \"0xc1c1c1c1\")"),
    ("{at: 1s, node: client, action: delete_ike, connection: vpn, spi: c1c1c1c1}",
     "spi 'c1c1c1c1': an IKE_SA SPI is 8 bytes of hex (e.g. \"0xc1c1c1c1c1c1c1c1\")"),
    ("{at: 1s, node: client, action: forget_child, connection: vpn, ordinal: 0}",
     "actions[4].ordinal: must be at least 1"),
])
def test_bad_selectors_are_scenario_errors(action: str, message: str) -> None:
    """A selector that cannot name an SA at all is refused when the file is loaded, pointing at the action."""
    with pytest.raises(ConfigError) as exc:
        load_scenario_text(BASE + f"  - {action}\n", "pick.yaml")
    assert message in str(exc.value)
