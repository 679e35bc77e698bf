"""The datagram as the network sees it (frozen; per-hop facts go to metrics)."""

from __future__ import annotations

from dataclasses import dataclass

from ikesim.types import Address

__all__ = ["SimDatagram"]


@dataclass(frozen=True, slots=True)
class SimDatagram:
    """A UDP datagram in flight: a run-unique id, endpoints and payload."""

    id: int
    src: Address
    dst: Address
    data: bytes
