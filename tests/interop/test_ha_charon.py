"""RFC 6311 against a real strongSwan charon: an ikesim gateway "cluster" fails over under a live charon client.

charon (the client) initiates to the cluster's address; ikesim gateway A answers with RFC 6311 configured
(``IkePolicy.message_id_sync``), so both IKE_AUTH messages carry N(IKEV2_MESSAGE_ID_SYNC_SUPPORTED) (strongSwan
``ike_auth.c`` sends it in every first IKE_AUTH request and enables ``EXT_IKE_MESSAGE_ID_SYNC`` on the
response's). Message IDs move on (charon's CHILD rekey, A's CHILD rekey and DPD). Then A fails: its replicated
state (``IkeDaemon.ha_record``) goes to a fresh gateway B with the same configuration, which takes the cluster's
address (the same bound sockets: the driver's daemon is swapped), and A is gone without a Delete.
``IkeDaemon.activate_ike_sa`` makes B send the INFORMATIONAL on message ID 0 with N(IKEV2_MESSAGE_ID_SYNC)
(RFC 6311); charon answers it (``ike_mid_sync.c``, logging "responder requested MID sync: initiating
P2[old], responding M2[old]"), and the tunnel lives on: charon rekeys the CHILD_SA and B answers, B sends a DPD
and rekeys the CHILD_SA and charon answers, ESP flows both ways (B's outbound sequence numbers jump past A's, as
a cluster does, RFC 6311's advice), and ``swanctl --list-sas`` shows the same IKE_SA throughout.

A second test fails A over while charon's CHILD rekey request is in flight and unanswered (A crashed before it):
charon then answers the synchronization with P2 one past its request (``has_active_tasks``) and re-queues the
rekey (``task_manager.reset``) without sending it: 5.9.8 starts it only on the next initiate, here the next
``swanctl --rekey``, on message ID P2, which B expects and answers.

Both use an AES-CBC/HMAC IKE proposal. A third test shows why: with AES-GCM, charon takes each IKE IV from the
message ID and never uses one twice per direction (``iv_gen_seq.c``); once it has answered any request of the
gateway's, its response on message ID 0 cannot be encrypted ("encrypting encrypted payload failed, no IV or
padding"), and charon destroys the IKE_SA (``task_manager_v2.c`` ``build_response``: DESTROY_ME).

Network as in test_mobike_charon.py: charon runs kernel-libipsec in its own namespace (it then fakes a NAT, so IKE
floats to UDP 4500 and ESP travels in UDP, RFC 3948), joined to ours by a veth pair with addresses from
TEST-NET-3 (RFC 5737): charon 203.0.113.1, the cluster 203.0.113.2 (UDP 500 and 4500). The CHILD_SA joins
198.18.1.0/24 (charon; 198.18.1.1 on the namespace's ``lo``) and 198.18.2.0/24 (ikesim). A capture of our veth end
(an AF_PACKET socket) decodes in tshark with ikesim's ikev2_decryption_table: every IKE message, both MID-0
synchronization messages too, decrypts, and tshark shows the IKEV2_MESSAGE_ID_SYNC fields.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import socket
import struct
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
    libipsec_available,
    veth_netns,
)
from test_esp_charon import PACKETS, Tunnel, child_counters, inner_udp
from test_mobike_charon import Capture, _tshark
from test_strongswan import completed, names, run_step
from test_strongswan_reverse import Swanctl

from ikesim.esp import parse_inner
from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy, RetransmitPolicy
from ikesim.ike.daemon import IkeDaemon
from ikesim.ike.ha_state import IkeSaRecord
from ikesim.metrics.export import ikev2_decryption_line
from ikesim.metrics.traffic_log import TrafficLog
from ikesim.rng import Rng
from ikesim.sim.dataplane import NodeDataPlane
from ikesim.types import Address, Datagram
from ikesim.udp import UdpDriver
from ikesim.wire.codec import parse_message, unprotect_message
from ikesim.wire.iana import ExchangeType, NotifyType
from ikesim.wire.payloads import NotifyPayload

NETNS = f"ikesim-ha-{os.getpid()}"
VETH_OURS, VETH_CHARON = "ikha0", "ikha1"
CHARON_IP, CLUSTER_IP = "203.0.113.1", "203.0.113.2"
CHARON_NET, IKESIM_NET = "198.18.1.0/24", "198.18.2.0/24"
CHARON_HOST, IKESIM_HOST = "198.18.1.1", "198.18.2.1"
TO_CHARON_PORT, TO_IKESIM_PORT = 47001, 47002
CLUSTER_500, CLUSTER_4500 = Address(CLUSTER_IP, 500), Address(CLUSTER_IP, 4500)
CHARON_4500 = Address(CHARON_IP, 4500)
IKE = "aes256-sha256-x25519"
"""IKE proposal of ``ha``: AES-CBC with HMAC-SHA-256, random IVs (strongSwan ``iv_gen_rand``)."""
IKE_GCM = "aes256gcm16-prfsha256-x25519"
"""IKE proposal of ``ha-gcm``: AES-GCM, whose IVs strongSwan derives from the message ID (``iv_gen_seq``)."""
ESP = "aes256gcm16"
POLICY = ("ha", "ha")
"""ikesim's outbound slot: (connection, child)."""
SEQ_MARGIN = 4096
"""How far B's outbound ESP sequence numbers jump past A's last ones (``ikesim.sim.cluster`` ``esp_seq_margin``)."""
REPLAY_DELTA = 1000
"""The replay increment B asks for; charon does not offer IPSEC_REPLAY_COUNTER_SYNC, so B sends none."""
CLONE_NEWNET = 0x40000000
"""setns(2) flag: a network namespace (linux/sched.h)."""


