"""Expectations (``expect:``) against hand-made Results: each kind passes on the truth and fails with an exact line."""

from __future__ import annotations

from typing import Any

import pytest

from ikesim.errors import ConfigError
from ikesim.expect import Mismatch, evaluate
from ikesim.ike import events as ev
from ikesim.metrics.recorder import InvariantViolated
from ikesim.metrics.results import Results
from ikesim.metrics.trace import Trace
from ikesim.scenario.expect_model import ExpectModel
from ikesim.scenario.load import load_scenario_text
from ikesim.types import Address

SPI_I, SPI_R = bytes.fromhex("1111111111111111"), bytes.fromhex("2222222222222222")
C1, G1 = bytes.fromhex("c1c1c1c1"), bytes.fromhex("a1a1a1a1")
C2, G2 = bytes.fromhex("c2c2c2c2"), bytes.fromhex("a2a2a2a2")
C3, G3 = bytes.fromhex("c3c3c3c3"), bytes.fromhex("a3a3a3a3")
ADDR = {"client": Address("10.0.0.1"), "gateway": Address("10.0.0.2")}
PEER = {"client": "gateway", "gateway": "client"}
IDS = {"spi_i": SPI_I, "spi_r": SPI_R, "connection": "vpn"}


def ike_up(node: str, initiator: bool) -> ev.IkeSaEstablished:
    return ev.IkeSaEstablished(**IDS, initiator=initiator, local=ADDR[node], peer=ADDR[PEER[node]], local_id="a",
                               peer_id="b", encr="aes256gcm16", integ="", prf="prfsha256", group="x25519", rekey_of=None,
                               rekey_at=None, expire_at=None, sk_ei=b"k", sk_er=b"k", sk_ai=b"", sk_ar=b"",
                               encr_wireshark="", integ_wireshark="")


def child_up(node: str, spi_in: bytes, spi_out: bytes, initiator: bool, rekey_of: bytes | None = None) -> ev.ChildSaInstalled:
    return ev.ChildSaInstalled(**IDS, child="net", spi_in=spi_in, spi_out=spi_out, initiator=initiator, encr="aes256gcm16",
                               integ="", pfs_group="none", local_ts="", remote_ts="", outbound=True, rekey_of=rekey_of,
                               rekey_of_out=None, rekey_at=None, expire_at=None, local=ADDR[node], peer=ADDR[PEER[node]],
                               encr_key_in=b"k", integ_key_in=b"", encr_key_out=b"k", integ_key_out=b"")


def started(node: str, purpose: str, mid: int) -> ev.ExchangeStarted:
    return ev.ExchangeStarted(**IDS, exchange="CREATE_CHILD_SA", purpose=purpose, message_id=mid, peer=ADDR[PEER[node]])


def completed(purpose: str, mid: int, outcome: str = "ok") -> ev.ExchangeCompleted:
    return ev.ExchangeCompleted(**IDS, exchange="CREATE_CHILD_SA", purpose=purpose, message_id=mid, outcome=outcome,
                                retransmissions=0)


def rekeyed(old: bytes, new: bytes, initiator: bool) -> ev.RekeyCompleted:
    return ev.RekeyCompleted(**IDS, kind=ev.SaKind.CHILD, old_spi=old, new_spi=new, initiator=initiator, collision=True)


def deleted(spi_in: bytes, spi_out: bytes, reason: str) -> ev.ChildSaDeleted:
    return ev.ChildSaDeleted(**IDS, child="net", spi_in=spi_in, spi_out=spi_out, reason=reason)


