"""IKEv2 payloads as value dataclasses (RFC 7296 §3.3–§3.16; RFC 7383 §2.5).

These are plain values: construction does no I/O and no crypto. The codec
(``ikesim.wire.codec``) turns them into bytes and back. Every payload has a
``critical`` flag (RFC 7296 §3.2) that is preserved on round trip; builders
leave it False as real implementations do.

They compare and hash by value (selectors are dict keys, proposals cache
keys) and are never mutated: change one with ``dataclasses.replace``. They
are not declared ``frozen``: a frozen dataclass sets every field through
``object.__setattr__``, which made building and parsing each message's
payloads about three times slower (issue 12); ``unsafe_hash`` keeps the
value hash that ``frozen`` gave.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import ClassVar

from ikesim.wire.iana import (
    AuthMethod,
    CertEncoding,
    CfgType,
    IdType,
    NotifyType,
    PayloadType,
    ProtocolId,
    TransformAttr,
    TransformType,
    TsType,
)

__all__ = [
    "Payload",
    "TransformAttribute",
    "Transform",
    "Proposal",
    "SaPayload",
    "KePayload",
    "IdPayload",
    "IdiPayload",
    "IdrPayload",
    "CertPayload",
    "CertReqPayload",
    "AuthPayload",
    "NoncePayload",
    "NotifyPayload",
    "DeletePayload",
    "VendorPayload",
    "TrafficSelector",
    "TsPayload",
    "TsiPayload",
    "TsrPayload",
    "SkPayload",
    "SkfPayload",
    "CpAttribute",
    "CpPayload",
    "EapPayload",
    "UnknownPayload",
]


@dataclass(slots=True, unsafe_hash=True)
class Payload:
    """Base of every payload; ``payload_type`` is the RFC 7296 §3.2 Next Payload value."""

    payload_type: ClassVar[int] = PayloadType.NONE


@dataclass(slots=True, unsafe_hash=True)
class TransformAttribute:
    """RFC 7296 §3.3.5 transform attribute: TV form when ``value`` is an int, TLV when bytes."""

    attr_type: int
    value: int | bytes


@dataclass(slots=True, unsafe_hash=True)
class Transform:
    """RFC 7296 §3.3.2 Transform substructure."""

    transform_type: TransformType
    transform_id: int
    attributes: tuple[TransformAttribute, ...] = ()

    @classmethod
    def make(cls, transform_type: int, transform_id: int, key_length: int | None = None) -> Transform:
        """Build a transform, adding the Key Length attribute (RFC 7296 §3.3.5) when given."""
        attrs = () if key_length is None else (TransformAttribute(TransformAttr.KEY_LENGTH, key_length),)
        return cls(TransformType(transform_type), int(transform_id), attrs)

    @property
    def key_length(self) -> int | None:
        """The Key Length attribute in bits, or None."""
        for a in self.attributes:
            if a.attr_type == TransformAttr.KEY_LENGTH and isinstance(a.value, int):
                return a.value
        return None


@dataclass(slots=True, unsafe_hash=True)
class Proposal:
    """RFC 7296 §3.3.1 Proposal substructure; ``spi`` is empty for IKE_SA_INIT."""

    number: int
    protocol: ProtocolId
    spi: bytes
    transforms: tuple[Transform, ...]


@dataclass(slots=True, unsafe_hash=True)
class SaPayload(Payload):
    """RFC 7296 §3.3 Security Association payload."""

    payload_type: ClassVar[int] = PayloadType.SA
    proposals: tuple[Proposal, ...] = ()
    critical: bool = False


@dataclass(slots=True, unsafe_hash=True)
class KePayload(Payload):
    """RFC 7296 §3.4 Key Exchange payload."""

    payload_type: ClassVar[int] = PayloadType.KE
    group: int = 0
    data: bytes = b""
    critical: bool = False


@dataclass(slots=True, unsafe_hash=True)
class IdPayload(Payload):
    """RFC 7296 §3.5 Identification payload body (shared by IDi and IDr)."""

    id_type: IdType = IdType.ID_FQDN
    data: bytes = b""
    critical: bool = False

    def body(self) -> bytes:
        """The payload body after the generic header: RFC 7296 §2.15 IDx' (type, 3 reserved, data)."""
        return bytes([int(self.id_type), 0, 0, 0]) + self.data


