"""Fleet mode: CHILD_SA volume lifetimes (RFC 4301 §4.4.2.1) without a packet: when each SA reaches its limits.

Per-packet mode counts the packets and inner bytes each ESP SA protects (outbound) or accepts (inbound) and
tells the daemon, with ``EspLimitReached``, at the packet that reaches a soft or a hard limit
(``ikesim.esp.sa``): the send time of that packet for an outbound SA, its arrival for an inbound one. Fleet
mode tells the daemon at the same simulated times, from the SA timeline (``ikesim.sim.fleet_sad``) and the send
times of the flows (``ikesim.metrics.traffic_timeline``):

- outbound: the packets the policy's flows send from the instant the SA became its outbound SA; the limit is
  reached at the send time of the packet that makes the count (or the bytes) reach it, found by bisection on
  the counts (exact: the same float comparisons as the per-packet sender). The SA must still be the policy's
  outbound SA, not expired, then;
- inbound: the packets sent with the SA's SPI to this node that are delivered to this SA (the walk of
  ``ikesim.sim.fleet_eval``), counted by arrival time. The future is not known yet, so the time is a
  projection: the state now (SAs, NAT mappings, addresses) is taken to last; it is made again whenever the
  state changes in a way that could deliver packets sooner (the sender's outbound SA or addresses, the
  receiver's new SA, a NAT mapping), and at the projected time the count is taken again from what happened
  (packets that arrived by then met only known state); short of the limit, it is projected anew.

The packet that reaches a hard limit still passes; the SA is expired from just after it (``JUST_AFTER``), and so
are the changes the daemon makes in reply to that SA (an outbound SA: to its policy's outbound SA); its other
changes apply from the instant itself, as every change does (``FleetSad.passing``). Several packets sent at the very
same instant are counted together (per-packet mode would expire the SA between them). Which cases are exact, and
which fleet mode refuses (random sizes with a byte limit, random loss, Poisson traffic, the sequence-number
limit): ``ikesim.scenario.build_traffic``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Protocol

from ikesim.esp import EspLimitReached, EspLimits
from ikesim.metrics.traffic_log import DELIVERED
from ikesim.metrics.traffic_timeline import PoissonTimes
from ikesim.sim.fleet_eval import FleetFlow, NatHistory, Outcome, Walker
from ikesim.sim.fleet_sad import JUST_AFTER

if TYPE_CHECKING:
    import simpy

    from ikesim.sim.data_network import DataNetwork
    from ikesim.sim.fleet_path import Paths
    from ikesim.sim.fleet_sad import FleetSad, InboundSa, OutboundSa
    from ikesim.types import Address

__all__ = ["FleetLimits", "LimitHost", "limited", "delay_to"]

_INF = math.inf


class LimitHost(Protocol):
    """What the counting needs of fleet mode's data plane (``ikesim.sim.fleet_traffic.FleetTraffic``)."""

    env: simpy.Environment
    data: DataNetwork
    paths: Paths
    sads: dict[str, FleetSad]
    nats: dict[str, NatHistory]
    addresses: list[Address]

    def flows_of(self, node: str, policy: Hashable) -> list[FleetFlow]:
        """The flow directions *node* sends through *policy*."""
        ...

    def ever_sent_with(self, spi: bytes) -> list[FleetFlow]:
        """The flow directions whose sender has sent with the outbound SA *spi* so far."""
        ...

    def walker_now(self) -> Walker:
        """The walker of the run (the receivers' installed SAs, no end)."""
        ...


def limited(limits: EspLimits | None) -> bool:
    """Whether *limits* hold a byte or packet limit (RFC 4301 §4.4.2.1; the sequence number: not in fleet mode)."""
    return limits is not None and bool(limits.soft_bytes or limits.hard_bytes or limits.soft_packets
                                       or limits.hard_packets)


class _Count:
    """One SA counted against its limits: which, since when, and the notes made so far."""

    __slots__ = ("node", "sa", "policy", "since", "soft_done", "hard_done", "generation")

    def __init__(self, node: str, sa: OutboundSa | InboundSa, policy: Hashable | None, since: float) -> None:
        self.node, self.sa, self.policy, self.since = node, sa, policy, since
        self.soft_done = self.hard_done = False
        self.generation = 0
        """Bumped by every new plan: a scheduled check of an older plan does nothing."""


