"""ESP between ikesim and a real strongSwan charon, both ways, across a CHILD_SA rekey by each side (RFC 4303).

charon runs kernel-libipsec (userspace ESP behind a TUN device), which fakes a NAT to force UDP encapsulation:
ESP travels in UDP without the non-ESP marker (RFC 3948 §2.1), from ikesim's 127.0.0.2:1500 to charon's NAT-T
socket 127.0.0.1:4500 and back. ``ikesim.udp.UdpDriver`` hands ESP to ``on_esp`` and sends it with ``send_esp``.

The CHILD_SA joins 198.18.1.0/24 (charon's side) and 198.18.2.0/24 (ikesim's), benchmarking addresses (RFC
2544) that nothing else routes. kernel-libipsec installs a CHILD_SA only if a local address lies in its local
traffic selector (it routes the remote one into its TUN device), so the test puts 198.18.1.1/32 on that device;
charon then routes 198.18.2.0/24 into it (table 220). The device, its address and the route go with charon.

- ikesim -> charon: ikesim's ESP data plane, ``ikesim.sim.dataplane.NodeDataPlane`` (the simulator's own code,
  following the daemon's CHILD_SA events), protects inner UDP packets 198.18.2.1 -> 198.18.1.1:47001. charon
  authenticates and decrypts them, checks its inbound policy and writes them into the TUN device, where the
  kernel delivers them to a UDP socket bound to 198.18.1.1:47001. charon's SA counts them (``packets-in``, and
  ``bytes-in``: inner bytes).
- charon -> ikesim: a UDP socket bound to 198.18.1.1 sends to 198.18.2.1:47002; the kernel routes the packets
  into the TUN device, charon encrypts them with its outbound SA and sends ESP to ikesim, whose SAD (an
  ``InboundEspSa`` per SPI) authenticates and decrypts them.

Each step checks exact SPIs, sequence numbers, inner packets and charon's counters: after the IKE_AUTH, after
ikesim rekeys the CHILD_SA (RFC 7296 §1.3.3, then deletes the old one, §2.8), and after charon rekeys it
(``swanctl --rekey``; ikesim switches its outbound SA when charon's Delete arrives).
"""

from __future__ import annotations

import re
import shutil
import socket
import struct
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from charon_harness import BIND, CHARON, PSK, STEP, Charon, ChildView, assert_log_clean, charon_ike, installed
from test_strongswan import completed, run_step
from test_strongswan_reverse import Swanctl

from ikesim.esp import InboundEspSa, inner_ipv4, parse_inner
from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy
from ikesim.ike.daemon import IkeDaemon
from ikesim.metrics.traffic_log import TrafficLog
from ikesim.rng import Rng
from ikesim.sim.dataplane import NodeDataPlane
from ikesim.types import Address, Datagram
from ikesim.udp import NAT_KEEPALIVE, NON_ESP_MARKER, UdpDriver

CHARON_NET, IKESIM_NET = "198.18.1.0/24", "198.18.2.0/24"
CHARON_HOST, IKESIM_HOST = "198.18.1.1", "198.18.2.1"
TO_CHARON_PORT, TO_IKESIM_PORT = 47001, 47002
POLICY = ("esp", "esp")
"""ikesim's outbound slot: (connection, child)."""
PACKETS = 3
"""Packets each way per step."""
CHARON_NAT_T = Address(CHARON.ip, 4500)
ESP_CONF = f"""
connections {{
    sim-esp {{
        version = 2
        local_addrs = {CHARON.ip}
        remote_addrs = {BIND.ip}
        remote_port = {BIND.port}
        proposals = aes256gcm16-prfsha256-x25519
        mobike = no
        rekey_time = 0
        reauth_time = 0
        dpd_delay = 0
        local {{
            auth = psk
            id = esp-resp@sim.test
        }}
        remote {{
            auth = psk
            id = esp-init@sim.test
        }}
        children {{
            esp {{
                esp_proposals = aes256gcm16, aes256-sha256
                local_ts = {CHARON_NET}
                remote_ts = {IKESIM_NET}
                rekey_time = 0
                life_time = 0
                start_action = none
            }}
        }}
    }}
}}
secrets {{
    ike-esp {{
        id-1 = esp-resp@sim.test
        id-2 = esp-init@sim.test
        secret = "{PSK}"
    }}
}}
"""
"""charon's only connection in this module: ikesim initiates; the child's selectors are the two /24s."""


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS`` (iproute2), bounded."""
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)


@pytest.fixture(scope="module")
def esp_charon(charon: Charon) -> Iterator[tuple[Charon, str]]:
    """The module's charon with ``sim-esp`` loaded and 198.18.1.1 on its kernel-libipsec TUN device (its name)."""
    if not charon.libipsec:
        pytest.skip("needs kernel-libipsec (userspace ESP in UDP); the kernel XFRM backend sends raw ESP")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2 (ip) to put an address on charon's TUN device")
    tun = re.search(r"created TUN device: (\S+)", charon.log())
    assert tun is not None, charon.log()[-2000:]
    conf = charon.swanctl_dir / "esp.conf"
    conf.write_text(ESP_CONF)
    charon.swanctl("--load-all", "--file", str(conf))
    added = _ip("-4", "addr", "replace", f"{CHARON_HOST}/32", "dev", tun.group(1))
    assert added.returncode == 0, added.stderr
    try:
        yield charon, tun.group(1)
    finally:
        _ip("-4", "addr", "del", f"{CHARON_HOST}/32", "dev", tun.group(1))


