"""IKEv2 session resumption (RFC 5723): tickets in IKE_AUTH and INFORMATIONAL, IKE_SESSION_RESUME, rejections."""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest
from hostile import opened
from ikepeers import CLIENT, CLIENT_ID, GATEWAY, GATEWAY_ID, Peers, config, make_peers, names

from ikesim.ike import events as ev
from ikesim.ike import resumption
from ikesim.ike.config import IkePolicy
from ikesim.ike.daemon import IkeDaemon
from ikesim.ike.tickets import InvalidTicket, TicketKeys, TicketState, decode_state, encode_state
from ikesim.rng import Rng
from ikesim.types import Datagram
from ikesim.wire.codec import parse_message, serialize_message
from ikesim.wire.iana import AuthMethod, ExchangeType, HeaderFlag, NotifyType
from ikesim.wire.message import Message
from ikesim.wire.payloads import (
    AuthPayload,
    IdiPayload,
    IdrPayload,
    NoncePayload,
    NotifyPayload,
    Payload,
)

ON = IkePolicy(resumption=True)
ZERO = bytes(8)


def _kinds(payloads: tuple[Payload, ...] | list[Payload]) -> list[str]:
    """Payload classes, notifies by their type: the exact content of a message."""
    return [p.notify_type.name if isinstance(p, NotifyPayload) else type(p).__name__ for p in payloads]


def _peers(**kw: object) -> Peers:
    return make_peers(client_ike=kw.pop("client_ike", ON), gateway_ike=kw.pop("gateway_ike", ON), **kw)  # type: ignore[arg-type]


def _tickets(d: IkeDaemon) -> dict[str, resumption.ClientTicket]:
    return resumption.ticket_state(d).tickets


def _establish_then_drop(p: Peers, now: float = 0.0) -> resumption.ClientTicket:
    """A full IKE_SA with a ticket, then the client forgets the IKE_SA (Delete); returns the ticket it keeps."""
    p.establish(now)
    p.client.delete_ike_sa(p.client.ike_sa_spis()[0], now + 1)
    p.settle(now + 1)
    p.events(p.client)
    p.events(p.gateway)
    return _tickets(p.client)["vpn"]


def _one(d: IkeDaemon, now: float) -> Datagram:
    (out,) = d.datagrams_to_send(now)
    return out


def _prf_plus(key: bytes, seed: bytes, length: int) -> bytes:
    out, t, n = b"", b"", 1
    while len(out) < length:
        t = hmac.digest(key, t + seed + bytes([n]), "sha256")
        out += t
        n += 1
    return out[:length]


def test_ike_auth_carries_ticket_request_and_ticket() -> None:
    """RFC 5723 §4.1, §4.2: N(TICKET_REQUEST) last in the IKE_AUTH request; N(TICKET_LT_OPAQUE) = lifetime | ticket."""
    p = _peers()
    p.client.initiate("vpn", 0.0)
    p.deliver(p.client, 0.0)
    p.deliver(p.gateway, 0.0)
    req = _one(p.client, 0.0)
    assert _kinds(opened(p.gateway, req).payloads) == [
        "IdiPayload", "IdrPayload", "AuthPayload", "SaPayload", "TsiPayload", "TsrPayload", "TICKET_REQUEST"]
    p.gateway.receive_datagram(req.data, req.src, req.dst, 0.0)
    resp = _one(p.gateway, 0.0)
    inner = opened(p.client, resp).payloads
    assert _kinds(inner) == ["IdrPayload", "AuthPayload", "SaPayload", "TsiPayload", "TsrPayload", "TICKET_LT_OPAQUE"]
    data = inner[-1].data  # type: ignore[attr-defined]
    assert data[:4] == struct.pack(">I", 3600)
    assert data[4] == 1 and data[5:8] == bytes(3)  # Appendix A.1: format_version 1, reserved
    assert data[8:16] == bytes(8)  # key_id: the rotation period of t=0
    p.client.receive_datagram(resp.data, resp.src, resp.dst, 0.0)
    issued_c = [e for e in p.events(p.client) if isinstance(e, ev.TicketIssued)]
    issued_g = [e for e in p.events(p.gateway) if isinstance(e, ev.TicketIssued)]
    assert [(e.by_us, e.refreshed, e.lifetime, e.expires_at, e.key_id) for e in issued_g] == [
        (True, False, 3600.0, 3600.0, 0)]
    assert [(e.by_us, e.refreshed, e.lifetime, e.expires_at, e.key_id) for e in issued_c] == [
        (False, False, 3600.0, 3600.0, -1)]
    ticket = _tickets(p.client)["vpn"]
    gw_sa = next(iter(p.gateway.sas.values()))
    assert ticket.ticket == data[4:] and ticket.sk_d == gw_sa.keys.sk_d and ticket.id_r == GATEWAY_ID


