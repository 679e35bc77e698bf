"""ikesim's key derivation, AUTH and SK code against real strongSwan 5.9.8 traffic and secrets."""

from __future__ import annotations

import pytest
from vectors import ike_messages, key_table, log_secrets, read_pcap, require_vectors

from ikesim.crypto.auth import psk_auth, signed_octets
from ikesim.crypto.natd import natd_hash
from ikesim.crypto.prf import compute_rekey_skeyseed, compute_skeyseed, derive_child_keys, derive_ike_keys
from ikesim.crypto.sk import SkProtector
from ikesim.crypto.suites import Suite
from ikesim.errors import IntegrityCheckFailed
from ikesim.rng import Rng
from ikesim.wire.codec import parse_message, serialize_payloads, unprotect_message
from ikesim.wire.iana import EncrId, IntegId, KeGroup, PrfId
from ikesim.wire.payloads import AuthPayload, IdiPayload, IdrPayload, KePayload, NoncePayload, SaPayload

PSK = b"sim-interop-psk-0123456789"
GCM = Suite(EncrId.ENCR_AES_GCM_16, 128, IntegId.NONE, PrfId.PRF_HMAC_SHA2_256, KeGroup.CURVE25519)
CBC = Suite(EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA2_256_128, PrfId.PRF_HMAC_SHA2_256, KeGroup.MODP_2048)
ESP_GCM = Suite(EncrId.ENCR_AES_GCM_16, 128)
ESP_CBC = Suite(EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA2_256_128)


@pytest.fixture(scope="module")
def vec():
    d = require_vectors()
    msgs = ike_messages(d / "ike_gcm_cbc_rekey.pcap")
    table = {r[0]: r for r in key_table(d / "keys" / "ikev2_decryption_table")}
    secrets = log_secrets(d / "charon-init.log")
    return d, msgs, table, secrets


def _protector(table, raw: bytes) -> SkProtector:
    row = table[raw[:8].hex()]
    suite = GCM if "GCM" in row[4] else CBC
    from_initiator = bool(raw[19] & 0x08)
    e, a = (row[2], row[5]) if from_initiator else (row[3], row[6])
    return SkProtector(suite, bytes.fromhex(e), bytes.fromhex(a), Rng(0))


def _labelled(secrets, label):
    return [v for k, v in secrets if k == label]


def _nonce(m):
    return m.get(NoncePayload).data


def test_first_ike_sa_keys_match_strongswan(vec):
    """SKEYSEED and SK_d/ei/er/pi/pr of the x25519/AES-GCM IKE_SA equal charon's (RFC 7296 §2.14)."""
    _, msgs, table, secrets = vec
    req, resp = parse_message(msgs[0]), parse_message(msgs[1])
    shared = _labelled(secrets, "shared Diffie Hellman secret")[0]
    skeyseed = compute_skeyseed(PrfId.PRF_HMAC_SHA2_256, _nonce(req), _nonce(resp), shared)
    assert skeyseed == _labelled(secrets, "SKEYSEED")[0]
    keys = derive_ike_keys(GCM, skeyseed, _nonce(req), _nonce(resp), resp.spi_i, resp.spi_r)
    assert keys.sk_d == _labelled(secrets, "Sk_d secret")[0]
    assert keys.sk_ei == _labelled(secrets, "Sk_ei secret")[0]
    assert keys.sk_er == _labelled(secrets, "Sk_er secret")[0]
    assert keys.sk_pi == _labelled(secrets, "Sk_pi secret")[0]
    assert keys.sk_pr == _labelled(secrets, "Sk_pr secret")[0]
    assert (keys.sk_ai, keys.sk_ar) == (b"", b"")
    row = table[resp.spi_i.hex()]
    assert (keys.sk_ei.hex(), keys.sk_er.hex()) == (row[2], row[3])


