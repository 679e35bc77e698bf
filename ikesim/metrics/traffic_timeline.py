"""Fleet mode's traffic record: packet-time models and the interval rows the SA/path timeline becomes.

In fleet mode (``data_plane: {mode: fleet}``) no packet is simulated. Each flow direction's packets follow a
*packet-time model* and ``ikesim.sim.fleet_eval`` cuts its send times into *pieces* of constant state (sender
SA, path, receiver SA); a piece's packets share one fate (or one path whose links lose packets at random).
``IntervalRows`` holds one row per piece and fate, as typed columns: the flow code, the piece's send-time
range ``[t0, t1)``, its packets, the send times of the first and the last of them, the SPI, the fate, where it
met it and its offset (fate time minus send time, NaN in flight).

Models (the patterns of ``ikesim.sim.traffic.FlowSender``):

- ``ConstantTimes``: packet k at ``start + k / rate`` (the same float expression as ``FlowSender``), exact:
  counts, first and last packets are the per-packet mode's to the bit;
- ``PoissonTimes``: counts are Poisson draws per piece (pieces are disjoint, so their counts are independent
  and add up to a Poisson process), first/last are uniform order statistics, splits are binomial;
- ``OnOffTimes``: exponential on and off periods drawn up front, constant rate (a ``ConstantTimes`` grid from
  each period's start) while on; exact given the periods.
"""

from __future__ import annotations

import math
from array import array
from typing import Protocol

import numpy as np

__all__ = ["name_code", "PacketTimes", "ConstantTimes", "PoissonTimes", "OnOffTimes", "IntervalRows", "IntervalSource"]


class PacketTimes(Protocol):
    """When one flow direction sends (see the module docstring)."""

    exact: bool
    """True: counts and bounds are the per-packet mode's (no draws); False: drawn (Poisson)."""

    def count(self, a: float, b: float) -> int:
        """Packets sent in ``[a, b)`` (a random model draws: call once per piece, pieces in time order)."""
        ...

    def bounds(self, a: float, b: float, n: int) -> tuple[float, float]:
        """Send times of the first and the last of the *n* packets in ``[a, b)``."""
        ...

    def split(self, a: float, b: float, n: int, cuts: list[float]) -> list[int]:
        """How the *n* packets of ``[a, b)`` fall into the parts that the increasing *cuts* make."""
        ...

    def first_at_or_after(self, a: float, b: float, n: int, x: float) -> float:
        """The send time of the first of the *n* packets of ``[a, b)`` at or after *x* (``a <= x < b``)."""
        ...

    def next_at_or_after(self, x: float) -> float | None:
        """During the run: when the flow next sends at or after *x* (None: it has stopped)."""
        ...

    def last_at_or_before(self, x: float) -> float | None:
        """During the run: when the flow last sent at or before *x* (None: not yet)."""
        ...


