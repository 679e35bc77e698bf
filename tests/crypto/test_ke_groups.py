"""Key exchange groups 15-18, 20, 21, 28-30 and 32: known answers and encodings (RFC 3526; RFC 5903 §7, §8.2, §8.3;
RFC 6954 with RFC 7027 Appendix A; RFC 8031 §2; RFC 7748 §6.2)."""

from __future__ import annotations

import pytest

from ikesim.crypto.ke import key_exchange_from_private, new_key_exchange
from ikesim.crypto.meter import OpCounter
from ikesim.crypto.modp_primes import MODP_PRIMES
from ikesim.errors import InvalidKeyExchangeData
from ikesim.rng import Rng

P384_I = "099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F160647B67414DCE655E35B538041E649EE3FAEF896783AB194"
P384_GI = ("667842D7D180AC2CDE6F74F37551F55755C7645C20EF73E31634FE72B4C55EE6DE3AC808ACB4BDB4C88732AEE95F41AA"
           "9482ED1FC0EEB9CAFC4984625CCFC23F65032149E0E144ADA024181535A0F38EEB9FCFF3C2C947DAE69B4C634573A81C")
P384_R = "41CB0779B4BDB85D47846725FBEC3C9430FAB46CC8DC5060855CC9BDA0AA2942E0308312916B8ED2960E4BD55A7448FC"
P384_GR = ("E558DBEF53EECDE3D3FCCFC1AEA08A89A987475D12FD950D83CFA41732BC509D0D1AC43A0336DEF96FDA41D0774A3571"
           "DCFBEC7AACF3196472169E838430367F66EEBE3C6E70C416DD5F0C68759DD1FFF83FA40142209DFF5EAAD96DB9E6386C")
P384_GIRX = "11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4D603135569B9E9D09CF5D4A270F59746"

P521_I = ("0037ADE9319A89F4DABDB3EF411AACCCA5123C61ACAB57B5393DCE47608172A095AA85A30FE1C2952C6771D937BA9777F5957B2639"
          "BAB072462F68C27A57382D4A52")
P521_R = ("0145BA99A847AF43793FDD0E872E7CDFA16BE30FDC780F97BCCC3F078380201E9C677D600B343757A3BDBF2A3163E4C2F869CCA745"
          "8AA4A4EFFC311F5CB151685EB9")
P521_GIRX = ("01144C7D79AE6956BC8EDB8E7C787C4521CB086FA64407F97894E5E6B2D79B04D1427E73CA4BAA240A34786859810C06B3C715A3"
             "A8CC3151F2BEE417996D19F3DDEA")

X448_A = "9a8f4925d1519f5775cf46b04b5800d4ee9ee8bae8bc5565d498c28dd9c9baf574a9419744897391006382a6f127ab1d9ac2d8c0a598726b"
X448_A_PUB = "9b08f7cc31b7e3e67d22d5aea121074a273bd2b83de09c63faa73d2c22c5d9bbc836647241d953d40c5b12da88120d53177f80e532c41fa0"
X448_B = "1c306a7ac2a0e2e0990b294470cba339e6453772b075811d8fad0d1d6927c120bb5ee8972b0d3e21374c9c921b09d1b0366f10b65173992d"
X448_B_PUB = "3eb7a829b0cd20f5bcfc0b599b6feccf6da4627107bdb0d4f345b43027d8b972fc3e34fb4232a13ca706dcb57aec3dae07bdc1c67bf33609"
X448_K = "07fff4181ac6cc95ec1c16a94a0f74d12da232ce40a77552281d282bb60c0b56fd2464c335543936521c24403085d59a449a5037514a879d"


def test_ecp384_rfc5903_section_8_2() -> None:
    """KE data is gx | gy (48 bytes each); both sides compute girx, the x coordinate alone."""
    i, r = key_exchange_from_private(20, bytes.fromhex(P384_I)), key_exchange_from_private(20, bytes.fromhex(P384_R))
    assert (i.group, i.public_bytes.hex().upper(), r.public_bytes.hex().upper()) == (20, P384_GI, P384_GR)
    assert i.compute_shared(r.public_bytes).hex().upper() == P384_GIRX
    assert r.compute_shared(i.public_bytes).hex().upper() == P384_GIRX


def test_ecp521_rfc5903_section_8_3() -> None:
    """Coordinates are 66 bytes, left-padded with zeros; the shared secret is the 66-byte girx."""
    i, r = key_exchange_from_private(21, bytes.fromhex(P521_I)), key_exchange_from_private(21, bytes.fromhex(P521_R))
    assert (len(i.public_bytes), i.public_bytes[:2].hex()) == (132, "0015")
    assert i.compute_shared(r.public_bytes).hex().upper() == P521_GIRX
    assert r.compute_shared(i.public_bytes).hex().upper() == P521_GIRX


