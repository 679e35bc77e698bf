"""The ``faults:`` list and pin actions in scenario files: validation with file:line: key, and the build."""

from __future__ import annotations

import pytest

from ikesim.errors import ConfigError
from ikesim.scenario.build import build_simulation
from ikesim.scenario.faults_model import fault_rules
from ikesim.scenario.load import load_scenario_text
from ikesim.wire.iana import ExchangeType

BASE = """\
name: f
duration: 2min
nodes:
  client: {addresses: [10.0.0.1]}
  gateway: {addresses: [10.0.0.2]}
links:
  - {between: [client, gateway], delay: 20ms}
connections:
  vpn: {initiator: client, responder: gateway}
"""


def load(extra: str):  # noqa: ANN201
    return load_scenario_text(BASE + extra, "s.yaml")


def test_fault_list_becomes_rules() -> None:
    m = load("faults:\n"
             "  - {name: late, from: client, to: gateway, exchange: CREATE_CHILD_SA, message: response,\n"
             "     action: hold, until: seen, after: 1min, before: 90s}\n"
             "  - {name: seen, carries: DELETE_CHILD, occurrence: every, action: pass}\n"
             "  - {message_id: 3, occurrence: 2, action: duplicate, copies: 2, delay: 5ms}\n")
    late, seen, third = fault_rules(m.faults)
    assert (late.name, late.src, late.dst, late.exchange, late.response, late.until, late.after, late.before,
            late.occurrence) == ("late", "client", "gateway", ExchangeType.CREATE_CHILD_SA, True, "seen", 60.0, 90.0, 1)
    assert (seen.carries, seen.occurrence, seen.action) == (frozenset({"DELETE_CHILD"}), None, "pass")
    assert (third.name, third.message_id, third.occurrence, third.copies, third.delay) == ("fault2", 3, 2, 2, 0.005)
    sim = build_simulation(m)
    assert sim.faults is not None


def test_pin_actions_need_no_connection() -> None:
    m = load("actions:\n  - {at: 1s, node: client, action: pin_nonce, value: \"0x00\"}\n"
             "  - {at: 1s, node: gateway, action: pin_child_spi, value: C0FF}\n")
    assert [(a.action, a.connection, a.value_bytes) for a in m.actions] == [
        ("pin_nonce", None, b"\x00"), ("pin_child_spi", None, b"\xc0\xff")]


@pytest.mark.parametrize("extra,expected", [
    ("faults:\n  - {carries: [REKEY_ME], action: drop}\n",
     "s.yaml:11: faults[0].carries: unknown payload or notify 'REKEY_ME'"),
    ("faults:\n  - {from: laptop, action: drop}\n", "s.yaml:11: faults[0].from: unknown node 'laptop'"),
    ("faults:\n  - {action: hold, exchange: IKE_AUTH}\n", "s.yaml:11: faults[0]: hold needs until"),
    ("faults:\n  - {action: hold, until: ghost}\n", "s.yaml:11: faults[0].until: no fault named 'ghost'"),
    ("faults:\n  - {action: drop, until: x}\n  - {name: x, action: pass}\n", "s.yaml:11: faults[0]: until goes with action hold"),
    ("faults:\n  - {action: delay}\n", "s.yaml:11: faults[0]: delay needs a delay > 0"),
    ("faults:\n  - {action: drop, occurrence: 0}\n", "s.yaml:11: faults[0].occurrence: occurrence counts from 1"),
    ("faults:\n  - {action: drop, exchange: IKE_FOO}\n", "s.yaml:11: faults[0].exchange: 'IKE_FOO' is not one of "
     "'IKE_SA_INIT', 'IKE_AUTH', 'CREATE_CHILD_SA' or 'INFORMATIONAL'"),
    ("faults:\n  - {action: drop, colour: red}\n", "s.yaml:11: faults[0].colour: unknown key"),
    ("faults:\n  - {name: a, action: drop}\n  - {name: a, action: pass}\n", "s.yaml:12: faults[1].name: duplicate fault name 'a'"),
    ("actions:\n  - {at: 1s, node: client, action: pin_nonce}\n", "s.yaml:11: actions[0]: pin_nonce needs a value"),
    ("actions:\n  - {at: 1s, node: client, action: pin_nonce, value: xyz}\n",
     "s.yaml:11: actions[0].value: value 'xyz' is not hex bytes"),
    ("actions:\n  - {at: 1s, node: client, action: rekey_child}\n", "s.yaml:11: actions[0]: rekey_child needs a connection"),
    ("actions:\n  - {at: 1s, node: client, action: dpd, connection: vpn, value: \"00\"}\n",
     "s.yaml:11: actions[0]: dpd takes no value"),
])
def test_errors_name_line_and_key(extra: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(extra)
    assert str(err.value).startswith(expected), str(err.value)
