"""Collision outcomes pinned against strongSwan's exchange tests (issue 17), sans-IO, message by message.

A Delete overtaking the answer to our own rekey (RFC 7296 §2.25.1; strongSwan test_regular_responder_incorrect_delete,
test_collision_delayed_response), a rekey of an SA whose Delete exchange is over (CHILD_SA_NOT_FOUND, §2.25.1), a
responder's hard expiry of a rekeyed SA (test_regular_responder_handle_hard_expire), crossing Deletes of a rekeyed SA
(§1.4.1), a Delete timeout after a rekey (test_regular_delete_timeout) and a new SA deleted while the Delete of the
old one is in flight (test_regular_responder_delete).
"""

from __future__ import annotations

from ikepeers import LONG, Peers, make_peers, names
from test_collisions import LINGER, T, _send, _start_child_race

from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy, Lifetime
from ikesim.ike.daemon import IkeDaemon
from ikesim.types import Datagram
from ikesim.wire.codec import unprotect_message
from ikesim.wire.payloads import DeletePayload


def _deleted_spis(receiver: IkeDaemon, d: Datagram) -> list[bytes]:
    """The SPIs the Delete payloads of INFORMATIONAL *d* name, decrypted with *receiver*'s keys."""
    (sa,) = receiver.sas.values()
    msg = unprotect_message(d.data, sa.protect_in)
    return [spi for p in msg.payloads if isinstance(p, DeletePayload) for spi in p.spis]


def _rekey_answered(p: Peers, a: IkeDaemon) -> tuple[bytes, bytes, Datagram]:
    """A rekeys its CHILD_SA; B answers; return (A's old spi_in, B's old spi_in, B's answer, not yet delivered)."""
    b = p.other(a)
    (old_a,), (old_b,) = a.child_sa_spis(), b.child_sa_spis()
    a.rekey_child_sa(old_a, T)
    (req,) = a.datagrams_to_send(T)
    (resp,) = _send(b, req)
    p.events(a)
    p.events(b)
    return old_a, old_b, resp


def test_incorrect_delete_of_the_old_sa_overtakes_the_answer() -> None:
    """B answers A's rekey, then (incorrectly) deletes the old SA; the Delete arrives first. A answers it but keeps the
    old SA outbound until its rekey concludes; the answer then completes the rekey, A sends no Delete of its own and
    the old SA lingers as rekeyed (strongSwan test_regular_responder_incorrect_delete)."""
    p = make_peers()
    p.establish()
    a, b = p.client, p.gateway
    old_a, old_b, resp = _rekey_answered(p, a)
    b.delete_child_sa(old_b, T)
    (delete_old,) = b.datagrams_to_send(T)
    (answer,) = _send(a, delete_old)
    ea = p.events(a)
    assert [(type(e).__name__, e.case, e.spi) for e in ea] == [("ExchangeCollision", "delete_vs_rekey", old_a)]
    assert _deleted_spis(b, answer) == [old_a]  # answered as usual (RFC 7296 §1.4.1)
    assert a.children[old_a].outbound  # kept, outbound too, until the rekey concludes
    assert _send(a, resp) == []  # no Delete of our own: the peer's came first
    ea = p.events(a)
    assert names(ea) == ["ExchangeCompleted", "ChildSaInstalled", "RekeyCompleted"]
    new_a = ea[1].spi_in
    assert (ea[1].outbound, ea[1].rekey_of, ea[2].old_spi, ea[2].new_spi, ea[2].initiator) == (
        True, old_a, old_a, new_a, True)
    assert [c.spi_in for c in a.children.values() if c.outbound] == [new_a]
    b.receive_datagram(answer.data, answer.src, answer.dst, T)
    eb = p.events(b)
    new_b = a.children[new_a].spi_out
    assert [(type(e).__name__, e.spi_in) for e in eb if isinstance(e, ev.ChildSaOutboundInstalled)] == [
        ("ChildSaOutboundInstalled", new_b)]
    p.run_timers(T + LINGER)
    assert [(e.spi_in, e.reason) for e in p.events(a) if isinstance(e, ev.ChildSaDeleted)] == [(old_a, "rekeyed")]
    assert [(e.spi_in, e.reason) for e in p.events(b) if isinstance(e, ev.ChildSaDeleted)] == [(old_b, "rekeyed")]
    assert a.child_sa_spis() == [new_a] and b.child_sa_spis() == [new_b]


