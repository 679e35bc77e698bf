"""Childless IKE_SAs (RFC 6023) in the sans-IO core, with strongSwan's ``childless`` semantics: who sends
N(CHILDLESS_IKEV2_SUPPORTED), when IKE_AUTH goes without SA, TSi and TSr, the refusals (``force`` initiator without
the notify, N(INVALID_SYNTAX) from a ``never`` or ``force`` responder), the first CHILD_SA created by CREATE_CHILD_SA,
and the races around it: a rekey of the IKE_SA by the peer and a Delete of the IKE_SA (RFC 7296 §2.25.2). Every
message is listed with its payloads, in order, as decrypted on the wire."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import pytest
from ikepeers import CLIENT, CLIENT_ID, GATEWAY, GATEWAY_ID, LONG, PSK, Peers, names

from ikesim.ike import childless
from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy
from ikesim.ike.daemon import IkeDaemon
from ikesim.rng import Rng
from ikesim.sim.inspect import MessageInspector
from ikesim.types import Datagram
from ikesim.wire.codec import parse_message
from ikesim.wire.iana import PayloadType
from ikesim.wire.message import Message
from ikesim.wire.payloads import NotifyPayload, SkPayload

SEED = 5
CHILD = ChildPolicy(lifetime=LONG)
PFS_CHILD = ChildPolicy(proposals=("aes256gcm16-x25519",), lifetime=LONG)
RETRY = childless.RETRY_TIMER

INIT_REQ = ("SA", "KE", "NONCE", "N(NAT_DETECTION_SOURCE_IP)", "N(NAT_DETECTION_DESTINATION_IP)",
            "N(IKEV2_FRAGMENTATION_SUPPORTED)")
INIT_RESP = INIT_REQ
INIT_RESP_CHILDLESS = (*INIT_RESP, "N(CHILDLESS_IKEV2_SUPPORTED)")
AUTH_REQ = ("IDi", "IDr", "AUTH", "SA", "TSi", "TSr")
AUTH_REQ_CHILDLESS = ("IDi", "IDr", "AUTH")
AUTH_RESP = ("IDr", "AUTH", "SA", "TSi", "TSr")
AUTH_RESP_CHILDLESS = ("IDr", "AUTH")
AUTH_REFUSED = ("IDr", "AUTH", "N(INVALID_SYNTAX)")
CREATE_REQ = ("SA", "NONCE", "TSi", "TSr")
CREATE_RESP = CREATE_REQ
TEMPORARY_FAILURE = ("N(TEMPORARY_FAILURE)",)

Line = tuple[str, str, str, int, tuple[str, ...]]
"""(sender, exchange, request|response, message ID, payloads in order; a notify as ``N(TYPE)``)."""


def _policy(childless_policy: str, **kw: object) -> IkePolicy:
    return IkePolicy(lifetime=LONG, childless=childless_policy, **kw)  # type: ignore[arg-type]


def _peers(client: IkePolicy, gateway: IkePolicy, *, client_children: tuple[ChildPolicy, ...] = (CHILD,),
           gateway_children: tuple[ChildPolicy, ...] = (CHILD,)) -> Peers:
    """Client 10.0.0.1 initiating to gateway 10.0.0.2; *client_children* may be empty (a childless connection)."""
    rng = Rng(SEED)
    c = Connection(name="vpn", local_id=CLIENT_ID, remote_id=GATEWAY_ID, remote_addr=GATEWAY,
                   credentials=Credentials(psk=PSK), ike=client, children=client_children)
    g = Connection(name="vpn", local_id=GATEWAY_ID, remote_id=None, credentials=Credentials(psk=PSK), ike=gateway,
                   children=gateway_children)
    return Peers(IkeDaemon(DaemonConfig(name="client", addresses=(CLIENT,), connections=(c,)), rng=rng.child("client")),
                 IkeDaemon(DaemonConfig(name="gateway", addresses=(GATEWAY,), connections=(g,)),
                           rng=rng.child("gateway")))


def _names(msg: Message) -> tuple[str, ...]:
    out = []
    for p in msg.payloads:
        if isinstance(p, NotifyPayload):
            out.append(f"N({p.notify_type.name})")
        elif not isinstance(p, SkPayload):
            out.append(PayloadType(p.payload_type).name)
    return tuple(out)


@dataclass
class _Wire:
    """The hand-driven link of *p*, writing down every message it carries, decrypted with the sender's keys."""

    p: Peers
    lines: list[Line] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.inspector = MessageInspector({"client": self.p.client, "gateway": self.p.gateway})

    def _line(self, sender: IkeDaemon, d: Datagram) -> Datagram:
        who = "client" if sender is self.p.client else "gateway"
        h = self.inspector.header(d.data)
        assert h is not None
        msg = self.inspector.open(who, h)
        assert msg is not None
        self.lines.append((who, h.exchange.name, "response" if h.response else "request", h.message_id, _names(msg)))
        return d

    def send(self, sender: IkeDaemon, now: float) -> list[Datagram]:
        """Deliver what *sender* has queued."""
        return self.p.deliver(sender, now, lambda d: self._line(sender, d))

    def settle(self, now: float) -> None:
        """Both ways until quiet."""
        for _ in range(20):
            if not self.send(self.p.client, now) + self.send(self.p.gateway, now):
                return
        raise AssertionError("link did not settle")

    def run_timers(self, until: float) -> None:
        """Fire both daemons' timers in time order up to *until*, settling the link each time."""
        while True:
            due = [t for t in (self.p.client.get_timer(), self.p.gateway.get_timer()) if t is not None]
            if not due or min(due) > until:
                return
            now = min(due)
            for d in (self.p.client, self.p.gateway):
                t = d.get_timer()
                if t is not None and t <= now:
                    d.handle_timer(now)
            self.settle(now)

    def take(self) -> list[Line]:
        out, self.lines = self.lines, []
        return out


