"""strongSwan's proposal keywords: the ones ikesim implements, and the ones it names but refuses (RFC 7296 §3.3.2).

The keyword list is strongSwan 6.0's ``src/libstrongswan/crypto/proposal/proposal_keywords_static.txt``. Every
keyword in it is either in a ``*_TOKENS`` table here (ikesim implements it) or in ``STRONGSWAN_ONLY`` (strongSwan
knows it, ikesim does not implement it); ``keyword_error`` words the message for a keyword of neither kind.
"""

from __future__ import annotations

from ikesim.wire.iana import EncrId, EsnId, IntegId, KeGroup, PrfId

__all__ = ["ENCR_TOKENS", "INTEG_TOKENS", "PRF_TOKENS", "KE_TOKENS", "ESN_TOKENS", "STRONGSWAN_ONLY", "KE_NAMES",
           "keyword_error"]

_GCM, _CBC, _CHACHA = EncrId.ENCR_AES_GCM_16, EncrId.ENCR_AES_CBC, EncrId.ENCR_CHACHA20_POLY1305

ENCR_TOKENS: dict[str, tuple[EncrId, int]] = {
    "aes": (_CBC, 128), "aes128": (_CBC, 128), "aes192": (_CBC, 192), "aes256": (_CBC, 256),
    "aes128gcm16": (_GCM, 128), "aes128gcm128": (_GCM, 128), "aes128gcm": (_GCM, 128),
    "aes192gcm16": (_GCM, 192), "aes192gcm128": (_GCM, 192), "aes192gcm": (_GCM, 192),
    "aes256gcm16": (_GCM, 256), "aes256gcm128": (_GCM, 256), "aes256gcm": (_GCM, 256),
    "chacha20poly1305": (_CHACHA, 0),  # RFC 7634 §2: no Key Length attribute; 0 stands for "none"
}
"""Encryption keyword -> (transform id, key bits; 0: the transform has no Key Length attribute)."""
INTEG_TOKENS: dict[str, IntegId] = {
    "sha": IntegId.AUTH_HMAC_SHA1_96, "sha1": IntegId.AUTH_HMAC_SHA1_96,
    "sha256": IntegId.AUTH_HMAC_SHA2_256_128, "sha2_256": IntegId.AUTH_HMAC_SHA2_256_128,
    "sha384": IntegId.AUTH_HMAC_SHA2_384_192, "sha2_384": IntegId.AUTH_HMAC_SHA2_384_192,
    "sha512": IntegId.AUTH_HMAC_SHA2_512_256, "sha2_512": IntegId.AUTH_HMAC_SHA2_512_256,
}
PRF_TOKENS: dict[str, PrfId] = {
    "prfsha1": PrfId.PRF_HMAC_SHA1, "prfsha256": PrfId.PRF_HMAC_SHA2_256,
    "prfsha384": PrfId.PRF_HMAC_SHA2_384, "prfsha512": PrfId.PRF_HMAC_SHA2_512,
}
KE_TOKENS: dict[str, KeGroup] = {
    "none": KeGroup.NONE, "modpnone": KeGroup.NONE,
    "modp2048": KeGroup.MODP_2048, "modp3072": KeGroup.MODP_3072, "modp4096": KeGroup.MODP_4096,
    "modp6144": KeGroup.MODP_6144, "modp8192": KeGroup.MODP_8192,
    "ecp256": KeGroup.ECP_256, "ecp384": KeGroup.ECP_384, "ecp521": KeGroup.ECP_521,
    "ecp256bp": KeGroup.ECP_256_BP, "ecp384bp": KeGroup.ECP_384_BP, "ecp512bp": KeGroup.ECP_512_BP,
    "x25519": KeGroup.CURVE25519, "curve25519": KeGroup.CURVE25519,
    "x448": KeGroup.CURVE448, "curve448": KeGroup.CURVE448,
    "mlkem512": KeGroup.ML_KEM_512, "mlkem768": KeGroup.ML_KEM_768, "mlkem1024": KeGroup.ML_KEM_1024,
}
"""Key exchange keyword -> group; ``none`` (ESP only) makes PFS optional (strongSwan 6.0's default ESP proposals)."""
ESN_TOKENS: dict[str, EsnId] = {"esn": EsnId.ESN, "noesn": EsnId.NO_ESN}

