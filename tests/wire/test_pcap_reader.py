"""The small pcap reader in tests/vectors.py that every vector test relies on."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from vectors import PcapPacket, ike_messages, read_pcap

IKE = b"\x11" * 28  # any payload; the reader does not parse IKE


def ipv4_udp(sport: int, dport: int, payload: bytes, *, proto: int = 17, frag: int = 0) -> bytes:
    """An IPv4 packet (no options) carrying a UDP datagram; checksums are not checked by the reader."""
    udp = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, frag, 64, proto, 0,
                       bytes([127, 0, 0, 2]), bytes([127, 0, 0, 1])) + udp


def ipv6_udp(sport: int, dport: int, payload: bytes) -> bytes:
    """An IPv6 packet carrying a UDP datagram from ::2 to ::1."""
    udp = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
    return struct.pack(">IHBB16s16s", 6 << 28, len(udp), 17, 64, bytes(15) + b"\x02", bytes(15) + b"\x01") + udp


def pcap(tmp_path: Path, linktype: int, frames: list[bytes], *, magic: int = 0xA1B2C3D4, endian: str = "<") -> Path:
    """Write a classic pcap file; record i is stamped (1000 + i) s and 250000 sub-second ticks."""
    out = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for i, frame in enumerate(frames):
        out += struct.pack(endian + "IIII", 1000 + i, 250000, len(frame), len(frame)) + frame
    path = tmp_path / "t.pcap"
    path.write_bytes(out)
    return path


ETH = bytes(12)  # destination and source MAC


@pytest.mark.parametrize(("linktype", "frame"), [
    (1, ETH + b"\x08\x00" + ipv4_udp(1500, 500, IKE)),  # Ethernet
    (1, ETH + b"\x81\x00\x00\x05\x08\x00" + ipv4_udp(1500, 500, IKE)),  # Ethernet + 802.1Q
    (0, struct.pack("<I", 2) + ipv4_udp(1500, 500, IKE)),  # BSD loopback
    (113, bytes(14) + b"\x08\x00" + ipv4_udp(1500, 500, IKE)),  # Linux cooked v1
    (276, b"\x08\x00" + bytes(18) + ipv4_udp(1500, 500, IKE)),  # Linux cooked v2
    (101, ipv4_udp(1500, 500, IKE)),  # raw IP
    (228, ipv4_udp(1500, 500, IKE)),  # raw IPv4
])
def test_link_types_yield_the_same_datagram(tmp_path: Path, linktype: int, frame: bytes) -> None:
    """Every supported link layer is peeled down to the same UDP datagram and addresses."""
    (p,) = read_pcap(pcap(tmp_path, linktype, [frame]))
    assert p == PcapPacket(1000.25, "127.0.0.2", 1500, "127.0.0.1", 500, IKE, False)


def test_big_endian_nanosecond_file_and_ipv6(tmp_path: Path) -> None:
    """A big-endian, nanosecond-resolution file is read, and an IPv6 datagram too."""
    (p,) = read_pcap(pcap(tmp_path, 229, [ipv6_udp(500, 500, IKE)], magic=0xA1B23C4D, endian=">"))
    assert (p.ts, p.src_ip, p.dst_ip, p.payload) == (pytest.approx(1000.00025), "::2", "::1", IKE)


def test_nat_t_framing_is_undone(tmp_path: Path) -> None:
    """RFC 3948 on port 4500: the non-ESP marker is stripped, ESP is flagged, 0xFF is a keepalive."""
    frames = [ipv4_udp(14500, 4500, bytes(4) + IKE), ipv4_udp(4500, 14500, b"\x27\xbd\x8d\xe8" + bytes(20)),
              ipv4_udp(4500, 4500, b"\xff"), ipv4_udp(1500, 500, bytes(4) + IKE)]
    path = pcap(tmp_path, 228, frames)
    pkts = read_pcap(path)
    assert [(p.payload[:4], p.is_esp, p.is_keepalive) for p in pkts] == [
        (IKE[:4], False, False), (b"\x27\xbd\x8d\xe8", True, False), (b"\xff", False, True), (bytes(4), False, False)]
    assert ike_messages(path) == [IKE, bytes(4) + IKE]


def test_non_udp_and_fragments_are_skipped(tmp_path: Path) -> None:
    """TCP packets and IPv4 fragments are not datagrams the reader can hand out."""
    frames = [ipv4_udp(1, 2, IKE, proto=6), ipv4_udp(1500, 500, IKE, frag=0x2000), ipv4_udp(1500, 500, IKE)]
    assert len(read_pcap(pcap(tmp_path, 228, frames))) == 1


def test_bad_files_are_refused(tmp_path: Path) -> None:
    """A file that is not a classic pcap, or an unknown link type, raises ValueError."""
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\x0a\x0d\x0d\x0a" + bytes(40))  # pcapng section header
    with pytest.raises(ValueError, match="not a classic pcap"):
        read_pcap(bad)
    with pytest.raises(ValueError, match="link type 147"):
        read_pcap(pcap(tmp_path, 147, [ipv4_udp(1, 2, IKE)]))


def test_reads_the_strongswan_captures(vectors_dir: Path) -> None:
    """The rekey capture: 20 IKE datagrams, 1500->500 then 14500<->4500; the ESP capture: 12 ESP packets."""
    pkts = read_pcap(vectors_dir / "ike_gcm_cbc_rekey.pcap")
    assert len(pkts) == 20 and not any(p.is_esp or p.is_keepalive for p in pkts)
    assert [(p.src_ip, p.src_port, p.dst_ip, p.dst_port) for p in pkts[:3]] == [
        ("127.0.0.2", 1500, "127.0.0.1", 500), ("127.0.0.1", 500, "127.0.0.2", 1500),
        ("127.0.0.2", 14500, "127.0.0.1", 4500)]
    assert pkts[0].ts < pkts[-1].ts
    esp = read_pcap(vectors_dir / "esp_synthetic_real_keys.pcap")
    assert len(esp) == 12 and all(p.is_esp for p in esp)
