"""ML-KEM as IKEv2 key exchange methods 35-37: FIPS 203 known answers (NIST ACVP), round trips, reproducibility, and the
draft-ietf-ipsecme-ikev2-mlkem-08 §2.2 recipient checks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import mlkem as openssl_mlkem

from ikesim.calibration import _mlkem_costs
from ikesim.crypto import respond_key_exchange as exported_respond
from ikesim.crypto.ke import key_exchange_from_private, new_key_exchange, respond_key_exchange, supported_groups
from ikesim.crypto.meter import OpCounter
from ikesim.crypto.mlkem import MLKEM_GROUPS, encapsulate, modulus_ok
from ikesim.errors import InvalidKeyExchangeData
from ikesim.rng import Rng
from ikesim.sim.cpu import default_costs

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "mlkem"
GROUP_OF = {"ML-KEM-512": 35, "ML-KEM-768": 36, "ML-KEM-1024": 37}
SIZES = {35: (800, 768), 36: (1184, 1088), 37: (1568, 1568)}
"""Draft §2.1 Table 1: Key Exchange Data octets, initiator (ek) / responder (ciphertext)."""
DH_GROUPS = [g for g in supported_groups() if g not in MLKEM_GROUPS]


def _acvp(name: str, function: str | None = None) -> list[tuple[int, dict, dict]]:
    """(group, test group, test case) for every ACVP case of *name* (and *function*) shipped in tests/vectors/mlkem."""
    data = json.loads((VECTORS / name).read_text())
    return [(GROUP_OF[g["parameterSet"]], g, t) for g in data["testGroups"] if g.get("function") == function
            for t in g["tests"]]


KEYGEN = _acvp("keyGen.json")
ENCAPS = _acvp("encapDecap.json", "encapsulation")
DECAPS = _acvp("encapDecap.json", "decapsulation")


class FixedRng:
    """An Rng stand-in that hands out one given byte string (the ACVP m)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def bytes(self, n: int) -> bytes:
        assert n == len(self.data)
        return self.data


def test_shipped_vectors_cover_every_parameter_set() -> None:
    """Two keyGen and two encapsulation cases per parameter set; decapsulation with both reasons for each."""
    for cases in (KEYGEN, ENCAPS):
        assert sorted(g for g, _, _ in cases) == [35, 35, 36, 36, 37, 37]
    reasons = {(g, t["reason"]) for g, _, t in DECAPS}
    assert reasons == {(g, r) for g in (35, 36, 37) for r in ("no modification", "modify ciphertext")}
    assert "65370b861b96efd30dfe0daae607bde26a78a5c8" in (VECTORS / "README.md").read_text()


@pytest.mark.parametrize("group,tg,tc", KEYGEN, ids=[f"tc{t['tcId']}" for _, _, t in KEYGEN])
def test_keygen_known_answers(group: int, tg: dict, tc: dict) -> None:
    """FIPS 203 Algorithm 16 (ML-KEM.KeyGen_internal(d, z)): ek from ikesim's path; ek and dk from kyber-py; ek from
    cryptography's from_seed_bytes for ML-KEM-768/1024."""
    seed = bytes.fromhex(tc["d"] + tc["z"])
    ek, dk = bytes.fromhex(tc["ek"]), bytes.fromhex(tc["dk"])
    assert key_exchange_from_private(group, seed).public_bytes == ek
    assert MLKEM_GROUPS[group].kyber.key_derive(seed) == (ek, dk)
    cls = MLKEM_GROUPS[group].openssl
    assert (cls is None) == (group == 35)
    if cls is not None:
        assert cls.from_seed_bytes(seed).public_key().public_bytes_raw() == ek
    assert len(ek) == SIZES[group][0]


@pytest.mark.parametrize("group,tg,tc", ENCAPS, ids=[f"tc{t['tcId']}" for _, _, t in ENCAPS])
def test_encapsulation_known_answers(group: int, tg: dict, tc: dict) -> None:
    """FIPS 203 Algorithm 17 (ML-KEM.Encaps_internal(ek, m)) through ikesim: ``encapsulate`` and the responder's
    ``respond_key_exchange`` with m as the Rng's draw give ACVP's c and k; kyber-py decapsulates c with dk to k."""
    ek, m, c, k = (bytes.fromhex(tc[f]) for f in ("ek", "m", "c", "k"))
    assert encapsulate(group, ek, m) == (c, k)
    assert respond_key_exchange(group, FixedRng(m), None, ek) == (c, k)  # type: ignore[arg-type]
    assert MLKEM_GROUPS[group].kyber.decaps(bytes.fromhex(tc["dk"]), c) == k
    assert len(c) == SIZES[group][1] and len(k) == 32


