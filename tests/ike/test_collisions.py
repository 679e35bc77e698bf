"""Rekey races, sans-IO: simultaneous rekeys (RFC 7296 §2.8.1, §2.8.2) and exchange collisions (§2.25).

Each test drives two daemons by hand, message by message, so the order in which the four messages of a
collision arrive is exact. Nonces are pinned with ``Rng.force("nonce", prefix)`` so that every ordering of
the four nonces can be forced: the SA created with the lowest one is redundant and is deleted by the peer
that created it; the peer that created the other deletes the old SA.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from ikepeers import Peers, make_peers, names

from ikesim.ike import events as ev
from ikesim.ike.daemon import IkeDaemon
from ikesim.types import Datagram

T = 10.0
LINGER = 5.0


def _send(to: IkeDaemon, d: Datagram, now: float = T) -> list[Datagram]:
    """Deliver one datagram and return what the receiver answers."""
    to.receive_datagram(d.data, d.src, d.dst, now)
    return to.datagrams_to_send(now)


@dataclass
class Race:
    """A started simultaneous CHILD_SA rekey: A and B, their old SPIs and their two requests."""

    p: Peers
    a: IkeDaemon
    b: IkeDaemon
    old_a: bytes
    old_b: bytes
    req_a: Datagram
    req_b: Datagram


def _pins(lowest: str) -> dict[str, bytes]:
    """Nonce prefixes making *lowest* (ni_a, nr_b: A's exchange; ni_b, nr_a: B's exchange) the lowest."""
    pins = {"ni_a": b"\x80", "nr_b": b"\x90", "ni_b": b"\xa0", "nr_a": b"\xb0"}
    pins[lowest] = b"\x00"
    return pins


def _start_child_race(first: str, lowest: str) -> Race:
    p = make_peers()
    c_spi, g_spi = p.establish()
    a = p.client if first == "client" else p.gateway
    b = p.other(a)
    old_a, old_b = (c_spi, g_spi) if a is p.client else (g_spi, c_spi)
    pins = _pins(lowest)
    # Each node draws its own request's nonce first, then the one of its answer to the peer's request.
    a.rng.force("nonce", pins["ni_a"])
    a.rng.force("nonce", pins["nr_a"])
    b.rng.force("nonce", pins["ni_b"])
    b.rng.force("nonce", pins["nr_b"])
    a.rekey_child_sa(old_a, T)
    b.rekey_child_sa(old_b, T)
    (req_a,) = a.datagrams_to_send(T)
    (req_b,) = b.datagrams_to_send(T)
    p.events(a)
    p.events(b)
    return Race(p, a, b, old_a, old_b, req_a, req_b)


LOWEST = ["ni_a", "nr_b", "ni_b", "nr_a"]
"""Which of the four nonces is the lowest: ni_a/nr_b make A's new SA redundant, ni_b/nr_a B's."""


@pytest.mark.parametrize("first", ["client", "gateway"])
@pytest.mark.parametrize("lowest", LOWEST)
@pytest.mark.parametrize("responses", ["a_first", "b_first"])
def test_simultaneous_child_rekey_lowest_nonce_is_redundant(first: str, lowest: str, responses: str) -> None:
    """§2.8.1: both exchanges complete; the SA with the lowest nonce is deleted by its creator, the old by the other."""
    r = _start_child_race(first, lowest)
    p, a, b = r.p, r.a, r.b
    # Both requests cross: each peer answers the other's as usual and notes the collision.
    (resp_b,) = _send(a, r.req_b)
    (resp_a,) = _send(b, r.req_a)
    ea, eb = p.events(a), p.events(b)
    assert names(ea) == names(eb) == ["ChildSaInstalled"]
    assert ea[0].outbound is False and eb[0].outbound is False  # the old SA stays outbound meanwhile
    peer_new_a, peer_new_b = ea[0], eb[0]  # B's SA on A, A's SA on B
    assert (peer_new_a.rekey_of, peer_new_b.rekey_of) == (r.old_a, r.old_b)
    a_redundant = lowest in ("ni_a", "nr_b")
    winner, loser = (b, a) if a_redundant else (a, b)
    # The two responses arrive in either order; each peer decides as soon as its own is answered.
    order = [(a, resp_a), (b, resp_b)] if responses == "a_first" else [(b, resp_b), (a, resp_a)]
    deletes = [(p.other(node), d) for node, resp in order for d in _send(node, resp)]
    ew, el = p.events(winner), p.events(loser)
    assert names(ew) == ["ExchangeCompleted", "ChildSaInstalled", "RekeyCollision", "RekeyCompleted", "ExchangeStarted"]
    assert names(el) == ["ExchangeCompleted", "ChildSaInstalled", "RekeyCollision", "RekeyCompleted", "ExchangeStarted"]
    own_w, own_l = ew[1], el[1]
    peer_new_w = peer_new_a if winner is a else peer_new_b
    peer_new_l = peer_new_b if winner is a else peer_new_a
    # The two new pairs match across the peers.
    assert (own_w.spi_in, own_w.spi_out) == (peer_new_l.spi_out, peer_new_l.spi_in)
    assert (own_l.spi_in, own_l.spi_out) == (peer_new_w.spi_out, peer_new_w.spi_in)
    assert own_w.outbound is True and own_l.outbound is False
    old_w, old_l = (r.old_a, r.old_b) if winner is a else (r.old_b, r.old_a)
    assert (ew[2].won, ew[2].old_spi, ew[2].redundant_spi, ew[2].resolution) == (True, old_w, peer_new_w.spi_in, "nonces")
    assert (el[2].won, el[2].old_spi, el[2].redundant_spi, el[2].resolution) == (False, old_l, own_l.spi_in, "nonces")
    assert (ew[3].initiator, ew[3].collision, ew[3].new_spi) == (True, True, own_w.spi_in)
    assert (el[3].initiator, el[3].collision, el[3].new_spi) == (False, True, peer_new_l.spi_in)
    # The winner deletes the old SA, the loser its redundant one.
    assert (ew[4].purpose, ew[4].reason) == ("delete_child", "rekeyed")
    assert (el[4].purpose, el[4].reason) == ("delete_child", "redundant")
    for to, d in deletes:  # the two Deletes cross
        answers = _send(to, d)
        p.other(to).receive_datagram(answers[0].data, answers[0].src, answers[0].dst, T)
    p.settle(T)
    ew, el = p.events(winner), p.events(loser)
    assert [(type(e).__name__, getattr(e, "spi_in", None), getattr(e, "reason", None)) for e in ew
            if not isinstance(e, ev.ExchangeCompleted)] == [("ChildSaDeleted", peer_new_w.spi_in, "redundant")]
    # (in the order the two Deletes happened to cross)
    assert sorted((type(e).__name__, e.spi_in, getattr(e, "replaces", None) or getattr(e, "reason", None)) for e in el
                  if isinstance(e, (ev.ChildSaOutboundInstalled, ev.ChildSaDeleted))) == [
        ("ChildSaDeleted", own_l.spi_in, "redundant"), ("ChildSaOutboundInstalled", peer_new_l.spi_in, old_l)]
    # Settled: one pair on each side, the winner's, outbound on both; the old SAs linger 5 s inbound.
    assert winner.child_sa_spis() == [own_w.spi_in] and loser.child_sa_spis() == [peer_new_l.spi_in]
    assert [c.spi_in for c in winner.children.values() if c.outbound] == [own_w.spi_in]
    assert [c.spi_in for c in loser.children.values() if c.outbound] == [peer_new_l.spi_in]
    assert set(winner.children) == {own_w.spi_in, old_w} and set(loser.children) == {peer_new_l.spi_in, old_l}
    p.run_timers(T + LINGER)
    assert set(winner.children) == {own_w.spi_in} and set(loser.children) == {peer_new_l.spi_in}


def _start_ike_race(first: str, lowest: str) -> Race:
    p = make_peers()
    c_spi, g_spi = p.establish()
    a = p.client if first == "client" else p.gateway
    b = p.other(a)
    pins = _pins(lowest)
    a.rng.force("nonce", pins["ni_a"])
    a.rng.force("nonce", pins["nr_a"])
    b.rng.force("nonce", pins["ni_b"])
    b.rng.force("nonce", pins["nr_b"])
    (ike_a,), (ike_b,) = a.ike_sa_spis(), b.ike_sa_spis()
    a.rekey_ike_sa(ike_a, T)
    b.rekey_ike_sa(ike_b, T)
    (req_a,) = a.datagrams_to_send(T)
    (req_b,) = b.datagrams_to_send(T)
    p.events(a)
    p.events(b)
    return Race(p, a, b, ike_a, ike_b, req_a, req_b)


@pytest.mark.parametrize("first", ["client", "gateway"])
@pytest.mark.parametrize("lowest", LOWEST)
def test_simultaneous_ike_rekey_lowest_nonce_is_redundant(first: str, lowest: str) -> None:
    """§2.8.2: the IKE_SA with the lowest nonce is deleted by its creator; the CHILD_SAs move to the other."""
    r = _start_ike_race(first, lowest)
    p, a, b = r.p, r.a, r.b
    children_a, children_b = set(a.children), set(b.children)
    (resp_b,) = _send(a, r.req_b)
    (resp_a,) = _send(b, r.req_a)
    ea, eb = p.events(a), p.events(b)
    assert names(ea) == names(eb) == ["IkeSaEstablished"]  # the peer's new IKE_SA, no CHILD_SA moved yet
    peer_new_a, peer_new_b = ea[0], eb[0]
    assert a.ike_sa_info(r.old_a).children == tuple(children_a)
    a_redundant = lowest in ("ni_a", "nr_b")
    winner, loser = (b, a) if a_redundant else (a, b)
    deletes = [(p.other(node), d) for node, resp in ((a, resp_a), (b, resp_b)) for d in _send(node, resp)]
    ew, el = p.events(winner), p.events(loser)
    assert names(ew) == ["ExchangeCompleted", "IkeSaEstablished", "RekeyCollision", "RekeyCompleted", "ExchangeStarted"]
    assert names(el) == ["ExchangeCompleted", "IkeSaEstablished", "RekeyCollision", "RekeyCompleted", "ExchangeStarted"]
    own_w, own_l = ew[1], el[1]
    peer_new_w = peer_new_a if winner is a else peer_new_b
    peer_new_l = peer_new_b if winner is a else peer_new_a
    assert (own_w.spi_i, own_w.spi_r) == (peer_new_l.spi_i, peer_new_l.spi_r)
    assert (own_l.spi_i, own_l.spi_r) == (peer_new_w.spi_i, peer_new_w.spi_r)
    w_local = own_w.spi_i  # the winner initiated its own new IKE_SA: its local SPI is spi_i
    l_survivor = peer_new_l.spi_r  # on the loser that IKE_SA is one it answered: local SPI spi_r
    assert (ew[2].won, ew[2].redundant_spi, ew[2].resolution) == (True, peer_new_w.spi_r, "nonces")
    assert (el[2].won, el[2].redundant_spi, el[2].resolution) == (False, own_l.spi_i, "nonces")
    assert (ew[3].initiator, ew[3].collision, ew[3].new_spi) == (True, True, w_local)
    assert (el[3].initiator, el[3].collision, el[3].new_spi) == (False, True, l_survivor)
    # the winner deletes the old IKE_SA (on it), the loser its redundant one (on that one)
    assert (ew[4].purpose, ew[4].reason, ew[4].spi_i) == ("delete_ike", "rekeyed", a.ike_sa_info(r.old_a).spi_i
                                                           if winner is a else b.ike_sa_info(r.old_b).spi_i)
    assert (el[4].purpose, el[4].reason, el[4].spi_i, el[4].spi_r) == ("delete_ike", "redundant", own_l.spi_i, own_l.spi_r)
    for to, d in deletes:
        (answer,) = _send(to, d)
        p.other(to).receive_datagram(answer.data, answer.src, answer.dst, T)
    p.settle(T)
    # One IKE_SA left on each side, the winner's, owning every CHILD_SA; nothing else.
    assert winner.ike_sa_spis() == [w_local] and loser.ike_sa_spis() == [l_survivor]
    assert set(winner.ike_sa_info(w_local).children) == (children_a if winner is a else children_b)
    assert set(loser.ike_sa_info(l_survivor).children) == (children_b if winner is a else children_a)
    assert set(winner.sas) == {w_local} and set(loser.sas) == {l_survivor}
    ew, el = p.events(winner), p.events(loser)
    old_spi_i = r.req_a.data[:8]  # the IKE header of a request on the old IKE_SA starts with its spi_i
    assert sorted((e.spi_i, e.reason) for e in ew + el if isinstance(e, ev.IkeSaDeleted)) == sorted([
        (peer_new_w.spi_i, "redundant"), (own_l.spi_i, "redundant"), (old_spi_i, "rekeyed"), (old_spi_i, "rekeyed")])


def test_child_rekey_finished_first_gets_temporary_failure() -> None:
    """§2.25.1: A's rekey completes before B's request arrives; A refuses it, B takes A's new SA, no retry."""
    r = _start_child_race("client", "ni_a")
    p, a, b = r.p, r.a, r.b
    (resp_a,) = _send(b, r.req_a)  # B answers A's request (and notes the collision)
    delete_old = _send(a, resp_a)  # A is done: new SA installed, Delete of the old one queued
    ea = p.events(a)
    assert names(ea) == ["ExchangeCompleted", "ChildSaInstalled", "RekeyCompleted", "ExchangeStarted"]
    assert ea[2].collision is False and ea[1].outbound is True
    (temp_fail,) = _send(a, r.req_b)  # B's request arrives late: the old SA is being deleted
    ea = p.events(a)
    assert [type(e).__name__ for e in ea] == ["RekeyCollision", "ErrorNotifySent"]
    assert (ea[0].won, ea[0].redundant_spi, ea[0].resolution, ea[1].notify) == (
        True, b"", "temporary_failure", "TEMPORARY_FAILURE")
    b.receive_datagram(temp_fail.data, temp_fail.src, temp_fail.dst, T)
    eb = p.events(b)
    assert names(eb) == ["ChildSaInstalled", "ErrorNotifyReceived", "ExchangeCompleted", "RekeyCollision",
                         "RekeyCompleted"]
    assert (eb[3].won, eb[3].resolution) == (False, "temporary_failure")
    assert (eb[4].initiator, eb[4].new_spi) == (False, eb[0].spi_in)
    assert b.get_timer() is None or b.timers.deadline(("retry_child", r.old_b)) is None  # no retry
    (d,) = delete_old
    b.receive_datagram(d.data, d.src, d.dst, T)
    p.settle(T)
    assert a.child_sa_spis() == [ea_new := [e for e in p.log["client"] if isinstance(e, ev.ChildSaInstalled)][-1].spi_in]
    assert b.child_sa_spis() == [eb[0].spi_in] and b.children[eb[0].spi_in].spi_out == ea_new
    assert b.children[eb[0].spi_in].outbound is True


