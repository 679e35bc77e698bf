"""IKEv2 session resumption: tickets in IKE_AUTH and INFORMATIONAL, resumed AUTH (RFC 5723); the IKE_SESSION_RESUME
exchange itself is ``ike.resume_exchange`` (which imports IKE_SA_INIT and IKE_AUTH: this module is imported by them).

strongSwan has no RFC 5723; this follows the RFC, with libreswan (``ikev2_ike_session_resume.c``) where it helps.

- Requesting (§4.1): a client with ``IkePolicy.resumption`` sends N(TICKET_REQUEST) in IKE_AUTH; it asks again in an
  INFORMATIONAL at ``REFRESH_FRACTION`` of the ticket's lifetime (a decision: the RFC says only "about to expire").
- Issuing (§4.2): a gateway with ``resumption`` answers N(TICKET_LT_OPAQUE): the lifetime (4 octets, seconds), then the
  ticket (``ike.tickets``). Its lifetime is ``ticket_lifetime``, bounded by ``reauth_time`` when set (§6.2). A gateway
  without ``resumption`` ignores the request (an unknown status notify, RFC 7296 §3.10.1).
- Presenting (§4.3.2): ``HDR(SPIi, 0), Ni, N(TICKET_OPAQUE), N(NATD_S), N(NATD_D)`` (the NAT detection notifies are
  the optional N+: IKE_AUTH on may float to 4500 as after IKE_SA_INIT). Answer ``HDR(SPIi, SPIr), Nr, N(NATD_S),
  N(NATD_D)``, or ``HDR(SPIi, 0), N(TICKET_NACK)`` without state for a ticket refused (unknown or retired key, ICV,
  expired, replayed, connection gone), after which the client runs IKE_SA_INIT with the same SPIi (a fresh exchange,
  message ID 0; as libreswan's fallback). Under flood the responder demands a COOKIE with the IKE_SA_INIT cookie
  thresholds (RFC 7296 §2.6) and drops above ``init_limit_half_open``.
- Keys (§5.1): SKEYSEED = prf(SK_d (old), "Resumption" | Ni | Nr), then RFC 7296 §2.14 with the ticket's suite.
- IKE_AUTH (§4.3.3): no CERT; AUTH = prf(SK_px, <message octets>) (method "Shared Key MIC"), the octets of RFC 7296
  §2.15 with the IKE_SESSION_RESUME messages as RealMessage1/2; IDi and IDr must be the ticket's. The CHILD_SAs are
  created anew (the first in IKE_AUTH, the others queued as for any re-establishment).
- Replay (the RFC lets the gateway choose how it limits a ticket's reuse): a ticket is single-use. The gateway
  remembers the tickets it accepted until they expire (per node: a cluster member that did not see the first use
  accepts a replay); the client forgets its ticket once the gateway answered, and asks for a new one in the resumed
  IKE_AUTH. It keeps it while unanswered (the gateway may be down: that is when resumption is wanted).
- The gateway's old IKE_SA of the ticket, if it still has it, is not removed by the resumption (RFC 5723 leaves it
  open): the client's Delete, DPD or its lifetime ends it.
- Reauthentication (RFC 7296 §2.8.3) never resumes: it is there to check the credentials again.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ikesim.crypto.prf import prf
from ikesim.crypto.suites import Suite
from ikesim.ike import events as ev
from ikesim.ike.exchange import Exchange, Work
from ikesim.ike.profile import ConnectionProfile
from ikesim.ike.sa import IkeSa
from ikesim.ike.state import IkeSaState
from ikesim.ike.tickets import HEADER_SIZE, TicketKeys, TicketState
from ikesim.wire.iana import AuthMethod, ExchangeType, NotifyType, ProtocolId, TransformAttr
from ikesim.wire.message import Message
from ikesim.wire.payloads import AuthPayload, NotifyPayload, Payload, Transform

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore

__all__ = [
    "ClientTicket", "REFRESH_FRACTION", "RESUMPTION_LABEL", "REFRESH_TIMER", "usable_ticket", "ticket_request_payloads",
    "ticket_payloads", "refresh_payloads", "process_auth", "auth_payload", "verify_auth", "start_refresh",
    "handle_refresh_response", "on_refresh_timer", "resume_skeyseed", "ticket_state", "ticket_keys", "TICKET_OP_OPEN",
]

REFRESH_FRACTION = 0.8
"""The client asks for a new ticket when this fraction of its lifetime has passed (RFC 5723 §4.1: "about to expire")."""
RESUMPTION_LABEL = b"Resumption"
"""RFC 5723 §5.1: SKEYSEED = prf(SK_d (old), "Resumption" | Ni | Nr)."""
REFRESH_TIMER = "ticket_refresh"
_STATE = "_resumption"
TICKET_OP_SEAL, TICKET_OP_OPEN = "sk_seal:aes256gcm16", "sk_open:aes256gcm16"
"""The ticket's AES-256-GCM counted as the SK payload's (``ikesim.crypto.meter``): same cipher, similar size."""


@dataclass(slots=True, eq=False)
class ClientTicket:
    """A ticket the client holds (RFC 5723 §4.2), with what it needs to resume: the SK_d and suite it was issued for."""

    connection: str
    ticket: bytes
    sk_d: bytes = field(repr=False)
    suite: Suite
    expires_at: float
    spi_i: bytes
    spi_r: bytes
    id_r: str


@dataclass(slots=True, eq=False)
class _State:
    keys: TicketKeys | None = None
    used: dict[bytes, float] = field(default_factory=dict)
    """Gateway: digest of each ticket accepted -> its expiry (RFC 5723 single use)."""
    tickets: dict[str, ClientTicket] = field(default_factory=dict)
    """Client: the ticket held per connection."""
    refresh: dict[bytes, str] = field(default_factory=dict)
    """Client: IKE SPI whose refresh timer is armed -> connection."""
    issued: int = 0


def ticket_state(core: IkeCore) -> _State:
    """This daemon's resumption state: the gateway's keys and replay cache, the client's tickets (RFC 5723 §4)."""
    st: _State | None = vars(core).get(_STATE)
    if st is None:
        st = vars(core)[_STATE] = _State()
    return st


