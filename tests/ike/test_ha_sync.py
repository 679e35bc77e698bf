"""RFC 6311 high availability in the sans-IO core: the support notifies in IKE_AUTH, a cluster member (B) taking an
IKE_SA over from another (A) with ``activate_ike_sa``, and the INFORMATIONAL on message ID 0 that synchronizes
message IDs (and replay counters) with the client, as strongSwan's ``ike_mid_sync.c`` answers it; exact messages,
message IDs and notify data."""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass

import pytest
from ikepeers import CLIENT, CLIENT_ID, GATEWAY, GATEWAY_ID, LONG, PSK, Peers, config, names

from ikesim.errors import LocalProtocolError
from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy
from ikesim.ike.daemon import IkeDaemon
from ikesim.ike.ha_state import IkeSaRecord
from ikesim.ike.ha_sync import parse_sync, sync_data
from ikesim.ike.state import ChildSaState
from ikesim.rng import Rng
from ikesim.types import Address
from ikesim.wire.codec import parse_message, unprotect_message
from ikesim.wire.iana import ExchangeType, NotifyType, ProtocolId
from ikesim.wire.message import Message
from ikesim.wire.payloads import NotifyPayload

SEED = 3
SYNC = NotifyType.IKEV2_MESSAGE_ID_SYNC
REPLAY = NotifyType.IPSEC_REPLAY_COUNTER_SYNC
MID_OK = NotifyType.IKEV2_MESSAGE_ID_SYNC_SUPPORTED
REPLAY_OK = NotifyType.IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED
HA_NOTIFIES = (MID_OK, REPLAY_OK, SYNC, REPLAY)
C500, G500 = Address(CLIENT.ip, 500), Address(GATEWAY.ip, 500)
RTX = 4.0
"""The first retransmission wait (RetransmitPolicy default, no jitter)."""


def _policy(*, mid: bool = True, replay: bool = False, dpd: float = 0.0) -> IkePolicy:
    return IkePolicy(lifetime=LONG, message_id_sync=mid, replay_counter_sync=replay, dpd_delay=dpd)


@dataclass
class _Cluster:
    """A client, the cluster members A (active first) and B (takes over), and the links client-A and client-B."""

    client: IkeDaemon
    a: IkeDaemon
    b: IkeDaemon
    old: Peers
    new: Peers

    def establish(self) -> tuple[bytes, bytes, bytes]:
        """IKE_SA and CHILD_SA with A at t=0: (client IKE SPI, A's IKE SPI, client CHILD spi_in)."""
        child, _ = self.old.establish(0.0)
        (cspi,) = self.client.ike_sa_spis()
        (aspi,) = self.a.ike_sa_spis()
        return cspi, aspi, child


def _cluster(client: IkePolicy | None = None, gateway: IkePolicy | None = None) -> _Cluster:
    """Client 10.0.0.1 and two gateway daemons on 10.0.0.2 with the same configuration and their own Rng streams."""
    rng = Rng(SEED)
    kids = (ChildPolicy(lifetime=LONG),)
    c = IkeDaemon(config("client", CLIENT, GATEWAY, local_id=CLIENT_ID, remote_id=GATEWAY_ID,
                         ike=client or _policy(), children=kids), rng=rng.child("client"))
    a, b = (IkeDaemon(config(n, GATEWAY, None, local_id=GATEWAY_ID, remote_id=None, ike=gateway or _policy(),
                             children=kids), rng=rng.child(n)) for n in ("a", "b"))
    return _Cluster(c, a, b, Peers(c, a), Peers(c, b))


def _nonce() -> bytes:
    """B's first synchronization nonce: the first 4 bytes of its ``mid_sync`` Rng stream, drawn independently here."""
    return Rng(SEED, "b", "mid_sync").bytes(4)


def _open(d: IkeDaemon, data: bytes) -> Message:
    """Decrypt an IKE message of one of *d*'s IKE_SAs, sent by either end (header fields kept)."""
    outer = parse_message(data)
    (sa,) = [s for s in d.sas.values() if s.spi_i == outer.spi_i and s.local_spi in (outer.spi_i, outer.spi_r)]
    for prot in (sa.protect_in, sa.protect_out):
        try:
            return unprotect_message(data, prot, outer=outer)
        except Exception:  # noqa: BLE001 - the other direction's keys
            continue
    raise AssertionError("cannot decrypt")


def _head(msg: Message) -> tuple[ExchangeType, int, bool, bytes, bytes]:
    return msg.exchange_type, msg.message_id, msg.is_response, msg.spi_i, msg.spi_r


def _notes(msg: Message, kinds: tuple[NotifyType, ...] | None = None) -> list[NotifyPayload]:
    return [n for n in msg.get_all(NotifyPayload) if kinds is None or n.notify_type in kinds]


def _sync(nonce: bytes, send: int, recv: int) -> NotifyPayload:
    return NotifyPayload(SYNC, data=nonce + struct.pack("!II", send, recv))


def _mids(d: IkeDaemon, spi: bytes) -> tuple[int, int]:
    """(next_message_id, peer_message_id) of *d*'s IKE_SA *spi*."""
    info = d.ike_sa_info(spi)
    return info.next_message_id, info.peer_message_id


def _of(events: list[ev.IkeEvent], kind: type[ev.IkeEvent]) -> list[ev.IkeEvent]:
    return [e for e in events if isinstance(e, kind)]


def _exchanges(events: list[ev.IkeEvent]) -> list[tuple[str, str, int, str]]:
    """(started|completed, purpose, message ID, outcome) of every exchange of ours, in order."""
    out = []
    for e in events:
        if isinstance(e, ev.ExchangeStarted):
            out.append(("started", e.purpose, e.message_id, ""))
        elif isinstance(e, ev.ExchangeCompleted):
            out.append(("completed", e.purpose, e.message_id, e.outcome))
    return out


def _synced(e: ev.IkeEvent) -> tuple[str, int, int, int, bool]:
    assert isinstance(e, ev.MessageIdsSynchronized)
    return e.role, e.next_message_id, e.peer_message_id, e.replay_delta, e.resent


def test_sync_notify_data_codec() -> None:
    """IKEV2_MESSAGE_ID_SYNC data: Nonce Data (4) | EXPECTED_SEND_REQ_MESSAGE_ID | EXPECTED_RECV_REQ_MESSAGE_ID,
    32 bits each (RFC 6311, the IKEV2_MESSAGE_ID_SYNC notification); anything but 12 octets does not parse."""
    data = sync_data(b"\x01\x02\x03\x04", 5, 2**32 + 3)
    assert data == bytes.fromhex("01020304" "00000005" "00000003")
    assert parse_sync(data) == (b"\x01\x02\x03\x04", 5, 3)
    assert [parse_sync(data[:n]) for n in (0, 4, 11)] == [None, None, None] and parse_sync(data + b"\x00") is None


