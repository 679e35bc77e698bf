"""Suite properties, Wireshark names and proposal selection (RFC 7296 §2.7, §3.3)."""

from __future__ import annotations

import csv
import dataclasses

import pytest
from vectors import require_vectors

from ikesim.crypto.suites import KE_GROUPS_SUPPORTED, Suite, parse_proposal, select_proposal
from ikesim.errors import ConfigError, NoProposalChosen
from ikesim.wire.iana import EncrId, EsnId, IntegId, KeGroup, PrfId, ProtocolId, TransformType
from ikesim.wire.payloads import Proposal, Transform

IKE, ESP = ProtocolId.IKE, ProtocolId.ESP


def _rows(name: str) -> list[list[str]]:
    path = require_vectors() / "keys" / name
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    return list(csv.reader(lines))


def test_ike_wireshark_names_match_strongswan_table() -> None:
    """The IKE encryption/integrity names equal those in strongSwan's ikev2_decryption_table."""
    names = {(r[4], r[7]) for r in _rows("ikev2_decryption_table")}
    gcm = Suite(EncrId.ENCR_AES_GCM_16, 128, prf_id=PrfId.PRF_HMAC_SHA2_256, ke_group=KeGroup.CURVE25519)
    cbc = Suite(EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA2_256_128, PrfId.PRF_HMAC_SHA2_256, KeGroup.MODP_2048)
    assert names == {(s.wireshark_ike_encr, s.wireshark_ike_integ) for s in (gcm, cbc)}


def test_esp_wireshark_names_match_strongswan_table() -> None:
    """The ESP encryption/authentication names equal those in strongSwan's esp_sa table."""
    names = {(r[4], r[6]) for r in _rows("esp_sa")}
    gcm = Suite(EncrId.ENCR_AES_GCM_16, 128)
    cbc = Suite(EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA2_256_128)
    assert names == {(s.wireshark_esp_encr, s.wireshark_esp_integ) for s in (gcm, cbc)}


def test_suite_sizes_and_names() -> None:
    """Key sizes include the GCM salt; names follow strongSwan's spelling."""
    gcm = Suite(EncrId.ENCR_AES_GCM_16, 256, prf_id=PrfId.PRF_HMAC_SHA2_384, ke_group=KeGroup.ECP_256)
    assert (gcm.aead, gcm.encr_key_size, gcm.integ_key_size, gcm.prf_key_size) == (True, 36, 0, 48)
    assert (gcm.encr_name, gcm.integ_name, gcm.prf_name, gcm.group_name) == ("aes256gcm16", "", "prfsha384", "ecp256")
    cbc = Suite(EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA2_512_256)
    assert (cbc.aead, cbc.encr_key_size, cbc.integ_key_size, cbc.prf_key_size) == (False, 16, 64, 0)
    assert (cbc.encr_name, cbc.integ_name, cbc.group_name, cbc.text) == ("aes128", "sha512", "none", "aes128-sha512")
    assert cbc.wireshark_esp_integ == "HMAC-SHA-512-256 [RFC4868]"
    assert set(KE_GROUPS_SUPPORTED) == {KeGroup.MODP_2048, KeGroup.ECP_256, KeGroup.CURVE25519, KeGroup.ECP_384,
                                        KeGroup.ECP_521, KeGroup.CURVE448, KeGroup.MODP_3072, KeGroup.MODP_4096,
                                        KeGroup.MODP_6144, KeGroup.MODP_8192, KeGroup.ECP_256_BP, KeGroup.ECP_384_BP,
                                        KeGroup.ECP_512_BP, KeGroup.ML_KEM_512, KeGroup.ML_KEM_768, KeGroup.ML_KEM_1024}


