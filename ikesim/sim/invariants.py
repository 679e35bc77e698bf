"""The invariant checker: watches both peers of every tunnel and records what no correct pair may reach.

It looks at the daemons' SA tables (read-only) whenever their events say something changed, and at each
datagram sent. Violations (``InvariantViolated``, kinds in ``VIOLATION_KINDS``):

- ``outbound_without_inbound``: a node sends with a CHILD_SA whose inbound half the peer has removed
  (checked the moment the peer removes it, or the node switches to it after a rekey);
- ``sa_mismatch``: once a tunnel has settled (no exchange in flight, no redundant IKE_SA awaiting its
  Delete, and nothing changed for ``settle`` seconds on either side) the peers disagree on which IKE_SA
  or CHILD_SAs are live;
- ``duplicate_outbound``: after settling, two outbound CHILD_SAs for one child of one connection;
- ``used_after_hard_lifetime``: an SA is still outbound after its hard lifetime (RFC 7296 §2.8);
- ``message_id_reused``: a node sent two different requests with one message ID on one IKE_SA (§2.2); an RFC 6311
  synchronization (message ID 0, outside the window) is not one, and restarts the record of that IKE_SA.

Cheap enough to leave on: a few dict lookups per event batch and one deferred check per changed tunnel, run
between engine events by the checker's own clock (``ikesim.sim.checkclock``), not as engine events.
"""

from __future__ import annotations

from array import array
from typing import Any

from ikesim.errors import MalformedMessage
from ikesim.ike import events as ev
from ikesim.ike.state import ChildSaState, IkeSaState
from ikesim.metrics.recorder import InvariantViolated
from ikesim.sim.checkclock import CheckClock
from ikesim.sim.view import NodeView, SimView
from ikesim.types import Datagram
from ikesim.wire.codec import peek_header
from ikesim.wire.iana import ExchangeType, PayloadType

__all__ = ["InvariantChecker"]

_LIVE = (ChildSaState.INSTALLED, ChildSaState.REKEYING)
_UNREACHABLE = ("timeout", "dpd_timeout", "auth_failed", "failed", "ha_passive", "forgotten")
"""An IKE_SA removed for these reasons went away without the peer's agreement: no instant check (``ha_passive``: a
cluster member stopped running it, another member runs it now, ``ikesim.sim.cluster``; ``forgotten``: a scripted
``forget_*`` action dropped the SA silently, ``ikesim.ike.forget``, and only the settled check applies)."""
_CHILD_EVENTS = frozenset((ev.ChildSaInstalled, ev.ChildSaDeleted, ev.ChildSaOutboundInstalled, ev.IkeSaDeleted,
                           ev.IkeSaEstablished, ev.RekeyCompleted))


class _Settling:
    """A (node, connection) whose tunnel changed and is not checked yet: ``last`` is the time of its last change."""

    __slots__ = ("node", "conn", "last")

    def __init__(self, node: NodeView, conn: str, last: float) -> None:
        self.node, self.conn, self.last = node, conn, last


class _HardCheck:
    """The check at a CHILD_SA's hard lifetime: moot once the node no longer holds the SA (RFC 7296 §2.8)."""

    __slots__ = ("node", "spi_in", "expire_at")

    def __init__(self, node: NodeView, spi_in: bytes, expire_at: float) -> None:
        self.node, self.spi_in, self.expire_at = node, spi_in, expire_at


class _Requests:
    """The requests sent on one IKE_SA (RFC 7296 §2.2), kept while a node that sent them still holds it."""

    __slots__ = ("senders", "keys", "digests")

    def __init__(self) -> None:
        self.senders: tuple[str, ...] = ()
        """The nodes that sent on it (one or two: a tuple is a quarter of a set's size, one per live IKE_SA)."""
        self.keys = array("q")
        """(message ID, fragment number, Initiator flag) packed in one int, per request sent."""
        self.digests = array("q")
        """The hash of each request's bytes, at its key's index. Two flat arrays, not a dict of ints: an
        IKE_SA's DPDs and rekeys add dozens of requests over its hours, at 16 bytes each instead of ~90."""

    def check(self, key: int, digest: int) -> bool:
        """Note the request *key* with *digest*; False if *key* was sent before with other bytes (RFC 7296 §2.2)."""
        keys = self.keys
        if key not in keys:
            keys.append(key)
            self.digests.append(digest)
            return True
        return self.digests[keys.index(key)] == digest


