"""Fuzz finding seed=27849 start=27844 count=6: a CHILD_SA narrowed to OPAQUE ports could not be rekeyed.

The fuzzer answered a CHILD_SA rekey with a sealed response whose TSi had Start Port 65535 and End Port 0,
OPAQUE ports (RFC 7296 §3.13.1). The initiator accepted it: RFC 4301 §4.4.1.1's ANY includes OPAQUE, so it
is a narrowing of the ANY ports it proposed (RFC 7296 §2.9), and installed the CHILD_SA with it. Its next
rekey proposes those selectors (RFC 7296 §2.8, §1.3.3), and the responder intersected 65535..0 with its
configured 0..65535 as a plain range, got nothing and answered TS_UNACCEPTABLE. A second IKE_SA with an
identical CHILD_SA that the gateway also held was a bystander: the responder narrows against its child
configuration only (as strongSwan does), never against other IKE_SAs' CHILD_SAs.
"""

from __future__ import annotations

from dataclasses import replace as _with

from hostile import hostile_response, only_sa, opened, replace
from ikepeers import CLIENT, GATEWAY, make_peers, names

from ikesim.ike import events as ev
from ikesim.ike.profile import narrow_selectors
from ikesim.wire.iana import ExchangeType, ProtocolId, TsType
from ikesim.wire.payloads import DeletePayload, TrafficSelector, TsiPayload, TsrPayload

CLIENT_HOST = TrafficSelector.from_network("10.0.0.1/32")
"""The client's configured ``dynamic`` TSi: 10.0.0.1, any protocol, ports 0..65535 (ANY)."""
OPAQUE_HOST = _with(CLIENT_HOST, start_port=0xFFFF, end_port=0)
"""The same host with OPAQUE ports (RFC 7296 §3.13.1: Start Port 65535, End Port 0)."""


def test_opaque_ports_narrow_like_strongswan_get_subset() -> None:
    """RFC 7296 §3.13.1, RFC 4301 §4.4.1.1: OPAQUE within ANY is OPAQUE; OPAQUE and a port range share nothing."""
    assert narrow_selectors((OPAQUE_HOST,), (CLIENT_HOST,)) == (OPAQUE_HOST,)
    assert narrow_selectors((CLIENT_HOST,), (OPAQUE_HOST,)) == (OPAQUE_HOST,)
    assert narrow_selectors((OPAQUE_HOST,), (OPAQUE_HOST,)) == (OPAQUE_HOST,)
    assert narrow_selectors((OPAQUE_HOST,), (CLIENT_HOST,))[0] is OPAQUE_HOST  # shared, not rebuilt
    port_80 = TrafficSelector(TsType.TS_IPV4_ADDR_RANGE, 6, 80, 80, bytes(4), b"\xff" * 4)
    assert narrow_selectors((OPAQUE_HOST,), (port_80,)) == ()
    assert narrow_selectors((port_80,), (OPAQUE_HOST,)) == ()
    # ordinary ranges are unchanged: 10.0.0.1 tcp/80 within 0.0.0.0/0 any
    assert narrow_selectors((_with(CLIENT_HOST, ip_protocol=6, start_port=80, end_port=80),), (port_80,)) == (
        TrafficSelector(TsType.TS_IPV4_ADDR_RANGE, 6, 80, 80, b"\n\x00\x00\x01", b"\n\x00\x00\x01"),)
    assert narrow_selectors((_with(port_80, start_port=81, end_port=90),), (port_80,)) == ()


