"""Real strongSwan 5.9.8 traffic: every message round-trips, decodes to what tshark shows, and decrypts.

Expected values come from the captures' own ground truth: ``tshark`` (with
the Wireshark key tables in the vectors directory) and the README.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from vectors import ike_messages
from wire_helpers import CAPTURES, CHILDFAIL_CAPTURE, REKEY_CAPTURE, SCAPY_CAPTURE, CaptureOpener

from ikesim.wire.codec import parse_message, serialize_message, serialize_payloads, unprotect_message
from ikesim.wire.iana import (
    AuthMethod,
    EncrId,
    ExchangeType,
    HeaderFlag,
    IdType,
    IntegId,
    KeGroup,
    NotifyType,
    PayloadType,
    PrfId,
    ProtocolId,
    TransformType,
)
from ikesim.wire.message import Message
from ikesim.wire.payloads import (
    AuthPayload,
    IdiPayload,
    IdrPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    SaPayload,
    SkPayload,
    TsiPayload,
    TsrPayload,
)

P = PayloadType
N = NotifyType

# tshark -T fields -e isakmp.length, per capture.
IKE_LENGTHS = {
    REKEY_CAPTURE: [232, 240, 255, 202, 189, 177, 69, 69, 181, 181, 65, 57, 464, 472, 320, 224, 65, 57, 80, 80],
    CHILDFAIL_CAPTURE: [232, 240, 255, 126, 65, 57],
    SCAPY_CAPTURE: [144, 160],
}

# Payload types after decryption, per message of ike_gcm_cbc_rekey.pcap (tshark with keys/ikev2_decryption_table).
SA_INIT_I, SA_INIT_R = [P.SA, P.KE, P.NONCE] + [P.NOTIFY] * 5, [P.SA, P.KE, P.NONCE] + [P.NOTIFY] * 6
REKEY_PAYLOADS: list[list[PayloadType]] = [
    SA_INIT_I, SA_INIT_R,
    [P.IDi, P.NOTIFY, P.IDr, P.AUTH, P.SA, P.TSi, P.TSr, P.NOTIFY, P.NOTIFY, P.NOTIFY],
    [P.IDr, P.AUTH, P.SA, P.TSi, P.TSr],
    [P.NOTIFY, P.SA, P.NONCE, P.TSi, P.TSr], [P.SA, P.NONCE, P.TSi, P.TSr],
    [P.DELETE], [P.DELETE],
    [P.SA, P.NONCE, P.KE], [P.SA, P.NONCE, P.KE],
    [P.DELETE], [],
    SA_INIT_I, SA_INIT_R,
    [P.IDi, P.IDr, P.AUTH, P.SA, P.TSi, P.TSr] + [P.NOTIFY] * 6,
    [P.IDr, P.AUTH, P.SA, P.TSi, P.TSr],
    [P.DELETE], [], [P.DELETE], [],
]
# Notify types per message (same source), for the messages that carry any.
REKEY_NOTIFIES = {
    0: [N.NAT_DETECTION_SOURCE_IP, N.NAT_DETECTION_DESTINATION_IP, N.IKEV2_FRAGMENTATION_SUPPORTED,
        N.SIGNATURE_HASH_ALGORITHMS, N.REDIRECT_SUPPORTED],
    1: [N.NAT_DETECTION_SOURCE_IP, N.NAT_DETECTION_DESTINATION_IP, N.IKEV2_FRAGMENTATION_SUPPORTED,
        N.SIGNATURE_HASH_ALGORITHMS, N.CHILDLESS_IKEV2_SUPPORTED, N.MULTIPLE_AUTH_SUPPORTED],
    2: [N.INITIAL_CONTACT, N.MULTIPLE_AUTH_SUPPORTED, N.EAP_ONLY_AUTHENTICATION, N.IKEV2_MESSAGE_ID_SYNC_SUPPORTED],
    4: [N.REKEY_SA],
    14: [N.MOBIKE_SUPPORTED, N.ADDITIONAL_IP4_ADDRESS, N.ADDITIONAL_IP6_ADDRESS, N.MULTIPLE_AUTH_SUPPORTED,
         N.EAP_ONLY_AUTHENTICATION, N.IKEV2_MESSAGE_ID_SYNC_SUPPORTED],
}


def open_all(raw_messages: list[bytes], opener: Callable[[Message, str], CaptureOpener], table: str) -> list[Message]:
    """Parse every message; decrypt the ones with an SK payload using *table*'s keys."""
    out = []
    for raw in raw_messages:
        m = parse_message(raw)
        if m.payloads and isinstance(m.payloads[-1], SkPayload):
            m = unprotect_message(raw, opener(m, table), outer=m)
        out.append(m)
    return out


@pytest.mark.parametrize("capture", CAPTURES)
def test_every_captured_message_round_trips_byte_for_byte(vectors_dir: Path, capture: str) -> None:
    """Each IKE message parses, has the length tshark reports, and re-serializes to identical bytes."""
    raws = ike_messages(vectors_dir / capture)
    assert [len(r) for r in raws] == IKE_LENGTHS[capture]
    for raw in raws:
        assert serialize_message(parse_message(raw)) == raw


