"""strongSwan 6.0's default ESP proposals make PFS optional (KE methods plus ``none``): a rekey against a peer
without PFS agrees on a non-PFS proposal and drops the KE (charon ``child_create.c`` ``check_ke_method``;
RFC 7296 §1.3.1, §3.3.2)."""

from __future__ import annotations

from ikepeers import make_peers, names

from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy


def _rekey(client: tuple[str, ...], gateway: tuple[str, ...]) -> tuple[list[ev.ChildSaInstalled], list[str]]:
    p = make_peers(client_children=(ChildPolicy(proposals=client),), gateway_children=(ChildPolicy(proposals=gateway),))
    c_spi, _ = p.establish()
    p.client.rekey_child_sa(c_spi, 10.0)
    p.settle(10.0)
    c, g = p.events(p.client), p.events(p.gateway)
    return [e for e in c + g if isinstance(e, ev.ChildSaInstalled)], names(c)


def test_default_initiator_rekeys_without_pfs_against_a_non_pfs_peer() -> None:
    """The offer carries an ECP-256 KE payload (the first KE method); the answer has no KE: installed, no PFS."""
    installed, client = _rekey(("default",), ("aes256gcm16",))
    assert client == ["RekeyStarted", "ExchangeStarted", "ExchangeCompleted", "ChildSaInstalled", "RekeyCompleted",
                      "ExchangeStarted", "ExchangeCompleted"]
    assert [(e.pfs_group, e.encr) for e in installed] == [("none", "aes256gcm16"), ("none", "aes256gcm16")]


def test_default_on_both_ends_rekeys_with_ecp256_pfs() -> None:
    """Both ``default``: AES-GCM-128 first (ESP puts the AEAD default first), PFS with the first KE method."""
    installed, _ = _rekey(("default",), ("default",))
    assert [(e.pfs_group, e.encr) for e in installed] == [("ecp256", "aes128gcm16"), ("ecp256", "aes128gcm16")]


def test_chacha_and_x448_pfs_are_chosen_from_a_longer_list() -> None:
    """The responder's list (``default`` first) still accepts the initiator's ChaCha20-Poly1305 with X448 PFS."""
    installed, _ = _rekey(("chacha20poly1305-x448",), ("default", "chacha20poly1305-x448"))
    assert [(e.pfs_group, e.encr) for e in installed] == [("x448", "chacha20poly1305"), ("x448", "chacha20poly1305")]
