"""Crypto unit behaviour: proposals, key exchange, SK protection, signatures, certificates."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from ikesim.crypto.auth import cert_request_hash, make_ca, make_end_entity, sign_auth, verify_auth, verify_certificate
from ikesim.crypto.ke import new_key_exchange
from ikesim.crypto.meter import OpCounter
from ikesim.crypto.prf import IkeKeys, prf_plus
from ikesim.crypto.sk import SkProtector, make_sk_protectors
from ikesim.crypto.suites import Suite, parse_proposal, select_proposal
from ikesim.errors import (
    AuthenticationFailed,
    ConfigError,
    IntegrityCheckFailed,
    InvalidKeyExchangeData,
    NoProposalChosen,
)
from ikesim.rng import Rng
from ikesim.wire.iana import EncrId, IntegId, KeGroup, PrfId, ProtocolId

IKE, ESP = ProtocolId.IKE, ProtocolId.ESP


@pytest.mark.parametrize("text,encr,integ,prf,ke", [
    ("aes256gcm16-prfsha256-x25519", [(20, 256)], [], [5], [31]),
    ("aes128-sha256-modp2048", [(12, 128)], [12], [5], [14]),
    ("aes256-sha384-ecp256", [(12, 256)], [13], [6], [19]),
    ("aes128-aes256-sha256-sha512-x25519-modp2048", [(12, 128), (12, 256)], [12, 14], [5, 7], [31, 14]),
])
def test_parse_ike_proposals(text, encr, integ, prf, ke) -> None:
    """strongSwan IKE proposal strings parse; integrity implies the PRF when none is named."""
    s = parse_proposal(text, IKE)
    assert [(int(e), k) for e, k in s.encr] == encr and list(map(int, s.integ)) == integ
    assert list(map(int, s.prf)) == prf and list(map(int, s.ke)) == ke


def test_parse_esp_proposals_and_pfs() -> None:
    """ESP proposals: a KE group requests PFS; NO_ESN is the default."""
    s = parse_proposal("aes128gcm16-x25519", ESP)
    assert s.ke == (KeGroup.CURVE25519,) and s.prf == () and [int(e) for e in s.esn] == [0]
    assert parse_proposal("aes256-sha256-esn", ESP).esn[0] == 1


@pytest.mark.parametrize("text,protocol,fragment", [
    ("aes256gcm16-prfsha256-x448", IKE, "'x448'"),
    ("aes256gcm16-x25519", IKE, "needs a PRF"),
    ("aes256-prfsha256-x25519", IKE, "integrity"),
    ("aes256gcm16-prfsha256", IKE, "key exchange"),
    ("aes256-sha256-prfsha256", ESP, "cannot carry a PRF"),
])
def test_bad_proposals_name_the_problem(text, protocol, fragment) -> None:
    """A bad proposal string raises ConfigError naming the offending part."""
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        parse_proposal(text, protocol)


def test_select_proposal_follows_offer_order_and_rejects() -> None:
    """RFC 7296 §2.7: the first acceptable offered proposal wins; nothing acceptable gives None."""
    offer = (parse_proposal("aes128-sha256-modp2048", IKE).to_wire(1, IKE, b""),
             parse_proposal("aes256gcm16-prfsha256-x25519", IKE).to_wire(2, IKE, b""))
    mine = [parse_proposal("aes256gcm16-prfsha256-x25519", IKE), parse_proposal("aes128-sha256-modp2048", IKE)]
    answer, suite = select_proposal(offer, mine, IKE)
    assert answer.number == 1 and suite.text == "aes128-sha256-prfsha256-modp2048"
    assert Suite.from_wire(answer) == suite
    assert select_proposal(offer, [parse_proposal("aes256-sha512-ecp256", IKE)], IKE) is None
    with pytest.raises(NoProposalChosen):
        Suite.from_wire(offer[0].__class__(1, IKE, b"", offer[0].transforms + offer[1].transforms))


@pytest.mark.parametrize("group", [14, 19, 31])
def test_key_exchange_agrees_and_is_seeded(group: int) -> None:
    """Both sides derive the same g^ir; the same seed gives the same public value."""
    a, b = new_key_exchange(group, Rng(1, "a")), new_key_exchange(group, Rng(1, "b"))
    assert a.compute_shared(b.public_bytes) == b.compute_shared(a.public_bytes)
    assert new_key_exchange(group, Rng(1, "a")).public_bytes == a.public_bytes
    assert new_key_exchange(group, Rng(2, "a")).public_bytes != a.public_bytes


@pytest.mark.parametrize("group,bad", [
    (31, b"\x00" * 31), (31, b"\x00" * 32), (19, b"\x01" * 64), (19, b"\x00" * 10), (14, b"\x00" * 256),
    (14, (1).to_bytes(256, "big")),
])
def test_invalid_peer_key_exchange_data(group: int, bad: bytes) -> None:
    """Wrong lengths, off-curve points, small-order and degenerate values raise InvalidKeyExchangeData."""
    with pytest.raises(InvalidKeyExchangeData):
        new_key_exchange(group, Rng(3)).compute_shared(bad)


SUITES = [
    Suite(EncrId.ENCR_AES_GCM_16, 128, prf_id=PrfId.PRF_HMAC_SHA2_256, ke_group=KeGroup.CURVE25519),
    Suite(EncrId.ENCR_AES_GCM_16, 256, prf_id=PrfId.PRF_HMAC_SHA2_256, ke_group=KeGroup.CURVE25519),
    Suite(EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA2_256_128, PrfId.PRF_HMAC_SHA2_256, KeGroup.MODP_2048),
    Suite(EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA2_384_192, PrfId.PRF_HMAC_SHA2_384, KeGroup.ECP_256),
    Suite(EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA2_512_256, PrfId.PRF_HMAC_SHA2_512, KeGroup.ECP_256),
]


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.text)
def test_sk_round_trip_tamper_and_determinism(suite: Suite) -> None:
    """Seal/open round-trips for every length, sealed_length is exact, tampering fails, IVs are seeded."""
    km = prf_plus(PrfId.PRF_HMAC_SHA2_256, b"k" * 32, b"seed", 400)
    keys = IkeKeys(km[:32], km[32:32 + suite.integ_key_size], km[32:32 + suite.integ_key_size],
                   km[100:100 + suite.encr_key_size], km[140:140 + suite.encr_key_size], b"", b"")
    meter = OpCounter()
    out_i, in_i = make_sk_protectors(suite, keys, True, Rng(9, "i"), meter)
    out_r, in_r = make_sk_protectors(suite, keys, False, Rng(9, "r"))
    aad = b"H" * 32
    for n in (0, 1, 15, 16, 17, 100):
        body = out_i.seal(aad, bytes(range(n)))
        assert len(body) == out_i.sealed_length(n)
        assert in_r.open(aad, body) == bytes(range(n))
        with pytest.raises(IntegrityCheckFailed):
            in_r.open(aad[:-1] + b"X", body)
    assert meter.counts[f"sk_seal:{suite.encr_name}"] == 6
    again = SkProtector(suite, keys.sk_ei, keys.sk_ai, Rng(9, "i")).seal(aad, b"x")
    assert again == SkProtector(suite, keys.sk_ei, keys.sk_ai, Rng(9, "i")).seal(aad, b"x")


@pytest.mark.parametrize("key_type", ["ecdsa", "ed25519"])
def test_signatures_and_certificates(key_type: str) -> None:
    """RFC 7427 AUTH signs deterministically and verifies; chains and identities are checked."""
    rng = Rng(4)
    ca_key, ca = make_ca(rng.child("ca"), "CA", key_type)
    key, cert = make_end_entity(rng.child("ee"), ca_key, ca, "gw.sim.test", key_type)
    pub = verify_certificate(cert.public_bytes(Encoding.DER), (ca,), "gw.sim.test")
    method, data = sign_auth(key, b"octets")
    assert method == 14 and verify_auth(method, data, b"octets", pub)
    assert not verify_auth(method, data, b"octetz", pub)
    assert sign_auth(key, b"octets") == (method, data)
    _, cert2 = make_end_entity(Rng(4).child("ee"), ca_key, ca, "gw.sim.test", key_type)
    assert cert2 == cert  # same seed, same certificate
    other_key, other_ca = make_ca(Rng(5).child("ca"), "CA", key_type)
    with pytest.raises(AuthenticationFailed, match="chain"):
        verify_certificate(cert, (other_ca,), "gw.sim.test")
    with pytest.raises(AuthenticationFailed, match="identity"):
        verify_certificate(cert, (ca,), "evil.sim.test")
    assert len(cert_request_hash(ca)) == 20
