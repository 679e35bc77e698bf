"""ESP SAs: packet protection and processing (RFC 4303 §3.3, §3.4; RFC 4106, RFC 3602, RFC 2404, RFC 4868)."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hmac import HMAC
from esp_helpers import CBC256_SHA256, GCM128, GCM256, SPI, all_suites, keys, pair, suite_id

from ikesim.crypto.suites import Suite
from ikesim.esp import (
    ICV_FAILURE,
    MALFORMED,
    OUTSIDE_WINDOW,
    REPLAYED,
    SA_EXPIRED,
    SEQ_EXHAUSTED,
    SEQ_MAX,
    SEQ_MAX_ESN,
    UNKNOWN_SPI,
    EspLimitReached,
    EspLimits,
    InboundEspSa,
    OutboundEspSa,
    inner_ipv4,
)
from ikesim.esp.sa import INTEG_TRANSFORMS
from ikesim.rng import Rng
from ikesim.wire.iana import EncrId, EsnId, IntegId

GCM128_ESN = Suite(EncrId.ENCR_AES_GCM_16, 128, esn=EsnId.ESN)
CBC128_SHA1_ESN = Suite(EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA1_96, esn=EsnId.ESN)
INNER = inner_ipv4("10.1.0.1", "10.2.0.1", 100)


def esp_length(suite: Suite, n: int) -> int:
    """RFC 4303 §2: header 8 + IV + payload, Pad Length and Next Header padded to the block (GCM: 4) + ICV."""
    iv, block = (8, 4) if suite.aead else (16, 16)
    icv = 16 if suite.aead else INTEG_TRANSFORMS[suite.integ_id][2]
    return 8 + iv + -(-(n + 2) // block) * block + icv


# --- round trips ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", all_suites(), ids=suite_id)
def test_round_trip_every_transform(suite):
    """Each transform: sizes around every padding boundary go through with the exact ESP length."""
    out, inb = pair(suite)
    for i, n in enumerate((28, 29, 30, 31, 32, 45, 200, 1400), start=1):
        inner = inner_ipv4("10.1.0.1", "10.2.0.1", n, ident=i)
        pkt = out.protect(inner)
        assert isinstance(pkt, bytes)
        assert len(pkt) == esp_length(suite, n)
        assert pkt[:4] == SPI and int.from_bytes(pkt[4:8], "big") == i == out.seq
        assert inb.unprotect(pkt) == (4, inner)
    assert (out.packets, inb.packets) == (8, 8)
    assert out.bytes == inb.bytes == 28 + 29 + 30 + 31 + 32 + 45 + 200 + 1400


def test_next_header_goes_through():
    """A Next Header other than 4 (here 59, a dummy packet, RFC 4303 §2.6) comes back out."""
    for suite in (GCM128, CBC256_SHA256):
        out, inb = pair(suite)
        assert inb.unprotect(out.protect(b"x" * 40, next_header=59)) == (59, b"x" * 40)  # type: ignore[arg-type]


def test_gcm_packet_layout_by_hand():
    """RFC 4106: IV = the 64-bit sequence number, nonce = salt | IV, AAD = SPI | seq, default padding 1, 2."""
    out, _ = pair(GCM128)
    ek, _ = keys(GCM128)
    out.protect(INNER)
    pkt = out.protect(INNER)
    assert isinstance(pkt, bytes)
    assert pkt[4:8] == (2).to_bytes(4, "big") and pkt[8:16] == (2).to_bytes(8, "big")
    plain = AESGCM(ek[:-4]).decrypt(ek[-4:] + pkt[8:16], pkt[16:], pkt[:8])
    assert plain == INNER + b"\x01\x02" + b"\x02\x04"


def test_gcm_esn_aad_carries_the_high_bits():
    """RFC 4106 §5: with ESN the AAD is SPI | seq-high | seq-low; only the low 32 bits are sent."""
    out, _ = pair(GCM128_ESN, seq=2**32 + 4)
    ek, _ = keys(GCM128_ESN)
    pkt = out.protect(INNER)
    assert isinstance(pkt, bytes)
    assert pkt[4:8] == (5).to_bytes(4, "big") and pkt[8:16] == (2**32 + 5).to_bytes(8, "big")
    gcm = AESGCM(ek[:-4])
    plain = gcm.decrypt(ek[-4:] + pkt[8:16], pkt[16:], SPI + (2**32 + 5).to_bytes(8, "big"))
    assert plain[: len(INNER)] == INNER
    with pytest.raises(InvalidTag):
        gcm.decrypt(ek[-4:] + pkt[8:16], pkt[16:], pkt[:8])


def test_cbc_esn_icv_covers_the_high_bits():
    """RFC 4303 §3.3.2.1: the ICV is over SPI | seq-low | IV | ciphertext | seq-high (not sent)."""
    out, _ = pair(CBC128_SHA1_ESN, seq=3 * 2**32 + 9)
    _, ik = keys(CBC128_SHA1_ESN)
    pkt = out.protect(INNER)
    assert isinstance(pkt, bytes)
    assert pkt[4:8] == (10).to_bytes(4, "big") and len(pkt[-12:]) == 12

    def icv(data: bytes) -> bytes:
        h = HMAC(ik, hashes.SHA1())
        h.update(data)
        return h.finalize()[:12]

    assert icv(pkt[:-12] + (3).to_bytes(4, "big")) == pkt[-12:]
    assert icv(pkt[:-12]) != pkt[-12:]


def test_cbc_iv_is_the_drawn_block_encrypted_in_the_running_chain():
    """The IV is AES_k(drawn 16 bytes XOR the SA's last ciphertext block): unpredictable, one Rng draw per packet."""
    out, inb = pair(CBC256_SHA256)
    ek, _ = keys(CBC256_SHA256)
    drawn = Rng(7, "esp-test-iv")
    ecb = Cipher(algorithms.AES(ek), modes.ECB()).encryptor()
    p1, p2 = out.protect(INNER), out.protect(INNER)
    assert isinstance(p1, bytes) and isinstance(p2, bytes)
    z1, z2 = drawn.bytes(16), drawn.bytes(16)
    assert p1[8:24] == ecb.update(z1)
    last = p1[-16 - 16 : -16]  # the last ciphertext block of packet 1
    assert p2[8:24] == ecb.update(bytes(a ^ b for a, b in zip(z2, last, strict=True)))
    dec = Cipher(algorithms.AES(ek), modes.CBC(p2[8:24])).decryptor()
    assert (dec.update(p2[24:-16]) + dec.finalize())[: len(INNER)] == INNER
    assert inb.unprotect(p1) == (4, INNER) and inb.unprotect(p2) == (4, INNER)


def test_cbc_packets_are_deterministic_per_rng():
    """Same keys and Rng stream: the same bytes; another stream: other IVs."""
    a, _ = pair(CBC256_SHA256)
    b, _ = pair(CBC256_SHA256)
    ek, ik = keys(CBC256_SHA256)
    c = OutboundEspSa(SPI, CBC256_SHA256, ek, ik, rng=Rng(8, "esp-test-iv"))
    pa, pb, pc = a.protect(INNER), b.protect(INNER), c.protect(INNER)
    assert pa == pb and isinstance(pa, bytes) and isinstance(pc, bytes)
    assert pa[8:24] != pc[8:24]


def test_explicit_iv_is_used_as_given():
    """A pinned IV goes on the wire unchanged, for both ciphers; a wrong size is refused."""
    for suite, iv in ((GCM256, bytes(range(8))), (CBC256_SHA256, bytes(range(16)))):
        out, inb = pair(suite)
        pkt = out.protect(INNER, iv=iv)
        assert isinstance(pkt, bytes) and pkt[8 : 8 + len(iv)] == iv
        assert inb.unprotect(pkt) == (4, INNER)
        with pytest.raises(ValueError):
            out.protect(INNER, iv=iv + b"\x00")


# --- drops on the receiver ------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", [GCM128, CBC256_SHA256], ids=suite_id)
def test_replayed_and_outside_window(suite):
    """A second copy is REPLAYED; a packet 32 behind the highest is OUTSIDE_WINDOW (window 32)."""
    out, inb = pair(suite, window=32)
    pkts = [out.protect(INNER) for _ in range(40)]
    assert inb.unprotect(pkts[39]) == (4, INNER)  # seq 40
    assert inb.unprotect(pkts[39]) == REPLAYED
    assert inb.unprotect(pkts[8]) == (4, INNER)  # seq 9: 31 back, inside
    assert inb.unprotect(pkts[7]) == OUTSIDE_WINDOW  # seq 8: 32 back
    assert (inb.packets, inb.window.top) == (2, 40)


@pytest.mark.parametrize("suite", [GCM128, CBC256_SHA256], ids=suite_id)
def test_icv_failure_leaves_the_window_alone(suite):
    """A changed byte anywhere after the SPI fails the ICV; the window and counters do not move."""
    out, inb = pair(suite)
    pkt = out.protect(INNER)
    assert isinstance(pkt, bytes)
    for i in (4, 8, 20, len(pkt) - 1):  # sequence number, IV, ciphertext, ICV
        bad = pkt[:i] + bytes([pkt[i] ^ 0x40]) + pkt[i + 1 :]
        assert inb.unprotect(bad) == ICV_FAILURE
    assert (inb.window.top, inb.packets, inb.bytes) == (0, 0, 0)
    assert inb.unprotect(pkt) == (4, INNER)


def test_forged_high_sequence_number_does_not_advance_the_window():
    """RFC 4303 §3.4.3: the window moves only after the ICV passed, so a forged seq 1000 blocks nothing."""
    out, inb = pair(GCM128)
    pkt = out.protect(INNER)
    assert isinstance(pkt, bytes)
    assert inb.unprotect(pkt[:4] + (1000).to_bytes(4, "big") + pkt[8:]) == ICV_FAILURE
    assert inb.unprotect(pkt) == (4, INNER)
    assert inb.window.top == 1


def test_esn_receiver_needs_the_right_high_bits():
    """The window infers seq-high (A2.1); a receiver whose window is in another subspace fails the ICV."""
    for suite in (GCM128_ESN, CBC128_SHA1_ESN):
        out, inb = pair(suite, seq=2**32 + 4)
        pkt = out.protect(INNER)
        assert inb.unprotect(pkt) == ICV_FAILURE  # window at 0: seq 5 is inferred as 5
        inb.window.update(2**32 + 1)
        assert inb.unprotect(pkt) == (4, INNER)
        assert inb.window.top == 2**32 + 5


def test_unknown_spi_and_expired():
    """A packet for another SPI is UNKNOWN_SPI; an expired SA drops everything with SA_EXPIRED."""
    out, inb = pair(GCM128)
    pkt = out.protect(INNER)
    assert isinstance(pkt, bytes)
    assert inb.unprotect(b"\x00\x00\x00\x01" + pkt[4:]) == UNKNOWN_SPI
    inb.expired = True
    assert inb.unprotect(pkt) == SA_EXPIRED
    assert inb.packets == 0


def test_malformed_lengths():
    """Shorter than header + IV + one aligned block + ICV, or a ciphertext not a whole number of blocks."""
    out, inb = pair(GCM128)
    pkt = out.protect(inner_ipv4("10.1.0.1", "10.2.0.1", 30))  # 32 bytes of payload: 8 + 8 + 32 + 16 = 64
    assert isinstance(pkt, bytes) and len(pkt) == 64
    assert inb.unprotect(pkt[:35]) == MALFORMED  # below 8 + 8 + 4 + 16
    assert inb.unprotect(pkt[:-1]) == MALFORMED  # ciphertext 31 bytes: not 4-aligned
    assert inb.unprotect(b"") == MALFORMED
    cout, cin = pair(CBC256_SHA256)
    cpkt = cout.protect(INNER)
    assert isinstance(cpkt, bytes) and len(cpkt) == 8 + 16 + 112 + 16
    assert cin.unprotect(cpkt[: 8 + 16 + 16 + 16 - 1]) == MALFORMED
    assert cin.unprotect(cpkt[:20] + cpkt[21:]) == MALFORMED  # 111 bytes of ciphertext
    assert cin.window.top == 0


def _gcm_packet(plain: bytes, seq: int = 1) -> bytes:
    """A GCM packet with a valid ICV around any plaintext (padding chosen by the test)."""
    ek, _ = keys(GCM128)
    header = SPI + seq.to_bytes(4, "big")
    iv = seq.to_bytes(8, "big")
    return header + iv + AESGCM(ek[:-4]).encrypt(ek[-4:] + iv, plain, header)


def _cbc_packet(plain: bytes, seq: int = 1) -> bytes:
    """An AES-CBC + HMAC-SHA2-256-128 packet with a valid ICV around any block-aligned plaintext."""
    ek, ik = keys(CBC256_SHA256)
    iv = bytes(range(16))
    enc = Cipher(algorithms.AES(ek), modes.CBC(iv)).encryptor()
    signed = SPI + seq.to_bytes(4, "big") + iv + enc.update(plain) + enc.finalize()
    h = HMAC(ik, hashes.SHA256())
    h.update(signed)
    return signed + h.finalize()[:16]


def test_bad_padding_is_malformed_after_the_icv():
    """RFC 4303 §2.4: pad bytes not 1, 2, 3 ... or a Pad Length beyond the payload: MALFORMED, window unchanged."""
    _, inb = pair(GCM128)
    assert inb.unprotect(_gcm_packet(b"abcd" + b"\x01\x02" + b"\x02\x04")) == (4, b"abcd")
    assert inb.unprotect(_gcm_packet(b"abcd" + b"\x00\x00" + b"\x02\x04", seq=2)) == MALFORMED
    assert inb.unprotect(_gcm_packet(b"\x01\x02" + b"\x09\x04", seq=3)) == MALFORMED
    assert (inb.window.top, inb.packets, inb.bytes) == (1, 1, 4)
    _, cin = pair(CBC256_SHA256)
    good = b"x" * 10 + bytes(range(1, 5)) + b"\x04\x04"
    assert cin.unprotect(_cbc_packet(good)) == (4, b"x" * 10)
    assert cin.unprotect(_cbc_packet(b"x" * 10 + b"\x01\x02\x03\x05\x04\x04", seq=2)) == MALFORMED
    assert cin.unprotect(_cbc_packet(b"x" * 14 + b"\x0f\x04", seq=3)) == MALFORMED
    assert cin.window.top == 1


# --- drops on the sender --------------------------------------------------------------------------------


def test_expired_sender():
    """An expired outbound SA sends nothing and keeps its sequence number."""
    out, _ = pair(GCM128)
    out.protect(INNER)
    out.expired = True
    assert out.protect(INNER) == SA_EXPIRED
    assert (out.seq, out.packets) == (1, 1)


def test_seq_exhausted_without_esn():
    """RFC 4303 §3.3.3: 2^32 - 1 is the last number sent without ESN; the next one is refused."""
    out, inb = pair(GCM128, seq=SEQ_MAX - 1)
    inb.window.update(SEQ_MAX - 5)
    pkt = out.protect(INNER)
    assert isinstance(pkt, bytes) and pkt[4:8] == b"\xff\xff\xff\xff"
    assert inb.unprotect(pkt) == (4, INNER)
    assert out.protect(INNER) == SEQ_EXHAUSTED
    assert out.protect(INNER) == SEQ_EXHAUSTED
    assert (out.seq, out.packets, out.expired) == (SEQ_MAX, 1, False)


def test_seq_exhausted_with_esn():
    """With ESN the counter passes 2^32 (low bits 0 on the wire) and stops after 2^64 - 1."""
    out, _ = pair(GCM128_ESN, seq=SEQ_MAX)
    pkt = out.protect(INNER)
    assert isinstance(pkt, bytes) and pkt[4:8] == bytes(4) and out.seq == 2**32
    last, _ = pair(GCM128_ESN, seq=SEQ_MAX_ESN - 1)
    pkt = last.protect(INNER)
    assert isinstance(pkt, bytes) and pkt[4:8] == b"\xff\xff\xff\xff"
    assert last.protect(INNER) == SEQ_EXHAUSTED
    assert last.seq == SEQ_MAX_ESN


# --- limits ---------------------------------------------------------------------------------------------


def test_packet_limits_outbound():
    """Soft at packet 3 (a note, the SA works on), hard at packet 5 (a note, sent, then expired)."""
    out, _ = pair(GCM128, limits=EspLimits(soft_packets=3, hard_packets=5))
    notes = []
    for _ in range(5):
        assert isinstance(out.protect(INNER), bytes)
        notes.append(list(out.notes))
        out.notes.clear()
    assert notes == [[], [], [EspLimitReached(SPI, False, False, "packets")], [],
                     [EspLimitReached(SPI, False, True, "packets")]]
    assert out.expired
    assert out.protect(INNER) == SA_EXPIRED
    assert (out.packets, out.bytes, out.seq, out.notes) == (5, 500, 5, [])


def test_byte_limits_inbound_count_inner_bytes():
    """Inbound counts inner-packet bytes: 100 each; soft 250 is reached by packet 3, hard 400 by packet 4."""
    out, inb = pair(CBC256_SHA256, in_limits=EspLimits(soft_bytes=250, hard_bytes=400))
    pkts = [out.protect(INNER) for _ in range(5)]
    seen = []
    for pkt in pkts[:4]:
        assert inb.unprotect(pkt) == (4, INNER)  # type: ignore[arg-type]
        seen.append((inb.bytes, list(inb.notes)))
        inb.notes.clear()
    assert seen == [(100, []), (200, []), (300, [EspLimitReached(SPI, True, False, "bytes")]),
                    (400, [EspLimitReached(SPI, True, True, "bytes")])]
    assert inb.unprotect(pkts[4]) == SA_EXPIRED  # type: ignore[arg-type]
    assert (inb.packets, inb.bytes) == (4, 400)


def test_byte_limit_crossed_mid_packet_still_passes_that_packet():
    """As in the kernel, the packet that crosses the hard byte limit passes; the next is dropped."""
    out, _ = pair(GCM128, limits=EspLimits(hard_bytes=150))
    assert isinstance(out.protect(INNER), bytes)
    assert isinstance(out.protect(INNER), bytes)  # 200 >= 150
    assert out.notes == [EspLimitReached(SPI, False, True, "bytes")]
    assert out.protect(INNER) == SA_EXPIRED


def test_soft_and_hard_on_the_same_packet():
    """Both limits reached by one packet: the soft note, then the hard one."""
    out, _ = pair(GCM128, limits=EspLimits(soft_packets=1, hard_packets=1))
    assert isinstance(out.protect(INNER), bytes)
    assert out.notes == [EspLimitReached(SPI, False, False, "packets"), EspLimitReached(SPI, False, True, "packets")]


def test_one_soft_note_per_sa():
    """The first counter to reach its soft limit is named; later counters add no second soft note."""
    out, _ = pair(GCM128, limits=EspLimits(soft_packets=3, soft_bytes=150, hard_bytes=1000))
    for _ in range(6):
        out.protect(INNER)
    assert out.notes == [EspLimitReached(SPI, False, False, "bytes")]  # 200 bytes at packet 2; packet 3 adds none
    out2, _ = pair(GCM128, limits=EspLimits(soft_packets=2, soft_bytes=200))
    out2.protect(INNER)
    out2.protect(INNER)
    assert out2.notes == [EspLimitReached(SPI, False, False, "packets")]  # both at packet 2: packets first


def test_seq_notes_default_margin():
    """Soft "seq" note a tenth of the space before 2^32 - 1, hard when 2^32 - 1 is sent; then SEQ_EXHAUSTED."""
    soft_at = SEQ_MAX - SEQ_MAX // 10
    assert soft_at == 3865470566
    out, _ = pair(GCM128, seq=soft_at - 2)
    out.protect(INNER)
    assert out.notes == []
    out.protect(INNER)
    assert out.notes == [EspLimitReached(SPI, False, False, "seq")]
    out.notes.clear()
    near, _ = pair(GCM128, seq=SEQ_MAX - 2)
    assert isinstance(near.protect(INNER), bytes)
    assert near.notes == [EspLimitReached(SPI, False, False, "seq")]
    assert isinstance(near.protect(INNER), bytes)  # 2^32 - 1: the last one goes out
    assert near.notes[1:] == [EspLimitReached(SPI, False, True, "seq")]
    assert not near.expired
    assert near.protect(INNER) == SEQ_EXHAUSTED
    assert len(near.notes) == 2


def test_seq_margin_is_configurable():
    """seq_margin=5: the soft note comes when 2^32 - 6 is sent."""
    out, _ = pair(GCM128, seq=SEQ_MAX - 7, limits=EspLimits(seq_margin=5))
    out.protect(INNER)
    assert out.notes == []
    out.protect(INNER)
    assert (out.seq, out.notes) == (SEQ_MAX - 5, [EspLimitReached(SPI, False, False, "seq")])


def test_sa_made_at_the_last_number_notes_on_the_first_refusal():
    """An SA whose counter is already at 2^32 - 1 refuses the first packet and queues both seq notes."""
    out, _ = pair(GCM128, seq=SEQ_MAX)
    assert out.protect(INNER) == SEQ_EXHAUSTED
    assert out.notes == [EspLimitReached(SPI, False, False, "seq"), EspLimitReached(SPI, False, True, "seq")]
    assert out.protect(INNER) == SEQ_EXHAUSTED
    assert len(out.notes) == 2


def test_esn_seq_notes_are_in_the_64_bit_space():
    """With ESN, passing 2^32 is no limit at all."""
    out, _ = pair(GCM128_ESN, seq=SEQ_MAX - 2)
    for _ in range(4):
        out.protect(INNER)
    assert (out.seq, out.notes) == (2**32 + 1, [])


# --- construction ---------------------------------------------------------------------------------------


def test_bad_configuration_is_refused():
    """Wrong key sizes, an unsupported cipher, a missing MAC or a bad SPI raise ValueError (caller errors)."""
    ek, ik = keys(CBC256_SHA256)
    with pytest.raises(ValueError):
        OutboundEspSa(SPI, CBC256_SHA256, ek[:-1], ik, rng=Rng(0))
    with pytest.raises(ValueError):
        InboundEspSa(SPI, CBC256_SHA256, ek, ik[:-1])
    with pytest.raises(ValueError):
        InboundEspSa(SPI, Suite(EncrId.ENCR_AES_CBC, 256), ek, b"")
    with pytest.raises(ValueError):
        InboundEspSa(SPI, Suite(EncrId.ENCR_AES_CTR, 256), ek, b"")
    with pytest.raises(ValueError):
        InboundEspSa(SPI[:3], CBC256_SHA256, ek, ik)
    with pytest.raises(ValueError):
        OutboundEspSa(SPI, CBC256_SHA256, ek, ik, rng=Rng(0), seq=SEQ_MAX + 1)