def test_delete_of_the_new_sa_overtakes_the_answer_never_outbound() -> None:
    """B answers A's rekey, then deletes the new SA, and that Delete (SPI unknown to A yet) arrives first: A installs
    the new SA inbound only, never outbound, concludes the rekey, removes it and deletes the old SA (RFC 7296 §1.4.1;
    strongSwan ``is_our_replacement_deleted``). On B the old SA's Delete does not bring the deleted SA back."""
    p = make_peers()
    p.establish()
    a, b = p.client, p.gateway
    old_a, old_b, resp = _rekey_answered(p, a)
    (new_b,) = [s for s in b.child_sa_spis() if s != old_b]
    b.delete_child_sa(new_b, T)
    (delete_new,) = b.datagrams_to_send(T)
    (answer,) = _send(a, delete_new)
    assert p.events(a) == [] and _deleted_spis(b, answer) == []
    (delete_old,) = _send(a, resp)
    ea = p.events(a)
    assert names(ea) == ["ExchangeCompleted", "ChildSaInstalled", "RekeyCompleted", "ExchangeStarted", "ChildSaDeleted"]
    new_a = ea[1].spi_in
    assert (ea[1].outbound, ea[1].spi_out, ea[2].new_spi) == (False, new_b, new_a)
    assert (ea[3].purpose, ea[3].reason) == ("delete_child", "rekeyed")
    assert (ea[4].spi_in, ea[4].reason) == (new_a, "deleted_by_peer")
    assert [c.spi_in for c in a.children.values() if c.outbound] == []
    b.receive_datagram(answer.data, answer.src, answer.dst, T)
    (answer_old,) = _send(b, delete_old)
    eb = p.events(b)
    assert [type(e).__name__ for e in eb if isinstance(e, (ev.ChildSaOutboundInstalled, ev.ChildSaDeleted))] == [
        "ChildSaDeleted"]  # B's own Delete of the new SA finished; nothing made outbound
    assert [c.spi_in for c in b.children.values() if c.outbound] == []
    a.receive_datagram(answer_old.data, answer_old.src, answer_old.dst, T)
    p.run_timers(T + LINGER)
    assert a.children == {} and b.children == {}


def test_collision_peers_delete_of_its_redundant_sa_overtakes_our_answer() -> None:
    """Both rekey; A's SA is redundant. A decides first and deletes its redundant SA; that Delete reaches B before
    A's answer to B's request. B answers it but keeps that SA until its own rekey concludes, then reports it as
    redundant (not deleted by peer), and only its own SA is ever outbound (strongSwan CHILD_REKEY_OTHER_DELETED)."""
    r = _start_child_race("client", "ni_a")  # A's exchange holds the lowest nonce: B wins
    p, a, b = r.p, r.a, r.b
    (resp_b,) = _send(a, r.req_b)  # held
    (resp_a,) = _send(b, r.req_a)
    peer_new_b = [e for e in p.events(b) if isinstance(e, ev.ChildSaInstalled)][0].spi_in  # A's SA, on B
    (delete_redundant,) = _send(a, resp_a)
    p.events(a)
    (answer,) = _send(b, delete_redundant)
    assert p.events(b) == [] and _deleted_spis(a, answer) == [peer_new_b]
    assert peer_new_b in b.children and not b.children[peer_new_b].outbound
    (delete_old,) = _send(b, resp_b)
    eb = p.events(b)
    assert names(eb) == ["ExchangeCompleted", "ChildSaInstalled", "RekeyCollision", "RekeyCompleted", "ChildSaDeleted",
                         "ExchangeStarted"]
    own_b = eb[1].spi_in
    assert (eb[1].outbound, eb[2].won, eb[2].redundant_spi, eb[3].new_spi) == (True, True, peer_new_b, own_b)
    assert (eb[4].spi_in, eb[4].reason) == (peer_new_b, "redundant")
    assert (eb[5].purpose, eb[5].reason) == ("delete_child", "rekeyed")
    a.receive_datagram(answer.data, answer.src, answer.dst, T)
    (answer_old,) = _send(a, delete_old)
    b.receive_datagram(answer_old.data, answer_old.src, answer_old.dst, T)
    p.run_timers(T + LINGER)
    assert b.child_sa_spis() == [own_b] and a.child_sa_spis() == [b.children[own_b].spi_out]
    assert a.children[b.children[own_b].spi_out].outbound and b.children[own_b].outbound