class ConstantTimes:
    """Packet k at ``start + k / rate`` while that is before ``stop`` (``FlowSender``, pattern ``constant``)."""

    __slots__ = ("start", "rate", "stop", "_n")
    exact = True

    def __init__(self, start: float, rate: float, stop: float) -> None:
        self.start, self.rate, self.stop = start, float(rate), stop
        self._n = self.before(stop)

    def time(self, k: int) -> float:
        """Send time of packet *k* (the same float expression as ``FlowSender``)."""
        return self.start + k / self.rate

    def before(self, x: float) -> int:
        """How many packets go before *x*: the least k >= 0 with ``time(k) >= x`` (exact, by float comparison)."""
        if x <= self.start:
            return 0
        if math.isinf(x):
            return self._n
        k = max(0, math.ceil((x - self.start) * self.rate))
        while k > 0 and self.time(k - 1) >= x:
            k -= 1
        while self.time(k) < x:
            k += 1
        return k

    def _index(self, x: float) -> int:
        return min(self.before(x), self._n)

    def count(self, a: float, b: float) -> int:
        """Packets in ``[a, b)``."""
        return max(0, self._index(b) - self._index(a))

    def bounds(self, a: float, b: float, n: int) -> tuple[float, float]:
        """First and last send time in ``[a, b)``."""
        k = self._index(a)
        return self.time(k), self.time(k + n - 1)

    def split(self, a: float, b: float, n: int, cuts: list[float]) -> list[int]:
        """Exact counts of the parts."""
        edges = [a, *cuts, b]
        return [self.count(x, y) for x, y in zip(edges, edges[1:], strict=False)]

    def first_at_or_after(self, a: float, b: float, n: int, x: float) -> float:
        """The first grid time at or after *x*."""
        return self.time(self._index(max(a, x)))

    def next_at_or_after(self, x: float) -> float | None:
        """The first send time at or after *x*, or None if the flow has stopped by then."""
        k = self.before(x)
        return self.time(k) if k < self._n else None

    def last_at_or_before(self, x: float) -> float | None:
        """The last send time at or before *x*, or None if none is."""
        k = self.before(math.nextafter(x, math.inf)) if not math.isinf(x) else self._n
        k = min(k, self._n)
        return self.time(k - 1) if k > 0 else None


class PoissonTimes:
    """A Poisson process of *rate* on ``[start, stop)`` drawn piece by piece from *gen* (see the module docstring)."""

    __slots__ = ("start", "rate", "stop", "gen")
    exact = False

    def __init__(self, start: float, rate: float, stop: float, gen: np.random.Generator) -> None:
        self.start, self.rate, self.stop, self.gen = start, float(rate), stop, gen

    def _length(self, a: float, b: float) -> float:
        return max(0.0, min(b, self.stop) - max(a, self.start))

    def count(self, a: float, b: float) -> int:
        """A Poisson(rate * length) draw."""
        length = self._length(a, b)
        return int(self.gen.poisson(self.rate * length)) if length > 0 else 0

    def bounds(self, a: float, b: float, n: int) -> tuple[float, float]:
        """The minimum and maximum of *n* uniform points (order statistics)."""
        lo, hi = max(a, self.start), min(b, self.stop)
        first = lo + (hi - lo) * (1.0 - self.gen.random() ** (1.0 / n))
        last = first if n == 1 else hi - (hi - first) * (1.0 - self.gen.random() ** (1.0 / (n - 1)))
        return first, last

    def split(self, a: float, b: float, n: int, cuts: list[float]) -> list[int]:
        """Binomial splits in proportion to the parts' lengths."""
        edges = [a, *cuts, b]
        out, left, rest = [], n, self._length(a, b)
        for x, y in zip(edges, edges[1:], strict=False):
            part = self._length(x, y)
            k = int(self.gen.binomial(left, min(1.0, part / rest))) if rest > 0 and left else 0
            out.append(k)
            left, rest = left - k, rest - part
        out[-1] += left
        return out

    def first_at_or_after(self, a: float, b: float, n: int, x: float) -> float:
        """*x* itself, drawing nothing (pieces start at NAT events, the only times this is asked for)."""
        return max(a, x)

    def next_at_or_after(self, x: float) -> float | None:
        """A draw of the next send time after *x* (memoryless), or None if the flow has stopped by then."""
        t = max(x, self.start) + float(self.gen.exponential(1.0 / self.rate))
        return t if t < self.stop else None

    def last_at_or_before(self, x: float) -> float | None:
        """*x* itself while the flow sends (a NAT mapping's last use: exact when gaps are far below its timeout)."""
        return min(x, self.stop) if x > self.start else None


