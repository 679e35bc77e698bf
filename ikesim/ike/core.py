"""Shared machinery of the IKE core: events, window, timers, lifecycle (RFC 7296 §2.1–§2.3, §2.8).

``IkeCore`` holds a daemon's state (IKE_SAs by local SPI, CHILD_SAs by
inbound SPI, deadlines, outbox, event queue). The per-exchange modules
(``ike_sa_init``, ``ike_auth``, ``create_child_sa``, ``ike_rekey``,
``informational``) act on it; ``IkeDaemon`` adds the driver API on top.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import cached_property, lru_cache

from ikesim.crypto.meter import OpCounter
from ikesim.crypto.suites import Suite
from ikesim.errors import LocalProtocolError
from ikesim.ike import events as ev
from ikesim.ike import fragmentation, lifetimes
from ikesim.ike.config import DaemonConfig, RetransmitPolicy
from ikesim.ike.cookies import CookieJar, HalfOpenTable
from ikesim.ike.exchange import Exchange, Work
from ikesim.ike.profile import ConnectionProfile, ts_text
from ikesim.ike.sa import ChildSa, IkeSa
from ikesim.ike.state import (
    ChildSaState,
    ChildSaTrigger,
    IkeSaState,
    IkeSaTrigger,
    next_child_state,
    next_ike_state,
)
from ikesim.ike.timers import DeadlineBook
from ikesim.ike.transport import natt_address
from ikesim.rng import Rng
from ikesim.types import Address, Datagram
from ikesim.wire.codec import protect_message
from ikesim.wire.iana import ExchangeType, HeaderFlag
from ikesim.wire.message import Message
from ikesim.wire.payloads import Payload

__all__ = ["IkeCore", "WorkStarter"]

WorkStarter = Callable[["IkeCore", IkeSa, Work, float], bool]
"""Starts a queued request; returns False if the work became moot (e.g. the SA is gone)."""


_HEADER_FLAGS = {(initiator, response): HeaderFlag((HeaderFlag.INITIATOR if initiator else 0)
                                                   | (HeaderFlag.RESPONSE if response else 0))
                 for initiator in (False, True) for response in (False, True)}
"""(I, R) -> header flags (RFC 7296 §3.1), built once: ``IntFlag |`` per message goes through ``Enum.__call__``."""


@lru_cache(maxsize=256)
def _schedule(policy: RetransmitPolicy) -> tuple[float, ...]:
    """The policy's retransmission waits, computed once per configuration (RFC 7296 §2.1)."""
    return tuple(policy.timeouts())


def _reason(work: Work | None) -> str:
    """``ExchangeStarted.reason``: why a Delete is sent, or ``recreate`` for a CHILD_SA created anew (§2.25.1)."""
    if work is None:
        return ""
    if work.reason:
        return work.reason
    return work.trigger if work.purpose == "create_child" and work.trigger != "command" else ""


