"""Events of EAP in IKE_AUTH (RFC 7296 §2.16) and of the AAA backend the EAP server waits for.

Part of the event catalogue ``ikesim.ike.events`` (which re-exports them; same conventions): ``ike.eap_auth`` emits
them. ``round`` counts the IKE_AUTH exchanges of one IKE_SA, 1 for the first.
"""

from __future__ import annotations

from dataclasses import dataclass

from ikesim.ike.event_base import IkeEvent

__all__ = ["EapRound", "EapCompleted", "AaaRequested"]


@dataclass(slots=True, kw_only=True)
class EapRound(IkeEvent):
    """This node sent an EAP message in IKE_AUTH round *round* (RFC 7296 §2.16, RFC 3748 §4)."""

    eap_method: str
    """``md5``, ``mschapv2`` or ``tls``."""
    round: int
    eap_code: str
    """REQUEST, RESPONSE, SUCCESS or FAILURE."""
    eap_type: str
    """IDENTITY, NAK, MD5, MSCHAPV2, TLS, or "" for Success/Failure."""
    eap_size: int
    """Octets of the EAP message."""


@dataclass(slots=True, kw_only=True)
class EapCompleted(IkeEvent):
    """The EAP conversation ended (RFC 7296 §2.16): ``success`` (then AUTH with the MSK follows) or ``failure``."""

    eap_method: str
    outcome: str
    rounds: int
    """IKE_AUTH exchanges so far, the one carrying EAP-Success/Failure included."""
    msk: bool
    """The method produced an MSK (EAP-MD5 does not: AUTH then uses SK_pi/SK_pr, strongSwan ``keymat_v2.c``)."""
    eap_identity: str
    resumed: bool = False
    """EAP-TLS: the abbreviated handshake of a resumed TLS session ran (RFC 5216 §2.1.3, RFC 5246 §7.3)."""


@dataclass(slots=True, kw_only=True)
class AaaRequested(IkeEvent):
    """The EAP server waits for its AAA (RADIUS) backend before answering IKE_AUTH round *round*: the driver delivers
    the answer with ``IkeDaemon.deliver_aaa`` (``ike.eap_auth``)."""

    eap_method: str
    round: int
    eap_identity: str
