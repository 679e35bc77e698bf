"""EAP-TLS session resumption in the sans-IO core (RFC 5216 §2.1.3, RFC 5246 §7.3, ``ike.tls_sessions``): the first
authentication runs the full handshake, the next one the abbreviated handshake (ServerHello + ChangeCipherSpec +
Finished in one fragment, the client's ChangeCipherSpec + Finished, EAP-Success) with no certificate, ECDHE or
signature work; a gateway that lost or expired the session, or either end without resumption, runs the full one."""

from __future__ import annotations

import pytest
from ikepeers import CLIENT, CLIENT_ID, GATEWAY, GATEWAY_ID, LONG, PSK, Peers
from test_eap import CHILD, USERS, Wire, _expected_auths, of

from ikesim.crypto.meter import OpCounter
from ikesim.ike import events as ev
from ikesim.ike.config import AuthMethodName, Connection, Credentials, DaemonConfig, IkePolicy
from ikesim.ike.daemon import IkeDaemon
from ikesim.ike.eap_methods import _tls_msk
from ikesim.ike.tls_sessions import finished, session_cache
from ikesim.rng import Rng
from ikesim.wire.eap import EapCode

Round = tuple[int, str, str, str, int]
"""(IKE_AUTH round, sender, EAP code, EAP type, EAP size)."""

FULL = [(1, "gateway", "REQUEST", "TLS", 6), (2, "client", "RESPONSE", "TLS", 251),
        (2, "gateway", "REQUEST", "TLS", 1024), (3, "client", "RESPONSE", "TLS", 6),
        (3, "gateway", "REQUEST", "TLS", 1020), (4, "client", "RESPONSE", "TLS", 6),
        (4, "gateway", "REQUEST", "TLS", 1020), (5, "client", "RESPONSE", "TLS", 6),
        (5, "gateway", "REQUEST", "TLS", 929), (6, "client", "RESPONSE", "TLS", 1024),
        (6, "gateway", "REQUEST", "TLS", 6), (7, "client", "RESPONSE", "TLS", 393),
        (7, "gateway", "REQUEST", "TLS", 57), (8, "client", "RESPONSE", "TLS", 6), (8, "gateway", "SUCCESS", "", 4)]
"""The full handshake: Start, ClientHello, the 3.5 KB server flight in 4 fragments, the client's in 2, Finished."""
ABBREVIATED = [(1, "gateway", "REQUEST", "TLS", 6), (2, "client", "RESPONSE", "TLS", 251),
               (2, "gateway", "REQUEST", "TLS", 156), (3, "client", "RESPONSE", "TLS", 57),
               (3, "gateway", "SUCCESS", "", 4)]
"""RFC 5216 §2.1.3: Start, ClientHello with the session ID, ServerHello + CCS + Finished, CCS + Finished, Success."""

IKE_SA_INIT_OPS = {"ke_keygen:31": 1, "ke_shared:31": 1, "hash": 4, "prf": 10, "prf_plus": 2}
"""One side's IKE_SA_INIT and IKE_AUTH work outside EAP-TLS (X25519, NAT-D, keys, the AUTH payloads)."""


def make(*, client: bool = True, gateway: bool = True, lifetime_c: float = 3600.0, lifetime_g: float = 3600.0,
         boot: str = "") -> Wire:
    """An EAP-TLS client and a PSK gateway, resumption on or off on each; *boot* names a restarted gateway."""
    rng = Rng(3)
    c = Connection(name="vpn", local_id=CLIENT_ID, remote_id=GATEWAY_ID, remote_addr=GATEWAY,
                   credentials=Credentials(method=AuthMethodName.EAP_TLS, psk=PSK, eap_tls_resumption=client,
                                           eap_tls_session_lifetime=lifetime_c),
                   ike=IkePolicy(lifetime=LONG), children=(CHILD,))
    g = Connection(name="vpn", local_id=GATEWAY_ID, credentials=Credentials(
        psk=PSK, eap_method="tls", eap_users=USERS, eap_tls_resumption=gateway, eap_tls_session_lifetime=lifetime_g),
        ike=IkePolicy(lifetime=LONG), children=(CHILD,))
    gw_rng = rng.child("gateway", boot) if boot else rng.child("gateway")
    return Wire(Peers(IkeDaemon(DaemonConfig(name="client", addresses=(CLIENT,), connections=(c,)),
                                rng=rng.child("client")),
                      IkeDaemon(DaemonConfig(name="gateway", addresses=(GATEWAY,), connections=(g,)), rng=gw_rng)))


