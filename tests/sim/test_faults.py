"""Scripted faults and pinned draws: exact fates, times and events on seeded two-node runs."""

from __future__ import annotations

import pytest

from ikesim.errors import ConfigError
from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy, Lifetime
from ikesim.metrics.results import Results
from ikesim.sim.faults import FaultRule
from ikesim.sim.inspect import MessageInspector
from ikesim.sim.simulation import Simulation
from ikesim.types import Address
from ikesim.wire.iana import ExchangeType

PSK = Credentials(psk=b"fault-test-psk")
NO_REKEY = Lifetime(rekey_time=0.0, life_time=0.0, rand_time=0.0)


def make_sim(rules: list[FaultRule] | None = None, *, seed: int = 5, delay: float = 0.01, start: bool = True) -> Simulation:
    """client -- gw over one link of *delay*; no lifetimes (only scripted rekeys); initiate at 0."""
    child = ChildPolicy(lifetime=NO_REKEY)
    ike = IkePolicy(lifetime=NO_REKEY)
    c = Connection(name="vpn", local_id="client@sim.test", remote_id="gw.sim.test", remote_addr=Address("10.0.0.2"),
                   credentials=PSK, ike=ike, children=(child,))
    g = Connection(name="vpn", local_id="gw.sim.test", remote_id="client@sim.test", credentials=PSK, ike=ike,
                   children=(child,))
    sim = Simulation(seed=seed)
    sim.add_node(DaemonConfig("client", (Address("10.0.0.1"),), (c,)))
    sim.add_node(DaemonConfig("gw", (Address("10.0.0.2"),), (g,)))
    sim.add_link("client", "gw", delay=delay)
    if rules is not None:
        sim.add_faults(rules)
    if start:
        sim.schedule(0.0, "client", "initiate", connection="vpn")
    return sim


def events(r: Results, name: str):  # noqa: ANN201
    return r.events[r.events["event"] == name]


def established(r: Results, node: str) -> list[float]:
    e = events(r, "IkeSaEstablished")
    return [round(t, 6) for t in e[e["node"] == node]["time"]]


def test_no_faults_baseline_times() -> None:
    """The baseline the other tests shift: IKE_SA_INIT 0-20 ms, IKE_AUTH 20-40 ms on a 10 ms link."""
    r = make_sim([]).run(10.0)
    assert established(r, "client") == [0.04]
    assert list(r.packets["fate"]) == ["delivered"] * 4
    assert events(r, "FaultApplied").empty


def test_drop_first_request_records_the_fate_and_the_retransmission_recovers() -> None:
    """Dropping the IKE_SA_INIT request: fate dropped_by_fault at the rule, resent at 4 s (strongSwan timeout)."""
    r = make_sim([FaultRule(name="lose-init", action="drop", src="client", exchange=ExchangeType.IKE_SA_INIT,
                            response=False)]).run(10.0)
    p = r.packets
    first = p.iloc[0]
    assert (first["fate"], first["fate_at"], first["exchange"], bool(first["response"])) == (
        "dropped_by_fault", "fault:lose-init", "IKE_SA_INIT", False)
    assert list(p["fate"][1:]) == ["delivered"] * 4
    fa = events(r, "FaultApplied")
    assert fa[["node", "rule", "action", "datagram", "exchange", "response", "message_id", "to"]].values.tolist() == [
        ["client", "lose-init", "drop", 1, "IKE_SA_INIT", False, 0, "gw"]]
    assert established(r, "client") == [4.04]
    d = r.summary["datagrams"]
    assert (d["sent"], d["delivered"], d["dropped_by_fault"], d["held_by_fault"]) == (5, 4, 1, 0)


def test_delay_shifts_one_message() -> None:
    """Delaying the IKE_AUTH response by 500 ms: the client establishes at 40 + 500 ms."""
    r = make_sim([FaultRule(name="slow", action="delay", delay=0.5, exchange=ExchangeType.IKE_AUTH,
                            response=True)]).run(10.0)
    assert established(r, "client") == [0.54]
    assert established(r, "gw") == [0.03]
    auth = r.packets[r.packets["exchange"] == "IKE_AUTH"]
    assert auth["time_delivered"].round(6).tolist() == [0.03, 0.54]


