"""MOBIKE (RFC 4555) in the IKE core: address lists, path tests, UPDATE_SA_ADDRESSES with COOKIE2, roaming.

Where RFC 4555 leaves a choice this mirrors strongSwan (``ike_mobike.c``, ``ike_sa.c`` ``roam``,
``task_manager_v2.c``):

- Negotiation: N(MOBIKE_SUPPORTED) and the address list in the first IKE_AUTH request and its response (§3.1,
  §3.4); with MOBIKE configured the initiator floats to port 4500 after IKE_SA_INIT even without a NAT
  (``ike_natd.c``), since no later exchange could do it.
- The original initiator decides (§3.1). When the host's addresses change (``set_local_addresses``) every
  established IKE_SA roams (``ike_sa.roam``): it keeps a path whose local address is still usable (strongSwan's
  ``prefer_best_path = no``) and then only sends its new address list; otherwise it tests paths (§3.6) with an
  INFORMATIONAL sent from the best usable address to every peer address, retransmitted every 2.5 s up to 10
  times (``ROUTABILITY_CHECK_INTERVAL``/``_TRIES``); an answer from another path moves the IKE_SA and its
  CHILD_SAs there and is followed by UPDATE_SA_ADDRESSES with NAT detection and COOKIE2 (§3.5).
- The responder moves at once on UPDATE_SA_ADDRESSES (strongSwan does no return routability check);
  ``mobike_return_routability`` adds the §3.5 check with COOKIE2 before it moves. N(NO_NATS_ALLOWED) is
  checked as §3.9 says (strongSwan ignores it) and refused with UNACCEPTABLE_ADDRESSES.
- With MOBIKE the implicit §2.23 follow is off (strongSwan: ``update_hosts`` only without EXT_MOBIKE), and
  a request is answered to where it came from.
- A newer check or update queued behind the one in flight makes the answer to the older one moot
  (``is_newer_update_queued``); only one MOBIKE request is ever queued (``queue_mobike_task``).
- A request in flight whose local address went away is retransmitted from the best usable address at once.
- Without MOBIKE an original initiator whose address went away re-establishes from another address
  (strongSwan reauthenticates, make-before-break); a responder waits.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from ikesim.crypto.natd import natd_hash
from ikesim.ike import events as ev
from ikesim.ike.exchange import Work
from ikesim.ike.state import IkeSaState
from ikesim.ike.transport import NATT_PORT, natt_address
from ikesim.types import Address
from ikesim.wire.iana import ExchangeType, NotifyType
from ikesim.wire.message import Message
from ikesim.wire.payloads import NotifyPayload, Payload

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore
    from ikesim.ike.exchange import Exchange
    from ikesim.ike.sa import IkeSa

__all__ = [
    "COOKIE2_SIZE",
    "MAX_ADDITIONAL_ADDRS",
    "ROUTABILITY_CHECK_INTERVAL",
    "ROUTABILITY_CHECK_TRIES",
    "set_local_addresses",
    "usable_ips",
    "auth_payloads",
    "process_auth",
    "wants",
    "start",
    "handle_request",
    "handle_response",
    "retransmit",
    "on_timeout",
    "move",
]

COOKIE2_SIZE = 16
"""Bytes of a COOKIE2 (RFC 4555 §3.5: 8 to 64; strongSwan ``COOKIE2_SIZE``: 16)."""
MAX_ADDITIONAL_ADDRS = 8
"""Most ADDITIONAL_*_ADDRESS notifies sent in one message (strongSwan ``MAX_ADDITIONAL_ADDRS``)."""
ROUTABILITY_CHECK_INTERVAL = 2.5
"""Seconds between path-test transmissions (strongSwan ``ROUTABILITY_CHECK_INTERVAL``: 2500 ms)."""
ROUTABILITY_CHECK_TRIES = 10
"""Path-test retransmissions before giving up (strongSwan ``ROUTABILITY_CHECK_TRIES``)."""

_MOBIKE_NOTIFIES = frozenset({
    NotifyType.UPDATE_SA_ADDRESSES, NotifyType.ADDITIONAL_IP4_ADDRESS, NotifyType.ADDITIONAL_IP6_ADDRESS,
    NotifyType.NO_ADDITIONAL_ADDRESSES, NotifyType.COOKIE2, NotifyType.NO_NATS_ALLOWED,
    NotifyType.NAT_DETECTION_SOURCE_IP, NotifyType.NAT_DETECTION_DESTINATION_IP,
})
"""Notifies that make an INFORMATIONAL request a MOBIKE one (strongSwan's task_manager creates ike_mobike)."""


# ---------------------------------------------------------------------- addresses
def usable_ips(core: IkeCore) -> tuple[str, ...]:
    """The host's usable addresses, best first (every configured one until ``set_local_addresses``)."""
    if core.usable is not None:
        return core.usable
    return tuple(a.ip for a in core.config.addresses)


def _address_list(core: IkeCore, sa: IkeSa) -> list[Payload]:
    """ADDITIONAL_IP4/6_ADDRESS for every usable address but the IKE_SA's own, or NO_ADDITIONAL_ADDRESSES (§3.4)."""
    out: list[Payload] = []
    for ip in usable_ips(core):
        if ip == sa.local.ip:
            continue
        packed = ipaddress.ip_address(ip).packed
        kind = NotifyType.ADDITIONAL_IP4_ADDRESS if len(packed) == 4 else NotifyType.ADDITIONAL_IP6_ADDRESS
        out.append(NotifyPayload(kind, data=packed))
        if len(out) >= MAX_ADDITIONAL_ADDRS:
            break
    return out or [NotifyPayload(NotifyType.NO_ADDITIONAL_ADDRESSES)]


def _peer_list(msg: Message) -> tuple[str, ...] | None:
    """The peer's additional addresses in *msg* (§3.4); None if it carries no address list."""
    found: list[str] = []
    listed = False
    for n in msg.get_all(NotifyPayload):
        if n.notify_type == NotifyType.NO_ADDITIONAL_ADDRESSES:
            listed = True
        elif n.notify_type in (NotifyType.ADDITIONAL_IP4_ADDRESS, NotifyType.ADDITIONAL_IP6_ADDRESS):
            listed = True
            want = 4 if n.notify_type == NotifyType.ADDITIONAL_IP4_ADDRESS else 16
            if len(n.data) == want:  # a malformed one is skipped, as strongSwan's host_create_from_chunk fails
                found.append(str(ipaddress.ip_address(n.data)))
    return tuple(dict.fromkeys(found)) if listed else None


def _note_peer_list(core: IkeCore, sa: IkeSa, msg: Message) -> tuple[str, ...] | None:
    """Take the peer's new address list from *msg*, if it carries one (RFC 4555 §3.4: it replaces the old one)."""
    peers = _peer_list(msg)
    if peers is not None:
        sa.peer_addresses = peers
        core.emit(ev.PeerAddressesUpdated(**sa.ids(), peer_addresses=" ".join(peers)))
    return peers


def _natd(core: IkeCore, sa: IkeSa, src: Address, dst: Address) -> list[Payload]:
    """NAT_DETECTION_SOURCE/DESTINATION_IP for a message from *src* to *dst* (RFC 4555 §3.5, RFC 7296 §2.23)."""
    return [NotifyPayload(NotifyType.NAT_DETECTION_SOURCE_IP,
                          data=natd_hash(sa.spi_i, sa.spi_r, src.ip, src.port, core.meter)),
            NotifyPayload(NotifyType.NAT_DETECTION_DESTINATION_IP,
                          data=natd_hash(sa.spi_i, sa.spi_r, dst.ip, dst.port, core.meter))]


def _nat_state(core: IkeCore, sa: IkeSa, msg: Message, src: Address, dst: Address) -> tuple[bool, bool] | None:
    """(NAT in front of us, in front of the peer) from *msg*'s NAT_D hashes, as received from *src* at *dst*."""
    src_hashes = [n.data for n in msg.get_all(NotifyPayload) if n.notify_type == NotifyType.NAT_DETECTION_SOURCE_IP]
    dst_hashes = [n.data for n in msg.get_all(NotifyPayload)
                  if n.notify_type == NotifyType.NAT_DETECTION_DESTINATION_IP]
    if not src_hashes or not dst_hashes:
        return None
    peer_ok = natd_hash(sa.spi_i, sa.spi_r, src.ip, src.port, core.meter) in src_hashes
    local_ok = natd_hash(sa.spi_i, sa.spi_r, dst.ip, dst.port, core.meter) in dst_hashes
    return not local_ok, not peer_ok


def _no_nats_data(src: Address, dst: Address) -> bytes:
    """NO_NATS_ALLOWED data: source and destination address, then their ports (RFC 4555 §4.2.6)."""
    return (ipaddress.ip_address(src.ip).packed + ipaddress.ip_address(dst.ip).packed
            + src.port.to_bytes(2, "big") + dst.port.to_bytes(2, "big"))


# ---------------------------------------------------------------------- IKE_AUTH (RFC 4555 §3.1, §3.4)
def auth_payloads(core: IkeCore, sa: IkeSa, *, request: bool, peer_offered: bool = False) -> list[Payload]:
    """N(MOBIKE_SUPPORTED) and our address list for IKE_AUTH, if MOBIKE is configured (and, answering, offered)."""
    if not sa.profile.connection.ike.mobike or not (request or peer_offered):
        return []
    return [NotifyPayload(NotifyType.MOBIKE_SUPPORTED), *_address_list(core, sa)]


def offered(msg: Message) -> bool:
    """*msg* carries N(MOBIKE_SUPPORTED) (RFC 4555 §3.1)."""
    return any(n.notify_type == NotifyType.MOBIKE_SUPPORTED for n in msg.get_all(NotifyPayload))


def process_auth(core: IkeCore, sa: IkeSa, msg: Message) -> None:
    """Both ends sent N(MOBIKE_SUPPORTED): the IKE_SA can move; note the peer's address list (§3.1, §3.4)."""
    if not sa.profile.connection.ike.mobike or not offered(msg):
        return
    sa.mobike = True
    sa.peer_addresses = _peer_list(msg) or ()
    core.emit(ev.MobikeNegotiated(**sa.ids(), peer_addresses=" ".join(sa.peer_addresses)))


# ---------------------------------------------------------------------- roaming (strongSwan ike_sa.roam)
def set_local_addresses(core: IkeCore, ips: tuple[str, ...], now: float) -> None:
    """The host's usable addresses, best first, changed: every established IKE_SA roams (RFC 4555 §3.5)."""
    old = usable_ips(core)
    core.usable = ips
    changed = set(old) != set(ips)
    for spi, sa in list(core.sas.items()):
        if spi == sa.local_spi and sa.state is IkeSaState.ESTABLISHED:
            _roam(core, sa, changed, now)


def _roam(core: IkeCore, sa: IkeSa, address: bool, now: float) -> None:
    """One IKE_SA after an address change (strongSwan ``ike_sa.roam``; a client's ``roam`` strategy, ``ike.reconnect``)."""
    ips = core.usable or ()
    conn = sa.profile.connection
    strategy = conn.ike.roam if conn.remote_addr is not None else "reauth"
    if strategy == "reauth" and not sa.mobike and conn.local_addr is not None:
        action = "keep"  # strongSwan: a statically configured path is kept without MOBIKE
    elif sa.local.ip in ips:
        action = "address_list" if sa.mobike and address else "keep"
        sa.stale = False
    elif not ips:
        action = "stale"
        sa.stale = True
    elif sa.mobike and strategy != "smart":
        action = "mobike"  # RFC 4555 §3.5: with MOBIKE, follow and keep move by MOBIKE too
        sa.stale = False
    elif strategy != "reauth":
        action = strategy  # a client's follow, keep or smart (``ike.reconnect``)
    elif sa.initiator:
        action = "reestablish"
    else:
        action = "stale"  # strongSwan: the responder does not reauthenticate
        sa.stale = True
    core.emit(ev.IkeSaRoaming(**sa.ids(), local=sa.local, addresses=" ".join(ips), action=action))
    if action == "address_list":
        queue(core, sa, "address", now)
    elif action == "mobike":
        _resend_in_flight(core, sa, now)
        queue(core, sa, "check address" if not sa.initiator else "check", now)
    elif action == "reestablish":
        core.reauthenticate(sa, now)
    elif action in ("follow", "smart"):
        core.roam_client(sa, now)


def _resend_in_flight(core: IkeCore, sa: IkeSa, now: float) -> None:
    """Our request in flight left from an address that is gone: send it again from the best one now (§3.5)."""
    ex = sa.active
    if ex is None or ex.fire_and_forget:
        return
    if ex.purpose == "mobike":
        ex.probing = True  # strongSwan ``enable_probing`` on the active MOBIKE task
        ex.deadline = now + ROUTABILITY_CHECK_INTERVAL
        core.timers.arm(("rtx", sa.local_spi), ex.deadline)
        _probe(core, sa, ex)
        return
    core.resend_request(sa, ex, "local_moved")


def queue(core: IkeCore, sa: IkeSa, flags: str, now: float) -> None:
    """Queue a MOBIKE request with *flags* (``check``, ``update``, ``address``, ``natd``), merged into the one
    already queued: strongSwan never queues two (``queue_mobike_task``)."""
    for i, work in enumerate(sa.queue):
        if work.purpose == "mobike":
            merged = " ".join(sorted(set(work.flags.split()) | set(flags.split())))
            sa.queue[i] = Work("mobike", flags=merged)
            core.pump(sa, now)
            return
    core.enqueue(sa, Work("mobike", flags=" ".join(sorted(set(flags.split())))), now)


# ---------------------------------------------------------------------- our requests
def start(core: IkeCore, sa: IkeSa, work: Work, now: float) -> bool:
    """Send a MOBIKE INFORMATIONAL: a path test, UPDATE_SA_ADDRESSES or an address list (RFC 4555 §3.5, §3.6)."""
    flags = set(work.flags.split())
    src, dst = core.request_source(sa), sa.peer
    if "rr" in flags:
        if sa.pending_move is None:
            return False
        src, dst = sa.pending_move[0], sa.pending_move[1]  # RFC 4555 §3.5: the check goes to the new address
    inner: list[Payload] = []
    cookie2 = b""
    if "update" in flags:
        inner.append(NotifyPayload(NotifyType.UPDATE_SA_ADDRESSES))
        cookie2 = core.rng_cookie2.draw("cookie2", COOKIE2_SIZE)
        inner.append(NotifyPayload(NotifyType.COOKIE2, data=cookie2))
        if sa.profile.connection.ike.mobike_no_nats:
            inner.append(NotifyPayload(NotifyType.NO_NATS_ALLOWED, data=_no_nats_data(src, dst)))
    if "rr" in flags:
        cookie2 = core.rng_cookie2.draw("cookie2", COOKIE2_SIZE)
        inner.append(NotifyPayload(NotifyType.COOKIE2, data=cookie2))
    if "address" in flags and "check" not in flags:
        inner += _address_list(core, sa)
    if "update" in flags or "natd" in flags:
        inner += _natd(core, sa, src, dst)
    mid = sa.next_message_id
    sa.next_message_id += 1
    data = core.seal_datagrams(sa, ExchangeType.INFORMATIONAL, mid, False, inner)
    probing = "check" in flags
    ex = core.start_request(sa, ExchangeType.INFORMATIONAL, "mobike", data, mid, now, work=work, src=src, dst=dst,
                            send=not probing)
    ex.cookie2 = cookie2
    ex.flags = " ".join(sorted(flags))
    ex.dest = (src, dst)
    if probing:
        ex.probing = True
        ex.deadline = now + ROUTABILITY_CHECK_INTERVAL
        core.timers.arm(("rtx", sa.local_spi), ex.deadline)
        _probe(core, sa, ex)
    return True


def _paths(core: IkeCore, sa: IkeSa) -> list[tuple[Address, Address]]:
    """Every path a test goes on: the best usable address to each peer address (strongSwan ``transmit``)."""
    ips = core.usable if core.usable is not None else usable_ips(core)
    if not ips:
        return []
    me = natt_address(ips[0], sa.local)
    family = ipaddress.ip_address(me.ip).version
    peers = [ip for ip in dict.fromkeys((sa.peer.ip, *sa.peer_addresses)) if ipaddress.ip_address(ip).version == family]
    # strongSwan pairs each peer address with a source address of its family (``transmit``: get_source_addr)
    return [(me, Address(ip, sa.peer.port) if ip == sa.peer.ip else Address(ip, NATT_PORT)) for ip in peers]


def _probe(core: IkeCore, sa: IkeSa, ex: Exchange) -> None:
    """Send the path test on every path (RFC 4555 §3.6)."""
    for src, dst in _paths(core, sa):
        core.send_request(sa, ex.request, src, dst)


def retransmit(core: IkeCore, sa: IkeSa, ex: Exchange, now: float) -> bool:
    """A MOBIKE request's retransmission (strongSwan ``task_manager_v2.c`` ``retransmit``); False: give up.

    A path test goes on every path every 2.5 s, ten times; other MOBIKE requests use the normal schedule but
    turn into a path test if their local address went away.
    """
    if not ex.probing and sa.local.ip not in (core.usable if core.usable is not None else (sa.local.ip,)):
        ex.probing = True
        ex.attempts = 0
    if ex.probing:
        if ex.attempts >= ROUTABILITY_CHECK_TRIES:
            return False
        ex.attempts += 1
        ex.deadline = now + ROUTABILITY_CHECK_INTERVAL
        _probe(core, sa, ex)
    else:
        if not ex.retransmit_due():
            return False
        ex.advance()
        src, dst = ex.dest if "rr" in ex.flags.split() else (None, None)
        core.send_request(sa, ex.request, src, dst)
    core.emit(ev.Retransmitted(**sa.ids(), exchange=ex.exchange_name, purpose=ex.purpose,
                               message_id=ex.message_id, attempt=ex.attempts,
                               reason="path_test" if ex.probing else "timeout"))
    core.timers.arm(("rtx", sa.local_spi), ex.deadline)
    return True


def on_timeout(core: IkeCore, sa: IkeSa, ex: Exchange, now: float) -> bool:
    """A MOBIKE request got no answer. True: handled here (the IKE_SA stays); False: the IKE_SA is dead.

    A return routability check that fails leaves the IKE_SA where it was (RFC 4555 §3.5)."""
    if "rr" in ex.flags.split():
        core.complete(sa, ex, "timeout")
        sa.pending_move = None
        core.emit(ev.IkeSaRoaming(**sa.ids(), local=sa.local, addresses=" ".join(usable_ips(core)),
                                  action="return_routability_failed"))
        return True
    return False


def _newer_queued(sa: IkeSa) -> bool:
    """A check or update queued behind makes this answer moot (strongSwan ``is_newer_update_queued``)."""
    return any(w.purpose == "mobike" and ({"check", "update"} & set(w.flags.split())) for w in sa.queue)


def move(core: IkeCore, sa: IkeSa, local: Address, peer: Address, method: str,
          nat: tuple[bool, bool] | None) -> None:
    """The IKE_SA and its CHILD_SAs move to *local*/*peer* (strongSwan ``update_hosts`` FORCE_ALL)."""
    old_local, old_peer = sa.local, sa.peer
    nat_before = (sa.nat_local, sa.nat_peer)
    if nat is not None:
        sa.nat_local, sa.nat_peer = nat
    if (local, peer) == (old_local, old_peer) and (sa.nat_local, sa.nat_peer) == nat_before:
        return
    sa.local_ts_ip = sa.local_ts_ip or old_local.ip  # dynamic selectors stay where they were (RFC 4555 §1.1)
    sa.peer_ts_ip = sa.peer_ts_ip or old_peer.ip
    sa.local, sa.peer = local, peer
    if (sa.nat_local, sa.nat_peer) != nat_before and (sa.nat_local or sa.nat_peer):
        core.emit(ev.NatDetected(**sa.ids(), local_behind_nat=sa.nat_local, peer_behind_nat=sa.nat_peer))
    core.emit(ev.IkeSaMoved(**sa.ids(), old_local=old_local, old_peer=old_peer, local=local, peer=peer,
                            method=method, nat_local=sa.nat_local, nat_peer=sa.nat_peer))


def handle_response(core: IkeCore, sa: IkeSa, ex: Exchange, msg: Message, now: float) -> None:
    """Our MOBIKE request was answered (strongSwan ``ike_mobike.c`` ``process_i``)."""
    src, dst = core.rx
    errors = [n for n in msg.get_all(NotifyPayload) if n.notify_type.is_error]
    core.complete(sa, ex, errors[0].notify_type.name if errors else "ok")
    flags = set(ex.flags.split())
    if _newer_queued(sa):
        return
    if any(n.notify_type == NotifyType.UNACCEPTABLE_ADDRESSES for n in errors):
        core.emit(ev.IkeSaRoaming(**sa.ids(), local=sa.local, addresses=" ".join(usable_ips(core)),
                                  action="refused"))
        return
    if ex.cookie2:
        echoed = next((n.data for n in msg.get_all(NotifyPayload) if n.notify_type == NotifyType.COOKIE2), b"")
        if echoed != ex.cookie2:
            core.emit(ev.ResponseRejected(**sa.ids(), exchange="INFORMATIONAL", purpose="mobike",
                                          message_id=msg.message_id, reason="COOKIE2 mismatch"))
            core.remove_ike_sa(sa, "cookie2_mismatch")  # strongSwan: "COOKIE2 mismatch, closing IKE_SA"
            return
    if "rr" in flags:
        pending, sa.pending_move = sa.pending_move, None
        if pending is not None:
            move(core, sa, *pending)
        return
    _note_peer_list(core, sa, msg)
    nat = _nat_state(core, sa, msg, src, dst)
    if "update" in flags:
        move(core, sa, sa.local, sa.peer, "mobike", nat)  # NAT state may have changed (FORCE_CHILDREN)
        return
    if nat is not None and nat != (sa.nat_local, sa.nat_peer) and sa.initiator:
        flags.add("check")  # strongSwan: NAT mappings changed during a DPD -> update
    if "check" in flags and (dst != sa.local or src != sa.peer or nat is not None):
        moved = (dst, src) != (sa.local, sa.peer)
        move(core, sa, dst, src, "mobike_probe", None)
        if sa.initiator:
            if moved or nat is not None:
                core.enqueue(sa, Work("mobike", flags="natd update"), now, front=True)
        else:
            core.enqueue(sa, Work("mobike", flags="address"), now, front=True)


# ---------------------------------------------------------------------- the peer's requests
def wants(sa: IkeSa, msg: Message) -> bool:
    """An INFORMATIONAL request on a MOBIKE IKE_SA that carries MOBIKE notifies (RFC 4555 §3.5, §4.2)."""
    return sa.mobike and any(n.notify_type in _MOBIKE_NOTIFIES for n in msg.get_all(NotifyPayload))


def handle_request(core: IkeCore, sa: IkeSa, msg: Message, now: float) -> None:
    """Answer a MOBIKE INFORMATIONAL (strongSwan ``ike_mobike.c`` ``process_r``/``build_r``; RFC 4555 §3.5, §3.9)."""
    src, dst = core.rx
    notifies = msg.get_all(NotifyPayload)
    kinds = {n.notify_type for n in notifies}
    cookie2 = next((n.data for n in notifies if n.notify_type == NotifyType.COOKIE2), None)
    update = NotifyType.UPDATE_SA_ADDRESSES in kinds
    no_nats = next((n.data for n in notifies if n.notify_type == NotifyType.NO_NATS_ALLOWED), None)
    if update and no_nats is not None and no_nats != _no_nats_data(src, dst):
        # RFC 4555 §3.9: the addresses the initiator sent from/to are not those the update arrived with.
        core.respond(sa, ExchangeType.INFORMATIONAL, msg.message_id,
                     [NotifyPayload(NotifyType.UNACCEPTABLE_ADDRESSES)])
        core.emit(ev.ErrorNotifySent(**sa.ids(), notify="UNACCEPTABLE_ADDRESSES", exchange="INFORMATIONAL",
                                     message_id=msg.message_id))
        return
    peers = _note_peer_list(core, sa, msg)
    nat = _nat_state(core, sa, msg, src, dst)
    inner: list[Payload] = []
    if nat is not None:
        inner += _natd(core, sa, dst, src)
    if cookie2 is not None:
        inner.append(NotifyPayload(NotifyType.COOKIE2, data=cookie2))
    core.respond(sa, ExchangeType.INFORMATIONAL, msg.message_id, inner)
    if update:
        if sa.profile.connection.ike.mobike_return_routability and src != sa.peer:
            sa.pending_move = (dst, src, "mobike_responder", nat)
            core.enqueue(sa, Work("mobike", flags="rr"), now, front=True)
            return
        move(core, sa, dst, src, "mobike_responder", nat)
    elif peers is not None and sa.initiator and src != sa.peer:
        move(core, sa, dst, src, "mobike_responder", None)  # the responder reached us on another path