@pytest.mark.parametrize("lowest", LOWEST)
def test_lost_response_in_collision_still_installs_outbound(lowest: str) -> None:
    """The response to B's request is lost; B's retransmission gets the cached answer and both settle on one
    pair with outbound installed on both sides (the strongSwan report: a lost response left it uninstalled)."""
    r = _start_child_race("client", lowest)
    p, a, b = r.p, r.a, r.b
    _send(a, r.req_b)  # A answers B's request: lost
    (resp_a,) = _send(b, r.req_a)
    for d in _send(a, resp_a):  # A decides and sends its Delete; B answers it
        (answer,) = _send(b, d)
        a.receive_datagram(answer.data, answer.src, answer.dst, T)
    p.settle(T)
    b.handle_timer(T + 4.0)  # B retransmits its request (RFC 7296 §2.1): answered from A's cache
    p.settle(T + 4.0)
    for d in (a, b):
        p.events(d)
    survivors_a, survivors_b = a.child_sa_spis(), b.child_sa_spis()
    assert len(survivors_a) == len(survivors_b) == 1
    (sa_a,), (sa_b,) = survivors_a, survivors_b
    assert a.children[sa_a].spi_out == sa_b and b.children[sa_b].spi_out == sa_a
    assert a.children[sa_a].outbound and b.children[sa_b].outbound
    assert [c.spi_in for c in a.children.values() if c.outbound] == [sa_a]
    assert [c.spi_in for c in b.children.values() if c.outbound] == [sa_b]
    created_by_a = a.children[sa_a].initiator
    assert created_by_a == (lowest in ("ni_b", "nr_a"))


