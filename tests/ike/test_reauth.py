"""Reauthentication (RFC 7296 §2.8.3) as strongSwan does it: ``reauth_time``, make-before-break and break-before-make.

The client (10.0.0.1) initiates to the gateway (10.0.0.2) over a link of 10 ms each way (``Wire``); every datagram
and event is logged with the time it was sent or emitted. IKE lifetimes have no jitter unless a test says so, so
every deadline is exact.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from ikepeers import LONG, Peers, make_peers, names

from ikesim.ike import events as ev
from ikesim.ike import reauth
from ikesim.ike.config import ChildPolicy, IkePolicy, Lifetime
from ikesim.ike.daemon import IkeDaemon
from ikesim.rng import Rng
from ikesim.types import Datagram
from ikesim.wire.codec import peek_header
from ikesim.wire.iana import ExchangeType, HeaderFlag

ZERO = bytes(8)
DELAY = 0.01
"""One-way delay of the link, seconds."""
CHILDREN = (ChildPolicy(lifetime=LONG),)
TWO_CHILDREN = (ChildPolicy(name="net", lifetime=LONG), ChildPolicy(name="web", lifetime=LONG))
REAUTH_ONLY = Lifetime(rekey_time=0.0, life_time=700.0, rand_time=0.0)
"""No IKE rekey; hard lifetime 700 s: over_time = 700 - reauth_time."""

Header = tuple[bytes, bytes, str, int, bool]


def _policy(reauth_time: float = 600.0, lifetime: Lifetime = REAUTH_ONLY, **kw: Any) -> IkePolicy:
    return IkePolicy(lifetime=lifetime, reauth_time=reauth_time, **kw)


def _peers(client: IkePolicy, gateway: IkePolicy | None = None,
           children: tuple[ChildPolicy, ...] = CHILDREN) -> Peers:
    return make_peers(client_ike=client, gateway_ike=gateway or IkePolicy(lifetime=LONG), client_children=children,
                      gateway_children=children)


def _header(d: Datagram) -> Header:
    """(spi_i, spi_r, exchange, message ID, response flag) of a datagram (RFC 7296 §3.1)."""
    spi_i, spi_r, exchange, flags, mid = peek_header(d.data)
    return spi_i, spi_r, ExchangeType(exchange).name, mid, bool(flags & HeaderFlag.RESPONSE)


@dataclass
class Wire:
    """The two peers joined by a link of ``DELAY`` s each way; both daemons' timers fire at their deadlines.

    ``sent``: (time, sender, header) of every datagram; ``log``: (time, node, event) of every event but
    ``IkeSaKeysDerived``; ``messages`` and ``events`` give times rounded to 1 ns, so that 600 + 4 x 10 ms reads
    600.04. ``lose`` drops chosen datagrams (sender, header) -> True."""

    p: Peers
    now: float = 0.0
    sent: list[tuple[float, str, Header]] = field(default_factory=list)
    log: list[tuple[float, str, ev.IkeEvent]] = field(default_factory=list)
    lose: Callable[[str, Header], bool] | None = None
    _queue: list[tuple[float, int, str, Datagram]] = field(default_factory=list)
    _seq: int = 0

    def node(self, name: str) -> IkeDaemon:
        """The daemon called *name*."""
        return self.p.client if name == "client" else self.p.gateway

    def collect(self) -> None:
        """Take what both daemons sent and emitted at ``now``."""
        for name in ("client", "gateway"):
            d = self.node(name)
            for dg in d.datagrams_to_send(self.now):
                h = _header(dg)
                self.sent.append((self.now, name, h))
                if self.lose is None or not self.lose(name, h):
                    self._seq += 1
                    other = "gateway" if name == "client" else "client"
                    heapq.heappush(self._queue, (self.now + DELAY, self._seq, other, dg))
            while (e := d.next_event()) is not None:
                if not isinstance(e, ev.IkeSaKeysDerived):
                    self.log.append((self.now, name, e))

    def run(self, until: float) -> None:
        """Deliver datagrams and fire timers in time order up to *until* (arrivals before timers at a tie)."""
        self.collect()
        while True:
            steps: list[tuple[float, int, str]] = []
            if self._queue:
                steps.append((self._queue[0][0], 0, ""))
            for name in ("client", "gateway"):
                t = self.node(name).get_timer()
                if t is not None:
                    steps.append((t, 1, name))
            if not steps or min(steps)[0] > until:
                self.now = max(self.now, until)
                return
            at, kind, name = min(steps)
            self.now = at
            if kind == 0:
                _, _, to, dg = heapq.heappop(self._queue)
                self.node(to).receive_datagram(dg.data, dg.src, dg.dst, at)
            else:
                self.node(name).handle_timer(at)
            self.collect()

    def events(self, node: str, *kinds: type, since: float = 0.0) -> list[tuple[float, ev.IkeEvent]]:
        """(time, event) of *node*'s events of *kinds* (all if none) from *since* on."""
        return [(round(t, 9), e) for t, n, e in self.log
                if n == node and t >= since and (not kinds or isinstance(e, kinds))]

    def messages(self, since: float = 0.0) -> list[tuple[float, str, Header]]:
        """(time, sender, header) of every datagram sent from *since* on."""
        return [(round(t, 9), n, h) for t, n, h in self.sent if t >= since]