def test_rekey_of_an_sa_whose_delete_is_over_gets_child_sa_not_found() -> None:
    """A's rekey and its Delete of the old SA are done when B's rekey request for it arrives: only the inbound half
    lingers, so A answers CHILD_SA_NOT_FOUND (RFC 7296 §2.25.1, strongSwan ``find_child``); B, which answered A's
    request and A's Delete meanwhile, concludes with A's new SA and does not retry."""
    r = _start_child_race("client", "ni_a")
    p, a, b = r.p, r.a, r.b
    (resp_a,) = _send(b, r.req_a)
    peer_new_b = [e for e in p.events(b) if isinstance(e, ev.ChildSaInstalled)][0].spi_in
    (delete_old,) = _send(a, resp_a)
    (answer,) = _send(b, delete_old)
    eb = p.events(b)
    assert [type(e).__name__ for e in eb] == ["ExchangeCollision", "ChildSaOutboundInstalled"]
    assert r.old_b in b.children  # kept until B's own rekey concludes
    a.receive_datagram(answer.data, answer.src, answer.dst, T)
    p.events(a)
    (not_found,) = _send(a, r.req_b)
    ea = p.events(a)
    assert [(type(e).__name__, getattr(e, "resolution", getattr(e, "notify", None))) for e in ea] == [
        ("RekeyCollision", "child_sa_not_found"), ("ErrorNotifySent", "CHILD_SA_NOT_FOUND")]
    assert (ea[0].won, ea[0].old_spi) == (True, r.old_a)
    b.receive_datagram(not_found.data, not_found.src, not_found.dst, T)
    eb = p.events(b)
    assert names(eb) == ["ErrorNotifyReceived", "ExchangeCompleted", "RekeyCollision", "RekeyCompleted"]
    assert (eb[2].won, eb[2].resolution, eb[3].new_spi, eb[3].initiator) == (
        False, "child_sa_not_found", peer_new_b, False)
    assert b.timers.deadline(("retry_child", r.old_b)) is None and b.datagrams_to_send(T) == []
    p.run_timers(T + LINGER)
    assert [(e.spi_in, e.reason) for e in p.events(b) if isinstance(e, ev.ChildSaDeleted)] == [(r.old_b, "rekeyed")]
    assert b.child_sa_spis() == [peer_new_b] and b.children[peer_new_b].outbound


def test_responder_hard_expiry_of_a_rekeyed_sa_sends_no_delete() -> None:
    """B answered A's rekey; A's Delete of the old SA is late and B's old SA reaches its hard lifetime first: B
    switches to the new SA and drops the old one without a Delete of its own; A's Delete then gets an answer that
    names nothing (RFC 7296 §1.4.1; strongSwan test_regular_responder_handle_hard_expire)."""
    short = (ChildPolicy(lifetime=Lifetime(rekey_time=0.0, life_time=30.0, rand_time=0.0)),)
    p = make_peers(client_children=(ChildPolicy(lifetime=LONG),), gateway_children=short)
    p.establish()
    a, b = p.client, p.gateway
    old_a, old_b, resp = _rekey_answered(p, a)
    (delete_old,) = _send(a, resp)  # held past 30 s
    new_a = [e for e in p.events(a) if isinstance(e, ev.ChildSaInstalled)][0].spi_in
    new_b = a.children[new_a].spi_out
    assert b.get_timer() == 30.0
    b.handle_timer(30.0)
    eb = p.events(b)
    assert [(type(e).__name__, getattr(e, "spi_in", getattr(e, "spi", None))) for e in eb] == [
        ("SaExpired", old_b), ("ChildSaOutboundInstalled", new_b), ("ChildSaDeleted", old_b)]
    assert eb[2].reason == "expired" and b.datagrams_to_send(30.0) == []
    (answer,) = _send(b, delete_old, 30.5)
    assert _deleted_spis(a, answer) == []
    a.receive_datagram(answer.data, answer.src, answer.dst, 30.5)
    assert [(type(e).__name__, getattr(e, "outcome", None)) for e in p.events(a)] == [("ExchangeCompleted", "ok")]
    assert b.child_sa_spis() == [new_b] and a.child_sa_spis() == [new_a]


