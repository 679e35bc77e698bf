"""IKE_SA_INIT flood protection: cookies, per-IP block, half-open timeout (RFC 7296 §2.6; strongSwan defaults)."""

from __future__ import annotations

from dataclasses import replace

from ikepeers import CLIENT, GATEWAY, GATEWAY_ID, Peers, config, make_peers, names

from ikesim.ike import events as ev
from ikesim.ike.config import DaemonConfig
from ikesim.ike.cookies import COOKIE_SECRET_SWITCH, CookieJar, HalfOpenTable
from ikesim.ike.daemon import IkeDaemon
from ikesim.rng import Rng
from ikesim.types import Address
from ikesim.wire.codec import parse_message, serialize_message
from ikesim.wire.iana import NotifyType
from ikesim.wire.payloads import NotifyPayload, SaPayload


def _gateway(**settings: object) -> IkeDaemon:
    """The gateway with DaemonConfig's defaults, except *settings*."""
    base = config("gateway", GATEWAY, None, local_id=GATEWAY_ID, remote_id=None)
    cfg = DaemonConfig(name=base.name, addresses=base.addresses, connections=base.connections)
    return IkeDaemon(replace(cfg, **settings), rng=Rng(1).child("gateway"))  # type: ignore[arg-type]


def _peers_with_default_gateway(**settings: object) -> Peers:
    p = make_peers()
    return Peers(p.client, _gateway(**settings))


def _template() -> bytes:
    """A real client's IKE_SA_INIT request (its SPIi is replaced per spoofed copy)."""
    p = make_peers(seed=99)
    p.client.initiate("vpn", 0.0)
    (d,) = p.client.datagrams_to_send(0.0)
    return d.data


def _spoofed(template: bytes, i: int, cookie: bytes | None = None) -> bytes:
    data = (i + 1).to_bytes(8, "big") + template[8:]
    if cookie is None:
        return data
    msg = parse_message(data)
    return serialize_message(replace(msg, payloads=(NotifyPayload(NotifyType.COOKIE, data=cookie), *msg.payloads)))


def _source(i: int) -> Address:
    return Address(f"198.18.{i // 250}.{i % 250 + 1}", 500)


def _drain(d: IkeDaemon) -> list[ev.IkeEvent]:
    """*d*'s events, without NatDetected (spoofed sources never match the NATD hashes in the template) and
    IkeSaKeysDerived (the key-table record of each half-open SA)."""
    out = []
    while (e := d.next_event()) is not None:
        if not isinstance(e, ev.NatDetected | ev.IkeSaKeysDerived):
            out.append(e)
    return out


def test_defaults_are_strongswan_charon() -> None:
    """cookie_threshold 30, cookie_threshold_ip 3, block_threshold 5, half_open_timeout 30 s, no global limit."""
    cfg = DaemonConfig(name="gw", addresses=(GATEWAY,), connections=())
    assert (cfg.cookie_threshold, cfg.cookie_threshold_ip, cfg.block_threshold, cfg.init_limit_half_open,
            cfg.half_open_timeout) == (30, 3, 5, None, 30.0)