# ---------------------------------------------------------------------- negotiation (RFC 6311)
@pytest.mark.parametrize(("client", "gateway", "in_request", "in_response", "negotiated"), [
    ((True, False), (True, False), [MID_OK], [MID_OK], (True, False)),
    ((True, True), (True, True), [MID_OK, REPLAY_OK], [MID_OK, REPLAY_OK], (True, True)),
    ((True, True), (True, False), [MID_OK, REPLAY_OK], [MID_OK], (True, False)),
    ((False, True), (True, True), [REPLAY_OK], [REPLAY_OK], (False, True)),
    ((True, False), (False, False), [MID_OK], [], (False, False)),
    ((False, False), (True, True), [], [], (False, False)),
])
def test_support_notifies_in_the_first_ike_auth(client: tuple[bool, bool], gateway: tuple[bool, bool],
                                                in_request: list[NotifyType], in_response: list[NotifyType],
                                                negotiated: tuple[bool, bool]) -> None:
    """The first IKE_AUTH request carries the configured N(*_SUPPORTED) (empty data); the response answers each one
    offered that the gateway is configured for; a feature is used only if both sent its notify (RFC 6311;
    strongSwan ``ike_auth.c``)."""
    cl = _cluster(_policy(mid=client[0], replay=client[1]), _policy(mid=gateway[0], replay=gateway[1]))
    c, a, p = cl.client, cl.a, cl.old
    c.initiate("vpn", 0.0)
    p.deliver(c, 0.0)
    p.deliver(a, 0.0)
    (request,) = p.deliver(c, 0.0)
    (response,) = p.deliver(a, 0.0)
    req, resp = _open(a, request.data), _open(c, response.data)
    (cspi,), (aspi,) = c.ike_sa_spis(), a.ike_sa_spis()
    assert _head(req) == (ExchangeType.IKE_AUTH, 1, False, cspi, aspi)
    assert _head(resp) == (ExchangeType.IKE_AUTH, 1, True, cspi, aspi)
    assert _notes(req, HA_NOTIFIES) == [NotifyPayload(t) for t in in_request]
    assert _notes(resp, HA_NOTIFIES) == [NotifyPayload(t) for t in in_response]
    for d, spi in ((c, cspi), (a, aspi)):
        sa = d.sas[spi]
        assert (sa.mid_sync, sa.replay_sync) == negotiated
        got = [(e.spi_i, e.spi_r, e.message_id_sync, e.replay_counter_sync)
               for e in _of(cl.old.events(d), ev.HaSyncNegotiated)]
        assert got == ([(cspi, aspi, *negotiated)] if any(negotiated) else [])


def test_rekeyed_ike_sa_inherits_message_id_sync_and_is_taken_over_from_message_id_0() -> None:
    """An IKE_SA rekey carries no support notify; the new IKE_SA keeps mid_sync/replay_sync (negotiated once in
    IKE_AUTH; strongSwan ``ike_sa.c`` ``inherit_pre`` copies the extensions) and, taken over with its message IDs
    at 0/0, synchronizes as nonce | 0 | 0."""
    cl = _cluster(_policy(replay=True), _policy(replay=True))
    c, a, b = cl.client, cl.a, cl.b
    cspi, aspi, _ = cl.establish()
    c.rekey_ike_sa(cspi, 1.0)
    (rekey,) = cl.old.deliver(c, 1.0)
    msg = _open(a, rekey.data)
    assert _head(msg) == (ExchangeType.CREATE_CHILD_SA, 2, False, cspi, aspi) and _notes(msg, HA_NOTIFIES) == []
    cl.old.settle(1.0)
    (new_c,), (new_a,) = c.ike_sa_spis(), a.ike_sa_spis()
    assert new_c not in (cspi, aspi) and new_a not in (cspi, aspi)
    assert (c.sas[new_c].spi_i, c.sas[new_c].spi_r) == (a.sas[new_a].spi_i, a.sas[new_a].spi_r) == (new_c, new_a)
    for sa in (c.sas[new_c], a.sas[new_a]):
        assert (sa.mid_sync, sa.replay_sync) == (True, True)
    assert _mids(c, new_c) == (0, 0) and _mids(a, new_a) == (0, 0)
    record = a.ha_record(new_a)
    assert record is not None and (record.spi_i, record.spi_r, record.mid_sync, record.replay_sync) == (
        new_c, new_a, True, True)
    cl.old.events(c)
    assert b.activate_ike_sa(record, 5.0) == new_a
    (req,) = cl.new.deliver(b, 5.0)
    msg = _open(c, req.data)
    assert _head(msg) == (ExchangeType.INFORMATIONAL, 0, False, new_c, new_a)
    assert _notes(msg) == [_sync(_nonce(), 0, 0)]  # no replay_delta asked: no IPSEC_REPLAY_COUNTER_SYNC
    (resp,) = cl.new.deliver(c, 5.0)
    assert _notes(_open(b, resp.data)) == [_sync(_nonce(), 0, 0)]
    assert [_synced(e) for e in _of(cl.new.events(c), ev.MessageIdsSynchronized)] == [("peer", 0, 0, 0, False)]
    # the first request each way after it: message ID 0 (B's DPD is an INFORMATIONAL on 0 that is no sync)
    b.check_liveness(new_a, 6.0)
    c.check_liveness(new_c, 6.0)
    cl.new.settle(6.0)
    assert _exchanges(cl.new.events(c)) == [("started", "dpd", 0, ""), ("completed", "dpd", 0, "ok")]
    assert _exchanges(cl.new.events(b))[-2:] == [("started", "dpd", 0, ""), ("completed", "dpd", 0, "ok")]
    assert _mids(c, new_c) == (1, 1) and _mids(b, new_a) == (1, 1)


# ---------------------------------------------------------------------- takeover and synchronization (RFC 6311 §5.1)
def _busy_ike_sa(cl: _Cluster) -> tuple[bytes, bytes, bytes]:
    """Established with A, then a client CHILD rekey (message IDs 2, 3 with its Delete) and a DPD of A's (0):
    the client's next request is 4, A's 1. Returns (client IKE SPI, A's IKE SPI, client's CHILD spi_in)."""
    c, a = cl.client, cl.a
    cspi, aspi, child = cl.establish()
    c.rekey_child_sa(child, 1.0)
    cl.old.settle(1.0)
    a.check_liveness(aspi, 2.0)
    cl.old.settle(2.0)
    assert _mids(c, cspi) == (4, 1) and _mids(a, aspi) == (1, 4)
    (child,) = c.child_sa_spis()
    cl.old.events(c), cl.old.events(a)
    return cspi, aspi, child


def _gateway_dpds(cl: _Cluster, count: int) -> tuple[bytes, bytes]:
    """Establish with A and let A send *count* DPDs (message IDs 0..count-1), all answered."""
    cspi, aspi, _ = cl.establish()
    for i in range(count):
        cl.a.check_liveness(aspi, 1.0 + i)
        cl.old.settle(1.0 + i)
    assert _mids(cl.client, cspi) == (2, count) and _mids(cl.a, aspi) == (count, 2)
    cl.old.events(cl.client), cl.old.events(cl.a)
    return cspi, aspi


