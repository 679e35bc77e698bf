"""ikesim.udp.UdpDriver over real loopback sockets (no strongSwan, no root needed)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import pytest

from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy
from ikesim.ike.daemon import IkeDaemon
from ikesim.rng import Rng
from ikesim.types import Address, Datagram
from ikesim.udp import NON_ESP_MARKER, UdpDriver

CLIENT = Address("127.0.0.3", 21500)
GATEWAY = Address("127.0.0.4", 21500)
NATT = Address("127.0.0.3", 24500)
PEER = Address("127.0.0.5", 4500)
PSK = b"udp-driver-test-psk-0123456789"


@dataclass
class FakeDaemon:
    """Records what the driver hands it; sends what the test queues; one programmable deadline."""

    outbox: list[Datagram] = field(default_factory=list)
    inbox: list[tuple[bytes, Address, Address, float]] = field(default_factory=list)
    deadline: float | None = None
    fired: list[float] = field(default_factory=list)
    events: list[ev.IkeEvent] = field(default_factory=list)

    def receive_datagram(self, data: bytes, src: Address, dst: Address, now: float) -> None:
        self.inbox.append((data, src, dst, now))

    def datagrams_to_send(self, now: float) -> list[Datagram]:
        out, self.outbox = self.outbox, []
        return out

    def get_timer(self) -> float | None:
        return self.deadline

    def handle_timer(self, now: float) -> None:
        self.fired.append(now)
        self.deadline = None
        self.events.append(ev.DeadPeerDetected(spi_i=b"\x01" * 8, spi_r=b"\x02" * 8, connection="fake"))

    def next_event(self) -> ev.IkeEvent | None:
        return self.events.pop(0) if self.events else None


def udp_socket(addr: Address) -> socket.socket:
    """A plain UDP socket bound to *addr* with a short timeout."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr.ip, addr.port))
    s.settimeout(2.0)
    return s


def test_natt_flow_strips_marker_and_ignores_esp() -> None:
    """NAT-T flow (our NAT-T socket, or a peer's port 4500): the non-ESP marker is stripped (RFC 3948 §2.2),
    marker-less datagrams there are ESP and not handed over; other flows pass unchanged."""
    fake = FakeDaemon()
    other = Address("127.0.0.5", 21600)
    with UdpDriver(fake, CLIENT, natt=NATT) as drv, udp_socket(PEER) as peer, udp_socket(other) as plain:
        peer.sendto(NON_ESP_MARKER + b"ike-on-natt", (NATT.ip, NATT.port))
        peer.sendto(b"\x00\x00\x10\x01esp-packet", (NATT.ip, NATT.port))
        peer.sendto(NON_ESP_MARKER + b"ike-from-4500", (CLIENT.ip, CLIENT.port))
        plain.sendto(b"\x00\x00\x00\x00plain-ike", (CLIENT.ip, CLIENT.port))
        while len(fake.inbox) < 3 and drv.now() < 2.0:
            drv.step(0.05)
        drv.step(0.05)
    assert sorted((d, s, t) for d, s, t, _ in fake.inbox) == sorted([  # two sockets: arrival order may differ
        (b"ike-on-natt", PEER, NATT), (b"ike-from-4500", PEER, CLIENT), (b"\x00\x00\x00\x00plain-ike", other, CLIENT)])
    assert drv.esp_ignored == 1
    assert all(0.0 <= now <= drv.now() for *_, now in fake.inbox)


def test_outgoing_marker_only_on_natt_flow() -> None:
    """Datagrams from the NAT-T address or to a peer's port 4500 get the marker; others go out unchanged."""
    fake = FakeDaemon()
    other = Address("127.0.0.5", 21600)
    with UdpDriver(fake, CLIENT, natt=NATT) as drv, udp_socket(PEER) as natt_peer, udp_socket(other) as plain_peer:
        fake.outbox = [Datagram(b"A", NATT, PEER), Datagram(b"B", CLIENT, other), Datagram(b"C", CLIENT, PEER)]
        drv.flush()
        got_a, src_a = natt_peer.recvfrom(100)
        got_c, src_c = natt_peer.recvfrom(100)
        got_b, src_b = plain_peer.recvfrom(100)
    assert (got_a, src_a) == (NON_ESP_MARKER + b"A", (NATT.ip, NATT.port))
    assert (got_c, src_c) == (NON_ESP_MARKER + b"C", (CLIENT.ip, CLIENT.port))
    assert (got_b, src_b) == (b"B", (CLIENT.ip, CLIENT.port))
    assert [d.data for d in drv.sent] == [b"A", b"B", b"C"]


def test_timer_fires_at_deadline_and_run_until_returns_event() -> None:
    """handle_timer runs once the wall clock passes get_timer(); its event ends run_until."""
    fake = FakeDaemon(deadline=0.15)
    with UdpDriver(fake, CLIENT) as drv:
        e = drv.run_until(lambda e: isinstance(e, ev.DeadPeerDetected), timeout=2.0)
        elapsed = drv.now()
    assert isinstance(e, ev.DeadPeerDetected)
    assert len(fake.fired) == 1 and 0.15 <= fake.fired[0] <= elapsed
    assert elapsed >= 0.15


