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

import bisect
import math
from typing import Protocol

import numpy as np

__all__ = ["name_code", "PacketTimes", "ConstantTimes", "PoissonTimes", "OnOffTimes", "IntervalRows", "IntervalSource",
           "ROW_COLUMNS", "grid_index", "grid_time"]


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

    __slots__ = ("start", "rate", "stop", "total")
    exact = True

    def __init__(self, start: float, rate: float, stop: float) -> None:
        self.start, self.rate, self.stop = start, float(rate), stop
        self.total = self.before(stop)
        """Packets sent in all (before ``stop``)."""

    def time(self, k: int) -> float:
        """Send time of packet *k* (the same float expression as ``FlowSender``)."""
        return self.start + k / self.rate

    def before(self, x: float) -> int:
        """How many packets go before *x*: the least k >= 0 with ``time(k) >= x`` (exact, by float comparison)."""
        if x <= self.start:
            return 0
        if math.isinf(x):
            return self.total
        k = max(0, math.ceil((x - self.start) * self.rate))
        while k > 0 and self.time(k - 1) >= x:
            k -= 1
        while self.time(k) < x:
            k += 1
        return k

    def _index(self, x: float) -> int:
        return min(self.before(x), self.total)

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
        return self.time(k) if k < self.total else None

    def last_at_or_before(self, x: float) -> float | None:
        """The last send time at or before *x*, or None if none is."""
        k = self.before(math.nextafter(x, math.inf)) if not math.isinf(x) else self.total
        k = min(k, self.total)
        return self.time(k - 1) if k > 0 else None


class PoissonTimes:
    """A Poisson process of *rate* on ``[start, stop)`` drawn piece by piece from *gen* (see the module docstring).

    Conditioned (``condition``, for a volume lifetime: ``ikesim.sim.fleet_limits``), it keeps what has been drawn:
    edges with the number of send times between each two (a send time found exactly, such as the one that
    reaches a limit, is an interval one float wide). A new edge inside an interval splits its count binomially
    by length, one past the last edge draws the rest up to ``stop`` at once (Poisson), the k-th send time of an
    interval is the k-th order statistic of its uniform points: every later question is answered consistently
    with what was drawn before, and the whole is still a Poisson process.
    """

    __slots__ = ("start", "rate", "stop", "gen", "edges", "counts")
    exact = False

    def __init__(self, start: float, rate: float, stop: float, gen: np.random.Generator) -> None:
        self.start, self.rate, self.stop, self.gen = start, float(rate), stop, gen
        self.edges: list[float] | None = None
        """Conditioned: the edges drawn at, in order (None: not conditioned)."""
        self.counts: list[int] = []
        """Conditioned: send times in ``[edges[i], edges[i + 1])``."""

    def _length(self, a: float, b: float) -> float:
        return max(0.0, min(b, self.stop) - max(a, self.start))

    def condition(self) -> None:
        """Keep what is drawn from now on (see the class docstring); nothing is drawn yet."""
        if self.edges is None:
            self.edges = [self.start]

    def _edge(self, x: float) -> int:
        """The index of edge *x* (clipped to ``[start, stop]``), drawing the counts it splits or adds."""
        edges, counts, gen = self.edges, self.counts, self.gen
        assert edges is not None
        x = min(max(x, self.start), self.stop)
        if x > edges[-1]:
            if edges[-1] < self.stop:  # the rest of the process at once
                counts.append(int(gen.poisson(self.rate * (self.stop - edges[-1]))))
                edges.append(self.stop)
        i = bisect.bisect_left(edges, x)
        if edges[i] == x:
            return i
        lo, hi, c = edges[i - 1], edges[i], counts[i - 1]
        k = int(gen.binomial(c, (x - lo) / (hi - lo))) if c else 0
        edges.insert(i, x)
        counts[i - 1:i] = [k, c - k]
        return i

    def count(self, a: float, b: float) -> int:
        """A Poisson(rate * length) draw (conditioned: the sum of the intervals between the edges at a and b)."""
        if self.edges is not None:
            if not b > a:
                return 0
            i = self._edge(a)
            return sum(self.counts[i:self._edge(b)])
        length = self._length(a, b)
        return int(self.gen.poisson(self.rate * length)) if length > 0 else 0

    def bounds(self, a: float, b: float, n: int) -> tuple[float, float]:
        """The minimum and maximum of *n* uniform points (order statistics; conditioned: of the first and the last
        interval with send times, when all of the range's are meant)."""
        if self.edges is not None and n == self.count(a, b):
            i, j = self._edge(a), self._edge(b)
            full = [k for k in range(i, j) if self.counts[k]]
            return self._order(full[0], 1), self._order(full[-1], self.counts[full[-1]])
        lo, hi = max(a, self.start), min(b, self.stop)
        first = lo + (hi - lo) * (1.0 - self.gen.random() ** (1.0 / n))
        last = first if n == 1 else hi - (hi - first) * (1.0 - self.gen.random() ** (1.0 / (n - 1)))
        return first, last

    def _order(self, k: int, r: int) -> float:
        """A draw of the r-th of the uniform send times of interval *k* (not kept)."""
        assert self.edges is not None
        lo, hi, c = self.edges[k], self.edges[k + 1], self.counts[k]
        if math.nextafter(lo, math.inf) >= hi:
            return lo
        return min(lo + (hi - lo) * float(self.gen.beta(r, c - r + 1)), math.nextafter(hi, -math.inf))

    def split(self, a: float, b: float, n: int, cuts: list[float]) -> list[int]:
        """Binomial splits in proportion to the parts' lengths (conditioned: the parts' counts; some of them,
        *n* of all, drawn without replacement)."""
        edges = [a, *cuts, b]
        if self.edges is not None:
            parts = [self.count(x, y) for x, y in zip(edges, edges[1:], strict=False)]
            if n == sum(parts):
                return parts
            return [int(k) for k in self.gen.multivariate_hypergeometric(parts, n)]
        out, left, rest = [], n, self._length(a, b)
        for x, y in zip(edges, edges[1:], strict=False):
            part = self._length(x, y)
            k = int(self.gen.binomial(left, min(1.0, part / rest))) if rest > 0 and left else 0
            out.append(k)
            left, rest = left - k, rest - part
        out[-1] += left
        return out

    def nth_at_or_after(self, x: float, n: int) -> float | None:
        """Conditioned: the *n*-th send time at or after *x* (kept: it becomes an interval of its own); None: fewer
        than *n* are sent by ``stop``."""
        self.condition()
        i = self._edge(x)
        self._edge(self.stop)
        edges, counts = self.edges, self.counts
        assert edges is not None
        for k in range(i, len(counts)):
            if counts[k] < n:
                n -= counts[k]
                continue
            t = self._order(k, n)
            lo, hi, c = edges[k], edges[k + 1], counts[k]
            one = math.nextafter(t, math.inf)
            new_edges, new_counts = [lo], []
            if t > lo:
                new_edges.append(t)
                new_counts.append(n - 1)
            new_counts.append(1)
            if one < hi:
                new_edges.append(one)
                new_counts.append(c - n)
            edges[k:k + 2] = [*new_edges, hi]
            counts[k:k + 1] = new_counts
            return t
        return None

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