@pytest.mark.parametrize("replay", [False, True])
def test_takeover_synchronizes_message_ids_then_both_ends_go_on(replay: bool) -> None:
    """B takes A's IKE_SA over at t=5: INFORMATIONAL(message ID 0) with N(IKEV2_MESSAGE_ID_SYNC)(nonce | M1=1 |
    P1=4) and, with replay counter sync negotiated, N(IPSEC_REPLAY_COUNTER_SYNC)(1000); the client echoes the nonce
    with P2=4, M2=1 on message ID 0 (RFC 6311 §5.1); a rekey of the client's (4, 5) and a DPD
    of B's (1) follow on B."""
    cl = _cluster(_policy(replay=replay), _policy(replay=replay))
    c, a, b = cl.client, cl.a, cl.b
    cspi, aspi, child = _busy_ike_sa(cl)
    record = a.ha_record(aspi)
    assert record is not None
    assert (record.connection, record.initiator, record.spi_i, record.spi_r, record.local, record.peer) == (
        "vpn", False, cspi, aspi, G500, C500)
    assert (record.next_message_id, record.peer_message_id, record.mid_sync, record.replay_sync) == (1, 4, True, replay)
    (old_pair,) = [c_ for c_ in a.children.values() if c_.state is ChildSaState.REKEYED]  # lingers until 6 s
    assert [(r.spi_in, r.spi_out, r.state, r.outbound, r.replaced_by) for r in record.children] == [
        (old_pair.spi_in, old_pair.spi_out, ChildSaState.REKEYED, False, a.child_sa_spis()[0]),
        (a.child_sa_spis()[0], child, ChildSaState.INSTALLED, True, b"")]
    assert b.activate_ike_sa(record, 5.0, replay_delta=1000) == aspi
    assert b.children[old_pair.spi_in].state is ChildSaState.REKEYED and b.timers.deadline(("linger", old_pair.spi_in)) == 10.0
    (req,) = cl.new.deliver(b, 5.0)
    assert (req.src, req.dst) == (G500, C500)
    msg = _open(c, req.data)
    assert _head(msg) == (ExchangeType.INFORMATIONAL, 0, False, cspi, aspi)
    assert not msg.from_original_initiator
    delta = [NotifyPayload(REPLAY, data=(1000).to_bytes(4, "big"))] if replay else []
    assert _notes(msg) == [_sync(_nonce(), 1, 4), *delta]
    assert len(msg.payloads) == 1 + len(delta)
    (resp,) = cl.new.deliver(c, 5.0)
    assert (resp.src, resp.dst) == (C500, G500)
    answer = _open(b, resp.data)
    assert _head(answer) == (ExchangeType.INFORMATIONAL, 0, True, cspi, aspi)
    assert answer.payloads == (_sync(_nonce(), 4, 1),)
    assert cl.new.deliver(b, 5.0) == [] and cl.new.deliver(c, 5.0) == []
    gb, gc = cl.new.events(b), cl.new.events(c)
    assert names(gb) == ["IkeSaActivated", "ChildSaActivated", "ChildSaActivated", "ExchangeStarted",
                         "ExchangeCompleted", "MessageIdsSynchronized"]
    act = gb[0]
    assert isinstance(act, ev.IkeSaActivated)
    assert (act.spi_i, act.spi_r, act.initiator, act.local, act.peer, act.next_message_id, act.peer_message_id,
            act.child_count) == (cspi, aspi, False, G500, C500, 1, 4, 2)
    gb = [gb[0], *gb[2:]]
    installed = gb[1]
    (a_child,) = a.child_sa_spis()
    ac = a.children[a_child]
    assert isinstance(installed, ev.ChildSaActivated)
    assert (installed.child, installed.spi_in, installed.spi_out, installed.outbound, installed.encr_key_in,
            installed.encr_key_out) == ("net", a_child, child, True, ac.encr_key_in, ac.encr_key_out)
    assert _exchanges(gb) == [("started", "mid_sync", 0, ""), ("completed", "mid_sync", 0, "ok")]
    assert _synced(gb[4]) == ("cluster", 1, 4, 1000 if replay else 0, False)
    assert [_synced(e) for e in gc] == [("peer", 4, 1, 1000 if replay else 0, False)]
    assert (gc[0].spi_i, gc[0].spi_r) == (cspi, aspi)
    assert _mids(b, aspi) == (1, 4) and _mids(c, cspi) == (4, 1)
    # the client's CHILD rekey (4) and its Delete (5), then B's DPD (1), all answered by B
    c.rekey_child_sa(child, 6.0)
    cl.new.settle(6.0)
    b.check_liveness(aspi, 7.0)
    cl.new.settle(7.0)
    gc, gb = cl.new.events(c), cl.new.events(b)
    assert _exchanges(gc) == [("started", "rekey_child", 4, ""), ("completed", "rekey_child", 4, "ok"),
                              ("started", "delete_child", 5, ""), ("completed", "delete_child", 5, "ok")]
    assert _exchanges(gb) == [("started", "dpd", 1, ""), ("completed", "dpd", 1, "ok")]
    assert _of(gb + gc, ev.MessageDropped) == []
    assert _mids(c, cspi) == (6, 2) and _mids(b, aspi) == (2, 6)
    (c_child,), (b_child,) = c.child_sa_spis(), b.child_sa_spis()
    assert c_child != child and c.children[c_child].spi_out == b_child and b.children[b_child].spi_out == c_child


def _take_over(cl: _Cluster, record: IkeSaRecord, now: float, *, replay_delta: int = 0) -> tuple[Message, Message]:
    """B activates *record* at *now*; its sync request reaches the client and the answer reaches B. Returns both,
    decrypted."""
    assert cl.b.activate_ike_sa(record, now, replay_delta=replay_delta) == record.local_spi
    (req,) = cl.new.deliver(cl.b, now)
    (resp,) = cl.new.deliver(cl.client, now)
    return _open(cl.client, req.data), _open(cl.b, resp.data)