def _connect(client: IkePolicy, gateway: IkePolicy, **kw: tuple[ChildPolicy, ...]) -> tuple[Peers, _Wire]:
    p = _peers(client, gateway, **kw)
    wire = _Wire(p)
    p.client.initiate("vpn", 0.0)
    wire.settle(0.0)
    return p, wire


def _childless_trace(create_req: tuple[str, ...] = CREATE_REQ, create_resp: tuple[str, ...] = CREATE_RESP
                     ) -> list[Line]:
    return [
        ("client", "IKE_SA_INIT", "request", 0, INIT_REQ),
        ("gateway", "IKE_SA_INIT", "response", 0, INIT_RESP_CHILDLESS),
        ("client", "IKE_AUTH", "request", 1, AUTH_REQ_CHILDLESS),
        ("gateway", "IKE_AUTH", "response", 1, AUTH_RESP_CHILDLESS),
        ("client", "CREATE_CHILD_SA", "request", 2, create_req),
        ("gateway", "CREATE_CHILD_SA", "response", 2, create_resp),
    ]


E = TypeVar("E", bound=ev.IkeEvent)


def _of(events: list[ev.IkeEvent], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def _exchanges(events: list[ev.IkeEvent]) -> list[tuple[str, str, int, str]]:
    """(started|completed, purpose, message ID, reason or outcome) of every exchange of ours, in order."""
    out = []
    for e in events:
        if isinstance(e, ev.ExchangeStarted):
            out.append(("started", e.purpose, e.message_id, e.reason))
        elif isinstance(e, ev.ExchangeCompleted):
            out.append(("completed", e.purpose, e.message_id, e.outcome))
    return out


def _only_sa(d: IkeDaemon) -> bytes:
    (spi,) = [spi for spi, sa in d.sas.items() if sa.local_spi == spi]
    return spi


# ---------------------------------------------------------------------- the notify (RFC 6023 §3, §4)
@pytest.mark.parametrize("gateway", childless.POLICIES)
def test_only_the_responder_sends_the_notify_unless_never(gateway: str) -> None:
    """N(CHILDLESS_IKEV2_SUPPORTED) (16418, protocol 0, no SPI, no data) ends the IKE_SA_INIT response of a responder
    that is not ``never``; the request never carries it, even from a ``prefer`` initiator (strongSwan ``ike_init.c``)."""
    p = _peers(_policy("prefer"), _policy(gateway))
    wire = _Wire(p)
    p.client.initiate("vpn", 0.0)
    wire.send(p.client, 0.0)
    reply = p.gateway.datagrams_to_send(0.0)
    assert wire.take() == [("client", "IKE_SA_INIT", "request", 0, INIT_REQ)]
    (d,) = reply
    notifies = parse_message(d.data).get_all(NotifyPayload)
    expected = INIT_RESP if gateway == "never" else INIT_RESP_CHILDLESS
    assert _names(parse_message(d.data)) == expected
    if gateway != "never":
        last = notifies[-1]
        assert (int(last.notify_type), int(last.protocol), last.spi, last.data) == (16418, 0, b"", b"")


# ---------------------------------------------------------------------- childless initiation
@pytest.mark.parametrize("client", ["prefer", "force"])
@pytest.mark.parametrize("gateway", ["allow", "prefer", "force"])
def test_childless_ike_auth_then_first_child_by_create_child_sa(client: str, gateway: str) -> None:
    """``prefer``/``force`` initiator, announcing responder: IKE_AUTH without SA, TSi, TSr both ways, then at once
    CREATE_CHILD_SA (message ID 2, no KE: no PFS group) creates the first CHILD_SA (RFC 6023 §3; strongSwan
    ``test_childless.c`` ``test_regular``)."""
    p, wire = _connect(_policy(client), _policy(gateway))
    assert wire.take() == _childless_trace()
    c, g = p.events(p.client), p.events(p.gateway)
    assert names(c) == ["ExchangeStarted", "ExchangeCompleted", "ExchangeStarted", "ExchangeCompleted",
                        "IkeSaEstablished", "ExchangeStarted", "ExchangeCompleted", "ChildSaInstalled"]
    assert _exchanges(c) == [("started", "ike_sa_init", 0, ""), ("completed", "ike_sa_init", 0, "ok"),
                             ("started", "ike_auth", 1, ""), ("completed", "ike_auth", 1, "ok"),
                             ("started", "create_child", 2, "childless"), ("completed", "create_child", 2, "ok")]
    assert names(g) == ["IkeSaEstablished", "ChildSaInstalled"]
    (ci,), (gi,) = _of(c, ev.ChildSaInstalled), _of(g, ev.ChildSaInstalled)
    assert (ci.child, ci.initiator, ci.pfs_group, ci.rekey_of, ci.outbound) == ("net", True, "none", None, True)
    assert (gi.child, gi.initiator, gi.pfs_group, gi.rekey_of, gi.outbound) == ("net", False, "none", None, True)
    assert (ci.spi_i.hex(), ci.spi_r.hex(), ci.spi_in.hex(), ci.spi_out.hex()) == (
        "81c183caeb8b80e2", "baa615d356b27c9f", "afcd481e", "f309c170")
    assert (ci.spi_in, ci.spi_out) == (gi.spi_out, gi.spi_in)
    assert (ci.local_ts, ci.remote_ts, gi.local_ts, gi.remote_ts) == (
        "10.0.0.1/32", "10.0.0.2/32", "10.0.0.2/32", "10.0.0.1/32")
    assert (ci.encr_key_out, ci.encr_key_in) == (gi.encr_key_in, gi.encr_key_out)
    spi = _only_sa(p.client)
    info = p.client.ike_sa_info(spi)
    assert (info.children, info.next_message_id, info.peer_message_id) == ((ci.spi_in,), 3, 0)
    assert p.gateway.ike_sa_info(_only_sa(p.gateway)).peer_message_id == 3


def test_first_child_with_pfs_carries_a_key_exchange() -> None:
    """The first CHILD_SA of a childless IKE_SA is a CREATE_CHILD_SA with KE when its proposal names a group:
    PFS that a CHILD_SA in IKE_AUTH never has (RFC 7296 §1.2; strongSwan ``test_regular`` asserts the KE)."""
    p, wire = _connect(_policy("prefer"), _policy("allow"), client_children=(PFS_CHILD,),
                       gateway_children=(PFS_CHILD,))
    pfs = ("SA", "NONCE", "KE", "TSi", "TSr")
    assert wire.take() == _childless_trace(pfs, pfs)
    (ci,), (gi,) = _of(p.events(p.client), ev.ChildSaInstalled), _of(p.events(p.gateway), ev.ChildSaInstalled)
    assert (ci.pfs_group, gi.pfs_group) == ("x25519", "x25519")


def test_same_connection_without_childless_has_no_pfs_in_ike_auth() -> None:
    """The same PFS child, ``never`` on both ends: SA TSi TSr ride in IKE_AUTH, without KE (RFC 7296 §1.2)."""
    p, wire = _connect(_policy("never"), _policy("never"), client_children=(PFS_CHILD,),
                       gateway_children=(PFS_CHILD,))
    assert wire.take() == [("client", "IKE_SA_INIT", "request", 0, INIT_REQ),
                           ("gateway", "IKE_SA_INIT", "response", 0, INIT_RESP),
                           ("client", "IKE_AUTH", "request", 1, AUTH_REQ),
                           ("gateway", "IKE_AUTH", "response", 1, AUTH_RESP)]
    (ci,) = _of(p.events(p.client), ev.ChildSaInstalled)
    assert ci.pfs_group == "none"


@pytest.mark.parametrize(("client", "gateway"), [
    ("never", "allow"), ("never", "prefer"), ("allow", "allow"), ("allow", "prefer"),
    ("prefer", "never"), ("allow", "never"), ("never", "never"),
])
def test_first_child_stays_in_ike_auth(client: str, gateway: str) -> None:
    """``never``/``allow`` initiators, and a ``prefer`` one whose responder sent no notify, put the first CHILD_SA in
    IKE_AUTH as RFC 7296 §1.2 does (strongSwan ``defer_child_sa``: NOT_SUPPORTED); no CREATE_CHILD_SA follows."""
    p, wire = _connect(_policy(client), _policy(gateway))
    resp = INIT_RESP if gateway == "never" else INIT_RESP_CHILDLESS
    assert wire.take() == [("client", "IKE_SA_INIT", "request", 0, INIT_REQ),
                           ("gateway", "IKE_SA_INIT", "response", 0, resp),
                           ("client", "IKE_AUTH", "request", 1, AUTH_REQ),
                           ("gateway", "IKE_AUTH", "response", 1, AUTH_RESP)]
    assert names(p.events(p.client))[-2:] == ["IkeSaEstablished", "ChildSaInstalled"]
    assert names(p.events(p.gateway)) == ["IkeSaEstablished", "ChildSaInstalled"]


@pytest.mark.parametrize("client", childless.POLICIES)
@pytest.mark.parametrize("gateway", ["allow", "prefer", "force"])
def test_connection_without_children_is_childless(client: str, gateway: str) -> None:
    """A connection without child configurations sends a childless IKE_AUTH whatever its own setting (strongSwan
    initiating without a child_cfg); an announcing responder accepts it, and no CREATE_CHILD_SA follows."""
    p, wire = _connect(_policy(client), _policy(gateway), client_children=())
    assert wire.take() == _childless_trace()[:4]
    assert names(p.events(p.client))[-3:] == ["ExchangeStarted", "ExchangeCompleted", "IkeSaEstablished"]
    assert names(p.events(p.gateway)) == ["IkeSaEstablished"]
    assert (p.client.child_sa_spis(), p.gateway.child_sa_spis()) == ([], [])
    assert p.client.get_timer() == 100_000.0  # only the LONG rekey: nothing to retry


# ---------------------------------------------------------------------- refusals
def test_force_initiator_gives_up_without_the_notify() -> None:
    """``force`` initiator, ``never`` responder: no notify, so no IKE_AUTH is sent; the IKE_SA is given up
    (strongSwan ``defer_child_sa``: "peer does not support childless IKE_SA initiation", ``test_failure_init``);
    the responder's half-open IKE_SA times out after 30 s."""
    p, wire = _connect(_policy("force"), _policy("never"))
    assert wire.take() == [("client", "IKE_SA_INIT", "request", 0, INIT_REQ),
                           ("gateway", "IKE_SA_INIT", "response", 0, INIT_RESP)]
    c = p.events(p.client)
    assert names(c) == ["ExchangeStarted", "ExchangeCompleted", "ResponseRejected", "IkeSaDeleted"]
    assert _exchanges(c)[-1] == ("completed", "ike_sa_init", 0, "childless_unsupported")
    rejected, deleted = c[2], c[3]
    assert isinstance(rejected, ev.ResponseRejected) and isinstance(deleted, ev.IkeSaDeleted)
    assert (rejected.exchange, rejected.message_id, rejected.reason) == (
        "IKE_SA_INIT", 0, "peer does not support childless IKE_SA initiation")
    assert deleted.reason == "failed" and p.client.sas == {}
    assert p.events(p.gateway) == [] and p.gateway.get_timer() == 30.0
    p.run_timers(30.0)
    (gone,) = p.events(p.gateway)
    assert isinstance(gone, ev.IkeSaDeleted) and gone.reason == "timeout"


@pytest.mark.parametrize("client", childless.POLICIES)
def test_never_responder_refuses_a_childless_ike_auth(client: str) -> None:
    """A childless IKE_AUTH (a connection without children) to a ``never`` responder: IDr AUTH N(INVALID_SYNTAX),
    and both ends delete the IKE_SA; the initiator sends nothing more (strongSwan ``handle_childless``: "peer tried to
    initiate a childless IKE_SA"; ``ike_auth.c`` ``process_i`` fails on the error notify)."""
    p, wire = _connect(_policy(client), _policy("never"), client_children=())
    assert wire.take() == [("client", "IKE_SA_INIT", "request", 0, INIT_REQ),
                           ("gateway", "IKE_SA_INIT", "response", 0, INIT_RESP),
                           ("client", "IKE_AUTH", "request", 1, AUTH_REQ_CHILDLESS),
                           ("gateway", "IKE_AUTH", "response", 1, AUTH_REFUSED)]
    c, g = p.events(p.client), p.events(p.gateway)
    assert names(c) == ["ExchangeStarted", "ExchangeCompleted", "ExchangeStarted", "ErrorNotifyReceived",
                        "ExchangeCompleted", "IkeSaDeleted"]
    assert _exchanges(c)[-1] == ("completed", "ike_auth", 1, "INVALID_SYNTAX")
    assert names(g) == ["ErrorNotifySent", "IkeSaDeleted"]
    sent, deleted = g
    assert isinstance(sent, ev.ErrorNotifySent) and isinstance(deleted, ev.IkeSaDeleted)
    assert (sent.notify, sent.exchange, sent.message_id) == ("INVALID_SYNTAX", "IKE_AUTH", 1)
    assert [e.reason for e in _of(c, ev.IkeSaDeleted)] == [deleted.reason] == ["failed"]
    assert (p.client.sas, p.gateway.sas) == ({}, {})


def test_refusal_is_answered_again_from_the_response_cache() -> None:
    """The refusing responder keeps its answer for retransmissions (RFC 7296 §2.1): the same IKE_AUTH request again
    gets the same bytes, and no event."""
    p = _peers(_policy("never"), _policy("never"), client_children=())
    p.client.initiate("vpn", 0.0)
    p.deliver(p.client, 0.0)
    p.deliver(p.gateway, 0.0)
    (auth,) = p.client.datagrams_to_send(0.0)
    p.gateway.receive_datagram(auth.data, auth.src, auth.dst, 0.0)
    (first,) = p.gateway.datagrams_to_send(0.0)
    p.events(p.gateway)
    p.gateway.receive_datagram(auth.data, auth.src, auth.dst, 1.0)
    (again,) = p.gateway.datagrams_to_send(1.0)
    assert (again.data, again.src, again.dst) == (first.data, first.src, first.dst)
    assert p.events(p.gateway) == []


@pytest.mark.parametrize("client", ["never", "allow"])
def test_force_responder_refuses_a_regular_ike_auth(client: str) -> None:
    """``force`` responder, initiator that keeps the CHILD_SA in IKE_AUTH: IDr AUTH N(INVALID_SYNTAX), no CHILD_SA,
    both IKE_SAs deleted (strongSwan ``handle_childless``: "peer did not initiate a childless IKE_SA",
    ``test_failure_resp``)."""
    p, wire = _connect(_policy(client), _policy("force"))
    assert wire.take() == [("client", "IKE_SA_INIT", "request", 0, INIT_REQ),
                           ("gateway", "IKE_SA_INIT", "response", 0, INIT_RESP_CHILDLESS),
                           ("client", "IKE_AUTH", "request", 1, AUTH_REQ),
                           ("gateway", "IKE_AUTH", "response", 1, AUTH_REFUSED)]
    c, g = p.events(p.client), p.events(p.gateway)
    assert _exchanges(c)[-1] == ("completed", "ike_auth", 1, "INVALID_SYNTAX")
    assert names(c)[-1] == names(g)[-1] == "IkeSaDeleted"
    assert "ChildSaInstalled" not in names(c) + names(g) and "IkeSaEstablished" not in names(c) + names(g)
    assert (p.client.sas, p.gateway.sas, p.client.children, p.gateway.children) == ({}, {}, {}, {})


def test_refusal_keeps_the_mobike_notifies() -> None:
    """A refusal carries what the responder's other IKE_AUTH tasks add before the CHILD_SA one (strongSwan's task
    order; notifies ordered as ``message.c`` does): IDr AUTH N(MOBIKE_SUPPORTED) N(NO_ADDITIONAL_ADDRESSES)
    N(INVALID_SYNTAX); nothing is negotiated."""
    p, wire = _connect(_policy("never", mobike=True), _policy("never", mobike=True), client_children=())
    lines = wire.take()
    assert lines[-1] == ("gateway", "IKE_AUTH", "response", 1,
                         ("IDr", "AUTH", "N(MOBIKE_SUPPORTED)", "N(NO_ADDITIONAL_ADDRESSES)", "N(INVALID_SYNTAX)"))
    assert "MobikeNegotiated" not in names(p.events(p.client)) + names(p.events(p.gateway))


# ---------------------------------------------------------------------- races around the first CHILD_SA
def _to_ike_auth_answered(client: IkePolicy, gateway: IkePolicy) -> tuple[Peers, _Wire]:
    """IKE_SA_INIT and IKE_AUTH done at t=0; the client's CREATE_CHILD_SA for its first CHILD_SA is queued to go."""
    p = _peers(client, gateway)
    wire = _Wire(p)
    p.client.initiate("vpn", 0.0)
    for sender in (p.client, p.gateway, p.client, p.gateway):
        wire.send(sender, 0.0)
    assert [line[1:4] for line in wire.take()] == [("IKE_SA_INIT", "request", 0), ("IKE_SA_INIT", "response", 0),
                                                   ("IKE_AUTH", "request", 1), ("IKE_AUTH", "response", 1)]
    c = p.events(p.client)
    assert _exchanges(c)[-2:] == [("completed", "ike_auth", 1, "ok"), ("started", "create_child", 2, "childless")]
    assert names(c)[-2:] == ["IkeSaEstablished", "ExchangeStarted"]  # sent as IKE_AUTH completes, before any other
    p.events(p.gateway)
    return p, wire


def _crossing_rekey(client_retry: float, gateway_retry: float) -> tuple[Peers, _Wire, bytes, bytes]:
    """The gateway rekeys the IKE_SA at t=1 while the client's first CREATE_CHILD_SA is in flight: both refused
    with TEMPORARY_FAILURE. The retry waits are fixed (no jitter): client *client_retry*, gateway *gateway_retry*."""
    p, wire = _to_ike_auth_answered(_policy("prefer", collision_retry_base=client_retry, collision_retry_jitter=0.0),
                                    _policy("allow", collision_retry_base=gateway_retry, collision_retry_jitter=0.0))
    cspi, gspi = _only_sa(p.client), _only_sa(p.gateway)
    p.gateway.rekey_ike_sa(gspi, 1.0)
    wire.send(p.client, 1.0)  # CREATE_CHILD_SA (2) to the gateway, whose rekey is in flight
    wire.send(p.gateway, 1.0)  # its rekey request (0), then TEMPORARY_FAILURE for our CREATE_CHILD_SA
    wire.send(p.client, 1.0)  # TEMPORARY_FAILURE for its rekey
    assert wire.take() == [
        ("client", "CREATE_CHILD_SA", "request", 2, CREATE_REQ),
        ("gateway", "CREATE_CHILD_SA", "request", 0, ("SA", "NONCE", "KE")),
        ("gateway", "CREATE_CHILD_SA", "response", 2, TEMPORARY_FAILURE),
        ("client", "CREATE_CHILD_SA", "response", 0, TEMPORARY_FAILURE),
    ]
    c, g = p.events(p.client), p.events(p.gateway)
    assert [(e.case, e.spi) for e in _of(c, ev.ExchangeCollision)] == [("child_vs_ike_rekey", cspi)]
    assert [(e.case, e.spi) for e in _of(g, ev.ExchangeCollision)] == [("child_vs_ike_rekey", gspi)]
    assert _exchanges(c) == [("completed", "create_child", 2, "TEMPORARY_FAILURE")]
    assert _exchanges(g) == [("started", "rekey_ike", 0, ""), ("completed", "rekey_ike", 0, "TEMPORARY_FAILURE")]
    assert p.client.timers.deadline((RETRY, cspi)) == 1.0 + client_retry
    assert p.gateway.timers.deadline(("retry_ike", gspi)) == 1.0 + gateway_retry
    return p, wire, cspi, gspi


def test_first_child_vs_peer_ike_rekey_child_retried_first() -> None:
    """RFC 7296 §2.25.2: each end refuses the other with TEMPORARY_FAILURE. The client retries its first CHILD_SA
    at t=6 (message ID 3) on the IKE_SA it has; the gateway's IKE rekey at t=11 then moves it to the new IKE_SA."""
    p, wire, cspi, _ = _crossing_rekey(5.0, 10.0)
    wire.run_timers(6.0)
    assert wire.take() == [("client", "CREATE_CHILD_SA", "request", 3, CREATE_REQ),
                           ("gateway", "CREATE_CHILD_SA", "response", 3, CREATE_RESP)]
    c = p.events(p.client)
    assert _exchanges(c) == [("started", "create_child", 3, "childless"), ("completed", "create_child", 3, "ok")]
    (installed,) = _of(c, ev.ChildSaInstalled)
    assert installed.spi_i == cspi
    wire.run_timers(11.0)
    assert [line[:4] for line in wire.take()] == [
        ("gateway", "CREATE_CHILD_SA", "request", 1), ("client", "CREATE_CHILD_SA", "response", 1),
        ("gateway", "INFORMATIONAL", "request", 2), ("client", "INFORMATIONAL", "response", 2)]
    (new,) = p.client.ike_sa_spis()
    assert p.client.ike_sa_info(new).children == (installed.spi_in,)
    assert p.client.timers.deadline((RETRY, cspi)) is None


def test_first_child_vs_peer_ike_rekey_ike_retried_first() -> None:
    """The gateway's IKE rekey goes first (t=6) and deletes the old IKE_SA; the client's retry at t=11 follows the
    rekey (strongSwan moves queued CHILD_SA tasks to the new IKE_SA) and creates the first CHILD_SA there, with the
    new IKE_SA's first message ID, 0."""
    p, wire, cspi, _ = _crossing_rekey(10.0, 5.0)
    wire.run_timers(6.0)
    assert [line[:4] for line in wire.take()] == [
        ("gateway", "CREATE_CHILD_SA", "request", 1), ("client", "CREATE_CHILD_SA", "response", 1),
        ("gateway", "INFORMATIONAL", "request", 2), ("client", "INFORMATIONAL", "response", 2)]
    (new,) = p.client.ike_sa_spis()
    assert cspi not in p.client.sas and p.client.sas[new].rekey_of == cspi
    p.events(p.client)
    wire.run_timers(11.0)
    assert wire.take() == [("client", "CREATE_CHILD_SA", "request", 0, CREATE_REQ),
                           ("gateway", "CREATE_CHILD_SA", "response", 0, CREATE_RESP)]
    c = p.events(p.client)
    assert _exchanges(c) == [("started", "create_child", 0, "childless"), ("completed", "create_child", 0, "ok")]
    (installed,) = _of(c, ev.ChildSaInstalled)
    info = p.client.ike_sa_info(new)
    assert (installed.spi_i, installed.spi_r, info.children) == (info.spi_i, new, (installed.spi_in,))
    assert p.gateway.ike_sa_info(_only_sa(p.gateway)).children == (installed.spi_out,)


def test_retry_while_the_rekeyed_ike_sa_awaits_its_delete() -> None:
    """The IKE rekey completed but its Delete has not arrived when the retry fires: the rekeyed IKE_SA names its
    successor, which creates the first CHILD_SA (message ID 0); the old IKE_SA carries nothing."""
    p, wire, cspi, gspi = _crossing_rekey(10.0, 5.0)
    p.gateway.handle_timer(6.0)
    wire.send(p.gateway, 6.0)  # the rekey request
    wire.send(p.client, 6.0)  # its answer; the gateway queues the Delete of the old IKE_SA, held back here
    assert p.client.sas[cspi].state.value == "rekeyed"
    new = p.client.sas[cspi].replaced_by
    p.client.handle_timer(11.0)
    wire.send(p.client, 11.0)
    assert wire.take()[-1] == ("client", "CREATE_CHILD_SA", "request", 0, CREATE_REQ)
    wire.settle(11.0)
    assert p.client.ike_sa_info(new).children == tuple(p.client.child_sa_spis())
    assert len(p.client.child_sa_spis()) == 1 and cspi not in p.client.sas


def test_first_child_vs_delete_of_the_ike_sa() -> None:
    """The gateway deletes the IKE_SA while the first CREATE_CHILD_SA is in flight: it refuses it with
    TEMPORARY_FAILURE (RFC 7296 §2.25.2, strongSwan "unable to create CHILD_SA while deleting IKE_SA"); the client
    answers the Delete, aborts its exchange and removes the IKE_SA, so the refusal finds no IKE_SA and nothing is
    retried."""
    p, wire = _to_ike_auth_answered(_policy("prefer"), _policy("allow"))
    cspi, gspi = _only_sa(p.client), _only_sa(p.gateway)
    p.gateway.delete_ike_sa(gspi, 1.0)
    wire.settle(1.0)
    assert wire.take() == [
        ("client", "CREATE_CHILD_SA", "request", 2, CREATE_REQ),
        ("gateway", "INFORMATIONAL", "request", 0, ("DELETE",)),
        ("gateway", "CREATE_CHILD_SA", "response", 2, TEMPORARY_FAILURE),
        ("client", "INFORMATIONAL", "response", 0, ()),
    ]
    c, g = p.events(p.client), p.events(p.gateway)
    assert names(c) == ["ExchangeCollision", "ExchangeCompleted", "IkeSaDeleted", "MessageDropped"]
    assert _exchanges(c) == [("completed", "create_child", 2, "aborted")]
    assert [e.reason for e in _of(c, ev.IkeSaDeleted)] == ["deleted_by_peer"]
    assert [(e.reason, e.exchange, e.message_id) for e in _of(c, ev.MessageDropped)] == [
        ("unknown IKE SPI", "CREATE_CHILD_SA", 2)]
    assert [(e.case, e.spi) for e in _of(g, ev.ExchangeCollision)] == [("ike_closing", gspi)]
    assert [(e.notify, e.message_id) for e in _of(g, ev.ErrorNotifySent)] == [("TEMPORARY_FAILURE", 2)]
    assert (p.client.sas, p.gateway.sas, p.client.children, p.gateway.children) == ({}, {}, {}, {})
    assert p.client.timers.deadline((RETRY, cspi)) is None


def test_retry_after_the_ike_sa_was_deleted_does_nothing() -> None:
    """TEMPORARY_FAILURE (a crossing IKE rekey) arms the retry; the gateway then deletes the IKE_SA; when the retry
    fires there is no IKE_SA to carry the CHILD_SA: nothing is sent, no event."""
    p, wire, cspi, gspi = _crossing_rekey(10.0, 50.0)
    p.gateway.delete_ike_sa(gspi, 2.0)
    wire.settle(2.0)
    assert [line[:4] for line in wire.take()] == [("gateway", "INFORMATIONAL", "request", 1),
                                                  ("client", "INFORMATIONAL", "response", 1)]
    p.events(p.client)
    assert p.client.timers.deadline((RETRY, cspi)) == 11.0
    p.client.handle_timer(11.0)
    assert p.client.datagrams_to_send(11.0) == [] and p.events(p.client) == []


def test_retry_skipped_when_the_child_exists_meanwhile() -> None:
    """A CHILD_SA of the first configuration created meanwhile (here by command) makes the retry moot."""
    p, wire, cspi, _ = _crossing_rekey(10.0, 50.0)
    p.client.create_child_sa(cspi, "net", 2.0)
    wire.settle(2.0)
    assert [line[:4] for line in wire.take()] == [("client", "CREATE_CHILD_SA", "request", 3),
                                                  ("gateway", "CREATE_CHILD_SA", "response", 3)]
    assert len(p.client.child_sa_spis()) == 1
    p.events(p.client)
    p.client.handle_timer(11.0)
    assert p.client.datagrams_to_send(11.0) == [] and p.events(p.client) == []
