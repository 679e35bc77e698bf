"""strongSwan proposal syntax in full: keywords, ``default``, ``!`` and ipsec.conf's appended defaults (strongSwan 6.0
``proposal.c``, ``vici_config.c``, ``stroke_config.c``; RFC 7296 §3.3)."""

from __future__ import annotations

import pytest

from ikesim.crypto.keywords import ENCR_TOKENS, ESN_TOKENS, INTEG_TOKENS, KE_TOKENS, PRF_TOKENS, STRONGSWAN_ONLY
from ikesim.crypto.proposal_lists import (
    DEFAULT_ESP,
    DEFAULT_ESP_AEAD,
    DEFAULT_IKE,
    DEFAULT_IKE_AEAD,
    expand_proposals,
    parse_proposals,
)
from ikesim.crypto.suites import parse_proposal, select_proposal
from ikesim.errors import ConfigError
from ikesim.wire.iana import EncrId, IntegId, KeGroup, PrfId, ProtocolId

IKE, ESP = ProtocolId.IKE, ProtocolId.ESP


def test_every_strongswan_keyword_is_supported_or_refused_by_name() -> None:
    """The 153 keywords of proposal_keywords_static.txt: 48 implemented, 105 refused with a message naming them."""
    supported = set(ENCR_TOKENS) | set(INTEG_TOKENS) | set(PRF_TOKENS) | set(KE_TOKENS) | set(ESN_TOKENS)
    assert (len(supported), len(STRONGSWAN_ONLY), supported & STRONGSWAN_ONLY) == (48, 105, set())
    for token in sorted(STRONGSWAN_ONLY):
        text = f"aes128-sha256-{token}-modp2048"
        with pytest.raises(ConfigError) as exc:
            parse_proposal(text, IKE)
        assert str(exc.value) == (f"algorithm {token!r} in proposal {text!r} is a strongSwan keyword that ikesim "
                                  "does not implement")


@pytest.mark.parametrize(("text", "message"), [
    ("aes256-sha999-x25519", "unknown algorithm 'sha999' in proposal 'aes256-sha999-x25519' (not a strongSwan "
                             "proposal keyword)"),
    ("ke8_mlkem768-aes256gcm16-prfsha256-x25519", "algorithm 'ke8_mlkem768' in proposal "
     "'ke8_mlkem768-aes256gcm16-prfsha256-x25519': an additional key exchange (RFC 9370) is ke1_ .. ke7_ followed by "
     "a key exchange method ikesim implements (or none)"),
    ("aes256--sha256-x25519", "empty algorithm in proposal 'aes256--sha256-x25519' (two '-' in a row, or one at an "
                              "end)"),
    ("aes256gcm16-prfsha256-none", "IKE proposal 'aes256gcm16-prfsha256-none': 'none' is no key exchange, and "
                                   "IKE_SA_INIT needs one"),
])
def test_refusals_name_the_keyword(text: str, message: str) -> None:
    """Unknown keywords, RFC 9370 prefixes, empty tokens and ``none`` in IKE are refused in words."""
    with pytest.raises(ConfigError) as exc:
        parse_proposal(text, IKE)
    assert str(exc.value) == message


def test_new_algorithms_parse_to_their_transforms() -> None:
    """chacha20poly1305 (28, no key length), ecp384/ecp521/x448/curve448, sha1 and prfsha384 combinations."""
    s = parse_proposal("chacha20poly1305-aes192gcm16-prfsha384-ecp384-ecp521-x448-curve448", IKE)
    assert s.encr == ((EncrId.ENCR_CHACHA20_POLY1305, 0), (EncrId.ENCR_AES_GCM_16, 192))
    assert (s.prf, s.ke) == ((PrfId.PRF_HMAC_SHA2_384,), (KeGroup.ECP_384, KeGroup.ECP_521, KeGroup.CURVE448,
                                                          KeGroup.CURVE448))
    cbc = parse_proposal("aes256-sha384-prfsha384-ecp384", IKE)
    assert (cbc.integ, cbc.prf) == ((IntegId.AUTH_HMAC_SHA2_384_192,), (PrfId.PRF_HMAC_SHA2_384,))
    assert parse_proposal("aes256-sha384-ecp521", IKE).prf == (PrfId.PRF_HMAC_SHA2_384,)  # implied by the integrity
    assert parse_proposal("aes128-sha1-modp2048", IKE).prf == (PrfId.PRF_HMAC_SHA1,)
    assert parse_proposal("aes256gcm16-prfsha384-ecp384!", IKE) == parse_proposal("aes256gcm16-prfsha384-ecp384!", IKE)
    _, suite = select_proposal([cbc.to_wire(1, IKE, b"")], [cbc], IKE)  # type: ignore[misc]
    assert suite.text == "aes256-sha384-prfsha384-ecp384"