def test_crossing_deletes_of_a_rekeyed_sa_name_nothing() -> None:
    """Both delete the rekeyed old SA at once (A as rekey initiator, B on the user's behalf): neither answer names
    it, for each has asked to delete it already (RFC 7296 §1.4.1); both keep it inbound for delete_rekeyed_delay."""
    p = make_peers()
    p.establish()
    a, b = p.client, p.gateway
    old_a, old_b, resp = _rekey_answered(p, a)
    b.delete_child_sa(old_b, T)
    (delete_b,) = b.datagrams_to_send(T)
    (delete_a,) = _send(a, resp)
    (answer_a,) = _send(a, delete_b)
    (answer_b,) = _send(b, delete_a)
    assert _deleted_spis(b, answer_a) == [] and _deleted_spis(a, answer_b) == []
    for d, old in ((a, old_a), (b, old_b)):
        assert [(e.case, e.spi) for e in p.events(d) if isinstance(e, ev.ExchangeCollision)] == [
            ("delete_vs_delete", old)]
    a.receive_datagram(answer_b.data, answer_b.src, answer_b.dst, T)
    b.receive_datagram(answer_a.data, answer_a.src, answer_a.dst, T)
    p.run_timers(T + LINGER)
    for d, old in ((a, old_a), (b, old_b)):
        assert [(e.spi_in, e.reason) for e in p.events(d) if isinstance(e, ev.ChildSaDeleted)] == [(old, "rekeyed")]
        assert len(d.child_sa_spis()) == 1 and [c.outbound for c in d.children.values()] == [True]


def test_delete_timeout_after_a_rekey_reports_the_rekeyed_sa_as_rekeyed() -> None:
    """A's Delete of the old SA is never answered; when the IKE_SA is given up, the rekeyed SA is not reported as
    going down a second time: only the new one goes down with the IKE_SA (strongSwan test_regular_delete_timeout)."""
    p = make_peers()
    p.establish()
    a = p.client
    old_a, _old_b, resp = _rekey_answered(p, a)
    _send(a, resp)  # the Delete of the old SA: lost, and every retransmission too
    new_a = [e for e in p.events(a) if isinstance(e, ev.ChildSaInstalled)][0].spi_in
    while a.sas:
        now = a.get_timer()
        assert now is not None
        a.handle_timer(now)
        a.datagrams_to_send(now)
    ea = p.events(a)
    assert [(type(e).__name__, getattr(e, "spi_in", None), e.reason) for e in ea
            if isinstance(e, (ev.ChildSaDeleted, ev.IkeSaDeleted))] == [
        ("ChildSaDeleted", old_a, "rekeyed"), ("ChildSaDeleted", new_a, "ike_deleted"),
        ("IkeSaDeleted", None, "timeout")]


def test_locally_deleted_new_sa_stays_dead() -> None:
    """A rekeyed and sends the Delete of the old SA; meanwhile B deletes the new SA. The old SA's Delete must not make
    the SA B is deleting outbound again: nothing is sent with either, and both end empty (strongSwan
    test_regular_responder_delete)."""
    p = make_peers()
    p.establish()
    a, b = p.client, p.gateway
    old_a, old_b, resp = _rekey_answered(p, a)
    (new_b,) = [s for s in b.child_sa_spis() if s != old_b]
    (delete_old,) = _send(a, resp)
    new_a = [e for e in p.events(a) if isinstance(e, ev.ChildSaInstalled)][0].spi_in
    b.delete_child_sa(new_b, T)
    (delete_new,) = b.datagrams_to_send(T)
    p.events(b)
    (answer_old,) = _send(b, delete_old)
    eb = p.events(b)
    assert [type(e).__name__ for e in eb] == []  # old_b lingers; new_b, being deleted, is not made outbound
    assert _deleted_spis(a, answer_old) == [old_b]
    assert [c.spi_in for c in b.children.values() if c.outbound] == []
    (answer_new,) = _send(a, delete_new)
    assert _deleted_spis(b, answer_new) == [new_a]
    assert [(e.spi_in, e.reason) for e in p.events(a) if isinstance(e, ev.ChildSaDeleted)] == [
        (new_a, "deleted_by_peer")]
    a.receive_datagram(answer_old.data, answer_old.src, answer_old.dst, T)
    b.receive_datagram(answer_new.data, answer_new.src, answer_new.dst, T)
    assert [(e.spi_in, e.reason) for e in p.events(b) if isinstance(e, ev.ChildSaDeleted)] == [
        (new_b, "deleted_locally")]
    assert [c.spi_in for c in a.children.values() if c.outbound] == []
    p.run_timers(T + LINGER)
    assert a.children == {} and b.children == {}
