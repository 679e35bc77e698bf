"""A node's ESP data plane driven by its IKE daemon's events, as a kernel is driven by strongSwan (RFC 4301 §4.4).

The daemon's CHILD_SA events say when each SA is installed and removed; this module follows them exactly:

- ``ChildSaInstalled`` (and ``ChildSaActivated``: a cluster member took the pair over): the inbound SA goes into the
  SAD at once (before the exchange's last message leaves:
  the node drains events before it sends), and the outbound SA too when the event says the node sends with it;
- ``ChildSaOutboundInstalled``: the policy switches to the new outbound SA (a rekey responder, RFC 7296 §2.8);
- ``SaExpired`` (CHILD): both directions of the SA are expired (hard lifetime: never used again);
- ``ChildSaDeleted``: the inbound SA leaves the SAD, and the outbound one if the policy still points at it
  (a rekeyed SA is removed only after its ``delete_rekeyed_delay``, which the core times);
- ``NatTraversalStarted``, ``PeerAddressChanged`` and ``IkeSaMoved`` (MOBIKE, RFC 4555 §3.5): the IKE_SA's
  addresses change, and with them the outer addresses of its CHILD_SAs' ESP (UDP-encapsulated on port 4500 once
  NAT-T has floated because of a NAT, RFC 3948; plain ESP when MOBIKE floated without one);
- ``MessageIdsSynchronized`` on the peer of a cluster with a replay increment: its outbound sequence numbers jump by it
  (IPSEC_REPLAY_COUNTER_SYNC, RFC 6311).

The other way, what the kernel tells the daemon: a byte, packet or sequence-number limit
(``EspLimitReached`` -> ``child_sa_limit_reached``, XFRM_MSG_EXPIRE; each SA counts against its own soft limits,
drawn per SA as strongSwan does, so whichever reaches its own first asks for the rekey) and UDP-encapsulated ESP from
a new address (``EspPeerMoved`` -> ``esp_peer_moved``, XFRM_MSG_MAPPING).

In fleet mode (``ikesim.sim.fleet_traffic``) the same events drive a crypto-free SAD that writes its timeline
(``sad``, ``ikesim.sim.fleet_sad.FleetSad``) instead of the ESP plane.

A policy is (connection, child): the configuration the CHILD_SAs of one tunnel instantiate, which keeps the
same outbound slot across rekeys. The control windows the traffic tables attribute losses to are noted here
too: a CHILD rekey from its ``RekeyStarted`` until both peers have removed the old SA, an IKE rekey until
the old IKE_SA is deleted, a reauthentication (RFC 7296 §2.8.3, ``ikesim.ike.reauth``) from its
``IkeSaReauthenticating`` (make-before-break or break-before-make) until both the old IKE_SA is deleted and the
new one has installed a CHILD_SA (the later of the two: make-before-break deletes the old one last,
break-before-make first), on the node that reauthenticates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ikesim.esp import EspDataPlane, EspLimitReached, EspLimits, EspPeerMoved
from ikesim.ike import events as ev
from ikesim.types import NATT_PORT, Address

if TYPE_CHECKING:
    from ikesim.crypto.suites import Suite
    from ikesim.ike.daemon import IkeDaemon
    from ikesim.metrics.traffic_log import TrafficLog
    from ikesim.rng import Rng
    from ikesim.sim.fleet_sad import FleetSad

__all__ = ["ACQUIRE_EXPIRES", "NodeDataPlane", "Policy", "outer_addresses"]

ACQUIRE_EXPIRES = 30.0
"""Seconds an acquire stands before a packet may trigger another (Linux ``net.core.xfrm_acq_expires``)."""

Policy = tuple[str, str]
"""(connection, child): the outbound slot one tunnel's CHILD_SAs share across rekeys."""


def outer_addresses(local: Address, peer: Address, *, nat: bool = True) -> tuple[Address, Address]:
    """The ESP packets' outer endpoints: UDP 4500 after NAT-T floated because of a NAT (RFC 3948), else ESP itself
    (port 0). A MOBIKE IKE_SA floats to 4500 without a NAT (*nat* False): its ESP stays plain, as strongSwan
    enables UDP encapsulation only when a NAT was detected (``child_sa`` ``encap``)."""
    if nat and NATT_PORT in (local.port, peer.port):
        return local, peer
    return Address(local.ip, 0), Address(peer.ip, 0)