def _up(p: Peers) -> tuple[Wire, bytes, bytes, bytes, bytes]:
    """Establish at 0 s (no delay: both deadlines count from 0 s), then the wire; (wire, client IKE SPI, gateway IKE
    SPI, client child spi_in, gateway's)."""
    w = Wire(p)
    p.client.initiate("vpn", 0.0)
    p.settle(0.0)
    w.collect()
    (spi_i,) = p.client.ike_sa_spis()
    (spi_r,) = p.gateway.ike_sa_spis()
    (c,) = p.client.child_sa_spis()
    (g,) = p.gateway.child_sa_spis()
    return w, spi_i, spi_r, c, g


def _brief(e: ev.IkeEvent) -> tuple[Any, ...]:
    """The fields of an event that matter to the data plane and to the order of a reauthentication."""
    if isinstance(e, ev.ChildSaInstalled):
        return ("installed", e.spi_i, e.spi_in, e.spi_out, e.outbound)
    if isinstance(e, ev.ChildSaDeleted):
        return ("deleted", e.spi_i, e.spi_in, e.spi_out, e.reason)
    if isinstance(e, ev.IkeSaDeleted):
        return ("ike_deleted", e.spi_i, e.reason)
    if isinstance(e, ev.IkeSaEstablished):
        return ("ike_established", e.spi_i)
    raise AssertionError(e)


_SA_EVENTS = (ev.ChildSaInstalled, ev.ChildSaDeleted, ev.IkeSaDeleted, ev.IkeSaEstablished)


# ---------------------------------------------------------------- deadlines


def test_deadline_is_reauth_time_minus_rand_time_jitter_from_its_own_stream() -> None:
    """reauth_time 600 s, rand_time 50 s: the reauthentication is due 600 - (random() % 50) whole seconds after
    IKE_AUTH, drawn from the daemon's ``reauth`` stream (strongSwan ``get_reauth_time``: the IKE rand_time as for
    rekey_time); the hard
    lifetime is the earlier of life_time (700 s) and that deadline plus over_time (700 - 600 = 100 s): strongSwan
    STAT_DELETE. The gateway, with the same policy, draws its own from its own stream."""
    life = Lifetime(rekey_time=0.0, life_time=700.0, rand_time=50.0)
    p = _peers(_policy(lifetime=life), _policy(lifetime=life))
    p.client.initiate("vpn", 0.0)
    p.settle(0.0)
    (c,) = p.client.ike_sa_spis()
    (g,) = p.gateway.ike_sa_spis()
    c_at = 600.0 - Rng(1).child("client").child("reauth").below(50)
    g_at = 600.0 - Rng(1).child("gateway").child("reauth").below(50)
    assert (c_at, g_at) == (586.0, 558.0)
    assert p.client.timers.deadline(("reauth", c)) == c_at
    assert p.gateway.timers.deadline(("reauth", g)) == g_at
    assert p.client.ike_sa_info(c).expire_at == c_at + 100.0
    assert p.client.timers.deadline(("ike_hard", c)) == c_at + 100.0
    assert p.gateway.ike_sa_info(g).expire_at == g_at + 100.0
    assert p.client.ike_sa_info(c).rekey_at is None


def test_with_rekey_time_too_the_hard_lifetime_follows_the_earlier_of_rekey_and_reauth() -> None:
    """rekey_time 3000 s, life_time 3300 s (over_time 300 s), no jitter: with reauth_time 1000 s the hard lifetime is
    min(3300, 1000 + 300) = 1300 s (strongSwan ``min(STAT_REKEY, STAT_REAUTH) + over_time``), with 2000 s it is
    2300 s; with 4000 s the reauthentication comes after the rekey and the hard lifetime stays 3300 s."""
    life = Lifetime(rekey_time=3000.0, life_time=3300.0, rand_time=0.0)
    for reauth_time, expire in ((1000.0, 1300.0), (2000.0, 2300.0), (4000.0, 3300.0)):
        p = _peers(_policy(reauth_time, life))
        p.client.initiate("vpn", 0.0)
        p.settle(0.0)
        (c,) = p.client.ike_sa_spis()
        info = p.client.ike_sa_info(c)
        assert (info.rekey_at, info.expire_at, p.client.timers.deadline(("reauth", c))) == (3000.0, expire, reauth_time)
    assert reauth.over_time(life, 1000.0) == 300.0
    assert reauth.over_time(REAUTH_ONLY, 600.0) == 100.0
    assert reauth.over_time(Lifetime(rekey_time=0.0, life_time=0.0), 600.0) is None