def test_rekeyed_ike_sa_keys_match_strongswan(vec):
    """The rekeyed IKE_SA's SKEYSEED comes from the old SK_d (RFC 7296 §2.18) and matches charon's."""
    _, msgs, table, secrets = vec
    req = unprotect_message(msgs[8], _protector(table, msgs[8]))
    resp = unprotect_message(msgs[9], _protector(table, msgs[9]))
    assert req.get(KePayload) is not None and resp.get(KePayload) is not None
    new_spi_i = req.get(SaPayload).proposals[0].spi
    new_spi_r = resp.get(SaPayload).proposals[0].spi
    old_sk_d = _labelled(secrets, "Sk_d secret")[0]
    shared = _labelled(secrets, "shared Diffie Hellman secret")[1]
    skeyseed = compute_rekey_skeyseed(PrfId.PRF_HMAC_SHA2_256, old_sk_d, shared, _nonce(req), _nonce(resp))
    assert skeyseed == _labelled(secrets, "SKEYSEED")[1]
    keys = derive_ike_keys(GCM, skeyseed, _nonce(req), _nonce(resp), new_spi_i, new_spi_r)
    row = table[new_spi_i.hex()]
    assert row[1] == new_spi_r.hex()
    assert (keys.sk_ei.hex(), keys.sk_er.hex()) == (row[2], row[3])
    assert keys.sk_d == _labelled(secrets, "Sk_d secret")[1]


def test_modp_ike_sa_keys_match_strongswan(vec):
    """The MODP-2048 / AES-CBC-256 / HMAC-SHA-256 IKE_SA's keys equal charon's, integrity keys included."""
    _, msgs, table, secrets = vec
    req, resp = parse_message(msgs[12]), parse_message(msgs[13])
    assert req.get(KePayload).group == 14 and len(req.get(KePayload).data) == 256
    shared = _labelled(secrets, "shared Diffie Hellman secret")[2]
    assert len(shared) == 256
    skeyseed = compute_skeyseed(PrfId.PRF_HMAC_SHA2_256, _nonce(req), _nonce(resp), shared)
    assert skeyseed == _labelled(secrets, "SKEYSEED")[2]
    keys = derive_ike_keys(CBC, skeyseed, _nonce(req), _nonce(resp), resp.spi_i, resp.spi_r)
    row = table[resp.spi_i.hex()]
    assert [keys.sk_ei.hex(), keys.sk_er.hex(), keys.sk_ai.hex(), keys.sk_ar.hex()] == [row[2], row[3], row[5], row[6]]
    assert keys.sk_ai == _labelled(secrets, "Sk_ai secret")[0]


def test_child_sa_keys_match_esp_table(vec):
    """CHILD_SA KEYMAT (RFC 7296 §2.17) for all three CHILD_SAs equals keys/esp_sa."""
    d, msgs, table, secrets = vec
    esp = {r[3]: r for r in key_table(d / "keys" / "esp_sa")}
    sk_d1, sk_d3 = _labelled(secrets, "Sk_d secret")[0], _labelled(secrets, "Sk_d secret")[2]
    cases = []
    init1, resp1 = parse_message(msgs[0]), parse_message(msgs[1])
    auth_req = unprotect_message(msgs[2], _protector(table, msgs[2]))
    auth_resp = unprotect_message(msgs[3], _protector(table, msgs[3]))
    cases.append((sk_d1, ESP_GCM, _nonce(init1), _nonce(resp1), auth_req, auth_resp))
    rk_req = unprotect_message(msgs[4], _protector(table, msgs[4]))
    rk_resp = unprotect_message(msgs[5], _protector(table, msgs[5]))
    assert rk_req.get(KePayload) is None and rk_resp.get(KePayload) is None  # charon rekeyed without PFS
    cases.append((sk_d1, ESP_GCM, _nonce(rk_req), _nonce(rk_resp), rk_req, rk_resp))
    init3, resp3 = parse_message(msgs[12]), parse_message(msgs[13])
    a3_req = unprotect_message(msgs[14], _protector(table, msgs[14]))
    a3_resp = unprotect_message(msgs[15], _protector(table, msgs[15]))
    cases.append((sk_d3, ESP_CBC, _nonce(init3), _nonce(resp3), a3_req, a3_resp))
    for sk_d, suite, ni, nr, req, resp in cases:
        keys = derive_child_keys(PrfId.PRF_HMAC_SHA2_256, sk_d, suite, ni, nr)
        spi_to_resp = resp.get(SaPayload).proposals[0].spi  # responder's inbound SPI
        spi_to_init = req.get(SaPayload).proposals[0].spi
        r_out, r_in = esp["0x" + spi_to_resp.hex()], esp["0x" + spi_to_init.hex()]
        assert r_out[1] == "127.0.0.2" and r_in[1] == "127.0.0.1"
        assert ("0x" + keys.encr_i.hex(), "0x" + keys.encr_r.hex()) == (r_out[5], r_in[5])
        expect_integ = (r_out[7], r_in[7])
        got_integ = ("0x" + keys.integ_i.hex() if keys.integ_i else "", "0x" + keys.integ_r.hex() if keys.integ_r else "")
        assert got_integ == expect_integ