def test_defaults_send_no_ticket_notify() -> None:
    """Without ``resumption`` nothing changes: no N(TICKET_REQUEST), no ticket kept."""
    p = make_peers()
    p.client.initiate("vpn", 0.0)
    p.deliver(p.client, 0.0)
    p.deliver(p.gateway, 0.0)
    req = _one(p.client, 0.0)
    assert "TICKET_REQUEST" not in _kinds(opened(p.gateway, req).payloads)


def test_gateway_without_resumption_ignores_the_request() -> None:
    """RFC 7296 §3.10.1: an unknown status notify is ignored; the client keeps no ticket."""
    p = _peers(gateway_ike=IkePolicy())
    p.establish()
    assert "_resumption" not in vars(p.gateway) and "vpn" not in _tickets(p.client)


def test_resume_exchange_messages_keys_and_auth() -> None:
    """RFC 5723 §4.3.2 messages, §5.1 keys against the formula computed here, §4.3.3 AUTH = prf(SK_pi, octets)."""
    p = _peers()
    ticket = _establish_then_drop(p)
    spi = p.client.initiate("vpn", 10.0)
    req = _one(p.client, 10.0)
    head = parse_message(req.data)
    assert (head.exchange_type, head.spi_i, head.spi_r, head.message_id, head.flags) == (
        ExchangeType.IKE_SESSION_RESUME, spi, ZERO, 0, HeaderFlag.INITIATOR)
    assert _kinds(head.payloads) == ["NoncePayload", "TICKET_OPAQUE", "NAT_DETECTION_SOURCE_IP",
                                     "NAT_DETECTION_DESTINATION_IP"]
    assert head.payloads[1].data == ticket.ticket  # type: ignore[attr-defined]
    p.gateway.receive_datagram(req.data, req.src, req.dst, 10.0)
    resp = _one(p.gateway, 10.0)
    answer = parse_message(resp.data)
    assert (answer.exchange_type, answer.spi_i, answer.message_id, answer.flags) == (
        ExchangeType.IKE_SESSION_RESUME, spi, 0, HeaderFlag.RESPONSE)
    assert answer.spi_r != ZERO
    assert _kinds(answer.payloads) == ["NoncePayload", "NAT_DETECTION_SOURCE_IP", "NAT_DETECTION_DESTINATION_IP"]
    p.client.receive_datagram(resp.data, resp.src, resp.dst, 10.0)
    ni, nr = head.payloads[0].data, answer.payloads[0].data  # type: ignore[attr-defined]
    # RFC 5723 §5.1 and RFC 7296 §2.14, aes256gcm16-prfsha256: SK_d 32, no SK_a, SK_e 36 (key + salt), SK_p 32
    skeyseed = hmac.digest(ticket.sk_d, b"Resumption" + ni + nr, "sha256")
    km = _prf_plus(skeyseed, ni + nr + spi + answer.spi_r, 32 + 36 + 36 + 32 + 32)
    sk_d, sk_ei, sk_er, sk_pi, sk_pr = km[:32], km[32:68], km[68:104], km[104:136], km[136:168]
    assert resumption.resume_skeyseed(5, ticket.sk_d, ni, nr) == skeyseed
    p.events(p.client)
    (derived,) = [e for e in p.log["client"] if isinstance(e, ev.IkeSaKeysDerived) and e.spi_i == spi]
    assert (derived.sk_ei, derived.sk_er, derived.sk_ai, derived.sk_ar) == (sk_ei, sk_er, b"", b"")
    gw = p.gateway.sas[answer.spi_r]
    assert gw.keys.sk_d == sk_d and gw.keys.sk_pi == sk_pi and gw.keys.sk_pr == sk_pr
    auth_req = _one(p.client, 10.0)
    inner = opened(p.gateway, auth_req)
    assert inner.exchange_type == ExchangeType.IKE_AUTH and inner.message_id == 1
    assert _kinds(inner.payloads) == ["IdiPayload", "IdrPayload", "AuthPayload", "SaPayload", "TsiPayload",
                                      "TsrPayload", "TICKET_REQUEST"]
    idi, auth = inner.get(IdiPayload), inner.get(AuthPayload)
    assert idi is not None and auth is not None and auth.method == AuthMethod.SHARED_KEY_MIC
    octets = req.data + nr + hmac.digest(sk_pi, idi.body(), "sha256")  # RFC 7296 §2.15, RealMessage1 = the resume
    assert auth.data == hmac.digest(sk_pi, octets, "sha256")
    p.gateway.receive_datagram(auth_req.data, auth_req.src, auth_req.dst, 10.0)
    auth_resp = _one(p.gateway, 10.0)
    out = opened(p.client, auth_resp)
    assert _kinds(out.payloads) == ["IdrPayload", "AuthPayload", "SaPayload", "TsiPayload", "TsrPayload",
                                    "TICKET_LT_OPAQUE"]
    idr, auth_r = out.get(IdrPayload), out.get(AuthPayload)
    assert idr is not None and auth_r is not None
    assert auth_r.data == hmac.digest(sk_pr, resp.data + ni + hmac.digest(sk_pr, idr.body(), "sha256"), "sha256")
    p.client.receive_datagram(auth_resp.data, auth_resp.src, auth_resp.dst, 10.0)
    assert names(p.events(p.client)) == ["ExchangeCompleted", "IkeSaEstablished", "TicketIssued", "ChildSaInstalled"]
    resumed = [e for e in p.log["client"] if isinstance(e, ev.IkeSaResumed)]
    assert [(e.initiator, e.old_spi_i, e.old_spi_r) for e in resumed] == [(True, ticket.spi_i, ticket.spi_r)]
    assert names(p.events(p.gateway)) == ["IkeSaResumed", "TicketIssued", "IkeSaEstablished", "ChildSaInstalled"]
    assert len(p.client.child_sa_spis()) == 1 and len(p.gateway.child_sa_spis()) == 1
    assert _tickets(p.client)["vpn"].ticket != ticket.ticket  # single use: the resumed IKE_AUTH brought a new one
    assert resumption.ticket_state(p.client).refresh == {spi: "vpn"}  # its refresh replaces the old IKE_SA's
    assert p.client.ike_sa_info(spi).state == "established"