def test_x448_rfc7748_section_6_2() -> None:
    """RFC 8031 §2: the KE data is the raw little-endian public key; the shared secret is K."""
    a, b = key_exchange_from_private(32, bytes.fromhex(X448_A)), key_exchange_from_private(32, bytes.fromhex(X448_B))
    assert (a.group, a.public_bytes.hex(), b.public_bytes.hex()) == (32, X448_A_PUB, X448_B_PUB)
    assert a.compute_shared(b.public_bytes).hex() == b.compute_shared(a.public_bytes).hex() == X448_K


@pytest.mark.parametrize(("group", "size", "secret"), [
    (20, 96, 48), (21, 132, 66), (32, 56, 56), (28, 64, 32), (29, 96, 48), (30, 128, 64),
    (15, 384, 384), (16, 512, 512), (17, 768, 768), (18, 1024, 1024),
])
def test_new_groups_agree_are_seeded_and_counted(group: int, size: int, secret: int) -> None:
    """Keys come from the Rng (same seed, same key); every keygen and exchange is one counted operation."""
    meter = OpCounter()
    a, b = new_key_exchange(group, Rng(1, "a"), meter), new_key_exchange(group, Rng(1, "b"), meter)
    shared = a.compute_shared(b.public_bytes)
    assert (len(a.public_bytes), len(shared)) == (size, secret)
    assert shared == b.compute_shared(a.public_bytes)
    assert new_key_exchange(group, Rng(1, "a")).public_bytes == a.public_bytes
    assert new_key_exchange(group, Rng(2, "a")).public_bytes != a.public_bytes
    assert meter.snapshot() == {f"ke_keygen:{group}": 2, f"ke_shared:{group}": 2}


def test_ecp256_keys_unchanged() -> None:
    """Group 19 draws its key as before the ECP code was shared with groups 20 and 21 (golden bytes)."""
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    d = 1 + Rng(5, "k").below(n - 1)
    expected = key_exchange_from_private(19, d.to_bytes(32, "big")).public_bytes
    assert new_key_exchange(19, Rng(5, "k")).public_bytes == expected


@pytest.mark.parametrize(("group", "bad", "message"), [
    (20, b"\x01" * 96, "ECP-384 point invalid"), (20, b"\x00" * 64, "ECP-384 public value of 64 bytes"),
    (21, b"\x01" * 132, "ECP-521 point invalid"), (21, b"\x00" * 96, "ECP-521 public value of 96 bytes"),
    (32, b"\x00" * 56, "x448 exchange failed"), (32, b"\x00" * 32, "x448 public value of 32 bytes"),
])
def test_invalid_peer_data_in_new_groups(group: int, bad: bytes, message: str) -> None:
    """Off-curve points, wrong lengths and the all-zero X448 result raise InvalidKeyExchangeData (RFC 5903 §9)."""
    with pytest.raises(InvalidKeyExchangeData, match=message):
        new_key_exchange(group, Rng(3)).compute_shared(bad)


@pytest.mark.parametrize(("group", "bits", "k"), [(15, 3072, 1690314), (16, 4096, 240904), (17, 6144, 929484),
                                                  (18, 8192, 4743158)])