class OnOffTimes:
    """Constant rate during exponential on periods, nothing during exponential off periods (``FlowSender`` onoff)."""

    __slots__ = ("grids",)
    exact = True

    def __init__(self, start: float, rate: float, stop: float, on: float, off: float, gen: np.random.Generator) -> None:
        grids, origin = [], start
        while origin < stop:
            until = origin + float(gen.exponential(on))
            grids.append(ConstantTimes(origin, rate, min(until, stop)))
            origin = until + float(gen.exponential(off))
        self.grids: list[ConstantTimes] = grids

    def _overlapping(self, a: float, b: float) -> list[ConstantTimes]:
        return [g for g in self.grids if g.start < b and g.stop > a]

    def count(self, a: float, b: float) -> int:
        """Exact, given the periods."""
        return sum(g.count(a, b) for g in self._overlapping(a, b))

    def bounds(self, a: float, b: float, n: int) -> tuple[float, float]:
        """First and last send time in ``[a, b)``."""
        used = [g for g in self._overlapping(a, b) if g.count(a, b)]
        return used[0].bounds(a, b, 1)[0], used[-1].bounds(a, b, used[-1].count(a, b))[1]

    def split(self, a: float, b: float, n: int, cuts: list[float]) -> list[int]:
        """Exact counts of the parts."""
        edges = [a, *cuts, b]
        return [self.count(x, y) for x, y in zip(edges, edges[1:], strict=False)]

    def first_at_or_after(self, a: float, b: float, n: int, x: float) -> float:
        """The first send time at or after *x*."""
        for g in self._overlapping(max(a, x), b):
            if g.count(max(a, x), b):
                return g.first_at_or_after(max(a, x), b, 1, max(a, x))
        return b

    def next_at_or_after(self, x: float) -> float | None:
        """The first send time at or after *x*, or None."""
        for g in self.grids:
            if g.stop > x:
                t = g.next_at_or_after(max(x, g.start))
                if t is not None:
                    return t
        return None

    def last_at_or_before(self, x: float) -> float | None:
        """The last send time at or before *x*, or None."""
        for g in reversed(self.grids):
            if g.start <= x:
                t = g.last_at_or_before(x)
                if t is not None:
                    return t
        return None


def name_code(codes: dict[str, int], names: list[str], name: str) -> int:
    """The small integer a column stores for *name* (the next one if new; ``names`` maps codes back)."""
    code = codes.get(name)
    if code is None:
        code = codes[name] = len(names)
        names.append(name)
    return code


class IntervalRows:
    """Typed columns, one row per piece and fate (see the module docstring)."""

    def __init__(self) -> None:
        self.flow = array("i")
        self.t0 = array("d")
        self.t1 = array("d")
        self.packets = array("q")
        self.first = array("d")
        self.last = array("d")
        self.spi = array("q")
        self.fate = array("b")
        self.where = array("i")
        self.offset = array("d")
        self.sporadic = array("b")
        """1: random losses of a piece that delivered packets too (in packet mode, one-packet outages)."""
        self.fate_names: list[str] = []
        self._fate_code: dict[str, int] = {}
        self.places: list[str] = []
        self._place_code: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.flow)

    def add(self, flow: int, t0: float, t1: float, packets: int, first: float, last: float, spi: int, fate: str,
            where: str, offset: float, sporadic: bool = False) -> None:
        """Append one row."""
        code = name_code(self._fate_code, self.fate_names, fate)
        place = name_code(self._place_code, self.places, where)
        self.flow.append(flow)
        self.t0.append(t0)
        self.t1.append(t1)
        self.packets.append(packets)
        self.first.append(first)
        self.last.append(last)
        self.spi.append(spi)
        self.fate.append(code)
        self.where.append(place)
        self.offset.append(offset)
        self.sporadic.append(1 if sporadic else 0)


class IntervalSource(Protocol):
    """What a fleet-mode ``TrafficLog`` carries in ``fleet``: the evaluator of the run's SA/path timeline."""

    def intervals(self, duration: float) -> IntervalRows:
        """The rows of a run that lasted *duration* seconds (computed once, then cached)."""
        ...

    def model(self, flow: int) -> PacketTimes:
        """The packet-time model of flow code *flow*."""
        ...

    @property
    def memo(self) -> dict[object, object]:
        """What the tables computed from the rows once (the closed windows), kept for the other tables."""
        ...