def authenticate(w: Wire, now: float) -> tuple[list[ev.IkeEvent], list[ev.IkeEvent], dict[str, int], dict[str, int]]:
    """Initiate at *now* with fresh meters (after deleting an IKE_SA the client has); both sides' events and ops."""
    for sa in list(w.p.client.sas.values()):
        w.p.client.delete_ike_sa(sa.spi_i, now - 1)
        w.settle(now - 1)
    w.p.events(w.p.client), w.p.events(w.p.gateway)
    w.msgs.clear()
    w.init.clear()
    meters = OpCounter(), OpCounter()
    w.p.client.meter, w.p.gateway.meter = meters
    w.p.client.initiate("vpn", now)
    w.p.deliver(w.p.client, now, lambda d: w._line(w.p.client, d))
    w.p.deliver(w.p.gateway, now, lambda d: w._line(w.p.gateway, d))
    (sa,) = {id(s): s for s in w.p.client.sas.values() if s.eap is not None}.values()
    w.keys, w.nonces = (sa.keys, sa.suite), (sa.nonce_i, sa.nonce_r)  # type: ignore[attr-defined]
    w.settle(now)
    c, g = w.p.events(w.p.client), w.p.events(w.p.gateway)
    return c, g, meters[0].snapshot(), meters[1].snapshot()


def rounds(c: list[ev.IkeEvent], g: list[ev.IkeEvent]) -> list[Round]:
    """Every EAP message of the conversation in order: round, sender, code, type, size."""
    sent = [(e.round, 0 if who == "client" else 1, who, e.eap_code, e.eap_type, e.eap_size)
            for who, events in (("client", c), ("gateway", g)) for e in of(events, ev.EapRound)]
    return [(r, who, code, typ, size) for r, _, who, code, typ, size in sorted(sent)]


def completed(c: list[ev.IkeEvent], g: list[ev.IkeEvent]) -> list[tuple[str, str, int, bool]]:
    """Each side's ``EapCompleted``: side, outcome, rounds, resumed."""
    return [(who, e.outcome, e.rounds, e.resumed) for who, events in (("client", c), ("gateway", g))
            for e in of(events, ev.EapCompleted)]


def test_second_authentication_is_abbreviated() -> None:
    """Full handshake first (the gateway's ServerHello carries a session ID from its ``tls_session`` stream), then
    after a re-establishment the abbreviated one: 4 IKE_AUTH exchanges instead of 9, no ECDSA or X25519 work for
    TLS, only 2 Finished HMACs per side; both AUTHs verify with the MSK from the cached master secret."""
    w = make()
    c, g, ops_c, ops_g = authenticate(w, 0.0)
    assert rounds(c, g) == FULL and completed(c, g) == [("client", "success", 8, False), ("gateway", "success", 8, False)]
    assert ops_c == {**IKE_SA_INIT_OPS, "ke_keygen:31": 2, "ke_shared:31": 2, "sk_seal:aes256gcm16": 9,
                     "sk_open:aes256gcm16": 9, "verify:ecdsa": 4, "sign:ecdsa": 1}
    assert ops_g == {**IKE_SA_INIT_OPS, "ke_keygen:31": 2, "ke_shared:31": 2, "sk_seal:aes256gcm16": 9,
                     "sk_open:aes256gcm16": 9, "verify:ecdsa": 3, "sign:ecdsa": 1}
    sid = Rng(3).child("gateway").child("tls_session").draw("tls_session_id", 32)
    gw_cache, client_cache = session_cache(w.p.gateway), session_cache(w.p.client)  # type: ignore[arg-type]
    assert list(gw_cache.by_id) == [sid] and client_cache.by_connection["vpn"].session_id == sid
    master = gw_cache.by_id[sid].master
    assert client_cache.by_connection["vpn"].master == master
    assert (gw_cache.by_id[sid].identity, gw_cache.by_id[sid].expires_at) == (CLIENT_ID.encode(), 3600.0)

    c, g, ops_c, ops_g = authenticate(w, 100.0)
    assert [line[:3] for line in w.lines if line[0] == "client" and line[1] == "request"][-4:] == [
        ("client", "request", 1), ("client", "request", 2), ("client", "request", 3), ("client", "request", 4)]
    assert rounds(c, g) == ABBREVIATED
    assert completed(c, g) == [("client", "success", 3, True), ("gateway", "success", 3, True)]
    tls_ops = {**IKE_SA_INIT_OPS, "prf": 12, "sk_seal:aes256gcm16": 4, "sk_open:aes256gcm16": 4}
    assert ops_c == tls_ops and ops_g == tls_ops
    hello, fin = w.eap("client")
    server_hello, success = w.eap("gateway")[1:]
    assert hello.data[0] == 0 and hello.data[1 + 33:1 + 65] == bytes(32)  # no key share: ClientKeyExchange would
    assert hello.data[1 + 65:1 + 66 + 32] == bytes((32,)) + sid
    assert server_hello.data[0] == 0 and server_hello.data[1 + 65:1 + 66 + 32] == bytes((32,)) + sid
    cr, sr = hello.data[2:34], server_hello.data[2:34]
    assert server_hello.data[34:46] == finished(master, b"server finished", cr, sr)
    assert fin.data[:14] == b"\x00\x14" + finished(master, b"client finished", cr, sr)
    assert success.code == EapCode.SUCCESS
    auth_i, auth_r = _expected_auths(w, _tls_msk(master, cr, sr), sk=False)
    assert w.auth("client") == [auth_i] and w.auth("gateway")[1:] == [auth_r]
    assert len(of(c, ev.IkeSaEstablished)) == len(of(g, ev.IkeSaEstablished)) == 1
    assert list(gw_cache.by_id) == [sid] and gw_cache.by_id[sid].expires_at == 3600.0  # not extended


