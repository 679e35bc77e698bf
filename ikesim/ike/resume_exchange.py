"""The IKE_SESSION_RESUME exchange (RFC 5723 §4.3.2, §5.1), both sides, and the client's choice to resume.

Routed by the daemon like IKE_SA_INIT (exchange type 38, SPIr 0 in the request). The tickets, their keys and the
resumed AUTH are ``ike.resumption``; this module's decisions are listed in that module's docstring. ``initiate`` is what
every client path that brings a connection up calls (``IkeDaemon.initiate``, ``ike.reestablish``, ``ike.reconnect``):
IKE_SESSION_RESUME with a valid ticket, else IKE_SA_INIT.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from ikesim.crypto.ke import new_key_exchange
from ikesim.crypto.prf import derive_ike_keys
from ikesim.crypto.sk import make_sk_protectors
from ikesim.crypto.suites import Suite
from ikesim.errors import MalformedMessage, NoProposalChosen
from ikesim.ike import events as ev
from ikesim.ike import ike_auth, ike_sa_init
from ikesim.ike.exchange import Exchange
from ikesim.ike.natt import float_to_natt
from ikesim.ike.profile import ConnectionProfile
from ikesim.ike.resumption import (
    TICKET_OP_OPEN,
    ClientTicket,
    resume_skeyseed,
    ticket_keys,
    ticket_state,
    usable_ticket,
)
from ikesim.ike.sa import ZERO_SPI, IkeSa
from ikesim.ike.state import IkeSaState
from ikesim.ike.tickets import InvalidTicket, TicketState
from ikesim.types import Address, Datagram
from ikesim.wire.codec import serialize_message
from ikesim.wire.iana import ExchangeType, HeaderFlag, NotifyType, ProtocolId
from ikesim.wire.message import Message
from ikesim.wire.payloads import NoncePayload, NotifyPayload, Payload, Proposal, Transform, UnknownPayload
from ikesim.wire.verify import verify_payloads

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore

__all__ = ["PURPOSE", "initiate", "start_resume", "receive"]

PURPOSE = "resume"
"""``ExchangeStarted.purpose`` of IKE_SESSION_RESUME."""
MAX_COOKIE_RETRIES = 3


def initiate(core: IkeCore, profile: ConnectionProfile, local: Address, peer: Address, now: float, *,
             resume: bool = True) -> IkeSa:
    """A client brings *profile*'s connection up: IKE_SESSION_RESUME if *resume* and it holds a valid ticket (RFC 5723
    §4.3), else IKE_SA_INIT (RFC 7296 §1.2). A reauthentication passes ``resume=False``: it checks credentials anew."""
    ticket = usable_ticket(core, profile, now) if resume else None
    if ticket is None:
        return ike_sa_init.initiate(core, profile, local, peer, now)
    return start_resume(core, profile, local, peer, ticket, now)


def start_resume(core: IkeCore, profile: ConnectionProfile, local: Address, peer: Address, ticket: ClientTicket,
                 now: float) -> IkeSa:
    """Create an initiator IKE_SA and send IKE_SESSION_RESUME with *ticket* (RFC 5723 §4.3.2)."""
    sa = IkeSa(profile, True, core.new_ike_spi(), ZERO_SPI, local, peer, now)
    core.sas[sa.spi_i] = sa
    sa.nonce_i = core.new_nonce(sa)
    sa.suite = ticket.suite
    sa.resumption = ticket
    _send_request(core, sa, now)
    return sa


def _send_request(core: IkeCore, sa: IkeSa, now: float) -> Exchange:
    """HDR, [N(COOKIE),] Ni, N(TICKET_OPAQUE), N(NATD_S), N(NATD_D) (RFC 5723 §4.3.2; RFC 7296 §2.6, §2.23)."""
    ticket: ClientTicket = sa.resumption
    payloads: list[Payload] = [NotifyPayload(NotifyType.COOKIE, data=sa.cookie)] if sa.cookie else []
    payloads += [NoncePayload(sa.nonce_i), NotifyPayload(NotifyType.TICKET_OPAQUE, data=ticket.ticket),
                 *ike_sa_init.natd_payloads(sa.spi_i, ZERO_SPI, sa.local, sa.peer, core)]
    msg = Message(sa.spi_i, ZERO_SPI, ExchangeType.IKE_SESSION_RESUME, HeaderFlag.INITIATOR, 0, tuple(payloads))
    data = serialize_message(msg)
    sa.init_request = data
    sa.next_message_id = 1
    return core.start_request(sa, ExchangeType.IKE_SESSION_RESUME, PURPOSE, data, 0, now)

def _derive(core: IkeCore, sa: IkeSa, old_sk_d: bytes) -> None:
    """RFC 5723 §5.1, then RFC 7296 §2.14: the resumed IKE_SA's keys; IkeSaKeysDerived for the key table."""
    suite = sa.suite
    assert suite is not None and suite.prf_id is not None
    skeyseed = resume_skeyseed(suite.prf_id, old_sk_d, sa.nonce_i, sa.nonce_r, core.meter)
    sa.keys = keys = derive_ike_keys(suite, skeyseed, sa.nonce_i, sa.nonce_r, sa.spi_i, sa.spi_r, core.meter)
    core.emit(ev.IkeSaKeysDerived(
        **sa.ids(), initiator=sa.initiator, sk_ei=keys.sk_ei, sk_er=keys.sk_er, sk_ai=keys.sk_ai, sk_ar=keys.sk_ar,
        encr_wireshark=suite.wireshark_ike_encr, integ_wireshark=suite.wireshark_ike_integ))
    sa.protect_out, sa.protect_in = make_sk_protectors(suite, keys, sa.initiator, core.rng_iv, core.meter)