def test_unreplicated_rekey_answered_by_a_the_client_is_ahead_and_b_follows() -> None:
    """A answered the client's CHILD rekey (message ID n=2) and the Delete of the old CHILD_SA (n+1=3) after the
    last replication: B expects P1=n, the client answers P2=n+2=4 (its next message ID; P2 = n+1 if only the
    rekey had been answered, see the next test) and M2=0, and B accepts the client's next request on 4.

    B never heard of the CHILD_SA pair the rekey made, and still has the pair the client deleted on A. The client's
    rekey of its pair at t=7 is answered N(CHILD_SA_NOT_FOUND) with the pair's SPI (RFC 7296 §2.25, as strongSwan's
    ``child_rekey.c``); the client removes that pair and creates one anew (RFC 7296 §2.25.1: trigger ``recreate``),
    on 6. B's stale pair stays until B rekeys it (t=8): the client answers CHILD_SA_NOT_FOUND, B removes it and does
    not recreate (it has a ``net`` pair); then both ends hold the same single pair. From the takeover to the
    recreate B sends its ESP with the stale pair, which the client deleted: lost (what A did after the last
    replication is not known to B, ``ike.ha_state``)."""
    cl = _cluster()
    c, a, b = cl.client, cl.a, cl.b
    cspi, aspi, old = cl.establish()
    record = a.ha_record(aspi)
    assert record is not None and (record.next_message_id, record.peer_message_id) == (0, 2)
    (stale,) = a.child_sa_spis()
    c.rekey_child_sa(old, 1.0)
    cl.old.settle(1.0)
    assert _exchanges(cl.old.events(c)) == [
        ("started", "rekey_child", 2, ""), ("completed", "rekey_child", 2, "ok"),
        ("started", "delete_child", 3, ""), ("completed", "delete_child", 3, "ok")]
    (made,) = c.child_sa_spis()
    made_out = c.children[made].spi_out
    assert a.child_sa_spis() == [made_out] and stale != made_out
    req, resp = _take_over(cl, record, 5.0)
    assert req.payloads == (_sync(_nonce(), 0, 2),)
    assert resp.payloads == (_sync(_nonce(), 4, 0),)
    assert _mids(b, aspi) == (0, 4) and _mids(c, cspi) == (4, 0)
    assert b.child_sa_spis() == [stale] and (b.children[stale].spi_out, b.children[stale].outbound) == (old, True)
    cl.new.events(b), cl.new.events(c)
    c.check_liveness(cspi, 6.0)
    cl.new.settle(6.0)
    assert _exchanges(cl.new.events(c)) == [("started", "dpd", 4, ""), ("completed", "dpd", 4, "ok")]
    assert _of(cl.new.events(b), ev.MessageDropped) == []
    # the client rekeys the pair B never heard of
    c.rekey_child_sa(made, 7.0)
    (rq,) = cl.new.deliver(c, 7.0)
    assert _head(_open(b, rq.data)) == (ExchangeType.CREATE_CHILD_SA, 5, False, cspi, aspi)
    (rs,) = cl.new.deliver(b, 7.0)
    answer = _open(c, rs.data)
    assert _head(answer) == (ExchangeType.CREATE_CHILD_SA, 5, True, cspi, aspi)
    assert answer.payloads == (NotifyPayload(NotifyType.CHILD_SA_NOT_FOUND, protocol=ProtocolId.ESP, spi=made),)
    cl.new.settle(7.0)
    gc, gb = cl.new.events(c), cl.new.events(b)
    assert _exchanges(gc) == [("started", "rekey_child", 5, ""), ("completed", "rekey_child", 5, "CHILD_SA_NOT_FOUND"),
                              ("started", "create_child", 6, ""), ("completed", "create_child", 6, "ok")]
    assert [(e.purpose, e.reason) for e in _of(gc, ev.ExchangeStarted)] == [("rekey_child", ""),
                                                                           ("create_child", "recreate")]
    assert [(e.spi_in, e.reason) for e in _of(gc, ev.ChildSaDeleted)] == [(made, "deleted_by_peer")]
    assert [(e.case, e.spi, e.spi_out) for e in _of(gb, ev.ExchangeCollision)] == [("rekey_of_unknown", b"", made)]
    assert [(e.notify, e.message_id) for e in _of(gb, ev.ErrorNotifySent)] == [("CHILD_SA_NOT_FOUND", 5)]
    (fresh,) = c.child_sa_spis()
    fresh_out = c.children[fresh].spi_out
    assert b.child_sa_spis() == [stale, fresh_out] and b.children[fresh_out].spi_out == fresh
    assert (b.children[stale].outbound, b.children[fresh_out].outbound) == (False, True)
    # B's stale pair: once the client's old inbound SA stopped lingering (5 s after its rekey; before that it is
    # TEMPORARY_FAILURE), B's rekey of it is answered CHILD_SA_NOT_FOUND and it goes
    assert c.get_timer() == 6.0
    c.handle_timer(6.0)
    assert [(e.spi_in, e.reason) for e in _of(cl.new.events(c), ev.ChildSaDeleted)] == [(old, "rekeyed")]
    b.rekey_child_sa(stale, 8.0)
    cl.new.settle(8.0)
    gc, gb = cl.new.events(c), cl.new.events(b)
    assert _exchanges(gb) == [("started", "rekey_child", 0, ""), ("completed", "rekey_child", 0, "CHILD_SA_NOT_FOUND")]
    assert [(e.spi_in, e.reason) for e in _of(gb, ev.ChildSaDeleted)] == [(stale, "deleted_by_peer")]
    assert [(e.notify, e.message_id) for e in _of(gc, ev.ErrorNotifySent)] == [("CHILD_SA_NOT_FOUND", 0)]
    assert b.child_sa_spis() == [fresh_out] and c.child_sa_spis() == [fresh]
    assert _mids(c, cspi) == (7, 1) and _mids(b, aspi) == (1, 7)


def test_unreplicated_create_child_answered_by_a_gives_p2_n_plus_1() -> None:
    """A answered the client's CREATE_CHILD_SA for a second pair (n=2) after the last replication, nothing else:
    P1=2, P2=n+1=3; B never heard of that pair (it is taken over with the first one only)."""
    cl = _cluster()
    c, a, b = cl.client, cl.a, cl.b
    cspi, aspi, first = cl.establish()
    record = a.ha_record(aspi)
    assert record is not None
    c.create_child_sa(cspi, "net", 1.0)
    cl.old.settle(1.0)
    assert _exchanges(cl.old.events(c)) == [("started", "create_child", 2, ""), ("completed", "create_child", 2, "ok")]
    req, resp = _take_over(cl, record, 5.0)
    assert (req.payloads, resp.payloads) == ((_sync(_nonce(), 0, 2),), (_sync(_nonce(), 3, 0),))
    assert _mids(b, aspi) == (0, 3) and _mids(c, cspi) == (3, 0)
    assert len(c.child_sa_spis()) == 2 and b.child_sa_spis() == [c.children[first].spi_out]