def test_resume_retransmission_is_answered_from_the_cache() -> None:
    """RFC 7296 §2.1 as for IKE_SA_INIT: the same request gets the same answer, and no second IKE_SA."""
    p = _peers()
    _establish_then_drop(p)
    p.client.initiate("vpn", 5.0)
    req = _one(p.client, 5.0)
    p.gateway.receive_datagram(req.data, req.src, req.dst, 5.0)
    first = _one(p.gateway, 5.0)
    p.gateway.receive_datagram(req.data, req.src, req.dst, 6.0)
    assert _one(p.gateway, 6.0).data == first.data
    assert len(p.gateway.sas) == 1


def _fallback(p: Peers, now: float) -> list[str]:
    """Resume at *now*; the answer must be N(TICKET_NACK); the client's next message is IKE_SA_INIT, same SPIi."""
    spi = p.client.initiate("vpn", now)
    req = _one(p.client, now)
    p.gateway.receive_datagram(req.data, req.src, req.dst, now)
    nack = parse_message(_one(p.gateway, now).data)
    assert (nack.exchange_type, nack.spi_i, nack.spi_r, nack.flags) == (
        ExchangeType.IKE_SESSION_RESUME, spi, ZERO, HeaderFlag.RESPONSE)
    assert _kinds(nack.payloads) == ["TICKET_NACK"]
    p.client.receive_datagram(serialize_message(nack), GATEWAY, CLIENT, now)
    init = parse_message(_one(p.client, now).data)
    assert (init.exchange_type, init.spi_i, init.spi_r, init.message_id) == (ExchangeType.IKE_SA_INIT, spi, ZERO, 0)
    p.gateway.receive_datagram(serialize_message(init), CLIENT, GATEWAY, now)
    p.settle(now)
    assert p.client.ike_sa_info(spi).state == "established" and len(p.client.child_sa_spis()) == 1
    rejected = [e for e in p.events(p.gateway) if isinstance(e, ev.TicketRejected)]
    (client_side,) = [e for e in p.events(p.client) if isinstance(e, ev.TicketRejected)]
    assert (client_side.by_us, client_side.reason, client_side.exchange) == (False, "TICKET_NACK",
                                                                             "IKE_SESSION_RESUME")
    assert [e.by_us for e in rejected] == [True]
    return [e.reason for e in rejected]


