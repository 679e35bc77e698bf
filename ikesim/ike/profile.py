"""Connections parsed once: proposals, identities and traffic selectors (RFC 7296 §2.7, §2.9, §3.5).

Parsing strongSwan proposal strings is done once per ``Connection`` when the
daemon is built, never per message (speed: a fleet runs millions of exchanges).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass, replace
from functools import lru_cache
from types import MappingProxyType

from ikesim.crypto.keywords import KE_NAMES
from ikesim.crypto.proposal_lists import parse_proposals
from ikesim.crypto.suites import ProposalSpec
from ikesim.ike.config import ChildPolicy, Connection
from ikesim.wire.iana import IdType, KeGroup, ProtocolId, TransformType
from ikesim.wire.payloads import IdPayload, Proposal, TrafficSelector, Transform
from ikesim.wire.verify import OPAQUE_PORTS

__all__ = [
    "ChildProfile",
    "ConnectionProfile",
    "id_payload_fields",
    "id_to_text",
    "strip_ke",
    "proposals_to_wire",
    "selectors_for",
    "narrow_selectors",
    "ts_text",
    "ke_group_name",
    "MAX_SELECTORS",
]

MAX_SELECTORS = 255
"""RFC 7296 §3.13: Number of TSs is one octet."""


_KE_GROUP_NAMES = {KeGroup(g): name for g, name in KE_NAMES.items()}


def ke_group_name(group: int) -> str:
    """strongSwan's name of a key exchange method (RFC 7296 §3.3.2 Transform Type 4): ``x25519``, ``none``."""
    return _KE_GROUP_NAMES.get(KeGroup(group), KeGroup(group).name.lower())


def strip_ke(p: Proposal) -> Proposal:
    """The proposal without KE transforms: IKE_AUTH CHILD_SAs have no PFS (RFC 7296 §1.2)."""
    return Proposal(p.number, p.protocol, p.spi, _without_ke(p.transforms))


@lru_cache(maxsize=1024)
def _without_ke(transforms: tuple[Transform, ...]) -> tuple[Transform, ...]:
    """*transforms* minus the KE ones, once per configured or offered set."""
    return tuple(t for t in transforms if t.transform_type != TransformType.KE)


def proposals_to_wire(
    specs: tuple[ProposalSpec, ...], protocol: ProtocolId, spi: bytes, *, pfs: bool = True
) -> tuple[Proposal, ...]:
    """Number the configured proposals 1..n for an SA payload (RFC 7296 §3.3.1)."""
    out = []
    for i, spec in enumerate(specs, start=1):
        p = spec.to_wire(i, protocol, spi)
        out.append(p if pfs else strip_ke(p))
    return tuple(out)


def spec_without_ke(spec: ProposalSpec) -> ProposalSpec:
    """The spec without KE groups: what IKE_AUTH children accept (RFC 7296 §1.2)."""
    if not is_dataclass(spec) or isinstance(spec, type):
        return spec
    changes: dict[str, tuple[()]] = {}
    for f in fields(spec):
        value = getattr(spec, f.name)
        if isinstance(value, tuple) and value and all(isinstance(v, KeGroup) for v in value):
            changes[f.name] = ()
    return replace(spec, **changes) if changes else spec


def _first_group(specs: tuple[ProposalSpec, ...]) -> int:
    for spec in specs:
        p = spec.to_wire(1, ProtocolId.IKE, b"")
        for t in p.transforms:
            if t.transform_type == TransformType.KE and t.transform_id != KeGroup.NONE:
                return int(t.transform_id)
    return int(KeGroup.NONE)


def _groups(specs: tuple[ProposalSpec, ...], protocol: ProtocolId) -> frozenset[int]:
    out: set[int] = set()
    for spec in specs:
        for t in spec.to_wire(1, protocol, b"").transforms:
            if t.transform_type == TransformType.KE and t.transform_id != KeGroup.NONE:
                out.add(int(t.transform_id))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class ChildProfile:
    """A ``ChildPolicy`` with its ESP proposals parsed (RFC 7296 §3.3)."""

    policy: ChildPolicy
    specs: tuple[ProposalSpec, ...]
    auth_specs: tuple[ProposalSpec, ...]
    """``specs`` without KE groups, for the CHILD_SA negotiated in IKE_AUTH (RFC 7296 §1.2)."""
    pfs_group: int
    """KE group of the first proposal (0 = no PFS on CREATE_CHILD_SA)."""
    groups: frozenset[int]


@lru_cache(maxsize=1024)
def _ike_parts(proposals: tuple[str, ...]) -> tuple[tuple[ProposalSpec, ...], int, frozenset[int]]:
    """IKE proposals parsed, their first and all KE groups: once per configuration, shared by a fleet's connections."""
    specs = parse_proposals(proposals, ProtocolId.IKE)
    return specs, _first_group(specs), _groups(specs, ProtocolId.IKE)


@lru_cache(maxsize=1024)
def _child_profiles(children: tuple[ChildPolicy, ...]) -> Mapping[str, ChildProfile]:
    """The ESP proposals of each child policy parsed (RFC 7296 §3.3), shared by connections with equal policies."""
    out = {}
    for child in children:
        specs = parse_proposals(child.proposals, ProtocolId.ESP)
        out[child.name] = ChildProfile(child, specs, tuple(spec_without_ke(s) for s in specs), _first_group(specs),
                                       _groups(specs, ProtocolId.ESP))
    return MappingProxyType(out)


