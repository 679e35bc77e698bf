"""IKE_SA rekey: new SPIs, children move, old SA deleted (RFC 7296 §1.3.2, §2.18)."""

from __future__ import annotations

import pytest
from ikepeers import make_peers, names

from ikesim.ike import events as ev
from ikesim.wire.codec import parse_message


@pytest.mark.parametrize("side", ["client", "gateway"])
def test_ike_rekey_moves_children_and_deletes_old(side: str) -> None:
    """IKE rekey from either side: new IKE_SA on both, children moved, old SA deleted as rekeyed."""
    p = make_peers()
    c_spi, g_spi = p.establish()
    a = p.client if side == "client" else p.gateway
    b = p.other(a)
    (old_a,) = a.ike_sa_spis()
    (old_b,) = b.ike_sa_spis()
    a.rekey_ike_sa(old_a, 20.0)
    p.settle(20.0)
    ea, eb = p.events(a), p.events(b)
    assert names(ea) == ["RekeyStarted", "ExchangeStarted", "ExchangeCompleted", "IkeSaEstablished",
                         "RekeyCompleted", "ExchangeStarted", "ExchangeCompleted", "IkeSaDeleted"]
    assert ea[1].purpose == "rekey_ike" and ea[5].purpose == "delete_ike"
    assert ea[5].spi_i == ea[0].spi_i  # the Delete goes on the OLD IKE_SA
    assert names(eb) == ["IkeSaEstablished", "RekeyCompleted", "IkeSaDeleted"]
    new_a, new_b = ea[3], eb[0]
    assert new_a.rekey_of == old_a and new_b.rekey_of == old_b
    assert (new_a.spi_i, new_a.spi_r) == (new_b.spi_i, new_b.spi_r)
    assert new_a.initiator is True and new_b.initiator is False
    assert new_a.sk_ei == new_b.sk_ei and new_a.sk_ei != ea[0].spi_i
    assert ea[7].reason == eb[2].reason == "rekeyed"
    (na,), (nb,) = a.ike_sa_spis(), b.ike_sa_spis()
    assert na not in (old_a, old_b) and nb not in (old_a, old_b)
    assert a.ike_sa_info(na).children == tuple(a.child_sa_spis())
    assert p.client.child_sa_spis() == [c_spi] and p.gateway.child_sa_spis() == [g_spi]
    assert a.ike_sa_info(na).next_message_id == 0 and b.ike_sa_info(nb).peer_message_id == 0
    # message IDs restart at 0 on the new SA: a CHILD rekey now uses ID 0
    p.client.rekey_child_sa(c_spi, 30.0)
    (d,) = p.client.datagrams_to_send(30.0)
    m = parse_message(d.data)
    assert m.message_id == 0 and {m.spi_i, m.spi_r} == {na, nb}
    p.gateway.receive_datagram(d.data, d.src, d.dst, 30.0)
    p.settle(30.0)
    assert any(isinstance(e, ev.RekeyCompleted) for e in p.events(p.client))