def ticket_keys(core: IkeCore) -> TicketKeys:
    """The gateway's ticket keys (``ike.tickets``): from ``ticket_secret``, else the seeded ``ticket`` stream."""
    st = ticket_state(core)
    if st.keys is None:
        cfg = core.config
        secret = cfg.ticket_secret or core.rng.child("ticket").bytes(32)
        accept = max([p.connection.ike.ticket_lifetime for p in core.profiles.values()], default=0.0)
        st.keys = TicketKeys(secret, cfg.ticket_key_rotation, accept)
    return st.keys


# ====================================================================== tickets in IKE_AUTH and INFORMATIONAL
def ticket_request_payloads(sa: IkeSa) -> list[Payload]:
    """Client IKE_AUTH request: N(TICKET_REQUEST) if ``resumption`` is on (RFC 5723 §4.1)."""
    return [NotifyPayload(NotifyType.TICKET_REQUEST)] if sa.initiator and sa.profile.connection.ike.resumption else []


def _requested(msg: Message) -> bool:
    return any(n.notify_type == NotifyType.TICKET_REQUEST for n in msg.get_all(NotifyPayload))


def _lifetime(sa: IkeSa) -> float:
    """RFC 5723 §6.2: the ticket lives no longer than the gateway's policy allows the authentication to."""
    ike = sa.profile.connection.ike
    return min(ike.ticket_lifetime, ike.reauth_time) if ike.reauth_time > 0 else ike.ticket_lifetime


def _issue(core: IkeCore, sa: IkeSa, now: float, *, refreshed: bool) -> NotifyPayload:
    """Gateway: seal *sa*'s state into N(TICKET_LT_OPAQUE) (RFC 5723 §4.2, Appendix A.1)."""
    keys, suite, st = ticket_keys(core), sa.suite, ticket_state(core)
    assert sa.keys is not None and suite is not None
    conn = sa.profile.connection
    lifetime = float(int(_lifetime(sa)))
    transforms = tuple((int(t.transform_type), t.transform_id, _key_length(t))
                       for t in suite.to_wire(1, ProtocolId.IKE, b"").transforms)
    state = TicketState(conn.name, sa.peer_id, conn.local_id, sa.spi_i, sa.spi_r,
                        (conn.credentials.peer_method or conn.credentials.method).value, transforms,
                        sa.keys.sk_d, tuple(sa.profile.children), now, now + lifetime)
    st.issued += 1
    # A synthetic IV, unique per (IKE_SA, time, count): no draw, and never repeated under one key.
    iv = hashlib.sha256(sa.spi_i + sa.spi_r + struct.pack(">dQ", now, st.issued) + core.name.encode()).digest()[:12]
    ticket = keys.seal(state, iv, now)
    if core.meter is not None:
        core.meter.add(TICKET_OP_SEAL)  # the CPU model's cost of an AES-256-GCM seal of a message this size
    core.emit(ev.TicketIssued(**sa.ids(), by_us=True, refreshed=refreshed, lifetime=lifetime,
                              expires_at=now + lifetime, key_id=keys.key_id(now)))
    return NotifyPayload(NotifyType.TICKET_LT_OPAQUE, data=struct.pack(">I", int(lifetime)) + ticket)


