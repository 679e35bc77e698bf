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