def test_run_until_times_out() -> None:
    """run_until raises TimeoutError when no event matches within the timeout."""
    with UdpDriver(FakeDaemon(), CLIENT) as drv, pytest.raises(TimeoutError):
        drv.run_until(lambda e: True, timeout=0.1)
    assert drv.now() >= 0.1


def _daemon(name: str, addr: Address, peer: Address | None, local_id: str, remote_id: str) -> IkeDaemon:
    conn = Connection(name="vpn", local_id=local_id, remote_id=remote_id, remote_addr=peer,
                      credentials=Credentials(psk=PSK), ike=IkePolicy(proposals=("aes256gcm16-prfsha256-x25519",)),
                      children=(ChildPolicy(proposals=("aes256gcm16",)),))
    return IkeDaemon(DaemonConfig(name=name, addresses=(addr,), connections=(conn,)), rng=Rng(5, name))


def test_two_ikesim_daemons_over_real_udp() -> None:
    """The sans-IO core establishes and rekeys an IKE_SA + CHILD_SA between two drivers over loopback UDP."""
    client = _daemon("client", CLIENT, GATEWAY, "c@sim.test", "g@sim.test")
    gateway = _daemon("gateway", GATEWAY, None, "g@sim.test", "c@sim.test")
    with UdpDriver(client, CLIENT) as dc, UdpDriver(gateway, GATEWAY) as dg:
        def until(pred: object, timeout: float = 3.0) -> ev.IkeEvent:
            end = dc.now() + timeout
            while dc.now() < end:
                dg.step(0.01)
                try:
                    return dc.run_until(pred, 0.01)  # type: ignore[arg-type]
                except TimeoutError:
                    continue
            raise TimeoutError

        client.initiate("vpn", dc.now())
        c_inst = until(lambda e: isinstance(e, ev.ChildSaInstalled))
        dg.step(0.01)
        g_inst = next(e for e in dg.events if isinstance(e, ev.ChildSaInstalled))
        assert isinstance(c_inst, ev.ChildSaInstalled)
        assert (c_inst.spi_in, c_inst.spi_out) == (g_inst.spi_out, g_inst.spi_in)
        assert c_inst.encr_key_out == g_inst.encr_key_in
        client.rekey_child_sa(c_inst.spi_in, dc.now())
        until(lambda e: isinstance(e, ev.ExchangeCompleted) and e.purpose == "delete_child")
        dg.run_for(0.05)
        (c_new,) = client.child_sa_spis()
        (g_new,) = gateway.child_sa_spis()
        assert c_new != c_inst.spi_in and g_new != g_inst.spi_in
        c_view = client.ike_sa_info(client.ike_sa_spis()[0])
        assert c_view.local == CLIENT and c_view.peer == GATEWAY
    assert all(d.src == CLIENT and d.dst == GATEWAY for d in dc.sent)
    assert all(d.src == GATEWAY and d.dst == CLIENT for d in dg.sent)


def test_a_flood_cannot_hold_back_a_due_timer() -> None:
    """100 datagrams already queued and the deadline due: one step reads only max_per_step (64) of them, then
    fires the timer; the next steps read the rest (before: the whole queue was drained first)."""
    fake = FakeDaemon(deadline=0.0)
    flooder = Address("127.0.0.5", 21700)
    with UdpDriver(fake, CLIENT) as drv, udp_socket(flooder) as sender:
        for i in range(100):
            sender.sendto(b"flood-%d" % i, (CLIENT.ip, CLIENT.port))
        drv.step(0.0)
        assert (len(fake.inbox), len(fake.fired)) == (64, 1)
        assert fake.inbox[0][0] == b"flood-0" and fake.inbox[-1][0] == b"flood-63"
        while len(fake.inbox) < 100 and drv.now() < 2.0:
            drv.step(0.05)
    assert [d for d, *_ in fake.inbox] == [b"flood-%d" % i for i in range(100)]


def test_history_is_a_bounded_ring_with_counted_drops() -> None:
    """history=50: sent, received and events keep the last 50 each and count what they forgot; run_until and
    take_events still see every event that is kept."""
    fake = FakeDaemon()
    other = Address("127.0.0.5", 21800)
    with UdpDriver(fake, CLIENT, history=50, max_per_step=1000) as drv, udp_socket(other) as peer:
        fake.outbox = [Datagram(b"out-%d" % i, CLIENT, other) for i in range(80)]
        fake.events = [ev.DeadPeerDetected(spi_i=bytes([i]) * 8, spi_r=b"\x02" * 8, connection="fake")
                       for i in range(80)]
        drv.flush()
        for i in range(80):
            peer.sendto(b"in-%d" % i, (CLIENT.ip, CLIENT.port))
        while len(fake.inbox) < 80 and drv.now() < 2.0:
            drv.step(0.05)
        assert (len(drv.sent), drv.sent_dropped) == (50, 30) and drv.sent[0].data == b"out-30"
        assert (len(drv.received), drv.received_dropped) == (50, 30) and drv.received[0].data == b"in-30"
        assert (len(drv.events), drv.events_dropped) == (50, 30)
        first = drv.run_until(lambda e: True, timeout=1.0)
        assert first.spi_i == bytes([30]) * 8  # the 30 forgotten ones are skipped
        assert [e.spi_i[0] for e in drv.take_events()] == list(range(31, 80))
        assert drv.take_events() == []
