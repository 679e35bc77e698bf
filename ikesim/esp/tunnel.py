"""The inner packet of tunnel mode (RFC 4303 §3.1.2): a minimal IPv4 + UDP packet, built and read cheaply.

Traffic generators build one per simulated packet, so the constant parts (addresses and
their share of the header checksum, the UDP header and zero payload of each size) are
computed once and cached; a packet is then one ``struct.pack`` and a concatenation.
"""

from __future__ import annotations

import ipaddress
import struct
from functools import lru_cache

__all__ = ["inner_ipv4", "parse_inner", "INNER_MIN", "DISCARD_PORT"]

INNER_MIN = 28
"""The smallest inner packet: IPv4 header (20) + UDP header (8), no payload."""
DISCARD_PORT = 9
"""UDP port of the Discard service (RFC 863): source and destination of every inner packet."""

_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")
_TTL = 64
_UDP_PROTO = 17


@lru_cache(maxsize=4096)
def _addresses(src: str, dst: str, proto: int) -> tuple[bytes, bytes, int]:
    """Packed addresses and the header checksum's constant share (RFC 791 §3.1; RFC 1071 one's complement sum)."""
    s, d = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
    words = struct.unpack("!4H", s + d)
    return s, d, 0x4500 + ((_TTL << 8) | proto) + sum(words)


@lru_cache(maxsize=4096)
def _after_header(size: int, proto: int) -> bytes:
    """What follows the IPv4 header: a UDP header (9 -> 9, checksum 0: none, RFC 768) and zeros; or only zeros."""
    if proto == _UDP_PROTO:
        return _UDP.pack(DISCARD_PORT, DISCARD_PORT, size - 20, 0) + bytes(size - INNER_MIN)
    return bytes(size - 20)


def inner_ipv4(src: str, dst: str, size: int, ident: int = 0, proto: int = _UDP_PROTO) -> bytes:
    """RFC 4303 §3.1.2 / RFC 791: an IPv4 packet of total length *size* (28 .. 65535) from *src* to *dst*.

    TTL 64, no options, no fragmentation flags, a correct header checksum; *ident* is the
    Identification field (taken modulo 2^16). With *proto* 17 (UDP) the payload is a UDP
    datagram between Discard ports with no checksum and zero bytes; otherwise zero bytes.
    """
    if not INNER_MIN <= size <= 0xFFFF:
        raise ValueError(f"inner packet size must be {INNER_MIN} .. 65535, not {size}")
    s, d, partial = _addresses(src, dst, proto)
    ident &= 0xFFFF
    total = partial + size + ident
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    header = _IPV4.pack(0x45, 0, size, ident, 0, _TTL, proto, ~total & 0xFFFF, s, d)
    return header + _after_header(size, proto)


def parse_inner(data: bytes) -> tuple[str, str, int] | None:
    """RFC 791 §3.1: (source, destination, total length) of the IPv4 packet *data*, or None if its header is invalid.

    Valid means: version 4, IHL >= 5, the header and the total length within *data*, and
    a header checksum that verifies (RFC 1071).
    """
    if len(data) < 20 or data[0] >> 4 != 4:
        return None
    ihl = (data[0] & 0x0F) * 4
    total = (data[2] << 8) | data[3]
    if ihl < 20 or total < ihl or total > len(data):
        return None
    csum = sum(struct.unpack_from(f"!{ihl // 2}H", data))
    csum = (csum & 0xFFFF) + (csum >> 16)
    csum = (csum & 0xFFFF) + (csum >> 16)
    if csum != 0xFFFF:
        return None
    return f"{data[12]}.{data[13]}.{data[14]}.{data[15]}", f"{data[16]}.{data[17]}.{data[18]}.{data[19]}", total
