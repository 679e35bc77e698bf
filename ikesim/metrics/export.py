"""Exporters: pcap of every datagram and Wireshark key tables (ikev2_decryption_table, esp_sa).

The pcap uses LINKTYPE_RAW (IPv4), timestamps = 2026-01-01T00:00:00Z plus
simulated time, so the same seed gives a byte-identical file. Datagrams on
UDP 4500 carry the 4-byte non-ESP marker (RFC 3948 §2.2).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ikesim.types import Address

__all__ = ["PCAP_EPOCH", "write_pcap", "ipv4_udp_packet", "ikev2_decryption_lines", "esp_sa_lines",
           "esp_wireshark_names"]

PCAP_EPOCH = 1767225600
"""2026-01-01T00:00:00Z: the capture's time origin (simulated time 0)."""
_LINKTYPE_RAW = 101
_ESP_INTEG = {"sha1": "HMAC-SHA-1-96 [RFC2404]", "sha256": "HMAC-SHA-256-128 [RFC4868]",
              "sha384": "HMAC-SHA-384-192 [RFC4868]", "sha512": "HMAC-SHA-512-256 [RFC4868]"}


def esp_wireshark_names(encr: str, integ: str) -> tuple[str, str]:
    """Wireshark esp_sa names for strongSwan-style ESP transform names (RFC 4106, RFC 3602, RFC 4868)."""
    if "gcm" in encr:
        icv = encr.rsplit("gcm", 1)[1] or "16"
        return f"AES-GCM with {icv} octet ICV [RFC4106]", "NULL"
    if encr.startswith("chacha20poly1305"):
        return "ChaCha20 with Poly1305 [RFC7634]", "NULL"
    name = "AES-CBC [RFC3602]" if encr.startswith("aes") else "NULL"
    return name, _ESP_INTEG.get(integ, "NULL")


def _checksum(header: bytes) -> int:
    s = sum(struct.unpack(f">{len(header) // 2}H", header))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4_udp_packet(src: Address, dst: Address, payload: bytes, ident: int) -> bytes:
    """An IPv4 (RFC 791) + UDP (RFC 768) packet carrying *payload*; UDP checksum 0 (allowed on IPv4)."""
    if 4500 in (src.port, dst.port):
        payload = b"\x00\x00\x00\x00" + payload
    udp = struct.pack(">HHHH", src.port, dst.port, 8 + len(payload), 0) + payload
    hdr = struct.pack(
        ">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident & 0xFFFF, 0, 64, 17, 0,
        ipaddress.IPv4Address(src.ip).packed, ipaddress.IPv4Address(dst.ip).packed,
    )
    hdr = hdr[:10] + struct.pack(">H", _checksum(hdr)) + hdr[12:]
    return hdr + udp


def write_pcap(path: Path, records: Iterable[tuple[int, float, Address, Address, bytes]]) -> None:
    """Write (id, time, src, dst, payload) records as a classic libpcap file."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, _LINKTYPE_RAW))
    for ident, t, src, dst, payload in records:
        pkt = ipv4_udp_packet(src, dst, payload, ident)
        usec_total = round(t * 1_000_000)
        sec, usec = divmod(usec_total, 1_000_000)
        out += struct.pack("<IIII", PCAP_EPOCH + sec, usec, len(pkt), len(pkt)) + pkt
    path.write_bytes(bytes(out))


def ikev2_decryption_lines(established: Sequence[Any]) -> list[str]:
    """Wireshark ikev2_decryption_table lines, one per IKE_SA (from IkeSaEstablished events)."""
    lines, seen = [], set()
    for e in established:
        key = (e.spi_i, e.spi_r)
        if key in seen:
            continue
        seen.add(key)
        lines.append(
            f'{e.spi_i.hex()},{e.spi_r.hex()},{e.sk_ei.hex()},{e.sk_er.hex()},"{e.encr_wireshark}",'
            f'{e.sk_ai.hex()},{e.sk_ar.hex()},"{e.integ_wireshark}"'
        )
    return lines


def esp_sa_lines(installed: Sequence[tuple[Any, str, str]]) -> list[str]:
    """Wireshark esp_sa lines (one per direction) from (ChildSaInstalled, encr name, integ name)."""
    lines, seen = [], set()
    for e, encr, integ in installed:
        for spi, key, ikey, src, dst in (
            (e.spi_out, e.encr_key_out, e.integ_key_out, e.local.ip, e.peer.ip),
            (e.spi_in, e.encr_key_in, e.integ_key_in, e.peer.ip, e.local.ip),
        ):
            if spi in seen:
                continue
            seen.add(spi)
            ik = f"0x{ikey.hex()}" if ikey else ""
            lines.append(f'"IPv4","{src}","{dst}","0x{spi.hex()}","{encr}","0x{key.hex()}","{integ}","{ik}"')
    return lines
