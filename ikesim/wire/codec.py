"""IKEv2 message and payload codec (RFC 7296 §3; RFC 7383 §2.5).

Strategy: free functions over ``bytes`` with ``struct`` and slicing, one
parser and one serializer per payload type, dispatched through tables. Any
input either parses or raises ``MalformedMessage`` — never another error.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from ikesim.errors import MalformedMessage
from ikesim.wire.iana import (
    AuthMethod,
    CertEncoding,
    CfgType,
    ExchangeType,
    HeaderFlag,
    IdType,
    NotifyType,
    PayloadType,
    ProtocolId,
    TransformType,
    TsType,
)
from ikesim.wire.message import IKE_HEADER_LENGTH, Message, Protector
from ikesim.wire.payloads import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    CpAttribute,
    CpPayload,
    DeletePayload,
    EapPayload,
    IdiPayload,
    IdrPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    SkfPayload,
    SkPayload,
    TrafficSelector,
    Transform,
    TransformAttribute,
    TsiPayload,
    TsrPayload,
    UnknownPayload,
    VendorPayload,
)

__all__ = [
    "parse_message",
    "serialize_message",
    "parse_payloads",
    "serialize_payloads",
    "protect_message",
    "unprotect_message",
    "peek_header",
]

_HEADER = struct.Struct(">8s8sBBBBII")
_GENERIC = struct.Struct(">BBH")
_U16 = struct.Struct(">H")
_TS_ADDR_LEN = {TsType.TS_IPV4_ADDR_RANGE: 4, TsType.TS_IPV6_ADDR_RANGE: 16}


def _u16(data: bytes, off: int) -> int:
    return (data[off] << 8) | data[off + 1]


def _u32(data: bytes, off: int) -> int:
    return int.from_bytes(data[off : off + 4], "big")


def _need(data: bytes, n: int, what: str) -> None:
    if len(data) < n:
        raise MalformedMessage(f"{what}: {len(data)} bytes, need {n}")


# --- SA (RFC 7296 §3.3) -------------------------------------------------------


def _parse_transform(data: bytes) -> Transform:
    _need(data, 8, "transform")
    ttype, tid = data[4], _u16(data, 6)
    attrs: list[TransformAttribute] = []
    off = 8
    while off < len(data):
        _need(data, off + 4, "transform attribute")
        atype = _u16(data, off)
        if atype & 0x8000:  # TV (RFC 7296 §3.3.5)
            attrs.append(TransformAttribute(atype & 0x7FFF, _u16(data, off + 2)))
            off += 4
        else:
            alen = _u16(data, off + 2)
            _need(data, off + 4 + alen, "transform attribute value")
            attrs.append(TransformAttribute(atype, bytes(data[off + 4 : off + 4 + alen])))
            off += 4 + alen
    return Transform(TransformType(ttype), tid, tuple(attrs))


def _parse_proposal(data: bytes) -> Proposal:
    _need(data, 8, "proposal")
    number, protocol, spi_size, n_transforms = data[4], data[5], data[6], data[7]
    _need(data, 8 + spi_size, "proposal SPI")
    spi = bytes(data[8 : 8 + spi_size])
    off = 8 + spi_size
    transforms = []
    for i in range(n_transforms):
        _need(data, off + 8, "transform header")
        last, tlen = data[off], _u16(data, off + 2)
        if tlen < 8 or off + tlen > len(data):
            raise MalformedMessage(f"transform length {tlen} out of bounds")
        if last not in (0, 3) or (last == 0) != (i == n_transforms - 1):
            raise MalformedMessage("transform Last Substruc inconsistent with count")
        transforms.append(_parse_transform(data[off : off + tlen]))
        off += tlen
    if off != len(data):
        raise MalformedMessage("proposal length does not match its transforms")
    return Proposal(number, ProtocolId(protocol), spi, tuple(transforms))


def _parse_sa(body: bytes, critical: bool) -> SaPayload:
    proposals = []
    off = 0
    while off < len(body):
        _need(body, off + 8, "proposal header")
        last, plen = body[off], _u16(body, off + 2)
        if plen < 8 or off + plen > len(body):
            raise MalformedMessage(f"proposal length {plen} out of bounds")
        if last not in (0, 2):
            raise MalformedMessage("bad proposal Last Substruc")
        proposals.append(_parse_proposal(body[off : off + plen]))
        off += plen
        if last == 0 and off != len(body):
            raise MalformedMessage("data after last proposal")
        if last == 2 and off == len(body):
            raise MalformedMessage("missing proposal after Last Substruc 2")
    return SaPayload(proposals=tuple(proposals), critical=critical)


def _ser_transform(t: Transform, last: bool) -> bytes:
    attrs = bytearray()
    for a in t.attributes:
        if isinstance(a.value, int):
            attrs += struct.pack(">HH", 0x8000 | a.attr_type, a.value)
        else:
            attrs += struct.pack(">HH", a.attr_type, len(a.value)) + a.value
    return struct.pack(">BBHBBH", 0 if last else 3, 0, 8 + len(attrs), int(t.transform_type), 0, t.transform_id) + bytes(attrs)


def _ser_sa(p: SaPayload) -> bytes:
    out = bytearray()
    for i, prop in enumerate(p.proposals):
        tbytes = b"".join(
            _ser_transform(t, j == len(prop.transforms) - 1) for j, t in enumerate(prop.transforms)
        )
        last = i == len(p.proposals) - 1
        out += struct.pack(
            ">BBHBBBB", 0 if last else 2, 0, 8 + len(prop.spi) + len(tbytes),
            prop.number, int(prop.protocol), len(prop.spi), len(prop.transforms),
        )
        out += prop.spi + tbytes
    return bytes(out)


# --- simple payloads -----------------------------------------------------------


def _parse_ke(body: bytes, critical: bool) -> KePayload:
    _need(body, 4, "KE payload")
    return KePayload(group=_u16(body, 0), data=bytes(body[4:]), critical=critical)


def _parse_id(cls: type[IdiPayload] | type[IdrPayload]) -> Callable[[bytes, bool], Payload]:
    def parse(body: bytes, critical: bool) -> Payload:
        _need(body, 4, "ID payload")
        return cls(id_type=IdType(body[0]), data=bytes(body[4:]), critical=critical)

    return parse


def _parse_cert(body: bytes, critical: bool) -> CertPayload:
    _need(body, 1, "CERT payload")
    return CertPayload(encoding=CertEncoding(body[0]), data=bytes(body[1:]), critical=critical)


def _parse_certreq(body: bytes, critical: bool) -> CertReqPayload:
    _need(body, 1, "CERTREQ payload")
    return CertReqPayload(encoding=CertEncoding(body[0]), data=bytes(body[1:]), critical=critical)


def _parse_auth(body: bytes, critical: bool) -> AuthPayload:
    _need(body, 4, "AUTH payload")
    return AuthPayload(method=AuthMethod(body[0]), data=bytes(body[4:]), critical=critical)


def _parse_nonce(body: bytes, critical: bool) -> NoncePayload:
    return NoncePayload(data=bytes(body), critical=critical)


def _parse_notify(body: bytes, critical: bool) -> NotifyPayload:
    _need(body, 4, "Notify payload")
    spi_size = body[1]
    _need(body, 4 + spi_size, "Notify SPI")
    return NotifyPayload(
        notify_type=NotifyType(_u16(body, 2)),
        protocol=ProtocolId(body[0]),
        spi=bytes(body[4 : 4 + spi_size]),
        data=bytes(body[4 + spi_size :]),
        critical=critical,
    )


def _parse_delete(body: bytes, critical: bool) -> DeletePayload:
    _need(body, 4, "Delete payload")
    protocol, spi_size, n = body[0], body[1], _u16(body, 2)
    if len(body) != 4 + spi_size * n:
        raise MalformedMessage("Delete payload length does not match SPI count")
    spis = tuple(bytes(body[4 + i * spi_size : 4 + (i + 1) * spi_size]) for i in range(n))
    return DeletePayload(protocol=ProtocolId(protocol), spi_size=spi_size, spis=spis, critical=critical)


def _parse_vendor(body: bytes, critical: bool) -> VendorPayload:
    return VendorPayload(data=bytes(body), critical=critical)


def _parse_ts(cls: type[TsiPayload] | type[TsrPayload]) -> Callable[[bytes, bool], Payload]:
    def parse(body: bytes, critical: bool) -> Payload:
        _need(body, 4, "TS payload")
        count = body[0]
        off = 4
        selectors = []
        for _ in range(count):
            _need(body, off + 8, "traffic selector")
            ts_type, proto, slen = body[off], body[off + 1], _u16(body, off + 2)
            alen = _TS_ADDR_LEN.get(ts_type)  # type: ignore[call-overload]
            if alen is None:
                raise MalformedMessage(f"unknown TS type {ts_type}")
            if slen != 8 + 2 * alen or off + slen > len(body):
                raise MalformedMessage("bad traffic selector length")
            selectors.append(
                TrafficSelector(
                    TsType(ts_type), proto, _u16(body, off + 4), _u16(body, off + 6),
                    bytes(body[off + 8 : off + 8 + alen]), bytes(body[off + 8 + alen : off + slen]),
                )
            )
            off += slen
        if off != len(body):
            raise MalformedMessage("TS payload length does not match its selectors")
        return cls(selectors=tuple(selectors), critical=critical)

    return parse


def _ser_ts(p: TsiPayload | TsrPayload) -> bytes:
    out = bytearray(struct.pack(">B3x", len(p.selectors)))
    for s in p.selectors:
        out += struct.pack(
            ">BBHHH", int(s.ts_type), s.ip_protocol, 8 + len(s.start_address) + len(s.end_address),
            s.start_port, s.end_port,
        )
        out += s.start_address + s.end_address
    return bytes(out)


def _parse_sk(body: bytes, critical: bool) -> SkPayload:
    return SkPayload(data=bytes(body), critical=critical)


def _parse_skf(body: bytes, critical: bool) -> SkfPayload:
    _need(body, 4, "SKF payload")
    return SkfPayload(
        fragment_number=_u16(body, 0), total_fragments=_u16(body, 2), data=bytes(body[4:]),
        critical=critical,
    )


def _parse_cp(body: bytes, critical: bool) -> CpPayload:
    _need(body, 4, "CP payload")
    attrs = []
    off = 4
    while off < len(body):
        _need(body, off + 4, "CP attribute")
        atype, alen = _u16(body, off) & 0x7FFF, _u16(body, off + 2)
        _need(body, off + 4 + alen, "CP attribute value")
        attrs.append(CpAttribute(atype, bytes(body[off + 4 : off + 4 + alen])))
        off += 4 + alen
    return CpPayload(cfg_type=CfgType(body[0]), attributes=tuple(attrs), critical=critical)


def _parse_eap(body: bytes, critical: bool) -> EapPayload:
    return EapPayload(data=bytes(body), critical=critical)


_PARSERS: dict[int, Callable[[bytes, bool], Payload]] = {
    PayloadType.SA: _parse_sa,
    PayloadType.KE: _parse_ke,
    PayloadType.IDi: _parse_id(IdiPayload),
    PayloadType.IDr: _parse_id(IdrPayload),
    PayloadType.CERT: _parse_cert,
    PayloadType.CERTREQ: _parse_certreq,
    PayloadType.AUTH: _parse_auth,
    PayloadType.NONCE: _parse_nonce,
    PayloadType.NOTIFY: _parse_notify,
    PayloadType.DELETE: _parse_delete,
    PayloadType.VENDOR: _parse_vendor,
    PayloadType.TSi: _parse_ts(TsiPayload),
    PayloadType.TSr: _parse_ts(TsrPayload),
    PayloadType.SK: _parse_sk,
    PayloadType.CP: _parse_cp,
    PayloadType.EAP: _parse_eap,
    PayloadType.SKF: _parse_skf,
}


def _body(p: Payload) -> bytes:
    """Serialize a payload body (everything after the generic header)."""
    t = type(p)
    if t is SaPayload:
        return _ser_sa(p)  # type: ignore[arg-type]
    if t is KePayload:
        return struct.pack(">H2x", p.group) + p.data  # type: ignore[attr-defined]
    if t is IdiPayload or t is IdrPayload:
        return p.body()  # type: ignore[attr-defined]
    if t is CertPayload or t is CertReqPayload:
        return bytes([int(p.encoding)]) + p.data  # type: ignore[attr-defined]
    if t is AuthPayload:
        return bytes([int(p.method), 0, 0, 0]) + p.data  # type: ignore[attr-defined]
    if t is NoncePayload or t is VendorPayload or t is EapPayload or t is SkPayload:
        return p.data  # type: ignore[attr-defined]
    if t is NotifyPayload:
        n: NotifyPayload = p  # type: ignore[assignment]
        return struct.pack(">BBH", int(n.protocol), len(n.spi), int(n.notify_type)) + n.spi + n.data
    if t is DeletePayload:
        d: DeletePayload = p  # type: ignore[assignment]
        return struct.pack(">BBH", int(d.protocol), d.spi_size, len(d.spis)) + b"".join(d.spis)
    if t is TsiPayload or t is TsrPayload:
        return _ser_ts(p)  # type: ignore[arg-type]
    if t is SkfPayload:
        f: SkfPayload = p  # type: ignore[assignment]
        return struct.pack(">HH", f.fragment_number, f.total_fragments) + f.data
    if t is CpPayload:
        c: CpPayload = p  # type: ignore[assignment]
        return struct.pack(">B3x", int(c.cfg_type)) + b"".join(
            struct.pack(">HH", a.attr_type, len(a.value)) + a.value for a in c.attributes
        )
    if t is UnknownPayload:
        return p.data  # type: ignore[attr-defined]
    raise TypeError(f"cannot serialize {t.__name__}")


def _type_of(p: Payload) -> int:
    if type(p) is UnknownPayload:
        return p.type_number  # type: ignore[attr-defined]
    return int(p.payload_type)


# --- payload chains ------------------------------------------------------------


def _parse_chain(first_type: int, data: bytes, start: int) -> tuple[list[Payload], int]:
    """Parse a chain from ``data[start:]``; return payloads and the offset of an SK/SKF body."""
    payloads: list[Payload] = []
    ptype, off, end = first_type, start, len(data)
    while ptype != PayloadType.NONE:
        if off + 4 > end:
            raise MalformedMessage("truncated generic payload header")
        nxt, flags, plen = data[off], data[off + 1], _u16(data, off + 2)
        if plen < 4 or off + plen > end:
            raise MalformedMessage(f"payload length {plen} out of bounds")
        body = data[off + 4 : off + plen]
        critical = bool(flags & 0x80)
        parser = _PARSERS.get(ptype)
        if parser is None:
            payloads.append(UnknownPayload(type_number=ptype, data=bytes(body), critical=critical))
        else:
            payload = parser(body, critical)
            if ptype in (PayloadType.SK, PayloadType.SKF):
                # RFC 7296 §3.14: the SK payload is last; its Next Payload names the first inner one.
                if off + plen != end:
                    raise MalformedMessage("SK payload is not the last payload")
                payloads.append(_with_first(payload, nxt))
                return payloads, off + 4
            payloads.append(payload)
        ptype = nxt
        off += plen
    if off != end:
        raise MalformedMessage("trailing data after the last payload")
    return payloads, -1


def _with_first(p: Payload, first: int) -> Payload:
    if type(p) is SkPayload:
        return SkPayload(first_payload=first, data=p.data, critical=p.critical)  # type: ignore[attr-defined]
    return SkfPayload(
        first_payload=first, fragment_number=p.fragment_number,  # type: ignore[attr-defined]
        total_fragments=p.total_fragments, data=p.data, critical=p.critical,  # type: ignore[attr-defined]
    )


def parse_payloads(first_type: int, data: bytes) -> tuple[Payload, ...]:
    """RFC 7296 §3.2: parse a bare payload chain starting with type *first_type*."""
    payloads, _ = _parse_chain(first_type, data, 0)
    return tuple(payloads)


def serialize_payloads(payloads: Sequence[Payload]) -> tuple[int, bytes]:
    """RFC 7296 §3.2: chain payloads; return the first payload's type and the bytes."""
    if not payloads:
        return PayloadType.NONE, b""
    parts = []
    n = len(payloads)
    for i, p in enumerate(payloads):
        body = _body(p)
        if i + 1 < n:
            nxt = _type_of(payloads[i + 1])
        elif type(p) in (SkPayload, SkfPayload):
            nxt = p.first_payload  # type: ignore[attr-defined]
        else:
            nxt = PayloadType.NONE
        parts.append(_GENERIC.pack(nxt, 0x80 if p.critical else 0, 4 + len(body)))  # type: ignore[attr-defined]
        parts.append(body)
    return _type_of(payloads[0]), b"".join(parts)