# ---------------------------------------------------------------------- the peer's request in flight
def test_client_rekey_in_flight_is_resent_under_p2_and_completes_on_b() -> None:
    """The client's CHILD rekey (message ID 2) went to A, which died: B's sync (M1=0, P1=2) finds it in flight.
    The client answers P2=3 (its next message ID, the request in flight counted; strongSwan ``ike_mid_sync.c``:
    ``init + 1`` with an active task), sends the same payloads again sealed under 3 (Retransmitted ``mid_sync``,
    attempt 0, its retransmission schedule restarted), B answers it, and the rekey and the Delete (4) complete."""
    cl = _cluster()
    c, a, b = cl.client, cl.a, cl.b
    cspi, aspi, old = cl.establish()
    record = a.ha_record(aspi)
    assert record is not None
    c.rekey_child_sa(old, 1.0)
    (lost,) = c.datagrams_to_send(1.0)  # to the dead A
    first = _open(c, lost.data)
    assert _head(first) == (ExchangeType.CREATE_CHILD_SA, 2, False, cspi, aspi)
    cl.new.events(c)
    assert b.activate_ike_sa(record, 5.0) == aspi
    (req,) = cl.new.deliver(b, 5.0)
    assert _open(c, req.data).payloads == (_sync(_nonce(), 0, 2),)
    answer, again = cl.new.deliver(c, 5.0)
    assert (answer.src, answer.dst, again.src, again.dst) == (C500, G500, C500, G500)
    assert _open(b, answer.data).payloads == (_sync(_nonce(), 3, 0),)
    resent = _open(b, again.data)
    assert _head(resent) == (ExchangeType.CREATE_CHILD_SA, 3, False, cspi, aspi)
    assert resent.payloads == first.payloads and again.data != lost.data
    gc = cl.new.events(c)
    assert names(gc) == ["Retransmitted", "MessageIdsSynchronized"]
    rtx = gc[0]
    assert isinstance(rtx, ev.Retransmitted)
    assert (rtx.exchange, rtx.purpose, rtx.message_id, rtx.attempt, rtx.reason) == (
        "CREATE_CHILD_SA", "rekey_child", 3, 0, "mid_sync")
    assert _synced(gc[1]) == ("peer", 3, 0, 0, True)  # the resent request's message ID, P2
    assert c.get_timer() == 5.0 + RTX  # the retransmission schedule starts again at the resend
    cl.new.settle(5.0)
    gc, gb = cl.new.events(c), cl.new.events(b)
    assert _exchanges(gc) == [("completed", "rekey_child", 3, "ok"), ("started", "delete_child", 4, ""),
                              ("completed", "delete_child", 4, "ok")]
    assert [e.retransmissions for e in _of(gc, ev.ExchangeCompleted)] == [0, 0]
    assert _synced(_of(gb, ev.MessageIdsSynchronized)[0]) == ("cluster", 0, 3, 0, False)
    assert _of(gb + gc, ev.MessageDropped) == []
    assert _mids(c, cspi) == (5, 0) and _mids(b, aspi) == (0, 5)
    (new,) = c.child_sa_spis()
    assert new != old and b.child_sa_spis() == [c.children[new].spi_out]
    assert b.children[c.children[new].spi_out].spi_out == new


def test_client_dpd_in_flight_is_resent_under_p2() -> None:
    """An empty INFORMATIONAL (the client's DPD, message ID 2) in flight goes again under P2=3 as any request
    (strongSwan re-queues its ``ike_dpd`` task, ``test_ike_mid_sync.c`` ``test_active``), answered by B."""
    cl = _cluster()
    c, a, b = cl.client, cl.a, cl.b
    cspi, aspi, _ = cl.establish()
    record = a.ha_record(aspi)
    assert record is not None
    c.check_liveness(cspi, 1.0)
    assert len(c.datagrams_to_send(1.0)) == 1  # lost with A
    cl.new.events(c)
    assert b.activate_ike_sa(record, 5.0) == aspi
    cl.new.deliver(b, 5.0)
    answer, again = cl.new.deliver(c, 5.0)
    assert _open(b, answer.data).payloads == (_sync(_nonce(), 3, 0),)
    resent = _open(b, again.data)
    assert _head(resent) == (ExchangeType.INFORMATIONAL, 3, False, cspi, aspi) and resent.payloads == ()
    cl.new.settle(5.0)
    gc = cl.new.events(c)
    assert [(e.purpose, e.message_id, e.attempt, e.reason) for e in _of(gc, ev.Retransmitted)] == [
        ("dpd", 3, 0, "mid_sync")]
    assert _exchanges(gc) == [("completed", "dpd", 3, "ok")]
    assert [_synced(e) for e in _of(gc, ev.MessageIdsSynchronized)] == [("peer", 3, 0, 0, True)]
    assert _mids(c, cspi) == (4, 0) and _mids(b, aspi) == (0, 4)


def test_m1_above_expected_with_a_request_in_flight_p2_still_counts_it() -> None:
    """The client expects 1 from the gateway and has its DPD (2) in flight; the sync carries M1=2, P1=2. P2 = 3 (one
    more than the highest message ID the client used, RFC 6311 §5.1) and the DPD goes again on 3. strongSwan answers
    P2=2 here (``test_ike_mid_sync.c`` ``test_active``, row {0, 1, 2, 2, 2, 2}: moving its responder ID first re-queues the
    active task, so ``has_active_tasks`` is false) and resends the DPD on 2, an ID it used already."""
    cl = _cluster()
    c, a, b = cl.client, cl.a, cl.b
    cspi, aspi = _gateway_dpds(cl, 1)
    record = a.ha_record(aspi)
    assert record is not None and (record.next_message_id, record.peer_message_id) == (1, 2)
    c.check_liveness(cspi, 3.0)
    c.datagrams_to_send(3.0)  # lost with A
    b.activate_ike_sa(dataclasses.replace(record, next_message_id=2), 5.0)
    (req,) = cl.new.deliver(b, 5.0)
    assert _open(c, req.data).payloads == (_sync(_nonce(), 2, 2),)
    answer, again = cl.new.deliver(c, 5.0)
    assert _open(b, answer.data).payloads == (_sync(_nonce(), 3, 2),)
    assert _head(_open(b, again.data)) == (ExchangeType.INFORMATIONAL, 3, False, cspi, aspi)
    cl.new.settle(5.0)
    assert _exchanges(cl.new.events(c))[-1] == ("completed", "dpd", 3, "ok")
    assert _mids(c, cspi) == (4, 2) and _mids(b, aspi) == (2, 4)


WLAN, LTE, THIRD = "10.0.0.1", "10.0.1.1", "10.0.2.1"