def _charon_connection(name: str, proposals: str) -> str:
    """One charon connection to the cluster's address (charon initiates), with child ``ha``."""
    return f"""
    {name} {{
        version = 2
        local_addrs = {CHARON_IP}
        remote_addrs = {CLUSTER_IP}
        proposals = {proposals}
        mobike = no
        rekey_time = 0
        reauth_time = 0
        dpd_delay = 0
        local {{
            auth = psk
            id = ha-client@sim.test
        }}
        remote {{
            auth = psk
            id = ha-gw@sim.test
        }}
        children {{
            ha {{
                esp_proposals = {ESP}
                local_ts = {CHARON_NET}
                remote_ts = {IKESIM_NET}
                rekey_time = 0
                life_time = 0
                start_action = none
            }}
        }}
    }}"""


HA_CONF = f"""
connections {{{_charon_connection("ha", IKE)}{_charon_connection("ha-gcm", IKE_GCM)}
}}
secrets {{
    ike-ha {{
        id-1 = ha-client@sim.test
        id-2 = ha-gw@sim.test
        secret = "{PSK}"
    }}
}}
"""
"""charon's connections in this module: ``ha`` (AES-CBC) and ``ha-gcm`` (AES-GCM) to the cluster's address."""
_SYNC = struct.Struct("!4sII")
"""IKEV2_MESSAGE_ID_SYNC data: nonce, EXPECTED_SEND_REQ_MESSAGE_ID, EXPECTED_RECV_REQ_MESSAGE_ID (RFC 6311)."""
_MID_SYNC_LOG = re.compile(r"responder requested MID sync: initiating (\d+)\[(\d+)\], responding (\d+)\[(\d+)\]")


# ---------------------------------------------------------------------- the namespace




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


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    """charon's namespace, joined to ours by the veth pair ikha0 (203.0.113.2) - ikha1 (203.0.113.1)."""
    reason = _skip_reason()
    if reason is not None:
        pytest.skip(reason)
    try:
        with veth_netns(NETNS, VETH_OURS, VETH_CHARON, charon_cidr=f"{CHARON_IP}/24", charon_host=CHARON_HOST,
                        our_cidrs=(f"{CLUSTER_IP}/24",)) as ns:
            yield ns
    except NetnsUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def charon_ns(netns: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Charon]:
    """charon in the namespace (kernel-libipsec) with ``ha`` loaded; stopped at the end."""
    c = Charon(tmp_path_factory.mktemp("charon-ha"), netns=netns, libipsec=True)
    c.write_config(charon_ip=CHARON_IP, ikesim_ip=CLUSTER_IP, ikesim_port=500)
    conf = c.swanctl_dir / "ha.conf"
    conf.write_text(HA_CONF)
    try:
        c.start()
        c.swanctl("--load-all", "--file", str(conf))
        assert re.search(r"created TUN device: (\S+)", c.log()), c.log()[-2000:]
        yield c
    finally:
        c.stop()


@pytest.fixture
def capture(netns: str) -> Iterator[Capture | None]:
    """A capture on ikha0 for the test; None without tshark (the test then checks everything but the capture)."""
    if shutil.which("tshark") is None:
        yield None
        return
    cap = Capture(VETH_OURS)
    try:
        yield cap
    finally:
        cap.close()


# ---------------------------------------------------------------------- the cluster
def gateway(member: str, retransmit: RetransmitPolicy | None = None) -> IkeDaemon:
    """One cluster member: responder for ``ha-client@sim.test`` with RFC 6311 on, its own rng stream."""
    child = ChildPolicy(name="ha", proposals=(ESP,), local_ts=(IKESIM_NET,), remote_ts=(CHARON_NET,),
                        delete_rekeyed_delay=0.2)
    conn = Connection(name="ha", local_id="ha-gw@sim.test", remote_id="ha-client@sim.test",
                      credentials=Credentials(psk=PSK.encode()),
                      ike=IkePolicy(proposals=(IKE, IKE_GCM), message_id_sync=True, replay_counter_sync=True,
                                    retransmit=retransmit or RetransmitPolicy()),
                      children=(child,))
    return IkeDaemon(DaemonConfig(name=f"gw-{member}", addresses=(CLUSTER_500,), connections=(conn,)),
                     rng=Rng(71, "ha", member))


def plane_for(daemon: IkeDaemon, member: str) -> NodeDataPlane:
    """A member's ESP data plane, following its daemon's CHILD_SA events."""
    return NodeDataPlane(daemon, Rng(71, "ha-plane", member), replay_window=32, log=TrafficLog(),
                         node=f"gw-{member}")


class Down:
    """The cluster's address with no member holding it (A crashed, B not yet active): what arrives is lost."""

    def __init__(self) -> None:
        self.lost: list[tuple[bytes, Address, Address]] = []

    def receive_datagram(self, data: bytes, src: Address, dst: Address, now: float) -> None:
        self.lost.append((data, src, dst))

    def datagrams_to_send(self, now: float) -> list[Datagram]:
        return []

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        pass

    def next_event(self) -> ev.IkeEvent | None:
        return None