@pytest.mark.parametrize("group,tg,tc", DECAPS, ids=[f"tc{t['tcId']}-{t['reason'][:6]}" for _, _, t in DECAPS])
def test_decapsulation_known_answers(group: int, tg: dict, tc: dict) -> None:
    """FIPS 203 Algorithm 18 (ML-KEM.Decaps_internal(dk, c)) with kyber-py, valid and modified ciphertexts; a modified
    one gives the implicit-rejection key J(z || c) (line 7), z the last 32 bytes of dk."""
    dk, c, k = bytes.fromhex(tg["dk"]), bytes.fromhex(tc["c"]), bytes.fromhex(tc["k"])
    assert MLKEM_GROUPS[group].kyber.decaps(dk, c) == k
    rejected = hashlib.shake_256(dk[-32:] + c).digest(32)
    assert (k == rejected) == (tc["reason"] == "modify ciphertext")


@pytest.mark.parametrize("group,tg,tc", KEYGEN, ids=[f"tc{t['tcId']}" for _, _, t in KEYGEN])
def test_initiator_decapsulation_on_acvp_keys(group: int, tg: dict, tc: dict) -> None:
    """ikesim's decapsulation (cryptography for 768/1024, kyber-py for 512) of a key from ACVP's (d, z): a valid
    ciphertext gives encapsulation's K; a modified one the implicit-rejection key J(z || c') (FIPS 203 Algorithm 18)."""
    seed, z = bytes.fromhex(tc["d"] + tc["z"]), bytes.fromhex(tc["z"])
    initiator = key_exchange_from_private(group, seed)
    c, k = encapsulate(group, bytes.fromhex(tc["ek"]), bytes(range(32)))
    assert initiator.compute_shared(c) == k
    modified = bytes([c[0] ^ 1]) + c[1:]
    assert initiator.compute_shared(modified) == hashlib.shake_256(z + modified).digest(32) != k


@pytest.mark.parametrize("group", supported_groups())
def test_round_trip_for_every_group(group: int) -> None:
    """new_key_exchange (initiator) and respond_key_exchange (responder) agree for every supported method; ML-KEM
    data has draft §2.1's sizes and a 32-byte secret."""
    initiator = new_key_exchange(group, Rng(11, "i"))
    data, secret = respond_key_exchange(group, Rng(11, "r"), None, initiator.public_bytes)
    assert initiator.compute_shared(data) == secret
    if group in MLKEM_GROUPS:
        assert (len(initiator.public_bytes), len(data), len(secret)) == (*SIZES[group], 32)


def test_supported_groups_and_export() -> None:
    """35-37 are supported after the Diffie-Hellman groups; respond_key_exchange is exported from ikesim.crypto."""
    assert supported_groups() == (31, 19, 14, 15, 16, 17, 18, 20, 21, 28, 29, 30, 32, 35, 36, 37)
    assert exported_respond is respond_key_exchange


@pytest.mark.parametrize("group", DH_GROUPS)
def test_dh_responder_draws_exactly_as_the_two_calls(group: int) -> None:
    """For Diffie-Hellman, respond_key_exchange is new_key_exchange then compute_shared: the same bytes, the same
    meter counts, and the Rng left in the same state (existing runs keep their bytes)."""
    peer = new_key_exchange(group, Rng(5, "peer")).public_bytes
    old_rng, new_rng, old_meter, new_meter = Rng(5, "ke"), Rng(5, "ke"), OpCounter(), OpCounter()
    mine = new_key_exchange(group, old_rng, old_meter)
    old = (mine.public_bytes, mine.compute_shared(peer))
    assert respond_key_exchange(group, new_rng, new_meter, peer) == old
    assert new_meter.snapshot() == old_meter.snapshot() == {f"ke_keygen:{group}": 1, f"ke_shared:{group}": 1}
    assert new_rng.bytes(16) == old_rng.bytes(16)


@pytest.mark.parametrize("group", sorted(MLKEM_GROUPS))
def test_mlkem_draws_and_determinism(group: int) -> None:
    """Key generation draws 64 bytes (d || z), encapsulation 32 (m), nothing else: same seed, same bytes; another
    seed, other bytes."""
    a = new_key_exchange(group, Rng(3, "i"))
    assert a.public_bytes == key_exchange_from_private(group, Rng(3, "i").bytes(64)).public_bytes
    assert a.public_bytes == new_key_exchange(group, Rng(3, "i")).public_bytes
    assert a.public_bytes != new_key_exchange(group, Rng(4, "i")).public_bytes
    rng, twin = Rng(3, "r"), Rng(3, "r")
    c, k = respond_key_exchange(group, rng, None, a.public_bytes)
    assert (c, k) == encapsulate(group, a.public_bytes, twin.bytes(32))
    assert rng.bytes(8) == twin.bytes(8)
    assert respond_key_exchange(group, Rng(3, "r"), None, a.public_bytes) == (c, k)
    assert respond_key_exchange(group, Rng(4, "r"), None, a.public_bytes)[0] != c


