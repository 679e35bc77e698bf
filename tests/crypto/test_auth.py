"""AUTH payload computation and certificate handling (RFC 7296 §2.15, §3.7; RFC 7427)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

from ikesim.crypto.auth import (
    cert_request_hash,
    load_certificate,
    make_ca,
    make_end_entity,
    psk_auth,
    sign_auth,
    signed_octets,
    verify_auth,
    verify_certificate,
)
from ikesim.crypto.meter import OpCounter
from ikesim.errors import AuthenticationFailed
from ikesim.rng import Rng
from ikesim.wire.iana import AuthMethod, PrfId


def test_psk_auth_and_signed_octets_formulae() -> None:
    """AUTH = prf(prf(PSK, "Key Pad for IKEv2"), msg | nonce | prf(SK_p, IDx')), HMAC-SHA-384 here."""
    octets = signed_octets(b"MSG", b"NONCE", PrfId.PRF_HMAC_SHA2_384, b"skp", b"\x02\x00\x00\x00id")
    assert octets == b"MSGNONCE" + hmac.digest(b"skp", b"\x02\x00\x00\x00id", "sha384")
    meter = OpCounter()
    inner = hmac.digest(b"psk", b"Key Pad for IKEv2", "sha384")
    assert psk_auth(PrfId.PRF_HMAC_SHA2_384, b"psk", octets, meter) == hmac.digest(inner, octets, "sha384")
    assert meter.counts["prf"] == 2


def test_ecdsa_auth_layout_and_raw_p256_method() -> None:
    """RFC 7427 data is 12 | ecdsa-with-SHA256 AlgorithmIdentifier | DER sig; method 9 (r|s raw) also verifies."""
    key, cert = make_ca(Rng(7), "CA", "ecdsa")
    method, data = sign_auth(key, b"octets")
    assert method == AuthMethod.DIGITAL_SIGNATURE and data[0] == 12
    assert data[1:13] == bytes.fromhex("300a06082a8648ce3d040302")
    r, s = decode_dss_signature(data[13:])
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert verify_auth(AuthMethod.ECDSA_SHA256_P256, raw, b"octets", cert.public_key())
    assert not verify_auth(AuthMethod.ECDSA_SHA256_P256, raw, b"octetz", cert.public_key())
    cert.public_key().verify(data[13:], b"octets", ec.ECDSA(hashes.SHA256()))  # plain DER ECDSA


def test_verify_rejects_mismatched_algorithm_or_garbage() -> None:
    """An Ed25519 signature never verifies under an ECDSA key, nor does truncated or empty data."""
    ed_key, _ = make_ca(Rng(8), "CA", "ed25519")
    ec_key, ec_cert = make_ca(Rng(9), "CA", "ecdsa")
    _, ed_data = sign_auth(ed_key, b"o")
    _, ec_data = sign_auth(ec_key, b"o")
    assert ed_data[:8] == bytes.fromhex("07300506032b6570")
    assert not verify_auth(14, ed_data, b"o", ec_cert.public_key())
    assert not verify_auth(14, ec_data[:-3], b"o", ec_cert.public_key())
    assert not verify_auth(14, b"", b"o", ec_cert.public_key())
    assert not verify_auth(AuthMethod.SHARED_KEY_MIC, ec_data, b"o", ec_cert.public_key())
    assert verify_auth(14, ec_data, b"o", ec_cert.public_key())


def test_end_entity_san_types_and_fixed_validity() -> None:
    """SAN is rfc822Name for user@host, IP for addresses, DNS otherwise; validity is fixed 2025-2045."""
    ca_key, ca = make_ca(Rng(10), "CA")
    for identity, kind in (("alice@sim.test", x509.RFC822Name), ("10.1.2.3", x509.IPAddress),
                           ("gw.sim.test", x509.DNSName)):
        _, cert = make_end_entity(Rng(11, identity), ca_key, ca, identity)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        values = san.get_values_for_type(kind)
        expected = ipaddress.ip_address(identity) if kind is x509.IPAddress else identity
        assert values == [expected]
        assert (cert.not_valid_before_utc.year, cert.not_valid_after_utc.year) == (2025, 2045)
        assert verify_certificate(cert, (ca,), identity).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) == cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_cert_request_hash_is_sha1_of_spki() -> None:
    """CERTREQ CA hash = SHA-1 over the CA's DER SubjectPublicKeyInfo."""
    _, ca = make_ca(Rng(12), "CA", "ed25519")
    spki = ca.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert cert_request_hash(ca) == hashlib.sha1(spki).digest()


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


_HOSTILE = {
    "intermediate_unparsable_extension": (lambda pki: pki.intermediate_with_unparsable_extension(), "ValueError"),
    "issuer_attribute_integer": (lambda pki: pki.issuer_with_bad_attribute(0x02), "KeyError"),
    "issuer_attribute_bit_string": (lambda pki: pki.issuer_with_bad_attribute(0x03), "TypeError"),
    "ca_resigned_unsupported_curve": (lambda pki: pki.ca_resigned_on_unsupported_curve(), "UnsupportedAlgorithm"),
    "unparsable_subject_alt_name": (lambda pki: pki.unparsable_subject_alt_name(), "ValueError"),
}


@pytest.mark.parametrize("case", sorted(_HOSTILE))
def test_hostile_certificate_is_authentication_failed(case: str) -> None:
    """A CERT chain cryptography cannot parse or use is AuthenticationFailed naming the failure (RFC 7296 §2.21.2)."""
    from hostile_certs import IDENTITY, make_pki

    build, error = _HOSTILE[case]
    pki = make_pki()
    cert, intermediates = build(pki)
    with pytest.raises(AuthenticationFailed, match=f"^unusable certificate: {error}: "):
        verify_certificate(cert, (pki.ca,), IDENTITY, intermediates)


def test_certificate_with_rsa_key_is_not_usable_for_auth() -> None:
    """A valid chain to an RSA key: RFC 7427 AUTH here is ECDSA P-256 / Ed25519 only, so AuthenticationFailed."""
    from hostile_certs import IDENTITY, make_pki

    pki = make_pki()
    cert, _ = pki.rsa_end_entity()
    with pytest.raises(AuthenticationFailed, match="^certificate key .*RSA.* is not usable for AUTH$"):
        verify_certificate(cert, (pki.ca,), IDENTITY)
    assert verify_auth(AuthMethod.DIGITAL_SIGNATURE, b"\x0c" + bytes.fromhex("300a06082a8648ce3d040302") + b"sig",
                       b"octets", cert.public_key()) is False


def test_non_ascii_identity_is_authentication_failed() -> None:
    """An IDi that cannot be a subjectAltName (non-ASCII) is AuthenticationFailed, not ValueError."""
    ca_key, ca = make_ca(Rng(13), "CA")
    _, cert = make_end_entity(Rng(14), ca_key, ca, "gw.sim.test")
    with pytest.raises(AuthenticationFailed, match="cannot be a subjectAltName"):
        verify_certificate(cert, (ca,), "g\ufffdw@sim.test")


def test_unparsable_der_is_authentication_failed() -> None:
    """CERT data that is not DER X.509 is AuthenticationFailed (RFC 7296 §3.6)."""
    with pytest.raises(AuthenticationFailed, match="^unparsable certificate"):
        load_certificate(b"\x30\x03\x02\x01\x05")



def _negative_serial(der: bytes, tbs: bytes, signature: bytes, ca_key: ed25519.Ed25519PrivateKey) -> tuple[bytes, int]:
    """*der* with its serial made negative (high bit of its first octet set), the TBS signed anew by *ca_key*;
    and that serial."""
    at = tbs.index(bytes.fromhex("a003020102")) + 5 + 2  # version [0] v3, then the serial's INTEGER tag and length
    serial = tbs[at:at + tbs[at - 1]]
    assert serial[0] < 0x80
    bad = bytes([serial[0] | 0x80]) + serial[1:]
    bad_tbs = tbs[:at] + bad + tbs[at + len(bad):]
    return der.replace(tbs, bad_tbs).replace(signature, ca_key.sign(bad_tbs)), int.from_bytes(bad, signed=True)


def test_negative_serial_certificate_loads_without_a_warning_escaping() -> None:
    """cryptography's CryptographyDeprecationWarning for a serial that is not positive (RFC 5280 §4.1.2.2) stays
    inside load_certificate: under warnings-as-errors (pytest -W error) the chain is still judged, nothing raises."""
    ca_key, ca = make_ca(Rng(15), "CA", "ed25519")
    _, cert = make_end_entity(Rng(16), ca_key, ca, "gw.sim.test")
    der, serial = _negative_serial(cert.public_bytes(Encoding.DER), cert.tbs_certificate_bytes, cert.signature, ca_key)
    assert serial < 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_certificate(der)
        key = verify_certificate(der, (ca,), "gw.sim.test")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reading the serial warns again: the test's own read
        assert loaded.serial_number == serial
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_bytes(Encoding.DER, spki) == cert.public_key().public_bytes(Encoding.DER, spki)
