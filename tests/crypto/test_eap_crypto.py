"""EAP method cryptography against the published vectors: MD4 (RFC 1320 A.5), MS-CHAPv2 (RFC 2759 §9.2), the MPPE
keys MS-CHAPv2's MSK is made of (RFC 3079 §3.5.3), and EAP-MD5's CHAP response (RFC 1994 §4.1)."""

from __future__ import annotations

import hashlib

import pytest

from ikesim.crypto import eap as ec
from ikesim.crypto.meter import OpCounter


@pytest.mark.parametrize(("message", "digest"), [
    (b"", "31d6cfe0d16ae931b73c59d7e0c089c0"),
    (b"a", "bde52cb31de33e46245e05fbdbd6fb24"),
    (b"abc", "a448017aaf21d8525fc10ae87aa6729d"),
    (b"message digest", "d9130a8164549fe818874806e1c7014b"),
    (b"abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"),
    (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "043f8582f241db351ce627e153e7f0e4"),
    (b"1234567890" * 8, "e33b4ddc9c38f2199c3e7b164fcc0536"),
])
def test_md4_rfc1320_test_suite(message: bytes, digest: str) -> None:
    """RFC 1320 A.5: the MD4 test suite."""
    assert ec.md4(message).hex() == digest


USER, PASSWORD = b"User", "clientPass"
AUTH_CHALLENGE = bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628")
PEER_CHALLENGE = bytes.fromhex("21402324255E262A28295F2B3A337C7E")
NT_RESPONSE = bytes.fromhex("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")


def test_mschapv2_rfc2759_section_9_2() -> None:
    """RFC 2759 §9.2: ChallengeHash, NtPasswordHash, NT-Response, PasswordHashHash, AuthenticatorResponse."""
    assert ec.challenge_hash(PEER_CHALLENGE, AUTH_CHALLENGE, USER).hex().upper() == "D02E4386BCE91226"
    assert ec.nt_password_hash(PASSWORD).hex().upper() == "44EBBA8D5312B8D611474411F56989AE"
    assert ec.generate_nt_response(AUTH_CHALLENGE, PEER_CHALLENGE, USER, PASSWORD) == NT_RESPONSE
    assert ec.md4(ec.nt_password_hash(PASSWORD)).hex().upper() == "41C00C584BD2D91C4017A2A12FA59F3F"
    assert ec.generate_authenticator_response(PASSWORD, NT_RESPONSE, PEER_CHALLENGE, AUTH_CHALLENGE, USER) == \
        "S=407A5589115FD0D6209F510FE9C04566932CDA56"


def test_mppe_keys_rfc3079_section_3_5_3() -> None:
    """RFC 3079 §3.5.3 (128-bit keys): MasterKey and SendStartKey128 (GetAsymmetricStartKey, IsSend, IsServer)."""
    hash_hash = bytes.fromhex("41C00C584BD2D91C4017A2A12FA59F3F")
    master = ec.get_master_key(hash_hash, NT_RESPONSE)
    assert master.hex().upper() == "FDECE3717A8C838CB388E527AE3CDD31"
    send = ec.get_asymmetric_start_key(master, 16, is_send=True, is_server=True)
    assert send.hex().upper() == "8B7CDC149B993A1BA118CB153F56DCCB"
    assert ec.get_asymmetric_start_key(master, 16, is_send=False, is_server=False) == send  # the client's receive key
    assert ec.get_asymmetric_start_key(master, 8, is_send=True, is_server=True) == send[:8]  # 40/56-bit start key


def test_mschapv2_msk_is_receive_then_send_key_then_zeros() -> None:
    """strongSwan ``GenerateMSK``: MasterReceiveKey | MasterSendKey | 32 zero octets, 64 in all."""
    msk = ec.mschapv2_msk(PASSWORD, NT_RESPONSE)
    master = bytes.fromhex("FDECE3717A8C838CB388E527AE3CDD31")
    assert len(msk) == 64 and msk[32:] == bytes(32)
    assert msk[:16] == ec.get_asymmetric_start_key(master, 16, is_send=False, is_server=True)
    assert msk[16:32].hex().upper() == "8B7CDC149B993A1BA118CB153F56DCCB"
    assert msk.hex() == ("d5f0e9521e3ea9589645e86051c82226" "8b7cdc149b993a1ba118cb153f56dccb") + "00" * 32


def test_md5_chap_response_and_the_meter() -> None:
    """RFC 1994 §4.1: MD5(Identifier | secret | Challenge); each hash or DES block is one ``hash`` on the meter."""
    meter = OpCounter()
    assert ec.md5_chap_response(7, b"pw", b"c" * 16, meter) == hashlib.md5(b"\x07pwcccccccccccccccc").digest()
    ec.generate_nt_response(AUTH_CHALLENGE, PEER_CHALLENGE, USER, PASSWORD, meter)
    assert meter.snapshot() == {"hash": 1 + 1 + 1 + 3}
