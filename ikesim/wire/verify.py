"""Payload verification after parsing: values the codec can represent but RFC 7296 forbids.

Strategy: the codec (``ikesim.wire.codec``) only checks that a message can be
framed, so ``parse(serialize(m)) == m`` holds for every representable ``m``.
What a well-formed payload must also satisfy is checked here, once the message
is in hand, the way strongSwan's ``payload_t.verify()`` runs after parsing:
SPI sizes by protocol (§3.3.1, §3.11), the nonce length (§3.9) and traffic
selector ranges (§3.13.1). ``verify_payloads`` returns nothing or raises
``MalformedMessage`` naming the first offence; the IKE daemon answers a request
that fails it with INVALID_SYNTAX (RFC 7296 §3.10.1) and fails the exchange of a
response that does.
"""

from __future__ import annotations

from collections.abc import Iterable

from ikesim.errors import MalformedMessage
from ikesim.wire.eap import verify_eap
from ikesim.wire.iana import ProtocolId
from ikesim.wire.payloads import (
    DeletePayload,
    EapPayload,
    NoncePayload,
    Payload,
    SaPayload,
    TrafficSelector,
    TsiPayload,
    TsrPayload,
)

__all__ = ["MIN_NONCE", "MAX_NONCE", "OPAQUE_PORTS", "verify_payloads", "verify_selector"]

MIN_NONCE = 16
"""RFC 7296 §3.9: a nonce is at least 16 octets (strongSwan ``nonce_payload`` verify)."""
MAX_NONCE = 256
"""RFC 7296 §3.9: a nonce is at most 256 octets."""
OPAQUE_PORTS = (0xFFFF, 0)
"""RFC 7296 §3.13.1: Start Port 65535 and End Port 0 mean OPAQUE ports; any other start > end is invalid."""

_CHILD_PROTOCOLS = (ProtocolId.ESP, ProtocolId.AH)


def _verify_sa(p: SaPayload) -> None:
    """RFC 7296 §3.3.1: SPI Size is 4 for ESP and AH, 0 (IKE_SA_INIT) or 8 (rekey) for IKE."""
    for prop in p.proposals:
        size = len(prop.spi)
        if prop.protocol in _CHILD_PROTOCOLS and size != 4:
            raise MalformedMessage(f"{prop.protocol.name} proposal {prop.number} with a {size}-byte SPI")
        if prop.protocol == ProtocolId.IKE and size not in (0, 8):
            raise MalformedMessage(f"IKE proposal {prop.number} with a {size}-byte SPI")


def _verify_nonce(p: NoncePayload) -> None:
    """RFC 7296 §3.9: Nonce Data is 16 to 256 octets."""
    if not MIN_NONCE <= len(p.data) <= MAX_NONCE:
        raise MalformedMessage(f"nonce of {len(p.data)} bytes (RFC 7296 §3.9: {MIN_NONCE}..{MAX_NONCE})")


def _verify_delete(p: DeletePayload) -> None:
    """RFC 7296 §3.11: SPI Size 4 for ESP and AH, 0 for IKE; no other protocol."""
    if p.protocol in _CHILD_PROTOCOLS:
        if p.spi_size != 4:
            raise MalformedMessage(f"Delete for {p.protocol.name} with SPI size {p.spi_size}")
    elif p.protocol == ProtocolId.IKE:
        if p.spi_size != 0:
            raise MalformedMessage(f"Delete for IKE with SPI size {p.spi_size}")
    else:
        raise MalformedMessage(f"Delete for protocol {int(p.protocol)}")


def verify_selector(ts: TrafficSelector) -> None:
    """RFC 7296 §3.13.1: start port <= end port (or OPAQUE) and start address <= end address."""
    if ts.start_port > ts.end_port and (ts.start_port, ts.end_port) != OPAQUE_PORTS:
        raise MalformedMessage(f"traffic selector ports {ts.start_port}-{ts.end_port}")
    if ts.start_address > ts.end_address:  # same length (the parser checks it), so bytes order is address order
        raise MalformedMessage(f"traffic selector {ts.start}-{ts.end}: start after end")


def _verify_ts(p: TsiPayload | TsrPayload) -> None:
    for ts in p.selectors:
        verify_selector(ts)


_VERIFIERS = {
    SaPayload: _verify_sa,
    NoncePayload: _verify_nonce,
    DeletePayload: _verify_delete,
    TsiPayload: _verify_ts,
    TsrPayload: _verify_ts,
    EapPayload: lambda p: verify_eap(p.data),  # strongSwan eap_payload.c verify (RFC 3748 §4)
}


def verify_payloads(payloads: Iterable[Payload]) -> None:
    """Check every payload of a parsed (and decrypted) message; ``MalformedMessage`` on the first offence."""
    for p in payloads:
        check = _VERIFIERS.get(type(p))
        if check is not None:
            check(p)  # type: ignore[operator]