def test_occurrence_picks_the_nth_match_only() -> None:
    """occurrence 2 of the client's requests is the IKE_AUTH request; the first passes untouched."""
    r = make_sim([FaultRule(name="second", action="drop", src="client", response=False, occurrence=2)]).run(10.0)
    dropped = r.packets[r.packets["fate"] == "dropped_by_fault"]
    assert dropped[["exchange", "message_id"]].values.tolist() == [["IKE_AUTH", 1]]
    assert established(r, "client") == [4.04]  # IKE_AUTH resent at 20 ms + 4 s


def test_every_occurrence_inside_a_time_window() -> None:
    """occurrence every, before 5 s: the request and its first retransmission are lost, the second gets through."""
    r = make_sim([FaultRule(name="outage", action="drop", src="client", occurrence=None, before=5.0)]).run(30.0)
    dropped = r.packets[r.packets["fate"] == "dropped_by_fault"]
    assert dropped["time_sent"].round(6).tolist() == [0.0, 4.0]
    assert established(r, "client") == [11.24]  # resent at 4 s, then 4 + 7.2 s (base 1.8)


def test_duplicate_copy_is_a_sent_datagram_answered_from_the_cache() -> None:
    """A duplicated IKE_AUTH request: the copy is counted as sent, answered from the response cache (§2.1),
    and the client drops the second answer as unexpected; nothing is established twice."""
    r = make_sim([FaultRule(name="twice", action="duplicate", exchange=ExchangeType.IKE_AUTH, response=False,
                            delay=0.002)]).run(10.0)
    fa = events(r, "FaultApplied")
    assert fa[["datagram", "copies"]].values.tolist() == [[3, (4,)]]
    p = r.packets
    assert p[["id", "node", "exchange", "response"]].values.tolist() == [
        [1, "client", "IKE_SA_INIT", False], [2, "gw", "IKE_SA_INIT", True], [3, "client", "IKE_AUTH", False],
        [4, "client", "IKE_AUTH", False], [5, "gw", "IKE_AUTH", True], [6, "gw", "IKE_AUTH", True]]
    assert p.iloc[3]["time_delivered"] == pytest.approx(0.032)  # the copy: sent 2 ms later
    assert (p["fate"] == "delivered").all()
    dropped = events(r, "MessageDropped")
    assert dropped[["node", "reason"]].values.tolist() == [["client", "unexpected response"]]
    assert len(events(r, "IkeSaEstablished")) == 2 and len(events(r, "ChildSaInstalled")) == 2


def test_hold_without_release_stays_held_and_is_counted() -> None:
    """A hold whose awaited rule never picks anything: the datagram stays held (its fate), the client
    retransmits at 4 s and that copy of the request is answered."""
    rules = [FaultRule(name="wait", action="hold", until="never", exchange=ExchangeType.IKE_AUTH, response=True),
             FaultRule(name="never", action="pass", exchange=ExchangeType.INFORMATIONAL)]
    r = make_sim(rules).run(10.0)
    held = r.packets[r.packets["fate"] == "held"]
    assert held[["node", "exchange", "fate_at"]].values.tolist() == [["gw", "IKE_AUTH", "fault:wait"]]
    assert r.summary["datagrams"]["held_by_fault"] == 1
    assert established(r, "client") == [4.04]


def test_hold_with_a_longest_wait_is_released_then() -> None:
    """hold ... delay 1 s: released 1 s after it was sent when nothing releases it earlier."""
    rules = [FaultRule(name="wait", action="hold", until="never", delay=1.0, exchange=ExchangeType.IKE_AUTH,
                       response=True),
             FaultRule(name="never", action="pass", exchange=ExchangeType.INFORMATIONAL)]
    r = make_sim(rules).run(10.0)
    assert established(r, "client") == [1.04]
    # held_by_fault counts what a hold ever held; none is still held at the end (no fate "held")
    assert r.summary["datagrams"]["held_by_fault"] == 1
    assert "held" not in r.summary["datagrams"]["by_fate"]