def test_every_auth_payload_verifies_with_the_psk(vec):
    """Both AUTH payloads of both IKE_AUTH exchanges equal prf(prf(PSK, keypad), octets) (RFC 7296 §2.15)."""
    _, msgs, table, secrets = vec
    logged_octets = _labelled(secrets, "octets = message + nonce + prf(Sk_px, IDx')")
    checked = 0
    for init_i, auth_i, suite_idx in ((0, 2, 0), (12, 14, 2)):
        sk_pi = _labelled(secrets, "Sk_pi secret")[suite_idx]
        sk_pr = _labelled(secrets, "Sk_pr secret")[suite_idx]
        first_req, first_resp = msgs[init_i], msgs[init_i + 1]
        req = unprotect_message(msgs[auth_i], _protector(table, msgs[auth_i]))
        resp = unprotect_message(msgs[auth_i + 1], _protector(table, msgs[auth_i + 1]))
        nonce_i, nonce_r = _nonce(parse_message(first_req)), _nonce(parse_message(first_resp))
        octets_i = signed_octets(first_req, nonce_r, PrfId.PRF_HMAC_SHA2_256, sk_pi, req.get(IdiPayload).body())
        octets_r = signed_octets(first_resp, nonce_i, PrfId.PRF_HMAC_SHA2_256, sk_pr, resp.get(IdrPayload).body())
        assert psk_auth(PrfId.PRF_HMAC_SHA2_256, PSK, octets_i) == req.get(AuthPayload).data
        assert psk_auth(PrfId.PRF_HMAC_SHA2_256, PSK, octets_r) == resp.get(AuthPayload).data
        if suite_idx == 0:
            assert octets_i == logged_octets[0] and octets_r == logged_octets[1]
        assert psk_auth(PrfId.PRF_HMAC_SHA2_256, b"wrong", octets_i) != req.get(AuthPayload).data
        checked += 2
    assert checked == 4


def test_every_sk_payload_decrypts_and_tampering_is_caught(vec):
    """All 16 encrypted messages decrypt with their ICV verified; a flipped bit raises IntegrityCheckFailed."""
    _, msgs, table, _ = vec
    encrypted = [m for m in msgs if m[18] != 34]
    assert len(encrypted) == 16
    for raw in encrypted:
        msg = unprotect_message(raw, _protector(table, raw))
        assert msg.encrypted
        sk = parse_message(raw).payloads[-1]
        plaintext = _protector(table, raw).open(raw[: len(raw) - len(sk.data)], sk.data)
        first, chain = serialize_payloads(msg.payloads)
        assert (first, chain) == (sk.first_payload, plaintext)  # inner chain re-serializes byte for byte
        bad = bytearray(raw)
        bad[-20] ^= 0x01
        with pytest.raises(IntegrityCheckFailed):
            unprotect_message(bytes(bad), _protector(table, raw))