def _fall_back(core: IkeCore, sa: IkeSa, ex: Exchange, outcome: str, reason: str, now: float) -> None:
    """The gateway refused the ticket: forget it and run IKE_SA_INIT on the same IKE_SA (RFC 5723 §4.3.2)."""
    core.complete(sa, ex, outcome)
    core.emit(ev.TicketRejected(**sa.ids(), by_us=False, reason=reason, exchange="IKE_SESSION_RESUME"))
    ticket_state(core).tickets.pop(sa.name, None)
    sa.resumption = None
    sa.suite = None
    sa.cookie = b""
    sa.init_retries = 0
    sa.ke = new_key_exchange(sa.profile.ike_group, core.rng_ke, core.meter)
    ike_sa_init.send_request(core, sa, now)


def _handle_response(core: IkeCore, sa: IkeSa, ex: Exchange, msg: Message, data: bytes, src: Address,
                     dst: Address, now: float) -> None:
    """Initiator: Nr -> keys (§5.1) and IKE_AUTH; N(COOKIE) -> again with it; N(TICKET_NACK) or another error
    -> IKE_SA_INIT (RFC 5723 §4.3.2)."""
    notifies = msg.get_all(NotifyPayload)
    by_type = {n.notify_type: n for n in notifies}
    nonce = msg.get(NoncePayload)
    cookie = by_type.get(NotifyType.COOKIE)
    if cookie is not None and nonce is None and 0 < len(cookie.data) <= 64:
        if sa.init_retries >= MAX_COOKIE_RETRIES:
            _fall_back(core, sa, ex, "COOKIE", "cookie retries exhausted", now)
            return
        sa.init_retries += 1
        core.complete(sa, ex, "COOKIE")
        sa.cookie = cookie.data
        core.emit(ev.IkeSaInitRetried(**sa.ids(), reason="cookie", group="none"))
        _send_request(core, sa, now)
        return
    errors = [n for n in notifies if n.notify_type.is_error]
    if NotifyType.TICKET_NACK in by_type or errors:
        name = "TICKET_NACK" if NotifyType.TICKET_NACK in by_type else errors[0].notify_type.name
        _fall_back(core, sa, ex, name, name, now)
        return
    if nonce is None or msg.spi_r == ZERO_SPI:
        core.complete(sa, ex, "INVALID_SYNTAX")
        core.emit(ev.ResponseRejected(**sa.ids(), exchange="IKE_SESSION_RESUME", purpose=PURPOSE, message_id=0,
                                      reason="IKE_SESSION_RESUME response without Nr or SPIr"))
        core.remove_ike_sa(sa, "failed")
        return
    ticket: ClientTicket = sa.resumption
    sa.spi_r = msg.spi_r
    sa.nonce_r = nonce.data
    sa.init_response = data
    _derive(core, sa, ticket.sk_d)
    ticket_state(core).tickets.pop(sa.name, None)  # single use: a new one comes with IKE_AUTH
    core.complete(sa, ex, "ok")
    core.emit(ev.IkeSaResumed(**sa.ids(), initiator=True, old_spi_i=ticket.spi_i, old_spi_r=ticket.spi_r))
    ike_sa_init.detect_nat(core, sa, msg, src, dst)
    natt = NotifyType.NAT_DETECTION_SOURCE_IP in by_type
    if sa.nat_local or sa.nat_peer or (natt and sa.profile.connection.ike.mobike):
        float_to_natt(core, sa)  # RFC 7296 §2.23, as after IKE_SA_INIT
    ike_auth.start(core, sa, now)