def test_hold_until_another_message_is_delivered() -> None:
    """The IKE_AUTH response is held until the next message the gateway sends (a DPD request at 2 s) has
    been delivered at 2.01 s; only then does it leave, arriving at 2.02 s."""
    rules = [FaultRule(name="late", action="hold", until="dpd", src="gw", exchange=ExchangeType.IKE_AUTH, response=True),
             FaultRule(name="dpd", action="pass", src="gw", exchange=ExchangeType.INFORMATIONAL, response=False)]
    sim = make_sim(rules)
    sim.schedule(2.0, "gw", "dpd", connection="vpn")
    r = sim.run(10.0)
    p = r.packets.set_index("id")
    fa = events(r, "FaultApplied")
    held_id, dpd_id = (int(fa[fa["rule"] == n]["datagram"].iloc[0]) for n in ("late", "dpd"))
    assert p.loc[dpd_id, "time_delivered"] == pytest.approx(2.01)
    assert p.loc[held_id, "time_delivered"] == pytest.approx(2.02)
    assert established(r, "client") == [2.02]


def test_reorder_lets_the_next_datagram_on_the_path_overtake() -> None:
    """reorder on the gateway's IKE_AUTH response: it leaves right after the gateway's next datagram to the
    client (its DPD request at 1 s), on the same link, so it arrives after it."""
    sim = make_sim([FaultRule(name="swap", action="reorder", src="gw", exchange=ExchangeType.IKE_AUTH, response=True)])
    sim.schedule(1.0, "gw", "dpd", connection="vpn")
    r = sim.run(10.0)
    p = r.packets
    assert p[p["node"] == "gw"][["exchange", "response", "time_delivered"]].round(6).values.tolist() == [
        ["IKE_SA_INIT", True, 0.02], ["IKE_AUTH", True, 1.01], ["INFORMATIONAL", False, 1.01],
        ["INFORMATIONAL", False, 5.01]]
    # at 1.01 s the client gets the DPD request first (no IKE_SA yet: dropped), then the IKE_AUTH answer
    at = r.events[(r.events["node"] == "client") & (r.events["time"].round(6) == 1.01)]
    assert at["event"].tolist() == ["MessageDropped", "ExchangeCompleted", "IkeSaEstablished", "ChildSaInstalled"]
    assert at.iloc[0]["exchange"] == "INFORMATIONAL"
    assert established(r, "client") == [1.01]


def test_carries_sees_inside_the_encrypted_payload() -> None:
    """carries REKEY_SA picks only the CHILD_SA rekey request (inside SK), not IKE_AUTH or the Delete."""
    sim = make_sim([FaultRule(name="no-rekey", action="drop", carries=frozenset({"REKEY_SA"}), occurrence=None)])
    sim.schedule(5.0, "client", "rekey_child", connection="vpn")
    r = sim.run(20.0)
    fa = events(r, "FaultApplied")
    assert fa[["time", "exchange", "response", "message_id"]].round(6).values.tolist() == [
        [5.0, "CREATE_CHILD_SA", False, 2], [9.0, "CREATE_CHILD_SA", False, 2], [16.2, "CREATE_CHILD_SA", False, 2]]


