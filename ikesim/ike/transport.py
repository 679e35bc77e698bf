"""What NAT traversal and fragmentation share with the core: UDP framing and a narrow view of the core.

RFC 3948 §2.2/§2.3 framing constants (port 4500, the non-ESP marker, the NAT
keepalive) and ``CoreOutlet``, the two things ``ikesim.ike.natt`` and
``ikesim.ike.fragmentation`` ask of ``IkeCore`` (emit an event, queue a
message's datagrams). They depend on this module instead of on
``ikesim.ike.core``, so the core imports them without an import circle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from ikesim.types import NATT_PORT as _NATT_PORT
from ikesim.types import Address

if TYPE_CHECKING:
    from ikesim.ike.events import IkeEvent
    from ikesim.ike.sa import IkeSa

__all__ = ["NATT_PORT", "NON_ESP_MARKER", "KEEPALIVE", "CoreOutlet", "natt_address"]

NATT_PORT = _NATT_PORT
"""UDP port of NAT traversal (RFC 3948 §2)."""
NON_ESP_MARKER = bytes(4)
"""RFC 3948 §2.2: four zero octets before an IKE message on port 4500."""
KEEPALIVE = b"\xff"
"""RFC 3948 §2.3: a NAT keepalive is one octet 0xFF."""


def natt_address(ip: str, old: Address) -> Address:
    """*ip* with *old*'s port if it is *old*'s IP, else port 4500 (RFC 4555 §3.5; strongSwan ``apply_port``)."""
    return Address(ip, old.port if ip == old.ip else NATT_PORT)


class CoreOutlet(Protocol):
    """The part of ``IkeCore`` the NAT-T and fragmentation helpers use."""

    def emit(self, event: IkeEvent) -> None:
        """Queue an event for ``next_event()``."""

    def send_all(self, sa: IkeSa, datagrams: Sequence[bytes]) -> None:
        """Queue a message's datagrams from the SA's local address to its peer."""