def test_winner_delete_overtakes_loser_response() -> None:
    """The winner's Delete of the old SA reaches the loser before the loser's own response (reordered): the loser
    answers it and sends with the winner's SA at once, but keeps the old SA inbound until its own rekey concludes;
    then the old one lingers as rekeyed (never "deleted by peer") and the loser deletes its redundant one (RFC 7296
    §2.8.1, §2.25.1; strongSwan test_collision_delayed_response)."""
    r = _start_child_race("client", "ni_b")  # B's exchange holds the lowest nonce: A wins
    p, a, b = r.p, r.a, r.b
    (resp_b,) = _send(a, r.req_b)
    (resp_a,) = _send(b, r.req_a)
    peer_new_b = [e for e in p.events(b) if isinstance(e, ev.ChildSaInstalled)][0].spi_in  # A's SA, on B
    (delete_old,) = _send(a, resp_a)
    p.events(a)
    (answer,) = _send(b, delete_old)  # overtakes resp_b
    eb = p.events(b)
    assert [(type(e).__name__, getattr(e, "case", None), e.spi_in if isinstance(e, ev.ChildSaOutboundInstalled)
             else e.spi, getattr(e, "replaces", None)) for e in eb] == [
        ("ExchangeCollision", "delete_vs_rekey", r.old_b, None), ("ChildSaOutboundInstalled", None, peer_new_b, r.old_b)]
    assert r.old_b in b.children and b.children[peer_new_b].outbound  # the old SA is kept (inbound) meanwhile
    a.receive_datagram(answer.data, answer.src, answer.dst, T)
    assert [(type(e).__name__, getattr(e, "spi_in", None)) for e in p.events(a) if isinstance(e, ev.ChildSaDeleted)] == []
    (delete_redundant,) = _send(b, resp_b)
    eb = p.events(b)
    assert names(eb) == ["ExchangeCompleted", "ChildSaInstalled", "RekeyCollision", "RekeyCompleted", "ExchangeStarted"]
    own_b = eb[1].spi_in
    assert (eb[1].outbound, eb[2].won, eb[2].resolution, eb[2].redundant_spi) == (False, False, "nonces", own_b)
    assert (eb[3].old_spi, eb[3].new_spi, eb[3].initiator, eb[3].collision) == (r.old_b, peer_new_b, False, True)
    assert (eb[4].purpose, eb[4].reason) == ("delete_child", "redundant")
    a.receive_datagram(delete_redundant.data, delete_redundant.src, delete_redundant.dst, T)
    p.settle(T)
    eb = p.events(b)
    assert [(e.spi_in, e.reason) for e in eb if isinstance(e, ev.ChildSaDeleted)] == [(own_b, "redundant")]
    assert b.child_sa_spis() == [peer_new_b] and b.children[peer_new_b].outbound
    assert a.child_sa_spis() == [b.children[peer_new_b].spi_out]
    p.run_timers(T + LINGER)  # the old SA lingers delete_rekeyed_delay, then goes as rekeyed
    assert [(e.spi_in, e.reason) for e in p.events(b) if isinstance(e, ev.ChildSaDeleted)] == [(r.old_b, "rekeyed")]


