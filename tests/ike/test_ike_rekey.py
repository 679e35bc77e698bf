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




# --- hostile IKE rekey proposals from an authenticated peer (issue 11) ----------------------------

from dataclasses import replace as _with  # noqa: E402

from hostile import hostile_request, hostile_response, only_sa, replace  # noqa: E402

from ikesim.wire.iana import NotifyType  # noqa: E402
from ikesim.wire.payloads import NotifyPayload, SaPayload  # noqa: E402


def _with_spi(spi: bytes):  # noqa: ANN202
    def mutate(pl: list) -> list:
        sa = next(x for x in pl if isinstance(x, SaPayload))
        return replace(pl, SaPayload, SaPayload(tuple(_with(x, spi=spi) for x in sa.proposals)))
    return mutate


@pytest.mark.parametrize("spi", [bytes(4), b"", bytes(8)], ids=["4_bytes", "empty", "zero"])
def test_ike_rekey_request_with_a_bad_spi_gets_invalid_syntax(spi: bytes) -> None:
    """RFC 7296 §3.3.1, §2.6: an IKE rekey proposal carries a non-zero 8-byte SPI; otherwise N(INVALID_SYNTAX)
    and no new IKE_SA (before: accepted, and the next message with that SPI could not be built)."""
    p = make_peers()
    p.establish()
    (old,) = p.client.ike_sa_spis()
    p.client.rekey_ike_sa(old, 1.0)
    answer = hostile_request(p, _with_spi(spi), 1.0)
    assert answer.is_response and answer.payloads == (NotifyPayload(NotifyType.INVALID_SYNTAX),)
    assert [(type(e).__name__, e.notify) for e in p.events(p.gateway)] == [("ErrorNotifySent", "INVALID_SYNTAX")]
    assert len(p.gateway.sas) == 1 and only_sa(p.gateway).state.value == "established"


def test_ike_rekey_response_with_a_zero_spi_fails_the_exchange() -> None:
    """RFC 7296 §2.6: a zero IKE SPI in the rekey answer fails the exchange; the old IKE_SA stays in use."""
    p = make_peers()
    p.establish()
    (old,) = p.client.ike_sa_spis()
    p.client.rekey_ike_sa(old, 1.0)
    hostile_response(p, _with_spi(bytes(8)), 1.0)
    c = p.events(p.client)
    assert names(c) == ["RekeyStarted", "ExchangeStarted", "ExchangeCompleted"]
    assert (c[2].purpose, c[2].outcome) == ("rekey_ike", "INVALID_SYNTAX")
    assert p.client.ike_sa_spis() == [old] and list(p.client.sas) == [old]
    p.client.check_liveness(old, 2.0)  # the old IKE_SA still works
    p.settle(2.0)
    done = [e for e in p.events(p.client) if isinstance(e, ev.ExchangeCompleted)]
    assert [(e.purpose, e.outcome) for e in done] == [("dpd", "ok")]


def test_ike_rekey_response_with_a_short_nonce_fails_the_exchange() -> None:
    """RFC 7296 §3.9: an authenticated answer whose nonce is 8 octets fails the rekey (ResponseRejected names it)
    instead of deriving a new IKE_SA from it."""
    from ikesim.wire.payloads import NoncePayload

    p = make_peers()
    p.establish()
    (old,) = p.client.ike_sa_spis()
    p.client.rekey_ike_sa(old, 1.0)
    hostile_response(p, lambda pl: replace(pl, NoncePayload, NoncePayload(bytes(8))), 1.0)
    c = p.events(p.client)
    assert names(c) == ["RekeyStarted", "ExchangeStarted", "ResponseRejected", "ExchangeCompleted"]
    assert c[2].reason == "invalid payload: nonce of 8 bytes (RFC 7296 §3.9: 16..256)"
    assert (c[3].purpose, c[3].outcome) == ("rekey_ike", "INVALID_SYNTAX")
    assert list(p.client.sas) == [old]


def test_ike_rekey_response_with_a_proposal_not_offered_fails_the_exchange() -> None:
    """RFC 7296 §3.3.6: the rekey answer's proposal must be one we offered (here: number 9): ResponseRejected names
    it, the exchange fails with INVALID_SYNTAX, no new IKE_SA."""
    p = make_peers()
    p.establish()
    (old,) = p.client.ike_sa_spis()
    p.client.rekey_ike_sa(old, 1.0)

    def renumber(pl: list) -> list:
        sa = next(x for x in pl if isinstance(x, SaPayload))
        return replace(pl, SaPayload, SaPayload((_with(sa.proposals[0], number=9),)))

    hostile_response(p, renumber, 1.0)
    c = p.events(p.client)
    assert names(c) == ["RekeyStarted", "ExchangeStarted", "ResponseRejected", "ExchangeCompleted"]
    assert c[2].reason == "answer proposal number 9 was not offered"
    assert (c[3].purpose, c[3].outcome) == ("rekey_ike", "INVALID_SYNTAX")
    assert list(p.client.sas) == [old]
