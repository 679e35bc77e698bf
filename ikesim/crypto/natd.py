"""NAT detection hashes and stateless cookies (RFC 7296 §2.23, §2.6)."""

from __future__ import annotations

import hashlib
import ipaddress

from ikesim.crypto.meter import OpCounter

__all__ = ["natd_hash", "cookie_value"]


def natd_hash(spi_i: bytes, spi_r: bytes, ip: str, port: int, meter: OpCounter | None = None) -> bytes:
    """RFC 7296 §2.23: SHA-1(SPIi | SPIr | IP | Port)."""
    if meter is not None:
        meter.add("hash")
    return hashlib.sha1(spi_i + spi_r + ipaddress.ip_address(ip).packed + port.to_bytes(2, "big")).digest()


def cookie_value(secret: bytes, nonce_i: bytes, ip: str, spi_i: bytes, meter: OpCounter | None = None) -> bytes:
    """RFC 7296 §2.6: Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)."""
    if meter is not None:
        meter.add("hash")
    version = hashlib.sha256(secret).digest()[:4]
    return version + hashlib.sha256(nonce_i + ipaddress.ip_address(ip).packed + spi_i + secret).digest()
