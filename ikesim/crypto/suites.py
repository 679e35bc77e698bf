"""Transform registry, strongSwan proposal strings and proposal selection (RFC 7296 §2.7, §3.3).

A ``ProposalSpec`` is what a user configures (``aes256gcm16-prfsha256-x25519``,
possibly several algorithms of each type); a ``Suite`` is what an exchange
negotiated: exactly one transform of each type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from ikesim.crypto.keywords import ENCR_TOKENS, ESN_TOKENS, INTEG_TOKENS, KE_NAMES, KE_TOKENS, PRF_TOKENS, keyword_error
from ikesim.errors import ConfigError, NoProposalChosen
from ikesim.wire.iana import EncrId, EsnId, IntegId, KeGroup, PrfId, ProtocolId, TransformType
from ikesim.wire.payloads import Proposal, Transform

__all__ = [
    "ProposalSpec",
    "Suite",
    "parse_proposal",
    "select_proposal",
    "KE_GROUPS_SUPPORTED",
    "INTEG_SPECS",
    "PRF_HASHES",
]

KE_GROUPS_SUPPORTED = (KeGroup.MODP_2048, KeGroup.ECP_256, KeGroup.CURVE25519, KeGroup.ECP_384, KeGroup.ECP_521,
                       KeGroup.CURVE448, KeGroup.MODP_3072, KeGroup.MODP_4096, KeGroup.MODP_6144, KeGroup.MODP_8192,
                       KeGroup.ECP_256_BP, KeGroup.ECP_384_BP, KeGroup.ECP_512_BP, KeGroup.ML_KEM_512,
                       KeGroup.ML_KEM_768, KeGroup.ML_KEM_1024)

_INTEG_IMPLIES_PRF = {
    IntegId.AUTH_HMAC_SHA1_96: PrfId.PRF_HMAC_SHA1,
    IntegId.AUTH_HMAC_SHA2_256_128: PrfId.PRF_HMAC_SHA2_256,
    IntegId.AUTH_HMAC_SHA2_384_192: PrfId.PRF_HMAC_SHA2_384,
    IntegId.AUTH_HMAC_SHA2_512_256: PrfId.PRF_HMAC_SHA2_512,
}

INTEG_SPECS: dict[int, tuple[str, int, int]] = {
    IntegId.AUTH_HMAC_SHA1_96: ("sha1", 20, 12),
    IntegId.AUTH_HMAC_SHA2_256_128: ("sha256", 32, 16),
    IntegId.AUTH_HMAC_SHA2_384_192: ("sha384", 48, 24),
    IntegId.AUTH_HMAC_SHA2_512_256: ("sha512", 64, 32),
}
"""Integrity id -> (hash name, key bytes, ICV bytes), RFC 2404 §3, RFC 4868 §2."""

PRF_HASHES: dict[int, tuple[str, int]] = {
    PrfId.PRF_HMAC_SHA1: ("sha1", 20),
    PrfId.PRF_HMAC_SHA2_256: ("sha256", 32),
    PrfId.PRF_HMAC_SHA2_384: ("sha384", 48),
    PrfId.PRF_HMAC_SHA2_512: ("sha512", 64),
}
"""PRF id -> (hash name, preferred key bytes), RFC 2104, RFC 4868 §2.1."""

_AEAD = frozenset({EncrId.ENCR_AES_GCM_16, EncrId.ENCR_CHACHA20_POLY1305})
_CHACHA = EncrId.ENCR_CHACHA20_POLY1305


@dataclass(frozen=True, slots=True)
class ProposalSpec:
    """A configured proposal: every algorithm the user allows, by type, in order."""

    text: str
    protocol: ProtocolId
    encr: tuple[tuple[EncrId, int], ...]
    integ: tuple[IntegId, ...]
    prf: tuple[PrfId, ...]
    ke: tuple[KeGroup, ...]
    esn: tuple[EsnId, ...]
    additional: tuple[tuple[KeGroup, ...], ...] = ()
    """RFC 9370 §2.2.1: the methods allowed for ADDITIONAL_KEY_EXCHANGE_1..7 (``ke1_`` .. ``ke7_``), seven entries
    (an empty one is a type not configured) or none at all."""

    def __hash__(self) -> int:
        """The text's (cached by str): equal specs have equal texts, and hashing the fields calls
        ``Enum.__hash__`` in Python for each algorithm, on every cached ``to_wire`` and selection."""
        return hash(self.text)

    def to_wire(self, number: int, protocol: ProtocolId, spi: bytes) -> Proposal:
        """RFC 7296 §3.3.1: the proposal substructure offering every configured algorithm."""
        return Proposal(number, protocol, spi, _offer_transforms(self, protocol))


@lru_cache(maxsize=1024)
def _offer_transforms(spec: ProposalSpec, protocol: ProtocolId) -> tuple[Transform, ...]:
    """RFC 7296 §3.3.2: the transforms *spec* offers, built once per configuration (not per rekey)."""
    ts: list[Transform] = [Transform.make(TransformType.ENCR, e, bits or None) for e, bits in spec.encr]
    if protocol == ProtocolId.IKE:
        ts += [Transform.make(TransformType.PRF, p) for p in spec.prf]
    ts += [Transform.make(TransformType.INTEG, i) for i in spec.integ]
    ts += [Transform.make(TransformType.KE, g) for g in spec.ke]
    for n, methods in enumerate(spec.additional, 1):
        ts += [Transform.make(TransformType(TransformType.KE + 1 + n), g) for g in methods]
    if protocol != ProtocolId.IKE:
        ts += [Transform.make(TransformType.ESN, e) for e in spec.esn]
    return tuple(ts)


def parse_proposal(text: str, protocol: ProtocolId) -> ProposalSpec:
    """Parse one strongSwan proposal string (``aes128-sha256-modp2048``) into a ``ProposalSpec`` (RFC 7296 §3.3).

    A trailing ``!`` (strongSwan's strict marker) is accepted and ignored: one proposal is always strict. Lists,
    ``default`` and ipsec.conf's non-strict lists are ``ikesim.crypto.proposal_lists.parse_proposals``.
    """
    encr: list[tuple[EncrId, int]] = []
    integ: list[IntegId] = []
    prf: list[PrfId] = []
    ke: list[KeGroup] = []
    esn: list[EsnId] = []
    additional: list[list[KeGroup]] = [[] for _ in range(7)]
    body = text.strip().lower()
    if body.endswith("!"):
        body = body[:-1].rstrip()
    if body == "default":
        raise ConfigError(f"proposal {text!r}: 'default' stands for several proposals; use parse_proposals")
    for token in body.split("-"):
        if token in ENCR_TOKENS:
            encr.append(ENCR_TOKENS[token])
        elif token in INTEG_TOKENS:
            integ.append(INTEG_TOKENS[token])
        elif token in PRF_TOKENS:
            prf.append(PRF_TOKENS[token])
        elif token in KE_TOKENS:
            ke.append(KE_TOKENS[token])
        elif token in ESN_TOKENS:
            esn.append(ESN_TOKENS[token])
        elif token[:2] == "ke" and token[2:3] in "1234567" and token[3:4] == "_" and token[4:] in KE_TOKENS:
            additional[int(token[2]) - 1].append(KE_TOKENS[token[4:]])
        else:
            raise ConfigError(keyword_error(token, text))
    if not encr:
        raise ConfigError(f"proposal {text!r} names no encryption algorithm")
    aead = [e for e, _ in encr if e in _AEAD]
    if aead and len(aead) != len(encr):
        raise ConfigError(f"proposal {text!r} mixes AEAD and non-AEAD encryption")
    if not aead and not integ:
        raise ConfigError(f"proposal {text!r} needs an integrity algorithm")
    if aead and integ:
        raise ConfigError(f"proposal {text!r}: AEAD encryption takes no integrity algorithm")
    if protocol == ProtocolId.IKE:
        if not prf:
            prf = [_INTEG_IMPLIES_PRF[i] for i in integ]
        if not prf:
            raise ConfigError(f"IKE proposal {text!r} needs a PRF (e.g. prfsha256)")
        if not ke:
            raise ConfigError(f"IKE proposal {text!r} needs a key exchange group")
        if KeGroup.NONE in ke:
            raise ConfigError(f"IKE proposal {text!r}: 'none' is no key exchange, and IKE_SA_INIT needs one")
        if esn:
            raise ConfigError(f"IKE proposal {text!r} cannot carry esn/noesn")
    elif prf:
        raise ConfigError(f"ESP proposal {text!r} cannot carry a PRF")
    if protocol != ProtocolId.IKE and not esn:
        esn = [EsnId.NO_ESN]
    extra = tuple(tuple(methods) for methods in additional) if any(additional) else ()
    return ProposalSpec(text, protocol, tuple(encr), tuple(integ), tuple(prf), tuple(ke), tuple(esn), extra)


@dataclass(frozen=True, slots=True)
class Suite:
    """A negotiated transform set: one of each type (RFC 7296 §3.3)."""

    encr_id: EncrId
    encr_key_bits: int
    integ_id: IntegId = IntegId.NONE
    prf_id: PrfId | None = None
    ke_group: KeGroup = KeGroup.NONE
    esn: EsnId = EsnId.NO_ESN
    additional_kes: tuple[tuple[int, KeGroup], ...] = ()
    """RFC 9370 §2.2.1: (n, method) of each negotiated ADDITIONAL_KEY_EXCHANGE_n other than NONE, n ascending."""

    @property
    def aead(self) -> bool:
        """True for combined-mode ciphers (RFC 5282)."""
        return self.encr_id in _AEAD

    @property
    def encr_key_size(self) -> int:
        """Encryption key bytes, including the 4-byte salt of an AEAD (RFC 5282 §7.1, RFC 4106 §8.1, RFC 7634 §2, §4)."""
        if self.encr_id == _CHACHA:
            return 36
        return self.encr_key_bits // 8 + (4 if self.aead else 0)

    @property
    def integ_key_size(self) -> int:
        """Integrity key bytes (0 for AEAD)."""
        return INTEG_SPECS[self.integ_id][1] if self.integ_id != IntegId.NONE else 0

    @property
    def prf_key_size(self) -> int:
        """PRF output and preferred key bytes (RFC 7296 §2.13)."""
        return PRF_HASHES[self.prf_id][1] if self.prf_id is not None else 0

    @property
    def encr_name(self) -> str:
        """strongSwan-style name: ``aes256gcm16``, ``aes128``, ``chacha20poly1305``."""
        if self.encr_id == _CHACHA:
            return "chacha20poly1305"
        return f"aes{self.encr_key_bits}gcm16" if self.aead else f"aes{self.encr_key_bits}"

    @property
    def integ_name(self) -> str:
        """strongSwan-style integrity name (empty for AEAD)."""
        return INTEG_SPECS[self.integ_id][0] if self.integ_id != IntegId.NONE else ""

    @property
    def prf_name(self) -> str:
        """strongSwan-style PRF name: ``prfsha256``."""
        return "prf" + PRF_HASHES[self.prf_id][0] if self.prf_id is not None else ""

    @property
    def group_name(self) -> str:
        """strongSwan-style group name (``none`` if none)."""
        return KE_NAMES.get(self.ke_group, str(int(self.ke_group)))

    @property
    def text(self) -> str:
        """The suite as a strongSwan proposal string."""
        parts = [self.encr_name, self.integ_name, self.prf_name]
        if self.ke_group != KeGroup.NONE:
            parts.append(self.group_name)
        parts += [f"ke{n}_{KE_NAMES.get(g, str(int(g)))}" for n, g in self.additional_kes]
        return "-".join(p for p in parts if p)

    @property
    def wireshark_ike_encr(self) -> str:
        """Wireshark's ikev2_decryption_table encryption name ("" for ChaCha20-Poly1305: Wireshark has none)."""
        if self.encr_id == _CHACHA:
            return ""
        if self.aead:
            return f"AES-GCM-{self.encr_key_bits} with 16 octet ICV [RFC5282]"
        return f"AES-CBC-{self.encr_key_bits} [RFC3602]"

    @property
    def wireshark_ike_integ(self) -> str:
        """Wireshark's ikev2_decryption_table integrity name."""
        return {
            IntegId.NONE: "NONE [RFC4306]",
            IntegId.AUTH_HMAC_SHA1_96: "HMAC_SHA1_96 [RFC2404]",
            IntegId.AUTH_HMAC_SHA2_256_128: "HMAC_SHA2_256_128 [RFC4868]",
            IntegId.AUTH_HMAC_SHA2_384_192: "HMAC_SHA2_384_192 [RFC4868]",
            IntegId.AUTH_HMAC_SHA2_512_256: "HMAC_SHA2_512_256 [RFC4868]",
        }[self.integ_id]

    @property
    def wireshark_esp_encr(self) -> str:
        """Wireshark's esp_sa encryption name (ChaCha20: Wireshark 4.2 and later)."""
        if self.encr_id == _CHACHA:
            return "ChaCha20 with Poly1305 [RFC7634]"
        return "AES-GCM with 16 octet ICV [RFC4106]" if self.aead else "AES-CBC [RFC3602]"

    @property
    def wireshark_esp_integ(self) -> str:
        """Wireshark's esp_sa authentication name."""
        return {
            IntegId.NONE: "NULL",
            IntegId.AUTH_HMAC_SHA1_96: "HMAC-SHA-1-96 [RFC2404]",
            IntegId.AUTH_HMAC_SHA2_256_128: "HMAC-SHA-256-128 [RFC4868]",
            IntegId.AUTH_HMAC_SHA2_384_192: "HMAC-SHA-384-192 [RFC4868]",
            IntegId.AUTH_HMAC_SHA2_512_256: "HMAC-SHA-512-256 [RFC4868]",
        }[self.integ_id]

    def to_wire(self, number: int, protocol: ProtocolId, spi: bytes) -> Proposal:
        """RFC 7296 §3.3.1: a proposal with exactly the chosen transforms (a responder's answer)."""
        return Proposal(number, protocol, spi, _answer_transforms(self, protocol))

    @classmethod
    def from_wire(cls, p: Proposal) -> Suite:
        """Read a responder's single-choice proposal; raise NoProposalChosen if it is not one."""
        return _suite_of(p.protocol, p.transforms)


@lru_cache(maxsize=1024)
def _answer_transforms(suite: Suite, protocol: ProtocolId) -> tuple[Transform, ...]:
    """RFC 7296 §3.3.2: the transforms of a negotiated suite, built once per suite (not per rekey)."""
    ts = [Transform.make(TransformType.ENCR, suite.encr_id, suite.encr_key_bits or None)]
    if protocol == ProtocolId.IKE and suite.prf_id is not None:
        ts.append(Transform.make(TransformType.PRF, suite.prf_id))
    if suite.integ_id != IntegId.NONE:
        ts.append(Transform.make(TransformType.INTEG, suite.integ_id))
    if suite.ke_group != KeGroup.NONE:
        ts.append(Transform.make(TransformType.KE, suite.ke_group))
    ts += [Transform.make(TransformType(TransformType.KE + 1 + n), g) for n, g in suite.additional_kes]
    if protocol != ProtocolId.IKE:
        ts.append(Transform.make(TransformType.ESN, suite.esn))
    return tuple(ts)


@lru_cache(maxsize=1024)
def _suite_of(protocol: ProtocolId, transforms: tuple[Transform, ...]) -> Suite:
    """``Suite.from_wire``, once per distinct answer (it depends only on protocol and transforms)."""
    by_type: dict[int, list[Transform]] = {}
    for t in transforms:
        by_type.setdefault(int(t.transform_type), []).append(t)
    if any(len(v) != 1 for v in by_type.values()):
        raise NoProposalChosen("answer proposal has several transforms of one type")
    encr = by_type.get(TransformType.ENCR)
    if not encr or not _encr_ok(encr[0]):
        raise NoProposalChosen("answer proposal has no supported encryption")
    e = encr[0]
    integ = IntegId(by_type[TransformType.INTEG][0].transform_id) if TransformType.INTEG in by_type else IntegId.NONE
    prf = PrfId(by_type[TransformType.PRF][0].transform_id) if TransformType.PRF in by_type else None
    ke = KeGroup(by_type[TransformType.KE][0].transform_id) if TransformType.KE in by_type else KeGroup.NONE
    esn = EsnId(by_type[TransformType.ESN][0].transform_id) if TransformType.ESN in by_type else EsnId.NO_ESN
    aead = EncrId(e.transform_id) in _AEAD
    if (not aead and integ not in INTEG_SPECS) or (aead and integ != IntegId.NONE):
        raise NoProposalChosen("answer proposal has an unusable integrity algorithm")
    if protocol == ProtocolId.IKE and (prf not in PRF_HASHES or ke not in KE_GROUPS_SUPPORTED):
        raise NoProposalChosen("answer IKE proposal lacks a supported PRF or group")
    if ke != KeGroup.NONE and ke not in KE_GROUPS_SUPPORTED:
        raise NoProposalChosen("answer proposal has an unsupported group")
    additional: list[tuple[int, KeGroup]] = []
    for n in range(1, 8):
        chosen = by_type.get(TransformType.KE + 1 + n)
        if chosen and chosen[0].transform_id != KeGroup.NONE:
            if chosen[0].transform_id not in KE_GROUPS_SUPPORTED:
                raise NoProposalChosen(f"answer proposal has an unsupported additional key exchange {n}")
            additional.append((n, KeGroup(chosen[0].transform_id)))
    used = [g for _, g in additional] + ([ke] if ke != KeGroup.NONE else [])
    if len(set(used)) != len(used):
        raise NoProposalChosen("answer proposal uses one key exchange method twice (RFC 9370 §2.2.1)")
    return Suite(EncrId(e.transform_id), e.key_length or 0, integ, prf, ke, esn, tuple(additional))


def _encr_ok(t: Transform) -> bool:
    """RFC 7296 §3.3.5 / RFC 7634 §2: AES with a 128/192/256-bit Key Length, ChaCha20-Poly1305 with none."""
    if t.transform_id == _CHACHA:
        return t.key_length is None
    return t.transform_id in (EncrId.ENCR_AES_CBC, EncrId.ENCR_AES_GCM_16) and t.key_length in (128, 192, 256)


def _acceptable(t: Transform, spec: ProposalSpec) -> bool:
    tt, tid = t.transform_type, t.transform_id
    if tt == TransformType.ENCR:
        return (tid, t.key_length or 0) in spec.encr
    if tt == TransformType.INTEG:
        return tid in spec.integ
    if tt == TransformType.PRF:
        return tid in spec.prf
    if tt == TransformType.KE:
        return tid in spec.ke
    if tt == TransformType.ESN:
        return tid in spec.esn
    return False


_ADDITIONAL_TYPES = tuple(range(TransformType.KE + 2, TransformType.KE + 9))
"""The transform types of ADDITIONAL_KEY_EXCHANGE_1..7 (RFC 9370 §2.2.1)."""


def _pick_additional(transforms: tuple[Transform, ...], spec: ProposalSpec, ke: int
                     ) -> tuple[tuple[int, KeGroup], ...] | None:
    """RFC 9370 §2.2.1 as strongSwan's ``select_algo`` does it: each additional type is optional (matched, or NONE
    offered by the side that lacks it), and no method is chosen twice; None if a type cannot be matched."""
    used = {ke}
    chosen: list[tuple[int, KeGroup]] = []
    for n, tt in enumerate(_ADDITIONAL_TYPES, 1):
        mine = spec.additional[n - 1] if spec.additional else ()
        theirs = [t.transform_id for t in transforms if t.transform_type == tt]
        if not theirs:
            if mine and KeGroup.NONE not in mine:
                return None
            continue
        if not mine:
            if KeGroup.NONE not in theirs:
                return None
            continue
        pick = next((g for g in theirs if g in mine and (g == KeGroup.NONE or g not in used)), None)
        if pick is None:
            return None
        if pick != KeGroup.NONE:
            used.add(pick)
            chosen.append((n, KeGroup(pick)))
    return tuple(chosen)


def select_proposal(
    offered: Sequence[Proposal], configured: Sequence[ProposalSpec], protocol: ProtocolId
) -> tuple[Proposal, Suite] | None:
    """RFC 7296 §2.7: pick the first offered proposal acceptable to a configured one."""
    found = _select(tuple([(p.protocol, p.transforms) for p in offered]), tuple(configured), protocol)
    if found is None:
        return None
    index, suite = found
    prop = offered[index]
    return suite.to_wire(prop.number, protocol, prop.spi), suite


@lru_cache(maxsize=4096)
def _select(offered: tuple[tuple[ProtocolId, tuple[Transform, ...]], ...], configured: tuple[ProposalSpec, ...],
            protocol: ProtocolId) -> tuple[int, Suite] | None:
    """``select_proposal`` on what decides it (protocols and transforms, not numbers or SPIs): once per offer.

    Returns the index of the chosen offered proposal and its suite, or None.
    """
    for index, (prop_protocol, transforms) in enumerate(offered):
        if prop_protocol != protocol:
            continue
        for spec in configured:
            chosen: dict[int, Transform] = {}
            for t in transforms:
                if int(t.transform_type) not in chosen and _acceptable(t, spec):
                    chosen[int(t.transform_type)] = t
            needed = {TransformType.ENCR}
            if spec.integ:
                needed.add(TransformType.INTEG)
            if protocol == ProtocolId.IKE:
                needed |= {TransformType.PRF, TransformType.KE}
            else:
                needed.add(TransformType.ESN)
                if spec.ke and KeGroup.NONE not in spec.ke:
                    needed.add(TransformType.KE)
            offered_types = {int(t.transform_type) for t in transforms}.difference(_ADDITIONAL_TYPES)
            # A type the peer offered that we cannot match makes the proposal unacceptable.
            if not needed <= chosen.keys() or not offered_types <= chosen.keys() | _optional(spec, protocol, offered_types):
                continue
            primary = chosen[TransformType.KE].transform_id if TransformType.KE in chosen else KeGroup.NONE
            additional = _pick_additional(transforms, spec, primary)
            if additional is None:
                continue
            e = chosen[TransformType.ENCR]
            return index, Suite(
                EncrId(e.transform_id),
                e.key_length or 0,
                IntegId(chosen[TransformType.INTEG].transform_id) if TransformType.INTEG in chosen else IntegId.NONE,
                PrfId(chosen[TransformType.PRF].transform_id) if TransformType.PRF in chosen else None,
                KeGroup(chosen[TransformType.KE].transform_id) if TransformType.KE in chosen else KeGroup.NONE,
                EsnId(chosen[TransformType.ESN].transform_id) if TransformType.ESN in chosen else EsnId.NO_ESN,
                additional,
            )
    return None


def _optional(spec: ProposalSpec, protocol: ProtocolId, offered_types: set[int]) -> set[int]:
    """Transform types a responder may leave unmatched (RFC 7296 §1.3.1): ESP KE when it wants no PFS; with ``none``
    among its KE methods only an offer without KE (strongSwan ``select_algo``: an offered KE must match)."""
    if protocol == ProtocolId.IKE or (spec.ke and KeGroup.NONE not in spec.ke):
        return set()
    if spec.ke and int(TransformType.KE) in offered_types:
        return set()
    return {int(TransformType.KE)}