def test_wrong_key_after_restart_falls_back_to_full_exchange() -> None:
    """A restarted gateway with a new key (no shared secret) cannot open the ticket: N(TICKET_NACK), IKE_SA_INIT."""
    p = _peers()
    _establish_then_drop(p)
    p.gateway = IkeDaemon(config("gateway", GATEWAY, None, local_id=GATEWAY_ID, remote_id=None, ike=ON),
                          rng=Rng(99).child("gateway"))
    assert _fallback(p, 10.0) == ["ticket integrity check failed"]


def test_restart_with_the_shared_secret_resumes() -> None:
    """DaemonConfig.ticket_secret: another daemon (a restart, a cluster member) opens the ticket (RFC 5723 §6.3)."""
    def gateway(seed: int) -> IkeDaemon:
        cfg = config("gateway", GATEWAY, None, local_id=GATEWAY_ID, remote_id=None, ike=ON)
        from dataclasses import replace as dc_replace
        return IkeDaemon(dc_replace(cfg, ticket_secret=b"k" * 32), rng=Rng(seed).child("gateway"))

    p = _peers()
    p.gateway = gateway(1)
    _establish_then_drop(p)
    p.gateway = gateway(2)
    spi = p.client.initiate("vpn", 10.0)
    p.settle(10.0)
    assert p.client.ike_sa_info(spi).state == "established"
    assert "IkeSaResumed" in names(p.log["client"] + p.events(p.client))


def test_tampered_ticket_falls_back() -> None:
    """One bit flipped in the ciphertext: the ICV fails (RFC 5723 §4.3.2)."""
    p = _peers()
    ticket = _establish_then_drop(p)
    ticket.ticket = ticket.ticket[:-20] + bytes([ticket.ticket[-20] ^ 1]) + ticket.ticket[-19:]
    assert _fallback(p, 10.0) == ["ticket integrity check failed"]


def test_expired_ticket_at_the_gateway_falls_back() -> None:
    """The gateway checks the expiry sealed in the ticket, whatever the client believes."""
    p = _peers(gateway_ike=IkePolicy(resumption=True, ticket_lifetime=100.0))
    ticket = _establish_then_drop(p)
    assert ticket.expires_at == 100.0
    ticket.expires_at = 1e9
    assert _fallback(p, 150.0) == ["ticket expired"]


def test_replayed_ticket_falls_back() -> None:
    """A ticket is single-use: presented again after a resumption, N(TICKET_NACK)."""
    p = _peers()
    ticket = _establish_then_drop(p)
    p.client.initiate("vpn", 5.0)
    p.settle(5.0)
    p.client.delete_ike_sa(p.client.ike_sa_spis()[0], 6.0)
    p.settle(6.0)
    _tickets(p.client)["vpn"] = ticket
    assert _fallback(p, 10.0) == ["ticket replayed"]


def test_client_does_not_present_an_expired_ticket() -> None:
    """The client drops a ticket past its lifetime and runs IKE_SA_INIT (RFC 5723 §4.2)."""
    p = _peers(gateway_ike=IkePolicy(resumption=True, ticket_lifetime=100.0))
    _establish_then_drop(p)
    p.client.initiate("vpn", 120.0)
    assert parse_message(_one(p.client, 120.0).data).exchange_type == ExchangeType.IKE_SA_INIT
    assert "vpn" not in _tickets(p.client)


