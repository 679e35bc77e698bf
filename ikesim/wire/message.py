"""The IKEv2 message: header plus payload chain (RFC 7296 §3.1, §3.2).

CONTRACT (implemented in ``ikesim.wire.codec``):

- ``parse_message(data: bytes) -> Message``: parses header and the outer
  payload chain. An SK payload stays encrypted (``SkPayload``). Raises only
  ``MalformedMessage``.
- ``serialize_message(msg: Message) -> bytes``: the inverse;
  ``serialize_message(parse_message(b)) == b`` for every well-formed ``b``.
- ``parse_payloads(first_type: int, data: bytes) -> tuple[Payload, ...]``:
  parse a bare payload chain (used for the decrypted SK contents).
- ``serialize_payloads(payloads) -> tuple[int, bytes]``: returns the type of
  the first payload and the chained bytes (Next Payload fields filled in).
- ``protect_message(msg, inner, protector) -> bytes``: build an encrypted
  message: ``msg.payloads`` are the unencrypted payloads that precede SK
  (normally none), ``inner`` the payloads to put inside SK.
- ``unprotect_message(data: bytes, protector) -> Message``: parse, check the
  SK payload is last, decrypt it and return a ``Message`` whose ``payloads``
  are the outer payloads before SK followed by the decrypted inner ones, with
  ``encrypted=True``. Raises ``MalformedMessage`` or ``IntegrityCheckFailed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from ikesim.wire.iana import ExchangeType, HeaderFlag
from ikesim.wire.payloads import Payload

__all__ = ["Message", "Protector", "IKE_HEADER_LENGTH"]

IKE_HEADER_LENGTH = 28
"""RFC 7296 §3.1: the fixed IKE header is 28 octets."""

P = TypeVar("P", bound=Payload)
# Flag tests on plain ints: ``IntFlag & IntFlag`` builds an enum member through ``Enum.__call__`` (slow per message).
_RESPONSE = int(HeaderFlag.RESPONSE)
_INITIATOR = int(HeaderFlag.INITIATOR)


class Protector(Protocol):
    """One direction of SK payload protection (implemented by ``ikesim.crypto.sk``).

    ``aad`` is every byte of the message before the SK payload's IV: the IKE
    header, any unencrypted payloads, and the SK generic payload header
    (RFC 5282 §5.1; for encrypt-then-MAC the ICV covers aad || IV ||
    ciphertext, RFC 7296 §3.14).
    """

    def sealed_length(self, plaintext_length: int) -> int:
        """Length of IV || ciphertext (with padding and Pad Length) || ICV for a plaintext."""
        ...

    def seal(self, aad: bytes, plaintext: bytes) -> bytes:
        """Pad, encrypt and authenticate *plaintext*; return IV || ciphertext || ICV."""
        ...

    def open(self, aad: bytes, body: bytes) -> bytes:
        """Verify and decrypt an SK body; return the plaintext with padding removed."""
        ...


@dataclass(slots=True, unsafe_hash=True)
class Message:
    """An IKEv2 message (RFC 7296 §3.1): header fields plus payloads.

    A value, never mutated; not ``frozen`` only because that makes it slower to build (see ``payloads``).
    """

    spi_i: bytes
    spi_r: bytes
    exchange_type: ExchangeType
    flags: HeaderFlag
    message_id: int
    payloads: tuple[Payload, ...] = ()
    major_version: int = 2
    minor_version: int = 0
    encrypted: bool = False
    """True when ``payloads`` came out of (or are meant for) an SK payload."""

    @property
    def is_response(self) -> bool:
        """RFC 7296 §3.1: the R flag."""
        return bool(int(self.flags) & _RESPONSE)

    @property
    def is_request(self) -> bool:
        """Not a response."""
        return not int(self.flags) & _RESPONSE

    @property
    def from_original_initiator(self) -> bool:
        """RFC 7296 §3.1: the I flag, set by the original initiator of the IKE_SA."""
        return bool(int(self.flags) & _INITIATOR)

    def get(self, kind: type[P]) -> P | None:
        """Return the first payload of class *kind*, or None."""
        for p in self.payloads:
            if type(p) is kind:
                return p
        return None

    def get_all(self, kind: type[P]) -> list[P]:
        """Return every payload of class *kind*, in order."""
        return [p for p in self.payloads if type(p) is kind]
