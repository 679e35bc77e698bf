"""IANA registry numbers for IKEv2 (RFC 7296 §3 and the IKEv2 IANA registries).

Every enum tolerates unknown values: ``_missing_`` creates a pseudo-member
named ``UNKNOWN_<n>`` so a parser never fails on a number it does not know
(pyikev2's ``SafeIntEnum``).
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "TolerantIntEnum",
    "ExchangeType",
    "PayloadType",
    "HeaderFlag",
    "TransformType",
    "EncrId",
    "PrfId",
    "IntegId",
    "KeGroup",
    "EsnId",
    "ProtocolId",
    "IdType",
    "AuthMethod",
    "CertEncoding",
    "NotifyType",
    "TsType",
    "CfgType",
    "TransformAttr",
]


class TolerantIntEnum(enum.IntEnum):
    """An IntEnum that maps unknown values to a generated ``UNKNOWN_<n>`` member."""

    @classmethod
    def _missing_(cls, value: Any) -> Any:
        if not isinstance(value, int):
            return None
        member = int.__new__(cls, value)
        member._name_ = f"UNKNOWN_{value}"
        member._value_ = value
        return member


class ExchangeType(TolerantIntEnum):
    """RFC 7296 §3.1 Exchange Type."""

    IKE_SA_INIT = 34
    IKE_AUTH = 35
    CREATE_CHILD_SA = 36
    INFORMATIONAL = 37
    IKE_SESSION_RESUME = 38
    IKE_INTERMEDIATE = 43
    IKE_FOLLOWUP_KE = 44


class HeaderFlag(enum.IntFlag):
    """RFC 7296 §3.1 header flags."""

    NONE = 0
    INITIATOR = 0x08
    VERSION = 0x10
    RESPONSE = 0x20


class PayloadType(TolerantIntEnum):
    """RFC 7296 §3.2 Next Payload types."""

    NONE = 0
    SA = 33
    KE = 34
    IDi = 35
    IDr = 36
    CERT = 37
    CERTREQ = 38
    AUTH = 39
    NONCE = 40
    NOTIFY = 41
    DELETE = 42
    VENDOR = 43
    TSi = 44
    TSr = 45
    SK = 46
    CP = 47
    EAP = 48
    GSPM = 49
    SKF = 53


class TransformType(TolerantIntEnum):
    """RFC 7296 §3.3.2 Transform Type; 6-12 are RFC 9370 §2.2.1's additional key exchanges."""

    ENCR = 1
    PRF = 2
    INTEG = 3
    KE = 4
    ESN = 5
    ADDITIONAL_KEY_EXCHANGE_1 = 6
    ADDITIONAL_KEY_EXCHANGE_2 = 7
    ADDITIONAL_KEY_EXCHANGE_3 = 8
    ADDITIONAL_KEY_EXCHANGE_4 = 9
    ADDITIONAL_KEY_EXCHANGE_5 = 10
    ADDITIONAL_KEY_EXCHANGE_6 = 11
    ADDITIONAL_KEY_EXCHANGE_7 = 12


class TransformAttr(TolerantIntEnum):
    """RFC 7296 §3.3.5 transform attribute types."""

    KEY_LENGTH = 14


class EncrId(TolerantIntEnum):
    """RFC 7296 §3.3.2 Transform Type 1 (Encryption Algorithm) IDs."""

    ENCR_3DES = 3
    ENCR_NULL = 11
    ENCR_AES_CBC = 12
    ENCR_AES_CTR = 13
    ENCR_AES_CCM_8 = 14
    ENCR_AES_CCM_12 = 15
    ENCR_AES_CCM_16 = 16
    ENCR_AES_GCM_8 = 18
    ENCR_AES_GCM_12 = 19
    ENCR_AES_GCM_16 = 20
    ENCR_NULL_AUTH_AES_GMAC = 21
    ENCR_CHACHA20_POLY1305 = 28


