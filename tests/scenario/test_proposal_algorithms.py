"""Scenario tunnels with each newly supported algorithm establish, rekey and carry ESP; bad keywords are refused
naming file, line and key (strongSwan proposal syntax: ChaCha20-Poly1305, AES-GCM-192, SHA-1, ECP-384/521, brainpool,
MODP-3072..8192, Curve448, prfsha384, ``default``, ``!`` and ipsec.conf values)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ikesim.errors import ConfigError
from ikesim.scenario.build import build_simulation
from ikesim.scenario.load import load_scenario_text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from algorithm_scenario import SCENARIO  # noqa: E402

_COMMON = {"hash": 8, "prf": 22, "prf_plus": 24}


@pytest.mark.parametrize(("ike", "esp", "ops"), [
    ("chacha20poly1305-prfsha256-x448", "chacha20poly1305-ecp384",
     {"ke_keygen:32": 10, "ke_shared:32": 10, "ke_keygen:20": 12, "ke_shared:20": 12,
      "sk_seal:chacha20poly1305": 42, "sk_open:chacha20poly1305": 42}),
    ("aes256gcm16-prfsha384-ecp384", "aes256-sha384-ecp521",
     {"ke_keygen:20": 10, "ke_shared:20": 10, "ke_keygen:21": 12, "ke_shared:21": 12,
      "sk_seal:aes256gcm16": 42, "sk_open:aes256gcm16": 42}),
    ("aes256-sha384-prfsha384-curve448", "aes192gcm16-x448",
     {"ke_keygen:32": 22, "ke_shared:32": 22, "sk_seal:aes256": 42, "sk_open:aes256": 42}),
    ("aes256-sha256-modp4096", "aes256gcm16-modp3072",
     {"ke_keygen:16": 10, "ke_shared:16": 10, "ke_keygen:15": 12, "ke_shared:15": 12,
      "sk_seal:aes256": 42, "sk_open:aes256": 42}),
    ("aes256-sha512-prfsha512-modp8192", "aes128gcm16-modp6144",
     {"ke_keygen:18": 10, "ke_shared:18": 10, "ke_keygen:17": 12, "ke_shared:17": 12,
      "sk_seal:aes256": 42, "sk_open:aes256": 42}),
    ("aes256gcm16-prfsha512-ecp512bp", "aes256gcm16-ecp256bp-ecp384bp",
     {"ke_keygen:30": 10, "ke_shared:30": 10, "ke_keygen:28": 12, "ke_shared:28": 12,
      "sk_seal:aes256gcm16": 42, "sk_open:aes256gcm16": 42}),
    ("default", "default",
     {"ke_keygen:19": 22, "ke_shared:19": 22, "sk_seal:aes128": 42, "sk_open:aes128": 42}),
    ("ike=aes128-sha256-modp2048", "esp=aes128gcm16!",
     {"ke_keygen:14": 10, "ke_shared:14": 10, "sk_seal:aes128": 42, "sk_open:aes128": 42}),
])
def test_tunnel_with_each_algorithm_establishes_rekeys_and_carries_esp(ike: str, esp: str, ops: dict[str, int]) -> None:
    """5 IKE_SAs and 7 CHILD_SAs per node in 130 s (IKE rekeys at 60 s, CHILD at 40 s, both ends at once), ESP
    delivers all but the 2 packets sent before the first CHILD_SA; every primitive is counted under its name.

    ``default``: strongSwan's first default IKE proposal wins (AES-CBC-128, SHA-256, ECP-256), its ESP default
    puts AES-GCM first, and the rekeys use PFS with ECP-256 (the first KE method, as charon's get_algorithm)."""
    model = load_scenario_text(SCENARIO.replace("IKE", ike).replace("ESP", esp), "algorithms.yaml")
    r = build_simulation(model).run(model.duration)
    s = r.summary
    assert s["sas"] == {"ike_established": 10, "child_installed": 14, "ike_deleted": 8, "child_deleted": 12}
    assert (s["invariant_violations"], s["traffic"]["sent"], s["traffic"]["delivered"]) == (0, 520, 518)
    assert s["crypto_ops"] == {**_COMMON, **ops}


@pytest.mark.parametrize(("ike", "esp", "message"), [
    ("aes128ctr-sha256-modp2048", "aes128gcm16", "algorithms.yaml:14: connections.vpn.ike.proposals: algorithm "
     "'aes128ctr' in proposal 'aes128ctr-sha256-modp2048' is a strongSwan keyword that ikesim does not implement"),
    ("default", "aes128gcm16-modp1024", "algorithms.yaml:15: connections.vpn.child.proposals: algorithm 'modp1024' in "
     "proposal 'aes128gcm16-modp1024' is a strongSwan keyword that ikesim does not implement"),
    ("aes256gcm16-prfsha256-x25519", "ike=aes128gcm16", "algorithms.yaml:15: connections.vpn.child.proposals: "
     "proposal 'ike=aes128gcm16': an ipsec.conf ike= value in a list of ESP proposals (write esp=...)"),
    ("aes256gcm16-prfsha384-ecp385", "default", "algorithms.yaml:14: connections.vpn.ike.proposals: unknown algorithm "
     "'ecp385' in proposal 'aes256gcm16-prfsha384-ecp385' (not a strongSwan proposal keyword)"),
])
def test_unknown_and_unimplemented_keywords_name_file_line_and_key(ike: str, esp: str, message: str) -> None:
    """Refused while loading (the CLI exits 2), in words that name the keyword."""
    with pytest.raises(ConfigError) as exc:
        load_scenario_text(SCENARIO.replace("IKE", ike).replace("ESP", esp), "algorithms.yaml")
    assert str(exc.value) == message