def test_aliases_and_esp_forms_parse() -> None:
    """aes128gcm/aes256gcm alias the 16-octet ICV GCM; curve25519 aliases x25519; esn/noesn and PFS groups parse."""
    assert parse_proposal("aes128gcm-prfsha512-curve25519", IKE).encr == ((EncrId.ENCR_AES_GCM_16, 128),)
    assert parse_proposal("aes128gcm-prfsha512-curve25519", IKE).ke == (KeGroup.CURVE25519,)
    s = parse_proposal("aes128-sha512-modp2048", ESP)
    assert (s.integ, s.ke, s.prf, s.esn) == ((IntegId.AUTH_HMAC_SHA2_512_256,), (KeGroup.MODP_2048,), (), (EsnId.NO_ESN,))
    assert parse_proposal("aes256gcm16-esn-noesn", ESP).esn == (EsnId.ESN, EsnId.NO_ESN)
    assert parse_proposal("aes256gcm16", ESP).integ == ()


@pytest.mark.parametrize("text,protocol,fragment", [
    ("aes256-md5-modp2048", IKE, "'md5'"),
    ("sha256-modp2048", IKE, "no encryption"),
    ("aes256gcm16-sha256", ESP, "takes no integrity"),
    ("aes256", ESP, "integrity"),
    ("aes128gcm16-aes128-sha256", ESP, "mixes"),
    ("aes128-sha256-modp2048-esn", IKE, "esn"),
])
def test_more_bad_proposals(text: str, protocol: ProtocolId, fragment: str) -> None:
    """Unknown tokens and inconsistent combinations raise ConfigError quoting the string."""
    with pytest.raises(ConfigError, match=fragment) as exc:
        parse_proposal(text, protocol)
    assert repr(text) in str(exc.value)


def test_to_wire_offers_every_configured_transform() -> None:
    """A spec's proposal lists ENCR, PRF, INTEG, KE (IKE) or ENCR, INTEG, KE, ESN (ESP) transforms."""
    ike = parse_proposal("aes128-aes256-sha256-x25519-modp2048", IKE).to_wire(3, IKE, b"")
    assert [(int(t.transform_type), t.transform_id, t.key_length) for t in ike.transforms] == [
        (1, 12, 128), (1, 12, 256), (2, 5, None), (3, 12, None), (4, 31, None), (4, 14, None)]
    esp = parse_proposal("aes128gcm16-x25519", ESP).to_wire(1, ESP, b"\x01\x02\x03\x04")
    assert [(int(t.transform_type), t.transform_id) for t in esp.transforms] == [(1, 20), (4, 31), (5, 0)]
    assert (esp.number, esp.spi) == (1, b"\x01\x02\x03\x04")


def test_select_takes_first_acceptable_transform_in_offer_order() -> None:
    """Within a proposal the first acceptable transform of each type is chosen, in the initiator's order."""
    offer = [parse_proposal("aes256-aes128-sha512-sha256-modp2048-x25519", IKE).to_wire(1, IKE, b"")]
    mine = [parse_proposal("aes128-aes256-sha256-sha512-x25519-modp2048", IKE)]
    answer, suite = select_proposal(offer, mine, IKE)
    assert suite.text == "aes256-sha512-prfsha512-modp2048"
    assert [t.transform_id for t in answer.transforms] == [12, 7, 14, 14]
    restricted = [parse_proposal("aes128-sha256-x25519", IKE)]
    assert select_proposal(offer, restricted, IKE)[1].text == "aes128-sha256-prfsha256-x25519"


def test_select_esp_pfs() -> None:
    """ESP: a configured PFS group must be offered; without PFS configured an offered group is left out."""
    pfs_offer = [parse_proposal("aes128gcm16-x25519", ESP).to_wire(1, ESP, b"\x00\x00\x00\x01")]
    no_pfs_offer = [parse_proposal("aes128gcm16", ESP).to_wire(1, ESP, b"\x00\x00\x00\x01")]
    want_pfs = [parse_proposal("aes128gcm16-x25519", ESP)]
    answer, suite = select_proposal(pfs_offer, want_pfs, ESP)
    assert suite.ke_group == KeGroup.CURVE25519 and Suite.from_wire(answer) == suite
    assert select_proposal(no_pfs_offer, want_pfs, ESP) is None
    _, lax = select_proposal(pfs_offer, [parse_proposal("aes128gcm16", ESP)], ESP)
    assert lax.ke_group == KeGroup.NONE
    assert select_proposal(pfs_offer, want_pfs, IKE) is None  # wrong protocol


