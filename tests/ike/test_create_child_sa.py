"""CREATE_CHILD_SA for CHILD_SAs: rekey with/without PFS, new, collisions (RFC 7296 §1.3, §2.25)."""

from __future__ import annotations

from ikepeers import Peers, make_peers, names

from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy
from ikesim.wire.codec import parse_message


def _rekey(p: Peers, c_spi: bytes, g_spi: bytes, *, pfs: str) -> None:
    p.client.rekey_child_sa(c_spi, 10.0)
    p.settle(10.0)
    c, g = p.events(p.client), p.events(p.gateway)
    assert names(c) == ["RekeyStarted", "ExchangeStarted", "ExchangeCompleted", "ChildSaInstalled",
                        "RekeyCompleted", "ExchangeStarted", "ExchangeCompleted"]
    assert (c[0].old_spi, c[0].old_spi_out, c[0].trigger) == (c_spi, g_spi, "command")
    assert [e.purpose for e in c if isinstance(e, ev.ExchangeStarted)] == ["rekey_child",
                                                                           "delete_child"]
    # the responder keeps sending with the old SA until the initiator's Delete of it arrives (§2.8)
    assert names(g) == ["ChildSaInstalled", "RekeyCompleted", "ChildSaOutboundInstalled"]
    assert g[0].outbound is False and c[3].outbound is True
    assert (g[2].spi_in, g[2].replaces) == (g[0].spi_in, g_spi)
    new_c, new_g = c[3], g[0]
    assert new_c.spi_in == new_g.spi_out and new_c.spi_out == new_g.spi_in
    assert (new_c.rekey_of, new_c.rekey_of_out) == (c_spi, g_spi)
    assert (new_g.rekey_of, new_g.rekey_of_out) == (g_spi, c_spi)
    assert new_c.encr_key_out == new_g.encr_key_in and new_c.encr_key_in == new_g.encr_key_out
    assert new_c.pfs_group == new_g.pfs_group == pfs
    assert c[4].initiator is True and g[1].initiator is False
    # the old inbound SAs linger delete_rekeyed_delay (5 s), then go
    assert p.client.child_sa_spis() == [new_c.spi_in]
    assert p.gateway.child_sa_spis() == [new_g.spi_in]
    assert p.client.get_timer() == 15.0 and p.gateway.get_timer() == 15.0
    p.run_timers(15.0)
    c, g = p.events(p.client), p.events(p.gateway)
    assert [(type(e).__name__, e.spi_in, e.reason) for e in c] == [
        ("ChildSaDeleted", c_spi, "rekeyed")]
    assert [(type(e).__name__, e.spi_in, e.reason) for e in g] == [
        ("ChildSaDeleted", g_spi, "rekeyed")]


def test_child_rekey_without_pfs(peers: Peers) -> None:
    """CHILD rekey (no PFS): new pair installed on both sides, old one deleted then removed."""
    c_spi, g_spi = peers.establish()
    _rekey(peers, c_spi, g_spi, pfs="none")


def test_child_rekey_with_pfs_x25519() -> None:
    """CHILD rekey with PFS x25519: KE payloads exchanged, pfs_group reported."""
    child = (ChildPolicy(proposals=("aes256gcm16-x25519",)),)
    p = make_peers(client_children=child, gateway_children=child)
    c_spi, g_spi = p.establish()
    _rekey(p, c_spi, g_spi, pfs="x25519")


def test_child_rekey_request_payload_order(peers: Peers) -> None:
    """The rekey request carries N(REKEY_SA) SA No TSi TSr, like strongSwan."""
    c_spi, _ = peers.establish()
    peers.client.rekey_child_sa(c_spi, 1.0)
    (d,) = peers.client.datagrams_to_send(1.0)
    (sa,) = peers.client.sas.values()
    from ikesim.wire.codec import unprotect_message

    msg = unprotect_message(d.data, peers.gateway.sas[sa.spi_r].protect_in)
    assert [type(x).__name__ for x in msg.payloads] == [
        "NotifyPayload", "SaPayload", "NoncePayload", "TsiPayload", "TsrPayload"]
    assert msg.payloads[0].spi == c_spi
    assert parse_message(d.data).message_id == 2


def test_create_additional_child(peers: Peers) -> None:
    """create_child_sa adds a second CHILD_SA pair."""
    peers.establish()
    (spi,) = peers.client.ike_sa_spis()
    peers.client.create_child_sa(spi, "net", 3.0)
    peers.settle(3.0)
    c, g = peers.events(peers.client), peers.events(peers.gateway)
    assert names(c) == ["ExchangeStarted", "ExchangeCompleted", "ChildSaInstalled"]
    assert c[0].purpose == "create_child" and c[2].rekey_of is None
    assert names(g) == ["ChildSaInstalled"]
    assert len(peers.client.child_sa_spis()) == 2 == len(peers.gateway.child_sa_spis())


def test_rekey_of_child_the_peer_removed_gets_child_sa_not_found(peers: Peers) -> None:
    """A lost rekey crosses the peer's Delete; its retransmission gets CHILD_SA_NOT_FOUND, and as the CHILD_SA no
    longer exists a new one is created from scratch (RFC 7296 §2.25.1)."""
    c_spi, g_spi = peers.establish()
    peers.client.rekey_child_sa(c_spi, 1.0)
    peers.client.datagrams_to_send(1.0)  # lost
    peers.gateway.delete_child_sa(g_spi, 1.0)
    peers.settle(1.0)
    assert peers.client.child_sa_spis() == [] and peers.gateway.child_sa_spis() == []
    peers.events(peers.client)
    peers.client.handle_timer(5.0)
    peers.settle(5.0)
    c = peers.events(peers.client)
    assert names(c) == ["Retransmitted", "ErrorNotifyReceived", "ExchangeCompleted", "ExchangeStarted",
                        "ExchangeCompleted", "ChildSaInstalled"]
    assert c[1].notify == "CHILD_SA_NOT_FOUND" and c[2].outcome == "CHILD_SA_NOT_FOUND"
    assert (c[3].purpose, c[3].reason, c[5].rekey_of) == ("create_child", "recreate", None)
    (new_c,), (new_g,) = peers.client.child_sa_spis(), peers.gateway.child_sa_spis()
    assert new_c not in (c_spi, g_spi) and peers.client.children[new_c].spi_out == new_g
    assert peers.gateway.children[new_g].spi_out == new_c