def take_over(drv: UdpDriver, t: Tunnel, record: IkeSaRecord, a_plane: NodeDataPlane, member: str,
              retransmit: RetransmitPolicy | None = None) -> IkeDaemon:
    """Member *member* (configured as A) takes the cluster's sockets and the replicated IKE_SA over; its outbound ESP
    sequence numbers jump ``SEQ_MARGIN`` past A's, its inbound windows start at A's highest (``ikesim.sim.cluster``)."""
    b = gateway(member, retransmit)
    plane = plane_for(b, member)
    drv.daemon, drv.on_event, t.plane = b, plane.on_event, plane
    b.activate_ike_sa(record, drv.now(), replay_delta=REPLAY_DELTA)
    drv.flush()  # the MID sync leaves; the plane installs the CHILD_SAs from ChildSaActivated
    for c in record.children:
        old_out, new_out = a_plane.esp.outbound(POLICY), plane.esp.outbound(POLICY)
        if old_out is not None and new_out is not None and new_out.spi == c.spi_out == old_out.spi:
            new_out.seq = old_out.seq + SEQ_MARGIN
        old_in, new_in = a_plane.esp.inbound(c.spi_in), plane.esp.inbound(c.spi_in)
        if old_in is not None and new_in is not None:
            new_in.window.top = old_in.window.top
    return b


# ---------------------------------------------------------------------- helpers
def drive_until(drv: UdpDriver, mark: int, *done: Callable[[ev.IkeEvent], bool]) -> list[ev.IkeEvent]:
    """Drive until each of *done* matched an event after the first *mark* (at most ``STEP`` s); the events after."""
    deadline = drv.now() + STEP
    while True:
        evs = list(drv.events)[mark:]
        if all(any(p(e) for e in evs) for p in done):
            drv.take_events()
            return evs
        if drv.now() > deadline:
            raise TimeoutError(f"not within {STEP} s: {[repr(e) for e in evs]}")
        drv.step(0.02)


def notifies(data: bytes, protector: object) -> list[tuple[NotifyType, bytes]]:
    """The notifies inside one encrypted IKE message (RFC 7296 §3.14), in order."""
    inner = unprotect_message(data, protector, outer=parse_message(data))  # type: ignore[arg-type]
    return [(n.notify_type, n.data) for n in inner.get_all(NotifyPayload)]


def headers(ds: list[Datagram]) -> list[tuple[str, int, bool]]:
    """(exchange, message ID, response) of each datagram (RFC 7296 §3.1)."""
    out = []
    for d in ds:
        msg = parse_message(d.data)
        out.append((msg.exchange_type.name, msg.message_id, msg.is_response))
    return out


def esp_both_ways(t: Tunnel, charon: Charon, est: ev.IkeSaEstablished, spi_out: bytes, spi_in: bytes, tag: str,
                  *, seq_out: int, seq_in: int, before: int) -> None:
    """PACKETS each way on one CHILD_SA: ikesim's sequence numbers from *seq_out*, charon's from *seq_in*; charon had
    counted *before* packets each way on it; counters and inner packets exact."""
    assert t.drv is not None
    sizes = []
    for k in range(PACKETS):
        payload = f"{tag}: ikesim to charon #{k + 1}".encode()
        d = t.plane.esp.protect(POLICY, inner_udp(IKESIM_HOST, CHARON_HOST, 40001 + k, TO_CHARON_PORT, payload, k))
        assert isinstance(d, Datagram), d
        assert (d.src, d.dst) == (CLUSTER_4500, CHARON_4500)
        assert (d.data[:4], int.from_bytes(d.data[4:8], "big")) == (spi_out, seq_out + k)  # RFC 4303 §2.1, §2.2
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
    assert sorted(delivered) == sorted((f"{tag}: ikesim to charon #{k + 1}".encode(), (IKESIM_HOST, 40001 + k))
                                       for k in range(PACKETS))
    counted = child_counters(charon, est, spi_out)
    assert (counted.spi_in, counted.spi_out) == (spi_out, spi_in)
    assert counted.raw["packets-in"] == str(before + PACKETS)
    mark = len(t.received)
    payloads = [f"{tag}: charon to ikesim #{k + 1}".encode() for k in range(PACKETS)]
    for p in payloads:
        t.tx.sendto(p, (IKESIM_HOST, TO_IKESIM_PORT))
    t.wait(lambda: len(t.received) >= mark + PACKETS, f"{tag}: ikesim receives charon's ESP")
    got = t.received[mark:]
    assert [(r.spi, r.seq, r.drop) for r in got] == [(spi_in, seq_in + k, "") for k in range(PACKETS)]
    assert {(r.src, r.dst) for r in got} == {(CHARON_4500, CLUSTER_4500)}
    for r, p in zip(got, payloads, strict=True):
        assert r.inner is not None and parse_inner(r.inner) == (CHARON_HOST, IKESIM_HOST, 28 + len(p))
        assert r.inner[28:] == p
    assert child_counters(charon, est, spi_out).raw["packets-out"] == str(before + PACKETS)


@contextmanager
def tunnel(plane: NodeDataPlane, charon: Charon) -> Iterator[Tunnel]:
    """ikesim's ESP plane, and the two kernel sockets at charon's end of the tunnel (in its namespace; closed after)."""
    tun = re.search(r"created TUN device: (\S+)", charon.log())
    assert tun is not None, charon.log()[-2000:]
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