def test_inspection_changes_no_byte_and_no_crypto_count() -> None:
    """A pass rule that decrypts every message leaves the run bit for bit as it was, crypto counts included."""
    def run(rules: list[FaultRule] | None) -> Results:
        sim = make_sim(rules)
        sim.schedule(5.0, "client", "rekey_child", connection="vpn")
        sim.schedule(8.0, "gw", "delete_child", connection="vpn")
        return sim.run(20.0)

    plain = run(None)
    watched = run([FaultRule(name="look", action="pass", carries=frozenset({"DELETE_CHILD"}), occurrence=None)])
    # the Delete of the old SA after the rekey and the scripted one, each request and its answer (RFC 7296 §1.4.1)
    fa = events(watched, "FaultApplied")
    assert fa[["node", "exchange", "response"]].values.tolist() == [
        ["client", "INFORMATIONAL", False], ["gw", "INFORMATIONAL", True],
        ["gw", "INFORMATIONAL", False], ["client", "INFORMATIONAL", True]]
    assert plain.summary["crypto_ops"] == watched.summary["crypto_ops"]
    cols = ["id", "time_sent", "node", "size", "fate", "time_delivered"]
    assert plain.packets[cols].equals(watched.packets[cols])


def test_inspector_reads_headers_and_rejects_non_ike() -> None:
    """The header view handles a non-ESP marker and refuses what is not an IKE message."""
    sim = make_sim([])
    sim.run(1.0)
    data = next(sim.collector.datagrams_sent())[5]
    h = MessageInspector.header(data)
    assert h is not None and (h.exchange, h.response, h.from_initiator, h.message_id) == (
        ExchangeType.IKE_SA_INIT, False, True, 0)
    assert MessageInspector.header(bytes(4) + data) == h
    assert MessageInspector.header(b"\x01\x02") is None
    insp = MessageInspector({n: node.daemon for n, node in sim.nodes.items()})
    assert insp.carries("client", h) >= {"SA", "KE", "NONCE"}


@pytest.mark.parametrize("kwargs,message", [
    ({"action": "explode"}, "unknown action 'explode'"),
    ({"action": "drop", "carries": frozenset({"REKEY_ME"})}, "carries unknown name(s) REKEY_ME"),
    ({"action": "hold"}, "hold needs until"),
    ({"action": "delay"}, "delay needs a delay > 0"),
    ({"action": "drop", "occurrence": 0}, "occurrence counts from 1"),
])
def test_bad_rules_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FaultRule(name="r", **kwargs)


def test_until_must_name_a_rule_and_names_are_unique() -> None:
    sim = make_sim(None)
    with pytest.raises(ConfigError, match="until names no fault rule 'ghost'"):
        sim.add_faults([FaultRule(name="h", action="hold", until="ghost")])
    with pytest.raises(ConfigError, match="duplicate fault name"):
        sim.add_faults([FaultRule(name="x", action="drop"), FaultRule(name="x", action="pass")])


def test_pinned_nonce_and_spis_begin_with_the_value() -> None:
    """pin_* actions queue a prefix for the node's next draw; the rest stays random and seeded."""
    sim = make_sim([], start=False)
    sim.schedule(0.0, "client", "pin_nonce", value=b"\x00\xff")
    sim.schedule(0.0, "client", "pin_ike_spi", value=b"\xab\xcd")
    sim.schedule(0.0, "gw", "pin_child_spi", value=b"\xc0\xff\xee")
    sim.schedule(0.0, "client", "initiate", connection="vpn")
    r = sim.run(1.0)
    sa = next(iter(sim.nodes["client"].daemon.sas.values()))
    assert sa.nonce_i[:2] == b"\x00\xff" and len(sa.nonce_i) == 32
    assert sa.spi_i[:2] == b"\xab\xcd"
    inst = events(r, "ChildSaInstalled")
    assert inst[inst["node"] == "gw"]["spi_in"].iloc[0].startswith("c0ffee")
    pins = events(r, "ActionExecuted")
    assert pins[pins["action"].str.startswith("pin_")]["target"].tolist() == ["00ff", "abcd", "c0ffee"]


def test_pin_needs_a_value_and_other_actions_take_none() -> None:
    sim = make_sim([])
    with pytest.raises(ConfigError, match="'pin_nonce': needs value"):
        sim.schedule(1.0, "client", "pin_nonce")
    with pytest.raises(ConfigError, match="'dpd': takes no value"):
        sim.schedule(1.0, "client", "dpd", connection="vpn", value=b"\x00")