def test_flood_from_5000_sources_is_bounded_and_a_cookie_returner_connects() -> None:
    """5,000 spoofed IKE_SA_INITs, one per source: 30 half-open IKE_SAs, 4,970 COOKIE answers; the real client
    returns its cookie and connects; the 30 time out after 30 s; 10 s later cookies are no longer asked."""
    p = _peers_with_default_gateway()
    gw, template = p.gateway, _template()
    for i in range(5000):
        gw.receive_datagram(_spoofed(template, i), _source(i), GATEWAY, i * 0.001)
    out = gw.datagrams_to_send(5.0)
    answers = [parse_message(d.data) for d in out]
    assert len(out) == 5000 and [d.dst for d in out] == [_source(i) for i in range(5000)]
    assert sum(m.get(SaPayload) is not None for m in answers[:30]) == 30
    assert all([n.notify_type for n in m.payloads] == [NotifyType.COOKIE] for m in answers[30:])
    assert len(gw.half_open) == 30 and len(gw.sas) == 30
    events = _drain(gw)
    cookies = [e for e in events if isinstance(e, ev.CookieRequired)]
    assert names(events) == ["CookieRequired"] * 4970
    assert {(e.threshold, e.half_open, e.half_open_ip, e.invalid_cookie) for e in cookies} == {
        ("cookie_threshold", 30, 0, False)}

    p.client.initiate("vpn", 6.0)
    p.settle(6.0)
    c, g = p.events(p.client), p.events(p.gateway)
    assert names(g) == ["CookieRequired", "IkeSaEstablished", "ChildSaInstalled"]
    assert (g[0].src, g[0].threshold) == (CLIENT, "cookie_threshold")
    assert [e.reason for e in c if isinstance(e, ev.IkeSaInitRetried)] == ["cookie"]
    assert len(p.client.ike_sa_spis()) == 1 and len(gw.half_open) == 30

    assert gw.get_timer() == 30.0  # the first spoofed half-open IKE_SA, created at 0.0
    gw.handle_timer(35.0)
    deleted = [e for e in _drain(gw) if isinstance(e, ev.IkeSaDeleted)]
    assert len(deleted) == 30 and {e.reason for e in deleted} == {"timeout"}
    assert len(gw.half_open) == 0 and len(gw.ike_sa_spis()) == 1

    gw.receive_datagram(_spoofed(template, 6000), _source(1), GATEWAY, 36.5)
    (answer,) = gw.datagrams_to_send(36.5)
    assert parse_message(answer.data).get(SaPayload) is not None and len(gw.half_open) == 1


def test_per_ip_cookie_then_block_threshold() -> None:
    """One source IP: 3 half-open, then COOKIEs; with returned cookies 2 more, then drops at 5 (block_threshold)."""
    gw, template = _gateway(), _template()
    src = Address("192.0.2.7", 500)
    for i in range(10):
        gw.receive_datagram(_spoofed(template, i), src, GATEWAY, 1.0)
    answers = [parse_message(d.data) for d in gw.datagrams_to_send(1.0)]
    assert [m.get(SaPayload) is not None for m in answers] == [True] * 3 + [False] * 7
    cookies = [m.payloads[0].data for m in answers[3:]]
    events = _drain(gw)
    assert names(events) == ["CookieRequired"] * 7
    assert {(e.threshold, e.half_open, e.half_open_ip) for e in events} == {("cookie_threshold_ip", 3, 3)}

    for i, cookie in zip(range(3, 10), cookies, strict=True):
        gw.receive_datagram(_spoofed(template, i, cookie), src, GATEWAY, 2.0)
    answers = [parse_message(d.data) for d in gw.datagrams_to_send(2.0)]
    assert [m.get(SaPayload) is not None for m in answers] == [True, True]
    dropped = _drain(gw)
    assert names(dropped) == ["MessageDropped"] * 5
    assert {(e.reason, e.src, e.exchange) for e in dropped} == {
        ("per-IP half-open limit of 5 reached", src, "IKE_SA_INIT")}
    assert gw.half_open.count_ip("192.0.2.7") == 5 and len(gw.half_open) == 5

    other = Address("192.0.2.99", 500)
    gw.receive_datagram(_spoofed(template, 20), other, GATEWAY, 2.0)
    (answer,) = gw.datagrams_to_send(2.0)
    assert parse_message(answer.data).get(SaPayload) is not None and gw.half_open.count_ip("192.0.2.99") == 1


def test_wrong_cookie_is_answered_with_a_fresh_one() -> None:
    """A COOKIE this responder did not make for (Ni, IPi, SPIi) is not accepted: a new COOKIE, invalid_cookie=True."""
    gw, template = _gateway(cookie_threshold=0), _template()
    src = Address("192.0.2.7", 500)
    gw.receive_datagram(_spoofed(template, 1), src, GATEWAY, 1.0)
    (first,) = gw.datagrams_to_send(1.0)
    cookie = parse_message(first.data).payloads[0].data
    gw.receive_datagram(_spoofed(template, 2, cookie), src, GATEWAY, 1.0)  # another SPIi: not its cookie
    (second,) = gw.datagrams_to_send(1.0)
    assert parse_message(second.data).payloads[0] != NotifyPayload(NotifyType.COOKIE, data=cookie)
    assert [e.invalid_cookie for e in _drain(gw)] == [False, True] and len(gw.sas) == 0