def test_reauthentication_never_resumes() -> None:
    """RFC 7296 §2.8.3: a reauthentication checks the credentials again, so it runs IKE_SA_INIT despite a ticket."""
    p = _peers(client_ike=IkePolicy(resumption=True, reauth_time=50.0))
    p.establish()
    p.run_timers(until=60.0)
    starts = [e for e in p.events(p.client) if isinstance(e, ev.ExchangeStarted)]
    assert "IKE_SESSION_RESUME" not in [e.exchange for e in starts]
    assert [e.exchange for e in starts].count("IKE_SA_INIT") >= 2


def test_ticket_refreshed_in_informational() -> None:
    """RFC 5723 §4.1: at 80 % of its lifetime the client asks again: INFORMATIONAL N(TICKET_REQUEST) ->
    N(TICKET_LT_OPAQUE)."""
    p = _peers(gateway_ike=IkePolicy(resumption=True, ticket_lifetime=100.0))
    p.establish()
    old = _tickets(p.client)["vpn"].ticket
    assert p.client.get_timer() == 80.0
    p.client.handle_timer(80.0)
    req = _one(p.client, 80.0)
    inner = opened(p.gateway, req)
    assert (inner.exchange_type, _kinds(inner.payloads)) == (ExchangeType.INFORMATIONAL, ["TICKET_REQUEST"])
    p.gateway.receive_datagram(req.data, req.src, req.dst, 80.0)
    resp = _one(p.gateway, 80.0)
    out = opened(p.client, resp)
    assert _kinds(out.payloads) == ["TICKET_LT_OPAQUE"]
    p.client.receive_datagram(resp.data, resp.src, resp.dst, 80.0)
    issued = [e for e in p.events(p.client) if isinstance(e, ev.TicketIssued)]
    assert [(e.refreshed, e.expires_at) for e in issued] == [(True, 180.0)]
    assert _tickets(p.client)["vpn"].ticket != old
    assert p.client.get_timer() == 160.0  # the next refresh


def test_resume_with_cookie() -> None:
    """RFC 5723 §4.3.2, RFC 7296 §2.6: under load the gateway answers N(COOKIE); the client repeats it first."""
    p = _peers()
    _establish_then_drop(p)
    p.gateway = IkeDaemon(
        config("gateway", GATEWAY, None, local_id=GATEWAY_ID, remote_id=None, ike=ON, cookie_threshold=0),
        rng=Rng(1).child("gateway"))
    spi = p.client.initiate("vpn", 10.0)
    req = _one(p.client, 10.0)
    p.gateway.receive_datagram(req.data, req.src, req.dst, 10.0)
    answer = parse_message(_one(p.gateway, 10.0).data)
    assert _kinds(answer.payloads) == ["COOKIE"]
    p.client.receive_datagram(serialize_message(answer), GATEWAY, CLIENT, 10.0)
    again = parse_message(_one(p.client, 10.0).data)
    assert _kinds(again.payloads) == ["COOKIE", "NoncePayload", "TICKET_OPAQUE", "NAT_DETECTION_SOURCE_IP",
                                      "NAT_DETECTION_DESTINATION_IP"]
    p.gateway.receive_datagram(serialize_message(again), CLIENT, GATEWAY, 10.0)
    p.settle(10.0)
    assert p.client.ike_sa_info(spi).state == "established"


def _resume_request(spi: bytes, payloads: tuple[Payload, ...], spi_r: bytes = ZERO, mid: int = 0) -> bytes:
    return serialize_message(Message(spi, spi_r, ExchangeType.IKE_SESSION_RESUME, HeaderFlag.INITIATOR, mid,
                                     payloads))


NONCE = NoncePayload(bytes(range(32)))