def esp_daemon(seed: int, esp: str) -> IkeDaemon:
    """ikesim on 127.0.0.2:1500 with the child ``esp`` (*esp*) for 198.18.2.0/24 <-> 198.18.1.0/24."""
    child = ChildPolicy(name="esp", proposals=(esp,), local_ts=(IKESIM_NET,), remote_ts=(CHARON_NET,),
                        delete_rekeyed_delay=0.2)
    conn = Connection(name="esp", local_id="esp-init@sim.test", remote_id="esp-resp@sim.test", remote_addr=CHARON,
                      credentials=Credentials(psk=PSK.encode()),
                      ike=IkePolicy(proposals=("aes256gcm16-prfsha256-x25519",)), children=(child,))
    return IkeDaemon(DaemonConfig(name="ikesim", addresses=(BIND,), connections=(conn,)), rng=Rng(seed, "esp"))


def inner_udp(src: str, dst: str, sport: int, dport: int, payload: bytes, ident: int) -> bytes:
    """RFC 791 + RFC 768: an IPv4 header from ``ikesim.esp.inner_ipv4``, a UDP header (checksum 0) and *payload*."""
    header = inner_ipv4(src, dst, 28 + len(payload), ident=ident)[:20]
    return header + struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


@dataclass
class Received:
    """One ESP packet charon sent to ikesim, as ikesim's SAD processed it."""

    src: Address
    dst: Address
    spi: bytes
    seq: int
    inner: bytes | None
    """The decrypted inner packet, or None if dropped."""
    drop: str = ""
    sa: InboundEspSa | None = None


@dataclass
class Tunnel:
    """ikesim's ESP plane over the driver, and the kernel sockets at charon's end of the tunnel."""

    plane: NodeDataPlane
    tun: str
    """charon's TUN device."""
    rx: socket.socket
    """Bound to 198.18.1.1:47001: what charon decrypted and the kernel delivered."""
    tx: socket.socket
    """Bound to 198.18.1.1: what charon is to encrypt and send to ikesim."""
    received: list[Received] = field(default_factory=list)
    drv: UdpDriver | None = None

    def on_esp(self, d: Datagram) -> None:
        """An ESP packet from charon: RFC 4303 §3.4 in ikesim's SAD (the SPI picks the InboundEspSa)."""
        spi, seq = d.data[:4], int.from_bytes(d.data[4:8], "big")
        out = self.plane.esp.unprotect(d.data, d.src, d.dst)
        if isinstance(out, str):
            self.received.append(Received(d.src, d.dst, spi, seq, None, out))
        else:
            self.received.append(Received(d.src, d.dst, spi, seq, out[0], sa=out[1]))

    def wait(self, done: Callable[[], bool], what: str) -> None:
        """Drive ikesim (IKE and ESP) until *done*, at most ``STEP`` seconds."""
        assert self.drv is not None
        deadline = self.drv.now() + STEP
        while not done():
            if self.drv.now() > deadline:
                raise TimeoutError(f"{what}: not within {STEP} s")
            self.drv.step(0.02)


