"""MOBIKE (RFC 4555) between ikesim and a real strongSwan charon, both ways, with ESP across the move.

Why a network namespace and not loopback: MOBIKE floats both ends to UDP 4500 (strongSwan ``ike_natd.c``), and
charon binds 0.0.0.0:4500 without SO_REUSEADDR (5.9.8 ``socket_default_socket.c`` ``open_socket``), so on one host
nothing else can own 127.0.0.x:4500 next to it (Linux refuses the bind: EADDRINUSE). charon therefore runs in its
own network namespace (``ip netns exec``; vici is a filesystem socket, so swanctl still reaches it) and a veth pair
joins it to ours, with addresses from TEST-NET-2 (RFC 5737):

| who | where | address |
|---|---|---|
| charon | namespace, ``ikmob1`` | 198.51.100.1 (198.51.100.11 while it roams), UDP 500/4500 |
| ikesim | this process, ``ikmob0`` | 198.51.100.2 (UDP 500, 4500), 198.51.100.3 (UDP 4500) |

IPv6 is off in the namespace, so charon's only non-loopback address is on the veth (its MOBIKE address list,
ADDITIONAL_*_ADDRESS, is empty: NO_ADDITIONAL_ADDRESSES). charon runs kernel-libipsec (the kernel here has no XFRM
ESP): it fakes a NAT so ESP travels in UDP, and its ``update_sa`` is NOT_SUPPORTED, so after every MOBIKE update
charon rekeys each CHILD_SA (strongSwan ``ike_sa.c`` ``update_hosts``) - the tests expect that rekey. The CHILD_SA
joins 198.18.1.0/24 (charon; 198.18.1.1 sits on the namespace's ``lo``, so kernel-libipsec finds a local address in
its traffic selector but MOBIKE does not advertise it) and 198.18.2.0/24 (ikesim), as in test_esp_charon.py.

- ikesim moves (it is the original initiator): 198.51.100.2 -> 198.51.100.3 (``set_local_addresses``): a path test
  from the new address, UPDATE_SA_ADDRESSES with NAT_D and COOKIE2 (RFC 4555 §3.5), charon's CHILD rekey, ikesim's
  CHILD rekey, ESP both ways over the new path. A capture of ``ikmob0`` (an AF_PACKET socket) decodes in tshark
  with ikesim's ikev2_decryption_table: no malformed frame, every ICV correct, the update's notifies shown.
- charon moves (it initiates, ``swanctl --initiate``): 198.51.100.1 goes away in the namespace, charon's
  kernel-netlink sees it and roams to 198.51.100.11 (path test, then UPDATE_SA_ADDRESSES with COOKIE2); ikesim, the
  responder, moves the IKE_SA and its CHILD_SA and echoes the COOKIE2; ESP both ways over the new path.

``ikesim.udp.UdpDriver`` binds every address ikesim may send from (``extra``) and sends each datagram from the
socket of its ``src``; the last test checks that without charon.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import socket
import struct
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from charon_harness import (
    PSK,
    STEP,
    Charon,
    NetnsUnavailable,
    charon_ike,
    find_charon,
    installed,
    ip,
    ip_must,
    libipsec_available,
    veth_netns,
)
from test_esp_charon import PACKETS, Tunnel, child_counters, inner_udp
from test_strongswan import completed, names, run_step
from test_strongswan_reverse import Swanctl

from ikesim.esp import parse_inner
from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy
from ikesim.ike.daemon import IkeDaemon
from ikesim.metrics.export import ikev2_decryption_line, write_secret
from ikesim.metrics.traffic_log import TrafficLog
from ikesim.rng import Rng
from ikesim.sim.dataplane import NodeDataPlane
from ikesim.types import Address, Datagram
from ikesim.udp import UdpDriver
from ikesim.wire.codec import parse_message, unprotect_message
from ikesim.wire.iana import ExchangeType, NotifyType
from ikesim.wire.payloads import NotifyPayload

NETNS = f"ikesim-mobike-{os.getpid()}"
VETH_OURS, VETH_CHARON = "ikmob0", "ikmob1"
CHARON_IP, CHARON_ROAM_IP = "198.51.100.1", "198.51.100.11"
FIRST_IP, SECOND_IP = "198.51.100.2", "198.51.100.3"
CHARON_NET, IKESIM_NET = "198.18.1.0/24", "198.18.2.0/24"
CHARON_HOST, IKESIM_HOST = "198.18.1.1", "198.18.2.1"
TO_CHARON_PORT, TO_IKESIM_PORT = 47001, 47002
CHARON_500, CHARON_4500 = Address(CHARON_IP, 500), Address(CHARON_IP, 4500)
FIRST_500, FIRST_4500, SECOND_4500 = Address(FIRST_IP, 500), Address(FIRST_IP, 4500), Address(SECOND_IP, 4500)
IKE = "aes256gcm16-prfsha256-x25519"
ESP = "aes256gcm16"
CLONE_NEWNET = 0x40000000
"""setns(2) flag: a network namespace (linux/sched.h)."""
ETH_P_ALL = 0x0003
"""Every protocol, for an AF_PACKET socket (linux/if_ether.h)."""
SO_TIMESTAMPNS = 35
"""The kernel's receive time as a timespec in ancillary data (asm-generic/socket.h; SCM_TIMESTAMPNS is the same)."""
MOBIKE_CONF = f"""
connections {{
    # ikesim initiates (and moves); charon answers
    mob {{
        version = 2
        local_addrs = {CHARON_IP}
        remote_addrs = 198.51.100.0/24
        proposals = {IKE}
        mobike = yes
        rekey_time = 0
        reauth_time = 0
        dpd_delay = 0
        local {{
            auth = psk
            id = mob-resp@sim.test
        }}
        remote {{
            auth = psk
            id = mob-init@sim.test
        }}
        children {{
            net {{
                esp_proposals = {ESP}
                local_ts = {CHARON_NET}
                remote_ts = {IKESIM_NET}
                rekey_time = 0
                life_time = 0
                start_action = none
            }}
        }}
    }}
    # charon initiates (and moves); ikesim answers
    mob-rev {{
        version = 2
        remote_addrs = {FIRST_IP}
        proposals = {IKE}
        mobike = yes
        rekey_time = 0
        reauth_time = 0
        dpd_delay = 0
        local {{
            auth = psk
            id = mob-gw@sim.test
        }}
        remote {{
            auth = psk
            id = mob-sim@sim.test
        }}
        children {{
            rev {{
                esp_proposals = {ESP}
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
    ike-mob {{
        id-1 = mob-resp@sim.test
        id-2 = mob-init@sim.test
        secret = "{PSK}"
    }}
    ike-mob-rev {{
        id-1 = mob-gw@sim.test
        id-2 = mob-sim@sim.test
        secret = "{PSK}"
    }}
}}
"""
"""charon's connections in this module: ``mob`` (ikesim initiates) and ``mob-rev`` (charon initiates)."""