class IkeCore:
    """State and helpers shared by every exchange module (sans-IO, RFC 7296)."""

    def __init__(self, config: DaemonConfig, *, rng: Rng, meter: OpCounter | None = None) -> None:
        self.config = config
        self.name = config.name
        self.meter = meter
        self.rng = rng
        """Nonces, IKE SPIs and CHILD SPIs are drawn here with ``draw(purpose, n)`` (pinnable)."""
        self.profiles = {c.name: ConnectionProfile.build(c) for c in config.connections}
        self.responder_profiles: dict[str | None, list[ConnectionProfile]] = {}
        """Connections that can answer (no remote_addr) by expected remote identity (None = any),
        in configuration order: IKE_AUTH's IDi lookup (RFC 7296 §2.15) without scanning them all."""
        for profile in self.profiles.values():
            if profile.connection.remote_addr is None:
                self.responder_profiles.setdefault(profile.connection.remote_id, []).append(profile)
        self.sas: dict[bytes, IkeSa] = {}
        self.children: dict[bytes, ChildSa] = {}
        self.responder_index: dict[tuple[bytes, Address], bytes] = {}
        """(peer spi_i, peer address) -> local SPI of a responder IKE_SA (for duplicates)."""
        self.half_open = HalfOpenTable()
        """Responder IKE_SAs waiting for IKE_AUTH, counted in all and per peer IP (``ike.cookies``)."""
        self.closed: dict[bytes, tuple[IkeSa, float]] = {}
        """Removed IKE_SAs still answering retransmissions of their last request from the response
        cache (RFC 7296 §2.1), by local SPI, with the time they are forgotten; insertion-ordered."""
        self.clock = 0.0
        """The latest ``now`` the driver handed in (for bookkeeping that has no ``now`` argument)."""
        self.timers = DeadlineBook()
        self.outbox: list[Datagram] = []
        self.events: list[ev.IkeEvent] = []
        """Events for ``next_event()``, oldest first (a list: an empty deque is 760 bytes per daemon)."""
        self.starters: dict[str, WorkStarter] = {}
        """purpose -> function that builds and sends the request (filled by the daemon)."""
        self.by_spi_out: dict[bytes, bytes] | None = None
        """CHILD_SA spi_out -> spi_in, built by the first ``spi_out_index()`` call (a data plane reporting outbound
        SAs, ``ike.limits``) and kept up to date from then on; None until then, so fleets that never ask pay nothing."""
        self.child_use: Callable[[bytes], float | None] | None = None
        """The data plane's use stats: spi_in -> when a packet last arrived on that CHILD_SA (None: never), as
        strongSwan asks the kernel; DPD counts it as inbound traffic (RFC 7296 §2.4). None: no data plane."""
        self.rx: tuple[Address, Address] = (Address("0.0.0.0", 0), Address("0.0.0.0", 0))
        """(src, dst) of the message being processed: MOBIKE answers and moves by it (RFC 4555 §3.5)."""
        self.report_answers = False
        """Emit ``RequestAnswered`` for every request answered (a cluster member replicating message IDs)."""
        self.ha_replay_delta: dict[bytes, int] = {}
        """Local IKE SPI -> the IPSEC_REPLAY_COUNTER_SYNC increment its coming RFC 6311 synchronization asks for."""
        self.usable: tuple[str, ...] | None = None
        """The host's usable IP addresses, best first (``set_local_addresses``); None: every configured address."""

    # ------------------------------------------------------------------ streams, built on first use
    # A stream's draws depend only on its seed and name, not on when it is built: a fleet's clients
    # never make cookies, and a daemon's streams are built when first drawn from.
    @cached_property
    def rng_ke(self) -> Rng:
        """Key exchange private values (RFC 7296 §1.2, §2.18)."""
        return self.rng.child("ke")

    @cached_property
    def rng_iv(self) -> Rng:
        """SK payload IVs (RFC 7296 §3.14)."""
        return self.rng.child("iv")

    @cached_property
    def rng_jitter(self) -> Rng:
        """Retransmission and collision-retry jitter (RFC 7296 §2.1, §2.25; lifetimes: ``ike.lifetimes``)."""
        return self.rng.child("jitter")

    @cached_property
    def rng_lifetime(self) -> Rng:
        """Soft-lifetime draws of IKE_SAs and CHILD_SAs (RFC 7296 §2.8; ``ike.lifetimes``)."""
        return self.rng.child("lifetime")

    @cached_property
    def rng_volume(self) -> Rng:
        """Jitter of the CHILD_SA soft byte and packet limits (RFC 7296 §2.8; ``ike.limits``)."""
        return self.rng.child("volume_jitter")

    @cached_property
    def rng_reauth(self) -> Rng:
        """Reauthentication deadlines and their retries (RFC 7296 §2.8.3; ``ike.reauth``)."""
        return self.rng.child("reauth")

    @cached_property
    def rng_cookie2(self) -> Rng:
        """COOKIE2 values of MOBIKE (RFC 4555 §3.5)."""
        return self.rng.child("cookie2")

    @cached_property
    def rng_mid_sync(self) -> Rng:
        """The nonces of RFC 6311 message ID synchronizations (``ike.ha_sync``)."""
        return self.rng.child("mid_sync")

    @cached_property
    def cookies(self) -> CookieJar:
        """Cookie secrets and threshold clocks of the responder (RFC 7296 §2.6; ``ike.cookies``)."""
        return CookieJar(self.rng.child("cookie"))

    # ------------------------------------------------------------------ basics
    def emit(self, event: ev.IkeEvent) -> None:
        """Queue an event for ``next_event()``."""
        self.events.append(event)

    def send(self, sa: IkeSa, data: bytes) -> None:
        """Queue one datagram from the SA's local address to its peer."""
        self.outbox.append(Datagram(data, sa.local, sa.peer))

    def send_all(self, sa: IkeSa, datagrams: Sequence[bytes]) -> None:
        """Queue a message's datagrams (one, or every SKF fragment, RFC 7383 §2.5) to the SA's peer."""
        for data in datagrams:
            self.send(sa, data)

    def request_source(self, sa: IkeSa) -> Address:
        """Where our requests on *sa* leave from: its local address while usable, else (MOBIKE) the best usable
        one, on port 4500 (RFC 4555 §3.5; strongSwan ``ike_mobike.c`` ``apply_port``)."""
        usable = self.usable
        if not sa.mobike or not usable or sa.local.ip in usable:
            return sa.local
        return natt_address(usable[0], sa.local)

    def send_request(self, sa: IkeSa, datagrams: Sequence[bytes], src: Address | None = None,
                     dst: Address | None = None) -> None:
        """Queue a request's datagrams from *src* (default ``request_source``) to *dst* (default the peer)."""
        src = src or self.request_source(sa)
        dst = dst or sa.peer
        self.outbox.extend(Datagram(d, src, dst) for d in datagrams)

    def resend_request(self, sa: IkeSa, ex: Exchange, reason: str) -> None:
        """Send our request in flight again at once, from where our requests leave now (RFC 7296 §2.1, RFC 4555
        §3.5), the retransmission schedule unchanged: ``Retransmitted`` with *reason* (``local_moved``)."""
        self.send_request(sa, ex.request)
        self.emit(ev.Retransmitted(**sa.ids(), exchange=ex.exchange_name, purpose=ex.purpose,
                                   message_id=ex.message_id, attempt=ex.attempts, reason=reason))

    def last_esp_in(self, sa: IkeSa) -> float | None:
        """When ESP last arrived on any CHILD_SA of *sa*, from the data plane's use stats (None: unknown, or never)."""
        use = self.child_use
        if use is None:
            return None
        times = [t for t in map(use, sa.children) if t is not None]
        return max(times) if times else None

    def new_ike_spi(self) -> bytes:
        """Draw an unused, non-zero 8-byte IKE SPI (RFC 7296 §2.6)."""
        while True:
            spi = self.rng.draw("ike_spi", 8)
            if spi != bytes(8) and spi not in self.sas:
                return spi

    def new_child_spi(self) -> bytes:
        """Draw an unused ESP SPI >= 256 (RFC 4303 §2.1)."""
        while True:
            spi = self.rng.draw("child_spi", 4)
            if int.from_bytes(spi, "big") >= 256 and spi not in self.children:
                return spi

    def new_nonce(self, sa: IkeSa) -> bytes:
        """Draw a nonce (RFC 7296 §2.10); pinnable with ``rng.force("nonce", ...)``."""
        return self.rng.draw("nonce", sa.profile.connection.ike.nonce_size)

    def timeouts(self, policy: RetransmitPolicy) -> tuple[float, ...]:
        """The retransmission waits, each jittered once if ``jitter`` > 0 (RFC 7296 §2.1)."""
        waits = _schedule(policy)
        if policy.jitter > 0:
            waits = tuple([t - self.rng_jitter.uniform(0.0, policy.jitter * t) for t in waits])
        return waits

    def header(self, sa: IkeSa, exchange_type: ExchangeType, message_id: int,
               response: bool) -> Message:
        """The IKE header for a message on *sa* (RFC 7296 §3.1: I flag = original initiator)."""
        return Message(sa.spi_i, sa.spi_r, exchange_type, _HEADER_FLAGS[sa.initiator, response], message_id)

    def seal(self, sa: IkeSa, exchange_type: ExchangeType, message_id: int, response: bool,
             inner: Sequence[Payload]) -> bytes:
        """Encrypt *inner* into an SK payload on *sa* (RFC 7296 §3.14)."""
        head = self.header(sa, exchange_type, message_id, response)
        return protect_message(head, tuple(inner), sa.protect_out)

    def seal_datagrams(self, sa: IkeSa, exchange_type: ExchangeType, message_id: int, response: bool,
                       inner: Sequence[Payload]) -> tuple[bytes, ...]:
        """``seal``, split into SKF fragments when it would exceed ``fragment_size`` (RFC 7383 §2.5)."""
        head = self.header(sa, exchange_type, message_id, response)
        return fragmentation.protect(self, sa, head, inner)

    # ------------------------------------------------------------------ requests
    def start_request(self, sa: IkeSa, exchange_type: ExchangeType, purpose: str,
                      data: bytes | tuple[bytes, ...], message_id: int, now: float, *,
                      work: Work | None = None, src: Address | None = None, dst: Address | None = None,
                      send: bool = True) -> Exchange:
        """Send a request (one datagram or its fragments) and track it for retransmission (RFC 7296 §2.1, §2.3).

        *src*/*dst* default to the IKE_SA's path (MOBIKE: from the best usable address if ours is gone, RFC 4555
        §3.5); without *send* nothing leaves (a MOBIKE path test sends on every path itself)."""
        if isinstance(data, bytes):
            data = (data,)
        policy = sa.profile.connection.ike.retransmit
        waits = self.timeouts(policy)
        ex = Exchange(exchange_type, purpose, message_id, data, waits, now + waits[0], work=work)
        sa.active = ex
        self.timers.arm(("rtx", sa.local_spi), ex.deadline)
        self.emit(ev.ExchangeStarted(**sa.ids(), exchange=exchange_type.name, purpose=purpose,
                                     message_id=message_id, peer=sa.peer,
                                     reason=_reason(work)))
        if send:
            self.send_request(sa, data, src, dst)
        return ex

    def request(self, sa: IkeSa, exchange_type: ExchangeType, purpose: str,
                inner: Sequence[Payload], now: float, *, work: Work | None = None) -> Exchange:
        """Encrypt and send the next request on *sa* with the next message ID (RFC 7296 §2.3)."""
        mid = sa.next_message_id
        sa.next_message_id += 1
        data = self.seal_datagrams(sa, exchange_type, mid, False, inner)
        ex = self.start_request(sa, exchange_type, purpose, data, mid, now, work=work)
        ex.inner = inner  # type: ignore[assignment]  # built fresh per request, never changed
        return ex

    def complete(self, sa: IkeSa, ex: Exchange, outcome: str) -> None:
        """Close our exchange: ExchangeCompleted and the window opens (RFC 7296 §2.3)."""
        if sa.active is ex:
            sa.active = None
            self.timers.cancel(("rtx", sa.local_spi))
        if ex.purpose == "rekey_ike" and self.sas.get(ex.new_spi) is sa:
            del self.sas[ex.new_spi]  # the SPI reserved for the new IKE_SA
        self.emit(ev.ExchangeCompleted(**sa.ids(), exchange=ex.exchange_name, purpose=ex.purpose,
                                       message_id=ex.message_id, outcome=outcome,
                                       retransmissions=ex.attempts))

    def enqueue(self, sa: IkeSa, work: Work, now: float, *, front: bool = False) -> None:
        """Queue a request behind the one in flight (window size 1, RFC 7296 §2.3)."""
        if front:
            sa.queue.insert(0, work)
        else:
            sa.queue.append(work)
        self.pump(sa, now)

    def pump(self, sa: IkeSa, now: float) -> None:
        """Start queued requests while the window is open (RFC 7296 §2.3)."""
        while sa.active is None and sa.queue and sa.state in (
            IkeSaState.ESTABLISHED, IkeSaState.REKEYED, IkeSaState.DELETING
        ):
            work = sa.queue.pop(0)
            if sa.state is not IkeSaState.ESTABLISHED and work.purpose not in ("delete_ike",
                                                                                 "delete_child"):
                continue
            self.starters[work.purpose](self, sa, work, now)

    # ------------------------------------------------------------------ responses
    def respond(self, sa: IkeSa, exchange_type: ExchangeType, message_id: int,
                inner: Sequence[Payload]) -> None:
        """Send and cache the response to the peer's request (RFC 7296 §2.1)."""
        data = self.seal_datagrams(sa, exchange_type, message_id, True, inner)
        sa.last_response = data
        sa.peer_message_id = message_id + 1
        if self.report_answers:
            self.emit(ev.RequestAnswered(**sa.ids(), exchange=exchange_type.name, message_id=message_id))
        if sa.mobike:  # RFC 4555 §3.5 (strongSwan): answered to where the request came from
            src, dst = self.rx
            self.outbox.extend(Datagram(d, dst, src) for d in data)
            return
        self.send_all(sa, data)

    # ------------------------------------------------------------------ lifetimes
    def arm_ike_timers(self, sa: IkeSa, now: float) -> None:
        """Draw and arm the IKE_SA's soft/hard deadlines once (RFC 7296 §2.8), reauthentication (§2.8.3), DPD (§2.4)."""
        ike = sa.profile.connection.ike
        sa.rekey_at, sa.expire_at = lifetimes.ike_deadlines(self, ike.lifetime, ike.reauth_time, now)
        if ike.reauth_time > 0:
            self.arm_reauth(sa, now)
        spi = sa.local_spi
        if sa.rekey_at is not None:
            self.timers.arm(("ike_soft", spi), sa.rekey_at)
        if sa.expire_at is not None:
            self.timers.arm(("ike_hard", spi), sa.expire_at)
        sa.last_received_at = now
        self.arm_dpd(sa)

    def arm_dpd(self, sa: IkeSa) -> None:
        """Liveness check after ``dpd_delay`` seconds of inbound silence (RFC 7296 §2.4)."""
        delay = sa.profile.connection.ike.dpd_delay
        if delay > 0 and sa.state is IkeSaState.ESTABLISHED:
            self.timers.arm(("dpd", sa.local_spi), sa.last_received_at + delay)

    def cancel_ike_timers(self, sa: IkeSa) -> None:
        """Cancel every deadline of an IKE_SA (after a rekey or on removal)."""
        spi = sa.local_spi
        for kind in ("ike_soft", "ike_hard", "dpd", "half_open", "retry_ike", "stale_ike", "redundant_ike", "reauth"):
            self.timers.cancel((kind, spi))

    def volume_jitter(self, rekey: int, jitter: int) -> int:
        """A soft volume limit: *rekey* minus a whole number in 0 .. min(*jitter*, *rekey* - 1) (RFC 7296 §2.8).

        strongSwan ``child_cfg.c`` ``apply_jitter``: never 0 (which would mean no limit). Drawn from
        ``rng_volume`` only when both are set, so lifetimes without volume jitter draw nothing.
        """
        if rekey <= 0 or jitter <= 0:
            return rekey
        return rekey - self.rng_volume.below(min(jitter + 1, rekey))

    def arm_child_timers(self, child: ChildSa, now: float) -> None:
        """Draw and arm a CHILD_SA's soft and hard deadlines once (RFC 7296 §2.8; one draw per SA, ``ike.lifetimes``);
        its soft volume limits too, from their own stream, one draw per installed SA as strongSwan's ``get_lifetime``
        in ``install_internal``: inbound bytes, inbound packets, then outbound bytes, outbound packets (RFC 4301 §4.4.2.1)."""
        lifetime = child.profile.policy.lifetime
        child.rekey_at, child.expire_at = lifetimes.child_deadlines(self, lifetime, now)
        b, p = (lifetime.rekey_bytes, lifetime.rand_bytes), (lifetime.rekey_packets, lifetime.rand_packets)
        child.rekey_bytes_in, child.rekey_packets_in = self.volume_jitter(*b), self.volume_jitter(*p)
        child.rekey_bytes_out, child.rekey_packets_out = self.volume_jitter(*b), self.volume_jitter(*p)
        child.life_bytes, child.life_packets = lifetime.life_bytes, lifetime.life_packets
        if child.rekey_at is not None:
            self.timers.arm(("child_soft", child.spi_in), child.rekey_at)
        if child.expire_at is not None:
            self.timers.arm(("child_hard", child.spi_in), child.expire_at)

    def cancel_child_timers(self, child: ChildSa) -> None:
        """Cancel a CHILD_SA's lifetime and retry deadlines (it was rekeyed or removed)."""
        for kind in ("child_soft", "child_hard", "retry_child"):
            self.timers.cancel((kind, child.spi_in))

    # ------------------------------------------------------------------ SA lifecycle
    def establish(self, sa: IkeSa, now: float, *, rekey_of: bytes | None = None) -> None:
        """Mark the IKE_SA established, arm timers, emit the event (RFC 7296 §1.2, §1.3.2)."""
        if sa.state is IkeSaState.CONNECTING:
            sa.state = next_ike_state(sa.state, IkeSaTrigger.AUTHENTICATED)
        self.half_open.discard(sa.local_spi)
        self.timers.cancel(("half_open", sa.local_spi))
        sa.rekey_of = rekey_of
        self.arm_ike_timers(sa, now)
        suite, keys = sa.suite, sa.keys
        assert suite is not None and keys is not None
        sa.keys = replace(keys, sk_pi=b"", sk_pr=b"")  # RFC 7296 §2.15: only AUTH uses them, and AUTH is done
        conn = sa.profile.connection
        self.emit(ev.IkeSaEstablished(
            **sa.ids(), initiator=sa.initiator, local=sa.local, peer=sa.peer,
            local_id=conn.local_id, peer_id=sa.peer_id, encr=suite.encr_name,
            integ=suite.integ_name, prf=suite.prf_name, group=suite.group_name, rekey_of=rekey_of,
            rekey_at=sa.rekey_at, expire_at=sa.expire_at, sk_ei=keys.sk_ei, sk_er=keys.sk_er,
            sk_ai=keys.sk_ai, sk_ar=keys.sk_ar, encr_wireshark=suite.wireshark_ike_encr,
            integ_wireshark=suite.wireshark_ike_integ))

    def arm_reauth(self, sa: IkeSa, now: float) -> None:
        """The established *sa* has a ``reauth_time``: the daemon arms its deadline and bounds ``expire_at`` by it
        (``ike.reauth``, RFC 7296 §2.8.3). The bare core does nothing."""

    def ike_sa_removing(self, sa: IkeSa, reason: str) -> None:
        """Called first by ``remove_ike_sa``, while *sa* is still whole (the time is ``clock``): the daemon retries,
        re-establishes or traps there as configured (``ike.reestablish``, RFC 7296 §2.4). The bare core does nothing."""

    def reauthenticate(self, sa: IkeSa, now: float) -> None:
        """Without MOBIKE, our address under *sa* went away: the daemon re-establishes from another address
        (strongSwan ``roam`` -> ``reauth``, ``ike.mobike``). The bare core does nothing."""

    def roam_client(self, sa: IkeSa, now: float) -> None:
        """Our address under the client IKE_SA *sa* went away and its connection's ``roam`` is ``follow`` or ``smart``:
        the daemon runs that strategy (``ike.reconnect``; RFC 7296 §2.23, RFC 4555). The bare core does nothing."""

    def remove_ike_sa(self, sa: IkeSa, reason: str) -> None:
        """Remove an IKE_SA and every CHILD_SA it owns (RFC 7296 §1.4.1); emit IkeSaDeleted."""
        if sa.state is IkeSaState.DELETED:
            return
        self.ike_sa_removing(sa, reason)
        if sa.active is not None:
            self.complete(sa, sa.active, "aborted")
        sa.queue.clear()
        for child in list(sa.children.values()):
            # A rekeyed CHILD_SA went down once already, when it was replaced (strongSwan test_regular_delete_timeout).
            self.remove_child(sa, child, "rekeyed" if child.state is ChildSaState.REKEYED else "ike_deleted")
        self.cancel_ike_timers(sa)
        self.timers.cancel(("rtx", sa.local_spi))
        sa.state = next_ike_state(sa.state, IkeSaTrigger.REMOVED)
        self.sas.pop(sa.local_spi, None)
        self._remember_closed(sa)
        self.half_open.discard(sa.local_spi)
        if sa.half_open_key is not None:
            self.responder_index.pop(sa.half_open_key, None)
        self.emit(ev.IkeSaDeleted(**sa.ids(), reason=reason))

    def _remember_closed(self, sa: IkeSa) -> None:
        """Keep a removed IKE_SA's response cache for one retransmission window (RFC 7296 §2.1).

        Only an answer to an encrypted request can be asked for again here: a half-open IKE_SA (only
        IKE_SA_INIT answered) is not kept, nor its keys. The ``closed`` timer forgets it.
        """
        if sa.last_response and sa.protect_in is not None and sa.last_response != (sa.init_response,):
            until = self.clock + sum(sa.profile.connection.ike.retransmit.timeouts())
            self.closed[sa.local_spi] = (sa, until)
            self.timers.arm(("closed", sa.local_spi), until)

    def install_child(self, sa: IkeSa, child: ChildSa, now: float,
                      rekey_of: ChildSa | None = None, *, outbound: bool = True) -> None:
        """Install a CHILD_SA pair, arm lifetimes, emit ChildSaInstalled (RFC 7296 §1.3, §2.8).

        With *outbound* the node sends with it at once (and stops sending with any other SA of the
        same child); without, only the inbound SA is in use until ``activate_outbound``.
        """
        sa.children[child.spi_in] = child
        self.children[child.spi_in] = child
        if self.by_spi_out is not None:
            self.by_spi_out[child.spi_out] = child.spi_in
        child.ike_spi = sa.local_spi
        self.arm_child_timers(child, now)
        if outbound:
            self._take_outbound(sa, child)
        s: Suite = child.suite
        self.emit(ev.ChildSaInstalled(
            **sa.ids(), child=child.name, spi_in=child.spi_in, spi_out=child.spi_out,
            initiator=child.initiator, encr=s.encr_name, integ=s.integ_name,
            pfs_group=child.pfs_group, local_ts=ts_text(child.local_ts),
            remote_ts=ts_text(child.remote_ts), outbound=outbound,
            rekey_of=rekey_of.spi_in if rekey_of is not None else None,
            rekey_of_out=rekey_of.spi_out if rekey_of is not None else None,
            rekey_at=child.rekey_at, expire_at=child.expire_at, local=sa.local, peer=sa.peer,
            encr_key_in=child.encr_key_in, integ_key_in=child.integ_key_in,
            encr_key_out=child.encr_key_out, integ_key_out=child.integ_key_out))

    def _take_outbound(self, sa: IkeSa, child: ChildSa) -> ChildSa | None:
        """Make *child* the one outbound SA of its configuration on *sa*; return the one it replaces."""
        previous = None
        name = child.profile.policy.name
        for other in sa.children.values():
            if other.outbound and other is not child and other.profile.policy.name == name:
                other.outbound = False
                previous = other
        child.outbound = True
        return previous

    def activate_outbound(self, sa: IkeSa, child: ChildSa, replaces: ChildSa | None = None) -> None:
        """Start sending with a CHILD_SA installed inbound-only (rekey responder, RFC 7296 §2.8).

        Never one we are deleting, nor one the peer deleted (RFC 7296 §1.4.1): a deleted SA stays dead."""
        if (child.outbound or child.state is ChildSaState.DELETED or child.state is ChildSaState.DELETING
                or child.expired or child.peer_deleted):
            return
        previous = self._take_outbound(sa, child) or replaces
        self.emit(ev.ChildSaOutboundInstalled(**sa.ids(), child=child.name, spi_in=child.spi_in,
                                              spi_out=child.spi_out,
                                              replaces=previous.spi_in if previous else b""))

    def hand_over_outbound(self, sa: IkeSa, child: ChildSa) -> None:
        """*child* must no longer be sent with: move outbound to its replacement, if any (RFC 7296 §2.8)."""
        if not child.outbound:
            return
        child.outbound = False
        new = self.children.get(child.replaced_by) if child.replaced_by else None
        if new is not None and new.ike_spi == sa.local_spi:
            self.activate_outbound(sa, new, child)

    def remove_child(self, sa: IkeSa, child: ChildSa, reason: str) -> None:
        """Remove a CHILD_SA pair from the node; emit ChildSaDeleted (RFC 7296 §1.4.1)."""
        if child.state is ChildSaState.DELETED:
            return
        self.hand_over_outbound(sa, child)
        self.cancel_child_timers(child)
        self.timers.cancel(("linger", child.spi_in))
        child.state = next_child_state(child.state, ChildSaTrigger.REMOVED)
        sa.children.pop(child.spi_in, None)
        self.children.pop(child.spi_in, None)
        if self.by_spi_out is not None and self.by_spi_out.get(child.spi_out) == child.spi_in:
            del self.by_spi_out[child.spi_out]
        self.emit(ev.ChildSaDeleted(**sa.ids(), child=child.name, spi_in=child.spi_in,
                                    spi_out=child.spi_out, reason=reason))

    def retire_child(self, child: ChildSa, new: ChildSa) -> None:
        """The old CHILD_SA is replaced by *new*: timers off; outbound moves with ``activate_outbound`` (§1.3.3)."""
        child.state = next_child_state(child.state, ChildSaTrigger.REPLACED)
        child.replaced_by = new.spi_in
        for kind in ("child_soft", "retry_child"):  # the hard lifetime still bounds its outbound use
            self.timers.cancel((kind, child.spi_in))

    def linger_child(self, sa: IkeSa, child: ChildSa, now: float) -> None:
        """Stop sending with a rekeyed SA; keep it inbound ``delete_rekeyed_delay`` s (RFC 7296 §2.8)."""
        self.hand_over_outbound(sa, child)
        delay = child.profile.policy.delete_rekeyed_delay
        self.timers.arm(("linger", child.spi_in), now + delay)

    def owner(self, child: ChildSa) -> IkeSa:
        """The IKE_SA that currently owns *child*."""
        return self.sas[child.ike_spi]

    def find_sa(self, local_spi: bytes) -> IkeSa:
        """The IKE_SA with this local SPI; LocalProtocolError if unknown."""
        sa = self.sas.get(local_spi)
        if sa is None or sa.local_spi != local_spi:
            raise LocalProtocolError(f"unknown IKE_SA {local_spi.hex()}")
        return sa

    def find_child(self, spi_in: bytes) -> ChildSa:
        """The CHILD_SA with this inbound SPI; LocalProtocolError if unknown."""
        child = self.children.get(spi_in)
        if child is None:
            raise LocalProtocolError(f"unknown CHILD_SA {spi_in.hex()}")
        return child

    def spi_out_index(self) -> dict[bytes, bytes]:
        """spi_out -> spi_in of every CHILD_SA, built on first use and kept by install/remove (RFC 4301 §4.4.2)."""
        if self.by_spi_out is None:
            self.by_spi_out = {child.spi_out: spi_in for spi_in, child in self.children.items()}
        return self.by_spi_out

    def child_by_spi_out(self, sa: IkeSa, spi_out: bytes) -> ChildSa | None:
        """Our CHILD_SA whose outbound SPI the peer names (RFC 7296 §3.10.1, §3.11)."""
        for child in sa.children.values():
            if child.spi_out == spi_out:
                return child
        return None

    def collision_retry_at(self, sa: IkeSa, now: float) -> float:
        """When to retry a rekey after TEMPORARY_FAILURE: base - U(0, jitter) (RFC 7296 §2.25)."""
        pol = sa.profile.connection.ike
        jitter = 0.0
        if pol.collision_retry_jitter > 0:
            jitter = self.rng_jitter.uniform(0.0, pol.collision_retry_jitter)
        return now + max(0.0, pol.collision_retry_base - jitter)
