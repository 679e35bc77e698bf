"""The base of every IKE core event (``ikesim.ike.events``): the IKE_SA it concerns, and ``SaKind``."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["SaKind", "IkeEvent"]


class SaKind(enum.Enum):
    """Which kind of SA an event is about."""

    IKE = "ike"
    CHILD = "child"


@dataclass(slots=True, kw_only=True)
class IkeEvent:
    """Base class of every core event."""

    spi_i: bytes
    """Initiator SPI of the IKE_SA concerned (RFC 7296 §3.1)."""
    spi_r: bytes
    """Responder SPI of the IKE_SA concerned (zeros before IKE_SA_INIT completes)."""
    connection: str
    """Name of the configured connection."""
