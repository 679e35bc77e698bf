"""Events of IKEv2 session resumption (RFC 5723): tickets issued and refreshed, resumptions accepted and rejected.

Part of the event catalogue ``ikesim.ike.events`` (which re-exports them; same conventions): ``ike.resumption`` emits
them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ikesim.ike.event_base import IkeEvent

__all__ = ["TicketIssued", "TicketRejected", "IkeSaResumed"]


@dataclass(slots=True, kw_only=True)
class TicketIssued(IkeEvent):
    """A ticket in N(TICKET_LT_OPAQUE) (RFC 5723 §4.2): sent by the gateway (*by_us*) or kept by the client; in IKE_AUTH,
    or *refreshed* in an INFORMATIONAL before the old one expires (§4.1)."""

    by_us: bool
    refreshed: bool
    lifetime: float
    expires_at: float
    key_id: int
    """The gateway's ticket key (``ike.tickets``), -1 on the client (the ticket is opaque to it)."""


@dataclass(slots=True, kw_only=True)
class TicketRejected(IkeEvent):
    """A ticket not used: the gateway answered N(TICKET_NACK) to IKE_SESSION_RESUME (*by_us* at the gateway, with the
    reason; RFC 5723 §4.3.2), after which the client falls back to IKE_SA_INIT; or a TICKET_LT_OPAQUE the client could
    not read, or the gateway's N(TICKET_NACK) to a TICKET_REQUEST (§4.2)."""

    by_us: bool
    reason: str
    exchange: str


@dataclass(slots=True, kw_only=True)
class IkeSaResumed(IkeEvent):
    """IKE_SESSION_RESUME succeeded (RFC 5723 §5): the new IKE_SA's keys come from the ticket's SK_d (§5.1); IKE_AUTH
    follows. *old_spi_i*/*old_spi_r* are the SPIs of the IKE_SA the ticket was issued on."""

    initiator: bool
    old_spi_i: bytes
    old_spi_r: bytes