# ====================================================================== IKE_SESSION_RESUME, responder
def _drop(core: IkeCore, msg: Message, src: Address, dst: Address, reason: str, sa: IkeSa | None = None) -> None:
    core.emit(ev.MessageDropped(spi_i=msg.spi_i, spi_r=msg.spi_r, connection=sa.name if sa else "", reason=reason,
                                src=src, dst=dst, exchange="IKE_SESSION_RESUME", message_id=msg.message_id))


def _nack(core: IkeCore, msg: Message, src: Address, dst: Address, reason: str, connection: str = "") -> None:
    """HDR(SPIi, 0), N(TICKET_NACK): the ticket is refused, no state kept (RFC 5723 §4.3.2)."""
    reply = Message(msg.spi_i, ZERO_SPI, ExchangeType.IKE_SESSION_RESUME, HeaderFlag.RESPONSE, 0,
                    (NotifyPayload(NotifyType.TICKET_NACK),))
    core.outbox.append(Datagram(serialize_message(reply), dst, src))
    core.emit(ev.TicketRejected(spi_i=msg.spi_i, spi_r=ZERO_SPI, connection=connection, by_us=True, reason=reason,
                                exchange="IKE_SESSION_RESUME"))


def _admit(core: IkeCore, msg: Message, nonce_i: bytes, src: Address, dst: Address, now: float) -> bool:
    """The IKE_SA_INIT flood protection (RFC 7296 §2.6, ``ike_sa_init._admit``) for IKE_SESSION_RESUME (RFC 5723
    §4.3.2: the responder may answer N(COOKIE)); the same thresholds and per-IP block."""
    cfg, jar = core.config, core.cookies
    total, from_ip = len(core.half_open), core.half_open.count_ip(src.ip)
    if (jar.required(total, cfg.cookie_threshold, None, now)
            or jar.required(from_ip, cfg.cookie_threshold_ip, src.ip, now)):
        first = msg.payloads[0] if msg.payloads else None
        sent = first.data if isinstance(first, NotifyPayload) and first.notify_type == NotifyType.COOKIE else None
        if sent is None or not jar.valid(sent, nonce_i, src.ip, msg.spi_i, core.meter):
            cookie = jar.make(nonce_i, src.ip, msg.spi_i, now, core.meter)
            reply = Message(msg.spi_i, ZERO_SPI, ExchangeType.IKE_SESSION_RESUME, HeaderFlag.RESPONSE, 0,
                            (NotifyPayload(NotifyType.COOKIE, data=cookie),))
            core.outbox.append(Datagram(serialize_message(reply), dst, src))
            return False
    limit = cfg.init_limit_half_open
    if limit is not None and total >= limit:
        _drop(core, msg, src, dst, f"half-open limit of {limit} reached")
        return False
    return True


def _open(core: IkeCore, raw: bytes, src: Address, dst: Address, now: float) -> tuple[TicketState, ConnectionProfile,
                                                                                     Suite, bytes]:
    """Validate a presented ticket (RFC 5723 §4.3.2, §6): InvalidTicket with the reason."""
    if core.meter is not None:
        core.meter.add(TICKET_OP_OPEN)
    state = ticket_keys(core).open(raw, now)
    profile = core.profiles.get(state.connection)
    conn = profile.connection if profile is not None else None
    if conn is None or not conn.ike.resumption or conn.remote_addr is not None:
        raise InvalidTicket("no connection resumes this ticket")
    if conn.local_addr is not None and conn.local_addr.ip != dst.ip:
        raise InvalidTicket("ticket of another address")
    digest = hashlib.sha256(raw).digest()
    used = ticket_state(core).used
    for k in [k for k, until in used.items() if until <= now]:
        del used[k]
    if digest in used:
        raise InvalidTicket("ticket replayed")
    transforms = tuple(Transform.make(t, i, k or None) for t, i, k in state.transforms)
    try:
        suite = Suite.from_wire(Proposal(1, ProtocolId.IKE, b"", transforms))
    except (NoProposalChosen, ValueError, KeyError) as exc:
        raise InvalidTicket("ticket suite unusable") from exc
    if suite.prf_id is None:
        raise InvalidTicket("ticket suite unusable")
    return state, profile, suite, digest  # type: ignore[return-value]


