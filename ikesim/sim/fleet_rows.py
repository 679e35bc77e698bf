"""Fleet mode after the run: the pieces of each flow direction (``ikesim.sim.fleet_eval``) as interval rows.

A piece is a send-time range ``[a, b)`` of one flow direction with one SPI and one outcome of the walk: the
random-loss points on the way (a link's loss rate p), then a fate. Its rows (``IntervalRows``): per lossy link,
the packets lost there, a binomial draw from the packets still on their way (``lost``); then the rest, with
the fate.

Constant-rate flows whose pieces cross at most one lossy link are done for all their pieces at once: counts
and first/last send times by ``grid_index``/``grid_time`` (the scalar model's float expressions), and one
flow's binomial draws in one call (numpy draws an array argument element by element from the same stream: the
values of one call per piece). The other flows go piece by piece, as their draws must come in piece order (a
Poisson flow's counts and first/last send times are draws themselves). Either way the rows are those one
piece-by-piece pass makes, in its order: flow by flow, piece by piece, losses before the fate.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ikesim.metrics.traffic_log import DELIVERED
from ikesim.metrics.traffic_timeline import ROW_COLUMNS, ConstantTimes, IntervalRows, PacketTimes, grid_index, grid_time, name_code

__all__ = ["RowMaker", "LOST", "Piece", "Walked", "RowFlow"]


class Walked(Protocol):
    """What a walk says of a piece (``ikesim.sim.fleet_eval.Outcome``)."""

    losses: list[tuple[float, str, float]]
    """(loss rate, link, offset) of each lossy link on the way."""
    fate: str
    where: str
    offset: float


class RowFlow(Protocol):
    """What the rows need of a flow direction (``ikesim.sim.fleet_eval.FleetFlow``)."""

    code: int
    times: PacketTimes

    @property
    def gen(self) -> np.random.Generator:
        """The flow direction's draws."""
        ...

LOST = "lost"
"""The fate of a packet a lossy link dropped at random (``ikesim.sim.fleet_path``)."""

_FAST = ("grid", "pos", "a", "b", "spi", "fate", "where", "offset", "loss_p", "loss_where", "loss_off")

Piece = tuple[float, float, int, Walked]
"""(a, b, spi, outcome): send times ``[a, b)`` with the SA *spi* meet *outcome*."""