def test_no_library_randomness_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """kyber-py's own entropy (os.urandom) and cryptography's random key generation are never called."""
    def refuse(*_a: object) -> None:
        raise AssertionError("library randomness used")

    for params in MLKEM_GROUPS.values():
        monkeypatch.setattr(params.kyber, "random_bytes", refuse)
    monkeypatch.setattr(openssl_mlkem.MLKEM768PrivateKey, "generate", refuse)
    monkeypatch.setattr(openssl_mlkem.MLKEM1024PrivateKey, "generate", refuse)
    for group in MLKEM_GROUPS:
        a = new_key_exchange(group, Rng(1, "i"))
        c, k = respond_key_exchange(group, Rng(1, "r"), None, a.public_bytes)
        assert a.compute_shared(c) == k


@pytest.mark.parametrize("group", sorted(MLKEM_GROUPS))
def test_meter_names(group: int) -> None:
    """ke_keygen:G (key generation), ke_encaps:G (responder), ke_shared:G (decapsulation), once each."""
    meter = OpCounter()
    a = new_key_exchange(group, Rng(1, "i"), meter)
    c, _ = respond_key_exchange(group, Rng(1, "r"), meter, a.public_bytes)
    a.compute_shared(c)
    assert meter.snapshot() == {f"ke_keygen:{group}": 1, f"ke_encaps:{group}": 1, f"ke_shared:{group}": 1}


@pytest.mark.parametrize("group", sorted(MLKEM_GROUPS))
def test_bad_ciphertext_lengths(group: int) -> None:
    """FIPS 203 §7.3 ciphertext type check: any other length raises InvalidKeyExchangeData (and counts nothing)."""
    meter = OpCounter()
    a = new_key_exchange(group, Rng(1, "i"), meter)
    c, _ = respond_key_exchange(group, Rng(1, "r"), None, a.public_bytes)
    for bad in (b"", c[:-1], c + b"\x00", bytes(SIZES[35 if group != 35 else 36][1])):
        with pytest.raises(InvalidKeyExchangeData, match="ciphertext of"):
            a.compute_shared(bad)
    assert meter.snapshot() == {f"ke_keygen:{group}": 1}


def _with_coefficient(ek: bytes, index: int, value: int) -> bytes:
    """*ek* with its 12-bit coefficient number *index* (FIPS 203 ByteEncode_12 order) set to *value*."""
    i, odd = 3 * (index // 2), index % 2
    b = bytearray(ek)
    if odd:
        b[i + 1] = (b[i + 1] & 0x0F) | (value & 0x0F) << 4
        b[i + 2] = value >> 4
    else:
        b[i] = value & 0xFF
        b[i + 1] = (b[i + 1] & 0xF0) | value >> 8
    return bytes(b)


@pytest.mark.parametrize("group", sorted(MLKEM_GROUPS))
def test_bad_encapsulation_keys(group: int) -> None:
    """FIPS 203 §7.2: a wrong length or a coefficient >= q = 3329 (first, second, last) raises InvalidKeyExchangeData
    before any encapsulation is counted; q - 1 passes. kyber-py's own check agrees."""
    ek = new_key_exchange(group, Rng(2, "i")).public_bytes
    last = 256 * MLKEM_GROUPS[group].k - 1
    meter = OpCounter()
    for bad in (ek[:-1], ek + b"\x00", b"", bytes(SIZES[37 if group != 37 else 36][0])):
        with pytest.raises(InvalidKeyExchangeData, match="encapsulation key of"):
            respond_key_exchange(group, Rng(1), meter, bad)
    for index, value in ((0, 3329), (1, 4095), (last, 3329), (last - 1, 0xFFF)):
        bad = _with_coefficient(ek, index, value)
        assert bad != ek and not modulus_ok(MLKEM_GROUPS[group], bad)
        with pytest.raises(InvalidKeyExchangeData, match="modulus check"):
            respond_key_exchange(group, Rng(1), meter, bad)
        with pytest.raises(ValueError, match="Modulus check failed"):
            MLKEM_GROUPS[group].kyber._encaps_internal(bad, bytes(32))
    assert meter.snapshot() == {}
    edge = _with_coefficient(ek, last, 3328)
    assert modulus_ok(MLKEM_GROUPS[group], edge)
    assert len(respond_key_exchange(group, Rng(1), meter, edge)[0]) == SIZES[group][1]
    assert meter.snapshot() == {f"ke_encaps:{group}": 1}


def test_cpu_model_costs_every_mlkem_operation() -> None:
    """The shipped calibration table and ``ikesim calibrate`` both price keygen, encaps and decaps of 35-37."""
    names = {f"{op}:{g}" for op in ("ke_keygen", "ke_encaps", "ke_shared") for g in (35, 36, 37)}
    shipped = default_costs()
    assert names <= set(shipped) and all(0 < shipped[n] < 1e-3 for n in names)
    measured = _mlkem_costs(Rng(0, "test"), 3)
    assert set(measured) == names and all(v > 0 for v in measured.values())