def test_client_mobike_address_update_in_flight_starts_afresh_on_p2() -> None:
    """A MOBIKE INFORMATIONAL (the client's new address list, message ID 2) in flight keeps no payloads to seal
    again: it ends (``mid_sync``) and starts afresh on P2=3 from its work, as strongSwan re-queues an active task
    (``task_manager_v2.c`` ``reset``); B answers it and learns the client's addresses (RFC 4555 §3.6)."""
    ike = IkePolicy(lifetime=LONG, message_id_sync=True, mobike=True)

    def node(name: str, addrs: tuple[str, ...], local_id: str, remote_id: str | None,
             remote: Address | None, rng: Rng) -> IkeDaemon:
        conn = Connection(name="vpn", local_id=local_id, remote_id=remote_id, remote_addr=remote,
                          credentials=Credentials(psk=PSK), ike=ike, children=(ChildPolicy(lifetime=LONG),))
        return IkeDaemon(DaemonConfig(name=name, addresses=tuple(Address(ip) for ip in addrs), connections=(conn,)),
                         rng=rng.child(name))
    rng = Rng(SEED)
    c = node("client", (WLAN, LTE), CLIENT_ID, GATEWAY_ID, GATEWAY, rng)
    a, b = (node(n, (GATEWAY.ip,), GATEWAY_ID, None, None, rng) for n in ("a", "b"))
    cl = _Cluster(c, a, b, Peers(c, a), Peers(c, b))
    cspi, aspi, _ = cl.establish()
    record = a.ha_record(aspi)
    assert record is not None and (record.mobike, record.peer_addresses) == (True, (LTE,))
    c.set_local_addresses([WLAN, LTE, THIRD], 10.0)
    (lost,) = c.datagrams_to_send(10.0)
    assert _head(_open(c, lost.data))[:3] == (ExchangeType.INFORMATIONAL, 2, False)
    cl.new.events(c)
    assert b.activate_ike_sa(record, 11.0) == aspi
    (req,) = cl.new.deliver(b, 11.0)
    c4500, g4500 = Address(WLAN, 4500), Address(GATEWAY.ip, 4500)
    assert (req.src, req.dst) == (g4500, c4500)
    answer, update = cl.new.deliver(c, 11.0)
    assert (answer.src, answer.dst, update.src, update.dst) == (c4500, g4500, c4500, g4500)
    assert _open(b, answer.data).payloads == (_sync(_nonce(), 3, 0),)
    msg = _open(b, update.data)
    assert _head(msg) == (ExchangeType.INFORMATIONAL, 3, False, cspi, aspi)
    assert _notes(msg) == [NotifyPayload(NotifyType.ADDITIONAL_IP4_ADDRESS, data=bytes(map(int, ip.split("."))))
                           for ip in (LTE, THIRD)]
    cl.new.settle(11.0)
    gc = cl.new.events(c)
    assert _exchanges(gc) == [("completed", "mobike", 2, "mid_sync"), ("started", "mobike", 3, ""),
                              ("completed", "mobike", 3, "ok")]
    assert [_synced(e) for e in _of(gc, ev.MessageIdsSynchronized)] == [("peer", 3, 0, 0, True)]
    assert b.sas[aspi].peer_addresses == (LTE, THIRD)
    assert _mids(c, cspi) == (4, 0) and _mids(b, aspi) == (0, 4)


# ---------------------------------------------------------------------- losses
def test_lost_sync_answer_b_retransmits_and_the_client_answers_again_alike() -> None:
    """The client's answer (P2=4, M2=1) is lost: B sends the same bytes again at 5+4 s (RFC 7296 §2.1); the
    client, which kept no cached response (strongSwan ``clear_packets``), answers the repeat anew with the same
    values (M1=1 is not lower than its expected 1; strongSwan ``test_retransmit``); then the client's request on 4
    and B's on 1."""
    cl = _cluster()
    c, a, b = cl.client, cl.a, cl.b
    cspi, aspi, _ = _busy_ike_sa(cl)
    record = a.ha_record(aspi)
    assert record is not None
    assert b.activate_ike_sa(record, 5.0) == aspi
    (req,) = cl.new.deliver(b, 5.0)
    (lost,) = c.datagrams_to_send(5.0)
    assert _open(b, lost.data).payloads == (_sync(_nonce(), 4, 1),)
    assert _mids(c, cspi) == (4, 1) and _mids(b, aspi) == (1, 4)
    assert b.get_timer() == 5.0 + RTX
    b.handle_timer(9.0)
    (again,) = cl.new.deliver(b, 9.0)
    assert again.data == req.data
    (resp,) = cl.new.deliver(c, 9.0)
    assert resp.data != lost.data and _open(b, resp.data).payloads == (_sync(_nonce(), 4, 1),)
    gb, gc = cl.new.events(b), cl.new.events(c)
    assert [(e.purpose, e.message_id, e.attempt, e.reason) for e in _of(gb, ev.Retransmitted)] == [
        ("mid_sync", 0, 1, "timeout")]
    assert [(e.outcome, e.retransmissions) for e in _of(gb, ev.ExchangeCompleted)] == [("ok", 1)]
    assert [_synced(e) for e in _of(gb, ev.MessageIdsSynchronized)] == [("cluster", 1, 4, 0, False)]
    assert [_synced(e) for e in gc] == [("peer", 4, 1, 0, False)] * 2
    c.check_liveness(cspi, 10.0)
    b.check_liveness(aspi, 10.0)
    cl.new.settle(10.0)
    assert _exchanges(cl.new.events(c)) == [("started", "dpd", 4, ""), ("completed", "dpd", 4, "ok")]
    assert _exchanges(cl.new.events(b)) == [("started", "dpd", 1, ""), ("completed", "dpd", 1, "ok")]
    assert _mids(c, cspi) == (5, 2) and _mids(b, aspi) == (2, 5)


def test_sync_request_unanswered_times_out_and_b_closes_the_ike_sa() -> None:
    """No answer at all: B retransmits the sync 5 times (4, 1.8x) and gives the IKE_SA up at 165.1 s after the
    first transmission, as any request (RFC 7296 §2.4)."""
    cl = _cluster()
    b = cl.b
    _, aspi, _ = _busy_ike_sa(cl)
    record = cl.a.ha_record(aspi)
    assert record is not None
    b.activate_ike_sa(record, 5.0)
    (req,) = b.datagrams_to_send(5.0)
    sent: list[tuple[float, bytes]] = []
    gone = 0.0
    while (t := b.get_timer()) is not None:
        b.handle_timer(t)
        sent += [(t, d.data) for d in b.datagrams_to_send(t)]
        if not gone and not b.ike_sa_spis():
            gone = t
    waits = [4.0 * 1.8 ** i for i in range(6)]
    assert [d for _, d in sent] == [req.data] * 5
    assert [t for t, _ in sent] == pytest.approx([5.0 + sum(waits[:i]) for i in range(1, 6)])
    assert gone == pytest.approx(5.0 + sum(waits))
    gb = cl.new.events(b)
    assert [e.attempt for e in _of(gb, ev.Retransmitted)] == [1, 2, 3, 4, 5]
    (done,) = _of(gb, ev.ExchangeCompleted)
    assert (done.purpose, done.message_id, done.outcome, done.retransmissions) == ("mid_sync", 0, "timeout", 5)
    assert [(e.spi_r, e.reason) for e in _of(gb, ev.IkeSaDeleted)] == [(aspi, "timeout")]
    assert b.ike_sa_spis() == [] and b.child_sa_spis() == []


# ---------------------------------------------------------------------- hostile and edge cases
def _dropped(events: list[ev.IkeEvent]) -> list[tuple[str, str, int, Address, Address]]:
    return [(e.reason, e.exchange, e.message_id, e.src, e.dst) for e in _of(events, ev.MessageDropped)]