# ---------------------------------------------------------------------- the namespace






@contextmanager
def inside_netns() -> Iterator[None]:
    """Sockets opened in the block belong to charon's namespace (setns(2) on this thread, switched back after)."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/thread-self/ns/net", "rb") as home, open(f"/run/netns/{NETNS}", "rb") as there:
        if libc.setns(there.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into charon's namespace")
        try:
            yield
        finally:
            if libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")


def _skip_reason() -> str | None:
    """Why this module cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespace, veth, charon)"
    if find_charon() is None or (shutil.which("swanctl") is None and not os.access("/usr/sbin/swanctl", os.X_OK)):
        return "no charon + swanctl (apt-get install -y charon-systemd strongswan-swanctl libcharon-extra-plugins)"
    if shutil.which("ip") is None:
        return "needs iproute2 (ip)"
    if not libipsec_available():
        return "needs kernel-libipsec and /dev/net/tun (ESP in UDP; the kernel XFRM backend sends raw ESP)"
    return None


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    """charon's namespace, joined to ours by the veth pair ikmob0 (198.51.100.2, .3) - ikmob1 (198.51.100.1)."""
    reason = _skip_reason()
    if reason is not None:
        pytest.skip(reason)
    try:
        with veth_netns(NETNS, VETH_OURS, VETH_CHARON, charon_cidr=f"{CHARON_IP}/24", charon_host=CHARON_HOST,
                        our_cidrs=(f"{FIRST_IP}/24", f"{SECOND_IP}/24"),
                        sysctls=("promote_secondaries=1",)) as ns:  # deleting .1 keeps .11
            yield ns
    except NetnsUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def charon_ns(netns: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Charon]:
    """charon in the namespace (kernel-libipsec) with ``mob`` and ``mob-rev`` loaded; stopped at the end."""
    c = Charon(tmp_path_factory.mktemp("charon-mobike"), netns=netns, libipsec=True)
    c.write_config(charon_ip=CHARON_IP, ikesim_ip=FIRST_IP, ikesim_port=500)
    conf = c.swanctl_dir / "mobike.conf"
    conf.write_text(MOBIKE_CONF)
    try:
        c.start()
        c.swanctl("--load-all", "--file", str(conf))
        assert re.search(r"created TUN device: (\S+)", c.log()), c.log()[-2000:]
        yield c
    finally:
        c.stop()