def test_first_ike_sa_init_request_decodes_exactly(rekey_messages: list[bytes]) -> None:
    """Message 1: IKE_SA_INIT request, SPIi 293e78b0f2fe17a2, SA(AES-GCM-16/128, PRF-SHA256, X25519), KE, Ni, 5 notifies."""
    m = parse_message(rekey_messages[0])
    assert (m.spi_i.hex(), m.spi_r, m.exchange_type, m.flags, m.message_id) == (
        "293e78b0f2fe17a2", bytes(8), ExchangeType.IKE_SA_INIT, HeaderFlag.INITIATOR, 0)
    assert (m.major_version, m.minor_version, m.encrypted, m.is_request) == (2, 0, False, True)
    assert [p.payload_type for p in m.payloads] == SA_INIT_I
    assert [p.notify_type for p in m.get_all(NotifyPayload)] == REKEY_NOTIFIES[0]
    sa = m.get(SaPayload)
    assert sa is not None and not sa.critical
    (prop,) = sa.proposals
    assert (prop.number, prop.protocol, prop.spi) == (1, ProtocolId.IKE, b"")
    assert [(t.transform_type, t.transform_id, t.key_length) for t in prop.transforms] == [
        (TransformType.ENCR, EncrId.ENCR_AES_GCM_16, 128),
        (TransformType.PRF, PrfId.PRF_HMAC_SHA2_256, None),
        (TransformType.KE, KeGroup.CURVE25519, None),
    ]
    ke = m.get(KePayload)
    assert ke is not None and ke.group == KeGroup.CURVE25519 and len(ke.data) == 32
    nonce = m.get(NoncePayload)
    assert nonce is not None and len(nonce.data) == 32
    sig_hashes = m.get_all(NotifyPayload)[3].data  # RFC 7427 §4: SHA2-256, SHA2-384, SHA2-512, Identity
    assert sig_hashes == bytes.fromhex("0002000300040005")


def test_second_ike_sa_uses_cbc_sha256_modp2048(rekey_messages: list[bytes]) -> None:
    """Message 13 proposes AES-CBC-256, HMAC-SHA2-256-128, PRF-SHA256, MODP-2048 with a 256-byte KE."""
    m = parse_message(rekey_messages[12])
    assert m.spi_i.hex() == "9fd2a0469c49bcf7" and m.exchange_type == ExchangeType.IKE_SA_INIT
    sa = m.get(SaPayload)
    assert sa is not None
    assert [(t.transform_type, t.transform_id, t.key_length) for t in sa.proposals[0].transforms] == [
        (TransformType.ENCR, EncrId.ENCR_AES_CBC, 256),
        (TransformType.INTEG, IntegId.AUTH_HMAC_SHA2_256_128, None),
        (TransformType.PRF, PrfId.PRF_HMAC_SHA2_256, None),
        (TransformType.KE, KeGroup.MODP_2048, None),
    ]
    ke = m.get(KePayload)
    assert ke is not None and ke.group == KeGroup.MODP_2048 and len(ke.data) == 256


def test_exchange_mix_and_header_facts(rekey_messages: list[bytes]) -> None:
    """The capture holds 20 messages: 2 IKE_SA_INIT, 2 IKE_AUTH, 2 CREATE_CHILD_SA and 4 INFORMATIONAL exchanges."""
    msgs = [parse_message(r) for r in rekey_messages]
    assert Counter(m.exchange_type for m in msgs) == {
        ExchangeType.IKE_SA_INIT: 4, ExchangeType.IKE_AUTH: 4, ExchangeType.CREATE_CHILD_SA: 4,
        ExchangeType.INFORMATIONAL: 8}
    assert [m.is_response for m in msgs] == [False, True] * 10
    assert all(m.from_original_initiator for m in msgs[::2])  # the initiator 127.0.0.2 started every exchange
    assert [m.message_id for m in msgs] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 0, 0, 1, 1, 0, 0, 2, 2]
    assert [m.spi_i.hex()[:4] for m in msgs[16:18]] == ["a45f", "a45f"]  # the rekeyed IKE_SA's delete
    # Everything after IKE_SA_INIT is one SK payload (tshark: header Next Payload 46).
    for i, m in enumerate(msgs):
        if m.exchange_type != ExchangeType.IKE_SA_INIT:
            (sk,) = m.payloads
            assert isinstance(sk, SkPayload), i
            assert sk.first_payload == (REKEY_PAYLOADS[i][0] if REKEY_PAYLOADS[i] else PayloadType.NONE)


def test_decrypted_inner_payloads_match_tshark(rekey_messages: list[bytes],
                                               capture_opener: Callable[[Message, str], CaptureOpener]) -> None:
    """With the logged keys, unprotect_message yields the payloads tshark decodes, message by message."""
    msgs = open_all(rekey_messages, capture_opener, "keys/ikev2_decryption_table")
    assert [[p.payload_type for p in m.payloads] for m in msgs] == REKEY_PAYLOADS
    assert [m.encrypted for m in msgs] == [m.exchange_type != ExchangeType.IKE_SA_INIT for m in msgs]
    for i, expected in REKEY_NOTIFIES.items():
        assert [n.notify_type for n in msgs[i].get_all(NotifyPayload)] == expected, i