def _key_length(t: Transform) -> int:
    for a in t.attributes:
        if a.attr_type == TransformAttr.KEY_LENGTH and isinstance(a.value, int):
            return a.value
    return 0


def ticket_payloads(core: IkeCore, sa: IkeSa, msg: Message, now: float) -> list[Payload]:
    """Gateway IKE_AUTH response: N(TICKET_LT_OPAQUE) if the client asked and ``resumption`` is on (RFC 5723 §4.2)."""
    if sa.initiator or not sa.profile.connection.ike.resumption or not _requested(msg):
        return []
    return [_issue(core, sa, now, refreshed=False)]


def refresh_payloads(core: IkeCore, sa: IkeSa, msg: Message, now: float) -> list[Payload]:
    """Gateway INFORMATIONAL response to N(TICKET_REQUEST): a new ticket (RFC 5723 §4.1, §4.2)."""
    if sa.initiator or not _requested(msg):
        return []
    if not sa.profile.connection.ike.resumption:
        return [NotifyPayload(NotifyType.TICKET_NACK)]  # §4.2: the gateway will not issue a ticket
    return [_issue(core, sa, now, refreshed=True)]


def _receive_ticket(core: IkeCore, sa: IkeSa, msg: Message, now: float, *, refreshed: bool) -> None:
    """Client: keep the ticket of N(TICKET_LT_OPAQUE) and arm its refresh (RFC 5723 §4.2); a malformed one or
    N(TICKET_NACK) is recorded (TicketRejected), never raised."""
    conn = sa.profile.connection
    if not sa.initiator or not conn.ike.resumption:
        return
    notifies = {n.notify_type: n for n in msg.get_all(NotifyPayload)}
    found = notifies.get(NotifyType.TICKET_LT_OPAQUE)
    exchange = msg.exchange_type.name
    if found is None:
        if NotifyType.TICKET_NACK in notifies:
            core.emit(ev.TicketRejected(**sa.ids(), by_us=False, reason="TICKET_NACK", exchange=exchange))
        return
    data = found.data
    lifetime = int.from_bytes(data[:4], "big") if len(data) >= 4 else 0
    if len(data) < 4 + HEADER_SIZE or lifetime == 0 or sa.keys is None or sa.suite is None:
        core.emit(ev.TicketRejected(**sa.ids(), by_us=True, reason="malformed TICKET_LT_OPAQUE", exchange=exchange))
        return
    st = ticket_state(core)
    st.tickets[conn.name] = ClientTicket(conn.name, data[4:], sa.keys.sk_d, sa.suite, now + lifetime, sa.spi_i,
                                         sa.spi_r, sa.peer_id)
    core.emit(ev.TicketIssued(**sa.ids(), by_us=False, refreshed=refreshed, lifetime=float(lifetime),
                              expires_at=now + lifetime, key_id=-1))
    for spi in [spi for spi, name in st.refresh.items() if name == conn.name and spi != sa.local_spi]:
        del st.refresh[spi]  # one refresh per ticket: the one of an older IKE_SA of the connection goes
        core.timers.cancel((REFRESH_TIMER, spi))
    st.refresh[sa.local_spi] = conn.name
    core.timers.arm((REFRESH_TIMER, sa.local_spi), now + REFRESH_FRACTION * lifetime)


def process_auth(core: IkeCore, sa: IkeSa, msg: Message, now: float) -> None:
    """After IKE_AUTH established *sa*: the client keeps its ticket (RFC 5723 §4.2). A gateway that resumed leaves the
    ticket's old IKE_SA, if it still has it, to the client's Delete (a re-establishment after an address change sends
    one), DPD or its lifetime: removing it unasked would leave that Delete unanswered."""
    if sa.initiator:
        _receive_ticket(core, sa, msg, now, refreshed=False)


