"""RFC 6311: message ID and replay counter synchronization after a cluster takeover (sans-IO).

Negotiation : N(IKEV2_MESSAGE_ID_SYNC_SUPPORTED) and N(IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED) go in the first
IKE_AUTH request and its response when ``IkePolicy.message_id_sync`` / ``replay_counter_sync`` are set; an IKE_SA
uses a feature only if both ends sent its notify, and a rekeyed IKE_SA inherits it (strongSwan ``ike_auth.c``
enables ``EXT_IKE_MESSAGE_ID_SYNC`` on the peer's notify).

The synchronization , started by the cluster member that took an IKE_SA over (``start``): an INFORMATIONAL
request on message ID 0, outside the window, carrying N(IKEV2_MESSAGE_ID_SYNC) with a 4-octet nonce, M1 (the
message ID of our next request) and P1 (the one we expect on the peer's next request), and, if negotiated,
N(IPSEC_REPLAY_COUNTER_SYNC) with the increment the peer is asked to add to its outbound ESP sequence numbers.

The peer (``handle_request``, as strongSwan's ``ike_mid_sync.c``):

- ignores the request if M1 is lower than the message ID it expects on our next request (strongSwan checks
  ``<``; RFC 6311 §5.1 says lower than or equal to the highest value seen);
- takes M2 = max(M1, expected) and P2 = max(P1, its next message ID, counting a request in flight), and answers
  on message ID 0 with N(IKEV2_MESSAGE_ID_SYNC)(nonce echoed, P2, M2);
- keeps no cached response (a retransmitted old request is not answered again; strongSwan ``clear_packets``);
- a request of its own in flight (an empty DPD included) is sent again under P2 with the same payloads, its
  retransmission schedule restarted; a MOBIKE request, which keeps no payloads (``ike.mobike`` builds it per
  path), is ended and started afresh from its work on P2. strongSwan (5.9.8, seen live) re-queues every active
  task (``task_manager.reset``) and sends it afresh, with new nonces, only when something next initiates (a command
  or a job): its retransmission is cancelled meanwhile. ikesim sends it at once; the cluster sees one request on P2
  either way.

The cluster (``handle_response``) checks the echoed nonce and takes P2 and M2: its next request carries M2,
and it expects P2 on the peer's next one. A response with another nonce is dropped; the request is
retransmitted and, unanswered, times out as any other (RFC 7296 §2.4).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from ikesim.ike import events as ev
from ikesim.ike.exchange import Work
from ikesim.ike.state import IkeSaState
from ikesim.types import Address, Datagram
from ikesim.wire.iana import ExchangeType, NotifyType
from ikesim.wire.payloads import NotifyPayload, Payload

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore
    from ikesim.ike.exchange import Exchange
    from ikesim.ike.sa import IkeSa
    from ikesim.wire.message import Message

__all__ = ["auth_payloads", "process_auth", "queue", "start", "syncing", "wants", "is_sync", "receive", "handle_request",
           "handle_response", "sync_data", "parse_sync"]

_SYNC = struct.Struct("!4sII")
"""IKEV2_MESSAGE_ID_SYNC notification data: Nonce Data, EXPECTED_SEND_REQ_MESSAGE_ID, EXPECTED_RECV_REQ_MESSAGE_ID."""
_DELTA = struct.Struct("!I")
"""IPSEC_REPLAY_COUNTER_SYNC notification data: the 32-bit increment (RFC 6311; no ESN here)."""
_SYNC_NOTIFIES = frozenset({NotifyType.IKEV2_MESSAGE_ID_SYNC, NotifyType.IPSEC_REPLAY_COUNTER_SYNC})


def sync_data(nonce: bytes, send: int, recv: int) -> bytes:
    """The IKEV2_MESSAGE_ID_SYNC notification data (RFC 6311)."""
    return _SYNC.pack(nonce, send & 0xFFFFFFFF, recv & 0xFFFFFFFF)


def parse_sync(data: bytes) -> tuple[bytes, int, int] | None:
    """(nonce, EXPECTED_SEND_REQ_MESSAGE_ID, EXPECTED_RECV_REQ_MESSAGE_ID), or None if not 12 octets ."""
    if len(data) != _SYNC.size:
        return None
    nonce, send, recv = _SYNC.unpack(data)
    return nonce, send, recv


# ---------------------------------------------------------------------- negotiation (RFC 6311)
def auth_payloads(sa: IkeSa, *, request: bool, msg: Message | None = None) -> list[Payload]:
    """Our support notifies for IKE_AUTH: in the request if configured; in the response if configured and offered."""
    ike = sa.profile.connection.ike
    out: list[Payload] = []
    for enabled, kind in ((ike.message_id_sync, NotifyType.IKEV2_MESSAGE_ID_SYNC_SUPPORTED),
                          (ike.replay_counter_sync, NotifyType.IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED)):
        if enabled and (request or (msg is not None and _has(msg, kind))):
            out.append(NotifyPayload(kind))
    return out


def _has(msg: Message, kind: NotifyType) -> bool:
    return any(n.notify_type == kind for n in msg.get_all(NotifyPayload))


def process_auth(core: IkeCore, sa: IkeSa, msg: Message) -> None:
    """Both ends sent a support notify: the IKE_SA may use that synchronization (RFC 6311)."""
    ike = sa.profile.connection.ike
    sa.mid_sync = ike.message_id_sync and _has(msg, NotifyType.IKEV2_MESSAGE_ID_SYNC_SUPPORTED)
    sa.replay_sync = ike.replay_counter_sync and _has(msg, NotifyType.IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED)
    if sa.mid_sync or sa.replay_sync:
        core.emit(ev.HaSyncNegotiated(**sa.ids(), message_id_sync=sa.mid_sync, replay_counter_sync=sa.replay_sync))


# ---------------------------------------------------------------------- the cluster's request
def queue(core: IkeCore, sa: IkeSa, now: float, *, replay_delta: int = 0) -> bool:
    """Queue a synchronization of *sa* ahead of other work if it negotiated RFC 6311 (asking the peer for
    *replay_delta* if replay counter sync was negotiated too); False if it did not."""
    if not sa.mid_sync:
        return False
    if replay_delta and sa.replay_sync:
        core.ha_replay_delta[sa.local_spi] = replay_delta
    core.enqueue(sa, Work("mid_sync"), now, front=True)
    return True



def start(core: IkeCore, sa: IkeSa, work: Work, now: float) -> bool:
    """Send INFORMATIONAL(message ID 0) with N(IKEV2_MESSAGE_ID_SYNC)(nonce, M1, P1) [N(IPSEC_REPLAY_COUNTER_SYNC)]."""
    if sa.state is not IkeSaState.ESTABLISHED or not sa.mid_sync:
        return False
    nonce = core.rng_mid_sync.bytes(4)
    inner: list[Payload] = [NotifyPayload(NotifyType.IKEV2_MESSAGE_ID_SYNC,
                                          data=sync_data(nonce, sa.next_message_id, sa.peer_message_id))]
    delta = core.ha_replay_delta.pop(sa.local_spi, 0)
    if delta and sa.replay_sync:
        inner.append(NotifyPayload(NotifyType.IPSEC_REPLAY_COUNTER_SYNC, data=_DELTA.pack(delta & 0xFFFFFFFF)))
    else:
        delta = 0
    data = core.seal_datagrams(sa, ExchangeType.INFORMATIONAL, 0, False, inner)
    ex = core.start_request(sa, ExchangeType.INFORMATIONAL, "mid_sync", data, 0, now, work=work)
    ex.cookie2 = nonce  # the nonce the answer must echo (RFC 6311)
    ex.new_spi = _DELTA.pack(delta)
    return True


def handle_response(core: IkeCore, sa: IkeSa, ex: Exchange, msg: Message, now: float) -> None:
    """The peer's P2 and M2 become our window (RFC 6311); a response without our nonce is dropped."""
    answer = next((parse_sync(n.data) for n in msg.get_all(NotifyPayload)
                   if n.notify_type == NotifyType.IKEV2_MESSAGE_ID_SYNC), None)
    if answer is None or answer[0] != ex.cookie2:
        core.emit(ev.MessageDropped(**sa.ids(), exchange=msg.exchange_type.name, message_id=msg.message_id,
                                    reason="IKEV2_MESSAGE_ID_SYNC answer without our nonce",
                                    src=core.rx[0], dst=core.rx[1]))
        return
    _nonce, p2, m2 = answer
    sa.next_message_id = m2
    sa.peer_message_id = p2
    sa.last_response = ()
    core.complete(sa, ex, "ok")
    core.emit(ev.MessageIdsSynchronized(**sa.ids(), role="cluster", next_message_id=m2, peer_message_id=p2,
                                        replay_delta=_DELTA.unpack(ex.new_spi)[0], resent=False))