# --- messages ----------------------------------------------------------------------


def peek_header(data: bytes) -> tuple[bytes, bytes, int, int, int]:
    """RFC 7296 §3.1: (spi_i, spi_r, exchange_type, flags, message_id) without parsing payloads."""
    if len(data) < IKE_HEADER_LENGTH:
        raise MalformedMessage(f"datagram of {len(data)} bytes is shorter than an IKE header")
    spi_i, spi_r, _np, _ver, xchg, flags, mid, _len = _HEADER.unpack_from(data)
    return spi_i, spi_r, xchg, flags, mid


def _parse_header(data: bytes) -> tuple[bytes, bytes, int, int, int, int, int]:
    if len(data) < IKE_HEADER_LENGTH:
        raise MalformedMessage(f"message of {len(data)} bytes is shorter than an IKE header")
    spi_i, spi_r, np, ver, xchg, flags, mid, length = _HEADER.unpack_from(data)
    if length != len(data):
        raise MalformedMessage(f"header length {length} != datagram length {len(data)}")
    return spi_i, spi_r, np, ver, xchg, flags, mid


def parse_message(data: bytes) -> Message:
    """RFC 7296 §3.1–§3.2: parse a message; an SK payload stays encrypted."""
    spi_i, spi_r, np, ver, xchg, flags, mid = _parse_header(data)
    payloads, _ = _parse_chain(np, data, IKE_HEADER_LENGTH)
    return Message(
        spi_i=spi_i, spi_r=spi_r, exchange_type=ExchangeType(xchg), flags=HeaderFlag(flags & 0x38),
        message_id=mid, payloads=tuple(payloads), major_version=ver >> 4, minor_version=ver & 0x0F,
    )


