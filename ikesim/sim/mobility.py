"""Multi-homed hosts: interfaces that go up and down, and the movement processes that switch them.

A host may have several interfaces (``wlan``, ``lte``), each carrying one of its addresses, with its own link
into the network and a priority (lower = preferred). In the topology each interface is a vertex of its own,
``<host>/<interface>`` (``ikesim.sim.topology``): a datagram the host sends leaves through the interface that
owns its source address, and one addressed to an interface's address arrives only through its link. A datagram
sent from, or arriving at, an interface that is down is dropped with fate ``interface_down``.

Interfaces change state at simulated times: scripted steps, or a movement process (RFC 4555 §1.1's
multihomed, moving host):

- ``scripted``: a list of (time, interface, up/down);
- ``commuter``: alternate between two interfaces, a switch every ``period`` seconds;
- ``random_dwell``: stay on each interface of a list in turn for an exponential time of mean ``mean``.

A switch from interface A to B is make-before-break (B up, A down ``overlap`` s later) or break-before-make
(A down, B up ``gap`` s later). The schedules are plain iterators of ``Step``; a ``movement`` process applies
them. Randomness comes only from the stream it is given (the simulation's ``rng.child("mobility", host)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ikesim.errors import ConfigError

if TYPE_CHECKING:
    import simpy

    from ikesim.rng import Rng

__all__ = ["Step", "Interface", "Interfaces", "scripted", "commuter", "random_dwell", "movement", "delay_until",
           "INTERFACE_DOWN"]

INTERFACE_DOWN = "interface_down"
"""The fate of a datagram sent from, or arriving at, an interface that is down."""


@dataclass(frozen=True, slots=True)
class Step:
    """One change of a movement schedule: *interface* goes up (or down) at *at* seconds."""

    at: float
    interface: str
    up: bool


@dataclass(slots=True)
class Interface:
    """One interface of a multi-homed host: its address, priority (lower = preferred) and state."""

    host: str
    name: str
    address: str
    priority: int
    up: bool

    @property
    def vertex(self) -> str:
        """Its vertex in the topology: ``<host>/<name>``."""
        return f"{self.host}/{self.name}"


class Interfaces:
    """The interfaces of a simulation's multi-homed hosts, by host and by topology vertex."""

    __slots__ = ("by_host", "by_vertex", "_by_source")

    def __init__(self) -> None:
        self.by_host: dict[str, list[Interface]] = {}
        """Host -> its interfaces in the order they were added."""
        self.by_vertex: dict[str, Interface] = {}
        """``<host>/<name>`` -> the interface."""
        self._by_source: dict[tuple[str, str], Interface] = {}

    def add(self, iface: Interface) -> None:
        """Register *iface* (a second interface of one name on a host is a ConfigError)."""
        if iface.vertex in self.by_vertex:
            raise ConfigError(f"duplicate interface {iface.name!r} on {iface.host!r}")
        self.by_host.setdefault(iface.host, []).append(iface)
        self.by_vertex[iface.vertex] = iface
        self._by_source[(iface.host, iface.address)] = iface

    def get(self, host: str, name: str) -> Interface:
        """*host*'s interface *name* (ConfigError if it has none of that name)."""
        iface = self.by_vertex.get(f"{host}/{name}")
        if iface is None:
            known = ", ".join(i.name for i in self.by_host.get(host, ())) or "none"
            raise ConfigError(f"{host!r} has no interface {name!r} (has: {known})")
        return iface

    def source(self, host: str, ip: str) -> Interface | None:
        """The interface of *host* that owns source address *ip* (None: no interface of *host* has it)."""
        return self._by_source.get((host, ip))

    def usable(self, host: str) -> list[str]:
        """*host*'s usable addresses: those of its interfaces that are up, best (lowest priority) first; equal
        priorities keep the order the interfaces were added in (RFC 4555 §3.5: the preferred address first)."""
        up = [i for i in self.by_host.get(host, ()) if i.up]
        return [i.address for i in sorted(up, key=lambda i: i.priority)]


def scripted(steps: Iterable[Step]) -> Iterator[Step]:
    """*steps* in time order (steps at one time keep their order)."""
    return iter(sorted(steps, key=lambda s: s.at))


