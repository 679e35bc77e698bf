"""EAP method cryptography: MD4, EAP-MD5 (CHAP), MS-CHAPv2 and its MSK (RFC 1320, RFC 1994, RFC 2759, RFC 3079).

Pure functions over bytes. ``cryptography`` has neither MD4 (OpenSSL 3 moved it to the legacy provider) nor a
single-DES name, so MD4 is written out here per RFC 1320 and DES is ``decrepit`` TripleDES with the key K|K|K,
which is DES(K). Every hash or DES block counts as one ``hash`` operation on the meter (``crypto.meter``).
"""

from __future__ import annotations

import hashlib
import struct

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from ikesim.crypto.meter import OpCounter

__all__ = [
    "md4",
    "md5_chap_response",
    "nt_password_hash",
    "challenge_hash",
    "challenge_response",
    "generate_nt_response",
    "generate_authenticator_response",
    "get_master_key",
    "get_asymmetric_start_key",
    "mschapv2_msk",
]

_MASK = 0xFFFFFFFF


def _rotl(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & _MASK


def md4(data: bytes) -> bytes:
    """RFC 1320 §3: the MD4 message digest (three rounds of 16 operations over 512-bit blocks)."""
    length = len(data) * 8
    data = data + b"\x80" + bytes((55 - len(data)) % 64) + struct.pack("<Q", length & 0xFFFFFFFFFFFFFFFF)
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for off in range(0, len(data), 64):
        x = struct.unpack("<16I", data[off:off + 64])
        aa, bb, cc, dd = a, b, c, d
        for k in range(16):  # round 1: F(x,y,z) = xy | ~x z
            s = (3, 7, 11, 19)[k % 4]
            f = (b & c) | (~b & d)
            a, b, c, d = d, _rotl((a + f + x[k]) & _MASK, s), b, c
        for k in range(16):  # round 2: G = xy | xz | yz, constant 0x5A827999
            i = (k % 4) * 4 + k // 4
            s = (3, 5, 9, 13)[k % 4]
            g = (b & c) | (b & d) | (c & d)
            a, b, c, d = d, _rotl((a + g + x[i] + 0x5A827999) & _MASK, s), b, c
        for k in range(16):  # round 3: H = x ^ y ^ z, constant 0x6ED9EBA1
            i = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)[k]
            s = (3, 9, 11, 15)[k % 4]
            h = b ^ c ^ d
            a, b, c, d = d, _rotl((a + h + x[i] + 0x6ED9EBA1) & _MASK, s), b, c
        a, b, c, d = (a + aa) & _MASK, (b + bb) & _MASK, (c + cc) & _MASK, (d + dd) & _MASK
    return struct.pack("<4I", a, b, c, d)


def _count(meter: OpCounter | None, n: int = 1) -> None:
    if meter is not None:
        meter.add("hash", n)


def md5_chap_response(identifier: int, secret: bytes, challenge: bytes, meter: OpCounter | None = None) -> bytes:
    """RFC 1994 §4.1 (EAP-MD5, RFC 3748 §5.4): MD5(Identifier | secret | Challenge)."""
    _count(meter)
    return hashlib.md5(bytes((identifier,)) + secret + challenge).digest()


def nt_password_hash(password: str, meter: OpCounter | None = None) -> bytes:
    """RFC 2759 §8.3 NtPasswordHash: MD4 of the password in UTF-16LE (strongSwan ``utf8_to_utf16le``)."""
    _count(meter)
    return md4(password.encode("utf-16-le"))


def challenge_hash(peer_challenge: bytes, authenticator_challenge: bytes, username: bytes,
                   meter: OpCounter | None = None) -> bytes:
    """RFC 2759 §8.2 ChallengeHash: the first 8 octets of SHA1(PeerChallenge | AuthenticatorChallenge | UserName)."""
    _count(meter)
    return hashlib.sha1(peer_challenge + authenticator_challenge + username).digest()[:8]


def _des_key(key7: bytes) -> bytes:
    """RFC 2759 §8.6 DesEncrypt: 7 octets spread over 8, parity bits set (strongSwan ``ExpandDESKey``)."""
    bits = int.from_bytes(key7, "big")
    out = bytearray()
    for i in range(8):
        v = ((bits >> (49 - 7 * i)) & 0x7F) << 1
        out.append(v | (bin(v).count("1") + 1) % 2)
    return bytes(out)


