"""What one fuzz step aims at: the target mix, and the records of episodes and fragment plans in flight."""

from __future__ import annotations

from dataclasses import dataclass

from ikesim.ike.daemon import IkeDaemon
from ikesim.types import Address, Datagram
from ikesim.wire.iana import ExchangeType
from ikesim.wire.payloads import Payload

_TARGETS: tuple[tuple[int, str], ...] = (
    (40, "request"), (17, "response"), (10, "fragment"), (12, "init_request"), (5, "init_response"),
    (9, "auth_request"), (7, "auth_response"),
)
_TARGET_TOTAL = sum(w for w, _ in _TARGETS)
_SEALED_TARGETS = frozenset(("request", "response", "fragment", "auth_request", "auth_response"))
_REQ_LABELS = ("rekey_child", "create_child", "rekey_ike", "liveness", "delete_child", "delete_ike", "ike_auth")
_Built = tuple[str, bytes, IkeDaemon, Address, Address, bool, list[str]]
"""(target, datagram, victim, src, dst, sealed with real keys, mutation names)."""


@dataclass
class _Episode:
    """A response episode: the victim's exchange in flight and the real answer held back."""

    victim: IkeDaemon
    spi: bytes
    message_id: int
    exchange: ExchangeType
    real: list[Datagram]
    payloads: tuple[Payload, ...]


@dataclass
class _FragmentPlan:
    """The SKF fragments still to send for one fragmented mutant."""

    datagrams: list[bytes]
    victim: IkeDaemon
    src: Address
    dst: Address
    mutations: str



def _held_fragments(d: IkeDaemon) -> tuple[tuple[int, int, int], ...]:
    """What SKF fragments *d* holds for reassembly (RFC 7383 §2.6), over all its IKE_SAs."""
    return tuple((id(s), s.message_id, len(s.chunks)) for sa in d.sas.values() for s in sa.reassembly.values())