@pytest.mark.parametrize(("m1", "answered"), [(0, False), (1, True), (7, True)])
def test_sync_with_m1_below_the_expected_message_id_is_ignored(m1: int, answered: bool) -> None:
    """The client expects B's next request on 1: M1=0 is dropped unanswered (a replayed or stale sync; strongSwan
    ``ike_mid_sync.c`` ignores M1 < expected, ``test_sender_too_low``), M1=1 is taken (strongSwan checks ``<``,
    though RFC 6311 §5.1 says lower than or equal), M1=7 moves the client's expectation up to 7 (M2=7)."""
    cl = _cluster()
    c, a, b = cl.client, cl.a, cl.b
    cspi, aspi, _ = _busy_ike_sa(cl)
    record = a.ha_record(aspi)
    assert record is not None
    b.activate_ike_sa(dataclasses.replace(record, next_message_id=m1), 5.0)
    (req,) = cl.new.deliver(b, 5.0)
    assert _open(c, req.data).payloads == (_sync(_nonce(), m1, 4),)
    out = c.datagrams_to_send(5.0)
    gc = cl.new.events(c)
    if not answered:
        assert out == []
        assert _dropped(gc) == [("IKEV2_MESSAGE_ID_SYNC with lower (0) than expected (1) sender message ID",
                                 "INFORMATIONAL", 0, G500, C500)]
        assert _of(gc, ev.MessageIdsSynchronized) == []
        assert _mids(c, cspi) == (4, 1)
        return
    (resp,) = out
    assert _open(b, resp.data).payloads == (_sync(_nonce(), 4, m1),)
    assert [_synced(e) for e in gc] == [("peer", 4, m1, 0, False)]
    b.receive_datagram(resp.data, resp.src, resp.dst, 5.0)
    b.check_liveness(aspi, 6.0)
    cl.new.settle(6.0)
    assert _exchanges(cl.new.events(b))[-2:] == [("started", "dpd", m1, ""), ("completed", "dpd", m1, "ok")]
    assert _mids(c, cspi) == (4, m1 + 1) and _mids(b, aspi) == (m1 + 1, 4)


@pytest.mark.parametrize("data", [bytes(11), bytes(13), b""])
def test_malformed_sync_notify_is_dropped_unanswered(data: bytes) -> None:
    """N(IKEV2_MESSAGE_ID_SYNC) whose data is not 4 + 4 + 4 octets (strongSwan ``ike_mid_sync.c``
    "received invalid ... notify"): dropped, no answer, message IDs unchanged."""
    cl = _cluster()
    c, a, b = cl.client, cl.a, cl.b
    cspi, aspi, _ = _busy_ike_sa(cl)
    record = a.ha_record(aspi)
    assert record is not None
    b.activate_ike_sa(record, 5.0)
    b.datagrams_to_send(5.0)  # B's own sync is lost; a bad one arrives instead
    bad = b.seal(b.sas[aspi], ExchangeType.INFORMATIONAL, 0, False, [NotifyPayload(SYNC, data=data)])
    c.receive_datagram(bad, G500, C500, 5.0)
    assert c.datagrams_to_send(5.0) == []
    assert _dropped(cl.new.events(c)) == [("invalid IKEV2_MESSAGE_ID_SYNC notify", "INFORMATIONAL", 0, G500, C500)]
    assert _mids(c, cspi) == (4, 1)


@pytest.mark.parametrize(("replay", "counter", "delta"), [
    (True, (4096).to_bytes(4, "big"), 4096),
    (True, bytes(3), 0),
    (True, bytes(8), 0),
    (False, (4096).to_bytes(4, "big"), 0),
])
def test_replay_counter_sync_taken_only_if_negotiated_and_4_octets(replay: bool, counter: bytes, delta: int) -> None:
    """N(IPSEC_REPLAY_COUNTER_SYNC) next to the message ID sync: its 32-bit increment (RFC 6311) reaches the
    client's MessageIdsSynchronized only if replay counter sync was negotiated and the data is 4 octets; otherwise
    it is ignored and the message IDs are synchronized all the same."""
    cl = _cluster(_policy(replay=replay), _policy(replay=replay))
    c, a, b = cl.client, cl.a, cl.b
    cspi, aspi, _ = _busy_ike_sa(cl)
    record = a.ha_record(aspi)
    assert record is not None
    b.activate_ike_sa(record, 5.0)
    b.datagrams_to_send(5.0)
    crafted = b.seal(b.sas[aspi], ExchangeType.INFORMATIONAL, 0, False,
                     [_sync(b"\x0a\x0b\x0c\x0d", 1, 4), NotifyPayload(REPLAY, data=counter)])
    c.receive_datagram(crafted, G500, C500, 5.0)
    (resp,) = c.datagrams_to_send(5.0)
    assert _open(b, resp.data).payloads == (_sync(b"\x0a\x0b\x0c\x0d", 4, 1),)
    assert [_synced(e) for e in cl.new.events(c)] == [("peer", 4, 1, delta, False)]


@pytest.mark.parametrize(("mid_sync", "payloads"), [
    (False, (_sync(b"\x01\x02\x03\x04", 5, 2),)),
    (True, ()),
    (True, (_sync(b"\x01\x02\x03\x04", 5, 2), NotifyPayload(NotifyType.INITIAL_CONTACT))),
])
def test_message_id_0_request_that_is_no_sync_is_dropped_as_unexpected(
        mid_sync: bool, payloads: tuple[NotifyPayload, ...]) -> None:
    """The client expects the gateway's next request on 2. An INFORMATIONAL on message ID 0 is a sync only on an
    IKE_SA that negotiated it and only with nothing but the sync notifies (strongSwan ``is_potential_mid_sync``,
    ``is_mid_sync``); any other is checked against the window (RFC 7296 §2.3): "unexpected message ID 0"."""
    cl = _cluster(_policy(mid=mid_sync), _policy(mid=mid_sync))
    c, a = cl.client, cl.a
    cspi, aspi = _gateway_dpds(cl, 2)
    assert c.sas[cspi].mid_sync is mid_sync
    data = a.seal(a.sas[aspi], ExchangeType.INFORMATIONAL, 0, False, list(payloads))
    c.receive_datagram(data, G500, C500, 5.0)
    assert c.datagrams_to_send(5.0) == []
    assert _dropped(cl.old.events(c)) == [("unexpected message ID 0", "INFORMATIONAL", 0, G500, C500)]
    assert _mids(c, cspi) == (2, 2)


@pytest.mark.parametrize("mid_sync", [False, True])
def test_retransmitted_message_0_gets_the_cached_response(mid_sync: bool) -> None:
    """A's first DPD (message ID 0) is answered, the answer lost; A's retransmission at 1+4 s is no sync (no
    payloads) and gets the cached response byte for byte (RFC 7296 §2.1), with or without RFC 6311; either way it
    counts as inbound traffic: the client's own liveness check moves to 5+30 s (RFC 7296 §2.4)."""
    cl = _cluster(_policy(mid=mid_sync, dpd=30.0), _policy(mid=mid_sync, dpd=30.0))
    c, a = cl.client, cl.a
    cspi, aspi, _ = cl.establish()
    a.check_liveness(aspi, 1.0)
    (dpd,) = cl.old.deliver(a, 1.0)
    (lost,) = c.datagrams_to_send(1.0)
    assert _head(_open(a, lost.data)) == (ExchangeType.INFORMATIONAL, 0, True, cspi, aspi)
    assert a.get_timer() == 1.0 + RTX
    a.handle_timer(5.0)
    (again,) = cl.old.deliver(a, 5.0)
    assert again.data == dpd.data
    (cached,) = cl.old.deliver(c, 5.0)
    assert cached.data == lost.data
    assert c.get_timer() == 35.0
    assert [(e.outcome, e.retransmissions) for e in _of(cl.old.events(a), ev.ExchangeCompleted)] == [("ok", 1)]
    assert _of(cl.old.events(c), ev.MessageDropped) == []
    assert _mids(c, cspi) == (2, 1) and _mids(a, aspi) == (1, 2)


