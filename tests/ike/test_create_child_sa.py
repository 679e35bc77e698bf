"""CREATE_CHILD_SA for CHILD_SAs: rekey with/without PFS, new, collisions (RFC 7296 §1.3, §2.25)."""

from __future__ import annotations

from ikepeers import Peers, make_peers, names

from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy, IkePolicy
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
    """A lost rekey crosses the peer's Delete, which is answered but the SA kept until the rekey concludes
    (strongSwan ``keep_while_rekeying``); the retransmission gets CHILD_SA_NOT_FOUND, the SA goes, and as the CHILD_SA
    no longer exists a new one is created from scratch (RFC 7296 §2.25.1)."""
    c_spi, g_spi = peers.establish()
    peers.client.rekey_child_sa(c_spi, 1.0)
    peers.client.datagrams_to_send(1.0)  # lost
    peers.gateway.delete_child_sa(g_spi, 1.0)
    peers.settle(1.0)
    assert peers.client.child_sa_spis() == [c_spi] and peers.gateway.child_sa_spis() == []
    peers.events(peers.client)
    peers.client.handle_timer(5.0)
    peers.settle(5.0)
    c = peers.events(peers.client)
    assert names(c) == ["Retransmitted", "ErrorNotifyReceived", "ExchangeCompleted", "ChildSaDeleted",
                        "ExchangeStarted", "ExchangeCompleted", "ChildSaInstalled"]
    assert c[1].notify == "CHILD_SA_NOT_FOUND" and c[2].outcome == "CHILD_SA_NOT_FOUND"
    assert (c[3].spi_in, c[3].reason) == (c_spi, "deleted_by_peer")
    assert (c[4].purpose, c[4].reason, c[6].rekey_of) == ("create_child", "recreate", None)
    (new_c,), (new_g,) = peers.client.child_sa_spis(), peers.gateway.child_sa_spis()
    assert new_c not in (c_spi, g_spi) and peers.client.children[new_c].spi_out == new_g
    assert peers.gateway.children[new_g].spi_out == new_c


# --- hostile CREATE_CHILD_SA from an authenticated peer (issue 11) ---------------------------------

from dataclasses import replace as _with  # noqa: E402

import pytest  # noqa: E402
from hostile import hostile_request, hostile_response, opened, replace  # noqa: E402

from ikesim.wire.iana import NotifyType, ProtocolId, TsType  # noqa: E402
from ikesim.wire.payloads import (  # noqa: E402
    DeletePayload,
    NoncePayload,
    NotifyPayload,
    SaPayload,
    TrafficSelector,
    TsiPayload,
    TsrPayload,
)

BACKWARDS = TrafficSelector.from_range("10.0.0.9", "10.0.0.1")
"""start address after end address (RFC 7296 §3.13.1)."""


def _rekey_started(**kw: object) -> tuple[Peers, bytes, bytes]:
    p = make_peers(**kw)  # type: ignore[arg-type]
    c_spi, g_spi = p.establish()
    p.client.rekey_child_sa(c_spi, 1.0)
    return p, c_spi, g_spi


def _assert_rekey_failed_and_cleaned_up(p: Peers, c_spi: bytes, g_spi: bytes, outcome: str, reason: str) -> None:
    """The client installed nothing, kept the old SA, and deleted the gateway's new half by our SPI."""
    c = p.events(p.client)
    assert names(c) == ["RekeyStarted", "ExchangeStarted", "ResponseRejected", "ExchangeCompleted", "ExchangeStarted"]
    assert (c[2].purpose, c[2].reason) == ("rekey_child", reason)
    assert (c[3].purpose, c[3].outcome) == ("rekey_child", outcome)
    assert c[4].purpose == "delete_failed_child"
    assert p.client.child_sa_spis() == [c_spi] and p.client.children[c_spi].state.value == "installed"
    (req,) = p.client.datagrams_to_send(1.0)
    (new_gw,) = [s for s in p.gateway.child_sa_spis() if s != g_spi]
    ours = p.gateway.children[new_gw].spi_out
    assert opened(p.gateway, req).payloads == (DeletePayload(ProtocolId.ESP, 4, (ours,)),)
    p.gateway.receive_datagram(req.data, req.src, req.dst, 1.0)
    p.settle(1.0)
    assert new_gw not in p.gateway.children
    deleted = [e for e in p.events(p.gateway) if isinstance(e, ev.ChildSaDeleted)]
    assert [(e.spi_in, e.reason) for e in deleted] == [(new_gw, "deleted_by_peer")]
    # The gateway's old SA is in use again: the next rekey of it succeeds on both sides.
    assert p.gateway.child_sa_spis() == [g_spi] and p.gateway.children[g_spi].state.value == "installed"
    p.client.rekey_child_sa(c_spi, 2.0)
    p.settle(2.0)
    assert [e.old_spi for e in p.events(p.client) if isinstance(e, ev.RekeyCompleted)] == [c_spi]
    assert [e.old_spi for e in p.events(p.gateway) if isinstance(e, ev.RekeyCompleted)] == [g_spi]


