"""AUTH payload computation and verification; in-memory certificates (RFC 7296 §2.15, §3.7; RFC 7427).

Signatures are deterministic (Ed25519; ECDSA with RFC 6979 nonces) and
certificates use fixed validity dates and serials drawn from the ``Rng``, so
the same seed produces the same bytes.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import warnings
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

from ikesim.crypto.meter import OpCounter
from ikesim.crypto.prf import prf
from ikesim.errors import AuthenticationFailed
from ikesim.rng import Rng
from ikesim.wire.iana import AuthMethod

__all__ = [
    "signed_octets",
    "psk_auth",
    "sign_auth",
    "verify_auth",
    "make_ca",
    "make_intermediate",
    "make_end_entity",
    "load_certificate",
    "verify_certificate",
    "cert_request_hash",
    "MAX_TRUST_PATH_LEN",
]

_KEY_PAD = b"Key Pad for IKEv2"
# RFC 7427 Appendix A: DER AlgorithmIdentifiers.
_ALG_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
_ALG_ED25519 = bytes.fromhex("300506032b6570")
_NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
_NOT_AFTER = datetime.datetime(2045, 1, 1, tzinfo=datetime.UTC)
_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
MAX_TRUST_PATH_LEN = 7
"""Most intermediate CA certificates followed from an end entity to a trust anchor (strongSwan's
``MAX_TRUST_PATH_LEN``), so a peer's CERT payloads cannot make chain building cost without bound."""
_UNUSABLE_CERTIFICATE = (
    ValueError,  # DER that does not parse: the certificate, an extension, a name, a public key
    KeyError,  # a name attribute whose ASN.1 string type cryptography does not know
    TypeError,  # a name attribute whose value type does not fit its OID
    UnsupportedAlgorithm,  # a public key on a curve (or of a type) cryptography cannot load
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)
"""What ``cryptography`` raises, lazily, on a peer certificate it cannot parse or use; each becomes
AuthenticationFailed (RFC 7296 §2.21.2)."""


def signed_octets(
    message: bytes, peer_nonce: bytes, prf_id: int, sk_p: bytes, id_body: bytes,
    meter: OpCounter | None = None,
) -> bytes:
    """RFC 7296 §2.15: RealMessage | NonceData | prf(SK_p, IDx')."""
    return message + peer_nonce + prf(prf_id, sk_p, id_body, meter)


def psk_auth(prf_id: int, psk: bytes, octets: bytes, meter: OpCounter | None = None) -> bytes:
    """RFC 7296 §2.15: AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)."""
    return prf(prf_id, prf(prf_id, psk, _KEY_PAD, meter), octets, meter)


def _key_alg(key: Any) -> str:
    """``ed25519``, ``ecdsa`` (P-256 only, RFC 7427 Appendix A) or "" for a key AUTH cannot use."""
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "ed25519"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) and isinstance(key.curve, ec.SECP256R1):
        return "ecdsa"
    return ""


def sign_auth(private_key: Any, octets: bytes, meter: OpCounter | None = None) -> tuple[AuthMethod, bytes]:
    """RFC 7427 §3: Digital Signature AUTH data = len | AlgorithmIdentifier | signature."""
    alg = _key_alg(private_key) or "ecdsa"
    if meter is not None:
        meter.add(f"sign:{alg}")
    if alg == "ed25519":
        return AuthMethod.DIGITAL_SIGNATURE, bytes([len(_ALG_ED25519)]) + _ALG_ED25519 + private_key.sign(octets)
    sig = private_key.sign(octets, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    return AuthMethod.DIGITAL_SIGNATURE, bytes([len(_ALG_ECDSA_SHA256)]) + _ALG_ECDSA_SHA256 + sig


def _ecdsa_raw_to_der(raw: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    half = len(raw) // 2
    return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


def verify_auth(method: int, data: bytes, octets: bytes, public_key: Any, meter: OpCounter | None = None) -> bool:
    """RFC 7427 §3 / RFC 7296 §3.8: verify a signature AUTH payload against *octets*."""
    alg = _key_alg(public_key)
    if not alg:
        return False
    if meter is not None:
        meter.add(f"verify:{alg}")
    try:
        if method == AuthMethod.DIGITAL_SIGNATURE:
            if not data:
                return False
            n = data[0]
            alg_id, sig = data[1 : 1 + n], data[1 + n :]
            if alg == "ed25519" and alg_id == _ALG_ED25519:
                public_key.verify(sig, octets)
                return True
            if alg == "ecdsa" and alg_id == _ALG_ECDSA_SHA256:
                public_key.verify(sig, octets, ec.ECDSA(hashes.SHA256()))
                return True
            return False
        if method == AuthMethod.ECDSA_SHA256_P256 and alg == "ecdsa":
            public_key.verify(_ecdsa_raw_to_der(data), octets, ec.ECDSA(hashes.SHA256()))
            return True
    except (InvalidSignature, ValueError):
        return False
    return False


def _new_key(rng: Rng, key_type: str) -> Any:
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.from_private_bytes(rng.bytes(32))
    if key_type == "ecdsa":
        return ec.derive_private_key(1 + rng.below(_P256_N - 1), ec.SECP256R1())
    raise ValueError(f"unknown key type {key_type!r}")


def _sign_cert(builder: x509.CertificateBuilder, key: Any) -> x509.Certificate:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return builder.sign(key, None)
    return builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)


def _san(identity: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(identity))
    except ValueError:
        pass
    if "@" in identity:
        return x509.RFC822Name(identity)
    return x509.DNSName(identity)


def make_ca(rng: Rng, common_name: str, key_type: str = "ecdsa") -> tuple[Any, x509.Certificate]:
    """A self-signed CA certificate with fixed validity (for RFC 7296 §3.6 CERT payloads)."""
    key = _new_key(rng, key_type)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1 + rng.below(2**63))
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    return key, _sign_cert(builder, key)


