"""EAP packets in the EAP payload (RFC 3748 §4): codec round trip and the checks strongSwan's ``eap_payload.c``
makes; anything else is MalformedMessage, never another exception."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ikesim.errors import MalformedMessage
from ikesim.wire.eap import EapCode, EapMessage, EapType, parse_eap
from ikesim.wire.payloads import EapPayload
from ikesim.wire.verify import verify_payloads


def test_round_trip() -> None:
    """Request/Response carry Type and Type-Data; Success/Failure are 4 octets."""
    req = EapMessage(EapCode.REQUEST, 9, EapType.MD5, b"\x10" + bytes(16))
    assert req.to_bytes()[:5] == b"\x01\x09\x00\x16\x04" and parse_eap(req.to_bytes()) == req
    assert EapMessage(EapCode.SUCCESS, 9).to_bytes() == b"\x03\x09\x00\x04"
    assert parse_eap(b"\x04\x01\x00\x04") == EapMessage(EapCode.FAILURE, 1)


@pytest.mark.parametrize(("data", "why"), [
    (b"", "at least 4"),
    (b"\x01\x01\x00", "at least 4"),
    (b"\x01\x01\x00\x09\x04", "Length 9"),
    (b"\x03\x01\x00\x05\x00", "Success/Failure with data"),
    (b"\x05\x01\x00\x05\x01", "Code 5"),
    (b"\x02\x01\x00\x04", "without a Type"),
])
def test_malformed(data: bytes, why: str) -> None:
    """strongSwan ``eap_payload.c`` verify and RFC 3748 §4.1: each offence named."""
    with pytest.raises(MalformedMessage, match=why):
        parse_eap(data)
    with pytest.raises(MalformedMessage):
        verify_payloads([EapPayload(data)])


@given(st.binary(max_size=40))
def test_any_bytes_parse_or_raise_malformed(data: bytes) -> None:
    """h11's fuzz rule for the EAP parser."""
    try:
        msg = parse_eap(data)
    except MalformedMessage:
        return
    assert msg.to_bytes() == data