# ---------------------------------------------------------------------- the peer's answer (strongSwan)
def syncing(sa: IkeSa) -> bool:
    """Our synchronization of *sa* is in flight: the peer's requests wait for it (dropped now, sent again under P2).

    A request the peer sent before it saw the synchronization carries a message ID from before the takeover; answered,
    it would create state (a CHILD_SA) the peer abandons when it moves its window and sends the request again under
    P2. RFC 6311 leaves this open and strongSwan has no cluster side; ikesim drops such requests."""
    ex = sa.active
    return ex is not None and ex.purpose == "mid_sync"


def wants(sa: IkeSa, msg: Message) -> bool:
    """*msg* is a synchronization request we take: INFORMATIONAL on message ID 0, on an established IKE_SA that
    negotiated it, carrying only the sync notifies (strongSwan ``is_potential_mid_sync``/``is_mid_sync``)."""
    return (msg.is_request and msg.message_id == 0 and msg.exchange_type == ExchangeType.INFORMATIONAL
            and sa.mid_sync and sa.state is IkeSaState.ESTABLISHED)


def is_sync(msg: Message) -> bool:
    """The decrypted request carries N(IKEV2_MESSAGE_ID_SYNC) and nothing but sync notifies."""
    kinds = [p.notify_type if isinstance(p, NotifyPayload) else None for p in msg.payloads]
    return NotifyType.IKEV2_MESSAGE_ID_SYNC in kinds and all(k in _SYNC_NOTIFIES for k in kinds)