def test_reauth_time_0_arms_nothing_and_draws_nothing() -> None:
    """The default (strongSwan: reauth_time 0, off): no ``reauth`` deadline, no reauth stream, no table."""
    p = _peers(IkePolicy(lifetime=LONG))
    w, spi_i, _, _, _ = _up(p)
    assert p.client.timers.deadline(("reauth", spi_i)) is None
    assert "rng_reauth" not in vars(p.client) and "_reauth" not in vars(p.client)
    w.run(5000.0)
    assert not w.events("client", ev.IkeSaReauthenticating)


def test_an_ike_rekey_keeps_the_reauthentication_deadline() -> None:
    """IKE rekey at 300 s, reauthentication at 600 s: the new IKE_SA keeps the 600 s deadline (strongSwan
    ``inherit_post``: "rescheduling reauthentication in 300s after rekeying, lifetime reduced to 400s": 600 + over
    100 s = 700 s) and draws nothing; at 600 s it is the new IKE_SA that is reauthenticated."""
    life = Lifetime(rekey_time=300.0, life_time=400.0, rand_time=0.0)
    p = _peers(_policy(600.0, life))
    w, old, _, _, _ = _up(p)
    assert p.client.timers.deadline(("reauth", old)) == 600.0
    assert p.client.ike_sa_info(old).expire_at == 400.0  # min(400, 600 + over 100)
    w.run(300.0 + 4 * DELAY)
    (new,) = p.client.ike_sa_spis()
    assert new != old and p.client.timers.deadline(("reauth", old)) is None
    assert p.client.timers.deadline(("reauth", new)) == 600.0
    info = p.client.ike_sa_info(new)
    assert (info.rekey_at, info.expire_at) == (300.0 + 2 * DELAY + 300.0, 700.0)
    assert "rng_reauth" not in vars(p.client)
    w.run(600.0)
    ((t, e),) = w.events("client", ev.IkeSaReauthenticating)
    assert (t, e.spi_i, e.action) == (600.0, new, "make_before_break")


# ---------------------------------------------------------------- make-before-break


def test_make_before_break_message_sequence_and_sa_order() -> None:
    """reauth_time 600 s, make_before_break (strongSwan's default): at 600 s a new IKE_SA's IKE_SA_INIT (message ID
    0), its IKE_AUTH with the CHILD_SA (1); once that is answered (600.04 s) the old IKE_SA's Delete (its message ID
    2, ``ike_reauth_complete``). The new CHILD_SA pair is installed (and sent with) on both peers before the old
    one is deleted: gateway 600.03 s / 600.05 s, client 600.04 s / 600.06 s. No outage."""
    p = _peers(_policy())
    w, old_i, old_r, old_c, old_g = _up(p)
    w.run(601.0)
    ((t, start), (_, again)) = w.events("client", ev.IkeSaReauthenticating, ev.IkeSaReestablishing)
    assert isinstance(start, ev.IkeSaReauthenticating) and isinstance(again, ev.IkeSaReestablishing)
    assert (t, start.spi_i, start.spi_r, start.action, start.reason, start.retry_at) == (
        600.0, old_i, old_r, "make_before_break", "", None)
    new_i = again.spi_i
    assert (again.old_spi, again.reason, again.action, again.attempt, again.children) == (
        old_i, "reauth", "make_before_break", 1, "net")
    (new_r,) = p.gateway.ike_sa_spis()
    (new_c,) = p.client.child_sa_spis()
    (new_g,) = p.gateway.child_sa_spis()
    assert p.client.ike_sa_spis() == [new_i] and len({old_i, new_i, old_r, new_r, ZERO}) == 5
    assert w.messages(600.0) == [
        (600.0, "client", (new_i, ZERO, "IKE_SA_INIT", 0, False)),
        (600.01, "gateway", (new_i, new_r, "IKE_SA_INIT", 0, True)),
        (600.02, "client", (new_i, new_r, "IKE_AUTH", 1, False)),
        (600.03, "gateway", (new_i, new_r, "IKE_AUTH", 1, True)),
        (600.04, "client", (old_i, old_r, "INFORMATIONAL", 2, False)),
        (600.05, "gateway", (old_i, old_r, "INFORMATIONAL", 2, True)),
    ]
    client = [(t, _brief(e)) for t, e in w.events("client", *_SA_EVENTS, since=600.0)]
    gateway = [(t, _brief(e)) for t, e in w.events("gateway", *_SA_EVENTS, since=600.0)]
    assert client == [
        (600.04, ("ike_established", new_i)),
        (600.04, ("installed", new_i, new_c, new_g, True)),
        (600.06, ("deleted", old_i, old_c, old_g, "ike_deleted")),
        (600.06, ("ike_deleted", old_i, "reauth")),
    ]
    assert gateway == [
        (600.03, ("ike_established", new_i)),
        (600.03, ("installed", new_i, new_g, new_c, True)),
        (600.05, ("deleted", old_i, old_g, old_c, "ike_deleted")),
        (600.05, ("ike_deleted", old_i, "deleted_by_peer")),
    ]
    ((_, delete),) = [(t, e) for t, e in w.events("client", ev.ExchangeStarted, since=600.0) if e.spi_i == old_i]
    assert isinstance(delete, ev.ExchangeStarted) and (delete.purpose, delete.reason) == ("delete_ike", "reauth")
    assert not reauth.reauthenticating(p.client, p.client.sas[new_i]) and vars(p.client)["_reauth"] == {}


