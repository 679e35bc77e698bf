"""Semantic mutators: well-formed payloads with values a peer must refuse (RFC 7296 §3.3–§3.13).

Where ``ikesim.fuzz.mutate`` changes fields blindly, these keep each payload parseable and change one
meaning: a proposal's protocol or SPI size, traffic selectors with start > end or too many of them,
nonces outside 16..256 bytes, a KE for another group, Delete payloads with huge SPI counts, notifies
with the wrong SPI size. Sealed with real keys they reach the exchange handlers, not just the parser.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ikesim.rng import Rng
from ikesim.wire.iana import NotifyType, ProtocolId, TsType
from ikesim.wire.payloads import (
    DeletePayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    TrafficSelector,
    TsPayload,
)

__all__ = ["semantic_mutation"]

T = TypeVar("T")
_SPI_SIZES = (0, 1, 3, 4, 5, 7, 8, 9, 16)
_NONCE_SIZES = (0, 1, 15, 16, 256, 257, 1000)
_NOTIFIES = (NotifyType.REKEY_SA, NotifyType.USE_TRANSPORT_MODE, NotifyType.INVALID_KE_PAYLOAD, NotifyType.COOKIE,
             NotifyType.NAT_DETECTION_SOURCE_IP, NotifyType.NAT_DETECTION_DESTINATION_IP,
             NotifyType.IKEV2_FRAGMENTATION_SUPPORTED, NotifyType.NO_PROPOSAL_CHOSEN, NotifyType.TEMPORARY_FAILURE,
             NotifyType.CHILD_SA_NOT_FOUND, NotifyType.TS_UNACCEPTABLE, NotifyType.INVALID_SYNTAX,
             NotifyType.AUTHENTICATION_FAILED, NotifyType.UPDATE_SA_ADDRESSES, NotifyType.INITIAL_CONTACT,
             NotifyType.SIGNATURE_HASH_ALGORITHMS, NotifyType.ADDITIONAL_TS_POSSIBLE)


def _pick(rng: Rng, items: Sequence[T]) -> T:
    return items[rng.below(len(items))]


def _proposal(rng: Rng, p: Proposal) -> tuple[Proposal, str]:
    r = rng.below(5)
    if r == 0:
        return dataclasses.replace(p, protocol=_pick(rng, (ProtocolId.IKE, ProtocolId.AH, ProtocolId.ESP, 0, 4, 200))), "sa_protocol"  # type: ignore[arg-type]
    if r == 1:
        n = int(_pick(rng, _SPI_SIZES))
        return dataclasses.replace(p, spi=bytes(n) if rng.below(3) == 0 else rng.bytes(n)), "sa_spi_size"
    if r == 2 and p.transforms:
        i = rng.below(len(p.transforms))
        t = p.transforms[i]
        t = dataclasses.replace(t, transform_id=int(_pick(rng, (0, 1, 2, 3, 12, 14, 19, 20, 31, 1024, 65535))))
        return dataclasses.replace(p, transforms=p.transforms[:i] + (t,) + p.transforms[i + 1:]), "sa_transform_id"
    if r == 3 and p.transforms:
        i = rng.below(len(p.transforms))
        return dataclasses.replace(p, transforms=p.transforms[:i] + p.transforms[i + 1:]), "sa_transform_missing"
    return dataclasses.replace(p, number=int(_pick(rng, (0, 2, 3, 255)))), "sa_proposal_number"


def _sa(rng: Rng, p: SaPayload) -> tuple[Payload, str]:
    if not p.proposals:
        return p, "sa_empty"
    r = rng.below(6)
    if r == 0:
        return dataclasses.replace(p, proposals=p.proposals[:2] * int(_pick(rng, (2, 3, 255, 256)))), "sa_many_proposals"
    i = rng.below(len(p.proposals))
    new, name = _proposal(rng, p.proposals[i])
    return dataclasses.replace(p, proposals=p.proposals[:i] + (new,) + p.proposals[i + 1:]), name


def _selector(rng: Rng, s: TrafficSelector) -> tuple[TrafficSelector, str]:
    r = rng.below(5)
    if r == 0:
        return dataclasses.replace(s, start_address=s.end_address, end_address=s.start_address
                                   if s.start_address != s.end_address else bytes(len(s.start_address))), "ts_start_after_end"
    if r == 1:
        return dataclasses.replace(s, start_port=max(s.end_port, 1), end_port=0), "ts_ports_reversed"
    if r == 2:
        v6 = s.ts_type == TsType.TS_IPV4_ADDR_RANGE
        return dataclasses.replace(s, ts_type=TsType.TS_IPV6_ADDR_RANGE if v6 else TsType.TS_IPV4_ADDR_RANGE), "ts_type_swapped"
    if r == 3:
        return dataclasses.replace(s, ip_protocol=int(_pick(rng, (1, 6, 17, 50, 255)))), "ts_protocol"
    size = 16 if s.ts_type == TsType.TS_IPV6_ADDR_RANGE else 4
    a, b = rng.bytes(size), rng.bytes(size)
    return dataclasses.replace(s, start_address=min(a, b), end_address=max(a, b)), "ts_other_range"


def _ts(rng: Rng, p: TsPayload) -> tuple[Payload, str]:
    if not p.selectors:
        return p, "ts_empty"
    if rng.below(4) == 0:
        return dataclasses.replace(p, selectors=p.selectors[:2] * int(_pick(rng, (2, 255, 256, 300)))), "ts_many"
    i = rng.below(len(p.selectors))
    new, name = _selector(rng, p.selectors[i])
    return dataclasses.replace(p, selectors=p.selectors[:i] + (new,) + p.selectors[i + 1:]), name


def _nonce(rng: Rng, p: NoncePayload) -> tuple[Payload, str]:
    return dataclasses.replace(p, data=rng.bytes(int(_pick(rng, _NONCE_SIZES)))), "nonce_size"


def _ke(rng: Rng, p: KePayload) -> tuple[Payload, str]:
    if rng.below(2):
        return dataclasses.replace(p, group=int(_pick(rng, (0, 1, 2, 14, 19, 20, 21, 31, 32, 35, 65535)))), "ke_group"
    n = int(_pick(rng, (0, 1, 31, 33, 64, 256, 1000)))
    return dataclasses.replace(p, data=bytes(n) if rng.below(3) == 0 else rng.bytes(n)), "ke_length"


def _delete(rng: Rng, p: DeletePayload) -> tuple[Payload, str]:
    size = max(0, min(int(p.spi_size), 16))  # a field mutation may have left any value here
    r = rng.below(4)
    if r == 0:
        n = int(_pick(rng, (2, 255, 300, 4000, 15000)))
        return dataclasses.replace(p, spis=tuple(rng.bytes(size) for _ in range(min(n, 64))) * max(1, n // 64)), "delete_many"
    if r == 1:
        return dataclasses.replace(p, protocol=_pick(rng, (ProtocolId.IKE, ProtocolId.AH, ProtocolId.ESP, 0, 9))), "delete_protocol"  # type: ignore[arg-type]
    if r == 2:
        new = int(_pick(rng, (0, 4, 8, 16)))
        return dataclasses.replace(p, spi_size=new, spis=tuple(bytes(new) for _ in p.spis[:64] or (b"",))), "delete_spi_size"
    return dataclasses.replace(p, spis=tuple(rng.bytes(size) for _ in p.spis[:64])), "delete_unknown_spi"


def _notify(rng: Rng, p: NotifyPayload) -> tuple[Payload, str]:
    r = rng.below(3)
    if r == 0:
        return dataclasses.replace(p, notify_type=_pick(rng, _NOTIFIES)), "notify_type"
    if r == 1:
        n = int(_pick(rng, (0, 1, 4, 8, 16)))
        return dataclasses.replace(p, spi=rng.bytes(n), protocol=_pick(rng, (0, 1, 2, 3))), "notify_spi"  # type: ignore[arg-type]
    return dataclasses.replace(p, data=rng.bytes(int(_pick(rng, (0, 1, 2, 8, 20, 64, 1000))))), "notify_data"


_BY_TYPE: dict[type, Callable[[Rng, Any], tuple[Payload, str]]] = {
    SaPayload: _sa, NoncePayload: _nonce, KePayload: _ke, DeletePayload: _delete, NotifyPayload: _notify,
}


def semantic_mutation(rng: Rng, payloads: list[Payload]) -> str:
    """Change one meaning in *payloads* (in place), keeping it parseable; return the mutation's name."""
    targets = [i for i, p in enumerate(payloads) if type(p) in _BY_TYPE or isinstance(p, TsPayload)]
    if not targets:
        payloads.append(NotifyPayload(_pick(rng, _NOTIFIES), data=rng.bytes(rng.below(20))))
        return "notify_added"
    i = targets[rng.below(len(targets))]
    p = payloads[i]
    f: Callable[[Rng, Any], tuple[Payload, str]] = _ts if isinstance(p, TsPayload) else _BY_TYPE[type(p)]
    payloads[i], name = f(rng, p)
    return name