# ---------------------------------------------------------------------- tests
@pytest.mark.interop
def test_failover_under_a_live_charon_keeps_the_ike_sa(charon_ns: Charon, capture: Capture | None,
                                                       tmp_path: Path) -> None:
    """charon's IKE_SA with gateway A survives A's failure: B synchronizes message IDs on ID 0, charon answers with
    the values it logs, and rekeys, DPD and ESP go on in the same IKE_SA."""
    charon = charon_ns
    start = len(charon.log())
    charon.mark_log()
    a = gateway("a")
    a_plane = plane_for(a, "a")
    with tunnel(a_plane, charon) as t, UdpDriver(a, CLUSTER_500, natt=CLUSTER_4500, on_event=a_plane.on_event,
                                                 on_esp=t.on_esp) as drv:
        t.drv = drv
        # 1. charon initiates; both IKE_AUTH messages carry N(IKEV2_MESSAGE_ID_SYNC_SUPPORTED) (RFC 6311)
        init = Swanctl(charon, "--initiate", "--child", "ha", "--ike", "ha", "--timeout", "5")
        evs = drive_until(drv, 0, lambda e: isinstance(e, ev.ChildSaInstalled | ev.IkeSaDeleted))
        assert "initiate completed successfully" in init.finish(drv)
        assert names(evs) == ["IkeSaKeysDerived", "NatDetected", "NatTraversalStarted", "IkeSaEstablished",
                              "HaSyncNegotiated", "ChildSaInstalled"], [repr(e) for e in evs]
        est, neg, first = evs[3], evs[4], evs[5]
        assert isinstance(est, ev.IkeSaEstablished) and isinstance(first, ev.ChildSaInstalled)
        assert isinstance(neg, ev.HaSyncNegotiated)
        assert (neg.message_id_sync, neg.replay_counter_sync) == (True, False)  # charon offers no replay counter sync
        assert (est.initiator, est.local, est.peer) == (False, CLUSTER_4500, CHARON_4500)
        log = charon.log_since_mark()
        assert re.search(r"generating IKE_AUTH request 1 \[ IDi N\(INIT_CONTACT\) IDr AUTH SA TSi TSr N\(EAP_ONLY\) "
                         r"N\(MSG_ID_SYN_SUP\) \]", log), log[-3000:]
        assert "parsed IKE_AUTH response 1 [ IDr AUTH SA TSi TSr N(MSG_ID_SYN_SUP) ]" in log
        view = charon_ike(charon, est.spi_i, est.spi_r)
        unique = view.raw["uniqueid"]
        assert view.state == "ESTABLISHED" and set(installed(view)) == {first.spi_out}
        esp_both_ways(t, charon, est, first.spi_out, first.spi_in, "first", seq_out=1, seq_in=1, before=0)

        # 2. message IDs move on: charon rekeys the CHILD_SA (its 2, 3), A rekeys it (A's 0, 1) and sends a DPD (2)
        rekey = Swanctl(charon, "--rekey", "--child", "ha")
        mark = len(drv.events)
        evs = drive_until(drv, mark, lambda e: isinstance(e, ev.ChildSaDeleted) and e.spi_in == first.spi_in)
        rekey.finish(drv)
        second = next(e for e in evs if isinstance(e, ev.ChildSaInstalled))
        assert (second.rekey_of, second.initiator) == (first.spi_in, False)
        evs = run_step(drv, lambda: a.rekey_child_sa(second.spi_in, drv.now()), completed("delete_child"))
        third = next(e for e in evs if isinstance(e, ev.ChildSaInstalled))
        assert (third.rekey_of, third.initiator, third.outbound) == (second.spi_in, True, True)
        run_step(drv, lambda: a.check_liveness(est.spi_r, drv.now()), completed("dpd"))
        assert set(installed(charon_ike(charon, est.spi_i, est.spi_r))) == {third.spi_out}
        esp_both_ways(t, charon, est, third.spi_out, third.spi_in, "third", seq_out=1, seq_in=1, before=0)
        assert [h for h in headers(list(drv.received)) if h[0] != "IKE_SA_INIT"] == [
            ("IKE_AUTH", 1, False), ("CREATE_CHILD_SA", 2, False), ("INFORMATIONAL", 3, False),
            ("CREATE_CHILD_SA", 0, True), ("INFORMATIONAL", 1, True), ("INFORMATIONAL", 2, True)]

        # 3. A fails: what it replicated goes to B, which takes the cluster's sockets; A sends nothing more
        record = a.ha_record(est.spi_r)
        assert record is not None
        assert (record.next_message_id, record.peer_message_id, record.mid_sync, record.replay_sync) == (3, 4, True,
                                                                                                           False)
        # the third pair, and the second one, rekeyed 0.x s ago, still lingering inbound (RFC 7296 §2.8)
        assert [(c.spi_in, c.spi_out, c.outbound, c.state.value) for c in record.children] == [
            (second.spi_in, second.spi_out, False, "rekeyed"), (third.spi_in, third.spi_out, True, "installed")]
        charon.mark_log()
        sent, received, mark = len(drv.sent), len(drv.received), len(drv.events)
        b = take_over(drv, t, record, a_plane, "b")  # A is never driven again: its state is gone with it
        evs = drive_until(drv, mark, lambda e: isinstance(e, ev.MessageIdsSynchronized))
        assert names(evs) == ["IkeSaActivated", "ChildSaActivated", "ChildSaActivated", "ExchangeStarted(mid_sync)",
                              "ExchangeCompleted(mid_sync)", "MessageIdsSynchronized"], [repr(e) for e in evs]
        activated, _lingering, child, started, done, synced = evs
        assert isinstance(activated, ev.IkeSaActivated) and isinstance(child, ev.ChildSaActivated)
        assert (activated.spi_i, activated.spi_r, activated.next_message_id, activated.peer_message_id,
                activated.child_count) == (est.spi_i, est.spi_r, 3, 4, 2)
        assert (child.spi_in, child.spi_out, child.outbound) == (third.spi_in, third.spi_out, True)
        assert isinstance(started, ev.ExchangeStarted) and (started.exchange, started.message_id) == ("INFORMATIONAL",
                                                                                                       0)
        assert isinstance(done, ev.ExchangeCompleted) and (done.outcome, done.retransmissions) == ("ok", 0)
        # B's request on ID 0: N(IKEV2_MESSAGE_ID_SYNC)(nonce, M1 = 3, P1 = 4), no N(IPSEC_REPLAY_COUNTER_SYNC)
        sa = b.sas[est.spi_r]
        assert headers(list(drv.sent)[sent:]) == [("INFORMATIONAL", 0, False)]
        assert headers(list(drv.received)[received:]) == [("INFORMATIONAL", 0, True)]
        (request,) = list(drv.sent)[sent:]
        (response,) = list(drv.received)[received:]
        assert (request.src, request.dst, response.src, response.dst) == (CLUSTER_4500, CHARON_4500, CHARON_4500,
                                                                          CLUSTER_4500)
        ((kind, data),) = notifies(request.data, sa.protect_out)
        assert kind is NotifyType.IKEV2_MESSAGE_ID_SYNC
        nonce, m1, p1 = _SYNC.unpack(data)
        assert (m1, p1) == (3, 4)
        # charon's answer: the nonce echoed, P2 (its next request) and M2 (the ID it expects on ours)
        ((kind, data),) = notifies(response.data, sa.protect_in)
        assert kind is NotifyType.IKEV2_MESSAGE_ID_SYNC
        echoed, p2, m2 = _SYNC.unpack(data)
        assert (echoed, p2, m2) == (nonce, 4, 3)
        log = charon.log_since_mark()
        assert "parsed INFORMATIONAL request 0 [ N(MSG_ID_SYN) ]" in log, log[-3000:]
        assert "generating INFORMATIONAL response 0 [ N(MSG_ID_SYN) ]" in log
        logged = [tuple(int(x) for x in m.groups()) for m in _MID_SYNC_LOG.finditer(log)]
        # "initiating 4[4], responding 3[3]": P2[charon's next request before], M2[the ID it expected before]; as
        # the replicated state was current, charon's own values were B's P1 and M1
        assert logged == [(p2, p1, m2, m1)] == [(4, 4, 3, 3)]
        assert isinstance(synced, ev.MessageIdsSynchronized)
        assert (synced.role, synced.next_message_id, synced.peer_message_id, synced.replay_delta, synced.resent) == (
            "cluster", logged[0][2], logged[0][0], 0, False)
        assert (sa.next_message_id, sa.peer_message_id) == (3, 4)
        view = charon_ike(charon, est.spi_i, est.spi_r)
        assert (view.state, view.raw["uniqueid"]) == ("ESTABLISHED", unique)

        # 4. the tunnel lives on: ESP both ways on A's CHILD_SA, B's sequence numbers past A's
        esp_both_ways(t, charon, est, third.spi_out, third.spi_in, "after the failover", seq_out=PACKETS + 1 + SEQ_MARGIN,
                      seq_in=PACKETS + 1, before=PACKETS)
        # charon rekeys the CHILD_SA (its 4, 5) and B answers; B sends a DPD (3) and rekeys it (4, 5)
        charon.mark_log()
        sent, received, mark = len(drv.sent), len(drv.received), len(drv.events)
        rekey = Swanctl(charon, "--rekey", "--child", "ha")
        evs = drive_until(drv, mark, lambda e: isinstance(e, ev.ChildSaDeleted) and e.spi_in == third.spi_in)
        rekey.finish(drv)
        fourth = next(e for e in evs if isinstance(e, ev.ChildSaInstalled))
        assert (fourth.rekey_of, fourth.initiator) == (third.spi_in, False)
        evs = run_step(drv, lambda: b.check_liveness(est.spi_r, drv.now()), completed("dpd"))
        assert names(evs) == ["ExchangeStarted(dpd)", "ExchangeCompleted(dpd)"]
        evs = run_step(drv, lambda: b.rekey_child_sa(fourth.spi_in, drv.now()), completed("delete_child"))
        fifth = next(e for e in evs if isinstance(e, ev.ChildSaInstalled))
        assert (fifth.rekey_of, fifth.initiator, fifth.outbound) == (fourth.spi_in, True, True)
        assert headers(list(drv.received)[received:]) == [
            ("CREATE_CHILD_SA", 4, False), ("INFORMATIONAL", 5, False), ("INFORMATIONAL", 3, True),
            ("CREATE_CHILD_SA", 4, True), ("INFORMATIONAL", 5, True)]
        assert headers(list(drv.sent)[sent:]) == [
            ("CREATE_CHILD_SA", 4, True), ("INFORMATIONAL", 5, True), ("INFORMATIONAL", 3, False),
            ("CREATE_CHILD_SA", 4, False), ("INFORMATIONAL", 5, False)]
        log = charon.log_since_mark()
        for line in ("generating CREATE_CHILD_SA request 4 [ N(REKEY_SA) SA No TSi TSr ]",
                     "parsed CREATE_CHILD_SA response 4 [ SA No TSi TSr ]",
                     "generating INFORMATIONAL request 5 [ D ]", "parsed INFORMATIONAL response 5 [ D ]",
                     "parsed INFORMATIONAL request 3 [ ]", "generating INFORMATIONAL response 3 [ ]",
                     "parsed CREATE_CHILD_SA request 4 [ N(REKEY_SA) SA No TSi TSr ]",
                     "generating CREATE_CHILD_SA response 4 [ SA No TSi TSr ]",
                     "parsed INFORMATIONAL request 5 [ D ]", "generating INFORMATIONAL response 5 [ D ]"):
            assert line in log, (line, log[-4000:])
        # the same IKE_SA throughout: same SPIs and unique ID, no reauthentication, no second IKE_SA
        views = charon.list_sas()
        assert [(v.connection, v.state, v.spi_i, v.spi_r, v.raw["uniqueid"]) for v in views] == [
            ("ha", "ESTABLISHED", est.spi_i, est.spi_r, unique)]
        assert set(installed(views[0])) == {fifth.spi_out}
        assert len(charon.log_lines("initiating IKE_SA ha[")) == 1 and "reauth" not in charon.log()[start:]
        esp_both_ways(t, charon, est, fifth.spi_out, fifth.spi_in, "B rekeyed", seq_out=1, seq_in=1, before=0)
        assert [r.drop for r in t.received] == [""] * (4 * PACKETS)

        table = ikev2_decryption_line(est)
        run_step(drv, lambda: b.delete_ike_sa(est.spi_r, drv.now()), lambda e: isinstance(e, ev.IkeSaDeleted))
        assert charon.list_sas() == []
    bad = charon.problems(charon.log()[start:])
    assert bad == [], "\n".join(bad[:20])

    # 5. the capture decodes with ikesim's keys: every IKE message, both MID-0 synchronization messages too
    if capture is None:
        return
    pcap = capture.write(tmp_path / "ha.pcap")
    assert _tshark(pcap, table, "-Y", "_ws.malformed") == ""
    encrypted = _tshark(pcap, table, "-Y", "isakmp && isakmp.exchangetype != 34", "-T", "fields",
                        "-e", "frame.number").split()
    assert _tshark(pcap, table, "-Y", "isakmp && isakmp.exchangetype != 34 && !isakmp.enc.decrypted") == ""
    verbose = _tshark(pcap, table, "-Y", "isakmp && isakmp.exchangetype != 34", "-V")
    # IKE_AUTH, charon's rekey + Delete, A's rekey + Delete and DPD, the sync, charon's rekey + Delete, B's DPD,
    # rekey + Delete, B's IKE Delete: 13 exchanges, each message's ICV correct
    assert len(encrypted) == 13 * 2 and verbose.count("[correct]") == 13 * 2 and "incorrect" not in verbose
    rows = _tshark(pcap, table, "-Y", "isakmp.exchangetype == 37 && isakmp.messageid == 0", "-T", "fields",
                   "-e", "ip.src", "-e", "ip.dst", "-e", "isakmp.flags", "-e", "isakmp.notify.msgtype",
                   "-e", "isakmp.notify.data", "-e", "isakmp.notify.data.ha.nonce_data",
                   "-e", "isakmp.notify.data.ha.expected_send_req_message_id",
                   "-e", "isakmp.notify.data.ha.expected_recv_req_message_id").splitlines()
    # B's request (flags 0: the original responder's request) and charon's response (0x28: Initiator, Response)
    assert rows == [
        f"{CLUSTER_IP}\t{CHARON_IP}\t0x00\t16422\t{nonce.hex()}0000000300000004\t0x{nonce.hex()}\t0x00000003\t0x00000004",
        f"{CHARON_IP}\t{CLUSTER_IP}\t0x28\t16422\t{nonce.hex()}0000000400000003\t0x{nonce.hex()}\t0x00000004\t0x00000003"]
    assert "Notify Message Type: IKEV2_MESSAGE_ID_SYNC (16422)" in _tshark(
        pcap, table, "-Y", "isakmp.exchangetype == 37 && isakmp.messageid == 0", "-V")
    # ESP: each CHILD_SA's sequence numbers on the wire; B's on A's CHILD_SA jump by the margin
    esp = _tshark(pcap, table, "-Y", "esp", "-T", "fields", "-e", "ip.src", "-e", "esp.spi",
                  "-e", "esp.sequence").splitlines()
    expected = []
    for spi_out, spi_in, seqs_out, seqs_in in (
            (first.spi_out, first.spi_in, range(1, 4), range(1, 4)),
            (third.spi_out, third.spi_in, range(1, 4), range(1, 4)),
            (third.spi_out, third.spi_in, range(4 + SEQ_MARGIN, 7 + SEQ_MARGIN), range(4, 7)),
            (fifth.spi_out, fifth.spi_in, range(1, 4), range(1, 4))):
        expected += [f"{CLUSTER_IP}\t0x{spi_out.hex()}\t{k}" for k in seqs_out]
        expected += [f"{CHARON_IP}\t0x{spi_in.hex()}\t{k}" for k in seqs_in]
    assert esp == expected



