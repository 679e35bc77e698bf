"""Exporters: pcap of every datagram and Wireshark key tables (ikev2_decryption_table, esp_sa).

The pcap uses LINKTYPE_RAW (IPv4), timestamps = 2026-01-01T00:00:00Z plus
simulated time, so the same seed gives a byte-identical file. Datagrams on
UDP 4500 carry the 4-byte non-ESP marker (RFC 3948 §2.2). The capture is the
senders' view: each datagram once, when and as its sender sent it (before any
NAT, loss or fault), and a datagram that a link IP-fragmented as the IPv4
fragments that link put on the wire (RFC 791 §3.2), so Wireshark reassembles it.

The key tables hold live key material: they are created with mode 0600
(``write_secret``) and ``Results.write(keys=False)`` leaves them out.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from ikesim.types import Address

__all__ = ["PCAP_EPOCH", "write_pcap", "ipv4_udp_packet", "ipv4_fragments", "ikev2_decryption_lines",
           "ikev2_decryption_line", "esp_sa_lines", "esp_sa_line_pairs", "esp_wireshark_names", "write_secret",
           "open_secret", "KEY_TABLES"]

PCAP_EPOCH = 1767225600
"""2026-01-01T00:00:00Z: the capture's time origin (simulated time 0)."""
_LINKTYPE_RAW = 101
KEY_TABLES = ("ikev2_decryption_table", "esp_sa")
"""The files that hold key material (Wireshark's IKEv2 and ESP decryption tables)."""
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


def _ipv4_header(src: Address, dst: Address, length: int, ident: int, flags_offset: int, proto: int = 17) -> bytes:
    """An IPv4 header (RFC 791 §3.1), no options, TTL 64, protocol UDP (or *proto*), with its checksum."""
    hdr = struct.pack(
        ">BBHHHBBH4s4s", 0x45, 0, length, ident & 0xFFFF, flags_offset, 64, proto, 0,
        ipaddress.IPv4Address(src.ip).packed, ipaddress.IPv4Address(dst.ip).packed,
    )
    return hdr[:10] + struct.pack(">H", _checksum(hdr)) + hdr[12:]


def _udp(src: Address, dst: Address, payload: bytes, *, esp: bool = False) -> bytes:
    """The UDP datagram (RFC 768, checksum 0: allowed on IPv4), with the non-ESP marker on port 4500 (not for ESP)."""
    if not esp and 4500 in (src.port, dst.port) and payload != b"\xff":  # not on a NAT keepalive (RFC 3948 §2.3)
        payload = b"\x00\x00\x00\x00" + payload
    return struct.pack(">HHHH", src.port, dst.port, 8 + len(payload), 0) + payload


def ipv4_udp_packet(src: Address, dst: Address, payload: bytes, ident: int) -> bytes:
    """An IPv4 (RFC 791) + UDP (RFC 768) packet carrying *payload*; UDP checksum 0 (allowed on IPv4)."""
    udp = _udp(src, dst, payload)
    return _ipv4_header(src, dst, 20 + len(udp), ident, 0) + udp


def ipv4_esp_packet(src: Address, dst: Address, esp: bytes, ident: int) -> bytes:
    """An ESP packet in IPv4: protocol 50 when the ports are 0 (RFC 4303), else in UDP without a marker (RFC 3948)."""
    body = esp if dst.port == 0 else _udp(src, dst, esp, esp=True)
    return _ipv4_header(src, dst, 20 + len(body), ident, 0, 50 if dst.port == 0 else 17) + body