def receive(core: IkeCore, sa: IkeSa, msg: Message, full: Message, src: Address, dst: Address, now: float) -> bool:
    """A request on message ID 0 that ``wants`` took, decrypted as *full*: answered if it is a synchronization, else
    the usual message ID rules (RFC 7296 §2.1, §2.3). True if it was dealt with here."""
    if is_sync(full):
        sa.last_received_at = now
        core.arm_dpd(sa)
        core.rx = (src, dst)
        reason = handle_request(core, sa, full, now)
        if reason:
            core.emit(ev.MessageDropped(**sa.ids(), reason=reason, src=src, dst=dst,
                                        exchange=msg.exchange_type.name, message_id=0))
        core.pump(sa, now)
        return True
    if msg.message_id == sa.peer_message_id - 1 and sa.last_response:
        sa.last_received_at = now  # inbound traffic, as the daemon counts any retransmission (RFC 7296 §2.4)
        core.arm_dpd(sa)
        core.outbox.extend(Datagram(d, dst, src) for d in sa.last_response)  # a retransmission (RFC 7296 §2.1)
        return True
    if msg.message_id != sa.peer_message_id:
        core.emit(ev.MessageDropped(**sa.ids(), reason=f"unexpected message ID {msg.message_id}", src=src, dst=dst,
                                    exchange=msg.exchange_type.name, message_id=msg.message_id))
        return True
    return False


def handle_request(core: IkeCore, sa: IkeSa, msg: Message, now: float) -> str:
    """Answer a synchronization (strongSwan ``ike_mid_sync.c``); returns why it was ignored, or ``""``."""
    request = next((parse_sync(n.data) for n in msg.get_all(NotifyPayload)
                    if n.notify_type == NotifyType.IKEV2_MESSAGE_ID_SYNC), None)
    if request is None:
        return "invalid IKEV2_MESSAGE_ID_SYNC notify"
    nonce, m1, p1 = request
    if m1 < sa.peer_message_id:
        return f"IKEV2_MESSAGE_ID_SYNC with lower ({m1}) than expected ({sa.peer_message_id}) sender message ID"
    delta = 0
    if sa.replay_sync:
        counter = next((n.data for n in msg.get_all(NotifyPayload)
                        if n.notify_type == NotifyType.IPSEC_REPLAY_COUNTER_SYNC), None)
        if counter is not None and len(counter) == _DELTA.size:
            delta = _DELTA.unpack(counter)[0]
    m2 = max(m1, sa.peer_message_id)
    p2 = max(p1, sa.next_message_id)
    data = core.seal_datagrams(sa, ExchangeType.INFORMATIONAL, 0, True,
                               [NotifyPayload(NotifyType.IKEV2_MESSAGE_ID_SYNC, data=sync_data(nonce, p2, m2))])
    src, dst = core.rx
    core.outbox.extend(Datagram(d, dst, src) for d in data)  # answered where it came from, never cached
    sa.peer_message_id = m2
    sa.last_response = ()
    resent = _move_window(core, sa, p2, now)
    core.emit(ev.MessageIdsSynchronized(**sa.ids(), role="peer", next_message_id=p2, peer_message_id=m2,
                                        replay_delta=delta, resent=resent))  # resent: on p2, as the cluster expects
    return ""


def _move_window(core: IkeCore, sa: IkeSa, p2: int, now: float) -> bool:
    """Our next request carries *p2*; a request in flight goes again on it (True if one does): sealed again with the
    same payloads (an empty DPD too, as strongSwan re-queues ``ike_dpd``), or, a MOBIKE request (built per path by
    ``ike.mobike``, no payloads kept), ended and started afresh from its work, as strongSwan's ``task_manager.reset``
    re-queues every active task."""
    ex = sa.active
    if ex is None:
        sa.next_message_id = p2
        return False
    if ex.purpose == "mobike":
        core.complete(sa, ex, "mid_sync")
        sa.next_message_id = p2
        if ex.work is None:
            return False
        sa.queue.insert(0, ex.work)  # ``receive`` pumps it after the answer: it goes out on p2
        return True
    sa.next_message_id = p2 + 1
    ex.message_id = p2
    ex.request = core.seal_datagrams(sa, ex.exchange_type, p2, False, ex.inner)
    ex.attempts = 0
    ex.deadline = now + ex.timeouts[0]
    core.timers.arm(("rtx", sa.local_spi), ex.deadline)
    core.send_request(sa, ex.request)
    core.emit(ev.Retransmitted(**sa.ids(), exchange=ex.exchange_name, purpose=ex.purpose, message_id=p2,
                               attempt=0, reason="mid_sync"))
    return True