STORY: list[tuple[float, str, Any]] = [
    # IKE_SA and first CHILD_SA (c1/a1), created by the client
    (0.0, "client", ike_up("client", True)), (0.0, "gateway", ike_up("gateway", False)),
    (0.0, "client", child_up("client", C1, G1, True)), (0.0, "gateway", child_up("gateway", G1, C1, False)),
    # both rekey it at 60 s (RFC 7296 §2.8.1): the client's new SA (c2/a2) wins, the gateway's (c3/a3) is redundant
    (60.0, "client", ev.RekeyStarted(**IDS, kind=ev.SaKind.CHILD, old_spi=C1, old_spi_out=G1, trigger="command")),
    (60.0, "client", started("client", "rekey_child", 2)),
    (60.0, "gateway", ev.RekeyStarted(**IDS, kind=ev.SaKind.CHILD, old_spi=G1, old_spi_out=C1, trigger="command")),
    (60.0, "gateway", started("gateway", "rekey_child", 0)),
    (60.02, "client", child_up("client", C3, G3, False, C1)), (60.02, "client", rekeyed(C1, C3, False)),
    (60.02, "gateway", child_up("gateway", G2, C2, False, G1)), (60.02, "gateway", rekeyed(G1, G2, False)),
    (60.04, "client", completed("rekey_child", 2)), (60.04, "client", child_up("client", C2, G2, True, C1)),
    (60.04, "client", rekeyed(C1, C2, True)),
    (60.04, "client", ev.RekeyCollision(**IDS, kind=ev.SaKind.CHILD, old_spi=C1, won=True, redundant_spi=C3, resolution="nonces")),
    (60.04, "gateway", completed("rekey_child", 0)), (60.04, "gateway", child_up("gateway", G3, C3, True, G1)),
    (60.04, "gateway", rekeyed(G1, G3, True)),
    (60.04, "gateway", ev.RekeyCollision(**IDS, kind=ev.SaKind.CHILD, old_spi=G1, won=False, redundant_spi=G3, resolution="nonces")),
    (60.04, "gateway", started("gateway", "delete_child", 1)),
    (60.05, "gateway", deleted(G3, C3, "redundant")), (60.06, "client", deleted(C3, G3, "deleted_by_peer")),
    (60.08, "gateway", completed("delete_child", 1)),
    (65.0, "client", deleted(C1, G1, "rekeyed")), (65.02, "gateway", deleted(G1, C1, "rekeyed")),
    (70.0, "gateway", ev.ErrorNotifySent(**IDS, notify="TEMPORARY_FAILURE", exchange="CREATE_CHILD_SA", message_id=3)),
]


def results(extra: list[tuple[float, str, Any]] | None = None) -> Results:
    """The story above as a run's Results (no datagrams)."""
    trace = Trace()
    for t, node, e in STORY + (extra or []):
        trace.record(e, now=t, node=node)
    return Results(trace, name="story", seed=1, run=0, duration=120.0, owners={a.ip: n for n, a in ADDR.items()},
                   crypto_ops={}, nodes=["client", "gateway"])


@pytest.fixture(scope="module")
def story() -> Results:
    return results()


def check(expect: dict[str, Any], r: Results) -> list[str]:
    return [str(m) for m in evaluate(ExpectModel.model_validate(expect), r)]