def test_modp_primes_follow_rfc3526(group: int, bits: int, k: int) -> None:
    """RFC 3526 §4-§7: p = 2^N - 2^(N-64) - 1 + 2^64 * (floor(2^(N-130) * pi) + k), recomputed from pi."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.prec = bits + 64
    expected = 2**bits - 2 ** (bits - 64) - 1 + 2**64 * (int(mpmath.floor(mpmath.ldexp(mpmath.pi, bits - 130))) + k)
    assert MODP_PRIMES[group][0] == expected


def test_modp_2048_keys_unchanged() -> None:
    """Group 14 still draws a 320-bit exponent with its top bit set (golden bytes): g^x from that exponent."""
    from ikesim.crypto.ke import MODP_2048_P

    x = Rng(5, "k").bits(320) | (1 << 319)
    assert new_key_exchange(14, Rng(5, "k")).public_bytes == pow(2, x, MODP_2048_P).to_bytes(256, "big")


def test_modp_peer_values_out_of_range_are_refused() -> None:
    """RFC 7296 §2.14 (and strongSwan): 0, 1 and p - 1 are no public values."""
    prime = MODP_PRIMES[15][0]
    for bad in (0, 1, prime - 1):
        with pytest.raises(InvalidKeyExchangeData, match="MODP-3072 public value out of range"):
            new_key_exchange(15, Rng(3)).compute_shared(bad.to_bytes(384, "big"))


BRAINPOOL = [  # RFC 7027 Appendix A.1-A.3: dA, QA = x | y, dB, QB, x(Z)
    (28, "81DB1EE100150FF2EA338D708271BE38300CB54241D79950F77B063039804F1D",
     "44106E913F92BC02A1705D9953A8414DB95E1AAA49E81D9E85F929A8E3100BE5"
     "8AB4846F11CACCB73CE49CBDD120F5A900A69FD32C272223F789EF10EB089BDC",
     "55E40BC41E37E3E2AD25C3C6654511FFA8474A91A0032087593852D3E7D76BD3",
     "8D2D688C6CF93E1160AD04CC4429117DC2C41825E1E9FCA0ADDD34E6F1B39F7B"
     "990C57520812BE512641E47034832106BC7D3E8DD0E4C7F1136D7006547CEC6A",
     "89AFC39D41D3B327814B80940B042590F96556EC91E6AE7939BCE31F3A18BF2B"),
    (29, "1E20F5E048A5886F1F157C74E91BDE2B98C8B52D58E5003D57053FC4B0BD65D6F15EB5D1EE1610DF870795143627D042",
     "68B665DD91C195800650CDD363C625F4E742E8134667B767B1B476793588F885AB698C852D4A6E77A252D6380FCAF068"
     "55BC91A39C9EC01DEE36017B7D673A931236D2F1F5C83942D049E3FA20607493E0D038FF2FD30C2AB67D15C85F7FAA59",
     "032640BC6003C59260F7250C3DB58CE647F98E1260ACCE4ACDA3DD869F74E01F8BA5E0324309DB6A9831497ABAC96670",
     "4D44326F269A597A5B58BBA565DA5556ED7FD9A8A9EB76C25F46DB69D19DC8CE6AD18E404B15738B2086DF37E71D1EB4"
     "62D692136DE56CBE93BF5FA3188EF58BC8A3A0EC6C1E151A21038A42E9185329B5B275903D192F8D4E1F32FE9CC78C48",
     "0BD9D3A7EA0B3D519D09D8E48D0785FB744A6B355E6304BC51C229FBBCE239BBADF6403715C35D4FB2A5444F575D4F42"),
    (30, "16302FF0DBBB5A8D733DAB7141C1B45ACBC8715939677F6A56850A38BD87BD59B09E80279609FF333EB9D4C061231FB26F92EEB0498"
         "2A5F1D1764CAD57665422",
     "0A420517E406AAC0ACDCE90FCD71487718D3B953EFD7FBEC5F7F27E28C6149999397E91E029E06457DB2D3E640668B392C2A7E737A7F0B"
     "F04436D11640FD09FD"
     "72E6882E8DB28AAD36237CD25D580DB23783961C8DC52DFA2EC138AD472A0FCEF3887CF62B623B2A87DE5C588301EA3E5FC269B373B6"
     "0724F5E82A6AD147FDE7",
     "230E18E1BCC88A362FA54E4EA3902009292F7F8033624FD471B5D8ACE49D12CFABBC19963DAB8E2F1EBA00BFFB29E4D72D13F2224562F4"
     "05CB80503666B25429",
     "9D45F66DE5D67E2E6DB6E93A59CE0BB48106097FF78A081DE781CDB31FCE8CCBAAEA8DD4320C4119F1E9CD437A2EAB3731FA9668AB268D"
     "871DEDA55A5473199F"
     "2FDC313095BCDD5FB3A91636F07A959C8E86B5636A1E930E8396049CB481961D365CC11453A06C719835475B12CB52FC3C383BCE35E27E"
     "F194512B71876285FA",
     "A7927098655F1F9976FA50A9D566865DC530331846381C87256BAF3226244B76D36403C024D7BBF0AA0803EAFF405D3D24F11A9B5C0BEF"
     "679FE1454B21C4CD1F"),
]


@pytest.mark.parametrize(("group", "da", "qa", "db", "qb", "z"), BRAINPOOL)
def test_brainpool_rfc7027_appendix_a(group: int, da: str, qa: str, db: str, qb: str, z: str) -> None:
    """RFC 6954 §3: the KE data is x | y (each the field's length, zero-padded), the shared secret x(Z)."""
    a, b = key_exchange_from_private(group, bytes.fromhex(da)), key_exchange_from_private(group, bytes.fromhex(db))
    assert (a.public_bytes.hex().upper(), b.public_bytes.hex().upper()) == (qa, qb)
    assert a.compute_shared(b.public_bytes).hex().upper() == b.compute_shared(a.public_bytes).hex().upper() == z