@pytest.mark.parametrize(("ticket", "reason"), [
    (b"", "malformed ticket"),
    (b"\x01", "malformed ticket"),
    (bytes(100), "ticket format 0"),
    (b"\x01" + bytes(99), "ticket integrity check failed"),
    (b"\x02" + bytes(60), "ticket format 2"),
    (b"\x01\x00\x00\x00" + (99).to_bytes(8, "big") + bytes(40), "unknown ticket key"),
    (b"\xff" * 3000, "ticket format 255"),
])
def test_hostile_ticket_opaque_is_nacked(ticket: bytes, reason: str) -> None:
    """Garbage in N(TICKET_OPAQUE): N(TICKET_NACK) and a recorded reason, no state, never an exception."""
    p = _peers()
    p.gateway.receive_datagram(_resume_request(b"A" * 8, (NONCE, NotifyPayload(NotifyType.TICKET_OPAQUE,
                                                                              data=ticket))), CLIENT, GATEWAY, 1.0)
    assert _kinds(parse_message(_one(p.gateway, 1.0).data).payloads) == ["TICKET_NACK"]
    (rej,) = p.events(p.gateway)
    assert isinstance(rej, ev.TicketRejected) and rej.reason == reason and rej.by_us
    assert p.gateway.sas == {}


def test_well_sealed_garbage_state_is_nacked() -> None:
    """A ticket with a valid ICV but a state that does not parse (a gateway bug, or a leaked key)."""
    p = _peers()
    keys = resumption.ticket_keys(p.gateway)
    from ikesim.ike import tickets
    header = struct.pack(">B3xQ", 1, 0) + bytes(12)
    forged = header + keys._aead(0).encrypt(bytes(12), b"\x00\x05abc", header)
    p.gateway.receive_datagram(_resume_request(b"A" * 8, (NONCE, NotifyPayload(NotifyType.TICKET_OPAQUE,
                                                                              data=forged))), CLIENT, GATEWAY, 1.0)
    (rej,) = p.events(p.gateway)
    assert isinstance(rej, ev.TicketRejected) and rej.reason == "malformed state"
    assert tickets.HEADER_SIZE == 24


@pytest.mark.parametrize(("payloads", "spi_r", "mid", "reason"), [
    ((NONCE,), ZERO, 0, "malformed: IKE_SESSION_RESUME without Ni or N(TICKET_OPAQUE)"),
    ((NotifyPayload(NotifyType.TICKET_OPAQUE, data=b"x"),), ZERO, 0,
     "malformed: IKE_SESSION_RESUME without Ni or N(TICKET_OPAQUE)"),
    ((NONCE, NotifyPayload(NotifyType.TICKET_OPAQUE, data=b"x")), b"B" * 8, 0, "unexpected IKE_SESSION_RESUME request"),
    ((NONCE, NotifyPayload(NotifyType.TICKET_OPAQUE, data=b"x")), ZERO, 3, "unexpected IKE_SESSION_RESUME request"),
    ((NoncePayload(b"\x01"), NotifyPayload(NotifyType.TICKET_OPAQUE, data=b"x")), ZERO, 0, None),
])
def test_hostile_resume_requests_are_dropped(payloads: tuple[Payload, ...], spi_r: bytes, mid: int,
                                             reason: str | None) -> None:
    """Requests that are not IKE_SESSION_RESUME requests: a recorded drop, nothing sent."""
    p = _peers()
    p.gateway.receive_datagram(_resume_request(b"A" * 8, payloads, spi_r, mid), CLIENT, GATEWAY, 1.0)
    assert p.gateway.datagrams_to_send(1.0) == []
    (drop,) = p.events(p.gateway)
    assert isinstance(drop, ev.MessageDropped) and drop.exchange == "IKE_SESSION_RESUME"
    if reason is not None:
        assert drop.reason == reason
    else:
        assert drop.reason.startswith("invalid payload")


