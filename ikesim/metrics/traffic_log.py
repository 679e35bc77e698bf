"""The data plane's trace: one row of typed array slots per user packet, its flows, and the ESP bytes to capture.

Packets are numbered from 1 in the order sent; on the network a packet travels as the datagram with id
``-packet`` (IKE datagrams count up from 1), so a link or box that records a datagram's fate records the
packet's. Control windows (a CHILD or IKE rekey, a NAT rebind) are noted per connection as they open and
close, so that ``ikesim.metrics.traffic_tables`` can attribute each loss to the event it falls in.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

from ikesim.metrics.fates import FateColumns
from ikesim.metrics.traffic_timeline import IntervalSource
from ikesim.types import Address

__all__ = ["Flow", "TrafficLog", "Window", "DELIVERED"]

DELIVERED = "delivered"


@dataclass(frozen=True, slots=True)
class Flow:
    """One direction of a traffic flow: who sends to whom through which connection's CHILD_SA."""

    flow: int
    """The flow's index in ``traffic:`` (both directions of a flow share it)."""
    connection: str
    child: str
    direction: str
    """``forward`` (the connection's initiator sends) or ``reverse``."""
    sender: str
    receiver: str
    pattern: str


@dataclass(slots=True)
class Window:
    """A control event's window on one connection: packets lost in it are attributed to it."""

    connection: str
    kind: str
    """``child_rekey``, ``ike_rekey``, ``nat_rebind``, ``nat_reboot`` or ``handover`` (an interface carrying the
    tunnel went down: until every direction delivers again)."""
    ident: str
    """Which one: the rekeyed SA's SPI (hex), or the NAT's name and the rebind's time."""
    start: float
    end: float = math.nan
    """When it closed (NaN: still open at the end of the run, or closed by the traffic itself: a NAT rebind)."""


class TrafficLog(FateColumns):
    """Every data packet of a run as typed columns (``trace`` ``full``, ``exchanges`` and ``summary`` alike)."""

    def __init__(self, *, capture_per_sa: int = 20) -> None:
        self.capture_per_sa = capture_per_sa
        self.flows: list[Flow] = []
        self._connections_at: dict[str, dict[str, int]] = {}
        """Node -> {connection it sends or receives on: the code of its first flow there}."""
        self.flow = array("i")
        self.sent = array("d")
        self.size = array("i")
        self.spi = array("q")
        """The SPI of the SA that protected it (-1: none, the packet was dropped at the sender)."""
        FateColumns.__init__(self)
        self.captured: list[tuple[int, float, Address, Address, bytes]] = []
        """(-packet, time sent, outer src, outer dst, ESP packet) of the packets the capture shows."""
        self._captured_per_spi: dict[int, int] = {}
        self.windows: list[Window] = []
        self._open: dict[tuple[str, str, str], Window] = {}
        self.fleet: IntervalSource | None = None
        """Fleet mode: the run's SA/path timeline, which the tables turn into interval rows instead of reading
        per-packet columns (``ikesim.metrics.traffic_timeline``); None in per-packet mode."""

    def __len__(self) -> int:
        return len(self.sent)

    def __bool__(self) -> bool:
        """A log is there even without a packet in it (fleet mode keeps none; ``log or default`` must keep it)."""
        return True

    def add_flow(self, flow: Flow) -> int:
        """Register one direction of a flow; return its code (the ``flow`` column's value)."""
        code = len(self.flows)
        self.flows.append(flow)
        for node in (flow.sender, flow.receiver):
            self._connections_at.setdefault(node, {}).setdefault(flow.connection, code)
        return code

    def connections_at(self, nodes: Iterable[str | None]) -> list[str]:
        """The connections with a flow sent or received by one of *nodes*, in the order of their first such flow."""
        first: dict[str, int] = {}
        for node in nodes:
            for conn, code in self._connections_at.get(node, {}).items() if node is not None else ():
                if code < first.get(conn, code + 1):
                    first[conn] = code
        return sorted(first, key=first.__getitem__)

    def record_sent(self, flow: int, now: float, size: int, spi: int) -> int:
        """A packet of *flow* was sent (protected by *spi*, or -1); return its number (1, 2, ...)."""
        self.flow.append(flow)
        self.sent.append(now)
        self.size.append(size)
        self.spi.append(spi)
        self.pending()
        return len(self.sent)

    def record_fate(self, packet: int, fate: str, now: float, where: str) -> None:
        """What became of a packet: ``delivered``, a link's or box's fate, or the ESP drop reason."""
        self.set_fate(packet - 1, fate, now, where)

    def wants_capture(self, spi: int) -> bool:
        """Whether the capture still takes packets of this SA (the first ``capture_per_sa`` of each)."""
        return self._captured_per_spi.get(spi, 0) < self.capture_per_sa

    def capture(self, packet: int, now: float, src: Address, dst: Address, data: bytes, spi: int) -> None:
        """Keep a sent ESP packet for the capture."""
        self._captured_per_spi[spi] = self._captured_per_spi.get(spi, 0) + 1
        self.captured.append((-packet, now, src, dst, data))

    def open_window(self, connection: str, kind: str, ident: str, now: float) -> None:
        """A control event began on *connection* (a second opening of the same one is ignored)."""
        key = (connection, kind, ident)
        if key not in self._open:
            w = self._open[key] = Window(connection, kind, ident, now)
            self.windows.append(w)

    def close_window(self, connection: str, kind: str, ident: str, now: float) -> None:
        """A control event ended (a later close of the same one moves its end)."""
        w = self._open.get((connection, kind, ident))
        if w is not None:
            w.end = now