@pytest.mark.parametrize(("answer", "why"), [
    ((_sync(b"\xde\xad\xbe\xef", 4, 1),), "another nonce"),
    ((), "no notify"),
    ((NotifyPayload(SYNC, data=_nonce() + bytes(4)),), "8 octets"),
])
def test_sync_answer_without_our_nonce_is_dropped_and_b_retransmits(answer: tuple[NotifyPayload, ...],
                                                                    why: str) -> None:
    """An answer on message ID 0 whose N(IKEV2_MESSAGE_ID_SYNC) does not echo B's nonce (RFC 6311 §5.1): B drops
    it, keeps M1/P1 and its request in flight, sends it again at 5+4 s and takes the genuine answer."""
    cl = _cluster()
    c, a, b = cl.client, cl.a, cl.b
    cspi, aspi, _ = _busy_ike_sa(cl)
    record = a.ha_record(aspi)
    assert record is not None
    b.activate_ike_sa(record, 5.0)
    (req,) = cl.new.deliver(b, 5.0)
    c.datagrams_to_send(5.0)  # the genuine answer is replaced by a forged one (the client's keys: authentic)
    forged = c.seal(c.sas[cspi], ExchangeType.INFORMATIONAL, 0, True, list(answer))
    b.receive_datagram(forged, C500, G500, 5.0)
    assert b.datagrams_to_send(5.0) == []
    gb = cl.new.events(b)
    assert _dropped(gb) == [("IKEV2_MESSAGE_ID_SYNC answer without our nonce", "INFORMATIONAL", 0, C500, G500)], why
    assert _of(gb, ev.MessageIdsSynchronized) == [] and _of(gb, ev.ExchangeCompleted) == []
    active = b.sas[aspi].active
    assert active is not None and (active.purpose, active.message_id) == ("mid_sync", 0)
    assert _mids(b, aspi) == (1, 4)
    b.handle_timer(9.0)
    (again,) = cl.new.deliver(b, 9.0)
    assert again.data == req.data
    cl.new.settle(9.0)
    gb = cl.new.events(b)
    assert [(e.outcome, e.retransmissions) for e in _of(gb, ev.ExchangeCompleted)] == [("ok", 1)]
    assert [_synced(e) for e in _of(gb, ev.MessageIdsSynchronized)] == [("cluster", 1, 4, 0, False)]
    assert _mids(b, aspi) == (1, 4) and _mids(c, cspi) == (4, 1)


# ---------------------------------------------------------------------- activate_ike_sa misuse
def test_activate_ike_sa_refuses_unknown_connection_and_spis_in_use() -> None:
    """LocalProtocolError, nothing changed: a record of a connection not configured here, an IKE SPI in use (the
    active member itself, or a second activation), a CHILD_SA SPI in use under another IKE SPI."""
    cl = _cluster()
    a, b = cl.a, cl.b
    _, aspi, _ = cl.establish()
    record = a.ha_record(aspi)
    assert record is not None
    (child,) = record.children
    assert a.ha_record(b"\x00" * 8) is None and b.ha_record(aspi) is None
    with pytest.raises(LocalProtocolError, match="no connection 'other' to take the IKE_SA over into"):
        b.activate_ike_sa(dataclasses.replace(record, connection="other"), 5.0)
    with pytest.raises(LocalProtocolError, match=f"IKE_SA {aspi.hex()} or one of its CHILD_SAs is in use here"):
        a.activate_ike_sa(record, 5.0)
    assert b.ike_sa_spis() == [] and cl.new.events(b) == [] and b.datagrams_to_send(5.0) == []
    assert b.activate_ike_sa(record, 5.0) == aspi
    b.datagrams_to_send(5.0)
    cl.new.events(b)
    with pytest.raises(LocalProtocolError, match=f"IKE_SA {aspi.hex()} or one of its CHILD_SAs is in use here"):
        b.activate_ike_sa(record, 6.0)
    other = bytes(8 - 1) + b"\x07"
    with pytest.raises(LocalProtocolError, match=f"IKE_SA {other.hex()} or one of its CHILD_SAs is in use here"):
        b.activate_ike_sa(dataclasses.replace(record, spi_r=other), 6.0)
    assert b.ike_sa_spis() == [aspi] and b.child_sa_spis() == [child.spi_in]
    assert cl.new.events(b) == [] and b.datagrams_to_send(6.0) == []


def test_pair_of_a_child_configuration_missing_here_is_not_taken_over() -> None:
    """B's connection has no ``net`` child configuration: the IKE_SA is taken over without the pair (child_count 0,
    no ChildSaActivated), and its message IDs are synchronized all the same."""
    cl = _cluster()
    kids = (ChildPolicy(name="other", lifetime=LONG),)
    b = IkeDaemon(config("b", GATEWAY, None, local_id=GATEWAY_ID, remote_id=None, ike=_policy(), children=kids),
                  rng=Rng(SEED).child("b"))
    cl = dataclasses.replace(cl, b=b, new=Peers(cl.client, b))
    cspi, aspi, _ = cl.establish()
    record = cl.a.ha_record(aspi)
    assert record is not None and [r.child for r in record.children] == ["net"]
    req, resp = _take_over(cl, record, 5.0)
    assert (req.payloads, resp.payloads) == ((_sync(_nonce(), 0, 2),), (_sync(_nonce(), 2, 0),))
    gb = cl.new.events(b)
    assert names(gb) == ["IkeSaActivated", "ExchangeStarted", "ExchangeCompleted", "MessageIdsSynchronized"]
    assert isinstance(gb[0], ev.IkeSaActivated) and gb[0].child_count == 0
    assert b.ike_sa_spis() == [aspi] and b.child_sa_spis() == []


def test_sync_on_an_ike_sa_without_message_id_sync_is_ignored_even_on_the_expected_message_id() -> None:
    """No RFC 6311 negotiated and the client expects the gateway's first request (message ID 0): a sync request is
    not answered, as strongSwan's ``ike_mid_sync.c`` pre_process ("unexpected IKEV2_MESSAGE_ID_SYNC notify, ignored",
    the task manager ignores the request); the window stays where it was."""
    cl = _cluster(_policy(mid=False), _policy(mid=False))
    c, a = cl.client, cl.a
    cspi, aspi, _child = cl.establish()
    assert _mids(c, cspi) == (2, 0)
    data = a.seal(a.sas[aspi], ExchangeType.INFORMATIONAL, 0, False, [_sync(b"\x01\x02\x03\x04", 0, 2)])
    cl.old.events(c)
    c.receive_datagram(data, G500, C500, 5.0)
    assert c.datagrams_to_send(5.0) == []
    assert _dropped(cl.old.events(c)) == [("unexpected IKEV2_MESSAGE_ID_SYNC notify, ignored", "INFORMATIONAL", 0,
                                           G500, C500)]
    assert _mids(c, cspi) == (2, 0)