def test_from_wire_rejects_unsupported_answers() -> None:
    """Suite.from_wire refuses answers with an unknown cipher, a missing PRF or an unsupported group."""
    good = Suite(EncrId.ENCR_AES_GCM_16, 128, prf_id=PrfId.PRF_HMAC_SHA2_256, ke_group=KeGroup.CURVE25519)
    p = good.to_wire(1, IKE, b"")
    assert Suite.from_wire(p) == good
    no_prf = dataclasses.replace(p, transforms=tuple(t for t in p.transforms if t.transform_type != TransformType.PRF))
    des = dataclasses.replace(p, transforms=(Transform.make(TransformType.ENCR, 3),) + p.transforms[1:])
    modp1024 = dataclasses.replace(p, transforms=p.transforms[:-1] + (Transform.make(TransformType.KE, 2),))
    for bad in (no_prf, des, modp1024):
        with pytest.raises(NoProposalChosen):
            Suite.from_wire(bad)
    assert isinstance(p, Proposal)


@pytest.mark.parametrize("text,encr,integ,prf,ke", [
    ("aes256gcm16-prfsha256-x25519", [(20, 256)], [], [5], [31]),
    ("aes128-sha256-modp2048", [(12, 128)], [12], [5], [14]),
    ("aes256-sha384-ecp256", [(12, 256)], [13], [6], [19]),
    ("aes128-aes256-sha256-sha512-x25519-modp2048", [(12, 128), (12, 256)], [12, 14], [5, 7], [31, 14]),
])
def test_parse_ike_proposals(text, encr, integ, prf, ke) -> None:
    """strongSwan IKE proposal strings parse; integrity implies the PRF when none is named."""
    s = parse_proposal(text, IKE)
    assert [(int(e), k) for e, k in s.encr] == encr and list(map(int, s.integ)) == integ
    assert list(map(int, s.prf)) == prf and list(map(int, s.ke)) == ke


def test_parse_esp_proposals_and_pfs() -> None:
    """ESP proposals: a KE group requests PFS; NO_ESN is the default."""
    s = parse_proposal("aes128gcm16-x25519", ESP)
    assert s.ke == (KeGroup.CURVE25519,) and s.prf == () and [int(e) for e in s.esn] == [0]
    assert parse_proposal("aes256-sha256-esn", ESP).esn[0] == 1


@pytest.mark.parametrize("text,protocol,fragment", [
    ("aes256gcm16-prfsha256-x25519-ke1_modp1024", IKE, "'ke1_modp1024'"),
    ("aes256gcm16-x25519", IKE, "needs a PRF"),
    ("aes256-prfsha256-x25519", IKE, "integrity"),
    ("aes256gcm16-prfsha256", IKE, "key exchange"),
    ("aes256-sha256-prfsha256", ESP, "cannot carry a PRF"),
])
def test_bad_proposals_name_the_problem(text, protocol, fragment) -> None:
    """A bad proposal string raises ConfigError naming the offending part."""
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        parse_proposal(text, protocol)


def test_select_proposal_follows_offer_order_and_rejects() -> None:
    """RFC 7296 §2.7: the first acceptable offered proposal wins; nothing acceptable gives None."""
    offer = (parse_proposal("aes128-sha256-modp2048", IKE).to_wire(1, IKE, b""),
             parse_proposal("aes256gcm16-prfsha256-x25519", IKE).to_wire(2, IKE, b""))
    mine = [parse_proposal("aes256gcm16-prfsha256-x25519", IKE), parse_proposal("aes128-sha256-modp2048", IKE)]
    answer, suite = select_proposal(offer, mine, IKE)
    assert answer.number == 1 and suite.text == "aes128-sha256-prfsha256-modp2048"
    assert Suite.from_wire(answer) == suite
    assert select_proposal(offer, [parse_proposal("aes256-sha512-ecp256", IKE)], IKE) is None
    with pytest.raises(NoProposalChosen):
        Suite.from_wire(offer[0].__class__(1, IKE, b"", offer[0].transforms + offer[1].transforms))