def _handle_request(core: IkeCore, msg: Message, data: bytes, src: Address, dst: Address, now: float) -> None:
    """Responder: check the ticket; answer Nr with a new IKE_SA keyed from it, or N(TICKET_NACK) (RFC 5723 §4.3.2)."""
    key = (msg.spi_i, src)
    known = core.responder_index.get(key)
    if known is not None:
        old = core.sas.get(known)
        if old is not None and old.init_request == data and old.init_response:
            core.outbox.append(Datagram(old.init_response, dst, src))  # RFC 7296 §2.1: a retransmission
            return
    nonce = msg.get(NoncePayload)
    opaque = next((n for n in msg.get_all(NotifyPayload) if n.notify_type == NotifyType.TICKET_OPAQUE), None)
    if nonce is None or opaque is None:
        _drop(core, msg, src, dst, "malformed: IKE_SESSION_RESUME without Ni or N(TICKET_OPAQUE)")
        return
    if not _admit(core, msg, nonce.data, src, dst, now):
        return
    try:
        state, profile, suite, digest = _open(core, opaque.data, src, dst, now)
    except InvalidTicket as exc:
        _nack(core, msg, src, dst, exc.reason)
        return
    ticket_state(core).used[digest] = state.expires_at
    sa = IkeSa(profile, False, msg.spi_i, core.new_ike_spi(), dst, src, now)
    sa.nonce_i = nonce.data
    sa.nonce_r = core.new_nonce(sa)
    sa.suite = suite
    sa.resumption = state
    _derive(core, sa, state.sk_d)
    sa.init_request = data
    sa.peer_message_id = 1
    ike_sa_init.detect_nat(core, sa, msg, src, dst)
    reply = Message(sa.spi_i, sa.spi_r, ExchangeType.IKE_SESSION_RESUME, HeaderFlag.RESPONSE, 0,
                    (NoncePayload(sa.nonce_r), *ike_sa_init.natd_payloads(sa.spi_i, sa.spi_r, dst, src, core)))
    core.emit(ev.IkeSaResumed(**sa.ids(), initiator=False, old_spi_i=state.spi_i, old_spi_r=state.spi_r))
    ike_sa_init.answer_half_open(core, sa, key, reply, src, now)


def receive(core: IkeCore, msg: Message, data: bytes, src: Address, dst: Address, now: float) -> None:
    """An IKE_SESSION_RESUME message (exchange type 38, RFC 5723 §4.3.2), routed like IKE_SA_INIT: hostile input is
    a recorded drop or N(TICKET_NACK), never an exception."""
    try:
        verify_payloads(msg.payloads)
    except MalformedMessage as exc:
        _drop(core, msg, src, dst, f"invalid payload: {exc}")
        return
    if msg.is_request:
        if msg.spi_i == ZERO_SPI or msg.spi_r != ZERO_SPI or msg.message_id != 0 or not msg.from_original_initiator:
            _drop(core, msg, src, dst, "unexpected IKE_SESSION_RESUME request")
            return
        if any(isinstance(p, UnknownPayload) and p.critical for p in msg.payloads):
            _drop(core, msg, src, dst, "unsupported critical payload")
            return
        _handle_request(core, msg, data, src, dst, now)
        return
    sa = core.sas.get(msg.spi_i)
    ex = sa.active if sa is not None else None
    if (sa is None or ex is None or not sa.initiator or sa.local_spi != msg.spi_i or ex.purpose != PURPOSE
            or sa.state is not IkeSaState.CONNECTING or msg.message_id != 0):
        _drop(core, msg, src, dst, "unexpected response", sa)
        return
    if any(isinstance(p, UnknownPayload) and p.critical for p in msg.payloads):
        _drop(core, msg, src, dst, "unsupported critical payload in a response", sa)
        return
    sa.last_received_at = now
    _handle_response(core, sa, ex, msg, data, src, dst, now)
