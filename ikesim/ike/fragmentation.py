"""IKE fragmentation: SKF fragments out, reassembly in (RFC 7383).

Negotiated in IKE_SA_INIT with N(IKEV2_FRAGMENTATION_SUPPORTED) from both
ends (§2.3, ``IkeSa.fragmentation``). An encrypted message whose IP datagram
(IP and UDP headers, plus the non-ESP marker on port 4500) would exceed the
connection's ``fragment_size`` is split into SKF fragments, each encrypted
and authenticated on its own with the IKE_SA's keys (§2.5). A
retransmission resends every fragment, byte for byte (the caller stores the
tuple of datagrams).

On receipt each fragment's ICV is checked as it arrives (§2.6); fragments
are collected per IKE_SA, direction and message ID in ``IkeSa.reassembly``
(so the state dies with the SA); a fragment of a newer message ID, or of a
set older than ``REASSEMBLY_TIMEOUT``, discards the incomplete set. Errors
are raised as ``MalformedMessage`` / ``IntegrityCheckFailed`` for the
daemon to turn into ``MessageDropped``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from ikesim.errors import FragmentIgnored, MalformedMessage
from ikesim.ike import events as ev
from ikesim.ike.transport import NATT_PORT, NON_ESP_MARKER, CoreOutlet
from ikesim.wire.codec import (
    open_fragment,
    protect_fragment,
    protect_message,
    protect_serialized,
    reassembled_message,
    serialize_payloads,
)
from ikesim.wire.iana import NotifyType
from ikesim.wire.message import IKE_HEADER_LENGTH, Message
from ikesim.wire.payloads import NotifyPayload, Payload, SkfPayload

if TYPE_CHECKING:
    from ikesim.ike.sa import IkeSa

__all__ = [
    "MAX_FRAGMENTS",
    "REASSEMBLY_TIMEOUT",
    "SKF_OVERHEAD",
    "supported_notify",
    "offered",
    "datagram_overhead",
    "protect",
    "is_fragment",
    "receive",
    "first_fragment_verifies",
]

MAX_FRAGMENTS = 64
"""Most fragments accepted for one message (RFC 7383 §2.6 asks for a limit; Rockhopper: 64)."""
REASSEMBLY_TIMEOUT = 60.0
"""Seconds an incomplete set is kept from its first fragment (Rockhopper's ``ikev2_frag_rx_timeout``)."""
SKF_OVERHEAD = 8
"""RFC 7383 §2.5: generic payload header (4) + Fragment Number (2) + Total Fragments (2)."""
_UDP = 8
_IPV4 = 20
_IPV6 = 40


def supported_notify() -> NotifyPayload:
    """RFC 7383 §2.3: N(IKEV2_FRAGMENTATION_SUPPORTED), empty, protocol 0."""
    return NotifyPayload(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED)


def offered(msg: Message) -> bool:
    """True if an IKE_SA_INIT message carries N(IKEV2_FRAGMENTATION_SUPPORTED) (RFC 7383 §2.3)."""
    return any(n.notify_type == NotifyType.IKEV2_FRAGMENTATION_SUPPORTED for n in msg.get_all(NotifyPayload))


@lru_cache(maxsize=4096)
def _ip_header(ip: str) -> int:
    """IPv4 or IPv6 header bytes for the address *ip* (parsed once per address, not per message)."""
    return _IPV6 if ipaddress.ip_address(ip).version == 6 else _IPV4


def datagram_overhead(sa: IkeSa) -> int:
    """Bytes around an IKE message in its IP datagram: IP + UDP headers, the non-ESP marker on 4500."""
    ip = _ip_header(sa.local.ip)
    marker = len(NON_ESP_MARKER) if NATT_PORT in (sa.local.port, sa.peer.port) else 0
    return ip + _UDP + marker


def _chunk_size(sa: IkeSa, max_message: int) -> int:
    """Largest plaintext chunk whose SKF message fits in *max_message* bytes (RFC 7383 §2.5.1)."""
    protector = sa.protect_out
    n = max_message - IKE_HEADER_LENGTH - SKF_OVERHEAD - protector.sealed_length(0)
    while n > 0 and IKE_HEADER_LENGTH + SKF_OVERHEAD + protector.sealed_length(n) > max_message:
        n -= 1  # CBC padding: at most a block's worth of steps
    return n


def protect(core: CoreOutlet, sa: IkeSa, head: Message, inner: Sequence[Payload]) -> tuple[bytes, ...]:
    """The message's datagrams: one SK message, or SKF fragments if it does not fit (RFC 7383 §2.5).

    Emits ``MessageFragmented`` when it splits.
    """
    if not sa.fragmentation or head.payloads:
        return (protect_message(head, inner, sa.protect_out),)
    first, plaintext = serialize_payloads(inner)  # once: sized here, then sealed whole or in fragments
    length = IKE_HEADER_LENGTH + 4 + sa.protect_out.sealed_length(len(plaintext))
    max_message = sa.profile.connection.ike.fragment_size - datagram_overhead(sa)
    if length <= max_message:
        return (protect_serialized(head, first, plaintext, sa.protect_out),)
    size = _chunk_size(sa, max_message)
    if size <= 0:
        raise ValueError(f"fragment_size {sa.profile.connection.ike.fragment_size} leaves no room for data")
    total = -(-len(plaintext) // size)
    if total > MAX_FRAGMENTS:
        # More than the peer reassembles (§2.6): larger fragments instead (fragment_size is a SHOULD, §2.5.1;
        # the IP layer fragments them), so a large answer a peer provoked is still sent, never raised on.
        size = -(-len(plaintext) // MAX_FRAGMENTS)
        total = -(-len(plaintext) // size)
    fragments = tuple(
        protect_fragment(head, first, i + 1, total, plaintext[i * size : (i + 1) * size], sa.protect_out)
        for i in range(total)
    )
    core.emit(ev.MessageFragmented(**sa.ids(), exchange=head.exchange_type.name, message_id=head.message_id,
                                   fragments=total, response=head.is_response, length=length))
    return fragments


def is_fragment(msg: Message) -> bool:
    """True if *msg* ends in an SKF payload (RFC 7383 §2.5)."""
    return bool(msg.payloads) and type(msg.payloads[-1]) is SkfPayload


@dataclass(slots=True, eq=False)
class _FragmentSet:
    """The fragments of one message collected so far (RFC 7383 §2.6)."""

    message_id: int
    total: int
    started: float
    chunks: dict[int, bytes] = field(default_factory=dict)
    first_payload: int = 0


def _check_numbers(skf: SkfPayload) -> None:
    if skf.fragment_number < 1 or skf.fragment_number > skf.total_fragments:
        raise MalformedMessage(f"SKF fragment {skf.fragment_number} of {skf.total_fragments}")
    if skf.total_fragments > MAX_FRAGMENTS:
        raise MalformedMessage(f"SKF with {skf.total_fragments} fragments (limit {MAX_FRAGMENTS})")


def first_fragment_verifies(msg: Message, data: bytes, protector: object) -> bool:
    """RFC 7383 §2.6.1: a retransmitted request triggers the cached response only on fragment 1.

    True for a fragment 1 whose ICV verifies; False for any other fragment number (to be ignored);
    ``IntegrityCheckFailed`` / ``MalformedMessage`` propagate.
    """
    skf = msg.payloads[-1]
    assert type(skf) is SkfPayload
    _check_numbers(skf)
    if skf.fragment_number != 1:
        return False
    open_fragment(data, protector, outer=msg)  # type: ignore[arg-type]
    return True


def receive(core: CoreOutlet, sa: IkeSa, msg: Message, data: bytes, now: float, *,
            retransmit: bool = False) -> Message | None:
    """Take one SKF fragment on *sa* (RFC 7383 §2.6); return the reassembled message when complete.

    *msg* is the parsed outer message, already matched to *sa*'s window (a response to our request
    in flight, the peer's next request, or with *retransmit* its last one). With *retransmit*,
    fragment 1 with a good ICV returns *msg* itself (the caller resends its cached response) and
    other fragments raise ``FragmentIgnored`` (§2.6.1), as do duplicates. Returns None while fragments
    are missing. Raises ``MalformedMessage`` or ``IntegrityCheckFailed`` for a fragment to drop.
    """
    if not sa.fragmentation:
        raise MalformedMessage("SKF fragment on an IKE_SA without negotiated fragmentation")
    skf = msg.payloads[-1]
    assert type(skf) is SkfPayload
    if len(msg.payloads) != 1:
        raise MalformedMessage("SKF fragment with other payloads")
    if retransmit:
        if not first_fragment_verifies(msg, data, sa.protect_in):
            raise FragmentIgnored("non-first SKF fragment of a retransmitted request (RFC 7383 §2.6.1)")
        return msg
    _check_numbers(skf)
    key = msg.is_response
    if not isinstance(sa.reassembly, dict):
        sa.reassembly = {}  # it starts as the shared empty table (``ike.sa.NO_ENTRIES``)
    pending = sa.reassembly
    current = pending.get(key)
    if current is not None and (current.message_id != msg.message_id or now - current.started > REASSEMBLY_TIMEOUT):
        del pending[key]  # a newer message, or a set that will never complete
        current = None
    if current is not None:
        if skf.total_fragments < current.total:  # §2.6: fewer Total Fragments than seen: ignore
            raise FragmentIgnored(f"SKF fragment of {skf.total_fragments} after one of {current.total} (RFC 7383 §2.6)")
        if skf.fragment_number in current.chunks:
            raise FragmentIgnored(f"duplicate SKF fragment {skf.fragment_number} of {current.total} (RFC 7383 §2.6)")
    _skf, chunk = open_fragment(data, sa.protect_in, outer=msg)  # ICV checked before it is kept
    if current is None or skf.total_fragments > current.total:
        current = _FragmentSet(msg.message_id, skf.total_fragments, now)  # §2.6: more fragments: start anew
        pending[key] = current
    current.chunks[skf.fragment_number] = chunk
    if skf.fragment_number == 1:
        current.first_payload = skf.first_payload
    if len(current.chunks) < current.total:
        return None
    del pending[key]
    plaintext = b"".join(current.chunks[i] for i in range(1, current.total + 1))
    full = reassembled_message(msg, current.first_payload, plaintext)
    core.emit(ev.MessageReassembled(**sa.ids(), exchange=msg.exchange_type.name, message_id=msg.message_id,
                                    fragments=current.total, response=msg.is_response))
    return full
