"""EAP and AAA in a scenario: ``auth: {eap: ...}`` on a connection and the top-level ``aaa:`` servers.

The initiator authenticates with EAP (RFC 7296 §2.16), the responder with ``auth.method`` (PSK or a certificate)
and runs the EAP server; ``eap.aaa`` names an AAA (RADIUS) server of ``aaa:`` the gateway waits for on every EAP
answer (``ikesim.sim.aaa``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import Field, StrictInt, model_validator

from ikesim.ike.config import AuthMethodName, Credentials
from ikesim.scenario.base import Duration, PositiveDuration, StrictModel

__all__ = ["EapModel", "AaaModel", "eap_credentials"]


class EapModel(StrictModel):
    """The initiator's EAP authentication (RFC 7296 §2.16; strongSwan ``remote { auth = eap-... }``)."""

    method: Literal["md5", "mschapv2", "tls"]
    """EAP-MD5 and EAP-MSCHAPv2 computed for real; EAP-TLS as a size and CPU model (``ikesim.ike.eap_methods``)."""
    identity: str | None = None
    """The EAP identity (default: the initiator's IKE identity)."""
    secret: str | None = None
    """The password (md5, mschapv2)."""
    identity_request: bool = False
    """The gateway asks EAP-Identity first (strongSwan ``eap_id = %any``)."""
    aaa: str | None = None
    """An AAA server of ``aaa:`` the gateway forwards each EAP Response to and waits for."""
    tls_server_chain: StrictInt = Field(default=3500, ge=200, le=65000)
    """EAP-TLS model: octets of the server's Certificate message."""
    tls_client_chain: StrictInt = Field(default=1200, ge=200, le=65000)
    """EAP-TLS model: octets of the client's Certificate message."""
    tls_fragment_size: StrictInt = Field(default=1024, ge=100, le=65000)
    """EAP-TLS model: largest EAP-TLS message (strongSwan ``eap-tls.fragment_size``: 1024)."""
    fast_reauth: bool = False
    """EAP-TLS session resumption on both ends: the next authentication resumes the TLS session with the abbreviated
    handshake (RFC 5216 §2.1.3, RFC 5246 §7.3) if the gateway still has it (``ikesim.ike.tls_sessions``)."""
    tls_session_lifetime: PositiveDuration = 3600.0
    """With ``fast_reauth``: how long after its full handshake a TLS session can be resumed (1 h)."""

    @model_validator(mode="after")
    def _secret_needed(self) -> EapModel:
        if self.method in ("md5", "mschapv2") and not self.secret:
            raise ValueError(f"EAP method {self.method} needs a non-empty secret")
        if self.method == "tls" and self.secret:
            raise ValueError("EAP-TLS takes no secret (it authenticates with certificates)")
        if self.fast_reauth and self.method != "tls":
            raise ValueError(f"fast_reauth (TLS session resumption) needs method tls, not {self.method}")
        if "tls_session_lifetime" in self.model_fields_set and not self.fast_reauth:
            raise ValueError("tls_session_lifetime needs fast_reauth: true")
        return self


class AaaModel(StrictModel):
    """An AAA (RADIUS) server: each request waits in a FIFO queue for one of ``capacity`` slots, then takes
    ``latency`` seconds (``ikesim.sim.aaa``)."""

    latency: Duration = 0.02
    """Seconds from forwarding an EAP Response to the answer (network round trip plus processing)."""
    capacity: StrictInt = Field(default=16, ge=1)
    """Requests served at once; the rest wait in order."""


def eap_credentials(eap: EapModel, initiator_id: str, cred_i: Credentials, cred_r: Credentials
                    ) -> tuple[Credentials, Credentials]:
    """The initiator's EAP client credentials (the responder's AUTH checked as ``cred_r.method``) and the
    responder's with its EAP server (RFC 7296 §2.16)."""
    sizes = (eap.tls_server_chain, eap.tls_client_chain, eap.tls_fragment_size)
    secret = eap.secret or ""
    client = replace(cred_i, method=AuthMethodName(f"eap-{eap.method}"), eap_identity=eap.identity or "",
                     eap_secret=secret, peer_method=cred_r.method, eap_tls_sizes=sizes, private_key=None,
                     certificate=None, intermediates=(), eap_tls_resumption=eap.fast_reauth,
                     eap_tls_session_lifetime=eap.tls_session_lifetime)
    users = tuple(dict.fromkeys((eap.identity or initiator_id, initiator_id)))
    server = replace(cred_r, eap_method=eap.method, eap_users=tuple((u, secret) for u in users),
                     eap_identity_request=eap.identity_request, eap_aaa=eap.aaa is not None, eap_tls_sizes=sizes,
                     eap_tls_resumption=eap.fast_reauth, eap_tls_session_lifetime=eap.tls_session_lifetime)
    return client, server