class Capture:
    """Every frame on ikmob0, both ways, as the kernel carried them (an AF_PACKET socket, as libpcap uses), with the
    kernel's receive timestamps (SO_TIMESTAMPNS); ``write`` makes a pcap of them for tshark."""

    def __init__(self, iface: str) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)  # the whole test fits: never a drop
            self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self.sock.bind((iface, 0))
            self.sock.setblocking(False)
        except OSError:
            self.sock.close()
            raise
        self.frames: list[tuple[int, int, bytes]] = []
        """(seconds, nanoseconds, Ethernet frame), in the order the kernel queued them."""

    def drain(self) -> None:
        """Take every frame queued so far."""
        while True:
            try:
                frame, anc, _flags, _addr = self.sock.recvmsg(65535, 64)
            except BlockingIOError:
                return
            sec = nsec = 0
            for level, kind, data in anc:
                if (level, kind) == (socket.SOL_SOCKET, SO_TIMESTAMPNS) and len(data) >= 16:
                    sec, nsec = struct.unpack("@qq", data[:16])
            self.frames.append((sec, nsec, frame))

    def close(self) -> None:
        """Stop capturing."""
        self.sock.close()

    def write(self, path: Path) -> Path:
        """Drain, stop, and write the frames as a classic libpcap file (LINKTYPE_ETHERNET, microseconds)."""
        self.drain()
        self.close()
        out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for sec, nsec, frame in self.frames:
            out += struct.pack("<IIII", sec, nsec // 1000, len(frame), len(frame)) + frame
        path.write_bytes(bytes(out))
        return path


@pytest.fixture
def capture(netns: str) -> Iterator[Capture | None]:
    """A capture on ikmob0 for the test; None without tshark (apt-get install -y tshark): the test then checks
    everything but the capture."""
    if shutil.which("tshark") is None:
        yield None
        return
    cap = Capture(VETH_OURS)
    try:
        yield cap
    finally:
        cap.close()


# ---------------------------------------------------------------------- ikesim
def _daemon(name: str, local_id: str, remote_id: str, remote: Address | None, addresses: tuple[Address, ...],
            seed: int) -> IkeDaemon:
    """ikesim with MOBIKE for 198.18.2.0/24 <-> 198.18.1.0/24; CHILD_SAs named ``net``."""
    child = ChildPolicy(name="net", proposals=(ESP,), local_ts=(IKESIM_NET,), remote_ts=(CHARON_NET,),
                        delete_rekeyed_delay=0.2)
    conn = Connection(name=name, local_id=local_id, remote_id=remote_id, remote_addr=remote,
                      credentials=Credentials(psk=PSK.encode()), ike=IkePolicy(proposals=(IKE,), mobike=True),
                      children=(child,))
    return IkeDaemon(DaemonConfig(name="ikesim", addresses=addresses, connections=(conn,)), rng=Rng(seed, "mobike"))


@contextmanager
def tunnel(daemon: IkeDaemon, seed: int, charon: Charon) -> Iterator[Tunnel]:
    """ikesim's ESP plane, and the two kernel sockets at charon's end of the tunnel (in its namespace; closed after)."""
    tun = re.search(r"created TUN device: (\S+)", charon.log())
    assert tun is not None, charon.log()[-2000:]
    plane = NodeDataPlane(daemon, Rng(seed, "mobike-plane"), replay_window=32, log=TrafficLog(), node="ikesim")
    with inside_netns():
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.bind((CHARON_HOST, TO_CHARON_PORT))
        rx.setblocking(False)
        tx.bind((CHARON_HOST, 0))
        yield Tunnel(plane, tun.group(1), rx, tx)
    finally:
        rx.close()
        tx.close()


def _notifies(data: bytes, protector: object) -> list[tuple[NotifyType, bytes]]:
    """The notifies inside one encrypted IKE message (RFC 7296 §3.14), in order."""
    msg = parse_message(data)
    inner = unprotect_message(data, protector, outer=msg)  # type: ignore[arg-type]
    return [(n.notify_type, n.data) for n in inner.get_all(NotifyPayload)]


def _informational(ds: list[Datagram], message_id: int, response: bool) -> list[Datagram]:
    """The INFORMATIONAL datagrams with *message_id*, requests or responses (RFC 7296 §3.1 flags)."""
    out = []
    for d in ds:
        msg = parse_message(d.data)
        if msg.exchange_type is ExchangeType.INFORMATIONAL and msg.message_id == message_id \
                and msg.is_response == response:
            out.append(d)
    return out


def _esp_both_ways(t: Tunnel, charon: Charon, est: ev.IkeSaEstablished, child: ev.ChildSaInstalled,
                   here: Address, there: Address, tag: str) -> None:
    """PACKETS each way on *child* (fresh: sequence numbers from 1) between ikesim at *here* and charon at *there*,
    ESP in UDP (charon fakes a NAT, RFC 3948); charon's counters and the inner packets are exact."""
    assert t.drv is not None
    spi_out, spi_in = child.spi_out, child.spi_in
    sizes = []
    for k in range(1, PACKETS + 1):
        payload = f"{tag}: ikesim to charon #{k}".encode()
        d = t.plane.esp.protect((child.connection, child.child),
                                inner_udp(IKESIM_HOST, CHARON_HOST, 40000 + k, TO_CHARON_PORT, payload, k))
        assert isinstance(d, Datagram), d
        assert (d.src, d.dst) == (here, there)  # over the IKE_SA's current path
        assert (d.data[:4], int.from_bytes(d.data[4:8], "big")) == (spi_out, k)
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
    counted = child_counters(charon, est, spi_out)
    assert (counted.spi_in, counted.spi_out) == (spi_out, spi_in)
    assert (counted.raw["packets-in"], counted.raw["bytes-in"]) == (str(PACKETS), str(sum(sizes)))

    route = ip_must("-n", NETNS, "-4", "route", "get", IKESIM_HOST, "from", CHARON_HOST)
    assert f" dev {t.tun} " in route, route  # charon's route into its TUN device (table 220)
    mark = len(t.received)
    payloads = [f"{tag}: charon to ikesim #{k}".encode() for k in range(1, PACKETS + 1)]
    for p in payloads:
        t.tx.sendto(p, (IKESIM_HOST, TO_IKESIM_PORT))
    t.wait(lambda: len(t.received) >= mark + PACKETS, f"{tag}: ikesim receives charon's ESP")
    got = t.received[mark:]
    assert [(r.spi, r.seq, r.drop) for r in got] == [(spi_in, k, "") for k in range(1, PACKETS + 1)]
    assert {(r.src, r.dst) for r in got} == {(there, here)}
    sport = t.tx.getsockname()[1]
    for r, p in zip(got, payloads, strict=True):
        assert r.inner is not None and parse_inner(r.inner) == (CHARON_HOST, IKESIM_HOST, 28 + len(p))
        assert r.inner[20:22] == sport.to_bytes(2, "big") and r.inner[28:] == p
    counted = child_counters(charon, est, spi_out)
    assert (counted.raw["packets-out"], counted.raw["bytes-out"]) == (str(PACKETS),
                                                                      str(sum(28 + len(p) for p in payloads)))


def _drive_until(drv: UdpDriver, mark: int, *done: Callable[[ev.IkeEvent], bool]) -> list[ev.IkeEvent]:
    """Drive ikesim until each of *done* matched an event after the first *mark* (at most ``STEP`` seconds);
    return the events after *mark*."""
    deadline = drv.now() + STEP
    while True:
        evs = list(drv.events)[mark:]
        if all(any(p(e) for e in evs) for p in done):
            drv.take_events()
            return evs
        if drv.now() > deadline:
            raise TimeoutError(f"not within {STEP} s: {[repr(e) for e in evs]}")
        drv.step(0.02)


def _tshark(pcap: Path, table: str, *args: str) -> str:
    """tshark on *pcap* with *table* as its ikev2_decryption_table; stdout (asserting no error)."""
    conf = pcap.parent / "ws"
    conf.mkdir(exist_ok=True)
    write_secret(conf / "ikev2_decryption_table", table + "\n")  # a UAT line ends with a newline
    env = {"WIRESHARK_CONFIG_DIR": str(conf), "HOME": str(conf), "PATH": "/usr/bin:/bin"}
    res = subprocess.run(["tshark", "-r", str(pcap), *args], capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    errors = [line for line in res.stderr.splitlines() if "Running as user" not in line]
    assert res.returncode == 0 and errors == [], res.stderr
    return res.stdout


# ---------------------------------------------------------------------- tests
@pytest.mark.interop
def test_ikesim_moves_charon_updates_then_rekey_and_esp(charon_ns: Charon, capture: Capture | None,
                                                        tmp_path: Path) -> None:
    """ikesim negotiates MOBIKE, moves 198.51.100.2 -> .3 (path test, UPDATE_SA_ADDRESSES with COOKIE2); charon
    follows and rekeys its CHILD_SA; ikesim rekeys it again; ESP flows both ways over the new path."""
    charon = charon_ns
    start = len(charon.log())
    charon.mark_log()
    daemon = _daemon("mob", "mob-init@sim.test", "mob-resp@sim.test", CHARON_500,
                     (FIRST_500, Address(SECOND_IP, 500)), 61)
    with tunnel(daemon, 61, charon) as t, UdpDriver(daemon, FIRST_500, natt=FIRST_4500, extra=(SECOND_4500,),
                                            on_event=t.plane.on_event, on_esp=t.on_esp) as drv:
        t.drv = drv
        # 1. IKE_SA_INIT on 500, IKE_AUTH on 4500 with N(MOBIKE_SUPPORTED) both ways (RFC 4555 §3.1, §3.4)
        evs = run_step(drv, lambda: daemon.initiate("mob", drv.now()),
                       lambda e: isinstance(e, ev.ChildSaInstalled | ev.IkeSaDeleted))
        assert names(evs) == ["ExchangeStarted(ike_sa_init)", "IkeSaKeysDerived", "ExchangeCompleted(ike_sa_init)",
                              "NatDetected", "NatTraversalStarted", "ExchangeStarted(ike_auth)",
                              "ExchangeCompleted(ike_auth)", "IkeSaEstablished", "MobikeNegotiated",
                              "ChildSaInstalled"], charon.log_since_mark()[-3000:]
        est = next(e for e in evs if isinstance(e, ev.IkeSaEstablished))
        first = next(e for e in evs if isinstance(e, ev.ChildSaInstalled))
        nat = next(e for e in evs if isinstance(e, ev.NatDetected))
        assert (nat.local_behind_nat, nat.peer_behind_nat) == (False, True)  # charon fakes a NAT (libipsec)
        mob = next(e for e in evs if isinstance(e, ev.MobikeNegotiated))
        assert mob.peer_addresses == ""  # charon: NO_ADDITIONAL_ADDRESSES
        assert (est.local, est.peer) == (FIRST_4500, CHARON_4500)
        assert [(d.src, d.dst) for d in drv.sent] == [(FIRST_500, CHARON_500), (FIRST_4500, CHARON_4500)]
        assert [(d.src, d.dst) for d in drv.received] == [(CHARON_500, FIRST_500), (CHARON_4500, FIRST_4500)]
        log = charon.log_since_mark()
        assert re.search(r"parsed IKE_AUTH request 1 \[ IDi IDr AUTH SA TSi TSr N\(MOBIKE_SUP\) N\(ADD_4_ADDR\) \]",
                         log), log[-3000:]
        assert re.search(r"generating IKE_AUTH response 1 \[ IDr AUTH SA TSi TSr N\(MOBIKE_SUP\) N\(NO_ADD_ADDR\) \]",
                         log)
        assert "peer supports MOBIKE" in log and f"got additional MOBIKE peer address: {SECOND_IP}" in log
        view = charon_ike(charon, est.spi_i, est.spi_r)
        assert (view.raw["local-host"], view.raw["local-port"]) == (CHARON_IP, "4500")
        assert (view.raw["remote-host"], view.raw["remote-port"]) == (FIRST_IP, "4500")
        assert view.raw["nat-fake"] == "yes" and set(installed(view)) == {first.spi_out}
        _esp_both_ways(t, charon, est, first, FIRST_4500, CHARON_4500, "before the move")

        # 2. 198.51.100.2 goes away: path test from .3 (mid 2), then UPDATE_SA_ADDRESSES + NAT_D + COOKIE2 (mid 3);
        #    charon moves the IKE_SA and, as kernel-libipsec cannot update an SA, rekeys the CHILD_SA
        charon.mark_log()
        sent, received = len(drv.sent), len(drv.received)
        mark = len(drv.events)
        daemon.set_local_addresses([SECOND_IP], drv.now())
        evs = _drive_until(drv, mark, lambda e: isinstance(e, ev.ExchangeCompleted) and e.message_id == 3,
                           lambda e: isinstance(e, ev.ChildSaDeleted) and e.spi_in == first.spi_in)
        mine = [e for e in evs if not isinstance(e, ev.ChildSaInstalled | ev.RekeyCompleted
                                                 | ev.ChildSaOutboundInstalled | ev.ChildSaDeleted)]
        assert names(mine) == ["IkeSaRoaming", "ExchangeStarted(mobike)", "ExchangeCompleted(mobike)", "IkeSaMoved",
                               "ExchangeStarted(mobike)", "ExchangeCompleted(mobike)"], [repr(e) for e in evs]
        roam, probe, probed, moved, update, updated = mine
        assert isinstance(roam, ev.IkeSaRoaming) and (roam.action, roam.local, roam.addresses) == (
            "mobike", FIRST_4500, SECOND_IP)
        assert isinstance(probe, ev.ExchangeStarted) and (probe.exchange, probe.message_id) == ("INFORMATIONAL", 2)
        assert isinstance(probed, ev.ExchangeCompleted) and (probed.message_id, probed.outcome) == (2, "ok")
        assert isinstance(moved, ev.IkeSaMoved) and (moved.method, moved.old_local, moved.local, moved.peer) == (
            "mobike_probe", FIRST_4500, SECOND_4500, CHARON_4500)
        assert isinstance(update, ev.ExchangeStarted) and update.message_id == 3
        assert isinstance(updated, ev.ExchangeCompleted) and (updated.message_id, updated.outcome,
                                                              updated.retransmissions) == (3, "ok", 0)
        # charon's rekey of the CHILD_SA (ikesim answers), then its Delete of the old one
        second = next(e for e in evs if isinstance(e, ev.ChildSaInstalled))
        assert (second.initiator, second.rekey_of, second.local, second.peer) == (
            False, first.spi_in, SECOND_4500, CHARON_4500)
        assert daemon.child_sa_spis() == [second.spi_in]
        info = daemon.ike_sa_info(est.spi_i)
        assert (info.local, info.peer, info.nat_local, info.nat_peer) == (SECOND_4500, CHARON_4500, False, True)
        # every datagram of the move left from and arrived at .3:4500; the probe went to charon's one address
        assert {(d.src, d.dst) for d in list(drv.sent)[sent:]} == {(SECOND_4500, CHARON_4500)}
        assert {(d.src, d.dst) for d in list(drv.received)[received:]} == {(CHARON_4500, SECOND_4500)}
        # the update carries UPDATE_SA_ADDRESSES, COOKIE2 and NAT_D; charon's answer echoes the COOKIE2 (§3.5)
        sa = daemon.sas[est.spi_i]
        (req,) = _informational(list(drv.sent)[sent:], 3, response=False)
        (resp,) = _informational(list(drv.received)[received:], 3, response=True)
        request, answer = _notifies(req.data, sa.protect_out), _notifies(resp.data, sa.protect_in)
        assert [n for n, _ in request] == [NotifyType.UPDATE_SA_ADDRESSES, NotifyType.COOKIE2,
                                           NotifyType.NAT_DETECTION_SOURCE_IP, NotifyType.NAT_DETECTION_DESTINATION_IP]
        assert [n for n, _ in answer] == [NotifyType.NAT_DETECTION_SOURCE_IP, NotifyType.NAT_DETECTION_DESTINATION_IP,
                                          NotifyType.COOKIE2]
        cookie2 = request[1][1]
        assert len(cookie2) == 16 and answer[2][1] == cookie2
        (probe_req,) = _informational(list(drv.sent)[sent:], 2, response=False)
        assert _notifies(probe_req.data, sa.protect_out) == []  # the path test is an empty INFORMATIONAL
        log = charon.log_since_mark()
        for line in (r"parsed INFORMATIONAL request 2 \[ \]", r"generating INFORMATIONAL response 2 \[ \]",
                     r"parsed INFORMATIONAL request 3 \[ N\(UPD_SA_ADDR\) N\(COOKIE2\) N\(NATD_S_IP\) N\(NATD_D_IP\) \]",
                     rf"remote endpoint changed from {FIRST_IP}\[4500\] to {SECOND_IP}\[4500\]",
                     r"generating INFORMATIONAL response 3 \[ N\(NATD_S_IP\) N\(NATD_D_IP\) N\(COOKIE2\) \]",
                     r"queueing CHILD_REKEY task",
                     rf"SPI 0x{second.spi_out.hex()}, src {SECOND_IP} dst {CHARON_IP}",  # charon's inbound SA
                     rf"SPI 0x{second.spi_in.hex()}, src {CHARON_IP} dst {SECOND_IP}"):  # and its outbound one
            assert re.search(line, log), (line, log[-4000:])
        assert "COOKIE2 mismatch" not in log
        view = charon_ike(charon, est.spi_i, est.spi_r)
        assert (view.raw["remote-host"], view.raw["remote-port"]) == (SECOND_IP, "4500")
        assert (view.raw["local-host"], view.raw["local-port"]) == (CHARON_IP, "4500")
        assert set(installed(view)) == {second.spi_out}
        _esp_both_ways(t, charon, est, second, SECOND_4500, CHARON_4500, "charon rekeyed after the move")

        # 3. ikesim rekeys the CHILD_SA on the new path (RFC 7296 §1.3.3), then deletes the old one
        charon.mark_log()
        evs = run_step(drv, lambda: daemon.rekey_child_sa(second.spi_in, drv.now()), completed("delete_child"))
        assert names(evs) == ["RekeyStarted", "ExchangeStarted(rekey_child)", "ExchangeCompleted(rekey_child)",
                              "ChildSaInstalled", "RekeyCompleted", "ExchangeStarted(delete_child)",
                              "ExchangeCompleted(delete_child)"]
        third = next(e for e in evs if isinstance(e, ev.ChildSaInstalled))
        assert (third.initiator, third.rekey_of, third.local, third.peer) == (True, second.spi_in, SECOND_4500,
                                                                              CHARON_4500)
        log = charon.log_since_mark()
        assert re.search(rf"SPI 0x{third.spi_out.hex()}, src {SECOND_IP} dst {CHARON_IP}", log), log[-3000:]
        assert re.search(rf"SPI 0x{third.spi_in.hex()}, src {CHARON_IP} dst {SECOND_IP}", log)
        assert set(installed(charon_ike(charon, est.spi_i, est.spi_r))) == {third.spi_out}
        _esp_both_ways(t, charon, est, third, SECOND_4500, CHARON_4500, "ikesim rekeyed after the move")
        assert [r.drop for r in t.received] == [""] * (3 * PACKETS)

        table = ikev2_decryption_line(est)
        run_step(drv, lambda: daemon.delete_ike_sa(est.spi_i, drv.now()), lambda e: isinstance(e, ev.IkeSaDeleted))
        assert [v for v in charon.list_sas() if v.spi_i == est.spi_i] == []
    bad = charon.problems(charon.log()[start:])
    assert bad == [], "\n".join(bad[:20])

    # 4. the capture on ikmob0 decodes with ikesim's keys: no malformed frame, the update's notifies are shown
    if capture is None:
        return  # no dumpcap/tshark here
    pcap = capture.write(tmp_path / "mobike.pcap")
    assert _tshark(pcap, table, "-Y", "_ws.malformed") == ""
    # every encrypted IKE message (all but IKE_SA_INIT) decrypts, and its ICV checks out
    encrypted = _tshark(pcap, table, "-Y", "isakmp && isakmp.exchangetype != 34", "-T", "fields",
                        "-e", "frame.number").split()
    assert _tshark(pcap, table, "-Y", "isakmp && isakmp.exchangetype != 34 && !isakmp.enc.decrypted") == ""
    verbose = _tshark(pcap, table, "-Y", "isakmp && isakmp.exchangetype != 34", "-V")
    # IKE_AUTH, path test, update, charon's CHILD rekey and Delete, ikesim's CHILD rekey and Delete, IKE Delete
    assert len(encrypted) == 8 * 2 and verbose.count("[correct]") == 8 * 2 and "incorrect" not in verbose
    rows = [r.split("\t") for r in _tshark(
        pcap, table, "-Y", "isakmp.exchangetype == 37 && (isakmp.messageid == 2 || isakmp.messageid == 3)"
        " && (isakmp.flags == 0x08 || isakmp.flags == 0x20)",
        "-T", "fields", "-e", "ip.src", "-e", "ip.dst", "-e", "isakmp.messageid", "-e", "isakmp.flags",
        "-e", "isakmp.notify.msgtype", "-e", "isakmp.notify.data").splitlines()]
    # ikesim's requests (flags 0x08: Initiator) and charon's responses (0x20: Response), decrypted by tshark
    assert [r[:5] for r in rows] == [
        [SECOND_IP, CHARON_IP, "0x00000002", "0x08", ""], [CHARON_IP, SECOND_IP, "0x00000002", "0x20", ""],
        [SECOND_IP, CHARON_IP, "0x00000003", "0x08", "16400,16401,16388,16389"],  # UPDATE_SA_ADDRESSES, COOKIE2, NAT_D
        [CHARON_IP, SECOND_IP, "0x00000003", "0x20", "16388,16389,16401"]]  # NAT_D, COOKIE2
    assert (rows[2][5].split(",")[1], rows[3][5].split(",")[2]) == (cookie2.hex(), cookie2.hex())
    # ESP on the wire: each CHILD_SA's packets on the path the IKE_SA had then, in UDP 4500 (RFC 3948)
    esp = _tshark(pcap, table, "-Y", "esp", "-T", "fields", "-e", "ip.src", "-e", "ip.dst", "-e", "udp.srcport",
                  "-e", "udp.dstport", "-e", "esp.spi", "-e", "esp.sequence").splitlines()
    expected = []
    for child, ours in ((first, FIRST_IP), (second, SECOND_IP), (third, SECOND_IP)):
        for src, dst, spi in ((ours, CHARON_IP, child.spi_out), (CHARON_IP, ours, child.spi_in)):
            expected += [f"{src}\t{dst}\t4500\t4500\t0x{spi.hex()}\t{k}" for k in range(1, PACKETS + 1)]
    assert sorted(esp) == sorted(expected)


@pytest.mark.interop
def test_charon_moves_ikesim_follows(charon_ns: Charon) -> None:
    """charon initiates with MOBIKE, loses 198.51.100.1 and roams to .11: its path test, then UPDATE_SA_ADDRESSES
    with COOKIE2 (RFC 4555 §3.5) reach ikesim, which moves the IKE_SA and the CHILD_SA and echoes the COOKIE2;
    charon rekeys the CHILD_SA (kernel-libipsec) and ESP flows both ways on the new path."""
    charon = charon_ns
    start = len(charon.log())
    charon.mark_log()
    daemon = _daemon("rev", "mob-sim@sim.test", "mob-gw@sim.test", None, (FIRST_500,), 62)
    roamed = Address(CHARON_ROAM_IP, 4500)
    try:
        with tunnel(daemon, 62, charon) as t, UdpDriver(daemon, FIRST_500, natt=FIRST_4500, on_event=t.plane.on_event,
                                                on_esp=t.on_esp) as drv:
            t.drv = drv
            # 1. charon initiates (IKE_SA_INIT on 500, IKE_AUTH on 4500), both offer MOBIKE (RFC 4555 §3.1)
            init = Swanctl(charon, "--initiate", "--child", "rev", "--ike", "mob-rev", "--timeout", "5")
            evs = _drive_until(drv, 0, lambda e: isinstance(e, ev.ChildSaInstalled | ev.IkeSaDeleted))
            assert "initiate completed successfully" in init.finish(drv)
            assert names(evs) == ["IkeSaKeysDerived", "NatDetected", "NatTraversalStarted", "IkeSaEstablished",
                                  "MobikeNegotiated", "ChildSaInstalled"], [repr(e) for e in evs]
            est, mob, first = evs[3], evs[4], evs[5]
            assert isinstance(est, ev.IkeSaEstablished) and isinstance(first, ev.ChildSaInstalled)
            assert isinstance(mob, ev.MobikeNegotiated) and mob.peer_addresses == ""
            assert (est.initiator, est.local, est.peer) == (False, FIRST_4500, CHARON_4500)
            assert [(d.src, d.dst) for d in drv.received] == [(CHARON_500, FIRST_500), (CHARON_4500, FIRST_4500)]
            assert [(d.src, d.dst) for d in drv.sent] == [(FIRST_500, CHARON_500), (FIRST_4500, CHARON_4500)]
            log = charon.log_since_mark()
            assert re.search(r"generating IKE_AUTH request 1 \[ IDi N\(INIT_CONTACT\) IDr AUTH SA TSi TSr "
                             r"N\(MOBIKE_SUP\) N\(NO_ADD_ADDR\) N\(EAP_ONLY\) N\(MSG_ID_SYN_SUP\) \]", log), log[-3000:]
            assert re.search(r"parsed IKE_AUTH response 1 \[ IDr AUTH SA TSi TSr N\(MOBIKE_SUP\) N\(NO_ADD_ADDR\) \]",
                             log)
            assert "peer supports MOBIKE" in log
            view = charon_ike(charon, est.spi_i, est.spi_r)
            assert (view.raw["local-host"], view.raw["local-port"], view.raw["remote-host"],
                    view.raw["remote-port"]) == (CHARON_IP, "4500", FIRST_IP, "4500")
            _esp_both_ways(t, charon, est, first, FIRST_4500, CHARON_4500, "before charon moves")

            # 2. charon's address goes (198.51.100.11 stays): strongSwan's roam job tests the path from .11, then
            #    sends UPDATE_SA_ADDRESSES with NAT_D and COOKIE2; ikesim moves at once (as strongSwan's responder)
            charon.mark_log()
            sent, received, mark = len(drv.sent), len(drv.received), len(drv.events)
            ip_must("-n", NETNS, "addr", "add", f"{CHARON_ROAM_IP}/24", "dev", VETH_CHARON)
            ip_must("-n", NETNS, "addr", "del", f"{CHARON_IP}/24", "dev", VETH_CHARON)
            evs = _drive_until(drv, mark, lambda e: isinstance(e, ev.ChildSaDeleted) and e.spi_in == first.spi_in)
            assert names(evs) == ["PeerAddressesUpdated", "IkeSaMoved", "ChildSaInstalled", "RekeyCompleted",
                                  "ChildSaOutboundInstalled", "ChildSaDeleted"], [repr(e) for e in evs]
            listed, moved, second = evs[0], evs[1], evs[2]
            assert isinstance(listed, ev.PeerAddressesUpdated) and listed.peer_addresses == ""  # NO_ADD_ADDR
            assert isinstance(moved, ev.IkeSaMoved) and (moved.method, moved.old_peer, moved.peer, moved.old_local,
                                                         moved.local) == (
                "mobike_responder", CHARON_4500, roamed, FIRST_4500, FIRST_4500)
            assert isinstance(second, ev.ChildSaInstalled)
            assert (second.initiator, second.rekey_of, second.local, second.peer) == (False, first.spi_in,
                                                                                      FIRST_4500, roamed)
            info = daemon.ike_sa_info(est.spi_r)
            assert (info.local, info.peer, info.nat_local, info.nat_peer) == (FIRST_4500, roamed, False, True)
            # charon's requests: path test (2), update (3), CREATE_CHILD_SA (4), Delete (5); each answered back
            new_in, new_out = list(drv.received)[received:], list(drv.sent)[sent:]
            assert [parse_message(d.data).message_id for d in new_in] == [2, 3, 4, 5]
            assert {(d.src, d.dst) for d in new_in} == {(roamed, FIRST_4500)}
            assert [((d.src, d.dst), parse_message(d.data).message_id) for d in new_out] == [
                ((FIRST_4500, roamed), k) for k in (2, 3, 4, 5)]
            sa = daemon.sas[est.spi_r]
            assert _notifies(new_in[0].data, sa.protect_in) == []  # the path test: an empty INFORMATIONAL
            update, answer = _notifies(new_in[1].data, sa.protect_in), _notifies(new_out[1].data, sa.protect_out)
            assert [n for n, _ in update] == [NotifyType.UPDATE_SA_ADDRESSES, NotifyType.NAT_DETECTION_SOURCE_IP,
                                              NotifyType.NAT_DETECTION_DESTINATION_IP, NotifyType.COOKIE2,
                                              NotifyType.NO_ADDITIONAL_ADDRESSES]
            assert [n for n, _ in answer] == [NotifyType.NAT_DETECTION_SOURCE_IP,
                                              NotifyType.NAT_DETECTION_DESTINATION_IP, NotifyType.COOKIE2]
            assert len(update[3][1]) == 16 and answer[2][1] == update[3][1]  # charon's COOKIE2, echoed
            log = charon.log_since_mark()
            for line in (rf"{CHARON_IP} disappeared from {VETH_CHARON}",
                         r"old path is not available anymore, try to find another",
                         r"requesting address change using MOBIKE",
                         r"generating INFORMATIONAL request 2 \[ \]",
                         rf"checking path {CHARON_ROAM_IP}\[4500\] - {FIRST_IP}\[4500\]",
                         r"parsed INFORMATIONAL response 2 \[ \]",
                         rf"local endpoint changed from {CHARON_IP}\[4500\] to {CHARON_ROAM_IP}\[4500\]",
                         r"generating INFORMATIONAL request 3 \[ N\(UPD_SA_ADDR\) N\(NATD_S_IP\) N\(NATD_D_IP\) "
                         r"N\(COOKIE2\) N\(NO_ADD_ADDR\) \]",
                         r"parsed INFORMATIONAL response 3 \[ N\(NATD_S_IP\) N\(NATD_D_IP\) N\(COOKIE2\) \]",
                         r"generating CREATE_CHILD_SA request 4 \[ N\(REKEY_SA\) SA No TSi TSr \]",
                         rf"SPI 0x{second.spi_out.hex()}, src {FIRST_IP} dst {CHARON_ROAM_IP}",
                         rf"SPI 0x{second.spi_in.hex()}, src {CHARON_ROAM_IP} dst {FIRST_IP}"):
                assert re.search(line, log), (line, log[-5000:])
            assert "COOKIE2 mismatch" not in log
            view = charon_ike(charon, est.spi_i, est.spi_r)
            assert (view.raw["local-host"], view.raw["local-port"], view.raw["remote-host"],
                    view.raw["remote-port"]) == (CHARON_ROAM_IP, "4500", FIRST_IP, "4500")
            assert set(installed(view)) == {second.spi_out}
            _esp_both_ways(t, charon, est, second, FIRST_4500, roamed, "after charon moved")
            assert [r.drop for r in t.received] == [""] * (2 * PACKETS)

            run_step(drv, lambda: daemon.delete_ike_sa(est.spi_r, drv.now()),
                     lambda e: isinstance(e, ev.IkeSaDeleted))
            assert [v for v in charon.list_sas() if v.spi_i == est.spi_i] == []
    finally:  # charon's first address back, for whatever runs next
        ip("-n", NETNS, "addr", "add", f"{CHARON_IP}/24", "dev", VETH_CHARON)
        ip("-n", NETNS, "addr", "del", f"{CHARON_ROAM_IP}/24", "dev", VETH_CHARON)
    bad = charon.problems(charon.log()[start:])
    assert bad == [], "\n".join(bad[:20])


# ---------------------------------------------------------------------- the driver's several addresses (no charon)
class _Stub:
    """A sans-IO daemon stand-in: sends what the test queues, records what it is handed."""

    def __init__(self, outbox: list[Datagram]) -> None:
        self.outbox = outbox
        self.inbox: list[tuple[bytes, Address, Address]] = []

    def receive_datagram(self, data: bytes, src: Address, dst: Address, now: float) -> None:
        self.inbox.append((data, src, dst))

    def datagrams_to_send(self, now: float) -> list[Datagram]:
        out, self.outbox = self.outbox, []
        return out

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        pass

    def next_event(self) -> ev.IkeEvent | None:
        return None


def test_udp_driver_sends_each_datagram_from_its_source_address() -> None:
    """With ``extra`` the driver binds a host's other addresses and sends every datagram from the socket of its
    ``src`` (a MOBIKE path test leaves from the new address, RFC 4555 §3.5); an extra socket on the NAT-T port
    carries the NAT-T flow (non-ESP marker on IKE, marker-less datagrams are ESP, RFC 3948 §2.1-2.2); what arrives
    goes to the daemon with the address it arrived at."""
    old, new = "127.0.0.6", "127.0.0.7"
    bind, natt = Address(old, 21500), Address(old, 24500)
    new_natt, new_ike, peer_at = Address(new, 24500), Address(new, 21500), Address("127.0.0.5", 24600)
    stub, esp = _Stub([Datagram(b"path test", new_natt, peer_at), Datagram(b"plain", new_ike, peer_at),
                       Datagram(b"old path", natt, peer_at)]), list[Datagram]()
    with UdpDriver(stub, bind, natt=natt, extra=(new_natt, new_ike), on_esp=esp.append) as drv, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind((peer_at.ip, peer_at.port))
        peer.settimeout(2.0)
        drv.flush()
        got = sorted(peer.recvfrom(100) for _ in range(3))
        for data, to in ((b"\x00\x00\x00\x00answer", new_natt), (b"\xc0\xff\xee\x01esp", new_natt),
                         (b"plain answer", new_ike)):
            peer.sendto(data, (to.ip, to.port))
        while (len(stub.inbox) < 2 or not esp) and drv.now() < 2.0:
            drv.step(0.05)
    assert drv.extra == (new_natt, new_ike)
    assert got == [(b"\x00\x00\x00\x00old path", (old, 24500)), (b"\x00\x00\x00\x00path test", (new, 24500)),
                   (b"plain", (new, 21500))]
    assert sorted(stub.inbox) == [(b"answer", peer_at, new_natt), (b"plain answer", peer_at, new_ike)]
    assert [(d.data, d.src, d.dst) for d in esp] == [(b"\xc0\xff\xee\x01esp", peer_at, new_natt)]
