"""Readers for the strongSwan ground-truth vectors in ../shared/vectors/strongswan."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest

VECTORS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "vectors" / "strongswan"


def require_vectors() -> Path:
    """The vectors directory, or skip the test with a clear reason."""
    if not (VECTORS_DIR / "ike_gcm_cbc_rekey.pcap").exists():
        pytest.skip(f"strongSwan vectors not found at {VECTORS_DIR}")
    return VECTORS_DIR


@dataclass(frozen=True)
class PcapPacket:
    """One UDP datagram from a capture (non-ESP marker stripped; ESP flagged)."""

    ts: float
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    payload: bytes
    is_esp: bool


def read_pcap(path: Path) -> list[PcapPacket]:
    """Read IPv4/UDP datagrams from a classic pcap (Ethernet or raw IP link type)."""
    data = path.read_bytes()
    linktype = struct.unpack("<I", data[20:24])[0]
    off, out = 24, []
    while off + 16 <= len(data):
        sec, usec, incl, _orig = struct.unpack("<IIII", data[off : off + 16])
        pkt = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        ip = pkt[14:] if linktype == 1 else pkt
        ihl = (ip[0] & 0x0F) * 4
        udp = ip[ihl:]
        sport, dport = struct.unpack(">HH", udp[:4])
        payload = udp[8:]
        is_esp = False
        if 4500 in (sport, dport) or 14500 in (sport, dport):
            if payload[:4] == b"\x00\x00\x00\x00":
                payload = payload[4:]
            else:
                is_esp = True
        out.append(PcapPacket(sec + usec / 1e6, ".".join(map(str, ip[12:16])), sport,
                              ".".join(map(str, ip[16:20])), dport, payload, is_esp))
    return out


def ike_messages(path: Path) -> list[bytes]:
    """The IKE messages of a capture, in order."""
    return [p.payload for p in read_pcap(path) if not p.is_esp]


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
