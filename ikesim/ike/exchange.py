"""Exchanges in flight and queued work: request bytes, retransmit deadlines (RFC 7296 §2.1–§2.3).

An ``Exchange`` is one request this node sent and awaits the answer to. It
owns the exact request datagrams (all SKF fragments if fragmented), re-sent unchanged on every retransmission
(§2.1), and the schedule of waits. ``Work`` is a request waiting for the
window (size 1, §2.3) to open; the request is built only when it starts, so
nonces and KE values are drawn when the message is actually sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ikesim.wire.iana import ExchangeType

__all__ = ["Exchange", "Work", "PURPOSES"]

PURPOSES = (
    "ike_sa_init",
    "ike_auth",
    "create_child",
    "rekey_child",
    "rekey_ike",
    "delete_child",
    "delete_ike",
    "dpd",
    "informational",
    "mobike",
    "mid_sync",
    "resume",
    "ticket_request",
)
"""Values of ``ExchangeStarted.purpose``."""


@dataclass(frozen=True, slots=True)
class Work:
    """A request waiting for the window to open (RFC 7296 §2.3)."""

    purpose: str
    spi: bytes = b""
    """CHILD_SA spi_in concerned (rekey_child, delete_child)."""
    child: str = ""
    """Child configuration name (create_child)."""
    trigger: str = "command"
    """Why a rekey starts: ``command``, ``soft_lifetime`` or ``retry``."""
    reason: str = ""
    """Why a delete is sent: ``deleted_locally``, ``expired``, ``rekeyed``."""
    flags: str = ""
    """A MOBIKE request's parts, space-separated: ``check``, ``update``, ``address``, ``natd``, ``rr`` (``ike.mobike``)."""


@dataclass(slots=True, eq=False)
class Exchange:
    """One request of ours in flight (RFC 7296 §2.1): bytes, attempts and next deadline."""

    exchange_type: ExchangeType
    purpose: str
    message_id: int
    request: tuple[bytes, ...]
    """The request's datagrams: one message, or all its SKF fragments (RFC 7383 §2.5)."""
    timeouts: tuple[float, ...]
    """Waits after each transmission: retransmissions, then the give-up wait."""
    deadline: float
    attempts: int = 0
    """Retransmissions sent so far."""
    work: Work | None = None
    child: Any = None
    """CHILD_SA being rekeyed or deleted."""
    new_spi: bytes = b""
    """New CHILD spi_in or new IKE SPI proposed in this exchange."""
    nonce: bytes = b""
    ke: Any = None
    child_profile: Any = None
    local_ts: tuple[Any, ...] = ()
    remote_ts: tuple[Any, ...] = ()
    fire_and_forget: bool = False
    """A notification whose answer nobody waits for (AUTHENTICATION_FAILED, RFC 7296 §2.21.2)."""
    probing: bool = False
    """A MOBIKE path test: sent on every path every 2.5 s (RFC 4555 §3.6, ``ike.mobike``)."""
    cookie2: bytes = b""
    """The COOKIE2 this MOBIKE request carries; the answer must echo it (RFC 4555 §3.5)."""
    inner: tuple[Any, ...] = ()
    """The request's inner payloads (``IkeCore.request``): sealed again under a new message ID when an RFC 6311
    synchronization moves our window while it is in flight (``ike.ha_sync``)."""
    flags: str = ""
    """The MOBIKE request's parts (``Work.flags``)."""
    dest: Any = None
    """(src, dst) a MOBIKE request was first sent with."""
    ke_retries: int = 0
    """How many times this CREATE_CHILD_SA was sent again with the KE group an INVALID_KE_PAYLOAD asked for: a CHILD_SA
    once (strongSwan ``child_create.c``), an IKE rekey up to 5 times (``ike_init.c`` MAX_RETRIES) (RFC 7296 §1.3;
    ``ike.ke_choice``)."""

    @property
    def exchange_name(self) -> str:
        """IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA or INFORMATIONAL."""
        return self.exchange_type.name

    def retransmit_due(self) -> bool:
        """True when the deadline means another retransmission rather than giving up (§2.1)."""
        return self.attempts < len(self.timeouts) - 1

    def advance(self) -> None:
        """Count one retransmission and move the deadline by the next wait (RFC 7296 §2.1)."""
        self.attempts += 1
        self.deadline += self.timeouts[self.attempts]