class PrfId(TolerantIntEnum):
    """RFC 7296 §3.3.2 Transform Type 2 (Pseudorandom Function) IDs."""

    PRF_HMAC_MD5 = 1
    PRF_HMAC_SHA1 = 2
    PRF_AES128_XCBC = 4
    PRF_HMAC_SHA2_256 = 5
    PRF_HMAC_SHA2_384 = 6
    PRF_HMAC_SHA2_512 = 7
    PRF_AES128_CMAC = 8


class IntegId(TolerantIntEnum):
    """RFC 7296 §3.3.2 Transform Type 3 (Integrity Algorithm) IDs."""

    NONE = 0
    AUTH_HMAC_MD5_96 = 1
    AUTH_HMAC_SHA1_96 = 2
    AUTH_AES_XCBC_96 = 5
    AUTH_HMAC_SHA2_256_128 = 12
    AUTH_HMAC_SHA2_384_192 = 13
    AUTH_HMAC_SHA2_512_256 = 14


class KeGroup(TolerantIntEnum):
    """RFC 7296 §3.3.2 Transform Type 4 (Key Exchange Method) IDs."""

    NONE = 0
    MODP_1024 = 2
    MODP_1536 = 5
    MODP_2048 = 14
    MODP_3072 = 15
    MODP_4096 = 16
    MODP_6144 = 17
    MODP_8192 = 18
    ECP_256 = 19
    ECP_384 = 20
    ECP_521 = 21
    ECP_256_BP = 28
    ECP_384_BP = 29
    ECP_512_BP = 30
    CURVE25519 = 31
    CURVE448 = 32
    ML_KEM_512 = 35
    ML_KEM_768 = 36
    ML_KEM_1024 = 37


class EsnId(TolerantIntEnum):
    """RFC 7296 §3.3.2 Transform Type 5 (Extended Sequence Numbers)."""

    NO_ESN = 0
    ESN = 1


class ProtocolId(TolerantIntEnum):
    """RFC 7296 §3.3.1 Protocol ID."""

    NONE = 0
    IKE = 1
    AH = 2
    ESP = 3


class IdType(TolerantIntEnum):
    """RFC 7296 §3.5 ID Type."""

    ID_IPV4_ADDR = 1
    ID_FQDN = 2
    ID_RFC822_ADDR = 3
    ID_IPV6_ADDR = 5
    ID_DER_ASN1_DN = 9
    ID_DER_ASN1_GN = 10
    ID_KEY_ID = 11


class AuthMethod(TolerantIntEnum):
    """RFC 7296 §3.8 Auth Method; RFC 7427 Digital Signature."""

    RSA_DIGITAL_SIGNATURE = 1
    SHARED_KEY_MIC = 2
    DSS_DIGITAL_SIGNATURE = 3
    ECDSA_SHA256_P256 = 9
    ECDSA_SHA384_P384 = 10
    ECDSA_SHA512_P521 = 11
    DIGITAL_SIGNATURE = 14


class CertEncoding(TolerantIntEnum):
    """RFC 7296 §3.6 Certificate Encoding."""

    X509_CERTIFICATE_SIGNATURE = 4
    HASH_AND_URL_X509_CERTIFICATE = 12


class TsType(TolerantIntEnum):
    """RFC 7296 §3.13.1 TS Type."""

    TS_IPV4_ADDR_RANGE = 7
    TS_IPV6_ADDR_RANGE = 8


class CfgType(TolerantIntEnum):
    """RFC 7296 §3.15 CFG Type."""

    CFG_REQUEST = 1
    CFG_REPLY = 2
    CFG_SET = 3
    CFG_ACK = 4