def test_hostile_resume_response_without_nonce_fails_the_attempt() -> None:
    """An answer with neither Nr nor an error: ResponseRejected, the half-made IKE_SA is removed."""
    p = _peers()
    _establish_then_drop(p)
    spi = p.client.initiate("vpn", 5.0)
    p.client.datagrams_to_send(5.0)
    bad = Message(spi, b"B" * 8, ExchangeType.IKE_SESSION_RESUME, HeaderFlag.RESPONSE, 0, ())
    p.client.receive_datagram(serialize_message(bad), GATEWAY, CLIENT, 5.0)
    got = p.events(p.client)
    assert "ResponseRejected" in names(got) and "IkeSaDeleted" in names(got)
    unexpected = Message(b"Z" * 8, b"B" * 8, ExchangeType.IKE_SESSION_RESUME, HeaderFlag.RESPONSE, 0, (NONCE,))
    p.client.receive_datagram(serialize_message(unexpected), GATEWAY, CLIENT, 5.0)
    (drop,) = p.events(p.client)
    assert isinstance(drop, ev.MessageDropped) and drop.reason == "unexpected response"


def test_malformed_ticket_lt_opaque_is_recorded_not_kept() -> None:
    """A TICKET_LT_OPAQUE too short for a lifetime and a ticket: TicketRejected (by the client), nothing stored."""
    from hostile import hostile_response, replace

    p = _peers()
    p.client.initiate("vpn", 0.0)
    p.deliver(p.client, 0.0)
    p.deliver(p.gateway, 0.0)
    hostile_response(p, lambda pl: replace(pl, NotifyPayload, NotifyPayload(NotifyType.TICKET_LT_OPAQUE,
                                                                            data=b"\x00\x00")), 0.0)
    rejected = [e for e in p.events(p.client) if isinstance(e, ev.TicketRejected)]
    assert [(e.by_us, e.reason) for e in rejected] == [(True, "malformed TICKET_LT_OPAQUE")]
    assert "vpn" not in _tickets(p.client)
    assert len(p.client.ike_sa_spis()) == 1


def test_gateway_keeps_the_old_ike_sa_on_resumption() -> None:
    """A client that lost its IKE_SA without a Delete resumes: the gateway has both until DPD or a Delete ends the old."""
    p = _peers()
    p.establish()
    old = p.gateway.ike_sa_spis()
    spi = p.client.ike_sa_spis()[0]
    p.client.sas.pop(spi)  # the client forgets silently (a reboot)
    p.client.initiate("vpn", 5.0)
    p.settle(5.0)
    assert "IkeSaDeleted" not in names(p.events(p.gateway))
    assert len(p.gateway.ike_sa_spis()) == 2 and old[0] in p.gateway.ike_sa_spis()


def test_ticket_keys_rotation_and_retirement() -> None:
    """Key ids are rotation periods; an old key opens its tickets until rotation + the longest lifetime has passed."""
    keys = TicketKeys(b"s" * 32, rotation=100.0, accept=150.0)
    state = TicketState("vpn", CLIENT_ID, GATEWAY_ID, b"i" * 8, b"r" * 8, "psk", ((1, 20, 256), (2, 5, 0)),
                        b"d" * 32, ("net",), 50.0, 1000.0)
    assert decode_state(encode_state(state)) == state
    t = keys.seal(state, bytes(12), 50.0)
    assert t[4:12] == bytes(8)
    assert keys.open(t, 240.0) == state  # key 0 while period 2 issues
    with pytest.raises(InvalidTicket, match="ticket key retired"):
        keys.open(t, 251.0)
    later = keys.seal(state, bytes(12), 120.0)
    assert later[4:12] == (1).to_bytes(8, "big")
    with pytest.raises(InvalidTicket, match="unknown ticket key"):
        keys.open(later, 50.0)
    other = TicketKeys(b"x" * 32, rotation=100.0, accept=150.0)
    with pytest.raises(InvalidTicket, match="integrity"):
        other.open(t, 60.0)


def test_ticket_iv_is_unique_per_issue() -> None:
    """The synthetic IV (no Rng draw) differs between two tickets of one IKE_SA at one time."""
    p = _peers()
    p.establish()
    sa = next(iter(p.gateway.sas.values()))
    a = resumption._issue(p.gateway, sa, 1.0, refreshed=True).data
    b = resumption._issue(p.gateway, sa, 1.0, refreshed=True).data
    assert a[16:28] != b[16:28]
    assert hashlib.sha256(a).digest() != hashlib.sha256(b).digest()