def test_make_before_break_recreates_every_child_before_deleting_the_old_ike_sa() -> None:
    """Two CHILD_SAs: ``net`` comes with IKE_AUTH, ``web`` by CREATE_CHILD_SA (new IKE_SA, message ID 2); only then
    the old IKE_SA's Delete (its message ID 3: the old IKE_SA created ``web`` with 2)."""
    p = _peers(_policy(), children=TWO_CHILDREN)
    w, old_i, old_r, _, _ = _up(p)
    p.client.create_child_sa(old_i, "web", 1.0)
    w.run(2.0)
    w.run(601.0)
    ((_, again),) = w.events("client", ev.IkeSaReestablishing)
    assert isinstance(again, ev.IkeSaReestablishing) and again.children == "net web"
    new_i = again.spi_i
    (new_r,) = p.gateway.ike_sa_spis()
    assert [(h[2], h[3], h[4], h[0] == new_i) for _, _, h in w.messages(600.0)] == [
        ("IKE_SA_INIT", 0, False, True), ("IKE_SA_INIT", 0, True, True),
        ("IKE_AUTH", 1, False, True), ("IKE_AUTH", 1, True, True),
        ("CREATE_CHILD_SA", 2, False, True), ("CREATE_CHILD_SA", 2, True, True),
        ("INFORMATIONAL", 3, False, False), ("INFORMATIONAL", 3, True, False)]
    assert [t for t, _, _ in w.messages(600.0)] == [600 + k * DELAY for k in range(8)]
    installed = [(t, e.child) for t, e in w.events("client", ev.ChildSaInstalled, since=600.0)]
    assert installed == [(600.04, "net"), (600.06, "web")]
    assert [t for t, _ in w.events("client", ev.ChildSaDeleted, since=600.0)] == [600.08] * 2
    assert sorted(p.client.children[s].name for s in p.client.child_sa_spis()) == ["net", "web"]
    assert p.gateway.ike_sa_spis() == [new_r]


def test_make_before_break_without_a_child_sa_does_nothing_until_the_hard_lifetime() -> None:
    """The only CHILD_SA was deleted: "unable to reauthenticate IKE_SA, no CHILD_SA to recreate": nothing is sent,
    the IKE_SA stays (reauthenticating: no IKE rekey) until its hard lifetime, 700 s, deletes it."""
    p = _peers(_policy())
    w, old_i, _, c, _ = _up(p)
    p.client.delete_child_sa(c, 1.0)
    w.run(601.0)
    ((t, e),) = w.events("client", ev.IkeSaReauthenticating)
    assert (t, e.action, e.reason) == (600.0, "make_before_break", "no_children")
    assert w.messages(600.0) == []
    assert reauth.reauthenticating(p.client, p.client.sas[old_i])
    w.run(800.0)
    assert [(t, e.reason) for t, e in w.events("client", ev.IkeSaDeleted)] == [(700.02, "expired")]


def test_make_before_break_that_fails_keeps_the_old_ike_sa_until_its_hard_lifetime() -> None:
    """The new IKE_SA's IKE_SA_INIT gets no answer (keyingtries 1): given up at 600 + 165.06112 s; the old IKE_SA
    and its CHILD_SA stay up, reauthenticating (the gateway's IKE rekey of it at 800 s gets TEMPORARY_FAILURE),
    until its hard lifetime (life_time 2000 s) deletes it."""
    life = Lifetime(rekey_time=0.0, life_time=2000.0, rand_time=0.0)
    p = _peers(_policy(lifetime=life))
    w, old_i, old_r, old_c, _ = _up(p)
    w.lose = lambda sender, h: h[2] == "IKE_SA_INIT"
    w.run(600.0 + 165.06112 + 1.0)
    gone = [(t, e.spi_i, e.reason) for t, e in w.events("client", ev.IkeSaDeleted)]
    ((_, again),) = w.events("client", ev.IkeSaReestablishing)
    assert gone == [(765.06112, again.spi_i, "timeout")]
    assert p.client.ike_sa_spis() == [old_i] and p.client.child_sa_spis() == [old_c]
    p.gateway.rekey_ike_sa(old_r, 800.0)
    w.now = 800.0
    w.run(800.0 + 3 * DELAY)
    (refused,) = [e for _, e in w.events("client", ev.ExchangeCollision)]
    assert (refused.case, refused.spi) == ("ike_rekey_vs_reauth", old_i)
    ((_, done),) = [(t, e) for t, e in w.events("gateway", ev.ExchangeCompleted) if e.purpose == "rekey_ike"]
    assert isinstance(done, ev.ExchangeCompleted) and done.outcome == "TEMPORARY_FAILURE"
    w.lose = None
    w.run(2001.0)
    assert [(t, e.reason) for t, e in w.events("client", ev.IkeSaDeleted)][1:] == [(2000.02, "expired")]