def _des_encrypt(clear: bytes, key7: bytes) -> bytes:
    """RFC 2759 §8.6 DesEncrypt: one DES-ECB block (TripleDES with K|K|K is DES with K)."""
    key = _des_key(key7)
    enc = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return enc.update(clear) + enc.finalize()


def challenge_response(challenge: bytes, password_hash: bytes, meter: OpCounter | None = None) -> bytes:
    """RFC 2759 §8.5 ChallengeResponse: the 16-octet hash zero-padded to 21, three DES encryptions of the challenge."""
    z = password_hash + bytes(21 - len(password_hash))
    _count(meter, 3)
    return b"".join(_des_encrypt(challenge, z[i:i + 7]) for i in (0, 7, 14))


def generate_nt_response(authenticator_challenge: bytes, peer_challenge: bytes, username: bytes, password: str,
                         meter: OpCounter | None = None) -> bytes:
    """RFC 2759 §8.1 GenerateNTResponse: the 24-octet NT-Response."""
    ch = challenge_hash(peer_challenge, authenticator_challenge, username, meter)
    return challenge_response(ch, nt_password_hash(password, meter), meter)


_MAGIC1 = b"Magic server to client signing constant"
_MAGIC2 = b"Pad to make it do more than one iteration"


def generate_authenticator_response(password: str, nt_response: bytes, peer_challenge: bytes,
                                    authenticator_challenge: bytes, username: bytes,
                                    meter: OpCounter | None = None) -> str:
    """RFC 2759 §8.7 GenerateAuthenticatorResponse: ``S=`` and 40 upper-case hex digits."""
    hash_hash = md4(nt_password_hash(password, meter))
    digest = hashlib.sha1(hash_hash + nt_response + _MAGIC1).digest()
    ch = challenge_hash(peer_challenge, authenticator_challenge, username, meter)
    _count(meter, 3)
    return "S=" + hashlib.sha1(digest + ch + _MAGIC2).hexdigest().upper()


_MASTER_MAGIC = b"This is the MPPE Master Key"
_SEND_CLIENT = b"On the client side, this is the send key; on the server side, it is the receive key."
_RECV_CLIENT = b"On the client side, this is the receive key; on the server side, it is the send key."
_SHS_PAD1 = bytes(40)
_SHS_PAD2 = b"\xf2" * 40


def get_master_key(password_hash_hash: bytes, nt_response: bytes, meter: OpCounter | None = None) -> bytes:
    """RFC 3079 §3.4 GetMasterKey: the first 16 octets of SHA1(PasswordHashHash | NT-Response | Magic1)."""
    _count(meter)
    return hashlib.sha1(password_hash_hash + nt_response + _MASTER_MAGIC).digest()[:16]


def get_asymmetric_start_key(master_key: bytes, length: int, *, is_send: bool, is_server: bool,
                             meter: OpCounter | None = None) -> bytes:
    """RFC 3079 §3.4 GetAsymmetricStartKey: SHA1(MasterKey | SHSpad1 | Magic | SHSpad2), first *length* octets."""
    magic = _RECV_CLIENT if is_send == is_server else _SEND_CLIENT
    _count(meter)
    return hashlib.sha1(master_key + _SHS_PAD1 + magic + _SHS_PAD2).digest()[:length]


def mschapv2_msk(password: str, nt_response: bytes, meter: OpCounter | None = None) -> bytes:
    """The 64-octet EAP-MSCHAPv2 MSK: MasterReceiveKey | MasterSendKey | 32 zero octets (server's view; strongSwan
    ``eap_mschapv2.c`` ``GenerateMSK``, RFC 3079 §3.4 keys of 16 octets)."""
    master = get_master_key(md4(nt_password_hash(password, meter)), nt_response, meter)
    receive = get_asymmetric_start_key(master, 16, is_send=False, is_server=True, meter=meter)
    send = get_asymmetric_start_key(master, 16, is_send=True, is_server=True, meter=meter)
    return receive + send + bytes(32)