Counter = Callable[[float], tuple[int, int]]
"""Packets and bytes counted on an SA by a time (inclusive)."""


class FleetLimits:
    """Counts fleet mode's SAs against their volume limits and tells the daemons (see the module docstring)."""

    def __init__(self, fleet: LimitHost) -> None:
        self.fleet = fleet
        self._out: dict[tuple[str, Hashable], _Count] = {}
        self._in: dict[tuple[str, bytes], _Count] = {}
        self._node: dict[str, set[_Count]] = {}
        """Node -> its SAs being counted."""
        self._batch: dict[float, list[tuple[tuple[int, bool], list[float], Callable[[], None]]]] = {}
        """Checks being scheduled at one instant (``_stage``)."""
        self.sizes: dict[int, int] = {}
        """Flow code -> its fixed inner packet size (``ikesim.scenario.build_traffic`` refuses byte limits on
        flows without one); a flow not listed counts 0 bytes."""

    # --- what changed ---------------------------------------------------------------------------

    def outbound_changed(self, node: str, policy: Hashable, now: float) -> None:
        """*policy* on *node* sends with another SA, or from other addresses, or expired: count anew, re-project."""
        sad = self.fleet.sads[node]
        sa = sad.outbound(policy)
        key = (node, policy)
        count = self._out.get(key)
        if sa is None or sa.expired or not limited(sa.limits):
            if count is not None:
                self._forget(self._out, key, count)
        elif count is None or count.sa is not sa:
            if count is not None:
                self._forget(self._out, key, count)
            since = self._first_send(node, policy, sa.src, sa.dst, sa.spi, sad.outbound_log[policy].at[-1])
            count = self._out[key] = _Count(node, sa, policy, since)
            self._node.setdefault(node, set()).add(count)
            self._plan_out(count, now)
        if sa is not None:
            for f in self.fleet.flows_of(node, policy):
                self.replan_in(f.flow.receiver, sa.spi, now)

    def inbound_changed(self, node: str, spi: bytes, now: float) -> None:
        """*node* installed the inbound SA *spi* (or its peer moved): count a new SA from its installation."""
        sad = self.fleet.sads[node]
        sa = sad.inbound(spi)
        key = (node, spi)
        count = self._in.get(key)
        if sa is None or not limited(sa.limits) or (count is not None and count.sa is sa):
            return
        if count is not None:
            self._forget(self._in, key, count)
        count = self._in[key] = _Count(node, sa, None, sad.inbound_log.installed[sa.row])
        self._node.setdefault(node, set()).add(count)
        self._plan_in(count, now)

    def _forget(self, where: dict, key: object, count: _Count) -> None:  # type: ignore[type-arg]
        """Stop counting *count* (its SA is gone, expired, or replaced)."""
        count.generation += 1
        if where.get(key) is count:
            del where[key]
        self._node.get(count.node, set()).discard(count)

    def counting_inbound(self) -> bool:
        """Whether any inbound SA is being counted."""
        return bool(self._in)

    def replan_in(self, node: str, spi: bytes, now: float) -> None:
        """Packets with SPI *spi* may reach *node* sooner than projected: project its inbound SA's limits again."""
        count = self._in.get((node, spi))
        if count is not None:
            self._plan_in(count, now)

    # --- outbound ------------------------------------------------------------------------------

    def _sent(self, count: _Count) -> Counter:
        """Packets and bytes the policy's flows send from ``count.since`` to a time (inclusive)."""
        flows = self.fleet.flows_of(count.node, count.policy)
        since, sizes = count.since, self.sizes
        for f in flows:
            _condition(f)

        def sent(t: float) -> tuple[int, int]:
            packets = nbytes = 0
            after = math.nextafter(t, _INF)
            for f in flows:
                n = f.times.count(since, after)
                packets += n
                nbytes += n * sizes.get(f.code, 0)
            return packets, nbytes

        return sent

    def _plan_out(self, count: _Count, now: float) -> None:
        flows = self.fleet.flows_of(count.node, count.policy)
        sent = self._sent(count)
        end = max((f.stop for f in flows), default=now)
        reach = None
        if len(flows) == 1 and isinstance(flows[0].times, PoissonTimes):  # the n-th send time: one draw, kept
            since, times, size = count.since, flows[0].times, self.sizes.get(flows[0].code, 0)

            def reach(i: int, need: int) -> float | None:
                n = need if i == 0 else -(-need // size) if size else 0
                return times.nth_at_or_after(since, n) if n else None

        self._schedule(count, sent, now, end, self._fire_out, reach)

    def _fire_out(self, count: _Count, generation: int, hard: bool, counter: str, soft: str | None) -> None:
        sad = self.fleet.sads[count.node]
        if generation != count.generation or sad.outbound(count.policy) is not count.sa or count.sa.expired:
            return
        self._report(count, sad, hard, counter, soft, lambda: sad.expire_outbound(count.policy))
        if not count.hard_done:
            self._plan_out(count, self.fleet.env.now)

    # --- inbound -------------------------------------------------------------------------------

    def _received(self, count: _Count) -> tuple[Counter, float]:
        """Packets and bytes delivered to the inbound SA by a time (inclusive), as the state now says; and the
        last arrival possible."""
        parts, end = self._parts(count)
        since = math.nextafter(count.since, -_INF)

        def received(t: float) -> tuple[int, int]:
            packets = nbytes = 0
            for f, a, b, out, size in parts:
                n = _arrived(f, a, b, out, t) - _arrived(f, a, b, out, since)
                packets += n
                nbytes += n * size
            return packets, nbytes

        return received, end

    def _parts(self, count: _Count) -> tuple[list[tuple[FleetFlow, float, float, Outcome, int]], float]:
        """The pieces of the flows sending with the inbound SA's SPI that deliver to it, as the state now says
        (each: flow, send times, walk, packet size); and the last arrival possible."""
        fleet, node, sa = self.fleet, count.node, count.sa
        code = int.from_bytes(sa.spi, "big")
        walker = Walker(fleet.paths, fleet.sads, fleet.nats, _INF)
        parts: list[tuple[FleetFlow, float, float, Outcome, int]] = []
        seen: set[int] = set()
        end = count.since
        for f in fleet.ever_sent_with(sa.spi):
            if f.flow.receiver != node or f.code in seen:
                continue
            seen.add(f.code)
            _condition(f)
            log = fleet.sads[f.flow.sender].outbound_log.get(f.policy)
            if log is None:
                continue
            size = self.sizes.get(f.code, 0)
            for i in range(len(log)):
                if log.spi[i] != code or log.expired[i]:
                    continue
                src, dst = fleet.addresses[log.src[i]], fleet.addresses[log.dst[i]]
                a = max(self._first_send(f.flow.sender, f.policy, src, dst, sa.spi, log.at[i]), f.start)
                until = min(log.at[i + 1] if i + 1 < len(log) else _INF, f.stop)
                while a < until:
                    out = walker.walk(f.flow.sender, src, dst, code, a)
                    b = min(until, out.nxt) if out.nxt > a else math.nextafter(a, _INF)
                    if out.fate == DELIVERED and out.where == node:
                        parts.append((f, a, b, out, size))
                        end = max(end, out.arrival(b))
                    a = b
        return parts, end

    def _plan_in(self, count: _Count, now: float) -> None:
        received, end = self._received(count)
        parts = self._parts(count)[0]
        reach = None
        if parts and any(isinstance(f.times, PoissonTimes) for f, *_rest in parts):
            since = count.since

            def reach(i: int, need: int) -> float | None:  # the n-th delivered send time: one draw, kept
                for f, a, b, out, size in parts:
                    n = need if i == 0 else -(-need // size) if size else 0
                    lo = max(a, since - out.offset)
                    if not n or not lo < b:
                        continue
                    have = f.times.count(lo, b)
                    if have < n:
                        need -= have if i == 0 else have * size
                        continue
                    sent = f.times.nth_at_or_after(lo, n)  # type: ignore[attr-defined]
                    return out.arrival(sent) if sent is not None else None
                return None

        self._schedule(count, received, now, end, self._fire_in, reach)

    def _fire_in(self, count: _Count, generation: int, hard: bool, counter: str, soft: str | None) -> None:
        sad = self.fleet.sads[count.node]
        if generation != count.generation:
            return
        if sad.inbound(count.sa.spi) is not count.sa or count.sa.expired:
            self._forget(self._in, (count.node, count.sa.spi), count)
            return
        now = self.fleet.env.now
        received, _end = self._received(count)
        reached = _notes(count, count.sa.limits, received(now))  # type: ignore[arg-type]
        if reached is None:  # the state changed on the way: not yet
            self._plan_in(count, now)
            return
        hard, counter, soft = reached
        self._report(count, sad, hard, counter, soft, lambda: sad.expire_inbound(count.sa.spi))
        if not count.hard_done:
            self._plan_in(count, now)

    # --- both ----------------------------------------------------------------------------------

    def _schedule(self, count: _Count, counted: Counter, now: float, end: float,
                  fire: Callable[[_Count, int, bool, str, str | None], None],
                  reach: Callable[[int, int], float | None] | None = None) -> None:
        """Schedule the check at the first time at or after *now* the counts reach a limit not yet noted (found by
        bisection on *counted*, or by *reach*: (0 packets / 1 bytes, limit) -> time)."""
        count.generation += 1
        limits: EspLimits = count.sa.limits  # type: ignore[assignment]
        at = _INF
        for done, n_packets, n_bytes in ((count.soft_done, limits.soft_packets, limits.soft_bytes),
                                         (count.hard_done, limits.hard_packets, limits.hard_bytes)):
            if done:
                continue
            for i, need in ((0, n_packets), (1, n_bytes)):
                if need:
                    if reach is not None:
                        t = reach(i, need)
                        t = t if t is not None and t >= now else None
                    else:
                        t = _reach(lambda x, i=i: counted(x)[i], now, max(end, now), need)  # type: ignore[misc]
                    if t is not None:
                        at = min(at, t)
        if at == _INF:
            return
        reached = _notes(count, limits, counted(at))
        if reached is None:
            return
        generation = count.generation
        hard, counter, soft = reached

        def call() -> None:
            fire(count, generation, hard, counter, soft)

        env = self.fleet.env
        chain, code = self._chain(count, at)
        chain = [t for t in chain if t > env.now] or [at]
        first = chain[0]
        batch = self._batch.get(first)
        key = (code, count.policy is not None)  # one send: its packet is on the link before the daemon hears
        if batch is not None:
            batch.append((key, chain, call))
        elif len(chain) == 1:
            env.timeout(delay_to(env.now, at)).callbacks.append(lambda _ev: call())
        else:  # as per-packet mode schedules that packet's events: each after what was scheduled before it
            self._batch[first] = [(key, chain, call)]
            env.timeout(delay_to(env.now, first)).callbacks.append(lambda _ev: self._stage(first))

    def _stage(self, first: float) -> None:
        """Follow the chains of the packets whose first events per-packet mode schedules now, in flow order (its
        senders, started in flow order, keep that order among their sends at one instant)."""
        for _key, chain, call in sorted(self._batch.pop(first), key=lambda item: item[0]):
            self._follow(chain, 1, call)

    def _follow(self, chain: list[float], i: int, call: Callable[[], None]) -> None:
        """Schedule the next event of *chain* (the check itself after the last)."""
        env = self.fleet.env
        if i >= len(chain):
            call()
            return
        env.timeout(delay_to(env.now, chain[i])).callbacks.append(lambda _ev: self._follow(chain, i + 1, call))

    def _report(self, count: _Count, sad: FleetSad, hard: bool, counter: str, soft: str | None,
                expire: Callable[[], None]) -> None:
        """RFC 4301 §4.4.2.1: the soft note and/or the hard one (the SA expired first), then the daemon hears them."""
        now = self.fleet.env.now
        inbound = count.policy is None
        sad.passing = (now, self._before(count, now))
        try:
            if soft is not None:
                count.soft_done = True
                sad.queue_event(EspLimitReached(count.sa.spi, inbound, False, soft))
            if hard:
                count.hard_done = True
                expire()
                sad.queue_event(EspLimitReached(count.sa.spi, inbound, True, counter))
            self.fleet.data.planes[count.node].tell_daemon(now)
        finally:
            sad.passing = None


    def _first_send(self, node: str, policy: Hashable, src: Address, dst: Address, spi: bytes, since: float) -> float:
        """From when an outbound SA that *policy* sends with from *since* on counts: a send at that very instant went
        with the SA before if per-packet mode scheduled it (one packet interval before) before the message that
        switched (one link delay before, from the peer)."""
        gaps = [g for g in (_gap(f, since) for f in self.fleet.flows_of(node, policy)) if g is not None]
        if not gaps:
            return since
        walk = self.fleet.walker_now().walk(node, src, dst, int.from_bytes(spi, "big"), since)
        if walk.delays and max(gaps) > walk.delays[0]:
            return math.nextafter(since, _INF)
        return since

    def _chain(self, count: _Count, at: float) -> tuple[list[float], int]:
        """The instants at which per-packet mode schedules the events that bring the packet reaching *count*'s limit
        at *at* (its send one packet interval before its send; then each link it enters), and its flow's code."""
        if count.policy is not None:
            best: tuple[list[float], int] = ([at], -1)
            for f in self.fleet.flows_of(count.node, count.policy):
                gap = _gap(f, at)
                if gap is not None and (best[1] < 0 or at - gap < best[0][0]):
                    best = ([at - gap, at], f.code)
            return best
        for f, a, b, out, _size in self._parts(count)[0]:
            s = f.times.last_at_or_before(min(at - out.offset, math.nextafter(b, -_INF)))
            while s is not None and s >= a and out.arrival(s) > at:
                s = f.times.last_at_or_before(math.nextafter(s, -_INF))
            if s is None or s < a or out.arrival(s) != at:
                continue
            gap = _gap(f, s)
            chain = [s - gap] if gap is not None else []
            t = s
            chain.append(t)
            for d in out.delays:
                t += d
                chain.append(t)
            return chain, f.code
        return [at], -1

    def _before(self, count: _Count, now: float) -> Callable[[Hashable | None, bytes | None], bool]:
        """Whether packets at *now* of a policy's outbound SA (sends) or of an inbound SA (arrivals) met it before
        the packet that reached *count*'s limit (which passed): SimPy runs events at one instant in the order they
        were scheduled, a send one packet interval before, an arrival one (last) link delay before."""
        fleet, node = self.fleet, count.node
        chain = self._chain(count, now)[0]
        scheduled = chain[-2] if len(chain) > 1 else now

        def before(policy: Hashable | None, spi: bytes | None) -> bool:
            if policy is not None:
                if policy == count.policy:
                    return True  # that very send
                gaps = [g for g in (_gap(f, now) for f in fleet.flows_of(node, policy)) if g is not None]
                return bool(gaps) and all(now - g < scheduled for g in gaps)
            if spi is not None:
                if count.policy is None and spi == count.sa.spi:
                    return True  # that very arrival
                delay = self._last_delay(node, spi, now)
                return delay is not None and now - delay < scheduled
            return False

        return before

    def _last_delay(self, node: str, spi: bytes, now: float) -> float | None:
        """The delay of the last link into *node* of the packets sent to it with SPI *spi* (None: none was)."""
        found = self._last_link(node, spi, now)
        return found[0] if found is not None else None

    def _last_link(self, node: str, spi: bytes, now: float) -> tuple[float, int] | None:
        """The delay of the last link into *node* of the packets sent to it with SPI *spi* (the addresses they were
        last sent with), and their flow's code; None if none was."""
        fleet = self.fleet
        code = int.from_bytes(spi, "big")
        for f in fleet.ever_sent_with(spi):
            log = fleet.sads[f.flow.sender].outbound_log.get(f.policy) if f.flow.receiver == node else None
            for i in range(len(log) - 1, -1, -1) if log is not None else ():
                if log.spi[i] == code and log.src[i] >= 0:  # type: ignore[union-attr]
                    walk = fleet.walker_now().walk(f.flow.sender, fleet.addresses[log.src[i]],  # type: ignore[union-attr]
                                                   fleet.addresses[log.dst[i]], code, now)  # type: ignore[union-attr]
                    if walk.where == node and walk.delays:
                        return walk.delays[-1], f.code
                    break
        return None


def _condition(f: FleetFlow) -> None:
    """Poisson send times: keep what is drawn from now on (``PoissonTimes.condition``), so that the tables count
    the packets the limits were reached with."""
    if isinstance(f.times, PoissonTimes):
        f.times.condition()


def _gap(f: FleetFlow, now: float) -> float | None:
    """How long before *now* the send of *f*'s packet at *now* was scheduled (its previous packet); None: none now
    (or Poisson send times: not known without a draw, and at one instant with another event only by chance)."""
    times = f.times
    if not times.exact or times.next_at_or_after(now) != now:
        return None
    prev = times.last_at_or_before(math.nextafter(now, -_INF))
    return now - prev if prev is not None else now


def delay_to(now: float, at: float) -> float:
    """The timeout that SimPy (``now + delay``) lands at *at* exactly, the float the packet's time is (0 if past)."""
    if at <= now:
        return 0.0
    delay = at - now
    while now + delay < at:
        delay = math.nextafter(delay, _INF)
    while now + delay > at and delay > 0:
        delay = math.nextafter(delay, -_INF)
    return delay


def _notes(count: _Count, limits: EspLimits, counted: tuple[int, int]) -> tuple[bool, str, str | None] | None:
    """The notes the counts make (``_EspSa._reached``): (hard, hard counter, soft counter or None); None: none."""
    packets, nbytes = counted
    soft = None
    if not count.soft_done:
        soft = _first(packets, nbytes, limits.soft_packets, limits.soft_bytes)
    hard = None if count.hard_done else _first(packets, nbytes, limits.hard_packets, limits.hard_bytes)
    if soft is None and hard is None:
        return None
    return hard is not None, hard or "", soft


def _first(packets: int, nbytes: int, max_packets: int, max_bytes: int) -> str | None:
    """The counter a note names when a packet reaches limits: packets before bytes (``ikesim.esp.sa._first``)."""
    if max_packets and packets >= max_packets:
        return "packets"
    if max_bytes and nbytes >= max_bytes:
        return "bytes"
    return None


def _reach(counted: Callable[[float], int], lo: float, hi: float, need: int) -> float | None:
    """The first time in ``[lo, hi]`` at which the nondecreasing step function *counted* is at least *need*.

    Bisection down to adjacent floats: the step is at a packet's time, which is then *hi*.
    """
    if counted(lo) >= need:
        return lo
    if counted(hi) < need:
        return None
    while True:
        mid = lo + (hi - lo) / 2
        if not lo < mid < hi:
            return hi
        if counted(mid) >= need:
            hi = mid
        else:
            lo = mid


def _arrived(f: FleetFlow, a: float, b: float, out: Outcome, t: float) -> int:
    """Packets of *f* sent in ``[a, b)`` on a path that delivers them (*out*) that arrived by *t* (inclusive)."""
    times = f.times
    if not times.exact:  # Poisson (conditioned): send times up to t less the path's delay (float rounding aside)
        x = min(b, t - out.offset + JUST_AFTER)
        return times.count(a, x) if x > a else 0
    last = times.last_at_or_before(min(t - out.offset, math.nextafter(b, -_INF)))
    while last is not None and last >= a and out.arrival(last) > t:  # float rounding: one earlier
        last = times.last_at_or_before(math.nextafter(last, -_INF))
    nxt = times.next_at_or_after(math.nextafter(last, _INF) if last is not None else a)
    while nxt is not None and nxt < b and out.arrival(nxt) <= t:  # float rounding: one later
        last, nxt = nxt, times.next_at_or_after(math.nextafter(nxt, _INF))
    if last is None or last < a:
        return 0
    return times.count(a, math.nextafter(last, _INF))