# ---------------------------------------------------------------- break-before-make


def test_break_before_make_message_sequence_and_sa_order() -> None:
    """make_before_break false: at 600 s the old IKE_SA's Delete (message ID 2, reason ``reauth``); when it is
    answered (600.02 s) the new IKE_SA_INIT leaves at once, before the old CHILD_SA and IKE_SA are removed
    (strongSwan ``ike_reauth`` ``process_i``: reestablish, then destroy); IKE_AUTH follows. The old pair is gone on
    the gateway at 600.01 s and on the client at 600.02 s, the new one installed at 600.05 s and 600.06 s: 40 ms
    without a CHILD_SA on each side (two round trips)."""
    p = _peers(_policy(make_before_break=False))
    w, old_i, old_r, old_c, old_g = _up(p)
    w.run(601.0)
    ((t, start),) = w.events("client", ev.IkeSaReauthenticating)
    assert isinstance(start, ev.IkeSaReauthenticating)
    assert (t, start.spi_i, start.action, start.reason) == (600.0, old_i, "break_before_make", "")
    ((t_again, again),) = w.events("client", ev.IkeSaReestablishing)
    assert isinstance(again, ev.IkeSaReestablishing)
    assert (again.old_spi, again.reason, again.action, again.children) == (
        old_i, "reauth", "break_before_make", "net")
    assert t_again == 600.02
    new_i = again.spi_i
    (new_r,) = p.gateway.ike_sa_spis()
    (new_c,) = p.client.child_sa_spis()
    (new_g,) = p.gateway.child_sa_spis()
    assert w.messages(600.0) == [
        (600.0, "client", (old_i, old_r, "INFORMATIONAL", 2, False)),
        (600.01, "gateway", (old_i, old_r, "INFORMATIONAL", 2, True)),
        (600.02, "client", (new_i, ZERO, "IKE_SA_INIT", 0, False)),
        (600.03, "gateway", (new_i, new_r, "IKE_SA_INIT", 0, True)),
        (600.04, "client", (new_i, new_r, "IKE_AUTH", 1, False)),
        (600.05, "gateway", (new_i, new_r, "IKE_AUTH", 1, True)),
    ]
    at_delete = names([e for t, e in w.events("client", since=600.01) if t < 600.03])
    assert at_delete == ["ExchangeCompleted", "IkeSaReestablishing", "ExchangeStarted", "ChildSaDeleted",
                         "IkeSaDeleted"]
    client = [(t, _brief(e)) for t, e in w.events("client", *_SA_EVENTS, since=600.0)]
    gateway = [(t, _brief(e)) for t, e in w.events("gateway", *_SA_EVENTS, since=600.0)]
    assert client == [
        (600.02, ("deleted", old_i, old_c, old_g, "ike_deleted")),
        (600.02, ("ike_deleted", old_i, "reauth")),
        (600.06, ("ike_established", new_i)),
        (600.06, ("installed", new_i, new_c, new_g, True)),
    ]
    assert gateway == [
        (600.01, ("deleted", old_i, old_g, old_c, "ike_deleted")),
        (600.01, ("ike_deleted", old_i, "deleted_by_peer")),
        (600.05, ("ike_established", new_i)),
        (600.05, ("installed", new_i, new_g, new_c, True)),
    ]


def test_break_before_make_whose_delete_gets_no_answer_reestablishes_anyway() -> None:
    """The gateway is silent: the Delete is retransmitted and given up 165.06112 s later; then the new IKE_SA_INIT
    leaves all the same (strongSwan ``retransmit`` in IKE_DELETING: "delete during reauthentication failed, trying
    to reestablish IKE_SA anyway"), and dpd_action (clear) has no say."""
    p = _peers(_policy(make_before_break=False, lifetime=Lifetime(rekey_time=0.0, life_time=2000.0, rand_time=0.0)))
    w, old_i, _, _, _ = _up(p)
    w.lose = lambda sender, h: sender == "client"
    w.run(766.0)
    assert [h[2:] for _, _, h in w.messages(600.0)] == [("INFORMATIONAL", 2, False)] * 6 + [("IKE_SA_INIT", 0, False)]
    assert [t for t, _, _ in w.messages(600.0)][-1] == 765.06112
    assert [(e.spi_i, e.reason) for _, e in w.events("client", ev.IkeSaDeleted)] == [(old_i, "reauth")]