def test_response_selector_with_start_after_end_fails_the_rekey() -> None:
    """RFC 7296 §3.13.1: a response TS whose start is after its end: INVALID_SYNTAX, nothing half-installed."""
    p, c_spi, g_spi = _rekey_started()
    hostile_response(p, lambda pl: replace(pl, TsiPayload, TsiPayload((BACKWARDS,))), 1.0)
    _assert_rekey_failed_and_cleaned_up(
        p, c_spi, g_spi, "INVALID_SYNTAX", "invalid payload: traffic selector 10.0.0.9-10.0.0.1: start after end")


def test_response_selector_outside_the_proposal_fails_the_rekey() -> None:
    """RFC 7296 §2.9: the responder may only narrow; a wider or other TS fails the exchange (TS_UNACCEPTABLE)."""
    p, c_spi, g_spi = _rekey_started()
    other = TrafficSelector.from_network("192.168.0.0/24")
    hostile_response(p, lambda pl: replace(pl, TsrPayload, TsrPayload((other,))), 1.0)
    _assert_rekey_failed_and_cleaned_up(
        p, c_spi, g_spi, "TS_UNACCEPTABLE", "response traffic selectors are not within those proposed")


def test_response_proposal_that_was_not_offered_fails_the_rekey() -> None:
    """RFC 7296 §3.3.6: the chosen proposal must be one we offered (here: another proposal number)."""
    p, c_spi, g_spi = _rekey_started()

    def renumber(pl: list) -> list:
        sa = next(x for x in pl if isinstance(x, SaPayload))
        return replace(pl, SaPayload, SaPayload((_with(sa.proposals[0], number=7),)))

    hostile_response(p, renumber, 1.0)
    _assert_rekey_failed_and_cleaned_up(p, c_spi, g_spi, "NO_PROPOSAL_CHOSEN", "answer proposal number 7 was not offered")


@pytest.mark.parametrize("size", [15, 257])
def test_response_nonce_out_of_range_fails_the_rekey(size: int) -> None:
    """RFC 7296 §3.9 (strongSwan nonce_payload verify): a nonce outside 16..256 octets fails the exchange."""
    p, c_spi, g_spi = _rekey_started()
    hostile_response(p, lambda pl: replace(pl, NoncePayload, NoncePayload(bytes(size))), 1.0)
    _assert_rekey_failed_and_cleaned_up(
        p, c_spi, g_spi, "INVALID_SYNTAX", f"invalid payload: nonce of {size} bytes (RFC 7296 §3.9: 16..256)")


def _invalid_syntax_answer(p: Peers, answer: object, reason_event: list) -> None:
    assert answer.is_response and answer.payloads == (NotifyPayload(NotifyType.INVALID_SYNTAX),)
    assert [(type(e).__name__, e.notify) for e in reason_event] == [("ErrorNotifySent", "INVALID_SYNTAX")]