@pytest.mark.parametrize("expect,lines", [
    # violations: none in the story
    ({"violations": 0}, []),
    ({"violations": {"min": 1}}, ["violations: expected at least 1, got 0"]),
    # collisions: one CHILD_SA collision, reported by both peers
    ({"collisions": 1}, []),
    ({"collisions": {"child": 1, "ike": 0}}, []),
    ({"collisions": {"child": 2}}, ["collisions.child: expected 2, got 1"]),
    ({"collisions": {"max": 0}}, ["collisions: expected at most 0, got 1"]),
    # rekeys: completed on the initiator (both exchanges of the collision completed)
    ({"rekeys": {"child": 2, "ike": 0}}, []),
    ({"rekeys": {"child": 999}}, ["rekeys.child: expected 999, got 2"]),
    ({"rekeys": 3}, ["rekeys: expected 3, got 2"]),
    # events, with where filters on fields, node, booleans and lists
    ({"events": {"ChildSaDeleted": {"count": 1, "where": {"reason": "redundant"}}}}, []),
    ({"events": {"ChildSaDeleted": {"count": 1, "where": {"reason": "redundant", "node": "client"}}}},
     ["events.ChildSaDeleted[reason=redundant, node=client]: expected 1, got 0"]),
    ({"events": {"RekeyCollision": {"count": 1, "where": {"node": "client", "won": True, "resolution": "nonces"}}}}, []),
    ({"events": {"RekeyCollision": {"count": 1, "where": {"won": False, "kind": "ike"}}}},
     ["events.RekeyCollision[won=false, kind=ike]: expected 1, got 0"]),
    ({"events": {"ChildSaDeleted": {"min": 3, "where": {"reason": ["redundant", "rekeyed"]}}}}, []),
    ({"events": {"ChildSaDeleted": {"max": 2, "where": {"reason": ["redundant", "rekeyed"]}}}},
     ["events.ChildSaDeleted[reason=redundant|rekeyed]: expected at most 2, got 3"]),
    ({"events": {"ChildSaInstalled": {"where": {"spi_in": "c2c2c2c2", "initiator": True}, "count": 1}}}, []),
    ({"events": {"RekeyStarted": 2, "ExchangeStarted": {"min": 2, "max": 4}}}, []),
    ({"events": {"RekeyStarted": {"min": 3, "max": 5}}}, ["events.RekeyStarted: expected between 3 and 5, got 2"]),
    ({"events": {"SaExpired": 0}}, []),
    ({"events": {"ChildSADeleted": 0}},
     ["events.ChildSADeleted: expected a known event, got 'ChildSADeleted' (did you mean ChildSaDeleted?)"]),
    ({"events": {"ChildSaDeleted": {"count": 0, "where": {"reasn": "x"}}}},
     ["events.ChildSaDeleted[reasn=x]: expected a known field of ChildSaDeleted, got 'reasn' (did you mean reason?)"]),
    ({"events": {"ChildSaDeleted": {"count": 0, "where": {"node": "gatway"}}}},
     ["events.ChildSaDeleted[node=gatway]: expected a known node, got 'gatway' (did you mean gateway?)"]),
    # notifies: ErrorNotifySent; when given, an unlisted notify must not be sent
    ({"notifies": {"TEMPORARY_FAILURE": 1}}, []),
    ({"notifies": {"TEMPORARY_FAILURE": {"count": 1, "node": "gateway"}}}, []),
    ({"notifies": {"TEMPORARY_FAILURE": {"count": 1, "node": "client"}}},
     ["notifies.TEMPORARY_FAILURE[node=client]: expected 1, got 0"]),
    ({"notifies": {}}, ["notifies.TEMPORARY_FAILURE: expected 0 (not listed), got 1"]),
    ({"notifies": {"TEMPORARY_FAILURE": 1, "CHILD_SA_NOT_FOUND": 0}}, []),
    # exchanges: by purpose, outcome and initiating node
    ({"exchanges": {"rekey_child": 2, "delete_child": {"count": 1, "outcome": "ok", "initiator": "gateway"}}}, []),
    ({"exchanges": {"rekey_child": {"count": 1, "outcome": "TEMPORARY_FAILURE"}}},
     ["exchanges.rekey_child[outcome=TEMPORARY_FAILURE]: expected 1, got 0"]),
    ({"exchanges": {"rekey_chid": 0}},
     ["exchanges.rekey_chid: expected a known exchange purpose, got 'rekey_chid' (did you mean rekey_child?)"]),
    # survivors: the client's new CHILD_SA and the client's IKE_SA are left
    ({"survivors": {"child": {"client": 1, "gateway": 0}, "ike": {"client": 1, "gateway": 0}}}, []),
    ({"survivors": {"child": [{"created_by": "client", "count": 1, "connection": "vpn"}], "ike": 1}}, []),
    ({"survivors": {"child": {"client": 0, "gateway": 1}}},
     ["survivors.child.client: expected 0, got 1 (spi c2c2c2c2)", "survivors.child.gateway: expected 1, got 0"]),
    ({"survivors": {"child": [{"created_by": "client", "count": 1, "connection": "other"}]}},
     ["survivors.child[created_by=client, connection=other]: expected 1, got 0"]),
    ({"survivors": {"connection": "other", "ike": 1}}, ["survivors.ike: expected 1, got 0"]),
    ({"survivors": {"child": {"min": 2}}}, ["survivors.child: expected at least 2, got 1 (spi c2c2c2c2)"]),
    ({"survivors": {"child": {"laptop": 0}}}, ["survivors.child.laptop: expected a known node, got 'laptop'"]),
    # max_rekey_latency: 40 ms on the initiators, 20 ms on the responders
    ({"max_rekey_latency": "40ms"}, []),
    ({"max_rekey_latency": {"child": "30ms", "ike": "1ms"}},
     ["max_rekey_latency.child: expected at most 30ms, got 40ms (initiator latency of the child rekey client triggered at 60s)"]),
    ({"max_rekey_latency": 0.01},
     ["max_rekey_latency: expected at most 10ms, got 40ms (initiator latency of the child rekey client triggered at 60s)"]),
    # summary: dotted keys, exact values or a {min, max} range
    ({"summary": {"sas.child_deleted": 4, "rekey_latency.child.responder.max": 0.02, "nodes": ["client", "gateway"],
                  "datagrams.sent": {"max": 0}, "collisions_by_kind": {"child_rekey": 1}}}, []),
    ({"summary": {"sas.child_deleted": 5}}, ["summary.sas.child_deleted: expected 5, got 4"]),
    ({"summary": {"redundant_sas.child": {"min": 2}}}, ["summary.redundant_sas.child: expected at least 2, got 1"]),
    ({"summary": {"sas.lost": 0}},
     ["summary.sas.lost: expected 0, got no such key (sas has: ike_established, child_installed, ike_deleted, child_deleted)"]),
    ({"summary": {"name": "other"}}, ["summary.name: expected other, got story"]),
], ids=lambda v: next(iter(v)) if isinstance(v, dict) else ("true" if not v else "false"))
def test_each_expectation_kind(story: Results, expect: dict[str, Any], lines: list[str]) -> None:
    """True expectations give no mismatch; false ones give exactly these lines."""
    assert check(expect, story) == lines