def ipv4_fragments(src: Address, dst: Address, payload: bytes, ident: int, mtu: int) -> list[bytes]:
    """The IPv4 fragments of the packet carrying *payload* on a link of *mtu* (RFC 791 §3.2, §2.3).

    Every fragment but the last carries 8 * floor((mtu - 20) / 8) bytes of the UDP datagram and has MF set;
    the fragment offset counts 8-byte units. One packet (no fragment fields) when it fits.
    """
    udp = _udp(src, dst, payload)
    if 20 + len(udp) <= mtu:
        return [_ipv4_header(src, dst, 20 + len(udp), ident, 0) + udp]
    per = 8 * ((mtu - 20) // 8)
    out = []
    for start in range(0, len(udp), per):
        chunk = udp[start:start + per]
        more = 0x2000 if start + per < len(udp) else 0
        out.append(_ipv4_header(src, dst, 20 + len(chunk), ident, more | (start // 8)) + chunk)
    return out


def write_pcap(path: Path, records: Iterable[tuple[int, float, Address, Address, bytes]],
               fragments: Mapping[int, int] | None = None) -> None:
    """Write (id, time, src, dst, payload) records as a classic libpcap file.

    *fragments*: datagram id -> MTU of the link that IP-fragmented it; such a datagram is written as its
    fragments (all with the send time).
    """
    fragments = fragments or {}
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, _LINKTYPE_RAW))
    for ident, t, src, dst, payload in records:
        mtu = fragments.get(ident)
        if ident < 0:  # a user packet: ESP (the capture shows it whole)
            pkts = [ipv4_esp_packet(src, dst, payload, -ident)]
        elif mtu is None:
            pkts = [ipv4_udp_packet(src, dst, payload, ident)]
        else:
            pkts = ipv4_fragments(src, dst, payload, ident, mtu)
        usec_total = round(t * 1_000_000)
        sec, usec = divmod(usec_total, 1_000_000)
        for pkt in pkts:
            out += struct.pack("<IIII", PCAP_EPOCH + sec, usec, len(pkt), len(pkt)) + pkt
    path.write_bytes(bytes(out))


def open_secret(path: Path, *, append: bool = False) -> TextIO:
    """Open *path* for writing, readable and writable by its owner only (mode 0600), created that way.

    An existing file of that name (an earlier key table) is set to 0600 before any byte is written, and
    truncated unless *append*. A symbolic link is refused (``O_NOFOLLOW``).
    """
    mode = os.O_APPEND if append else os.O_TRUNC
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | mode | getattr(os, "O_NOFOLLOW", 0), 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "w", encoding="ascii")


def write_secret(path: Path, text: str | Iterable[str]) -> None:
    """Write *text* (or its chunks) to a file only its owner can read or write (mode 0600), created that way."""
    with open_secret(path) as f:
        if isinstance(text, str):
            f.write(text)
        else:
            for chunk in text:
                f.write(chunk)


def ikev2_decryption_line(e: Any) -> str:
    """The Wireshark ikev2_decryption_table line of one IKE_SA (from an IkeSaKeysDerived / IkeSaEstablished event)."""
    return (f'{e.spi_i.hex()},{e.spi_r.hex()},{e.sk_ei.hex()},{e.sk_er.hex()},"{e.encr_wireshark}",'
            f'{e.sk_ai.hex()},{e.sk_ar.hex()},"{e.integ_wireshark}"')


def ikev2_decryption_lines(established: Sequence[Any]) -> list[str]:
    """Wireshark ikev2_decryption_table lines, one per IKE_SA (from IkeSaKeysDerived / IkeSaEstablished events)."""
    lines, seen = [], set()
    for e in established:
        key = (e.spi_i, e.spi_r)
        if key in seen or not e.encr_wireshark:  # ChaCha20-Poly1305: no name in Wireshark's IKEv2 table
            continue
        seen.add(key)
        lines.append(ikev2_decryption_line(e))
    return lines


def esp_sa_line_pairs(e: Any, encr: str, integ: str, *, inbound_wildcard: bool = False,
                      outbound_wildcard: bool = False) -> list[tuple[bytes, str]]:
    """(SPI, Wireshark esp_sa line) for both directions of a CHILD_SA (a ChildSaInstalled event), outbound first.

    With *inbound_wildcard* the inbound line has ``*`` addresses: this node sees the peer's address after any NAT,
    the capture (taken at the sender) before it, so only the SPI is sure to match. With *outbound_wildcard* the
    outbound line too: a MOBIKE move (RFC 4555) or a NAT rebind changes the addresses, never the SPI.
    """
    out = []
    peer_ip, local_ip = ("*", "*") if inbound_wildcard else (e.peer.ip, e.local.ip)
    src_out, dst_out = ("*", "*") if outbound_wildcard else (e.local.ip, e.peer.ip)
    for spi, key, ikey, src, dst in (
        (e.spi_out, e.encr_key_out, e.integ_key_out, src_out, dst_out),
        (e.spi_in, e.encr_key_in, e.integ_key_in, peer_ip, local_ip),
    ):
        ik = f"0x{ikey.hex()}" if ikey else ""
        out.append((spi, f'"IPv4","{src}","{dst}","0x{spi.hex()}","{encr}","0x{key.hex()}","{integ}","{ik}"'))
    return out


def esp_sa_lines(installed: Sequence[tuple[Any, str, str]]) -> list[str]:
    """Wireshark esp_sa lines (one per direction) from (ChildSaInstalled, encr name, integ name)."""
    lines, seen = [], set()
    for e, encr, integ in installed:
        for spi, line in esp_sa_line_pairs(e, encr, integ):
            if spi not in seen:
                seen.add(spi)
                lines.append(line)
    return lines