def test_natd_hashes_match_charon(vec):
    """NAT_DETECTION_DESTINATION_IP of the first request is SHA-1(SPIs | 127.0.0.1 | 500) (RFC 7296 §2.23)."""
    _, msgs, _, secrets = vec
    req = parse_message(msgs[0])
    hashes = _labelled(secrets, "natd_hash")
    assert natd_hash(req.spi_i, req.spi_r, "127.0.0.1", 500) == hashes[1]
    notify_data = [p.data for p in req.payloads if getattr(p, "notify_type", 0) == 16389]
    assert notify_data == [hashes[1]]


def test_every_logged_natd_hash_is_reproduced(vec):
    """Each natd_chunk (SPIi | SPIr | IPv4 | port) charon logged hashes to the natd_hash logged after it."""
    import ipaddress

    _, _, _, secrets = vec
    chunks, hashes = _labelled(secrets, "natd_chunk"), _labelled(secrets, "natd_hash")
    assert len(chunks) == len(hashes) == 8
    for chunk, expected in zip(chunks, hashes, strict=True):
        ip = str(ipaddress.IPv4Address(chunk[16:20]))
        assert natd_hash(chunk[:8], chunk[8:16], ip, int.from_bytes(chunk[20:22], "big")) == expected


def test_esp_packets_decrypt_with_derived_child_keys(vec):
    """All 12 synthetic ESP packets (RFC 4303/4106/3602) decrypt and authenticate with CHILD keys we derive."""
    import hmac

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    d, msgs, table, secrets = vec
    sk_ds = _labelled(secrets, "Sk_d secret")

    def clear(i):
        return unprotect_message(msgs[i], _protector(table, msgs[i]))

    init1, resp1, init3, resp3 = (parse_message(msgs[i]) for i in (0, 1, 12, 13))
    rk_req, rk_resp = clear(4), clear(5)
    cases = [  # (SK_d, suite, Ni, Nr, request carrying SAi, response carrying SAr)
        (sk_ds[0], ESP_GCM, _nonce(init1), _nonce(resp1), clear(2), clear(3)),
        (sk_ds[0], ESP_GCM, _nonce(rk_req), _nonce(rk_resp), rk_req, rk_resp),
        (sk_ds[2], ESP_CBC, _nonce(init3), _nonce(resp3), clear(14), clear(15)),
    ]
    sa_by_spi = {}
    for sk_d, suite, ni, nr, req, resp in cases:
        k = derive_child_keys(PrfId.PRF_HMAC_SHA2_256, sk_d, suite, ni, nr)
        sa_by_spi[resp.get(SaPayload).proposals[0].spi] = (suite, k.encr_i, k.integ_i)  # initiator -> responder
        sa_by_spi[req.get(SaPayload).proposals[0].spi] = (suite, k.encr_r, k.integ_r)  # responder -> initiator
    count = 0
    for p in read_pcap(d / "esp_synthetic_real_keys.pcap"):
        if not p.is_esp:
            continue
        body = p.payload
        suite, ek, ak = sa_by_spi[body[:4]]
        if suite.aead:
            plain = AESGCM(ek[:-4]).decrypt(ek[-4:] + body[8:16], body[16:], body[:8])
        else:
            assert hmac.digest(ak, body[:-16], "sha256")[:16] == body[-16:]
            dec = Cipher(algorithms.AES(ek), modes.CBC(body[8:24])).decryptor()
            plain = dec.update(body[24:-16]) + dec.finalize()
        assert plain[-1] == 4 and plain[0] >> 4 == 4  # next header IPv4; the inner packet is IPv4
        count += 1
    assert count == 12