def on_refresh_timer(core: IkeCore, spi: bytes, now: float) -> None:
    """Client: the ticket nears its expiry: ask for a new one on the connection's IKE_SA (RFC 5723 §4.1)."""
    st = ticket_state(core)
    name = st.refresh.pop(spi, None)
    if name is None or name not in st.tickets:
        return
    sa = core.sas.get(spi)
    if sa is None or sa.state is not IkeSaState.ESTABLISHED:
        sa = next((s for s in core.sas.values() if s.name == name and s.initiator
                   and s.state is IkeSaState.ESTABLISHED), None)
    if sa is not None:
        core.enqueue(sa, Work("ticket_request"), now)


def start_refresh(core: IkeCore, sa: IkeSa, work: Work, now: float) -> None:
    """Client: INFORMATIONAL with N(TICKET_REQUEST) (RFC 5723 §4.1)."""
    core.request(sa, ExchangeType.INFORMATIONAL, "ticket_request", [NotifyPayload(NotifyType.TICKET_REQUEST)], now,
                 work=work)


def handle_refresh_response(core: IkeCore, sa: IkeSa, ex: Exchange, msg: Message, now: float) -> None:
    """Client: the answer to our TICKET_REQUEST: N(TICKET_LT_OPAQUE), N(TICKET_ACK) or N(TICKET_NACK) (RFC 5723 §4.2)."""
    errors = [n for n in msg.get_all(NotifyPayload) if n.notify_type.is_error]
    core.complete(sa, ex, errors[0].notify_type.name if errors else "ok")
    _receive_ticket(core, sa, msg, now, refreshed=True)


# ====================================================================== resuming
def usable_ticket(core: IkeCore, profile: ConnectionProfile, now: float) -> ClientTicket | None:
    """The client's ticket for *profile*'s connection if ``resumption`` is on and it has not expired (RFC 5723 §4.3)."""
    if not profile.connection.ike.resumption:
        return None
    st: _State | None = vars(core).get(_STATE)
    ticket = st.tickets.get(profile.connection.name) if st is not None else None
    if ticket is None:
        return None
    if ticket.expires_at <= now:
        del st.tickets[profile.connection.name]  # type: ignore[union-attr]
        return None
    return ticket

def resume_skeyseed(prf_id: int, old_sk_d: bytes, nonce_i: bytes, nonce_r: bytes, meter: Any = None) -> bytes:
    """RFC 5723 §5.1: SKEYSEED = prf(SK_d (old), "Resumption" | Ni | Nr)."""
    return prf(prf_id, old_sk_d, RESUMPTION_LABEL + nonce_i + nonce_r, meter)

# ====================================================================== AUTH after resumption
def auth_payload(sa: IkeSa, octets: bytes, *, as_initiator: bool, meter: Any = None) -> AuthPayload:
    """RFC 5723 §4.3.3: AUTH = prf(SK_px, <message octets>), method Shared Key MIC; no CERT."""
    keys, suite = sa.keys, sa.suite
    assert keys is not None and suite is not None and suite.prf_id is not None
    return AuthPayload(AuthMethod.SHARED_KEY_MIC,
                       prf(suite.prf_id, keys.sk_pi if as_initiator else keys.sk_pr, octets, meter))


def verify_auth(sa: IkeSa, auth: AuthPayload, peer_id: str, octets: bytes, *, peer_is_initiator: bool,
                meter: Any = None) -> str:
    """Check the peer's AUTH after resumption and that its ID is the ticket's (RFC 5723 §4.3.3); "" or the reason."""
    ticket = sa.resumption
    expected_id = ticket.id_i if isinstance(ticket, TicketState) else ticket.id_r
    if peer_id != expected_id:
        return f"peer identity {peer_id!r} is not the ticket's {expected_id!r}"
    if auth.method != AuthMethod.SHARED_KEY_MIC:
        return f"expected Shared Key MIC AUTH after resumption, got {auth.method.name}"
    expected = auth_payload(sa, octets, as_initiator=peer_is_initiator, meter=meter).data
    if not hmac.compare_digest(expected, auth.data):
        return "resumption AUTH mismatch"
    sa.peer_id = peer_id
    return ""
