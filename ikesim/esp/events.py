"""What the ESP data plane tells its IKE daemon (``EspDataPlane.next_event()``).

They play the role of the Linux kernel's XFRM notifications to strongSwan:
``EspLimitReached`` is XFRM_MSG_EXPIRE (soft or hard) and ``EspPeerMoved`` is
XFRM_MSG_MAPPING. Frozen, slotted values with no timestamp: the driver stamps them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ikesim.types import Address

__all__ = ["EspEvent", "EspLimitReached", "EspPeerMoved", "COUNTERS"]

COUNTERS = ("bytes", "packets", "seq")
"""The counters a limit can be on: inner bytes, packets, and the outbound sequence number (RFC 4303 §3.3.3)."""


@dataclass(frozen=True, slots=True)
class EspEvent:
    """Base class of the ESP data plane's events."""


@dataclass(frozen=True, slots=True)
class EspLimitReached(EspEvent):
    """RFC 4301 §4.4.2.1: an SA reached its soft (rekey now) or hard (expired) limit on *counter*."""

    spi: bytes
    """The SA's SPI (4 bytes): our own for an inbound SA, the peer's for an outbound one."""
    inbound: bool
    hard: bool
    """False: the soft limit (the SA still works, rekey it); True: the hard limit."""
    counter: str
    """``bytes``, ``packets`` or ``seq`` (the sequence number nears or reached its last value)."""


@dataclass(frozen=True, slots=True)
class EspPeerMoved(EspEvent):
    """RFC 3948 / RFC 7296 §2.23: UDP-encapsulated ESP that passed the ICV arrived from a new source address."""

    spi: bytes
    """The inbound SA's SPI."""
    old: Address
    new: Address
