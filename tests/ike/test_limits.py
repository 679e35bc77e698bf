"""Data-plane reports to the IKE daemon (``ikesim.ike.limits``): CHILD_SA volume limits reached (as the Linux kernel's
XFRM_MSG_EXPIRE, RFC 7296 §2.8), jittered soft volume limits, and UDP-encapsulated ESP from a new address (as
XFRM_MSG_MAPPING, RFC 7296 §2.23, RFC 3948), with strongSwan's semantics."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from ikepeers import CLIENT, CLIENT_ID, GATEWAY, GATEWAY_ID, Peers, config, make_peers, names

from ikesim.errors import LocalProtocolError
from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy, Lifetime
from ikesim.ike.daemon import IkeDaemon
from ikesim.ike.limits import VolumeLimits
from ikesim.rng import Rng
from ikesim.types import Address, Datagram

C_SPI, G_SPI = bytes.fromhex("c08b1a9a"), bytes.fromhex("284f957d")
"""The first CHILD_SA with seed 1: the client's inbound SPI and the gateway's (the client's outbound one)."""
C_NEW, G_NEW = bytes.fromhex("fab28899"), bytes.fromhex("4622b3b3")
"""The CHILD_SA made next (by a rekey or a recreation), with seed 1."""


def _peers(seed: int = 1, lifetime: Lifetime | None = None) -> tuple[Peers, bytes, bytes]:
    children = (ChildPolicy(lifetime=lifetime),) if lifetime is not None else None
    p = make_peers(seed=seed, client_children=children, gateway_children=children)
    c, g = p.establish()
    return p, c, g


def _fields(e: ev.IkeEvent, *names_: str) -> tuple[object, ...]:
    return (type(e).__name__, *(getattr(e, n) for n in names_))


# ---------------------------------------------------------------------------------------------- soft limits
@pytest.mark.parametrize(("reported", "counter"), [(C_SPI, "bytes"), (G_SPI, "packets"), (C_SPI, "seq")])
def test_soft_limit_rekeys_the_child_sa(reported: bytes, counter: str) -> None:
    """A soft limit of either SA of the pair starts a CHILD_SA rekey with trigger soft_<counter> (RFC 7296 §2.8)."""
    p, c, g = _peers()
    assert (c, g) == (C_SPI, G_SPI)
    p.client.child_sa_limit_reached(reported, hard=False, counter=counter, now=10.0)
    e = p.events(p.client)
    assert [_fields(x, "spi_in", "spi_out", "counter", "hard", "handling") for x in e[:1]] == [
        ("ChildSaLimitReached", C_SPI, G_SPI, counter, False, "rekey")]
    assert _fields(e[1], "kind", "old_spi", "old_spi_out", "trigger") == (
        "RekeyStarted", ev.SaKind.CHILD, C_SPI, G_SPI, f"soft_{counter}")
    assert _fields(e[2], "exchange", "purpose", "message_id", "peer") == (
        "ExchangeStarted", "CREATE_CHILD_SA", "rekey_child", 2, GATEWAY)
    assert len(e) == 3
    (out,) = p.client.datagrams_to_send(10.0)
    assert (out.src, out.dst, out.data[18], out.data[20:24]) == (CLIENT, GATEWAY, 36, (2).to_bytes(4, "big"))
    p.gateway.receive_datagram(out.data, out.src, out.dst, 10.0)
    p.settle(10.0)
    assert p.client.child_sa_spis() == [C_NEW] and p.gateway.child_sa_spis() == [G_NEW]
    (done,) = [x for x in p.events(p.client) if isinstance(x, ev.RekeyCompleted)]
    assert (done.old_spi, done.new_spi, done.initiator) == (C_SPI, C_NEW, True)


def test_duplicate_soft_reports_start_one_rekey() -> None:
    """Reports while the rekey is queued or under way start nothing more (strongSwan child_rekey build_i)."""
    p, c, _ = _peers()
    p.client.check_liveness(p.client.ike_sa_spis()[0], 9.0)  # the window is busy: the rekey waits in the queue
    p.events(p.client)
    p.client.child_sa_limit_reached(c, hard=False, counter="bytes", now=10.0)
    p.client.child_sa_limit_reached(G_SPI, hard=False, counter="packets", now=10.0)
    assert [_fields(x, "counter", "handling") for x in p.events(p.client)] == [
        ("ChildSaLimitReached", "bytes", "rekey"), ("ChildSaLimitReached", "packets", "rekey_queued")]
    p.deliver(p.client, 10.0)  # the liveness check
    p.deliver(p.gateway, 10.0)  # its answer opens the window: the rekey starts
    e = p.events(p.client)
    assert names(e) == ["ExchangeCompleted", "RekeyStarted", "ExchangeStarted"]
    assert (e[1].trigger, e[2].purpose, e[2].message_id) == ("soft_bytes", "rekey_child", 3)
    p.client.child_sa_limit_reached(c, hard=False, counter="bytes", now=10.5)
    assert [_fields(x, "handling") for x in p.events(p.client)] == [("ChildSaLimitReached", "rekeying")]
    p.settle(11.0)
    assert [x.trigger for x in p.log["client"] if isinstance(x, ev.RekeyStarted)] == ["soft_bytes"]
    assert p.client.child_sa_spis() == [C_NEW]


@pytest.mark.parametrize("reported", [C_SPI, G_SPI])
def test_soft_report_for_a_replaced_sa_does_nothing(reported: bytes) -> None:
    """After the rekey, a late report for the old (now lingering) SA neither rekeys nor sends (RFC 7296 §2.8)."""
    p, c, _ = _peers()
    p.client.rekey_child_sa(c, 5.0)
    p.settle(5.0)
    p.events(p.client)
    p.client.child_sa_limit_reached(reported, hard=False, counter="bytes", now=6.0)
    assert [_fields(x, "spi_in", "handling") for x in p.events(p.client)] == [
        ("ChildSaLimitReached", C_SPI, "rekeyed")]
    assert p.client.datagrams_to_send(6.0) == []
    # The rekey responder's old SA, waiting for the peer's Delete, is the same.
    q, _, g = _peers()
    q.client.rekey_child_sa(C_SPI, 5.0)
    q.deliver(q.client, 5.0)
    q.events(q.gateway)
    q.gateway.child_sa_limit_reached(g, hard=False, counter="packets", now=5.5)
    assert [_fields(x, "spi_in", "handling") for x in q.events(q.gateway)] == [
        ("ChildSaLimitReached", G_SPI, "rekeyed")]


@pytest.mark.parametrize("spi", [b"\x00\x00\x01\x00", b"", b"\xff" * 9, C_SPI[::-1]])
def test_unknown_spi_is_ignored(spi: bytes) -> None:
    """A report naming no CHILD_SA of this node does nothing, soft or hard, and raises nothing."""
    p, _, _ = _peers()
    for hard in (False, True):
        p.client.child_sa_limit_reached(spi, hard=hard, counter="bytes", now=10.0)
    p.client.esp_peer_moved(spi, Address("192.0.2.9", 4500), 10.0)
    assert p.events(p.client) == [] and p.client.datagrams_to_send(10.0) == []
    assert p.client.child_sa_spis() == [C_SPI]


def test_unknown_counter_is_a_local_error() -> None:
    """The counter is bytes, packets or seq; anything else is a programming error of the caller."""
    p, c, _ = _peers()
    with pytest.raises(LocalProtocolError, match="unknown counter 'octets'"):
        p.client.child_sa_limit_reached(c, hard=False, counter="octets", now=10.0)


# ---------------------------------------------------------------------------------------------- hard limits
@pytest.mark.parametrize("reported", [C_SPI, G_SPI])
def test_hard_limit_expires_deletes_and_recreates(reported: bytes) -> None:
    """Hard limit: SaExpired, a Delete ahead of other work, then a new CHILD_SA (strongSwan child_delete, expired)."""
    p, c, g = _peers()
    p.client.child_sa_limit_reached(reported, hard=True, counter="packets", now=10.0)
    e = p.events(p.client)
    assert [_fields(x, "counter", "hard", "handling") for x in e[:1]] == [
        ("ChildSaLimitReached", "packets", True, "expire")]
    assert _fields(e[1], "kind", "spi") == ("SaExpired", ev.SaKind.CHILD, C_SPI)
    assert _fields(e[2], "exchange", "purpose", "message_id", "reason") == (
        "ExchangeStarted", "INFORMATIONAL", "delete_child", 2, "expired")
    assert len(e) == 3 and p.client.get_timer() == pytest.approx(14.0)  # only the retransmission is left
    p.settle(10.0)
    e = p.events(p.client)
    assert [(type(x).__name__, getattr(x, "reason", getattr(x, "purpose", ""))) for x in e] == [
        ("ExchangeCompleted", "delete_child"), ("ChildSaDeleted", "expired"), ("ExchangeStarted", "recreate"),
        ("ExchangeCompleted", "create_child"), ("ChildSaInstalled", "")]
    assert (e[2].purpose, e[2].message_id) == ("create_child", 3)
    assert (e[4].spi_in, e[4].rekey_of, e[4].expire_at) == (C_NEW, None, 3970.0)
    assert [(x.spi_in, x.reason) for x in p.events(p.gateway) if isinstance(x, ev.ChildSaDeleted)] == [
        (g, "deleted_by_peer")]
    assert p.client.child_sa_spis() == [C_NEW] and p.gateway.child_sa_spis() == [G_NEW]
    p.client.child_sa_limit_reached(reported, hard=True, counter="packets", now=11.0)  # the old SA is gone
    assert p.events(p.client) == []


def test_second_hard_report_does_nothing_more() -> None:
    """A second hard report for an expired SA queues no second Delete."""
    p, c, _ = _peers()
    p.client.child_sa_limit_reached(c, hard=True, counter="bytes", now=10.0)
    p.client.child_sa_limit_reached(G_SPI, hard=True, counter="packets", now=10.0)
    e = p.events(p.client)
    assert names(e) == ["ChildSaLimitReached", "SaExpired", "ExchangeStarted", "ChildSaLimitReached"]
    assert e[3].handling == "expired" and len(p.client.datagrams_to_send(10.0)) == 1
    p.client.child_sa_limit_reached(c, hard=False, counter="bytes", now=10.0)
    assert [x.handling for x in p.events(p.client)] == ["expired"]


def test_hard_limit_of_an_sa_being_deleted_sends_no_second_delete() -> None:
    """The SA's Delete is in flight: it is marked expired, nothing else goes out, and it is not recreated."""
    p, c, _ = _peers()
    p.client.delete_child_sa(c, 10.0)
    (delete,) = p.client.datagrams_to_send(10.0)
    p.events(p.client)
    p.client.child_sa_limit_reached(c, hard=True, counter="bytes", now=10.5)
    assert [_fields(x, "handling") if hasattr(x, "handling") else _fields(x, "spi") for x in p.events(p.client)] == [
        ("ChildSaLimitReached", "expire"), ("SaExpired", C_SPI)]
    assert p.client.datagrams_to_send(10.5) == []
    p.gateway.receive_datagram(delete.data, delete.src, delete.dst, 11.0)
    p.settle(11.0)
    e = p.events(p.client)
    assert [(type(x).__name__, getattr(x, "reason", "")) for x in e] == [
        ("ExchangeCompleted", ""), ("ChildSaDeleted", "deleted_locally")]
    assert p.client.child_sa_spis() == [] and p.gateway.child_sa_spis() == []


def test_hard_limit_of_the_rekey_responders_old_sa_drops_it_silently() -> None:
    """Waiting for the peer's Delete of the rekeyed SA: no Delete of ours, no new SA; sending moves to the new SA
    (strongSwan child_delete build_i: a CHILD_REKEYED SA is not deleted by us, in particular on an expire)."""
    p, c, g = _peers()
    p.client.rekey_child_sa(c, 5.0)
    p.deliver(p.client, 5.0)
    p.events(p.client), p.events(p.gateway)
    p.gateway.child_sa_limit_reached(g, hard=True, counter="bytes", now=5.5)
    e = p.events(p.gateway)
    assert [_fields(x, "spi_in") if hasattr(x, "spi_in") else _fields(x, "spi") for x in e] == [
        ("ChildSaLimitReached", G_SPI), ("SaExpired", G_SPI), ("ChildSaOutboundInstalled", G_NEW),
        ("ChildSaDeleted", G_SPI)]
    assert (e[2].replaces, e[3].reason) == (G_SPI, "expired")
    (answer,) = p.gateway.datagrams_to_send(5.5)  # only the CREATE_CHILD_SA response
    p.client.receive_datagram(answer.data, answer.src, answer.dst, 5.5)
    p.settle(5.5)
    assert [x.reason for x in p.events(p.client) if isinstance(x, ev.ExchangeStarted)] == ["rekeyed"]
    assert p.gateway.child_sa_spis() == [G_NEW] and p.client.child_sa_spis() == [C_NEW]
    assert not any(isinstance(x, ev.ExchangeStarted) for x in p.events(p.gateway))


def test_hard_limit_during_our_rekey_ends_with_the_new_sa_only() -> None:
    """Expired while our rekey of it is in flight: the rekey completes, the old SA is deleted as rekeyed and
    then dropped at once, and no further CHILD_SA is created."""
    p, c, _ = _peers()
    p.client.child_sa_limit_reached(c, hard=False, counter="bytes", now=10.0)
    p.deliver(p.client, 10.0)
    p.client.child_sa_limit_reached(c, hard=True, counter="bytes", now=10.1)
    p.settle(10.2)
    e = p.events(p.client)
    assert [(type(x).__name__, getattr(x, "reason", "")) for x in e[3:]] == [
        ("ChildSaLimitReached", ""), ("SaExpired", ""), ("ExchangeCompleted", ""), ("ChildSaInstalled", ""),
        ("RekeyCompleted", ""), ("ExchangeStarted", "rekeyed"), ("ExchangeCompleted", ""),
        ("ChildSaDeleted", "expired")]
    assert p.client.child_sa_spis() == [C_NEW] and list(p.client.children) == [C_NEW]


# ---------------------------------------------------------------------------------------------- jittered limits
VOLUME = Lifetime(rekey_time=3600.0, life_time=3960.0, rand_time=360.0, rekey_bytes=1_000_000,
                  life_bytes=1_100_000, rand_bytes=100_000, rekey_packets=10_000, life_packets=11_000,
                  rand_packets=1_000)


def test_soft_volume_limits_are_drawn_per_installed_sa() -> None:
    """Seed 1: each SA a CHILD_SA installs draws rekey - U{0..rand} of its own from the daemon's ``volume_jitter``
    stream (strongSwan ``install_internal`` -> ``get_lifetime``): inbound bytes, inbound packets, outbound bytes,
    outbound packets; the hard limits are not jittered."""
    p, c, g = _peers(lifetime=VOLUME)
    assert p.client.child_sa_volume_limits(c) == VolumeLimits(
        rekey_bytes_in=909_688, rekey_bytes_out=971_768, life_bytes=1_100_000,
        rekey_packets_in=9_246, rekey_packets_out=9_959, life_packets=11_000)
    assert p.gateway.child_sa_volume_limits(g) == VolumeLimits(
        rekey_bytes_in=915_458, rekey_bytes_out=902_557, life_bytes=1_100_000,
        rekey_packets_in=9_983, rekey_packets_out=9_858, life_packets=11_000)
    p.client.rekey_child_sa(c, 5.0)
    p.settle(5.0)
    assert p.client.child_sa_volume_limits(C_NEW) == VolumeLimits(
        rekey_bytes_in=950_894, rekey_bytes_out=956_692, life_bytes=1_100_000,
        rekey_packets_in=9_228, rekey_packets_out=9_761, life_packets=11_000)
    assert p.gateway.child_sa_volume_limits(G_NEW) == VolumeLimits(
        rekey_bytes_in=929_292, rekey_bytes_out=976_707, life_bytes=1_100_000,
        rekey_packets_in=9_728, rekey_packets_out=9_383, life_packets=11_000)
    stream = Rng(1).child("client", "volume_jitter")  # the same numbers, drawn by hand
    assert [1_000_000 - stream.below(100_001), 10_000 - stream.below(1_001),
            1_000_000 - stream.below(100_001), 10_000 - stream.below(1_001)] == [909_688, 9_246, 971_768, 9_959]
    with pytest.raises(LocalProtocolError):
        p.client.child_sa_volume_limits(b"\x00\x00\x01\x00")


def test_two_sas_of_a_child_sa_get_different_soft_byte_limits() -> None:
    """rekey_bytes 1000, rand_bytes 100 (no packet limit: no packet draws), seed 1: the inbound and the outbound SA
    of each end get two different soft limits in 900 .. 1000, the hard limit 1100 for both."""
    lifetime = Lifetime(rekey_time=3600.0, life_time=3960.0, rand_time=360.0, rekey_bytes=1000, life_bytes=1100,
                        rand_bytes=100)
    p, c, g = _peers(lifetime=lifetime)
    assert p.client.child_sa_volume_limits(c) == VolumeLimits(912, 950, 1100, 0, 0, 0)
    assert p.gateway.child_sa_volume_limits(g) == VolumeLimits(918, 985, 1100, 0, 0, 0)
    stream = Rng(1).child("client", "volume_jitter")
    assert [1000 - stream.below(101), 1000 - stream.below(101)] == [912, 950]


def test_ha_takeover_keeps_both_sas_soft_limits() -> None:
    """The replicated CHILD_SA carries the inbound and the outbound SA's draws; the member taking over keeps them."""
    p, _, g = _peers(lifetime=VOLUME)
    (gspi,) = p.gateway.ike_sa_spis()
    record = p.gateway.ha_record(gspi)
    assert record is not None
    (r,) = record.children
    assert (r.rekey_bytes_in, r.rekey_bytes_out, r.life_bytes, r.rekey_packets_in, r.rekey_packets_out,
            r.life_packets) == (915_458, 902_557, 1_100_000, 9_983, 9_858, 11_000)
    b = IkeDaemon(p.gateway.config, rng=Rng(5).child("b"))
    b.activate_ike_sa(record, 5.0)
    assert b.child_sa_volume_limits(g) == p.gateway.child_sa_volume_limits(g)


def test_volume_jitter_leaves_every_other_draw_unchanged() -> None:
    """SPIs, nonces, keys and the time jitter are the same with and without volume limits (no existing stream
    gives up a draw): only the new stream's draws differ."""
    runs = []
    for lifetime in (Lifetime.child_default(), VOLUME):
        p, c, g = _peers(lifetime=lifetime)
        installed = [x for x in p.log["client"] if isinstance(x, ev.ChildSaInstalled)]
        runs.append((c, g, p.client.ike_sa_spis(), installed[0].rekey_at, installed[0].encr_key_in))
    assert runs[0] == runs[1] and runs[0][:2] == (C_SPI, G_SPI)
    p, c, _ = _peers(lifetime=Lifetime.child_default())
    assert p.client.child_sa_volume_limits(c) == VolumeLimits(0, 0, 0, 0, 0, 0)


@pytest.mark.parametrize(("rekey", "rand", "seen"), [(3, 100, {1, 2, 3}), (10, 2, {8, 9, 10}), (1_000, 0, {1_000}),
                                                     (0, 50, {0})])
def test_jitter_never_reaches_zero(rekey: int, rand: int, seen: set[int]) -> None:
    """strongSwan apply_jitter subtracts a whole number below min(rand + 1, rekey): the soft limit stays at least 1;
    no jitter or no limit draws nothing. 300 draws give every value in the range."""
    p, _, _ = _peers()
    assert {p.client.volume_jitter(rekey, rand) for _ in range(300)} == seen
    if rand == 0 or rekey == 0:  # nothing was drawn: the stream is where it started
        assert p.client.rng_volume.bytes(4) == Rng(1).child("client", "volume_jitter").bytes(4)


# ---------------------------------------------------------------------------------------------- ESP from a new address
@dataclass
class Nat:
    """A NAT by hand: the client 10.0.0.1 appears as 203.0.113.5 (port + 40000); the gateway, if ``static``, sits
    behind 198.51.100.2 with ports 500 and 4500 forwarded to 10.0.0.2."""

    static: bool = False
    public: str = "203.0.113.5"

    @property
    def gateway_public(self) -> Address:
        return Address("198.51.100.2") if self.static else GATEWAY

    def out(self, d: Datagram) -> Datagram:
        dst = Address(GATEWAY.ip, d.dst.port) if self.static else d.dst
        return Datagram(d.data, Address(self.public, d.src.port + 40000), dst)

    def back(self, d: Datagram) -> Datagram:
        src = Address("198.51.100.2", d.src.port) if self.static else d.src
        return Datagram(d.data, src, Address(CLIENT.ip, d.dst.port - 40000))


def _natted(nat: Nat) -> Peers:
    rng = Rng(1)
    children = (ChildPolicy(remote_ts=(f"{GATEWAY.ip}/32",)),)  # "dynamic" would be the gateway's public address
    client = IkeDaemon(config("client", CLIENT, nat.gateway_public, local_id=CLIENT_ID, remote_id=GATEWAY_ID,
                              children=children), rng=rng.child("client"))
    gateway = IkeDaemon(config("gateway", GATEWAY, None, local_id=GATEWAY_ID, remote_id=None), rng=rng.child("gateway"))
    p = Peers(client, gateway)
    client.initiate("vpn", 0.0)
    for _ in range(10):
        sent = p.deliver(client, 0.0, nat.out) + p.deliver(gateway, 0.0, nat.back)
        if not sent:
            break
    p.events(client)
    p.events(gateway)
    return p


def test_esp_from_a_new_address_moves_the_peer_behind_a_nat() -> None:
    """The gateway (not behind a NAT) follows its NAT'd peer's new mapping, IKE_SA and CHILD_SAs, sending nothing
    (RFC 7296 §2.23; strongSwan update_sa_job -> update_hosts). The next request goes there."""
    p = _natted(Nat())
    (g_ike,), (g,) = p.gateway.ike_sa_spis(), p.gateway.child_sa_spis()
    info = p.gateway.ike_sa_info(g_ike)
    assert (info.nat_local, info.nat_peer, info.peer) == (False, True, Address("203.0.113.5", 44500))
    moved = Address("203.0.113.5", 50123)
    p.gateway.esp_peer_moved(g, moved, 30.0)
    (e,) = p.events(p.gateway)
    assert _fields(e, "spi_i", "spi_r", "old", "new") == (
        "PeerAddressChanged", info.spi_i, info.spi_r, Address("203.0.113.5", 44500), moved)
    assert p.gateway.datagrams_to_send(30.0) == [] and p.gateway.ike_sa_info(g_ike).peer == moved
    p.gateway.esp_peer_moved(g, moved, 31.0)  # the same address again: nothing
    assert p.events(p.gateway) == []
    p.gateway.check_liveness(g_ike, 32.0)
    (dpd,) = p.gateway.datagrams_to_send(32.0)
    assert (dpd.src, dpd.dst) == (Address(GATEWAY.ip, 4500), moved)


def test_esp_from_a_new_address_is_ignored_where_strongswan_ignores_it() -> None:
    """No NAT at all, or only this end behind one: the peer address stays (RFC 7296 §2.23: a host behind a NAT
    SHOULD NOT update; strongSwan needs COND_NAT_THERE)."""
    p, c, g = _peers()
    p.gateway.esp_peer_moved(g, Address("192.0.2.7", 4500), 10.0)
    p.client.esp_peer_moved(c, Address("192.0.2.8", 4500), 10.0)
    q = _natted(Nat())
    (c_ike,), (qc,) = q.client.ike_sa_spis(), q.client.child_sa_spis()
    q.client.esp_peer_moved(qc, Address("192.0.2.8", 4500), 10.0)
    assert p.events(p.client) == p.events(p.gateway) == q.events(q.client) == []
    assert q.client.ike_sa_info(c_ike).peer == Address(GATEWAY.ip, 4500)
    assert p.gateway.ike_sa_info(p.gateway.ike_sa_spis()[0]).peer == CLIENT


def test_both_behind_nats_only_the_responder_follows() -> None:
    """Both ends behind NATs: the original initiator keeps its peer, the responder (taken to sit behind a static
    NAT) follows (strongSwan update_hosts: NAT_THERE and not (NAT_HERE and ORIGINAL_INITIATOR))."""
    p = _natted(Nat(static=True))
    (c_ike,), (g_ike,) = p.client.ike_sa_spis(), p.gateway.ike_sa_spis()
    (c,), (g,) = p.client.child_sa_spis(), p.gateway.child_sa_spis()
    ci, gi = p.client.ike_sa_info(c_ike), p.gateway.ike_sa_info(g_ike)
    assert (ci.nat_local, ci.nat_peer, gi.nat_local, gi.nat_peer) == (True, True, True, True)
    p.client.esp_peer_moved(c, Address("198.51.100.2", 4501), 20.0)
    assert p.events(p.client) == [] and p.client.ike_sa_info(c_ike).peer == Address("198.51.100.2", 4500)
    p.gateway.esp_peer_moved(g, Address("203.0.113.5", 50000), 20.0)
    assert [_fields(x, "old", "new") for x in p.events(p.gateway)] == [
        ("PeerAddressChanged", Address("203.0.113.5", 44500), Address("203.0.113.5", 50000))]