def test_rekey_meets_delete() -> None:
    """§2.25.1: B deletes the CHILD_SA A is rekeying: B refuses with TEMPORARY_FAILURE, A answers the Delete
    as usual but keeps the SA, still outbound, until its rekey concludes; the refusal then removes it (strongSwan
    ``keep_while_rekeying``, ``ignore_child_sa_failure``). Both end without the CHILD_SA and A does not retry."""
    p = make_peers()
    c_spi, g_spi = p.establish()
    p.client.rekey_child_sa(c_spi, T)
    p.gateway.delete_child_sa(g_spi, T)
    (rekey,) = p.client.datagrams_to_send(T)
    (delete,) = p.gateway.datagrams_to_send(T)
    (temp_fail,) = _send(p.gateway, rekey)
    (answer,) = _send(p.client, delete)
    ec, eg = p.events(p.client), p.events(p.gateway)
    assert [(type(e).__name__, getattr(e, "case", None)) for e in eg if not isinstance(e, ev.ExchangeStarted)] == [
        ("ExchangeCollision", "rekey_vs_delete"), ("ErrorNotifySent", None)]
    assert [(type(e).__name__, getattr(e, "case", getattr(e, "reason", None))) for e in ec
            if not isinstance(e, (ev.RekeyStarted, ev.ExchangeStarted))] == [("ExchangeCollision", "delete_vs_rekey")]
    assert p.client.children[c_spi].outbound  # kept until the rekey concludes
    p.client.receive_datagram(temp_fail.data, temp_fail.src, temp_fail.dst, T)
    p.gateway.receive_datagram(answer.data, answer.src, answer.dst, T)
    ec, eg = p.events(p.client), p.events(p.gateway)
    assert [(type(e).__name__, getattr(e, "outcome", getattr(e, "reason", None))) for e in ec
            if isinstance(e, (ev.ExchangeCompleted, ev.ChildSaDeleted))] == [
        ("ExchangeCompleted", "TEMPORARY_FAILURE"), ("ChildSaDeleted", "deleted_by_peer")]
    assert [(e.spi_in, e.reason) for e in eg if isinstance(e, ev.ChildSaDeleted)] == [(g_spi, "deleted_locally")]
    assert p.client.children == {} and p.gateway.children == {}
    assert p.client.timers.deadline(("retry_child", c_spi)) is None