def _switch(at: float, old: str, new: str, make_before_break: bool, overlap: float, gap: float) -> tuple[Step, Step]:
    """Leave *old* for *new* starting at *at*: *new* up, *old* down *overlap* s later (make-before-break), or
    *old* down, *new* up *gap* s later (break-before-make)."""
    if make_before_break:
        return Step(at, new, True), Step(at + overlap, old, False)
    return Step(at, old, False), Step(at + gap, new, True)


def _check_switch(interfaces: Sequence[str], overlap: float, gap: float) -> None:
    if len(interfaces) < 2 or len(set(interfaces)) != len(interfaces):
        raise ValueError(f"a movement needs at least two different interfaces, got {list(interfaces)}")
    if not (overlap >= 0 and gap >= 0 and math.isfinite(overlap) and math.isfinite(gap)):
        raise ValueError(f"overlap {overlap} and gap {gap} must be finite and not negative")


def commuter(*, period: float, interfaces: tuple[str, str], make_before_break: bool = True, overlap: float = 0.0,
             gap: float = 0.0) -> Iterator[Step]:
    """Alternate between two interfaces forever: on ``interfaces[0]`` at first, a switch starts at every multiple
    of *period* seconds (``k * period``, k = 1, 2, ...); *overlap* or *gap* must be shorter than *period*."""
    _check_switch(interfaces, overlap, gap)
    if not (period > 0 and math.isfinite(period)) or max(overlap, gap) >= period:
        raise ValueError(f"commuter: period {period} must be finite and longer than overlap {overlap} and gap {gap}")
    return _commute(period, interfaces, make_before_break, overlap, gap)


def _commute(period: float, interfaces: tuple[str, str], mbb: bool, overlap: float, gap: float) -> Iterator[Step]:
    old, new = interfaces
    k = 1
    while True:
        yield from _switch(k * period, old, new, mbb, overlap, gap)
        old, new = new, old
        k += 1


def random_dwell(rng: Rng, *, mean: float, interfaces: Sequence[str], make_before_break: bool = True,
                 overlap: float = 0.0, gap: float = 0.0) -> Iterator[Step]:
    """Stay on each of *interfaces* in turn (cyclically, starting on the first) for an exponential dwell time of
    mean *mean* seconds, drawn from *rng* when the previous switch is done; the next dwell starts when the switch
    (its *overlap* or *gap*) is over. Draws happen only as the iterator is consumed."""
    _check_switch(interfaces, overlap, gap)
    if not (mean > 0 and math.isfinite(mean)):
        raise ValueError(f"random dwell: mean {mean} must be finite and more than 0")
    return _dwell(rng, mean, tuple(interfaces), make_before_break, overlap, gap)


def _dwell(rng: Rng, mean: float, interfaces: tuple[str, ...], mbb: bool, overlap: float, gap: float) -> Iterator[Step]:
    t, i, n = 0.0, 0, len(interfaces)
    while True:
        t += -mean * math.log(1.0 - rng.random())
        first, second = _switch(t, interfaces[i], interfaces[(i + 1) % n], mbb, overlap, gap)
        yield first
        yield second
        t = second.at
        i = (i + 1) % n


def delay_until(now: float, at: float) -> float:
    """The shortest timeout after which SimPy's clock (``now + delay``) reads *at* or later: exactly *at* whenever a
    float sum can (0 if *at* is not after *now*)."""
    if at <= now:
        return 0.0
    delay = at - now  # exact when now >= at / 2 (Sterbenz), else within an ulp or two of the right one
    while now + delay < at:
        delay = math.nextafter(delay, math.inf)
    for _ in range(4):  # one of the few floats just below still reaching *at*, if the difference rounded up
        shorter = math.nextafter(delay, 0.0)
        if shorter <= 0 or now + shorter < at:
            break
        delay = shorter
    return delay


def movement(env: simpy.Environment, steps: Iterable[Step], change: Callable[[str, bool], None]) -> Generator[
        simpy.Event, None, None]:
    """A SimPy process: apply each step at its time with ``change(interface, up)``; a step whose time has passed
    applies at once. Timing: one timeout per step, the clock reading each step's time exactly."""
    for step in steps:
        delay = delay_until(env.now, step.at)
        if delay > 0:
            yield env.timeout(delay)
        change(step.interface, step.up)