@dataclass(frozen=True, slots=True)
class ConnectionProfile:
    """A ``Connection`` with everything parsed that messages need."""

    connection: Connection
    ike_specs: tuple[ProposalSpec, ...]
    ike_group: int
    """KE group to try first in IKE_SA_INIT (RFC 7296 §1.2)."""
    ike_groups: frozenset[int]
    children: Mapping[str, ChildProfile]
    """Read-only: shared by every connection with the same child policies."""

    @classmethod
    def build(cls, conn: Connection) -> ConnectionProfile:
        """Parse every proposal string of *conn* once (raises ConfigError naming a bad token)."""
        return cls(conn, *_ike_parts(conn.ike.proposals), _child_profiles(conn.children))

    @property
    def first_child(self) -> ChildProfile | None:
        """The child configuration negotiated in IKE_AUTH, or None for a childless connection."""
        for c in self.children.values():
            return c
        return None


def id_payload_fields(identity: str) -> tuple[IdType, bytes]:
    """Map an identity string to an ID type and data (RFC 7296 §3.5)."""
    try:
        addr = ipaddress.ip_address(identity)
    except ValueError:
        if "@" in identity:
            return IdType.ID_RFC822_ADDR, identity.encode()
        return IdType.ID_FQDN, identity.encode()
    return (IdType.ID_IPV4_ADDR if addr.version == 4 else IdType.ID_IPV6_ADDR), addr.packed


def id_to_text(p: IdPayload) -> str:
    """The identity string of an ID payload (RFC 7296 §3.5)."""
    if p.id_type in (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR):
        try:
            return str(ipaddress.ip_address(p.data))
        except ValueError:
            return p.data.hex()
    return p.data.decode("utf-8", "replace")


@lru_cache(maxsize=65536)
def _network_selector(cidr: str) -> TrafficSelector:
    """The selector of one CIDR, parsed once: ``ipaddress`` per exchange was a tenth of a fleet's CPU."""
    return TrafficSelector.from_network(cidr)


def selectors_for(cidrs: tuple[str, ...], own_ip: str) -> tuple[TrafficSelector, ...]:
    """Traffic selectors for configured CIDRs; ``dynamic`` is *own_ip*/32 (RFC 7296 §2.9)."""
    return tuple([_network_selector(own_ip if c == "dynamic" else c) for c in cidrs])


_ANY_PORTS = (0, 0xFFFF)
"""RFC 7296 §3.13.1: Start Port 0 and End Port 65535 mean ANY port."""


def _port_overlap(a: TrafficSelector, b: TrafficSelector) -> tuple[int, int] | None:
    """The port range both selectors cover, or None (RFC 7296 §3.13.1, RFC 4301 §4.4.1.1).

    OPAQUE ports (Start 65535, End 0) are not an empty range: RFC 4301's ANY includes OPAQUE, so OPAQUE
    narrowed by ANY (or by OPAQUE) is OPAQUE, and OPAQUE overlaps no narrower port range. strongSwan's
    ``traffic_selector_t.get_subset`` decides the same, so a CHILD_SA the peer narrowed to OPAQUE ports
    is rekeyed with those selectors and accepted again (RFC 7296 §2.8, §2.9).
    """
    pa, pb = (a.start_port, a.end_port), (b.start_port, b.end_port)
    if pa == OPAQUE_PORTS or pb == OPAQUE_PORTS:
        return OPAQUE_PORTS if {pa, pb} <= {OPAQUE_PORTS, _ANY_PORTS} else None
    sp, ep = max(a.start_port, b.start_port), min(a.end_port, b.end_port)
    return (sp, ep) if sp <= ep else None


def _intersect(a: TrafficSelector, b: TrafficSelector) -> TrafficSelector | None:
    """The selector covering what both *a* and *b* cover, or None (RFC 7296 §2.9, §3.13.1)."""
    if a.ts_type != b.ts_type:
        return None
    if a.ip_protocol and b.ip_protocol and a.ip_protocol != b.ip_protocol:
        return None
    proto = a.ip_protocol or b.ip_protocol
    ports = _port_overlap(a, b)
    sa, ea = max(a.start_address, b.start_address), min(a.end_address, b.end_address)
    if ports is None or sa > ea:
        return None
    sp, ep = ports
    for same in (b, a):  # usually one covers the other: share it, a CHILD_SA's selectors live for hours
        if (same.ip_protocol, same.start_port, same.end_port, same.start_address, same.end_address) == \
                (proto, sp, ep, sa, ea):
            return same
    return TrafficSelector(a.ts_type, proto, sp, ep, sa, ea)


def narrow_selectors(
    proposed: tuple[TrafficSelector, ...], configured: tuple[TrafficSelector, ...]
) -> tuple[TrafficSelector, ...]:
    """Intersect proposed with configured selectors (RFC 7296 §2.9); empty when none overlap.

    At most ``MAX_SELECTORS`` (the first ones): the answer's TS payload counts them in one octet (§3.13).
    """
    out: dict[TrafficSelector, None] = {}
    for c in configured:
        for p in proposed:
            ts = _intersect(p, c)
            if ts is not None:
                out[ts] = None
                if len(out) == MAX_SELECTORS:
                    return tuple(out)
    return tuple(out)


@lru_cache(maxsize=4096)
def ts_text(selectors: tuple[TrafficSelector, ...]) -> str:
    """Selectors as text, CIDR when the range is a network (``10.0.0.1/32``)."""
    parts = []
    for ts in selectors:
        nets = list(ipaddress.summarize_address_range(ts.start, ts.end))
        base = str(nets[0]) if len(nets) == 1 else f"{ts.start}-{ts.end}"
        if ts.ip_protocol or (ts.start_port, ts.end_port) != (0, 65535):
            base += f"[{ts.ip_protocol}/{ts.start_port}-{ts.end_port}]"
        parts.append(base)
    return ",".join(parts)