def test_crossing_child_deletes() -> None:
    """§1.4.1: both delete the same CHILD_SA at once; each answers without a Delete payload and removes it."""
    p = make_peers()
    c_spi, g_spi = p.establish()
    p.client.delete_child_sa(c_spi, T)
    p.gateway.delete_child_sa(g_spi, T)
    (dc,), (dg,) = p.client.datagrams_to_send(T), p.gateway.datagrams_to_send(T)
    (ac,) = _send(p.client, dg)
    (ag,) = _send(p.gateway, dc)
    p.client.receive_datagram(ag.data, ag.src, ag.dst, T)
    p.gateway.receive_datagram(ac.data, ac.src, ac.dst, T)
    for d, _spi in ((p.client, c_spi), (p.gateway, g_spi)):
        e = p.events(d)
        assert [(type(x).__name__, getattr(x, "case", getattr(x, "reason", None))) for x in e
                if isinstance(x, (ev.ExchangeCollision, ev.ChildSaDeleted))] == [
            ("ExchangeCollision", "delete_vs_delete"), ("ChildSaDeleted", "deleted_locally")]
        assert d.children == {}


def test_child_rekey_meets_ike_rekey() -> None:
    """§2.25.2: A rekeys the CHILD_SA while B rekeys the IKE_SA: both get TEMPORARY_FAILURE and retry later,
    at 15 s minus a random amount below 10 s; after the retries one IKE_SA and one CHILD_SA remain."""
    p = make_peers()
    c_spi, _ = p.establish()
    p.client.rekey_child_sa(c_spi, T)
    p.gateway.rekey_ike_sa(p.gateway.ike_sa_spis()[0], T)
    p.settle(T)
    ec, eg = p.events(p.client), p.events(p.gateway)
    for e, _purpose in ((ec, "rekey_ike"), (eg, "rekey_child")):
        assert [x.case for x in e if isinstance(x, ev.ExchangeCollision)] == ["child_vs_ike_rekey"]
        assert [x.notify for x in e if isinstance(x, ev.ErrorNotifySent)] == ["TEMPORARY_FAILURE"]
    assert [x.outcome for x in ec if isinstance(x, ev.ExchangeCompleted)] == ["TEMPORARY_FAILURE"]
    retry_c = p.client.timers.deadline(("retry_child", c_spi))
    retry_g = p.gateway.timers.deadline(("retry_ike", p.gateway.ike_sa_spis()[0]))
    assert retry_c is not None and retry_g is not None
    assert T + 5.0 <= retry_c <= T + 15.0 and T + 5.0 <= retry_g <= T + 15.0 and retry_c != retry_g
    p.run_timers(T + 60.0)
    assert len(p.client.ike_sa_spis()) == len(p.gateway.ike_sa_spis()) == 1
    assert len(p.client.child_sa_spis()) == len(p.gateway.child_sa_spis()) == 1
    (cs,), (gs,) = p.client.child_sa_spis(), p.gateway.child_sa_spis()
    assert cs != c_spi and p.client.children[cs].spi_out == gs