class RowMaker:
    """Collects the pieces of every flow direction, in flow order, and makes their rows (see the module docstring)."""

    def __init__(self) -> None:
        self.fate_names: list[str] = []
        self.places: list[str] = []
        self._fate_code: dict[str, int] = {}
        self._place_code: dict[str, int] = {}
        self._lost = name_code(self._fate_code, self.fate_names, LOST)
        self._flows: list[RowFlow] = []
        """Flows done at once: their grids and generators."""
        self._fast: list[tuple[int, int, float, float, int, int, int, float, float, int, float]] = []
        """Per piece of the flows done at once: ``_FAST`` (codes and SPIs are exact in a float64)."""
        self._slow: dict[str, list[float] | list[int] | list[bool]] = {k: [] for k in ("pos", *ROW_COLUMNS)}

    def _codes(self, fate: str, where: str) -> tuple[int, int]:
        return name_code(self._fate_code, self.fate_names, fate), name_code(self._place_code, self.places, where)

    def add_flow(self, pos: int, f: RowFlow, pieces: list[Piece]) -> None:
        """The pieces of flow direction *f*, the *pos*-th of the run, in time order."""
        if isinstance(f.times, ConstantTimes) and all(len(out.losses) <= 1 for _a, _b, _s, out in pieces):
            self._add_fast(pos, f, pieces)
        else:
            for a, b, spi, out in pieces:
                self._emit(pos, f, a, b, spi, out)

    def _add_fast(self, pos: int, f: RowFlow, pieces: list[Piece]) -> None:
        grid = len(self._flows)
        self._flows.append(f)
        fate_code, place_code, fates, places = self._fate_code, self._place_code, self.fate_names, self.places
        add = self._fast.append
        for a, b, spi, out in pieces:
            fate = fate_code.get(out.fate)
            if fate is None:
                fate = name_code(fate_code, fates, out.fate)
            where = place_code.get(out.where)
            if where is None:
                where = name_code(place_code, places, out.where)
            if out.losses:
                p, lossy, off = out.losses[0]
                add((grid, pos, a, b, spi, fate, where, out.offset, p, name_code(place_code, places, lossy), off))
            else:
                add((grid, pos, a, b, spi, fate, where, out.offset, 0.0, 0, 0.0))

    def _emit(self, pos: int, f: RowFlow, a: float, b: float, spi: int, out: Walked) -> None:
        """The rows of one piece, drawn in piece order: random losses on the way (binomial per link), then the fate."""
        n = f.times.count(a, b)
        if n <= 0:
            return
        first, last = f.times.bounds(a, b, n)
        left = n
        lost_rows = []
        for p, where, off in out.losses:
            k = int(f.gen.binomial(left, p)) if left else 0
            if k:
                lost_rows.append((k, where, off))
                left -= k
        sporadic = out.fate == DELIVERED and left > 0
        for k, where, off in lost_rows:
            self._row(pos, f.code, a, b, k, first, last, spi, LOST, where, off, sporadic)
        if left:
            self._row(pos, f.code, a, b, left, first, last, spi, out.fate, out.where, out.offset, False)

    def _row(self, pos: int, flow: int, t0: float, t1: float, packets: int, first: float, last: float, spi: int,
             fate: str, where: str, offset: float, sporadic: bool) -> None:
        fate_code, place = self._codes(fate, where)
        slow = self._slow
        for name, value in (("pos", pos), ("flow", flow), ("t0", t0), ("t1", t1), ("packets", packets),
                            ("first", first), ("last", last), ("spi", spi), ("fate", fate_code), ("where", place),
                            ("offset", offset), ("sporadic", sporadic)):
            slow[name].append(value)  # type: ignore[arg-type]

    def rows(self) -> IntervalRows:
        """Every row, in the order of one piece-by-piece pass (see the module docstring)."""
        fast_pos, fast = self._fast_rows()
        slow = {name: np.asarray(values, dtype=ROW_COLUMNS.get(name, np.int64)) for name, values in self._slow.items()}
        pos = np.concatenate([fast_pos, slow.pop("pos")])
        order = np.argsort(pos, kind="stable")
        columns = {name: np.concatenate([fast[name], slow[name]]).astype(dtype, copy=False)[order]
                   for name, dtype in ROW_COLUMNS.items()}
        return IntervalRows(self.fate_names, self.places, columns)

    def _fast_rows(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The rows of the flows done at once: two candidate rows per piece (losses, fate), those with packets."""
        table = np.array(self._fast, dtype=np.float64).reshape(-1, len(_FAST))
        fast = {name: table[:, i] for i, name in enumerate(_FAST)}
        grid = fast["grid"].astype(np.int64)
        flows = self._flows
        start = np.array([f.times.start for f in flows], dtype=np.float64)[grid]  # type: ignore[attr-defined]
        rate = np.array([f.times.rate for f in flows], dtype=np.float64)[grid]  # type: ignore[attr-defined]
        total = np.array([f.times.total for f in flows], dtype=np.int64)[grid]  # type: ignore[attr-defined]
        a, b = fast["a"].astype(np.float64), fast["b"].astype(np.float64)
        at_a = grid_index(start, rate, total, a)
        n = np.maximum(grid_index(start, rate, total, b) - at_a, 0)
        first, last = grid_time(start, rate, at_a), grid_time(start, rate, at_a + n - 1)
        p = fast["loss_p"].astype(np.float64)
        lost = np.zeros(len(n), dtype=np.int64)
        drawn = np.flatnonzero((n > 0) & (p > 0))
        if len(drawn):
            cuts = np.flatnonzero(np.diff(grid[drawn])) + 1
            for part in np.split(drawn, cuts):
                lost[part] = flows[int(grid[part[0]])].gen.binomial(n[part], p[part])
        left = n - lost
        delivered = self._fate_code.get(DELIVERED, -1)
        fate = fast["fate"].astype(np.int32)
        sporadic = (fate == delivered) & (left > 0)

        def pair(loss_value: np.ndarray, fate_value: np.ndarray) -> np.ndarray:
            return np.stack([loss_value, fate_value], axis=1).ravel()

        keep = pair(lost > 0, left > 0)
        same = {"t0": a, "t1": b, "first": first, "last": last, "spi": fast["spi"].astype(np.int64),
                "flow": np.array([f.code for f in flows], dtype=np.int32)[grid] if flows else np.zeros(0, np.int32)}
        columns = {name: np.repeat(values, 2)[keep] for name, values in same.items()}
        columns["packets"] = pair(lost, left)[keep]
        columns["fate"] = pair(np.full(len(n), self._lost, dtype=np.int32), fate)[keep]
        columns["where"] = pair(fast["loss_where"].astype(np.int32), fast["where"].astype(np.int32))[keep]
        columns["offset"] = pair(fast["loss_off"].astype(np.float64), fast["offset"].astype(np.float64))[keep]
        columns["sporadic"] = pair(sporadic, np.zeros(len(n), dtype=bool))[keep]
        return np.repeat(fast["pos"].astype(np.int64), 2)[keep], columns
