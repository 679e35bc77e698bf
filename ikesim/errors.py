"""The ikesim error hierarchy (STYLE.md rule 10).

Two families, as in h11: ``LocalProtocolError`` when the caller asked for
something illegal, ``PeerError`` (carrying the notify type to send) when the
peer did. No ``PeerError`` ever leaves ``IkeDaemon.receive_datagram``: it
becomes an error notify plus an event, or a ``MessageDropped`` event.
"""

from __future__ import annotations

__all__ = [
    "IkesimError",
    "ConfigError",
    "WireError",
    "MalformedMessage",
    "FragmentIgnored",
    "MalformedInnerPayloads",
    "CryptoError",
    "IntegrityCheckFailed",
    "InvalidKeyExchangeData",
    "LocalProtocolError",
    "PeerError",
    "UnsupportedCriticalPayload",
    "InvalidSyntax",
    "NoProposalChosen",
    "InvalidKePayload",
    "AuthenticationFailed",
    "TsUnacceptable",
    "TemporaryFailure",
    "ChildSaNotFound",
    "InvalidIkeSpi",
]


class IkesimError(Exception):
    """Base class of every error ikesim raises on purpose."""


class ConfigError(IkesimError):
    """A scenario, policy or proposal string is invalid; the message names what and where."""


class TraceNotRecorded(IkesimError, LookupError):
    """A results table that the run's trace level did not record (``trace: exchanges`` has no events table)."""


class WireError(IkesimError):
    """Base class for codec errors."""


class MalformedMessage(WireError):
    """Bytes that are not a well-formed IKEv2 message (RFC 7296 §3)."""


class MalformedInnerPayloads(MalformedMessage):
    """The SK/SKF payload authenticated, but its decrypted payload chain is malformed: the peer's keys made it,
    so a request gets INVALID_SYNTAX (RFC 7296 §3.10.1; strongSwan answers a parse error so)."""


class FragmentIgnored(WireError):
    """An SKF fragment RFC 7383 §2.6 / §2.6.1 says to ignore (a duplicate, fewer Total Fragments than
    already seen, or a non-first fragment of a retransmitted request): recorded as a drop, never answered."""


class CryptoError(IkesimError):
    """Base class for cryptographic failures."""


class IntegrityCheckFailed(CryptoError):
    """The ICV of an SK payload (or ESP packet) did not verify (RFC 7296 §3.14)."""


class InvalidKeyExchangeData(CryptoError):
    """The peer's KE data is not a valid public value for the group (RFC 7296 §3.4)."""


class LocalProtocolError(IkesimError):
    """The caller asked the protocol core for something illegal in the current state."""


class PeerError(IkesimError):
    """The peer did something wrong; carries the notify type to answer with (RFC 7296 §3.10.1)."""

    notify_type: int = 0

    def __init__(self, message: str = "", *, notify_data: bytes = b"") -> None:
        super().__init__(message or type(self).__name__)
        self.notify_data = notify_data


class UnsupportedCriticalPayload(PeerError):
    """RFC 7296 §2.5: an unknown payload with the critical bit set."""

    notify_type = 1

    def __init__(self, payload_type: int) -> None:
        super().__init__(
            f"unsupported critical payload {payload_type}", notify_data=bytes([payload_type & 0xFF])
        )
        self.payload_type = payload_type


class InvalidIkeSpi(PeerError):
    """RFC 7296 §2.21.4: a message for an IKE SPI we do not know."""

    notify_type = 4


class InvalidSyntax(PeerError):
    """RFC 7296 §3.10.1: a message that is malformed after decryption."""

    notify_type = 7


class NoProposalChosen(PeerError):
    """RFC 7296 §3.10.1: none of the proposals is acceptable."""

    notify_type = 14


class InvalidKePayload(PeerError):
    """RFC 7296 §1.2/§3.10.1: the KE group is not the one we want; data names the group."""

    notify_type = 17

    def __init__(self, group: int) -> None:
        super().__init__(f"invalid KE payload, want group {group}", notify_data=group.to_bytes(2, "big"))
        self.group = group


class AuthenticationFailed(PeerError):
    """RFC 7296 §3.10.1: the AUTH payload did not verify."""

    notify_type = 24


class TsUnacceptable(PeerError):
    """RFC 7296 §3.10.1: no acceptable traffic selectors."""

    notify_type = 38


class TemporaryFailure(PeerError):
    """RFC 7296 §2.25: the SA is being rekeyed or deleted; try later."""

    notify_type = 43


class ChildSaNotFound(PeerError):
    """RFC 7296 §2.25: the CHILD_SA named in a rekey does not exist."""

    notify_type = 44

    def __init__(self, spi: bytes, protocol: int = 3) -> None:
        super().__init__(f"CHILD_SA {spi.hex()} not found")
        self.spi = spi
        self.protocol = protocol