def test_ike_delete_while_child_rekey_in_flight() -> None:
    """B deletes the IKE_SA while A's CHILD_SA rekey is in flight: B refuses the rekey (TEMPORARY_FAILURE),
    A answers the Delete and removes everything, its exchange aborted; nothing is left on either side."""
    p = make_peers()
    c_spi, _ = p.establish()
    p.client.rekey_child_sa(c_spi, T)
    p.gateway.delete_ike_sa(p.gateway.ike_sa_spis()[0], T)
    p.settle(T)
    ec, eg = p.events(p.client), p.events(p.gateway)
    assert [x.case for x in eg if isinstance(x, ev.ExchangeCollision)] == ["ike_closing"]
    assert [x.case for x in ec if isinstance(x, ev.ExchangeCollision)] == ["delete_vs_rekey"]
    assert [x.outcome for x in ec if isinstance(x, ev.ExchangeCompleted)] == ["aborted"]
    assert [x.reason for x in ec if isinstance(x, ev.IkeSaDeleted)] == ["deleted_by_peer"]
    assert [x.reason for x in eg if isinstance(x, ev.IkeSaDeleted)] == ["deleted_locally"]
    assert p.client.sas == {} and p.gateway.sas == {} and p.client.children == {} == p.gateway.children


def test_response_after_the_peers_delete_of_the_new_sa() -> None:
    """B answers A's CREATE_CHILD_SA, then deletes the new SA; the Delete overtakes the response. A must not
    keep an SA the peer no longer has: it installs and removes it at once (RFC 7296 §1.4.1, §2.25)."""
    p = make_peers()
    p.establish()
    (ike,) = p.client.ike_sa_spis()
    p.client.create_child_sa(ike, "net", T)
    (req,) = p.client.datagrams_to_send(T)
    (resp,) = _send(p.gateway, req)
    new_g = [e for e in p.events(p.gateway) if isinstance(e, ev.ChildSaInstalled)][0].spi_in
    p.gateway.delete_child_sa(new_g, T)
    (delete,) = p.gateway.datagrams_to_send(T)
    (answer,) = _send(p.client, delete)  # the client does not know that SPI yet
    p.gateway.receive_datagram(answer.data, answer.src, answer.dst, T)
    p.client.receive_datagram(resp.data, resp.src, resp.dst, T)
    ec = p.events(p.client)
    assert [(type(e).__name__, getattr(e, "reason", None)) for e in ec if isinstance(e, (ev.ChildSaInstalled, ev.ChildSaDeleted))] == [
        ("ChildSaInstalled", None), ("ChildSaDeleted", "deleted_by_peer")]
    assert ec[-1].spi_out == new_g
    assert len(p.client.child_sa_spis()) == len(p.gateway.child_sa_spis()) == 1
    assert all(c.spi_out != new_g for c in p.client.children.values())