def test_default_expands_as_swanctl_does() -> None:
    """vici_config.c: IKE ``default`` is the default proposal then the AEAD one; ESP puts AEAD first."""
    assert expand_proposals(["default"], IKE) == (DEFAULT_IKE, DEFAULT_IKE_AEAD)
    assert expand_proposals(["aes256gcm16", "default"], ESP) == ("aes256gcm16", DEFAULT_ESP_AEAD, DEFAULT_ESP)
    assert DEFAULT_IKE == ("aes128-aes192-aes256-sha256-sha384-sha512-sha1-prfsha256-prfsha384-prfsha512-prfsha1-"
                           "ecp256-ecp384-ecp521-ecp256bp-ecp384bp-ecp512bp-x25519-x448-modp3072-modp4096-modp6144-"
                           "modp8192-modp2048")
    assert DEFAULT_ESP_AEAD == ("aes128gcm16-aes192gcm16-aes256gcm16-noesn-ecp256-ecp384-ecp521-ecp256bp-ecp384bp-"
                                "ecp512bp-x25519-x448-modp3072-modp4096-modp6144-modp8192-modp2048-none")
    specs = parse_proposals(["default"], ESP)
    assert [s.ke[-1] for s in specs] == [KeGroup.NONE, KeGroup.NONE]


def test_swanctl_lists_are_strict_and_ipsec_conf_values_get_the_defaults() -> None:
    """A list item is exact (``!`` accepted); ``ike=``/``esp=`` values follow stroke_config.c: defaults appended
    after the configured proposals unless the value ends in ``!``."""
    assert expand_proposals(["aes128-sha256-modp2048"], IKE) == ("aes128-sha256-modp2048",)
    assert expand_proposals(["aes128-sha256-modp2048!"], IKE) == ("aes128-sha256-modp2048",)
    assert expand_proposals(["aes256gcm16-prfsha384-ecp384, aes128-sha256-modp2048"], IKE) == (
        "aes256gcm16-prfsha384-ecp384", "aes128-sha256-modp2048")
    assert expand_proposals(["ike=aes128-sha256-modp2048,aes256-sha384-ecp384"], IKE) == (
        "aes128-sha256-modp2048", "aes256-sha384-ecp384", DEFAULT_IKE, DEFAULT_IKE_AEAD)
    assert expand_proposals(["ike=aes128-sha256-modp2048,aes256-sha384-ecp384!"], IKE) == (
        "aes128-sha256-modp2048", "aes256-sha384-ecp384")
    assert expand_proposals(["esp=aes128-sha256"], ESP) == ("aes128-sha256", DEFAULT_ESP, DEFAULT_ESP_AEAD)


@pytest.mark.parametrize(("items", "protocol", "message"), [
    (["aes128-sha256-modp2048!,aes256-sha256-x25519"], IKE, "proposal 'aes128-sha256-modp2048!' in "
     "'aes128-sha256-modp2048!,aes256-sha256-x25519': the strict suffix '!' goes only at the very end"),
    (["aes128-sha256-modp2048,,aes256-sha256-x25519"], IKE, "empty proposal in "
     "'aes128-sha256-modp2048,,aes256-sha256-x25519' (two commas in a row, or one at an end)"),
    (["esp=aes128gcm16"], IKE, "proposal 'esp=aes128gcm16': an ipsec.conf esp= value in a list of IKE proposals "
                               "(write ike=...)"),
    ([], ESP, "an empty proposal list (write 'default' for strongSwan's default proposals)"),
])
def test_bad_lists(items: list[str], protocol: ProtocolId, message: str) -> None:
    """A misplaced ``!``, an empty proposal, the other protocol's ipsec.conf key, an empty list."""
    with pytest.raises(ConfigError) as exc:
        parse_proposals(items, protocol)
    assert str(exc.value) == message


def test_default_esp_makes_pfs_optional() -> None:
    """strongSwan 6.0: ``none`` in the default ESP proposals accepts a peer that offers no KE, and one that does."""
    mine = list(parse_proposals(["default"], ESP))
    no_pfs = [parse_proposal("aes256gcm16", ESP).to_wire(1, ESP, b"\x00\x00\x00\x01")]
    pfs = [parse_proposal("aes256gcm16-x448", ESP).to_wire(1, ESP, b"\x00\x00\x00\x01")]
    assert select_proposal(no_pfs, mine, ESP)[1].text == "aes256gcm16"  # type: ignore[index]
    assert select_proposal(pfs, mine, ESP)[1].text == "aes256gcm16-x448"  # type: ignore[index]


def test_none_accepts_an_offer_without_ke_but_not_an_unmatched_ke() -> None:
    """strongSwan ``select_algo``: ``none`` among our KE methods accepts an offer with no KE transform; an offered KE
    that matches none of ours still fails the proposal (NO_PROPOSAL_CHOSEN), as without ``none``."""
    mine = [parse_proposal("aes256gcm16-ecp256-none", ESP)]
    spi = b"\x00\x00\x00\x01"
    assert select_proposal([parse_proposal("aes256gcm16-x448", ESP).to_wire(1, ESP, spi)], mine, ESP) is None
    offer_none = parse_proposal("aes256gcm16-x448-none", ESP).to_wire(1, ESP, spi)
    assert select_proposal([offer_none], mine, ESP)[1].text == "aes256gcm16"  # type: ignore[index]
    offer_plain = parse_proposal("aes256gcm16", ESP).to_wire(1, ESP, spi)
    assert select_proposal([offer_plain], mine, ESP)[1].text == "aes256gcm16"  # type: ignore[index]
