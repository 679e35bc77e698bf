"""A node that silently forgets an SA (``ikesim.ike.forget``): no Delete leaves, and the peer learns as RFC 7296 says
(§2.25.1 CHILD_SA_NOT_FOUND, §1.4.1 Delete of an unknown SPI, §2.4 silence)."""

from __future__ import annotations

import pytest
from ikepeers import Peers, make_peers, names

from ikesim.errors import LocalProtocolError
from ikesim.ike.forget import FORGOTTEN, forget_child_sa, forget_ike_sa


def test_forgotten_child_sa_goes_silently(peers: Peers) -> None:
    """The CHILD_SA leaves the node's tables with ChildSaDeleted(forgotten); nothing is sent, the peer keeps it."""
    c_spi, g_spi = peers.establish()
    forget_child_sa(peers.gateway, g_spi, 5.0)
    g = peers.events(peers.gateway)
    assert names(g) == ["ChildSaDeleted"]
    assert (g[0].spi_in, g[0].spi_out, g[0].reason) == (g_spi, c_spi, FORGOTTEN)
    assert peers.gateway.datagrams_to_send(5.0) == []
    assert peers.gateway.child_sa_spis() == [] and peers.client.child_sa_spis() == [c_spi]
    assert all(peers.gateway.timers.deadline((k, g_spi)) is None for k in ("child_soft", "child_hard", "linger"))


def test_rekey_of_a_forgotten_child_sa_gets_child_sa_not_found_and_a_new_one(peers: Peers) -> None:
    """RFC 7296 §2.25.1, strongSwan child_rekey.c: the peer answers CHILD_SA_NOT_FOUND; the rekeying node removes the
    CHILD_SA and creates a replacement from scratch (``recreate``)."""
    c_spi, g_spi = peers.establish()
    forget_child_sa(peers.gateway, g_spi, 5.0)
    peers.events(peers.gateway)
    peers.client.rekey_child_sa(c_spi, 10.0)
    peers.settle(10.0)
    c, g = peers.events(peers.client), peers.events(peers.gateway)
    assert names(g) == ["ExchangeCollision", "ErrorNotifySent", "ChildSaInstalled"]
    assert (g[0].case, g[0].spi_out, g[1].notify) == ("rekey_of_unknown", c_spi, "CHILD_SA_NOT_FOUND")
    assert names(c) == ["RekeyStarted", "ExchangeStarted", "ErrorNotifyReceived", "ExchangeCompleted", "ChildSaDeleted",
                        "ExchangeStarted", "ExchangeCompleted", "ChildSaInstalled"]
    assert (c[3].outcome, c[4].spi_in, c[5].purpose, c[5].reason) == ("CHILD_SA_NOT_FOUND", c_spi, "create_child",
                                                                       "recreate")
    (new_c,), (new_g,) = peers.client.child_sa_spis(), peers.gateway.child_sa_spis()
    assert (c[7].spi_in, c[7].spi_out, g[2].spi_in, g[2].spi_out) == (new_c, new_g, new_g, new_c)


def test_forgotten_ike_sa_takes_its_children_and_keeps_nothing() -> None:
    """No Delete, no re-establishment, no response cache (RFC 7296 §2.1); the peer's DPD gets no answer (§2.4)."""
    p = make_peers()
    c_spi, _g_spi = p.establish()
    (ike,) = p.client.ike_sa_spis()
    forget_ike_sa(p.client, ike, 5.0)
    c = p.events(p.client)
    assert names(c) == ["ChildSaDeleted", "IkeSaDeleted"]
    assert (c[0].spi_in, c[0].reason, c[1].reason) == (c_spi, FORGOTTEN, FORGOTTEN)
    assert p.client.datagrams_to_send(5.0) == [] and p.client.get_timer() is None
    assert p.client.sas == {} and p.client.children == {} and p.client.closed == {}
    (g_ike,) = p.gateway.ike_sa_spis()
    p.gateway.check_liveness(g_ike, 6.0)
    assert len(p.deliver(p.gateway, 6.0)) == 1
    assert p.client.datagrams_to_send(6.0) == []  # an unknown IKE_SA: dropped, unanswered
    assert names(p.events(p.client)) == ["MessageDropped"]


def test_forgetting_what_is_not_held_is_a_local_error(peers: Peers) -> None:
    """An unknown SPI is a LocalProtocolError (the scripted action records it as ActionSkipped)."""
    peers.establish()
    with pytest.raises(LocalProtocolError, match="unknown CHILD_SA 00000000"):
        forget_child_sa(peers.client, bytes(4), 1.0)
    with pytest.raises(LocalProtocolError, match="unknown IKE_SA 0000000000000000"):
        forget_ike_sa(peers.client, bytes(8), 1.0)