@pytest.fixture
def tunnel_sockets(esp_charon: tuple[Charon, str]) -> Iterator[tuple[socket.socket, socket.socket]]:
    """The two UDP sockets at charon's end of the tunnel (closed afterwards)."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.bind((CHARON_HOST, TO_CHARON_PORT))
        rx.setblocking(False)
        tx.bind((CHARON_HOST, 0))
        yield rx, tx
    finally:
        rx.close()
        tx.close()


def child_counters(charon: Charon, est: ev.IkeSaEstablished, spi_out: bytes) -> ChildView:
    """charon's INSTALLED CHILD_SA whose inbound SPI is ikesim's outbound *spi_out*."""
    child = installed(charon_ike(charon, est.spi_i, est.spi_r)).get(spi_out)
    assert child is not None, charon.list_sas_text()
    return child


def exchange(t: Tunnel, charon: Charon, est: ev.IkeSaEstablished, spi_out: bytes, spi_in: bytes, tag: str) -> None:
    """PACKETS each way on the CHILD_SA (ikesim's *spi_out* / *spi_in*, fresh: sequence numbers from 1); exact."""
    # ikesim -> charon: ikesim's outbound SA, charon decrypts, the kernel delivers
    sizes = []
    for k in range(1, PACKETS + 1):
        payload = f"{tag}: ikesim to charon #{k}".encode()
        d = t.plane.esp.protect(POLICY, inner_udp(IKESIM_HOST, CHARON_HOST, 40000 + k, TO_CHARON_PORT, payload, k))
        assert isinstance(d, Datagram), d
        assert (d.data[:4], int.from_bytes(d.data[4:8], "big")) == (spi_out, k)  # RFC 4303 §2.1, §2.2
        assert t.drv is not None
        t.drv.send_esp(d)
        sizes.append(28 + len(payload))
    delivered: list[tuple[bytes, tuple[str, int]]] = []

    def drain() -> bool:
        while True:
            try:
                delivered.append(t.rx.recvfrom(2048))
            except BlockingIOError:
                return len(delivered) >= PACKETS

    t.wait(drain, f"{tag}: the kernel behind charon receives ikesim's packets")
    assert sorted(delivered) == sorted((f"{tag}: ikesim to charon #{k}".encode(), (IKESIM_HOST, 40000 + k))
                                       for k in range(1, PACKETS + 1))
    child = child_counters(charon, est, spi_out)
    assert (child.spi_in, child.spi_out) == (spi_out, spi_in)
    assert (child.raw["packets-in"], child.raw["bytes-in"]) == (str(PACKETS), str(sum(sizes)))

    # charon -> ikesim: the kernel routes into the TUN device, charon encrypts, ikesim's InboundEspSa decrypts
    route = _ip("-4", "route", "get", IKESIM_HOST, "from", CHARON_HOST)
    assert f" dev {t.tun} " in route.stdout, route.stdout + route.stderr  # charon's route, or nothing leaves
    mark = len(t.received)
    payloads = [f"{tag}: charon to ikesim #{k}".encode() for k in range(1, PACKETS + 1)]
    for p in payloads:
        t.tx.sendto(p, (IKESIM_HOST, TO_IKESIM_PORT))
    t.wait(lambda: len(t.received) >= mark + PACKETS, f"{tag}: ikesim receives charon's ESP")
    got = t.received[mark:]
    assert [(r.spi, r.seq, r.drop) for r in got] == [(spi_in, k, "") for k in range(1, PACKETS + 1)]
    assert {(r.src, r.dst) for r in got} == {(CHARON_NAT_T, BIND)}  # ESP in UDP, 4500 -> ikesim's IKE port
    sport = t.tx.getsockname()[1]
    for r, p in zip(got, payloads, strict=True):
        assert r.inner is not None and r.sa is not None and r.sa.spi == spi_in
        assert parse_inner(r.inner) == (CHARON_HOST, IKESIM_HOST, 28 + len(p))
        assert r.inner[9] == 17  # UDP
        assert struct.unpack("!HHH", r.inner[20:26]) == (sport, TO_IKESIM_PORT, 8 + len(p))
        assert r.inner[28:] == p
    assert (got[-1].sa.packets, got[-1].sa.bytes) == (PACKETS, sum(28 + len(p) for p in payloads))  # type: ignore[union-attr]
    child = child_counters(charon, est, spi_out)
    assert (child.raw["packets-out"], child.raw["bytes-out"]) == (str(PACKETS), str(sum(28 + len(p) for p in payloads)))


ESPS = ["aes256gcm16", "aes256-sha256"]


@pytest.mark.interop
@pytest.mark.parametrize("esp", ESPS)
def test_esp_both_ways_across_a_child_rekey_by_each_side(esp_charon: tuple[Charon, str], esp: str,
                                                        tunnel_sockets: tuple[socket.socket, socket.socket]) -> None:
    """charon accepts ikesim's ESP and ikesim decrypts charon's, on the first CHILD_SA, on the one ikesim's rekey
    made and on the one charon's rekey made; the old SPIs are gone from charon after each rekey."""
    charon, tun = esp_charon
    charon.mark_log()
    daemon = esp_daemon(ESPS.index(esp) + 41, esp)
    plane = NodeDataPlane(daemon, Rng(ESPS.index(esp) + 41, "esp-plane"), replay_window=32, log=TrafficLog(),
                          node="ikesim")
    t = Tunnel(plane, tun, *tunnel_sockets)
    with UdpDriver(daemon, BIND, on_event=plane.on_event, on_esp=t.on_esp) as drv:
        t.drv = drv
        # 1. IKE_SA_INIT + IKE_AUTH: the first CHILD_SA, UDP-encapsulated (charon fakes a NAT)
        daemon.initiate("esp", drv.now())
        first = drv.run_until(lambda e: isinstance(e, ev.ChildSaInstalled | ev.IkeSaDeleted), STEP)
        assert isinstance(first, ev.ChildSaInstalled), charon.log_since_mark()[-3000:]
        est = next(e for e in drv.events if isinstance(e, ev.IkeSaEstablished))
        assert (first.local_ts, first.remote_ts, first.encr) == (IKESIM_NET, CHARON_NET, esp.split("-")[0])
        assert (first.local, first.peer) == (Address(BIND.ip, 4500), CHARON_NAT_T)
        view = charon_ike(charon, est.spi_i, est.spi_r)
        assert view.raw["nat-fake"] == "yes" and set(installed(view)) == {first.spi_out}
        assert installed(view)[first.spi_out].raw["encap"] == "yes"
        exchange(t, charon, est, first.spi_out, first.spi_in, "first")

        # 2. ikesim rekeys the CHILD_SA and deletes the old one (RFC 7296 §1.3.3, §2.8)
        evs = run_step(drv, lambda: daemon.rekey_child_sa(first.spi_in, drv.now()), completed("delete_child"))
        second = next(e for e in evs if isinstance(e, ev.ChildSaInstalled))
        assert (second.rekey_of, second.initiator, second.outbound) == (first.spi_in, True, True)
        assert set(installed(charon_ike(charon, est.spi_i, est.spi_r))) == {second.spi_out}
        exchange(t, charon, est, second.spi_out, second.spi_in, "ikesim rekeyed")

        # 3. charon rekeys it: ikesim answers, and sends with the new SA once charon's Delete of the old arrives
        rekey = Swanctl(charon, "--rekey", "--child", "esp")
        third = drv.run_until(lambda e: isinstance(e, ev.ChildSaInstalled), STEP)
        rekey.finish(drv)
        assert isinstance(third, ev.ChildSaInstalled)
        assert (third.rekey_of, third.initiator, third.outbound) == (second.spi_in, False, False)
        drv.run_until(lambda e: isinstance(e, ev.ChildSaOutboundInstalled) and e.spi_in == third.spi_in, STEP)
        drv.run_until(lambda e: isinstance(e, ev.ChildSaDeleted) and e.spi_in == second.spi_in, STEP)
        assert daemon.child_sa_spis() == [third.spi_in]
        assert set(installed(charon_ike(charon, est.spi_i, est.spi_r))) == {third.spi_out}
        exchange(t, charon, est, third.spi_out, third.spi_in, "charon rekeyed")

        # every ESP packet ikesim received decrypted; the three CHILD_SAs had distinct SPIs
        assert [r.drop for r in t.received] == [""] * (3 * PACKETS)
        assert len({first.spi_in, second.spi_in, third.spi_in, first.spi_out, second.spi_out, third.spi_out}) == 6
        assert drv.esp_received == 3 * PACKETS and drv.esp_sent == 3 * PACKETS and drv.esp_ignored == 0

        run_step(drv, lambda: daemon.delete_ike_sa(est.spi_i, drv.now()), lambda e: isinstance(e, ev.IkeSaDeleted))
        assert [v for v in charon.list_sas() if v.spi_i == est.spi_i] == []
    assert_log_clean(charon)


# ---------------------------------------------------------------------- the driver's ESP path (no charon)
class _Daemon:
    """A sans-IO daemon stand-in: records datagrams, emits one queued event per flush."""

    def __init__(self) -> None:
        self.inbox: list[tuple[bytes, Address, Address]] = []
        self.queued: list[ev.IkeEvent] = []

    def receive_datagram(self, data: bytes, src: Address, dst: Address, now: float) -> None:
        self.inbox.append((data, src, dst))

    def datagrams_to_send(self, now: float) -> list[Datagram]:
        return []

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        pass

    def next_event(self) -> ev.IkeEvent | None:
        return self.queued.pop(0) if self.queued else None


def test_udp_driver_hands_esp_to_on_esp_and_sends_it_without_a_marker() -> None:
    """RFC 3948 on the NAT-T flow (our NAT-T socket): a marker-less datagram is ESP (to ``on_esp``, with its
    addresses), the keepalive 0xFF is neither (``esp_ignored``), IKE loses its marker and goes to the daemon; off
    that flow nothing is ESP. ``send_esp`` sends the bytes unchanged from the socket of the float's role (port
    4500: the NAT-T socket); ``on_event`` sees each event with ``now``; plain ESP (port 0) is refused."""
    local, natt, peer_at = Address("127.0.0.6", 21500), Address("127.0.0.6", 24500), Address("127.0.0.7", 24600)
    fake, esp, seen = _Daemon(), list[Datagram](), list[tuple[ev.IkeEvent, float]]()
    fake.queued.append(ev.DeadPeerDetected(spi_i=b"\x01" * 8, spi_r=b"\x02" * 8, connection="fake"))
    packet = bytes.fromhex("c0ffee01" "00000001") + b"ciphertext"
    with UdpDriver(fake, local, natt=natt, on_esp=esp.append, on_event=lambda e, now: seen.append((e, now))) as drv, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind((peer_at.ip, peer_at.port))
        peer.settimeout(2.0)
        for data, to in ((packet, natt), (NAT_KEEPALIVE, natt), (NON_ESP_MARKER + b"ike", natt), (packet, local)):
            peer.sendto(data, (to.ip, to.port))
        while (not esp or len(fake.inbox) < 2 or drv.esp_ignored < 1) and drv.now() < 2.0:
            drv.step(0.05)
        drv.send_esp(Datagram(b"\x0b\xad\xf0\x0d-esp", Address("127.0.0.6", 4500), peer_at))  # floated: NAT-T socket
        drv.send_esp(Datagram(b"\x0b\xad\xf0\x0e-esp", local, peer_at))
        got = sorted([peer.recvfrom(100), peer.recvfrom(100)])
        with pytest.raises(ValueError, match="plain ESP"):
            drv.send_esp(Datagram(b"esp", Address(local.ip, 0), Address(peer_at.ip, 0)))
    assert [(d.data, d.src, d.dst) for d in esp] == [(packet, peer_at, natt)]
    assert sorted(fake.inbox) == sorted([(b"ike", peer_at, natt), (packet, peer_at, local)])
    assert (drv.esp_received, drv.esp_ignored, drv.esp_sent) == (1, 1, 2)
    assert got == [(b"\x0b\xad\xf0\x0d-esp", (natt.ip, natt.port)), (b"\x0b\xad\xf0\x0e-esp", (local.ip, local.port))]
    assert [type(e).__name__ for e, _ in seen] == ["DeadPeerDetected"] and 0.0 <= seen[0][1] <= drv.now()
    assert list(drv.sent) == []  # ESP is not IKE: the IKE history does not hold it
