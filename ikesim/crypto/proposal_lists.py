"""Proposal lists as strongSwan configures them: ``default``, the ``!`` strict suffix, ipsec.conf's appended defaults.

How strongSwan 6.0 builds a configured proposal list (read from its sources):

- swanctl.conf (``vici_config.c``, ``parse_proposal`` / ``add_default_proposals``): each list item is one proposal;
  the item ``default`` stands for strongSwan's two default proposals, non-AEAD then AEAD for IKE, AEAD then non-AEAD
  for ESP; an empty list means ``default``. Nothing is appended to a configured list, and a ``!`` is no keyword there.
- ipsec.conf (``stroke_config.c``, ``add_proposals``): ``ike=``/``esp=`` is a comma-separated list; unless it ends in
  ``!`` (strict), the default proposal and the default AEAD proposal are appended after the configured ones.

ikesim's ``proposals`` lists follow swanctl.conf (the scenario format is swanctl.conf's), so existing scenarios offer
exactly what they list. An item may hold several comma-separated proposals (as in swanctl.conf), may end in ``!``
(accepted: a swanctl list is strict already), and an item that starts with ``ike=`` or ``esp=`` is an ipsec.conf
value: non-strict unless it ends in ``!``, with the defaults appended as charon's stroke backend appends them.

The default proposals (``proposal.c``: ``proposal_create_default``, ``proposal_create_default_aead``) are those of
strongSwan 6.0.6 with its default plugins and the openssl plugin, in the order its rounds add algorithms, restricted
to the algorithms ikesim implements (``DEFAULT_*``; what is left out is listed beside each).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from ikesim.crypto.suites import ProposalSpec, parse_proposal
from ikesim.errors import ConfigError
from ikesim.wire.iana import ProtocolId

__all__ = ["parse_proposals", "expand_proposals", "DEFAULT_IKE", "DEFAULT_IKE_AEAD", "DEFAULT_ESP", "DEFAULT_ESP_AEAD"]

_KE = "ecp256-ecp384-ecp521-ecp256bp-ecp384bp-ecp512bp-x25519-x448-modp3072-modp4096-modp6144-modp8192-modp2048"
"""``add_supported_ke_methods``: ECC first (ecp256/384/521, brainpool 256/384/512, x25519, x448), then MODP >= 3072,
then modp2048 (the openssl plugin's registration order); all of strongSwan's default KE methods."""

DEFAULT_IKE = f"aes128-aes192-aes256-sha256-sha384-sha512-sha1-prfsha256-prfsha384-prfsha512-prfsha1-{_KE}"
"""``proposal_create_default(PROTO_IKE)``; left out: AES-CTR, Camellia, 3DES; AES-XCBC/CMAC integrity and PRFs."""
DEFAULT_IKE_AEAD = f"aes128gcm16-aes192gcm16-aes256gcm16-chacha20poly1305-prfsha256-prfsha384-prfsha512-prfsha1-{_KE}"
"""``proposal_create_default_aead(PROTO_IKE)``; left out: AES-CCM, Camellia-CCM, AES-GCM/CCM with 8/12-octet ICVs,
AES-XCBC/CMAC PRFs."""
DEFAULT_ESP = f"aes128-aes192-aes256-sha256-sha384-sha512-sha1-noesn-{_KE}-none"
"""``proposal_create_default(PROTO_ESP)``: KE methods optional (``none``, strongSwan 6.0); left out: AES-XCBC."""
DEFAULT_ESP_AEAD = f"aes128gcm16-aes192gcm16-aes256gcm16-noesn-{_KE}-none"
"""``proposal_create_default_aead(PROTO_ESP)``, KE methods optional."""

_DEFAULTS = {ProtocolId.IKE: (DEFAULT_IKE, DEFAULT_IKE_AEAD), ProtocolId.ESP: (DEFAULT_ESP, DEFAULT_ESP_AEAD)}
_PREFIX = {ProtocolId.IKE: "ike=", ProtocolId.ESP: "esp="}


def _defaults(protocol: ProtocolId, aead_first: bool) -> list[str]:
    """strongSwan's two default proposals for *protocol* (``proposal.c``), AEAD first or second."""
    if protocol not in _DEFAULTS:
        raise ConfigError(f"no default proposals for protocol {protocol!r}")
    plain, aead = _DEFAULTS[protocol]
    return [aead, plain] if aead_first else [plain, aead]


def expand_proposals(items: Iterable[str], protocol: ProtocolId) -> tuple[str, ...]:
    """RFC 7296 §3.3: the single proposals a configured list stands for, ``default`` and ipsec.conf values expanded."""
    out: list[str] = []
    other = _PREFIX[ProtocolId.ESP if protocol == ProtocolId.IKE else ProtocolId.IKE]
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"a proposal is a string, not {type(item).__name__}")
        text = item.strip()
        low = text.lower()
        if low.startswith(other):
            raise ConfigError(f"proposal {item!r}: an ipsec.conf {other[:-1]}= value in a list of "
                              f"{protocol.name} proposals (write {_PREFIX.get(protocol, '?')}...)")
        stroke = low.startswith(_PREFIX.get(protocol, "\0"))
        if stroke:
            text = text[len(_PREFIX[protocol]):].strip()
        strict = text.endswith("!")
        if strict:
            text = text[:-1].rstrip()
        parts = [p.strip() for p in text.split(",")]
        for part in parts:
            if not part:
                raise ConfigError(f"empty proposal in {item!r} (two commas in a row, or one at an end)")
            if "!" in part:
                raise ConfigError(f"proposal {part!r} in {item!r}: the strict suffix '!' goes only at the very end")
            if part.lower() == "default":
                out += _defaults(protocol, aead_first=protocol != ProtocolId.IKE)  # vici_config.c order
            else:
                out.append(part)
        if stroke and not strict:
            out += _defaults(protocol, aead_first=False)  # stroke_config.c: default, then default AEAD
    if not out:
        raise ConfigError("an empty proposal list (write 'default' for strongSwan's default proposals)")
    return tuple(out)


@lru_cache(maxsize=1024)
def _parse(items: tuple[str, ...], protocol: ProtocolId) -> tuple[ProposalSpec, ...]:
    """``parse_proposals`` once per configured list."""
    return tuple(parse_proposal(text, protocol) for text in expand_proposals(items, protocol))


def parse_proposals(items: Iterable[str], protocol: ProtocolId) -> tuple[ProposalSpec, ...]:
    """RFC 7296 §3.3: a configured proposal list parsed into specs, in preference order (see module for the syntax)."""
    return _parse(tuple(items), protocol)