def grid_index(start: np.ndarray, rate: np.ndarray, total: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``ConstantTimes._index`` element-wise: per grid (start, rate, total), how many packets go before *x*.

    The same float expressions as ``ConstantTimes.before`` (``start + k / rate`` in IEEE double), so the
    counts are the scalar method's to the bit.
    """
    x = np.asarray(x, dtype=np.float64)
    inside = (x > start) & np.isfinite(x)
    safe = np.where(inside, x, start)
    k = np.maximum(np.ceil((safe - start) * rate), 0.0).astype(np.int64)
    while True:  # as before(): step back while packet k-1 still goes at or after x, then forward while k goes before
        back = inside & (k > 0) & (start + (k - 1) / rate >= safe)
        if not back.any():
            break
        k[back] -= 1
    while True:
        ahead = inside & (start + k / rate < safe)
        if not ahead.any():
            break
        k[ahead] += 1
    k = np.where(inside, k, np.where(x > start, total, 0))
    return np.minimum(k, total)


def grid_time(start: np.ndarray, rate: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``ConstantTimes.time`` element-wise: the send time of packet *k* of each grid."""
    return start + k / rate


ROW_COLUMNS: dict[str, type] = {
    "flow": np.int32, "t0": np.float64, "t1": np.float64, "packets": np.int64, "first": np.float64,
    "last": np.float64, "spi": np.int64, "fate": np.int32, "where": np.int32, "offset": np.float64,
    "sporadic": np.bool_,
}
"""The columns of ``IntervalRows`` and their dtypes."""


class IntervalRows:
    """Typed columns, one row per piece and fate (see the module docstring); ``fate``/``where`` index the names."""

    __slots__ = ("flow", "t0", "t1", "packets", "first", "last", "spi", "fate", "where", "offset", "sporadic",
                 "fate_names", "places")

    def __init__(self, fate_names: list[str], places: list[str], columns: dict[str, np.ndarray]) -> None:
        self.fate_names, self.places = fate_names, places
        for name, dtype in ROW_COLUMNS.items():
            setattr(self, name, np.asarray(columns[name], dtype=dtype))
        self.sporadic: np.ndarray
        """True: random losses of a piece that delivered packets too (in packet mode, one-packet outages)."""

    def __len__(self) -> int:
        return len(self.flow)


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