def test_child_sa_narrowed_to_opaque_ports_is_rekeyed_again() -> None:
    """The fuzz finding sans-IO: the gateway accepts the rekey of a CHILD_SA whose TSi is OPAQUE (RFC 7296 §2.8, §2.9)."""
    p = make_peers()
    c_spi, g_spi = p.establish()
    # 1. The gateway's (authenticated) answer to a rekey narrows TSi to OPAQUE ports; the client installs that.
    p.client.rekey_child_sa(c_spi, 1.0)
    hostile_response(p, lambda pl: replace(pl, TsiPayload, TsiPayload((OPAQUE_HOST,))), 1.0)
    p.settle(1.0)
    c = p.events(p.client)
    assert names(c) == ["RekeyStarted", "ExchangeStarted", "ExchangeCompleted", "ChildSaInstalled",
                        "RekeyCompleted", "ExchangeStarted", "ExchangeCompleted"]
    first_c = c[3]
    assert (first_c.local_ts, first_c.remote_ts, first_c.rekey_of) == ("10.0.0.1/32[0/65535-0]", "10.0.0.2/32", c_spi)
    assert [(e.purpose, e.outcome) for e in c if isinstance(e, ev.ExchangeCompleted)] == [
        ("rekey_child", "ok"), ("delete_child", "ok")]
    g = p.events(p.gateway)
    assert names(g) == ["ChildSaInstalled", "RekeyCompleted", "ChildSaOutboundInstalled"]
    first_g = g[0]
    assert (first_g.spi_in, first_g.spi_out, first_g.rekey_of) == (first_c.spi_out, first_c.spi_in, g_spi)
    assert first_g.remote_ts == "10.0.0.1/32"  # what the gateway really answered, before the reseal
    assert p.client.children[first_c.spi_in].local_ts == (OPAQUE_HOST,)

    # 2. The client rekeys that CHILD_SA with its selectors: the gateway narrows OPAQUE by its ANY to OPAQUE.
    p.client.rekey_child_sa(first_c.spi_in, 2.0)
    (req,) = p.client.datagrams_to_send(2.0)
    proposed = opened(p.gateway, req)
    assert (proposed.get(TsiPayload).selectors, proposed.get(TsrPayload).selectors) == (
        (OPAQUE_HOST,), (TrafficSelector.from_network("10.0.0.2/32"),))
    p.gateway.receive_datagram(req.data, req.src, req.dst, 2.0)
    (resp,) = p.gateway.datagrams_to_send(2.0)
    answer = opened(p.client, resp)
    assert answer.get(TsiPayload).selectors == (OPAQUE_HOST,)
    assert answer.get(TsrPayload).selectors == (TrafficSelector.from_network("10.0.0.2/32"),)
    p.client.receive_datagram(resp.data, resp.src, resp.dst, 2.0)
    p.settle(2.0)
    c, g = p.events(p.client), p.events(p.gateway)
    assert names(g) == ["ChildSaInstalled", "RekeyCompleted", "ChildSaOutboundInstalled"]
    assert [e for e in g if isinstance(e, (ev.ErrorNotifySent, ev.ExchangeCollision))] == []
    second_g = g[0]
    assert (second_g.local_ts, second_g.remote_ts) == ("10.0.0.2/32", "10.0.0.1/32[0/65535-0]")
    assert (second_g.rekey_of, second_g.rekey_of_out) == (first_g.spi_in, first_c.spi_in)
    assert names(c) == ["RekeyStarted", "ExchangeStarted", "ExchangeCompleted", "ChildSaInstalled",
                        "RekeyCompleted", "ExchangeStarted", "ExchangeCompleted"]
    second_c = c[3]
    assert (second_c.spi_in, second_c.spi_out) == (second_g.spi_out, second_g.spi_in)
    assert (second_c.local_ts, second_c.rekey_of, c[4].old_spi, c[4].new_spi) == (
        "10.0.0.1/32[0/65535-0]", first_c.spi_in, first_c.spi_in, second_c.spi_in)
    assert second_c.encr_key_out == second_g.encr_key_in and second_c.encr_key_in == second_g.encr_key_out
    assert p.client.child_sa_spis() == [second_c.spi_in] and p.gateway.child_sa_spis() == [second_g.spi_in]


def test_identical_child_sa_under_another_ike_sa_does_not_refuse_a_rekey() -> None:
    """The bystander of the finding: a Delete of the IKE_SA sealed in the gateway's name (which the gateway never
    saw) leaves the gateway with its IKE_SA and CHILD_SA; the client sets up a second IKE_SA with an identical
    CHILD_SA, and its rekey is answered as usual (RFC 7296 §1.3.3, §2.9: narrowed against the configuration)."""
    p = make_peers()
    c_old, g_old = p.establish()
    gsa = only_sa(p.gateway)
    data = p.gateway.seal(gsa, ExchangeType.INFORMATIONAL, gsa.next_message_id, False,
                          [DeletePayload(ProtocolId.IKE, 0, ())])
    p.client.receive_datagram(data, GATEWAY, CLIENT, 1.0)
    p.client.datagrams_to_send(1.0)  # its answer, lost: the gateway did not send that request
    assert [(type(e).__name__, e.reason) for e in p.events(p.client)] == [
        ("ChildSaDeleted", "ike_deleted"), ("IkeSaDeleted", "deleted_by_peer")]
    p.client.initiate("vpn", 2.0)
    p.settle(2.0)
    p.events(p.client)
    p.events(p.gateway)
    (c_spi,) = p.client.child_sa_spis()
    g_spi = p.client.children[c_spi].spi_out
    assert p.gateway.child_sa_spis() == [g_old, g_spi] and len(p.gateway.ike_sa_spis()) == 2
    assert p.gateway.children[g_old].remote_ts == p.gateway.children[g_spi].remote_ts == (CLIENT_HOST,)
    p.client.rekey_child_sa(c_spi, 3.0)
    p.settle(3.0)
    c, g = p.events(p.client), p.events(p.gateway)
    assert [(e.old_spi, e.initiator) for e in c if isinstance(e, ev.RekeyCompleted)] == [(c_spi, True)]
    assert [(e.old_spi, e.initiator) for e in g if isinstance(e, ev.RekeyCompleted)] == [(g_spi, False)]
    assert [e for e in g if isinstance(e, ev.ErrorNotifySent)] == []
    (new_g,) = [e.spi_in for e in g if isinstance(e, ev.ChildSaInstalled)]
    assert p.gateway.child_sa_spis() == [g_old, new_g] and c_old not in p.client.children


def test_opaque_answer_fits_only_an_any_or_opaque_proposal() -> None:
    """The initiator's check of an answer (RFC 7296 §2.9): OPAQUE ports fit within ANY or OPAQUE, not within tcp/80,
    so an answer it could never rekey is refused up front (as ``narrow_selectors`` decides)."""
    from ikesim.ike.childsa import selectors_within

    tcp_80 = _with(CLIENT_HOST, ip_protocol=6, start_port=80, end_port=80)
    opaque_tcp = _with(OPAQUE_HOST, ip_protocol=6)
    assert selectors_within((OPAQUE_HOST,), (CLIENT_HOST,)) is True
    assert selectors_within((OPAQUE_HOST,), (OPAQUE_HOST,)) is True
    assert selectors_within((opaque_tcp,), (tcp_80,)) is False
    assert selectors_within((tcp_80,), (CLIENT_HOST,)) is True
    assert selectors_within((CLIENT_HOST,), (OPAQUE_HOST,)) is False