def test_break_before_make_delete_waits_for_the_request_in_flight() -> None:
    """A liveness check of ours is in flight at 600 s (not an IKE or CHILD rekey: no delay): the Delete is queued
    behind it (window size 1, RFC 7296 §2.3) and leaves when it is answered; a CHILD_SA creation queued before the
    reauthentication stays behind the Delete and is adopted by the new IKE_SA (``adopt_child_tasks``)."""
    p = _peers(_policy(make_before_break=False), children=TWO_CHILDREN)
    w, old_i, old_r, _, _ = _up(p)
    p.client.check_liveness(old_i, 600.0 - DELAY)
    p.client.create_child_sa(old_i, "web", 600.0 - DELAY)
    w.now = 600.0 - DELAY
    w.run(601.0)
    assert [(h[0] == old_i, h[2], h[3], h[4]) for _, _, h in w.messages(599.0)] == [
        (True, "INFORMATIONAL", 2, False), (True, "INFORMATIONAL", 2, True),
        (True, "INFORMATIONAL", 3, False), (True, "INFORMATIONAL", 3, True),
        (False, "IKE_SA_INIT", 0, False), (False, "IKE_SA_INIT", 0, True),
        (False, "IKE_AUTH", 1, False), (False, "IKE_AUTH", 1, True),
        (False, "CREATE_CHILD_SA", 2, False), (False, "CREATE_CHILD_SA", 2, True)]
    ((_, again),) = w.events("client", ev.IkeSaReestablishing)
    assert isinstance(again, ev.IkeSaReestablishing) and again.children == "net web"
    assert sorted(p.client.children[s].name for s in p.client.child_sa_spis()) == ["net", "web"]


# ---------------------------------------------------------------- who reauthenticates


def test_the_gateway_does_not_reauthenticate_and_expires_at_its_hard_lifetime() -> None:
    """Only the gateway has reauth_time: it cannot initiate (no remote address), so it does not reauthenticate
    (strongSwan's responder that cannot: "initiator did not reauthenticate as requested, IKE_SA will timeout");
    nothing is sent, and its IKE_SA is deleted at its hard lifetime, 600 + over_time 100 = 700 s."""
    p = _peers(IkePolicy(lifetime=LONG), _policy())
    w, old_i, old_r, _, _ = _up(p)
    w.run(699.0)
    ((t, e),) = w.events("gateway", ev.IkeSaReauthenticating)
    assert (t, e.spi_i, e.spi_r, e.action, e.reason, e.retry_at) == (600.0, old_i, old_r, "refused", "responder", None)
    assert w.messages(1.0) == []
    w.run(701.0)
    expired = [(t, e.kind) for t, e in w.events("gateway", ev.SaExpired)]
    assert expired == [(700.0, ev.SaKind.IKE)]
    assert [h[2:] for _, _, h in w.messages(699.0)] == [("INFORMATIONAL", 0, False), ("INFORMATIONAL", 0, True)]
    assert p.client.sas == {} and p.gateway.sas == {}


def test_both_ends_with_reauth_time_the_client_reauthenticates_first() -> None:
    """Both have reauth_time 600 s, rand_time 50 s: whichever is due first, only the client reauthenticates; the
    gateway's timer, if it comes while the old IKE_SA still exists, is refused."""
    life = Lifetime(rekey_time=0.0, life_time=700.0, rand_time=50.0)
    for seed in (1, 2, 3, 4):
        p = make_peers(seed=seed, client_ike=_policy(lifetime=life), gateway_ike=_policy(lifetime=life),
                       client_children=CHILDREN, gateway_children=CHILDREN)
        w, old_i, _, _, _ = _up(p)
        c_at = p.client.timers.deadline(("reauth", old_i))
        w.run(650.0)
        actions = [(n, e.action) for _, n, e in w.log if isinstance(e, ev.IkeSaReauthenticating) and e.spi_i == old_i]
        assert ("client", "make_before_break") in actions
        assert all(a == "refused" for n, a in actions if n == "gateway")
        assert old_i not in p.client.sas and len(p.gateway.ike_sa_spis()) == 1
        assert c_at is not None and 550.0 < c_at <= 600.0


# ---------------------------------------------------------------- collisions with rekeys (RFC 7296 §2.25)