@pytest.mark.parametrize("case", ["nonce_short", "nonce_long", "esp_spi_3", "esp_spi_8", "ts_backwards", "ts_ports"])
def test_invalid_payload_in_a_request_gets_invalid_syntax(case: str) -> None:
    """RFC 7296 §3.10.1, strongSwan payload verify(): an authenticated request with a nonce outside 16..256, an ESP
    SPI that is not 4 bytes or a TS range backwards is answered N(INVALID_SYNTAX); nothing is installed."""
    p = make_peers()
    c_spi, g_spi = p.establish()
    p.client.rekey_child_sa(c_spi, 1.0)
    p.events(p.client)

    def mutate(pl: list) -> list:
        sa = next(x for x in pl if isinstance(x, SaPayload))
        if case.startswith("nonce"):
            return replace(pl, NoncePayload, NoncePayload(bytes(8 if case == "nonce_short" else 300)))
        if case.startswith("esp_spi"):
            spi = bytes(int(case[-1]))
            return replace(pl, SaPayload, SaPayload(tuple(_with(x, spi=spi) for x in sa.proposals)))
        ts = BACKWARDS if case == "ts_backwards" else TrafficSelector(TsType.TS_IPV4_ADDR_RANGE, 6, 443, 80,
                                                                       bytes(4), b"\xff" * 4)
        return replace(pl, TsiPayload, TsiPayload((ts,)))

    answer = hostile_request(p, mutate, 1.0)
    _invalid_syntax_answer(p, answer, p.events(p.gateway))
    assert p.gateway.child_sa_spis() == [g_spi] and list(p.gateway.children) == [g_spi]


def test_more_than_255_narrowed_selectors_are_capped() -> None:
    """RFC 7296 §3.13: Number of TSs is one octet. 255 proposed x 2 configured = 510 narrowed: answer the first 255."""
    gw_child = ChildPolicy(remote_ts=("0.0.0.0/1", "128.0.0.0/1"))
    p = make_peers(gateway_children=(gw_child,), gateway_ike=IkePolicy(fragmentation=False))  # one datagram
    c_spi, g_spi = p.establish()
    p.client.rekey_child_sa(c_spi, 1.0)
    wide = tuple(TrafficSelector(TsType.TS_IPV4_ADDR_RANGE, 17, port, port, bytes(4), b"\xff" * 4)
                 for port in range(1, 256))
    answer = hostile_request(p, lambda pl: replace(pl, TsiPayload, TsiPayload(wide)), 1.0)
    tsi = answer.get(TsiPayload)
    assert tsi is not None and len(tsi.selectors) == 255
    assert tsi.selectors == tuple(_with(ts, end_address=b"\x7f\xff\xff\xff") for ts in wide)  # all in 0.0.0.0/1
    installed = [e for e in p.events(p.gateway) if isinstance(e, ev.ChildSaInstalled)]
    assert len(installed) == 1 and installed[0].rekey_of == g_spi


def test_peer_deleted_is_bounded_and_cleared_by_the_response() -> None:
    """IkeSa.peer_deleted keeps the last 16 unknown SPIs, only while our CREATE_CHILD_SA is in flight."""
    from hostile import only_sa

    from ikesim.wire.iana import ExchangeType

    p = make_peers()
    c_spi, _ = p.establish()
    p.client.rekey_child_sa(c_spi, 1.0)
    (rekey_req,) = p.client.datagrams_to_send(1.0)
    gsa, csa = only_sa(p.gateway), only_sa(p.client)
    unknown = tuple((1000 + i).to_bytes(4, "big") for i in range(1000))
    data = p.gateway.seal(gsa, ExchangeType.INFORMATIONAL, gsa.next_message_id, False,
                          [DeletePayload(ProtocolId.ESP, 4, unknown)])
    p.client.receive_datagram(data, p.gateway.config.addresses[0], p.client.config.addresses[0], 1.0)
    assert list(csa.peer_deleted) == list(unknown[-16:])  # PEER_DELETED_LIMIT, the most recent
    p.client.datagrams_to_send(1.0)
    p.gateway.receive_datagram(rekey_req.data, rekey_req.src, rekey_req.dst, 1.0)
    p.deliver(p.gateway, 1.0)
    assert csa.peer_deleted == {}
    assert any(isinstance(e, ev.RekeyCompleted) for e in p.events(p.client))