def make_intermediate(
    rng: Rng, issuer_key: Any, issuer_cert: x509.Certificate, common_name: str, key_type: str = "ecdsa"
) -> tuple[Any, x509.Certificate]:
    """An intermediate CA certificate issued by *issuer_cert* (a longer chain, RFC 7296 §3.6)."""
    key = _new_key(rng, key_type)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(1 + rng.below(2**63))
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    return key, _sign_cert(builder, issuer_key)


def make_end_entity(
    rng: Rng, ca_key: Any, ca_cert: x509.Certificate, identity: str, key_type: str = "ecdsa"
) -> tuple[Any, x509.Certificate]:
    """An end-entity certificate for *identity* (subjectAltName), issued by the CA."""
    key = _new_key(rng, key_type)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(1 + rng.below(2**63))
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.SubjectAlternativeName([_san(identity)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    return key, _sign_cert(builder, ca_key)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def load_certificate(der: bytes) -> x509.Certificate:
    """Parse a CERT payload's DER X.509 certificate (RFC 7296 §3.6); AuthenticationFailed if it does not parse.

    cryptography warns (``CryptographyDeprecationWarning``) about a serial that is not positive (RFC 5280 §4.1.2.2);
    under ``-W error`` that warning would be an exception escaping ``receive_datagram``, so it is silenced here: the
    peer's certificate is judged by the chain check, like any other.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            return x509.load_der_x509_certificate(der)
    except _UNUSABLE_CERTIFICATE as exc:
        raise AuthenticationFailed(f"unparsable certificate: {exc}") from None


def verify_certificate(cert: x509.Certificate | bytes, trust_anchors: tuple[Any, ...], identity: str,
                       intermediates: tuple[x509.Certificate, ...] = ()) -> Any:
    """RFC 7296 §2.15: check *cert* chains to a trust anchor and names *identity*; return its key.

    *intermediates* are further CERT payloads the peer sent (RFC 7296 §3.6): CA certificates that
    may link *cert* to a trust anchor. ``cryptography`` parses a certificate lazily, so a field the
    peer garbled raises only when read; every such failure is AuthenticationFailed (RFC 7296 §2.21.2).
    """
    if isinstance(cert, bytes):
        cert = load_certificate(cert)
    try:
        return _verify_chain(cert, trust_anchors, identity, intermediates)
    except _UNUSABLE_CERTIFICATE as exc:
        raise AuthenticationFailed(f"unusable certificate: {type(exc).__name__}: {exc}") from None


def _verify_chain(cert: x509.Certificate, trust_anchors: tuple[Any, ...], identity: str,
                  intermediates: tuple[x509.Certificate, ...]) -> Any:
    current = cert
    for _ in range(min(len(intermediates), MAX_TRUST_PATH_LEN) + 1):
        if any(_issued_by(current, ca) for ca in trust_anchors):
            break
        current = next((c for c in intermediates if c is not current and _is_ca(c) and _issued_by(current, c)),
                       None)  # type: ignore[assignment]
        if current is None:
            raise AuthenticationFailed("certificate does not chain to a trusted CA")
    else:
        raise AuthenticationFailed("certificate does not chain to a trusted CA")
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        sans = x509.SubjectAlternativeName([])
    try:
        wanted = _san(identity)
    except ValueError:  # not ASCII, or an e-mail address x509 cannot hold (RFC 5280 §4.2.1.6)
        raise AuthenticationFailed(f"identity {identity!r} cannot be a subjectAltName") from None
    if wanted not in list(sans):
        raise AuthenticationFailed(f"certificate does not name identity {identity!r}")
    key = cert.public_key()
    if not _key_alg(key):
        # RFC 7427 §3: only ECDSA P-256 with SHA-256 and Ed25519 signatures are implemented.
        raise AuthenticationFailed(f"certificate key {type(key).__name__} is not usable for AUTH")
    return key


def cert_request_hash(ca_cert: x509.Certificate) -> bytes:
    """RFC 7296 §3.7: SHA-1 of the CA's SubjectPublicKeyInfo."""
    spki = ca_cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha1(spki).digest()