@dataclass(slots=True, unsafe_hash=True)
class IdiPayload(IdPayload):
    """RFC 7296 §3.5 IDi."""

    payload_type: ClassVar[int] = PayloadType.IDi


@dataclass(slots=True, unsafe_hash=True)
class IdrPayload(IdPayload):
    """RFC 7296 §3.5 IDr."""

    payload_type: ClassVar[int] = PayloadType.IDr


@dataclass(slots=True, unsafe_hash=True)
class CertPayload(Payload):
    """RFC 7296 §3.6 Certificate payload."""

    payload_type: ClassVar[int] = PayloadType.CERT
    encoding: CertEncoding = CertEncoding.X509_CERTIFICATE_SIGNATURE
    data: bytes = b""
    critical: bool = False


@dataclass(slots=True, unsafe_hash=True)
class CertReqPayload(Payload):
    """RFC 7296 §3.7 Certificate Request payload (data: concatenated SHA-1 hashes of CA keys)."""

    payload_type: ClassVar[int] = PayloadType.CERTREQ
    encoding: CertEncoding = CertEncoding.X509_CERTIFICATE_SIGNATURE
    data: bytes = b""
    critical: bool = False


@dataclass(slots=True, unsafe_hash=True)
class AuthPayload(Payload):
    """RFC 7296 §3.8 Authentication payload."""

    payload_type: ClassVar[int] = PayloadType.AUTH
    method: AuthMethod = AuthMethod.SHARED_KEY_MIC
    data: bytes = b""
    critical: bool = False


@dataclass(slots=True, unsafe_hash=True)
class NoncePayload(Payload):
    """RFC 7296 §3.9 Nonce payload (16..256 bytes)."""

    payload_type: ClassVar[int] = PayloadType.NONCE
    data: bytes = b""
    critical: bool = False


@dataclass(slots=True, unsafe_hash=True)
class NotifyPayload(Payload):
    """RFC 7296 §3.10 Notify payload."""

    payload_type: ClassVar[int] = PayloadType.NOTIFY
    notify_type: NotifyType = NotifyType.INITIAL_CONTACT
    protocol: ProtocolId = ProtocolId.NONE
    spi: bytes = b""
    data: bytes = b""
    critical: bool = False


@dataclass(slots=True, unsafe_hash=True)
class DeletePayload(Payload):
    """RFC 7296 §3.11 Delete payload; for IKE, ``spi_size`` is 0 and ``spis`` empty."""

    payload_type: ClassVar[int] = PayloadType.DELETE
    protocol: ProtocolId = ProtocolId.ESP
    spi_size: int = 4
    spis: tuple[bytes, ...] = ()
    critical: bool = False


@dataclass(slots=True, unsafe_hash=True)
class VendorPayload(Payload):
    """RFC 7296 §3.12 Vendor ID payload."""

    payload_type: ClassVar[int] = PayloadType.VENDOR
    data: bytes = b""
    critical: bool = False