@pytest.mark.parametrize("make_before_break", [True, False])
def test_a_child_rekey_in_flight_delays_the_reauthentication(make_before_break: bool) -> None:
    """Our CHILD_SA rekey leaves at 599.99 s; at 600 s the CHILD_SA is REKEYING: the reauthentication is delayed to
    600 + 15 - U(0, 10) s (strongSwan ``get_retry_delay``), drawn from the reauth stream; then it runs."""
    p = _peers(_policy(make_before_break=make_before_break))
    w, old_i, _, c, _ = _up(p)
    p.client.rekey_child_sa(c, 600.0 - DELAY)
    w.now = 600.0 - DELAY
    w.run(600.0)
    ((t, e),) = w.events("client", ev.IkeSaReauthenticating)
    retry = round(600.0 + 15.0 - Rng(1).child("client").child("reauth").uniform(0.0, 10.0), 9)
    assert isinstance(e, ev.IkeSaReauthenticating) and e.retry_at is not None
    assert (t, e.action, e.reason, round(e.retry_at, 9)) == (600.0, "delayed", "child_rekeying", retry)
    assert p.client.timers.deadline(("reauth", old_i)) == e.retry_at
    w.run(retry + 1.0)
    (_, again) = w.events("client", ev.IkeSaReauthenticating)
    mode = "make_before_break" if make_before_break else "break_before_make"
    assert again[0] == retry and isinstance(again[1], ev.IkeSaReauthenticating) and again[1].action == mode
    rekeyed = [e for _, e in w.events("client", ev.RekeyCompleted)]
    assert len(rekeyed) == 1 and old_i not in p.client.sas and len(p.client.child_sa_spis()) == 1


def test_our_ike_rekey_in_flight_delays_the_reauthentication() -> None:
    """Our IKE_SA rekey is in flight at 600 s: delayed (``ike_rekeying``); the new IKE_SA keeps the retry deadline
    (``inherit_post``) and is reauthenticated then."""
    life = Lifetime(rekey_time=10_000.0, life_time=11_000.0, rand_time=0.0)
    p = _peers(_policy(lifetime=life))
    w, old_i, _, _, _ = _up(p)
    p.client.rekey_ike_sa(old_i, 600.0 - DELAY)
    w.now = 600.0 - DELAY
    w.run(600.0 + 3 * DELAY)
    ((t, e),) = w.events("client", ev.IkeSaReauthenticating)
    assert isinstance(e, ev.IkeSaReauthenticating) and (t, e.action, e.reason) == (600.0, "delayed", "ike_rekeying")
    (new,) = p.client.ike_sa_spis()
    assert new != old_i and p.client.timers.deadline(("reauth", new)) == e.retry_at
    assert e.retry_at is not None
    w.run(e.retry_at)
    (_, (t2, again)) = w.events("client", ev.IkeSaReauthenticating)
    assert isinstance(again, ev.IkeSaReauthenticating) and (t2, again.spi_i, again.action) == (
        round(e.retry_at, 9), new, "make_before_break")


def test_our_scheduled_ike_rekey_is_skipped_while_reauthenticating() -> None:
    """IKE rekey due at 600.005 s, reauthentication at 600 s (make-before-break, its exchanges take 60 ms): the
    rekey is not started on the reauthenticating IKE_SA (strongSwan ``ike_sa.rekey``: INVALID_STATE)."""
    life = Lifetime(rekey_time=600.005, life_time=800.0, rand_time=0.0)
    p = _peers(_policy(lifetime=life))
    w, old_i, _, _, _ = _up(p)
    w.run(601.0)
    assert not [e for _, e in w.events("client", ev.RekeyStarted)]
    assert [e.purpose for _, e in w.events("client", ev.ExchangeStarted, since=600.0)] == [
        "ike_sa_init", "ike_auth", "delete_ike"]
    assert old_i not in p.client.sas


@pytest.mark.parametrize("make_before_break", [True, False])
def test_the_peers_ike_rekey_crossing_a_reauthentication_gets_temporary_failure(make_before_break: bool) -> None:
    """The gateway starts an IKE_SA rekey at 600 s as the client starts reauthenticating: the client answers
    TEMPORARY_FAILURE (make-before-break: "peer initiated rekeying, but we are reauthenticating"; break-before-make:
    the IKE_SA is being deleted, RFC 7296 §2.25.2). The gateway would retry 15 - U(0, 10) s later; by then the old
    IKE_SA is gone and the new one carries the tunnel."""
    p = _peers(_policy(make_before_break=make_before_break))
    w, old_i, old_r, _, _ = _up(p)
    w.run(600.0 - DELAY)
    p.gateway.rekey_ike_sa(old_r, 600.0)
    w.now = 600.0
    w.run(601.0)
    (col,) = [e for _, e in w.events("client", ev.ExchangeCollision)]
    assert col.case == ("ike_rekey_vs_reauth" if make_before_break else "ike_closing")
    ((t, done),) = [(t, e) for t, e in w.events("gateway", ev.ExchangeCompleted) if e.purpose == "rekey_ike"]
    assert isinstance(done, ev.ExchangeCompleted)
    if make_before_break:
        assert (t, done.outcome) == (600.02, "TEMPORARY_FAILURE")
    else:
        assert done.outcome == "aborted"  # the client's Delete reached the gateway first (600.01 s)
    w.run(700.0)
    assert not [e for _, e in w.events("gateway", ev.RekeyCompleted)]
    assert len(p.client.ike_sa_spis()) == len(p.gateway.ike_sa_spis()) == 1
    assert p.client.ike_sa_spis() != [old_i] and len(p.client.child_sa_spis()) == 1