def test_hard_expiry_during_a_rekey_stops_outbound_use() -> None:
    """The rekey request is lost until past the hard lifetime: the SA stops being sent with at once
    (RFC 7296 §2.8); when the retransmission is answered the new SA takes over and the old one goes."""
    from ikesim.ike.config import ChildPolicy, Lifetime

    child = (ChildPolicy(lifetime=Lifetime(rekey_time=100.0, life_time=103.0, rand_time=0.0)),)
    p = make_peers(client_children=child, gateway_children=(ChildPolicy(lifetime=Lifetime(
        rekey_time=0.0, life_time=200.0, rand_time=0.0)),))
    c_spi, g_spi = p.establish()
    p.client.handle_timer(100.0)
    p.client.datagrams_to_send(100.0)  # the rekey request is lost
    p.client.handle_timer(103.0)
    ec = p.events(p.client)
    assert [type(e).__name__ for e in ec] == ["RekeyStarted", "ExchangeStarted", "SaExpired"]
    assert p.client.children[c_spi].outbound is False and p.client.children[c_spi].expired
    assert p.client.get_timer() == 104.0  # the first retransmission, 4 s after the request
    p.client.handle_timer(104.0)
    p.settle(104.0)
    p.events(p.client)
    (new_c,) = p.client.child_sa_spis()
    assert new_c != c_spi and p.client.children[new_c].outbound
    assert c_spi not in p.client.child_sa_spis() and g_spi not in p.gateway.child_sa_spis()


