"""Payload verification after parsing (strongSwan payload_t.verify(); RFC 7296 §3.3.1, §3.9, §3.11, §3.13.1)."""

from __future__ import annotations

import pytest

from ikesim.errors import MalformedMessage
from ikesim.wire.iana import ProtocolId, TsType
from ikesim.wire.payloads import (
    DeletePayload,
    NoncePayload,
    Payload,
    Proposal,
    SaPayload,
    TrafficSelector,
    TsiPayload,
    TsrPayload,
)
from ikesim.wire.verify import verify_payloads

V4 = TsType.TS_IPV4_ADDR_RANGE


def _ts(start_port: int, end_port: int, start: bytes = bytes(4), end: bytes = b"\xff" * 4) -> TrafficSelector:
    return TrafficSelector(V4, 0, start_port, end_port, start, end)


VALID: list[Payload] = [
    SaPayload((Proposal(1, ProtocolId.IKE, b"", ()), Proposal(2, ProtocolId.IKE, bytes(range(8)), ()),
               Proposal(3, ProtocolId.ESP, b"\x00\x00\x01\x00", ()), Proposal(4, ProtocolId.AH, b"abcd", ()))),
    NoncePayload(bytes(16)), NoncePayload(bytes(256)),
    DeletePayload(ProtocolId.IKE, 0, ()), DeletePayload(ProtocolId.ESP, 4, (b"abcd",)),
    TsiPayload((_ts(0, 65535), _ts(80, 80), _ts(65535, 0))),  # the last: OPAQUE ports (§3.13.1)
    TsrPayload((TrafficSelector.from_range("10.0.0.1", "10.0.0.1"),)),
]


def test_valid_payloads_pass() -> None:
    """Every limit value that RFC 7296 allows passes."""
    verify_payloads(VALID)


@pytest.mark.parametrize(("payload", "reason"), [
    (SaPayload((Proposal(1, ProtocolId.ESP, bytes(3), ()),)), "ESP proposal 1 with a 3-byte SPI"),
    (SaPayload((Proposal(2, ProtocolId.AH, bytes(8), ()),)), "AH proposal 2 with a 8-byte SPI"),
    (SaPayload((Proposal(1, ProtocolId.IKE, bytes(4), ()),)), "IKE proposal 1 with a 4-byte SPI"),
    (NoncePayload(bytes(15)), "nonce of 15 bytes (RFC 7296 §3.9: 16..256)"),
    (NoncePayload(bytes(257)), "nonce of 257 bytes (RFC 7296 §3.9: 16..256)"),
    (DeletePayload(ProtocolId.ESP, 8, (bytes(8),)), "Delete for ESP with SPI size 8"),
    (DeletePayload(ProtocolId.IKE, 4, (bytes(4),)), "Delete for IKE with SPI size 4"),
    (DeletePayload(ProtocolId(9), 4, ()), "Delete for protocol 9"),
    (TsiPayload((_ts(443, 80),)), "traffic selector ports 443-80"),
    (TsrPayload((TrafficSelector.from_range("10.0.0.9", "10.0.0.1"),)),
     "traffic selector 10.0.0.9-10.0.0.1: start after end"),
])
def test_each_rule_names_the_offence(payload: Payload, reason: str) -> None:
    """Each forbidden value raises MalformedMessage with an exact reason (the daemon answers INVALID_SYNTAX)."""
    with pytest.raises(MalformedMessage) as err:
        verify_payloads([*VALID, payload])
    assert str(err.value) == reason