@dataclass(slots=True, unsafe_hash=True)
class TrafficSelector:
    """RFC 7296 §3.13.1 Traffic Selector; addresses as packed bytes (4 or 16)."""

    ts_type: TsType
    ip_protocol: int
    start_port: int
    end_port: int
    start_address: bytes
    end_address: bytes

    @classmethod
    def from_range(
        cls, start: str, end: str, ip_protocol: int = 0, start_port: int = 0, end_port: int = 65535
    ) -> TrafficSelector:
        """Build a selector from textual addresses."""
        a, b = ipaddress.ip_address(start), ipaddress.ip_address(end)
        ts_type = TsType.TS_IPV4_ADDR_RANGE if a.version == 4 else TsType.TS_IPV6_ADDR_RANGE
        return cls(ts_type, ip_protocol, start_port, end_port, a.packed, b.packed)

    @classmethod
    def from_network(cls, cidr: str, ip_protocol: int = 0) -> TrafficSelector:
        """Build a selector covering a CIDR network, all ports."""
        net = ipaddress.ip_network(cidr, strict=False)
        return cls.from_range(str(net[0]), str(net[-1]), ip_protocol)

    @property
    def start(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """Start address as an ``ipaddress`` object."""
        return ipaddress.ip_address(self.start_address)

    @property
    def end(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """End address as an ``ipaddress`` object."""
        return ipaddress.ip_address(self.end_address)

    def __str__(self) -> str:
        proto = "" if self.ip_protocol == 0 else f"/{self.ip_protocol}"
        return f"{self.start}-{self.end}{proto}[{self.start_port}-{self.end_port}]"


@dataclass(slots=True, unsafe_hash=True)
class TsPayload(Payload):
    """RFC 7296 §3.13 Traffic Selector payload body (shared by TSi and TSr)."""

    selectors: tuple[TrafficSelector, ...] = ()
    critical: bool = False


@dataclass(slots=True, unsafe_hash=True)
class TsiPayload(TsPayload):
    """RFC 7296 §3.13 TSi."""

    payload_type: ClassVar[int] = PayloadType.TSi


@dataclass(slots=True, unsafe_hash=True)
class TsrPayload(TsPayload):
    """RFC 7296 §3.13 TSr."""

    payload_type: ClassVar[int] = PayloadType.TSr


@dataclass(slots=True, unsafe_hash=True)
class SkPayload(Payload):
    """RFC 7296 §3.14 Encrypted and Authenticated payload, still encrypted.

    ``first_payload`` is the Next Payload field (type of the first inner
    payload); ``data`` is IV || ciphertext || ICV exactly as on the wire.
    """

    payload_type: ClassVar[int] = PayloadType.SK
    first_payload: int = PayloadType.NONE
    data: bytes = b""
    critical: bool = False


@dataclass(slots=True, unsafe_hash=True)
class SkfPayload(Payload):
    """RFC 7383 §2.5 Encrypted Fragment payload, still encrypted."""

    payload_type: ClassVar[int] = PayloadType.SKF
    first_payload: int = PayloadType.NONE
    fragment_number: int = 1
    total_fragments: int = 1
    data: bytes = b""
    critical: bool = False


@dataclass(slots=True, unsafe_hash=True)
class CpAttribute:
    """RFC 7296 §3.15.1 Configuration attribute."""

    attr_type: int
    value: bytes = b""


@dataclass(slots=True, unsafe_hash=True)
class CpPayload(Payload):
    """RFC 7296 §3.15 Configuration payload."""

    payload_type: ClassVar[int] = PayloadType.CP
    cfg_type: CfgType = CfgType.CFG_REQUEST
    attributes: tuple[CpAttribute, ...] = ()
    critical: bool = False


@dataclass(slots=True, unsafe_hash=True)
class EapPayload(Payload):
    """RFC 7296 §3.16 EAP payload (the EAP message, opaque)."""

    payload_type: ClassVar[int] = PayloadType.EAP
    data: bytes = b""
    critical: bool = False


@dataclass(slots=True, unsafe_hash=True)
class UnknownPayload(Payload):
    """A payload of a type this codec does not know; kept raw (RFC 7296 §2.5)."""

    type_number: int = 0
    data: bytes = b""
    critical: bool = False

    @property
    def type_value(self) -> int:
        """The wire payload type number."""
        return self.type_number


_ = field  # keep import for subclasses that may need default factories