@pytest.mark.interop
def test_failover_with_charons_request_in_flight(charon_ns: Charon) -> None:
    """A fails with charon's CHILD rekey request (ID 2) unanswered: charon answers B's synchronization with P2 = 3,
    one past the request in flight (``ike_mid_sync.c``: ``has_active_tasks``), and re-queues the rekey
    (``task_manager.reset``) without sending it; the next ``swanctl --rekey`` starts it on ID 3, which B expects and
    answers. B's own next request carries M2 = 1 and charon answers it."""
    charon = charon_ns
    start = len(charon.log())
    charon.mark_log()
    a = gateway("a2")
    a_plane = plane_for(a, "a2")
    with tunnel(a_plane, charon) as t, UdpDriver(a, CLUSTER_500, natt=CLUSTER_4500, on_event=a_plane.on_event,
                                                 on_esp=t.on_esp) as drv:
        t.drv = drv
        init = Swanctl(charon, "--initiate", "--child", "ha", "--ike", "ha", "--timeout", "5")
        evs = drive_until(drv, 0, lambda e: isinstance(e, ev.ChildSaInstalled | ev.IkeSaDeleted))
        assert "initiate completed successfully" in init.finish(drv)
        est = next(e for e in evs if isinstance(e, ev.IkeSaEstablished))
        first = next(e for e in evs if isinstance(e, ev.ChildSaInstalled))
        unique = charon_ike(charon, est.spi_i, est.spi_r).raw["uniqueid"]
        run_step(drv, lambda: a.check_liveness(est.spi_r, drv.now()), completed("dpd"))  # A's ID 0
        record = a.ha_record(est.spi_r)
        assert record is not None and (record.next_message_id, record.peer_message_id) == (1, 2)

        # 1. A crashes; charon's rekey request reaches nobody (the cluster's address, no member holding it)
        charon.mark_log()
        down = Down()
        drv.daemon = down
        rekey = Swanctl(charon, "--rekey", "--child", "ha")
        deadline = drv.now() + STEP
        while not down.lost and drv.now() < deadline:
            drv.step(0.02)
        rekey.finish(drv)
        assert [(src, dst) for _, src, dst in down.lost] == [(CHARON_4500, CLUSTER_4500)]
        lost = parse_message(down.lost[0][0])
        assert (lost.exchange_type, lost.message_id, lost.is_response) == (ExchangeType.CREATE_CHILD_SA, 2, False)

        # 2. B takes over: M1 = 1, P1 = 2; charon answers P2 = 3 (its request 2 in flight), M2 = 1
        sent, received, mark = len(drv.sent), len(drv.received), len(drv.events)
        b = take_over(drv, t, record, a_plane, "b2")
        evs = drive_until(drv, mark, lambda e: isinstance(e, ev.MessageIdsSynchronized))
        assert names(evs) == ["IkeSaActivated", "ChildSaActivated", "ExchangeStarted(mid_sync)",
                              "ExchangeCompleted(mid_sync)", "MessageIdsSynchronized"], [repr(e) for e in evs]
        sa = b.sas[est.spi_r]
        (request,) = list(drv.sent)[sent:]
        (response,) = list(drv.received)[received:]
        ((_, asked),), ((_, answer),) = notifies(request.data, sa.protect_out), notifies(response.data, sa.protect_in)
        nonce, m1, p1 = _SYNC.unpack(asked)
        assert (m1, p1) == (1, 2) and _SYNC.unpack(answer) == (nonce, 3, 1)
        log = charon.log_since_mark()
        assert "generating CREATE_CHILD_SA request 2 [ N(REKEY_SA) SA No TSi TSr ]" in log, log[-3000:]
        logged = [tuple(int(x) for x in m.groups()) for m in _MID_SYNC_LOG.finditer(log)]
        assert logged == [(3, p1, 1, m1)] == [(3, 2, 1, 1)]  # "initiating 3[2], responding 1[1]": P2 = 2 + 1
        synced = evs[-1]
        assert isinstance(synced, ev.MessageIdsSynchronized)
        assert (synced.role, synced.next_message_id, synced.peer_message_id, synced.resent) == ("cluster", 1, 3, False)
        # charon does not send the re-queued rekey by itself (nor retransmit ID 2: reset cleared it), 2.5 s > its
        # 2 s retransmission timeout
        drv.run_for(2.5)
        assert headers(list(drv.received)[received:]) == [("INFORMATIONAL", 0, True)]

        # 3. the next command starts charon's queued rekey on ID 3 (P2), then its Delete on 4; B answers both
        charon.mark_log()
        sent, received, mark = len(drv.sent), len(drv.received), len(drv.events)
        rekey = Swanctl(charon, "--rekey", "--child", "ha")
        evs = drive_until(drv, mark, lambda e: isinstance(e, ev.ChildSaDeleted) and e.spi_in == first.spi_in)
        rekey.finish(drv)
        assert names(evs) == ["ChildSaInstalled", "RekeyCompleted", "ChildSaOutboundInstalled", "ChildSaDeleted"]
        second = evs[0]
        assert isinstance(second, ev.ChildSaInstalled) and (second.rekey_of, second.initiator) == (first.spi_in, False)
        assert headers(list(drv.received)[received:]) == [("CREATE_CHILD_SA", 3, False), ("INFORMATIONAL", 4, False)]
        assert headers(list(drv.sent)[sent:]) == [("CREATE_CHILD_SA", 3, True), ("INFORMATIONAL", 4, True)]
        log = charon.log_since_mark()
        for line in ("generating CREATE_CHILD_SA request 3 [ N(REKEY_SA) SA No TSi TSr ]",
                     "parsed CREATE_CHILD_SA response 3 [ SA No TSi TSr ]",
                     "generating INFORMATIONAL request 4 [ D ]", "parsed INFORMATIONAL response 4 [ D ]"):
            assert line in log, (line, log[-4000:])
        # B's next request carries M2 = 1 (a DPD), charon answers it; the same IKE_SA, the new CHILD_SA
        evs = run_step(drv, lambda: b.check_liveness(est.spi_r, drv.now()), completed("dpd"))
        done = evs[-1]
        assert isinstance(done, ev.ExchangeCompleted) and (done.message_id, done.outcome) == (1, "ok")
        views = charon.list_sas()
        assert [(v.connection, v.state, v.spi_i, v.spi_r, v.raw["uniqueid"]) for v in views] == [
            ("ha", "ESTABLISHED", est.spi_i, est.spi_r, unique)]
        assert set(installed(views[0])) == {second.spi_out}
        run_step(drv, lambda: b.delete_ike_sa(est.spi_r, drv.now()), lambda e: isinstance(e, ev.IkeSaDeleted))
        assert charon.list_sas() == []
    bad = charon.problems(charon.log()[start:])
    assert bad == [], "\n".join(bad[:20])