def test_peer_delete_of_the_new_sa_after_many_bogus_spis_still_overtakes_the_response() -> None:
    """RFC 7296 §1.4.1: the peer deletes the CHILD_SA its rekey response creates, after 1000 unknown SPIs in the same
    Delete; the real SPI, last, is remembered, so the response's SA is removed as deleted by the peer."""
    from hostile import only_sa

    from ikesim.wire.iana import ExchangeType

    p = make_peers()
    c_spi, _ = p.establish()
    p.client.rekey_child_sa(c_spi, 1.0)
    p.deliver(p.client, 1.0)
    (resp,) = p.gateway.datagrams_to_send(1.0)
    (new,) = [e for e in p.events(p.gateway) if isinstance(e, ev.ChildSaInstalled)]
    gsa = only_sa(p.gateway)
    bogus = tuple((1000 + i).to_bytes(4, "big") for i in range(1000))
    data = p.gateway.seal(gsa, ExchangeType.INFORMATIONAL, gsa.next_message_id, False,
                          [DeletePayload(ProtocolId.ESP, 4, (*bogus, new.spi_in))])
    p.client.receive_datagram(data, resp.src, resp.dst, 1.0)
    p.client.receive_datagram(resp.data, resp.src, resp.dst, 1.0)
    c = [e for e in p.events(p.client) if isinstance(e, ev.ChildSaInstalled | ev.ChildSaDeleted)]
    assert [(type(e).__name__, e.spi_out, getattr(e, "reason", "")) for e in c] == [
        ("ChildSaInstalled", new.spi_in, ""), ("ChildSaDeleted", new.spi_in, "deleted_by_peer")]


def test_selector_address_length_not_matching_its_type_gets_invalid_syntax() -> None:
    """RFC 7296 §3.13.1, §3.10.1: a TS whose addresses do not fit its TS Type (IPv6 type, IPv4 length) does not parse;
    the chain was authenticated, so the request is answered N(INVALID_SYNTAX) (strongSwan: parse error), not dropped."""
    from hostile import sa_of, seal_raw

    from ikesim.wire.codec import serialize_payloads

    p = make_peers()
    c_spi, g_spi = p.establish()
    p.client.rekey_child_sa(c_spi, 1.0)
    (req,) = p.client.datagrams_to_send(1.0)
    msg = opened(p.gateway, req)
    first, plaintext = serialize_payloads(msg.payloads)
    assert type(msg.payloads[-2]) is TsiPayload
    at = len(serialize_payloads(msg.payloads[:-2])[1]) + 8  # TSi generic header (4), TS count + RESERVED (4)
    assert plaintext[at] == TsType.TS_IPV4_ADDR_RANGE
    bad = plaintext[:at] + bytes([TsType.TS_IPV6_ADDR_RANGE]) + plaintext[at + 1:]
    data = seal_raw(p.client, sa_of(p.client, req), msg, first, bad)
    p.gateway.receive_datagram(data, req.src, req.dst, 1.0)
    (resp,) = p.gateway.datagrams_to_send(1.0)
    answer = opened(p.client, resp)
    assert answer.is_response and answer.payloads == (NotifyPayload(NotifyType.INVALID_SYNTAX),)
    assert [(type(e).__name__, e.notify) for e in p.events(p.gateway)] == [("ErrorNotifySent", "INVALID_SYNTAX")]
    assert list(p.gateway.children) == [g_spi]


def test_authenticated_response_that_does_not_parse_fails_the_rekey() -> None:
    """An answer whose decrypted chain does not parse (a TSi of IPv6 type with IPv4 length) fails the exchange at
    once rather than waiting for retransmissions that would bring the same bytes (RFC 7296 §2.1, §3.10.1)."""
    from hostile import sa_of, seal_raw

    from ikesim.wire.codec import serialize_payloads

    p, c_spi, g_spi = _rekey_started()
    (req,) = p.client.datagrams_to_send(1.0)
    p.gateway.receive_datagram(req.data, req.src, req.dst, 1.0)
    (resp,) = p.gateway.datagrams_to_send(1.0)
    msg = opened(p.client, resp)
    first, plaintext = serialize_payloads(msg.payloads)
    at = len(serialize_payloads(msg.payloads[:-2])[1]) + 8
    bad = plaintext[:at] + bytes([TsType.TS_IPV6_ADDR_RANGE]) + plaintext[at + 1:]
    p.client.receive_datagram(seal_raw(p.gateway, sa_of(p.gateway, resp), msg, first, bad), resp.src, resp.dst, 1.0)
    _assert_rekey_failed_and_cleaned_up(
        p, c_spi, g_spi, "INVALID_SYNTAX",
        "malformed: inside SK payload: traffic selector length 16 invalid for TS type 8")