def _encap(sa: Any) -> bool:
    """True unless the IKE_SA floated for MOBIKE alone (RFC 4555 §3.3 without a NAT, RFC 3948)."""
    return sa is None or not sa.mobike or sa.nat_local or sa.nat_peer


@dataclass(slots=True)
class _Pair:
    """What the node needs to switch a CHILD_SA's outbound direction on later."""

    policy: Policy
    spi_out: bytes
    suite: Suite
    encr_key_out: bytes
    integ_key_out: bytes
    limits: EspLimits
    """The outbound SA's limits (its own soft draws; the inbound SA has its own, ``ChildSa.rekey_bytes_in``)."""
    initiator: bool
    """True on the peer that initiated the exchange that created the pair."""


def _pair_ident(spi_in: bytes, spi_out: bytes, initiator: bool) -> str:
    """A CHILD_SA pair named alike on both peers: the creating initiator's inbound SPI, then the responder's."""
    first, second = (spi_in, spi_out) if initiator else (spi_out, spi_in)
    return f"{first.hex()}/{second.hex()}"


class NodeDataPlane:
    """One node's ``EspDataPlane`` kept in step with its ``IkeDaemon`` (see the module docstring)."""

    __slots__ = ("esp", "daemon", "log", "node", "_pairs", "_handlers", "on_outbound", "service", "_acquired",
                 "sad", "last_in", "_reauth_of", "_reauth_open")

    def __init__(self, daemon: IkeDaemon, rng: Rng, *, replay_window: int, log: TrafficLog, node: str) -> None:
        self.esp = EspDataPlane(rng, replay_window=replay_window)
        self.sad: EspDataPlane | FleetSad = self.esp
        """The SAD the daemon's events drive: ``esp`` (per-packet mode), or fleet mode's crypto-free
        ``ikesim.sim.fleet_sad.FleetSad``, which keeps the same state and writes its timeline (``use_sad``)."""
        self.daemon = daemon
        self.log = log
        self.node = node
        self._pairs: dict[bytes, _Pair] = {}
        """spi_in -> the pair's outbound half, for every CHILD_SA installed and not deleted."""
        self.on_outbound: Callable[[Policy], None] | None = None
        """Told when a policy gets an outbound SA (a flow holding packets sends them)."""
        self.last_in: dict[bytes, float] = {}
        """spi_in -> when a packet last arrived on it: the use stats the daemon's DPD asks for (``child_use``)."""
        daemon.child_use = self.last_in.get
        self._acquired: dict[str, float] = {}
        """Trapped connection -> when its last acquire initiated it."""
        self._reauth_of: dict[bytes, str] = {}
        """Local SPI of a new IKE_SA that reauthenticates another -> the ``reauth`` window it closes."""
        self._reauth_open: set[str] = set()
        """The ``reauth`` windows whose old IKE_SA is not deleted yet (their idents: its local SPI, hex)."""
        self.service: Callable[[], object] | None = None
        """The node's ``service``: called after the daemon was told something (it may want to send)."""
        self._handlers: dict[type, Callable[[Any, float], None]] = {
            ev.ChildSaInstalled: self._installed,
            ev.ChildSaOutboundInstalled: self._outbound,
            ev.ChildSaDeleted: self._deleted,
            ev.SaExpired: self._expired,
            ev.NatTraversalStarted: self._moved,
            ev.PeerAddressChanged: self._moved,
            ev.IkeSaMoved: self._moved,
            ev.RekeyStarted: self._rekey_started,
            ev.IkeSaDeleted: self._ike_deleted,
            ev.ChildSaActivated: self._installed,
            ev.MessageIdsSynchronized: self._replay_sync,
            ev.IkeSaReauthenticating: self._reauth_started,
            ev.IkeSaReestablishing: self._reestablishing,
        }

    def use_sad(self, sad: FleetSad) -> None:
        """Drive *sad* instead of the ESP plane (fleet mode; before the daemon's first event)."""
        self.sad = sad

    def on_event(self, event: Any, now: float) -> None:
        """Follow one daemon event (called for every event, in order, before the node sends anything)."""
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event, now)

    # --- IKE -> ESP ----------------------------------------------------------------------

    def _installed(self, e: ev.ChildSaInstalled, now: float) -> None:
        child = self.daemon.children.get(e.spi_in)
        if child is None:
            return
        # each SA its own soft limits (strongSwan draws per installed SA), the same hard ones (RFC 4301 §4.4.2.1)
        limits_in = EspLimits(soft_bytes=child.rekey_bytes_in, hard_bytes=child.life_bytes,
                              soft_packets=child.rekey_packets_in, hard_packets=child.life_packets)
        limits_out = EspLimits(soft_bytes=child.rekey_bytes_out, hard_bytes=child.life_bytes,
                               soft_packets=child.rekey_packets_out, hard_packets=child.life_packets)
        sa = self.daemon.sas.get(e.spi_i) or self.daemon.sas.get(e.spi_r)
        src, dst = outer_addresses(e.local, e.peer, nat=_encap(sa))
        self.sad.add_inbound(e.spi_in, child.suite, e.encr_key_in, e.integ_key_in, peer=dst, limits=limits_in)
        pair = _Pair((e.connection, e.child), e.spi_out, child.suite, e.encr_key_out, e.integ_key_out, limits_out,
                     child.initiator)
        self._pairs[e.spi_in] = pair
        if e.outbound:
            self._send_with(pair, src, dst)
        if self._reauth_of:
            ident = self._reauth_of.pop(e.spi_i, None)  # the new IKE_SA's first CHILD_SA
            if ident is not None:
                self.log.close_window(e.connection, "reauth", ident, now)

    def _outbound(self, e: ev.ChildSaOutboundInstalled, now: float) -> None:
        pair = self._pairs.get(e.spi_in)
        if pair is None:
            return
        sa = self.daemon.sas.get(e.spi_i) or self.daemon.sas.get(e.spi_r)
        if sa is None:
            return
        src, dst = outer_addresses(sa.local, sa.peer, nat=_encap(sa))
        self._send_with(pair, src, dst)

    def _send_with(self, pair: _Pair, src: Address, dst: Address) -> None:
        self.sad.set_outbound(pair.policy, pair.spi_out, pair.suite, pair.encr_key_out, pair.integ_key_out,
                              src=src, dst=dst, limits=pair.limits)
        if self.on_outbound is not None:
            self.on_outbound(pair.policy)

    def _deleted(self, e: ev.ChildSaDeleted, now: float) -> None:
        self.sad.remove_inbound(e.spi_in)
        pair = self._pairs.pop(e.spi_in, None)
        if pair is not None:
            out = self.sad.outbound(pair.policy)
            if out is not None and out.spi == e.spi_out:
                self.sad.clear_outbound(pair.policy)
            self.log.close_window(e.connection, "child_rekey", _pair_ident(e.spi_in, e.spi_out, pair.initiator), now)

    def _expired(self, e: ev.SaExpired, now: float) -> None:
        if e.kind is not ev.SaKind.CHILD:
            return
        self.sad.expire(e.spi)
        pair = self._pairs.get(e.spi)
        if pair is not None:
            self.sad.expire(pair.spi_out)

    def _moved(self, e: Any, now: float) -> None:
        """The IKE_SA's addresses changed: its CHILD_SAs' ESP follows (RFC 7296 §2.23, RFC 3948, RFC 4555 §3.5)."""
        sa = self.daemon.sas.get(e.spi_i) or self.daemon.sas.get(e.spi_r)
        if sa is None:
            return
        src, dst = outer_addresses(sa.local, sa.peer, nat=_encap(sa))
        for spi_in in sa.children:
            pair = self._pairs.get(spi_in)
            if pair is None:
                continue
            inbound = self.sad.inbound(spi_in)
            if inbound is not None:
                inbound.peer = dst
            out = self.sad.outbound(pair.policy)
            if out is not None and out.spi == pair.spi_out:
                self.sad.move_outbound(pair.policy, src, dst)

    def _replay_sync(self, e: ev.MessageIdsSynchronized, now: float) -> None:
        """The cluster asked us (IPSEC_REPLAY_COUNTER_SYNC, RFC 6311) to advance our outbound sequence numbers."""
        if e.role != "peer" or not e.replay_delta:
            return
        sa = self.daemon.sas.get(e.spi_i) or self.daemon.sas.get(e.spi_r)
        if sa is None:
            return
        for spi_in in sa.children:
            pair = self._pairs.get(spi_in)
            out = self.sad.outbound(pair.policy) if pair is not None else None
            if out is not None and out.spi == pair.spi_out and hasattr(out, "seq"):  # type: ignore[union-attr]
                out.seq += e.replay_delta

    # --- control windows ------------------------------------------------------------------

    def _rekey_started(self, e: ev.RekeyStarted, now: float) -> None:
        if e.kind is not ev.SaKind.CHILD:
            self.log.open_window(e.connection, "ike_rekey", e.old_spi.hex(), now)
            return
        pair = self._pairs.get(e.old_spi)
        if pair is not None:
            self.log.open_window(e.connection, "child_rekey", _pair_ident(e.old_spi, e.old_spi_out, pair.initiator), now)

    def _ike_deleted(self, e: ev.IkeSaDeleted, now: float) -> None:
        for spi in (e.spi_i, e.spi_r):
            self.log.close_window(e.connection, "ike_rekey", spi.hex(), now)
        if self._reauth_of:
            self._reauth_of.pop(e.spi_i, None)
        if self._reauth_open:
            for spi in (e.spi_i, e.spi_r):
                ident = spi.hex()
                if ident in self._reauth_open:
                    self._reauth_open.discard(ident)
                    self.log.close_window(e.connection, "reauth", ident, now)

    def _reauth_started(self, e: ev.IkeSaReauthenticating, now: float) -> None:
        """A reauthentication starts (RFC 7296 §2.8.3): its window, named by the old IKE_SA's local SPI."""
        if e.action not in ("make_before_break", "break_before_make"):
            return
        sa = self.daemon.sas.get(e.spi_i) or self.daemon.sas.get(e.spi_r)
        if sa is not None:
            self.log.open_window(e.connection, "reauth", sa.local_spi.hex(), now)
            self._reauth_open.add(sa.local_spi.hex())

    def _reestablishing(self, e: ev.IkeSaReestablishing, now: float) -> None:
        """The new IKE_SA of a reauthentication: its first CHILD_SA closes the old one's window (RFC 7296 §2.8.3)."""
        if e.reason == "reauth":
            self._reauth_of[e.spi_i] = e.old_spi.hex()

    # --- ESP -> IKE -----------------------------------------------------------------------

    def acquire(self, connection: str, now: float) -> None:
        """A packet hit *connection*'s trap policy: initiate it, unless an IKE_SA of it exists or an acquire is
        younger than ``ACQUIRE_EXPIRES`` (strongSwan's trap_manager and the kernel's acquire state)."""
        last = self._acquired.get(connection)
        if last is not None and now - last < ACQUIRE_EXPIRES:
            return
        if any(sa.name == connection for sa in self.daemon.sas.values()):
            return
        self._acquired[connection] = now
        self.daemon.initiate(connection, now)
        if self.service is not None:
            self.service()

    def tell_daemon(self, now: float) -> None:
        """Hand the ESP plane's notes to the daemon (limits reached, peer moved), then let the node send."""
        esp, daemon = self.sad, self.daemon
        note = esp.next_event()
        if note is None:
            return
        while note is not None:
            if type(note) is EspLimitReached:
                daemon.child_sa_limit_reached(note.spi, hard=note.hard, counter=note.counter, now=now)
            elif type(note) is EspPeerMoved:
                daemon.esp_peer_moved(note.spi, note.new, now)
            note = esp.next_event()
        if self.service is not None:
            self.service()
