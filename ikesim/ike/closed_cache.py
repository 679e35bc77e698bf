"""Answers from removed IKE_SAs: a retransmitted last request still gets its cached response (RFC 7296 §2.1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikesim.errors import IntegrityCheckFailed, MalformedMessage, UnsupportedCriticalPayload
from ikesim.ike import events as ev
from ikesim.ike import fragmentation
from ikesim.types import Address, Datagram
from ikesim.wire.codec import unprotect_message

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore
    from ikesim.wire.message import Message

__all__ = ["answer_from_closed"]


def answer_from_closed(core: IkeCore, local_spi: bytes, msg: Message, data: bytes, src: Address, dst: Address,
                       now: float) -> bool:
    """RFC 7296 §2.1: a retransmitted last request to a just-removed IKE_SA gets the cached response (True if so)."""
    entry = core.closed.get(local_spi)
    if entry is None or entry[1] < now:
        return False
    sa = entry[0]
    if (msg.is_response or msg.message_id != sa.peer_message_id - 1
            or sa.peer_spi != (msg.spi_i if msg.from_original_initiator else msg.spi_r)):
        return False
    assert sa.protect_in is not None
    try:
        if fragmentation.is_fragment(msg):
            if not fragmentation.first_fragment_verifies(msg, data, sa.protect_in):
                core.emit(ev.MessageDropped(
                    spi_i=msg.spi_i, spi_r=msg.spi_r, connection="", src=src, dst=dst,
                    reason="non-first SKF fragment of a retransmitted request (RFC 7383 §2.6.1)",
                    exchange=msg.exchange_type.name, message_id=msg.message_id))
                return True  # only fragment 1 triggers the cached response
        else:
            unprotect_message(data, sa.protect_in, outer=msg)
    except (IntegrityCheckFailed, MalformedMessage, UnsupportedCriticalPayload):
        return False
    core.outbox.extend(Datagram(d, dst, src) for d in sa.last_response)  # to the retransmission's source
    return True