KE_NAMES: dict[int, str] = {
    KeGroup.NONE: "none", KeGroup.MODP_2048: "modp2048", KeGroup.MODP_3072: "modp3072", KeGroup.MODP_4096: "modp4096",
    KeGroup.MODP_6144: "modp6144", KeGroup.MODP_8192: "modp8192", KeGroup.ECP_256: "ecp256", KeGroup.ECP_384: "ecp384",
    KeGroup.ECP_521: "ecp521", KeGroup.ECP_256_BP: "ecp256bp", KeGroup.ECP_384_BP: "ecp384bp",
    KeGroup.ECP_512_BP: "ecp512bp", KeGroup.CURVE25519: "x25519", KeGroup.CURVE448: "x448",
    KeGroup.ML_KEM_512: "mlkem512", KeGroup.ML_KEM_768: "mlkem768", KeGroup.ML_KEM_1024: "mlkem1024",
}
"""strongSwan's name of each key exchange method ikesim implements."""

STRONGSWAN_ONLY = frozenset("""
null des 3des aes128ctr aes192ctr aes256ctr aes128ccm8 aes128ccm64 aes128ccm12 aes128ccm96 aes128ccm16
aes128ccm128 aes128ccm aes192ccm8 aes192ccm64 aes192ccm12 aes192ccm96 aes192ccm16 aes192ccm128 aes192ccm
aes256ccm8 aes256ccm64 aes256ccm12 aes256ccm96 aes256ccm16 aes256ccm128 aes256ccm aes128gcm8 aes128gcm64
aes128gcm12 aes128gcm96 aes192gcm8 aes192gcm64 aes192gcm12 aes192gcm96 aes256gcm8 aes256gcm64 aes256gcm12
aes256gcm96 aes128gmac aes192gmac aes256gmac chacha20poly1305compat blowfish blowfish128 blowfish192
blowfish256 camellia camellia128 camellia192 camellia256 camellia128ctr camellia192ctr camellia256ctr
camellia128ccm8 camellia128ccm64 camellia128ccm12 camellia128ccm96 camellia128ccm16 camellia128ccm128
camellia192ccm8 camellia192ccm64 camellia192ccm12 camellia192ccm96 camellia192ccm16 camellia192ccm128
camellia256ccm8 camellia256ccm64 camellia256ccm12 camellia256ccm96 camellia256ccm16 camellia256ccm128 cast128
serpent serpent128 serpent192 serpent256 twofish twofish128 twofish192 twofish256 sha1_160 sha256_96
sha2_256_96 md5 md5_128 aesxcbc camelliaxcbc aescmac prfmd5 prfaesxcbc prfcamelliaxcbc prfaescmac modpnull
modp768 modp1024 modp1536 ecp192 ecp224 modp1024s160 modp2048s224
modp2048s256 ecp224bp gost256 gost512
""".split())
"""strongSwan 6.0 keywords that ikesim does not implement (each is refused with a message naming it)."""


def keyword_error(token: str, text: str) -> str:
    """The message for a token of proposal *text* that ikesim cannot use (RFC 7296 §3.3.2 names the transforms)."""
    if token in STRONGSWAN_ONLY:
        return f"algorithm {token!r} in proposal {text!r} is a strongSwan keyword that ikesim does not implement"
    if len(token) > 4 and token[:2] == "ke" and token[2].isdigit() and token[3] == "_":
        return (f"algorithm {token!r} in proposal {text!r}: an additional key exchange (RFC 9370) is ke1_ .. ke7_ "
                "followed by a key exchange method ikesim implements (or none)")
    if token.endswith("!"):
        return (f"algorithm {token!r} in proposal {text!r}: the strict suffix '!' goes at the end of the whole "
                "proposal list, not inside a proposal")
    if not token:
        return f"empty algorithm in proposal {text!r} (two '-' in a row, or one at an end)"
    return f"unknown algorithm {token!r} in proposal {text!r} (not a strongSwan proposal keyword)"
