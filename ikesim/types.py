"""Small value types shared by every layer."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Address", "Datagram", "IKE_PORT", "NATT_PORT"]

IKE_PORT = 500
"""UDP port for IKE (RFC 7296 §2.11)."""
NATT_PORT = 4500
"""UDP port for IKE and ESP after NAT traversal floats (RFC 3948, RFC 7296 §2.23)."""


@dataclass(frozen=True, slots=True, order=True)
class Address:
    """A transport endpoint: IPv4/IPv6 address text and UDP port."""

    ip: str
    port: int = IKE_PORT

    def __str__(self) -> str:
        return f"{self.ip}[{self.port}]"


@dataclass(frozen=True, slots=True)
class Datagram:
    """One UDP datagram as the core sees it: payload bytes plus source and destination."""

    data: bytes
    src: Address
    dst: Address