def test_the_peers_child_rekey_during_make_before_break_is_answered_and_dies_with_the_old_ike_sa() -> None:
    """make-before-break does not stop CHILD_SA exchanges on the old IKE_SA (strongSwan: no check): the gateway's
    CHILD_SA rekey crossing the new IKE_SA_INIT at 600 s completes on the old IKE_SA; the old IKE_SA's Delete then
    takes the rekeyed pair with it, and only the new IKE_SA's pair is left on both peers."""
    p = _peers(_policy())
    w, old_i, _, _, g = _up(p)
    w.run(600.0 - DELAY)
    p.gateway.rekey_child_sa(g, 600.0)
    w.now = 600.0
    w.run(601.0)
    ((_, rekeyed),) = w.events("gateway", ev.RekeyCompleted)
    assert isinstance(rekeyed, ev.RekeyCompleted) and rekeyed.spi_i == old_i
    ((_, again),) = w.events("client", ev.IkeSaReestablishing)
    new_i = again.spi_i
    assert p.client.ike_sa_spis() == [new_i]
    assert [p.client.owner(p.client.children[s]).spi_i for s in p.client.child_sa_spis()] == [new_i]
    assert [p.gateway.owner(p.gateway.children[s]).spi_i for s in p.gateway.child_sa_spis()] == [new_i]
    assert all(e.reason in ("ike_deleted", "rekeyed") for _, e in w.events("client", ev.ChildSaDeleted))


def test_break_before_make_a_peers_child_rekey_crossing_the_delete_gets_temporary_failure() -> None:
    """break-before-make: the gateway's CHILD_SA rekey crosses the client's Delete: the client, deleting, answers
    TEMPORARY_FAILURE (strongSwan ``child_create`` in IKE_DELETING); the gateway drops the IKE_SA on the Delete;
    the new IKE_SA brings one pair back."""
    p = _peers(_policy(make_before_break=False))
    w, old_i, _, _, g = _up(p)
    w.run(600.0 - DELAY)
    p.gateway.rekey_child_sa(g, 600.0)
    w.now = 600.0
    w.run(601.0)
    (col,) = [e for _, e in w.events("client", ev.ExchangeCollision)]
    assert col.case == "ike_closing"
    assert [e.notify for _, e in w.events("client", ev.ErrorNotifySent)] == ["TEMPORARY_FAILURE"]
    assert len(p.client.child_sa_spis()) == len(p.gateway.child_sa_spis()) == 1
    assert not [e for _, e in w.events("gateway", ev.RekeyCompleted)]


def test_a_reauthenticating_ike_sa_that_times_out_is_reestablished_whatever_dpd_action_says() -> None:
    """make-before-break at 600 s while our liveness check (sent at 599.99 s) is in flight, and the gateway silent:
    the check is given up at 599.99 + 165.06112 s; the IKE_SA, reauthenticating, is re-established then although
    dpd_action is ``clear`` (strongSwan ``retransmit`` -> ``reestablish`` with COND_REAUTHENTICATING), besides the
    make-before-break IKE_SA whose IKE_SA_INIT is still unanswered (given up at 765.06112 s)."""
    p = _peers(_policy(lifetime=Lifetime(rekey_time=0.0, life_time=2000.0, rand_time=0.0)))
    w, old_i, _, _, _ = _up(p)
    p.client.check_liveness(old_i, 600.0 - DELAY)
    w.now = 600.0 - DELAY
    w.lose = lambda sender, h: sender == "client"
    w.run(766.0)
    again = [(t, e.old_spi, e.reason, e.action) for t, e in w.events("client", ev.IkeSaReestablishing)]
    assert again == [(600.0, old_i, "reauth", "make_before_break"), (765.05112, old_i, "reauth", "make_before_break")]
    assert [(t, e.spi_i, e.reason) for t, e in w.events("client", ev.IkeSaDeleted)][0] == (
        765.05112, old_i, "dpd_timeout")
    assert [t for t, _ in w.events("client", ev.DeadPeerDetected)] == [765.05112]