@pytest.mark.parametrize(("offer", "mine", "chosen"), [
    # RFC 9370 §2.2.1: a configured additional type is matched by method
    ("aes256gcm16-prfsha384-x25519-ke1_mlkem768", "aes256gcm16-prfsha384-x25519-ke1_mlkem768",
     "aes256gcm16-prfsha384-x25519-ke1_mlkem768"),
    # strongSwan select_algo: a type one side lacks is acceptable only if the other side lists NONE for it
    ("aes256gcm16-prfsha384-x25519-ke1_mlkem768", "aes256gcm16-prfsha384-x25519", None),
    ("aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none", "aes256gcm16-prfsha384-x25519",
     "aes256gcm16-prfsha384-x25519"),
    ("aes256gcm16-prfsha384-x25519", "aes256gcm16-prfsha384-x25519-ke1_mlkem768", None),
    ("aes256gcm16-prfsha384-x25519", "aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none",
     "aes256gcm16-prfsha384-x25519"),
    # the initiator's order decides within a type; NONE chosen leaves the type out of the answer
    ("aes256gcm16-prfsha384-x25519-ke1_mlkem1024-ke1_mlkem768-ke2_none-ke2_mlkem512",
     "aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_mlkem1024-ke2_mlkem512-ke2_none",
     "aes256gcm16-prfsha384-x25519-ke1_mlkem1024"),
    ("aes256gcm16-prfsha384-x25519-ke1_mlkem1024", "aes256gcm16-prfsha384-x25519-ke1_mlkem768", None),
    # no method is chosen twice (strongSwan's ``kes`` table): ke2 falls back to NONE, then to nothing
    ("aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke2_mlkem768-ke2_none",
     "aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke2_mlkem768-ke2_none", "aes256gcm16-prfsha384-x25519-ke1_mlkem768"),
    ("aes256gcm16-prfsha384-x25519-ke1_x25519", "aes256gcm16-prfsha384-x25519-ke1_x25519", None),
])
def test_additional_key_exchanges_are_selected_as_strongswan_does(offer, mine, chosen) -> None:
    """RFC 9370 §2.2.1 selection of ADDITIONAL_KEY_EXCHANGE_1..7; the answer parses back to the same suite."""
    found = select_proposal([parse_proposal(offer, IKE).to_wire(1, IKE, b"")], [parse_proposal(mine, IKE)], IKE)
    assert (found and found[1].text) == chosen
    if found:
        assert Suite.from_wire(found[0]) == found[1]
        assert [int(t.transform_type) for t in found[0].transforms] == [1, 2, 4] + [5 + n for n, _ in
                                                                                     found[1].additional_kes]


def test_additional_key_exchange_offer_and_esp_suite() -> None:
    """ke1_ .. ke7_ tokens become transform types 6..12 in the offer, in order; ESP keeps them in its suite."""
    spec = parse_proposal("aes256gcm16-x25519-ke1_mlkem768-ke3_mlkem1024-ke3_none", ESP)
    assert spec.additional[0] == (KeGroup.ML_KEM_768,) and spec.additional[2] == (KeGroup.ML_KEM_1024, KeGroup.NONE)
    wire = spec.to_wire(1, ESP, b"\x00\x00\x00\x01")
    assert [(int(t.transform_type), t.transform_id) for t in wire.transforms] == [
        (1, 20), (4, 31), (6, 36), (8, 37), (8, 0), (5, 0)]
    _, suite = select_proposal([wire], [spec], ESP)
    assert suite.additional_kes == ((1, KeGroup.ML_KEM_768), (3, KeGroup.ML_KEM_1024))
    assert suite.text == "aes256gcm16-x25519-ke1_mlkem768-ke3_mlkem1024"