def test_several_mismatches_come_in_field_order(story: Results) -> None:
    """Mismatches follow the ExpectModel's key order, whatever the order in the file."""
    lines = check({"summary": {"seed": 2}, "rekeys": {"child": 1}, "violations": 1}, story)
    assert lines == ["violations: expected 1, got 0", "rekeys.child: expected 1, got 2", "summary.seed: expected 2, got 1"]


def test_without_expectations_only_violations_count(story: Results) -> None:
    """None or an empty expect checks that no invariant was violated, and nothing else."""
    assert evaluate(None, story) == [] and evaluate(ExpectModel(), story) == []
    bad = results([(61.0, "client", InvariantViolated(kind="sa_mismatch", connection="vpn", spi="c2c2c2c2", detail="peer has none")),
                   (62.5, "gateway", InvariantViolated(kind="duplicate_outbound", connection="vpn", spi="a2a2a2a2", detail="two"))])
    assert evaluate(None, bad) == [Mismatch(
        "violations", "0", "2 (61s client sa_mismatch vpn c2c2c2c2: peer has none; 62.5s gateway duplicate_outbound vpn a2a2a2a2: two)")]
    assert [str(m) for m in evaluate(ExpectModel.model_validate({"events": {"RekeyStarted": 2}}), bad)] == [
        "violations: expected 0, got 2 (61s client sa_mismatch vpn c2c2c2c2: peer has none; "
        "62.5s gateway duplicate_outbound vpn a2a2a2a2: two)"]
    assert check({"violations": 2}, bad) == []


def test_mismatch_reads_as_one_line() -> None:
    """str(Mismatch) is 'what: expected X, got Y'."""
    line = str(Mismatch("events.ChildSaDeleted[reason=redundant]", "1", "2"))
    assert line == "events.ChildSaDeleted[reason=redundant]: expected 1, got 2"


BASE = """\
name: tiny
duration: 2h
nodes:
  client: {addresses: [10.0.0.1]}
  gateway: {addresses: [10.0.0.2]}
links:
  - {between: [client, gateway]}
connections:
  vpn: {initiator: client, responder: gateway}
"""


@pytest.mark.parametrize("block,message", [
    ("expect:\n  violations: lots\n",
     "x.yaml:11: expect.violations: expected a count (an integer >= 0) or a mapping with count, min or max (got 'lots')"),
    ("expect:\n  events:\n    ChildSaDeleted: {count: 1, min: 2}\n",
     "x.yaml:12: expect.events.ChildSaDeleted: give count, or min and/or max, not both"),
    ("expect:\n  events:\n    ChildSaDeleted: {cuont: 1}\n",
     "x.yaml:12: expect.events.ChildSaDeleted.cuont: unknown key (did you mean 'count'?)"),
    ("expect:\n  events:\n    X: {min: 3, max: 1}\n", "x.yaml:12: expect.events.X: min 3 is greater than max 1"),
    ("expect:\n  collisions: {child: -1}\n",
     "x.yaml:11: expect.collisions.child: expected a count (an integer >= 0) or a mapping with count, min or max (got -1)"),
    ("expect:\n  notifies: {TEMPORARY_FAILUR: 1}\n",
     "x.yaml:11: expect.notifies: unknown notify type 'TEMPORARY_FAILUR' (did you mean TEMPORARY_FAILURE?)"),
    ("expect:\n  survivors:\n    child: [{created_by: client}]\n", "x.yaml:12: expect.survivors.child[0].count: required key missing"),
    ("expect:\n  max_rekey_latency: soon\n",
     "x.yaml:11: expect.max_rekey_latency: invalid duration 'soon' (use e.g. 30s, 66min, 1h30m, 500ms)"),
    ("expect:\n  colisions: 1\n", "x.yaml:11: expect.colisions: unknown key (did you mean 'collisions'?)"),
], ids=lambda v: "" if "\n" in v else v.split(": ")[1])
def test_bad_expectations_name_file_line_and_key(block: str, message: str) -> None:
    """A malformed expect: block is a ConfigError at load time, pointing at the key."""
    with pytest.raises(ConfigError) as exc:
        load_scenario_text(BASE + block, "x.yaml")
    assert str(exc.value) == message


def test_expect_block_is_parsed_into_the_model() -> None:
    """Short forms are normalised: an int is {count}, a duration is seconds, default violations 0."""
    m = load_scenario_text(BASE + "expect:\n  rekeys: {child: 1}\n  max_rekey_latency: {child: 2s}\n  collisions: {min: 1}\n",
                           "x.yaml")
    assert m.expect is not None
    assert m.expect.violations.count == 0 and m.expect.rekeys.child.count == 1  # type: ignore[union-attr]
    assert m.expect.max_rekey_latency.child == 2.0 and m.expect.collisions.min == 1  # type: ignore[union-attr]
    assert load_scenario_text(BASE, "x.yaml").expect is None
