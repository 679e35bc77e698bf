"""Readers for the strongSwan ground-truth vectors in tests/vectors/strongswan (see tests/vectors/README.md).

Import as ``from vectors import ...`` (``tests/conftest.py`` puts this folder
on ``sys.path``). The pcap reader is deliberately small: classic libpcap files
(both byte orders, micro- or nanosecond stamps), link types Ethernet (with
802.1Q tags), BSD loopback, Linux cooked v1/v2 and raw IPv4/IPv6; it keeps
unfragmented UDP datagrams and undoes RFC 3948 framing on the NAT-T ports.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import pytest

VECTORS_DIR = Path(__file__).resolve().parent / "vectors" / "strongswan"
"""Ground truth from two strongSwan 5.9.8 daemons, shipped in the repository (``tests/vectors/README.md``)."""

NATT_PORTS = frozenset({4500, 14500})
"""UDP ports whose datagrams carry RFC 3948 framing in the captures (the initiator used 14500)."""

NON_ESP_MARKER = bytes(4)
"""RFC 3948 §2.2: four zero octets in front of an IKE message on a NAT-T port."""

_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_LINKTYPE_NULL, _LINKTYPE_ETHERNET, _LINKTYPE_RAW, _LINKTYPE_LINUX_SLL = 0, 1, 101, 113
_LINKTYPE_LINUX_SLL2, _LINKTYPE_IPV4, _LINKTYPE_IPV6 = 276, 228, 229
_ETHERTYPE_IPV4, _ETHERTYPE_IPV6, _ETHERTYPE_VLAN = 0x0800, 0x86DD, 0x8100
_UDP = 17


def require_vectors() -> Path:
    """The vectors directory; a missing vector fails the test (they ship with the repository, never skip)."""
    if not (VECTORS_DIR / "ike_gcm_cbc_rekey.pcap").exists():
        pytest.fail(f"strongSwan vectors missing from {VECTORS_DIR} (they are part of the repository)")
    return VECTORS_DIR


@dataclass(frozen=True)
class PcapPacket:
    """One UDP datagram from a capture; on a NAT-T port the non-ESP marker is stripped and ESP flagged."""

    ts: float
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    payload: bytes
    is_esp: bool
    is_keepalive: bool = False
    """RFC 3948 §2.3: a one-octet 0xFF NAT-keepalive."""


def _ip_packet(linktype: int, frame: bytes) -> bytes | None:
    """The IP packet inside a link-layer frame, or None for anything else."""
    if linktype == _LINKTYPE_ETHERNET:
        off, ethertype = 14, int.from_bytes(frame[12:14], "big")
        while ethertype == _ETHERTYPE_VLAN and len(frame) >= off + 4:
            ethertype, off = int.from_bytes(frame[off + 2 : off + 4], "big"), off + 4
        return frame[off:] if ethertype in (_ETHERTYPE_IPV4, _ETHERTYPE_IPV6) else None
    if linktype == _LINKTYPE_NULL:  # BSD loopback: address family in the capturing host's byte order
        return frame[4:] if len(frame) >= 4 else None
    if linktype == _LINKTYPE_LINUX_SLL:
        return frame[16:] if int.from_bytes(frame[14:16], "big") in (_ETHERTYPE_IPV4, _ETHERTYPE_IPV6) else None
    if linktype == _LINKTYPE_LINUX_SLL2:
        return frame[20:] if int.from_bytes(frame[0:2], "big") in (_ETHERTYPE_IPV4, _ETHERTYPE_IPV6) else None
    if linktype in (_LINKTYPE_RAW, 12, 14, _LINKTYPE_IPV4, _LINKTYPE_IPV6):
        return frame
    raise ValueError(f"unsupported pcap link type {linktype}")


def _udp(ip: bytes) -> tuple[str, str, bytes] | None:
    """(src, dst, UDP segment) of an unfragmented IPv4/IPv6 packet carrying UDP, else None."""
    if len(ip) >= 20 and ip[0] >> 4 == 4:
        ihl = (ip[0] & 0x0F) * 4
        total = int.from_bytes(ip[2:4], "big")
        fragmented = int.from_bytes(ip[6:8], "big") & 0x3FFF  # MF flag or a fragment offset
        if ip[9] != _UDP or fragmented or ihl < 20:
            return None
        return str(ipaddress.IPv4Address(ip[12:16])), str(ipaddress.IPv4Address(ip[16:20])), ip[ihl:total]
    if len(ip) >= 40 and ip[0] >> 4 == 6:
        if ip[6] != _UDP:  # extension headers are not followed
            return None
        plen = int.from_bytes(ip[4:6], "big")
        return str(ipaddress.IPv6Address(ip[8:24])), str(ipaddress.IPv6Address(ip[24:40])), ip[40 : 40 + plen]
    return None


def read_pcap(path: Path, natt_ports: Collection[int] = NATT_PORTS) -> list[PcapPacket]:
    """Every UDP datagram of a classic pcap file, in capture order (RFC 3948 framing undone on *natt_ports*)."""
    data = Path(path).read_bytes()
    if len(data) < 24 or data[:4] not in _MAGIC:
        raise ValueError(f"{path}: not a classic pcap file")
    endian, tick = _MAGIC[data[:4]]
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    record = struct.Struct(endian + "IIII")
    out, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = record.unpack_from(data, off)
        frame = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        ip = _ip_packet(linktype, frame)
        seg = _udp(ip) if ip is not None else None
        if seg is None or len(seg[2]) < 8:
            continue
        src, dst, udp = seg
        sport, dport, ulen = struct.unpack(">HHH", udp[:6])
        payload = udp[8:ulen]
        is_esp = is_keepalive = False
        if sport in natt_ports or dport in natt_ports:
            if payload == b"\xff":
                is_keepalive = True
            elif payload[:4] == NON_ESP_MARKER:
                payload = payload[4:]
            else:
                is_esp = True
        out.append(PcapPacket(sec + frac * tick, src, sport, dst, dport, payload, is_esp, is_keepalive))
    return out


def ike_messages(path: Path) -> list[bytes]:
    """The IKE messages of a capture, in order (ESP and NAT-keepalives left out)."""
    return [p.payload for p in read_pcap(path) if not (p.is_esp or p.is_keepalive)]


_LABEL = re.compile(r"\] (.+?) => (\d+) bytes @")
_HEXLINE = re.compile(r"^\S+ \S+\s+\d+: ((?:[0-9A-F]{2} )+)")


def log_secrets(path: Path) -> list[tuple[str, bytes]]:
    """Every ``label => N bytes`` hex dump in a charon log, in order."""
    lines = path.read_text().splitlines()
    out = []
    i = 0
    while i < len(lines):
        m = _LABEL.search(lines[i])
        i += 1
        if not m:
            continue
        n, buf = int(m.group(2)), bytearray()
        while len(buf) < n and i < len(lines):
            h = _HEXLINE.match(lines[i])
            if not h:
                break
            buf += bytes.fromhex(h.group(1))
            i += 1
        out.append((m.group(1), bytes(buf)))
    return out


def key_table(path: Path) -> list[list[str]]:
    """Rows of a Wireshark UAT file, fields unquoted."""
    return [[f.strip('"') for f in line.split(",")] for line in path.read_text().splitlines()
            if line and not line.startswith("#")]