def test_ike_auth_request_contents(rekey_messages: list[bytes],
                                   capture_opener: Callable[[Message, str], CaptureOpener]) -> None:
    """Message 3 (IKE_AUTH): IDi init@sim.test, IDr resp@sim.test, PSK AUTH, ESP SPI 6ffe8912, host-to-host TS."""
    (m,) = open_all(rekey_messages[2:3], capture_opener, "keys/ikev2_decryption_table")
    assert m.get(IdiPayload) == IdiPayload(id_type=IdType.ID_RFC822_ADDR, data=b"init@sim.test")
    assert m.get(IdrPayload) == IdrPayload(id_type=IdType.ID_RFC822_ADDR, data=b"resp@sim.test")
    auth = m.get(AuthPayload)
    assert auth is not None and auth.method == AuthMethod.SHARED_KEY_MIC and len(auth.data) == 32
    sa = m.get(SaPayload)
    assert sa is not None and (sa.proposals[0].protocol, sa.proposals[0].spi.hex()) == (ProtocolId.ESP, "6ffe8912")
    tsi, tsr = m.get(TsiPayload), m.get(TsrPayload)
    assert tsi is not None and tsr is not None
    assert [str(s) for s in tsi.selectors] == ["127.0.0.2-127.0.0.2[0-65535]"]
    assert [str(s) for s in tsr.selectors] == ["127.0.0.1-127.0.0.1[0-65535]"]


@pytest.mark.parametrize(("capture", "table"), [
    (REKEY_CAPTURE, "keys/ikev2_decryption_table"),
    (CHILDFAIL_CAPTURE, "childfail/ikev2_decryption_table"),
])
def test_decrypted_chains_re_serialize_to_the_plaintext(vectors_dir: Path, capture: str, table: str,
                                                        capture_opener: Callable[[Message, str], CaptureOpener]) -> None:
    """For each SK payload, serializing the inner payloads gives back the decrypted plaintext exactly."""
    opened = 0
    for raw in ike_messages(vectors_dir / capture):
        outer = parse_message(raw)
        sk = outer.payloads[-1] if outer.payloads else None
        if not isinstance(sk, SkPayload):
            continue
        opener = capture_opener(outer, table)
        plaintext = opener.open(raw[: len(raw) - len(sk.data)], sk.data)
        inner = unprotect_message(raw, opener).payloads
        assert serialize_payloads(inner) == (sk.first_payload, plaintext)
        opened += 1
    assert opened == {REKEY_CAPTURE: 16, CHILDFAIL_CAPTURE: 4}[capture]  # README: tshark decrypts 16 frames


def test_childfail_ike_auth_answers_no_proposal_chosen(vectors_dir: Path,
                                                       capture_opener: Callable[[Message, str], CaptureOpener]) -> None:
    """childfail: the IKE_AUTH response is IDr, AUTH, N(NO_PROPOSAL_CHOSEN) — no SA, no TS."""
    msgs = open_all(ike_messages(vectors_dir / CHILDFAIL_CAPTURE), capture_opener, "childfail/ikev2_decryption_table")
    resp = msgs[3]
    assert (resp.exchange_type, resp.is_response) == (ExchangeType.IKE_AUTH, True)
    assert [p.payload_type for p in resp.payloads] == [P.IDr, P.AUTH, P.NOTIFY]
    (n,) = resp.get_all(NotifyPayload)
    assert n.notify_type == N.NO_PROPOSAL_CHOSEN and n.notify_type.is_error and (n.spi, n.data) == (b"", b"")


def test_scapy_sa_init_and_strongswan_reply(vectors_dir: Path) -> None:
    """The hand-built request has SA, KE, Ni only; strongSwan answers with 2 notifies more and picks X25519."""
    req, resp = (parse_message(r) for r in ike_messages(vectors_dir / SCAPY_CAPTURE))
    assert req.spi_i.hex() == "bbfea7d56db20505" and resp.spi_r.hex() == "f60b1c667a924f4c"
    assert [p.payload_type for p in req.payloads] == [P.SA, P.KE, P.NONCE]
    assert [p.payload_type for p in resp.payloads] == [P.SA, P.KE, P.NONCE, P.NOTIFY, P.NOTIFY]
    assert [n.notify_type for n in resp.get_all(NotifyPayload)] == [N.CHILDLESS_IKEV2_SUPPORTED, N.MULTIPLE_AUTH_SUPPORTED]
    sa = resp.get(SaPayload)
    assert sa is not None and [t.transform_id for t in sa.proposals[0].transforms] == [
        EncrId.ENCR_AES_GCM_16, PrfId.PRF_HMAC_SHA2_256, KeGroup.CURVE25519]