class InvariantChecker:
    """Checks both peers of every tunnel of one simulation (on by default), seen through a ``SimView``."""

    def __init__(self, sim: SimView, *, settle: float = 10.0) -> None:
        self.sim = sim
        self.settle = settle
        self._clock = CheckClock(sim.env, self._due, self._moot)
        self._requests: dict[tuple[bytes, bytes], _Requests] = {}
        """(spi_i, spi_r) -> the requests sent on that IKE_SA. A message ID is never reused within an IKE_SA
        (§2.2: the SA is rekeyed before the counter wraps), so every earlier request of a live SA is kept; once
        each node that sent on it has removed it (IkeSaDeleted), it can send nothing more there and the
        entry goes: memory follows the live IKE_SAs, not every request ever sent."""
        self._reported: set[tuple[str, str]] = set()
        self._ike_index: dict[tuple[str, str], list[bytes]] = {}
        """(node, connection) -> SPIs of its established IKE_SAs (so a gateway's 10,000 SAs are not scanned per check).
        A list, not a set: it holds a few SPIs, is read sorted, and a set would be its size three times over."""
        self._syncing: set[tuple[bytes, bytes]] = set()
        """IKE SPI pairs with an RFC 6311 synchronization in flight (its requests are not message-ID checked)."""
        self._given_up: set[tuple[bytes, bytes]] = set()
        """IKE SPI pairs one peer removed unilaterally (timeout, DPD): the other may hold them until it notices."""
        self._settling: dict[tuple[str, str], _Settling] = {}
        """(node, connection) -> its pending settle check."""
        self.checks = 0

    # ------------------------------------------------------------------ hooks
    def on_send(self, node: str, d: Datagram) -> None:
        """A node sent a datagram: no message ID may carry two different requests (RFC 7296 §2.2)."""
        data = d.data
        try:
            spi_i, spi_r, xchg, flags, mid = peek_header(data)
        except MalformedMessage:
            return
        if flags & 0x20 or xchg == ExchangeType.IKE_SA_INIT or xchg == ExchangeType.IKE_SESSION_RESUME:
            return  # responses; IKE_SA_INIT (IKE_SESSION_RESUME, RFC 5723) resent changed after COOKIE / INVALID_KE
        if mid == 0 and self._syncing and (spi_i, spi_r) in self._syncing:
            return  # an RFC 6311 synchronization: outside the window, its message ID 0 used again after it
        # RFC 7383 §2.5: SKF fragments of one request are told apart by their Fragment Number.
        fragment = int.from_bytes(data[32:34], "big") if data[16] == PayloadType.SKF else 0
        sa = self._requests.get((spi_i, spi_r))
        if sa is None:
            sa = self._requests[(spi_i, spi_r)] = _Requests()
        if node not in sa.senders:
            sa.senders += (node,)
        if not sa.check((mid << 17) | (fragment << 1) | (flags & 0x08 and 1), hash(data)):
            self._violate(node, "message_id_reused", "", f"{spi_i.hex()}/{spi_r.hex()}",
                          f"message ID {mid} carried two different requests")

    def on_events(self, node: NodeView, events: list[Any]) -> None:
        """A node's daemon reported *events* (one batch, one instant)."""
        name = node.name
        removed_ike: dict[tuple[bytes, bytes], str] | None = None
        index = self._ike_index
        for e in events:
            kind = type(e)
            if kind is ev.IkeSaEstablished:
                spis = index.setdefault((name, e.connection), [])
                for spi in (e.spi_i, e.spi_r):
                    if spi not in spis:
                        spis.append(spi)
            elif kind is ev.IkeSaDeleted:
                held = index.get((name, e.connection))
                if held is not None:
                    for spi in (e.spi_i, e.spi_r):
                        if spi in held:
                            held.remove(spi)
                if removed_ike is None:
                    removed_ike = {}
                removed_ike[(e.spi_i, e.spi_r)] = e.reason
                self._forget_requests(name, e.spi_i, e.spi_r)
            elif kind is ev.ExchangeStarted or kind is ev.ExchangeCompleted:
                if e.purpose == "mid_sync":  # RFC 6311: both windows start again from the values synchronized
                    pair = (e.spi_i, e.spi_r)
                    self._requests.pop(pair, None)
                    if kind is ev.ExchangeStarted:
                        self._syncing.add(pair)
                    else:
                        self._syncing.discard(pair)
        if removed_ike is not None:
            for pair, reason in removed_ike.items():
                if reason in _UNREACHABLE:
                    self._given_up.add(pair)
        touched: dict[str, None] = {}
        for e in events:
            kind = type(e)
            if kind not in _CHILD_EVENTS:
                continue
            touched[e.connection] = None
            if kind is ev.ChildSaDeleted:
                reason = e.reason
                if reason == "ike_deleted" or (reason == "rekeyed" and removed_ike is not None
                                               and (e.spi_i, e.spi_r) in removed_ike):
                    # removed with its IKE_SA (a rekeyed one reports ``rekeyed``): the IKE_SA's reason decides
                    reason = removed_ike.get((e.spi_i, e.spi_r), "") if removed_ike is not None else ""
                if reason not in _UNREACHABLE:
                    self._peer_still_sends(node, e)
            elif kind is ev.ChildSaOutboundInstalled or (kind is ev.ChildSaInstalled and e.outbound
                                                         and e.rekey_of is not None):
                self._peer_can_decrypt(node, e)
            if kind is ev.ChildSaInstalled and e.expire_at is not None:
                proc = getattr(node, "processing", None)  # its timers wake up late by up to proc.high (sim.processing)
                late = proc.high if proc is not None else 0.0
                self._clock.at(e.expire_at + late + 1e-6, _HardCheck(node, e.spi_in, e.expire_at))
        for conn in touched:  # first-touched order: the checks of one instant run in a reproducible order
            self._changed(node, conn)

    # ------------------------------------------------------------------ checks
    def _peer(self, node: NodeView, address: Any) -> NodeView | None:
        owner = self.sim.resolve(address)  # through a NAT's current mapping
        return self.sim.nodes.get(owner) if owner is not None else None

    def _peer_of_ike(self, node: NodeView, spi_i: bytes, spi_r: bytes) -> tuple[NodeView | None, Any]:
        d = node.daemon
        sa = d.sas.get(spi_i) or d.sas.get(spi_r)
        if sa is None:
            closed = d.closed.get(spi_i) or d.closed.get(spi_r)
            sa = closed[0] if closed else None
        if sa is None:
            return None, None
        return self._peer(node, sa.peer), sa

    def _peer_still_sends(self, node: NodeView, e: ev.ChildSaDeleted) -> None:
        """*node* removed inbound SA ``e.spi_in``: the peer must not be sending with it any more."""
        peer, _sa = self._peer_of_ike(node, e.spi_i, e.spi_r)
        if peer is None:
            return
        theirs = peer.daemon.children.get(e.spi_out)
        if theirs is not None and theirs.spi_out == e.spi_in and theirs.outbound:
            self._violate(peer.name, "outbound_without_inbound", e.connection, e.spi_in.hex(),
                          f"{peer.name} sends with SPI {e.spi_in.hex()} which {node.name} removed ({e.reason})")

    def _peer_can_decrypt(self, node: NodeView, e: Any) -> None:
        """*node* started sending with ``e.spi_out``: the peer must have that inbound SA."""
        peer, _sa = self._peer_of_ike(node, e.spi_i, e.spi_r)
        if peer is None:
            return
        theirs = peer.daemon.children.get(e.spi_out)
        if theirs is None or theirs.state is ChildSaState.DELETED or theirs.spi_out != e.spi_in:
            self._violate(node.name, "outbound_without_inbound", e.connection, e.spi_out.hex(),
                          f"{node.name} sends with SPI {e.spi_out.hex()} which {peer.name} has no inbound SA for")

    def _hard_check(self, check: _HardCheck) -> None:
        """At the hard lifetime (plus 1 µs) the CHILD_SA must no longer be outbound (RFC 7296 §2.8)."""
        spi_in, expire_at = check.spi_in, check.expire_at
        child = check.node.daemon.children.get(spi_in)
        if child is not None and child.expire_at == expire_at and child.outbound:
            self._violate(check.node.name, "used_after_hard_lifetime", child.name, spi_in.hex(),
                          f"CHILD_SA {spi_in.hex()} still outbound after its hard lifetime at {expire_at:.3f} s")

    # ------------------------------------------------------------------ settling
    def _changed(self, node: NodeView, conn: str) -> None:
        """*conn* changed on *node* now: it is checked once nothing changed for ``settle`` s."""
        now = self.sim.env.now
        st = self._settling.get((node.name, conn))
        if st is not None:
            st.last = now  # the pending wake-up will see it and wait longer
            return
        st = self._settling[(node.name, conn)] = _Settling(node, conn, now)
        self._clock.at(now + self.settle, st)

    def _settle_check(self, st: _Settling) -> None:
        """A settle wake-up: wait on if it changed since; else compare the peers, again later if still busy."""
        now = self.sim.env.now
        if st.last + self.settle > now + 1e-9:
            self._clock.at(st.last + self.settle, st)
        elif self._compare(st.node, st.conn):
            st.last = now
            self._clock.at(now + self.settle, st)
        else:
            del self._settling[(st.node.name, st.conn)]

    def _due(self, check: _Settling | _HardCheck) -> None:
        """The clock reached a check (``ikesim.sim.checkclock``)."""
        if type(check) is _HardCheck:
            self._hard_check(check)
        else:
            self._settle_check(check)  # type: ignore[arg-type]

    @staticmethod
    def _moot(check: _Settling | _HardCheck) -> bool:
        """True for a hard-lifetime check whose CHILD_SA the node no longer holds (it would find nothing)."""
        return type(check) is _HardCheck and check.spi_in not in check.node.daemon.children

    def _compare(self, node: NodeView, conn: str) -> bool:
        """Compare *node*'s live SAs of *conn* with its peers'; return True if an exchange is still in flight."""
        self.checks += 1
        spis = self._ike_index.get((node.name, conn))
        if not spis:
            return False
        d = node.daemon
        outbound: dict[str, list[bytes]] = {}
        for spi in sorted(spis):
            sa = d.sas.get(spi)
            if sa is None or sa.local_spi != spi or sa.name != conn:
                continue
            if sa.active is not None or sa.queue or sa.collision is not None or sa.redundant:
                return True  # an exchange in flight, or a redundant IKE_SA awaiting its Delete (§2.8.2)
            peer = self._peer(node, sa.peer)
            if peer is None or sa.state is not IkeSaState.ESTABLISHED:
                continue
            theirs = peer.daemon.sas.get(sa.peer_spi)
            if theirs is not None and (theirs.active is not None or theirs.queue or theirs.collision is not None
                                       or theirs.redundant):
                return True
            if theirs is None and (sa.spi_i, sa.spi_r) in self._given_up:
                continue  # the peer gave up on it unilaterally (no answer, RFC 7296 §2.4): DPD on our side will tell
            if theirs is None or theirs.peer_spi != sa.local_spi or theirs.state is not IkeSaState.ESTABLISHED:
                pair = f"{sa.spi_i.hex()}/{sa.spi_r.hex()}"
                self._violate(node.name, "sa_mismatch", conn, pair,
                              f"IKE_SA {pair} is established on {node.name} but not on {peer.name}")
                continue
            self._compare_children(node, peer, conn, sa, theirs, outbound)
        for child, spis_out in outbound.items():
            if len(spis_out) > 1:
                self._violate(node.name, "duplicate_outbound", conn, ",".join(s.hex() for s in sorted(spis_out)),
                              f"{len(spis_out)} outbound CHILD_SAs for child {child!r} after settling")
        return False

    def _compare_children(self, node: NodeView, peer: NodeView, conn: str, sa: Any, theirs: Any,
                          outbound: dict[str, list[bytes]]) -> None:
        """The CHILD_SAs of one settled IKE_SA pair: live on both sides, used both ways (RFC 7296 §2.8)."""
        mine = {(c.spi_in, c.spi_out) for c in sa.children.values() if c.state in _LIVE and not c.expired}
        other = {(c.spi_out, c.spi_in) for c in theirs.children.values() if c.state in _LIVE and not c.expired}
        if mine != other:
            for spi_in, spi_out in sorted(mine ^ other):
                where = node.name if (spi_in, spi_out) in mine else peer.name
                self._violate(node.name, "sa_mismatch", conn, spi_in.hex(),
                              f"CHILD_SA {spi_in.hex()}/{spi_out.hex()} is live only on {where} after settling")
        peer_children = theirs.children
        for c in sa.children.values():
            if c.outbound:
                outbound.setdefault(c.name, []).append(c.spi_in)
            elif (c.spi_in, c.spi_out) in other:
                t = peer_children.get(c.spi_out)
                if t is not None and t.outbound:
                    self._violate(node.name, "sa_mismatch", conn, c.spi_in.hex(),
                                  f"CHILD_SA {c.spi_in.hex()}/{c.spi_out.hex()} is used one way only: "
                                  f"{peer.name} sends with it, {node.name} never switched to it")

    # ------------------------------------------------------------------ plumbing
    def _forget_requests(self, node: str, spi_i: bytes, spi_r: bytes) -> None:
        """*node* removed an IKE_SA: it sends nothing more on it; the last such sender drops its requests."""
        sa = self._requests.get((spi_i, spi_r))
        if sa is not None:
            sa.senders = tuple(n for n in sa.senders if n != node)
            if not sa.senders:
                del self._requests[(spi_i, spi_r)]

    def _violate(self, node: str, kind: str, connection: str, spi: str, detail: str) -> None:
        if (kind, spi) in self._reported:
            return
        self._reported.add((kind, spi))
        self.sim.collector.record(InvariantViolated(kind=kind, connection=connection, spi=spi, detail=detail),
                                  now=self.sim.env.now, node=node)