def _full_again(w: Wire, now: float, *, offered: bool) -> tuple[list[ev.IkeEvent], list[ev.IkeEvent]]:
    """The second authentication is the full handshake, with the TLS work of the first."""
    c, g, ops_c, ops_g = authenticate(w, now)
    assert rounds(c, g) == FULL
    assert completed(c, g) == [("client", "success", 8, False), ("gateway", "success", 8, False)]
    assert (ops_c["verify:ecdsa"], ops_c["sign:ecdsa"], ops_c["ke_keygen:31"], ops_c["ke_shared:31"]) == (4, 1, 2, 2)
    assert (ops_g["verify:ecdsa"], ops_g["sign:ecdsa"], ops_g["ke_keygen:31"], ops_g["ke_shared:31"]) == (3, 1, 2, 2)
    hello = w.eap("client")[0]
    assert (hello.data[1 + 65] == 32) is offered and (hello.data[1 + 33:1 + 65] == bytes(32)) is offered
    return c, g


def test_restarted_gateway_does_not_know_the_session() -> None:
    """The gateway restarted (a new daemon, as ``sim.restart``): the offered session is unknown, the full handshake
    runs (the client's key share then in ClientKeyExchange) and the client keeps the new session ID (RFC 5246
    §7.4.1.2)."""
    w = make()
    authenticate(w, 0.0)
    old = session_cache(w.p.client).by_connection["vpn"]  # type: ignore[arg-type]
    for sa in list(w.p.client.sas.values()):  # the client leaves before the restart
        w.p.client.delete_ike_sa(sa.spi_i, 50.0)
        w.settle(50.0)
    fresh = make(boot="boot1")
    w2 = Wire(Peers(w.p.client, fresh.p.gateway))
    _full_again(w2, 100.0, offered=True)
    flight = w2.eap("client")[4]  # the client's Certificate .. Finished, first fragment: L flag, length, its share
    assert flight.data[:5] == b"\xc0\x00\x00\x05\x79" and any(flight.data[6:38])
    new = session_cache(w.p.client).by_connection["vpn"]  # type: ignore[arg-type]
    assert new.session_id == Rng(3).child("gateway", "boot1").child("tls_session").draw("tls_session_id", 32)
    assert new.session_id != old.session_id and new.expires_at == 3700.0
    c, g, _, _ = authenticate(w2, 200.0)
    assert rounds(c, g) == ABBREVIATED


def test_expired_session_runs_the_full_handshake() -> None:
    """The gateway keeps sessions 60 s, the client 1 h: at 100 s the client offers, the gateway's has expired."""
    w = make(lifetime_g=60.0)
    authenticate(w, 0.0)
    _full_again(w, 100.0, offered=True)
    c, g, _, _ = authenticate(w, 150.0)  # the new session, 50 s old
    assert rounds(c, g) == ABBREVIATED


@pytest.mark.parametrize(("client", "gateway"), [(False, True), (True, False), (False, False)])
def test_resumption_off_on_either_side_runs_the_full_handshake(client: bool, gateway: bool) -> None:
    """Without resumption on the client it offers nothing; without it on the gateway the ServerHello has no session
    ID, so the client keeps none: each authentication is the full handshake."""
    w = make(client=client, gateway=gateway)
    authenticate(w, 0.0)
    _full_again(w, 100.0, offered=False)
    assert session_cache(w.p.client).by_connection == {}  # type: ignore[arg-type]
    assert len(session_cache(w.p.gateway).by_id) == (2 if gateway else 0)  # a new session each time  # type: ignore[arg-type]