class NotifyType(TolerantIntEnum):
    """RFC 7296 §3.10.1 Notify Message Types (errors < 16384, status >= 16384)."""

    UNSUPPORTED_CRITICAL_PAYLOAD = 1
    INVALID_IKE_SPI = 4
    INVALID_MAJOR_VERSION = 5
    INVALID_SYNTAX = 7
    INVALID_MESSAGE_ID = 9
    INVALID_SPI = 11
    NO_PROPOSAL_CHOSEN = 14
    INVALID_KE_PAYLOAD = 17
    AUTHENTICATION_FAILED = 24
    SINGLE_PAIR_REQUIRED = 34
    NO_ADDITIONAL_SAS = 35
    INTERNAL_ADDRESS_FAILURE = 36
    FAILED_CP_REQUIRED = 37
    TS_UNACCEPTABLE = 38
    INVALID_SELECTORS = 39
    UNACCEPTABLE_ADDRESSES = 40
    UNEXPECTED_NAT_DETECTED = 41
    USE_ASSIGNED_HoA = 42
    TEMPORARY_FAILURE = 43
    CHILD_SA_NOT_FOUND = 44
    INVALID_GROUP_ID = 45
    AUTHORIZATION_FAILED = 46
    STATE_NOT_FOUND = 47
    INITIAL_CONTACT = 16384
    SET_WINDOW_SIZE = 16385
    ADDITIONAL_TS_POSSIBLE = 16386
    IPCOMP_SUPPORTED = 16387
    NAT_DETECTION_SOURCE_IP = 16388
    NAT_DETECTION_DESTINATION_IP = 16389
    COOKIE = 16390
    USE_TRANSPORT_MODE = 16391
    HTTP_CERT_LOOKUP_SUPPORTED = 16392
    REKEY_SA = 16393
    ESP_TFC_PADDING_NOT_SUPPORTED = 16394
    NON_FIRST_FRAGMENTS_ALSO = 16395
    MOBIKE_SUPPORTED = 16396
    ADDITIONAL_IP4_ADDRESS = 16397
    ADDITIONAL_IP6_ADDRESS = 16398
    NO_ADDITIONAL_ADDRESSES = 16399
    UPDATE_SA_ADDRESSES = 16400
    COOKIE2 = 16401
    NO_NATS_ALLOWED = 16402
    AUTH_LIFETIME = 16403
    MULTIPLE_AUTH_SUPPORTED = 16404
    ANOTHER_AUTH_FOLLOWS = 16405
    REDIRECT_SUPPORTED = 16406
    REDIRECT = 16407
    REDIRECTED_FROM = 16408
    TICKET_LT_OPAQUE = 16409
    TICKET_REQUEST = 16410
    TICKET_ACK = 16411
    TICKET_NACK = 16412
    TICKET_OPAQUE = 16413
    LINK_ID = 16414
    USE_WESP_MODE = 16415
    ROHC_SUPPORTED = 16416
    EAP_ONLY_AUTHENTICATION = 16417
    CHILDLESS_IKEV2_SUPPORTED = 16418
    QUICK_CRASH_DETECTION = 16419
    IKEV2_MESSAGE_ID_SYNC_SUPPORTED = 16420
    IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED = 16421
    IKEV2_MESSAGE_ID_SYNC = 16422
    IPSEC_REPLAY_COUNTER_SYNC = 16423
    SECURE_PASSWORD_METHODS = 16424
    PSK_PERSIST = 16425
    PSK_CONFIRM = 16426
    ERX_SUPPORTED = 16427
    IFOM_CAPABILITY = 16428
    SENDER_REQUEST_ID = 16429
    IKEV2_FRAGMENTATION_SUPPORTED = 16430
    SIGNATURE_HASH_ALGORITHMS = 16431
    CLONE_IKE_SA_SUPPORTED = 16432
    CLONE_IKE_SA = 16433
    PUZZLE = 16434
    USE_PPK = 16435
    PPK_IDENTITY = 16436
    NO_PPK_AUTH = 16437
    INTERMEDIATE_EXCHANGE_SUPPORTED = 16438
    IP4_ALLOWED = 16439
    IP6_ALLOWED = 16440
    ADDITIONAL_KEY_EXCHANGE = 16441
    USE_AGGFRAG = 16442

    @property
    def is_error(self) -> bool:
        """RFC 7296 §3.10.1: types below 16384 are errors."""
        return int(self) < 16384
