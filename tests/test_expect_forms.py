"""The sharper expectation forms (issue 17): lists of counts, time windows, SPIs, installed SPIs; each passes on the
story of ``test_expect`` and fails with an exact line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from ikesim.errors import ConfigError
from ikesim.expect import evaluate
from ikesim.metrics.results import Results
from ikesim.metrics.trace import Trace
from ikesim.scenario.expect_model import ExpectModel
from ikesim.scenario.load import load_scenario_text

sys.path.insert(0, str(Path(__file__).parent))
from test_expect import ADDR, BASE, STORY  # noqa: E402

INSTALLED = {"client": {"in": ["c2c2c2c2"], "out": ["a2a2a2a2"]}, "gateway": {"in": ["a2a2a2a2"], "out": ["c2c2c2c2"]}}
"""What the story's daemons hold at the end: the client's new CHILD_SA (c2/a2) on both sides."""


def story(installed: dict[str, dict[str, list[str]]] | None = INSTALLED) -> Results:
    trace = Trace()
    for t, node, e in STORY:
        trace.record(e, now=t, node=node)
    return Results(trace, name="story", seed=1, run=0, duration=120.0, owners={a.ip: n for n, a in ADDR.items()},
                   crypto_ops={}, nodes=["client", "gateway"], installed=installed)


@pytest.fixture(scope="module")
def run() -> Results:
    return story()


def check(expect: dict[str, Any], r: Results) -> list[str]:
    return [str(m) for m in evaluate(ExpectModel.model_validate(expect), r)]


@pytest.mark.parametrize("expect,lines", [
    # several counts of one event, each with its own where; the single form stays valid beside it
    ({"events": {"RekeyCollision": [{"count": 1, "where": {"node": "client", "won": True}},
                                    {"count": 1, "where": {"node": "gateway", "won": False}}], "RekeyStarted": 2}}, []),
    ({"events": {"RekeyCollision": [{"count": 1, "where": {"node": "client"}}, {"count": 2, "where": {"node": "gateway"}},
                                    0]}},
     ["events.RekeyCollision[node=gateway]: expected 2, got 1", "events.RekeyCollision: expected 0, got 2"]),
    # time windows, closed at both ends
    ({"events": {"ChildSaDeleted": [{"count": 2, "between": ["60s", "61s"]}, {"count": 2, "between": ["65s", "65.02s"]},
                                    {"count": 0, "between": [0, "60s"]}]}}, []),
    ({"events": {"ChildSaDeleted": {"count": 1, "where": {"node": "client"}, "between": ["64s", "66s"]}}}, []),
    ({"events": {"ChildSaDeleted": {"count": 1, "between": ["64s", "66s"]}}},
     ["events.ChildSaDeleted[between=64s..66s]: expected 1, got 2"]),
    ({"events": {"RekeyStarted": {"min": 1, "between": ["500ms", "59.9s"]}}},
     ["events.RekeyStarted[between=500ms..59.9s]: expected at least 1, got 0"]),
    ({"notifies": {"TEMPORARY_FAILURE": {"count": 1, "node": "gateway", "between": ["69s", "71s"]}}}, []),
    ({"notifies": {"TEMPORARY_FAILURE": {"count": 1, "between": [0, "1min"]}}},
     ["notifies.TEMPORARY_FAILURE[between=0s..60s]: expected 1, got 0"]),
    # exact SPIs: text with or without 0x, any case, or the number YAML makes of 0xc1c1c1c1; lists of them
    ({"events": {"RekeyCollision": [{"count": 1, "where": {"old_spi": 0xC1C1C1C1, "won": True}},
                                    {"count": 1, "where": {"old_spi": "0xA1A1A1A1", "redundant_spi": "a3a3a3a3"}}],
                 "ChildSaInstalled": {"count": 2, "where": {"spi_in": ["0xc2c2c2c2", 0xA2A2A2A2]}},
                 "ChildSaDeleted": {"count": 1, "where": {"spi_out": "A3A3A3A3", "reason": "deleted_by_peer"}}}}, []),
    ({"events": {"RekeyCollision": {"count": 1, "where": {"old_spi": 0xC2C2C2C2}}}},
     ["events.RekeyCollision[old_spi=0xc2c2c2c2]: expected 1, got 0"]),
    ({"events": {"ChildSaDeleted": {"count": 1, "where": {"spi_in": ["0xc3c3c3c3", "0xa3a3a3a3"], "reason": "rekeyed"}}}},
     ["events.ChildSaDeleted[spi_in=0xc3c3c3c3|0xa3a3a3a3, reason=rekeyed]: expected 1, got 0"]),
    # notifies and exchanges take lists too
    ({"notifies": {"TEMPORARY_FAILURE": [{"count": 1, "node": "gateway"}, {"count": 0, "node": "client"}]},
      "exchanges": {"rekey_child": [{"count": 1, "initiator": "client"}, {"count": 1, "initiator": "gateway"}]}}, []),
    ({"notifies": {"TEMPORARY_FAILURE": [{"count": 1, "node": "gateway"}, {"count": 1, "node": "client"}]},
      "exchanges": {"rekey_child": [{"count": 2, "initiator": "client"}, {"count": 1, "outcome": "ok"}]}},
     ["notifies.TEMPORARY_FAILURE[node=client]: expected 1, got 0",
      "exchanges.rekey_child[initiator=client]: expected 2, got 1", "exchanges.rekey_child[outcome=ok]: expected 1, got 2"]),
    # the SPIs each node holds at the end, exactly (either list may be left out)
    ({"installed": {"client": {"in": [0xC2C2C2C2], "out": ["a2a2a2a2"]}, "gateway": {"in": ["0xa2a2a2a2"]}}}, []),
    ({"installed": {"client": {"in": ["c2c2c2c2", "c1c1c1c1"], "out": []}, "gateway": {"out": ["0xc3c3c3c3"]}}},
     ["installed.client.in: expected [0xc1c1c1c1, 0xc2c2c2c2], got [0xc2c2c2c2]",
      "installed.client.out: expected [], got [0xa2a2a2a2]",
      "installed.gateway.out: expected [0xc3c3c3c3], got [0xc2c2c2c2]"]),
    ({"installed": {"laptop": {"in": []}}}, ["installed.laptop: expected a known node, got 'laptop'"]),
], ids=lambda v: next(iter(v)) if isinstance(v, dict) else ("true" if not v else "false"))
def test_sharper_forms(run: Results, expect: dict[str, Any], lines: list[str]) -> None:
    """True expectations give no mismatch; false ones give exactly these lines (expected vs actual)."""
    assert check(expect, run) == lines


def test_installed_needs_the_snapshot_of_a_run() -> None:
    """Results built without a simulation know nothing of what was held at the end: a mismatch, never a pass."""
    assert check({"installed": {"client": {"in": ["c2c2c2c2"]}}}, story(installed=None)) == [
        "installed.client.in: expected [0xc2c2c2c2], got nothing (the results have no record of the SAs held at the end)"]


@pytest.mark.parametrize("block,message", [
    ("expect:\n  events:\n    X: {count: 1, between: [60s, 50s]}\n",
     "x.yaml:12: expect.events.X.between: between: from (60 s) is after to (50 s)"),
    ("expect:\n  events:\n    X: {count: 1, between: 60s}\n",
     "x.yaml:12: expect.events.X.between: between: expected [from, to], two durations (got '60s')"),
    ("expect:\n  events:\n    X: [{count: 1}, {cuont: 1}]\n",
     "x.yaml:12: expect.events.X[1].cuont: unknown key (did you mean 'count'?)"),
    ("expect:\n  installed: {client: {in: [xyz]}}\n",
     "x.yaml:11: expect.installed.client.in[0]: expected a CHILD_SA SPI, 8 hex digits, e.g. 0xc1c1c1c1 (got 'xyz')"),
    ("expect:\n  installed: {client: {out: ['0xc1']}}\n",
     "x.yaml:11: expect.installed.client.out[0]: expected a CHILD_SA SPI, 8 hex digits, e.g. 0xc1c1c1c1 (got '0xc1')"),
    ("expect:\n  installed: {client: {inbound: []}}\n",
     "x.yaml:11: expect.installed.client.inbound: unknown key (known here: in, out)"),
], ids=["reversed-window", "window-not-a-pair", "list-item-key", "bad-spi", "short-spi", "installed-key"])
def test_bad_sharper_forms_name_file_line_and_key(block: str, message: str) -> None:
    """A malformed new form is a ConfigError at load time, pointing at the key."""
    with pytest.raises(ConfigError) as exc:
        load_scenario_text(BASE + block, "x.yaml")
    assert str(exc.value) == message


def test_yaml_hex_numbers_are_spis() -> None:
    """YAML reads 0xc1c1c1c1 as a number: installed keeps it as the tables write SPIs, leading zeros restored."""
    m = load_scenario_text(BASE + "expect:\n  installed: {client: {in: [0xc1c1c1c1, 0x00000101], out: ['0xA1A1A1A1']}}\n",
                           "x.yaml")
    assert m.expect is not None and m.expect.installed is not None
    spec = m.expect.installed["client"]
    assert (spec.inbound, spec.outbound) == (["c1c1c1c1", "00000101"], ["a1a1a1a1"])