@pytest.mark.interop
def test_aes_gcm_charon_cannot_answer_a_sync_after_it_answered_a_request(charon_ns: Charon) -> None:
    """A strongSwan limitation: with an AEAD IKE proposal (AES-GCM) charon derives each IV from the message ID and
    never uses one twice per direction (``iv_gen_seq.c``: one low and one high use of each value). Once charon has
    answered one of the gateway's requests (A's DPD on ID 0: the high use of 0 after its IKE_AUTH request 1), its
    response to the synchronization, again on ID 0, cannot be encrypted ("encrypting encrypted payload failed, no
    IV or padding", ``encrypted_payload.c``): charon logs the sync but sends nothing, B's request times out and B
    gives the IKE_SA up, while charon still holds it."""
    charon = charon_ns
    charon.mark_log()
    quick = RetransmitPolicy(timeout=0.5, base=1.0, tries=2)
    a = gateway("a3", retransmit=quick)
    a_plane = plane_for(a, "a3")
    with tunnel(a_plane, charon) as t, UdpDriver(a, CLUSTER_500, natt=CLUSTER_4500, on_event=a_plane.on_event,
                                                 on_esp=t.on_esp) as drv:
        t.drv = drv
        init = Swanctl(charon, "--initiate", "--child", "ha", "--ike", "ha-gcm", "--timeout", "5")
        evs = drive_until(drv, 0, lambda e: isinstance(e, ev.ChildSaInstalled | ev.IkeSaDeleted))
        assert "initiate completed successfully" in init.finish(drv)
        est = next(e for e in evs if isinstance(e, ev.IkeSaEstablished))
        assert any(isinstance(e, ev.HaSyncNegotiated) and e.message_id_sync for e in evs)
        view = charon_ike(charon, est.spi_i, est.spi_r)
        assert view.raw["encr-alg"] == "AES_GCM_16"
        charon_id, child_id = str(view.raw["uniqueid"]), view.children[0].raw["uniqueid"]
        run_step(drv, lambda: a.check_liveness(est.spi_r, drv.now()), completed("dpd"))  # charon answers on ID 0
        record = a.ha_record(est.spi_r)
        assert record is not None and (record.next_message_id, record.peer_message_id) == (1, 2)
        drv.run_for(0.5)  # charon checks the IKE_SA in (a request on ID 0 while it is out would be "already processing")
        charon.mark_log()
        sent, received, mark = len(drv.sent), len(drv.received), len(drv.events)
        b = take_over(drv, t, record, a_plane, "b3", quick)
        evs = drive_until(drv, mark, lambda e: isinstance(e, ev.IkeSaDeleted))
        assert names(evs) == ["IkeSaActivated", "ChildSaActivated", "ExchangeStarted(mid_sync)", "Retransmitted",
                              "Retransmitted", "ExchangeCompleted(mid_sync)", "ChildSaDeleted", "IkeSaDeleted"]
        done, gone = evs[5], evs[7]
        assert isinstance(done, ev.ExchangeCompleted) and (done.outcome, done.retransmissions) == ("timeout", 2)
        assert isinstance(gone, ev.IkeSaDeleted) and gone.reason == "timeout"
        assert headers(list(drv.sent)[sent:]) == [("INFORMATIONAL", 0, False)] * 3  # the request and 2 retransmissions
        assert list(drv.received)[received:] == []  # charon never answered
        log = charon.log_since_mark()
        lines = [line.split("] ", 1)[1] for line in log.splitlines()
                 if "MID sync" in line or "INFORMATIONAL" in line and "[ N(" in line or "no IV" in line
                 or "=> DESTROYING" in line]
        assert lines == [
            "parsed INFORMATIONAL request 0 [ N(MSG_ID_SYN) ]",
            "responder requested MID sync: initiating 2[2], responding 1[1]",
            "generating INFORMATIONAL response 0 [ N(MSG_ID_SYN) ]",
            "encrypting encrypted payload failed, no IV or padding",
            f"IKE_SA ha-gcm[{charon_id}] state change: ESTABLISHED => DESTROYING",
            "CHILD_SA ha{" + child_id + "} state change: INSTALLED => DESTROYING"], log[-4000:]
        assert b.ike_sa_spis() == [] and charon.list_sas() == []  # charon destroyed it without a Delete: the
        # failover failed on both ends