def _header(msg: Message, first: int, length: int) -> bytes:
    return _HEADER.pack(
        msg.spi_i, msg.spi_r, first, (msg.major_version << 4) | msg.minor_version,
        int(msg.exchange_type), int(msg.flags), msg.message_id, length,
    )


def serialize_message(msg: Message) -> bytes:
    """RFC 7296 §3.1: serialize a message (SK payloads written as carried)."""
    first, body = serialize_payloads(msg.payloads)
    return _header(msg, first, IKE_HEADER_LENGTH + len(body)) + body


def protect_message(msg: Message, inner: Sequence[Payload], protector: Protector) -> bytes:
    """RFC 7296 §3.14: build a message whose *inner* payloads travel in an SK payload."""
    inner_first, plaintext = serialize_payloads(inner)
    sealed_len = protector.sealed_length(len(plaintext))
    outer_first, outer = serialize_payloads(msg.payloads)
    total = IKE_HEADER_LENGTH + len(outer) + 4 + sealed_len
    if outer:
        # Patch the last outer payload's Next Payload to SK.
        outer = _relink_last(msg.payloads, outer)
        first = outer_first
    else:
        first = PayloadType.SK
    aad = _header(msg, first, total) + outer + _GENERIC.pack(inner_first, 0, 4 + sealed_len)
    return aad + protector.seal(aad, plaintext)


def _relink_last(payloads: Sequence[Payload], chained: bytes) -> bytes:
    off = 0
    for _ in payloads[:-1]:
        off += _u16(chained, off + 2)
    return chained[:off] + bytes([PayloadType.SK]) + chained[off + 1 :]


def unprotect_message(data: bytes, protector: Protector) -> Message:
    """RFC 7296 §3.14: parse, verify and decrypt the SK payload; return outer + inner payloads."""
    msg = parse_message(data)
    if not msg.payloads or type(msg.payloads[-1]) is not SkPayload:
        raise MalformedMessage("no SK payload")
    sk: SkPayload = msg.payloads[-1]  # type: ignore[assignment]
    aad = data[: len(data) - len(sk.data)]
    plaintext = protector.open(aad, sk.data)
    inner = parse_payloads(sk.first_payload, plaintext)
    return Message(
        spi_i=msg.spi_i, spi_r=msg.spi_r, exchange_type=msg.exchange_type, flags=msg.flags,
        message_id=msg.message_id, payloads=msg.payloads[:-1] + inner,
        major_version=msg.major_version, minor_version=msg.minor_version, encrypted=True,
    )
