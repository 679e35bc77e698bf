"""EAP packets carried in the IKEv2 EAP payload (RFC 3748 §4; RFC 7296 §3.16).

``EapMessage`` is one EAP packet: Code, Identifier, and for a Request or Response the Type and Type-Data.
``parse_eap`` checks what strongSwan's ``eap_payload.c`` ``verify`` does (the Length field equals the payload,
Success/Failure carry no data, no other Code) and that a Request/Response has its Type octet (RFC 3748 §4.1);
anything else is ``MalformedMessage``, never another exception.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from ikesim.errors import MalformedMessage

__all__ = ["EapCode", "EapType", "EapMessage", "parse_eap", "verify_eap"]


class EapCode(enum.IntEnum):
    """RFC 3748 §4: EAP Codes."""

    REQUEST = 1
    RESPONSE = 2
    SUCCESS = 3
    FAILURE = 4


class EapType(enum.IntEnum):
    """RFC 3748 §5 and the IANA EAP method types ikesim knows."""

    IDENTITY = 1
    NOTIFICATION = 2
    NAK = 3
    MD5 = 4
    TLS = 13
    MSCHAPV2 = 26


@dataclass(frozen=True, slots=True)
class EapMessage:
    """One EAP packet (RFC 3748 §4): Type and Type-Data only for a Request or Response."""

    code: int
    identifier: int
    type: int = 0
    data: bytes = b""

    def to_bytes(self) -> bytes:
        """RFC 3748 §4.1, §4.2: Code | Identifier | Length | [Type | Type-Data]."""
        if self.code in (EapCode.SUCCESS, EapCode.FAILURE):
            return struct.pack("!BBH", self.code, self.identifier, 4)
        return struct.pack("!BBHB", self.code, self.identifier, 5 + len(self.data), self.type) + self.data

    @property
    def is_request(self) -> bool:
        """Code 1 (RFC 3748 §4.1)."""
        return self.code == EapCode.REQUEST


def parse_eap(data: bytes) -> EapMessage:
    """RFC 3748 §4: one EAP packet from an EAP payload's body; ``MalformedMessage`` if it is not one."""
    if len(data) < 4:
        raise MalformedMessage(f"EAP message of {len(data)} bytes (RFC 3748 §4: at least 4)")
    code, identifier, length = struct.unpack_from("!BBH", data)
    if length != len(data):
        raise MalformedMessage(f"EAP Length {length} but the payload holds {len(data)} bytes")
    if code in (EapCode.SUCCESS, EapCode.FAILURE):
        if length != 4:
            raise MalformedMessage("EAP Success/Failure with data (RFC 3748 §4.2)")
        return EapMessage(code, identifier)
    if code not in (EapCode.REQUEST, EapCode.RESPONSE):
        raise MalformedMessage(f"EAP Code {code} (RFC 3748 §4)")
    if length < 5:
        raise MalformedMessage("EAP Request/Response without a Type (RFC 3748 §4.1)")
    return EapMessage(code, identifier, data[4], bytes(data[5:]))


def verify_eap(data: bytes) -> None:
    """strongSwan ``eap_payload.c`` verify, for ``wire.verify``: raise ``MalformedMessage`` if not an EAP packet."""
    parse_eap(data)
