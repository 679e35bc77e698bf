"""Hypothesis strategies for every IKEv2 payload and for whole messages (representable values only)."""

from __future__ import annotations

from enum import IntEnum

from hypothesis import strategies as st

from ikesim.wire.iana import (
    AuthMethod,
    CertEncoding,
    CfgType,
    ExchangeType,
    HeaderFlag,
    IdType,
    NotifyType,
    PayloadType,
    ProtocolId,
    TransformType,
    TsType,
)
from ikesim.wire.message import Message
from ikesim.wire.payloads import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    CpAttribute,
    CpPayload,
    DeletePayload,
    EapPayload,
    IdiPayload,
    IdrPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    SkfPayload,
    SkPayload,
    TrafficSelector,
    Transform,
    TransformAttribute,
    TsiPayload,
    TsrPayload,
    UnknownPayload,
    VendorPayload,
)

KNOWN_TYPES = frozenset({*range(33, 49), 53})
"""Payload types the codec parses into a dedicated class (SA..EAP, SKF)."""

UNKNOWN_TYPES = [t for t in range(1, 256) if t not in KNOWN_TYPES]


def enum_values(enum_cls: type[IntEnum], bits: int) -> st.SearchStrategy[IntEnum]:
    """A known member, or any value of the field's width (the tolerant enum's UNKNOWN_<n>)."""
    return st.one_of(st.sampled_from(list(enum_cls)), st.integers(0, 2**bits - 1).map(enum_cls))


small = st.binary(max_size=24)
u8, u16 = st.integers(0, 0xFF), st.integers(0, 0xFFFF)
critical = st.booleans()

attribute = st.one_of(
    st.builds(TransformAttribute, st.integers(0, 0x7FFF), u16),  # TV
    st.builds(TransformAttribute, st.integers(0, 0x7FFF), st.binary(max_size=8)),  # TLV
)
transform = st.builds(Transform, enum_values(TransformType, 8), u16, st.lists(attribute, max_size=3).map(tuple))
proposal = st.builds(Proposal, u8, enum_values(ProtocolId, 8), st.binary(max_size=8),
                     st.lists(transform, max_size=5).map(tuple))


@st.composite
def selectors(draw: st.DrawFn) -> TrafficSelector:
    """An IPv4 or IPv6 range selector with addresses of the matching size."""
    ts_type = draw(st.sampled_from([TsType.TS_IPV4_ADDR_RANGE, TsType.TS_IPV6_ADDR_RANGE]))
    n = 4 if ts_type == TsType.TS_IPV4_ADDR_RANGE else 16
    addr = st.binary(min_size=n, max_size=n)
    return TrafficSelector(ts_type, draw(u8), draw(u16), draw(u16), draw(addr), draw(addr))


@st.composite
def deletes(draw: st.DrawFn) -> DeletePayload:
    """A Delete payload whose SPIs all have the announced size (0 for IKE)."""
    size = draw(st.sampled_from([0, 4, 8, 2]))
    spis = draw(st.lists(st.binary(min_size=size, max_size=size), max_size=4))
    return DeletePayload(protocol=draw(enum_values(ProtocolId, 8)), spi_size=size, spis=tuple(spis),
                         critical=draw(critical))


plain_payloads: st.SearchStrategy[Payload] = st.one_of(
    st.builds(SaPayload, proposals=st.lists(proposal, max_size=3).map(tuple), critical=critical),
    st.builds(KePayload, group=u16, data=small, critical=critical),
    st.builds(IdiPayload, id_type=enum_values(IdType, 8), data=small, critical=critical),
    st.builds(IdrPayload, id_type=enum_values(IdType, 8), data=small, critical=critical),
    st.builds(CertPayload, encoding=enum_values(CertEncoding, 8), data=small, critical=critical),
    st.builds(CertReqPayload, encoding=enum_values(CertEncoding, 8), data=small, critical=critical),
    st.builds(AuthPayload, method=enum_values(AuthMethod, 8), data=small, critical=critical),
    st.builds(NoncePayload, data=small, critical=critical),
    st.builds(NotifyPayload, notify_type=enum_values(NotifyType, 16), protocol=enum_values(ProtocolId, 8),
              spi=st.binary(max_size=8), data=small, critical=critical),
    deletes(),
    st.builds(VendorPayload, data=small, critical=critical),
    st.builds(TsiPayload, selectors=st.lists(selectors(), max_size=3).map(tuple), critical=critical),
    st.builds(TsrPayload, selectors=st.lists(selectors(), max_size=3).map(tuple), critical=critical),
    st.builds(CpPayload, cfg_type=enum_values(CfgType, 8),
              attributes=st.lists(st.builds(CpAttribute, st.integers(0, 0x7FFF), small), max_size=3).map(tuple),
              critical=critical),
    st.builds(EapPayload, data=small, critical=critical),
    st.builds(UnknownPayload, type_number=st.sampled_from(UNKNOWN_TYPES), data=small, critical=critical),
)
"""Every payload that may appear anywhere in a chain."""

encrypted_payloads: st.SearchStrategy[Payload] = st.one_of(
    st.builds(SkPayload, first_payload=enum_values(PayloadType, 8), data=st.binary(max_size=48), critical=critical),
    st.builds(SkfPayload, first_payload=enum_values(PayloadType, 8), fragment_number=u16, total_fragments=u16,
              data=st.binary(max_size=48), critical=critical),
)
"""SK and SKF: only ever the last payload of a chain."""


@st.composite
def chains(draw: st.DrawFn, max_size: int = 6, encrypted_last: bool | None = None) -> tuple[Payload, ...]:
    """A payload chain; SK/SKF only last (always when *encrypted_last*, never when False, else sometimes)."""
    payloads = draw(st.lists(plain_payloads, max_size=max_size))
    if encrypted_last or (encrypted_last is None and draw(st.booleans())):
        payloads.append(draw(encrypted_payloads))
    return tuple(payloads)


flags = st.sampled_from([HeaderFlag(v) for v in range(0, 0x40, 8)])

header_fields = {
    "spi_i": st.binary(min_size=8, max_size=8),
    "spi_r": st.binary(min_size=8, max_size=8),
    "exchange_type": enum_values(ExchangeType, 8),
    "flags": flags,
    "message_id": st.integers(0, 2**32 - 1),
    "major_version": st.integers(0, 15),
    "minor_version": st.integers(0, 15),
}

messages = st.builds(Message, payloads=chains(), **header_fields)
"""Whole messages, with or without a final SK/SKF payload."""

headers = st.builds(Message, **header_fields)
"""Message headers without payloads (for protect_message)."""
