"""Certificates a hostile peer can put in CERT payloads (RFC 7296 §3.6), built with cryptography's x509 builder.

Each one makes ``cryptography`` raise lazily (ValueError, KeyError, TypeError, UnsupportedAlgorithm)
when a field is read; ``tests/crypto/test_auth.py`` and ``tests/ike/test_ike_auth.py`` check that
each becomes AuthenticationFailed.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID, NameOID

from ikesim.crypto.auth import make_ca, make_end_entity, make_intermediate
from ikesim.rng import Rng

IDENTITY = "client@sim.test"
_NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
_NOT_AFTER = datetime.datetime(2045, 1, 1, tzinfo=datetime.UTC)
_P256_OID = bytes.fromhex("06082a8648ce3d030107")
"""DER of the curve OID 1.2.840.10045.3.1.7 (P-256) in a SubjectPublicKeyInfo."""


def _cn(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _build(subject: x509.Name, issuer: x509.Name, public_key: Any, signing_key: Any,
           extensions: list[tuple[x509.ExtensionType, bool]]) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(7).not_valid_before(_NOT_BEFORE).not_valid_after(_NOT_AFTER))
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(signing_key, hashes.SHA256(), ecdsa_deterministic=True)


def _retag_first(cert: x509.Certificate, value: bytes, tag: int) -> x509.Certificate:
    """*cert* with the ASN.1 tag of the first string holding *value* replaced by *tag* (the signature is not redone)."""
    der = cert.public_bytes(Encoding.DER)
    at = der.index(bytes([len(value)]) + value) - 1
    return x509.load_der_x509_certificate(der[:at] + bytes([tag]) + der[at + 1:])


@dataclass(frozen=True)
class Pki:
    """A CA (the trust anchor), the client's P-256 key, and the hostile certificate sets."""

    ca_key: Any
    ca: x509.Certificate
    client_key: Any

    def _sub_ca(self) -> tuple[Any, x509.Certificate]:
        return make_intermediate(Rng(11, "sub"), self.ca_key, self.ca, "sub CA")

    def intermediate_with_unparsable_extension(self) -> tuple[x509.Certificate, tuple[x509.Certificate, ...]]:
        """End entity issued by "sub CA"; the "sub CA" certificate's basicConstraints is garbage DER."""
        sub_key, _ = self._sub_ca()
        ee = _build(_cn(IDENTITY), _cn("sub CA"), self.client_key.public_key(), sub_key,
                    [(x509.SubjectAlternativeName([x509.RFC822Name(IDENTITY)]), False)])
        garbage = x509.UnrecognizedExtension(ExtensionOID.BASIC_CONSTRAINTS, b"\x01\x02garbage")
        sub = _build(_cn("sub CA"), self.ca.subject, sub_key.public_key(), self.ca_key, [(garbage, True)])
        return ee, (sub,)

    def issuer_with_bad_attribute(self, tag: int) -> tuple[x509.Certificate, tuple[x509.Certificate, ...]]:
        """End entity whose issuer CN is re-tagged: 0x02 (INTEGER) -> KeyError, 0x03 (BIT STRING) -> TypeError."""
        ee = _build(_cn(IDENTITY), _cn("Issuer CN"), self.client_key.public_key(), self.ca_key,
                    [(x509.SubjectAlternativeName([x509.RFC822Name(IDENTITY)]), False)])
        return _retag_first(ee, b"Issuer CN", tag), ()

    def ca_resigned_on_unsupported_curve(self) -> tuple[x509.Certificate, tuple[x509.Certificate, ...]]:
        """A certificate with the CA's subject whose key's curve OID is 1.2.840.10045.3.1.2 (prime192v2),
        sent along an end entity that claims that CA as issuer: loading its key raises UnsupportedAlgorithm."""
        fake_key = ec.derive_private_key(12345, ec.SECP256R1())
        fake = _build(self.ca.subject, self.ca.subject, fake_key.public_key(), fake_key,
                      [(x509.BasicConstraints(ca=True, path_length=None), True)])
        der = fake.public_bytes(Encoding.DER)
        at = der.index(_P256_OID) + len(_P256_OID) - 1
        fake = x509.load_der_x509_certificate(der[:at] + b"\x02" + der[at + 1:])
        ee = _build(_cn(IDENTITY), self.ca.subject, self.client_key.public_key(), fake_key,
                    [(x509.SubjectAlternativeName([x509.RFC822Name(IDENTITY)]), False)])
        return ee, (fake,)

    def unparsable_subject_alt_name(self) -> tuple[x509.Certificate, tuple[x509.Certificate, ...]]:
        """End entity, correctly issued by the CA, whose subjectAltName extension is garbage DER."""
        garbage = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\xff\xff")
        return _build(_cn(IDENTITY), self.ca.subject, self.client_key.public_key(), self.ca_key,
                      [(garbage, False)]), ()

    def rsa_end_entity(self) -> tuple[x509.Certificate, tuple[x509.Certificate, ...]]:
        """End entity, correctly issued by the CA and naming the identity, with an RSA key (RFC 7427: not ours)."""
        key = rsa.generate_private_key(65537, 1024)
        return _build(_cn(IDENTITY), self.ca.subject, key.public_key(), self.ca_key,
                      [(x509.SubjectAlternativeName([x509.RFC822Name(IDENTITY)]), False)]), ()


def make_pki() -> Pki:
    """The trust anchor "sim CA" and the client's P-256 key (deterministic)."""
    rng = Rng(9, "hostile-pki")
    ca_key, ca = make_ca(rng, "sim CA", "ecdsa")
    client_key, _ = make_end_entity(rng, ca_key, ca, IDENTITY, "ecdsa")
    return Pki(ca_key, ca, client_key)