def test_peer_rekeying_the_same_child_sa_twice_gets_child_sa_not_found() -> None:
    """A buggy peer rekeys a CHILD_SA it has already rekeyed and deleted: only its inbound half lingers, so it is
    not found (RFC 7296 §2.25.1, as strongSwan answers); no second new SA."""
    p = make_peers()
    c_spi, g_spi = p.establish()
    p.gateway.rekey_child_sa(g_spi, T)
    (req,) = p.gateway.datagrams_to_send(T)
    (resp,) = _send(p.client, req)
    p.gateway.receive_datagram(resp.data, resp.src, resp.dst, T)
    p.settle(T)  # the Delete of the old SA: both keep it inbound for 5 s (delete_rekeyed_delay)
    p.events(p.client)
    p.events(p.gateway)
    p.gateway.children[g_spi].state = type(p.gateway.children[g_spi].state).INSTALLED  # the bug
    p.gateway.rekey_child_sa(g_spi, T + 1)
    (again,) = p.gateway.datagrams_to_send(T + 1)
    (refused,) = _send(p.client, again, T + 1)
    ec = p.events(p.client)
    assert [(type(e).__name__, getattr(e, "case", getattr(e, "notify", None))) for e in ec] == [
        ("ExchangeCollision", "duplicate_rekey"), ("ErrorNotifySent", "CHILD_SA_NOT_FOUND")]
    assert len([c for c in p.client.children.values() if c.state.value == "installed"]) == 1
