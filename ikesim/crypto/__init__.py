"""ikesim.crypto: IKEv2 cryptography through ``cryptography`` (RFC 7296 §2.13-2.18, §2.23, §3.14; RFC 5282; RFC 7427).

Sans-IO: randomness comes from an injected ``Rng``; every primitive call
counts one operation on an optional ``OpCounter`` (names in ``meter``).
"""

from __future__ import annotations

from ikesim.crypto.auth import (
    cert_request_hash,
    make_ca,
    make_end_entity,
    psk_auth,
    sign_auth,
    signed_octets,
    verify_auth,
    verify_certificate,
)
from ikesim.crypto.ke import KeyExchange, new_key_exchange, respond_key_exchange, supported_groups
from ikesim.crypto.meter import OpCounter
from ikesim.crypto.natd import cookie_value, natd_hash
from ikesim.crypto.prf import (
    ChildKeys,
    IkeKeys,
    compute_rekey_skeyseed,
    compute_skeyseed,
    derive_child_keys,
    derive_ike_keys,
    prf,
    prf_plus,
)
from ikesim.crypto.proposal_lists import parse_proposals
from ikesim.crypto.sk import SkProtector, make_sk_protectors
from ikesim.crypto.suites import KE_GROUPS_SUPPORTED, ProposalSpec, Suite, parse_proposal, select_proposal

__all__ = [
    "KE_GROUPS_SUPPORTED",
    "ChildKeys",
    "IkeKeys",
    "KeyExchange",
    "OpCounter",
    "ProposalSpec",
    "SkProtector",
    "Suite",
    "cert_request_hash",
    "compute_rekey_skeyseed",
    "compute_skeyseed",
    "cookie_value",
    "derive_child_keys",
    "derive_ike_keys",
    "make_ca",
    "make_end_entity",
    "make_sk_protectors",
    "natd_hash",
    "new_key_exchange",
    "parse_proposal",
    "parse_proposals",
    "prf",
    "prf_plus",
    "psk_auth",
    "respond_key_exchange",
    "select_proposal",
    "sign_auth",
    "signed_octets",
    "supported_groups",
    "verify_auth",
    "verify_certificate",
]
