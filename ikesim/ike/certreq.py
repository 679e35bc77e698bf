"""CERTREQ payloads: which CAs this node trusts (RFC 7296 §3.7).

Sent by the responder in IKE_SA_INIT and by the initiator in IKE_AUTH (RFC 7296 §1.2), so both
``ike_sa_init`` and ``ike_auth`` use it; it lives here so neither imports the other for it.
"""

from __future__ import annotations

from ikesim.crypto.auth import cert_request_hash
from ikesim.ike.config import AuthMethodName
from ikesim.ike.profile import ConnectionProfile
from ikesim.wire.payloads import CertReqPayload, Payload

__all__ = ["certreq_payloads"]


def certreq_payloads(profile: ConnectionProfile) -> list[Payload]:
    """RFC 7296 §3.7: one CERTREQ with the SHA-1 SPKI hash of every trust anchor; none with PSK."""
    creds = profile.connection.credentials
    if creds.method is AuthMethodName.PSK or not creds.trust_anchors:
        return []
    data = b"".join(cert_request_hash(ca) for ca in creds.trust_anchors)
    return [CertReqPayload(data=data)]