def test_init_limit_half_open_drops_everyone() -> None:
    """init_limit_half_open=2: the third IKE_SA_INIT, from a third IP, is dropped with a reason."""
    gw, template = _gateway(init_limit_half_open=2, cookie_threshold=None), _template()
    for i in range(3):
        gw.receive_datagram(_spoofed(template, i), _source(i), GATEWAY, 1.0)
    assert len(gw.datagrams_to_send(1.0)) == 2 and len(gw.half_open) == 2
    (drop,) = _drain(gw)
    assert isinstance(drop, ev.MessageDropped) and drop.reason == "half-open limit of 2 reached"


def test_half_open_timeout_is_configurable() -> None:
    """half_open_timeout=12: a responder IKE_SA without IKE_AUTH is removed 12 s after IKE_SA_INIT."""
    gw, template = _gateway(half_open_timeout=12.0), _template()
    gw.receive_datagram(_spoofed(template, 1), _source(1), GATEWAY, 1.0)
    gw.datagrams_to_send(1.0)
    assert gw.get_timer() == 13.0
    gw.handle_timer(13.0)
    (deleted,) = _drain(gw)
    assert isinstance(deleted, ev.IkeSaDeleted) and deleted.reason == "timeout"
    assert len(gw.half_open) == 0 and gw.sas == {}


def test_half_open_table_counts_per_ip() -> None:
    """HalfOpenTable: add/discard keep the total and per-IP counts; discarding an unknown SPI is a no-op."""
    t = HalfOpenTable()
    t.add(b"a" * 8, "10.0.0.1")
    t.add(b"b" * 8, "10.0.0.1")
    t.add(b"c" * 8, "10.0.0.2")
    t.discard(b"a" * 8)
    t.discard(b"z" * 8)
    assert (len(t), t.count_ip("10.0.0.1"), t.count_ip("10.0.0.2"), t.count_ip("10.0.0.3")) == (2, 1, 1, 0)
    assert b"b" * 8 in t and sorted(t) == [b"b" * 8, b"c" * 8]


def test_cookie_secret_switch_keeps_one_previous_secret() -> None:
    """A cookie stays valid across one secret switch (120 s after first use), not two (RFC 7296 §2.6)."""
    jar = CookieJar(Rng(5, "cookie"))
    nonce, ip, spi = bytes(32), "192.0.2.1", bytes(range(8))
    old = jar.make(nonce, ip, spi, 0.0)
    assert jar.valid(old, nonce, ip, spi) and not jar.valid(old, nonce, "192.0.2.2", spi)
    newer = jar.make(nonce, ip, spi, COOKIE_SECRET_SWITCH + 1.0)
    assert newer != old and jar.valid(old, nonce, ip, spi) and jar.valid(newer, nonce, ip, spi)
    jar.make(nonce, ip, spi, 2 * COOKIE_SECRET_SWITCH + 2.0)
    assert not jar.valid(old, nonce, ip, spi) and jar.valid(newer, nonce, ip, spi)


def test_cookie_calmdown_keeps_cookies_required_10s() -> None:
    """Once a threshold was reached, cookies stay required for 10 s after (strongSwan COOKIE_CALMDOWN_DELAY); an
    IKE_SA_INIT below the threshold in the meantime (at 109.9 s) does not extend it (receiver.c cookie_required())."""
    jar = CookieJar(Rng(5, "cookie"))
    assert jar.required(30, 30, None, 100.0)
    assert jar.required(0, 30, None, 109.9) and not jar.required(0, 30, None, 110.0)
    assert not jar.required(10**6, None, None, 0.0)


def test_first_cookie_bytes_unchanged() -> None:
    """The first cookie is RFC 7296 §2.6's Version | SHA-256(Ni | IPi | SPIi | secret), secret = the first
    32 bytes of the daemon's ``cookie`` stream, as before this change."""
    from ikesim.crypto.natd import cookie_value

    rng = Rng(5, "cookie")
    secret = Rng(5, "cookie").bytes(32)
    assert CookieJar(rng).make(bytes(32), "192.0.2.1", bytes(8), 0.0) == cookie_value(secret, bytes(32), "192.0.2.1",
                                                                                        bytes(8))
