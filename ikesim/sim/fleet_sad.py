"""Fleet mode's SAD: a node's ESP state as ``ikesim.esp.EspDataPlane`` keeps it, without ESP crypto, with its timeline.

``NodeDataPlane`` drives it exactly as it drives an ``EspDataPlane`` (RFC 4301 §4.4: inbound SAs by SPI, one
outbound SA per policy), so the SA state of a node over time is the same in both modes. Every change is
written down as it happens:

- per policy, the outbound SA over time (``OutboundTimeline``): SPI (-1: none), expired, outer addresses;
- per inbound SA, ``[installed, removed)`` and when it expired (``InboundTimeline``).

A ``SadWatcher`` (the fleet's traffic engine, ``ikesim.sim.fleet_traffic``) is told of each change, so that it
can re-check what the next packet would do to NATs and to the receiver (``EspPeerMoved``).
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Protocol

from ikesim.esp import EspEvent, EspLimits
from ikesim.types import Address

if TYPE_CHECKING:
    from ikesim.crypto.suites import Suite

__all__ = ["FleetSad", "InboundSa", "OutboundSa", "OutboundTimeline", "InboundTimeline", "SadWatcher", "spi_int",
           "JUST_AFTER"]

JUST_AFTER = 1e-9
"""Seconds after a packet that reached a volume limit from which the SAD's reply applies (the packet itself passed,
RFC 4301 §4.4.2.1): larger than float rounding of send and arrival times, shorter than any gap between packets."""


def spi_int(spi: bytes) -> int:
    """An SPI as the traffic tables' integer (RFC 4303 §2.1: 32 bits)."""
    return int.from_bytes(spi, "big")


class SadWatcher(Protocol):
    """Told of every change of a ``FleetSad`` (after it is made)."""

    def outbound_changed(self, node: str, policy: Hashable, now: float) -> None:
        """*policy* on *node* sends with another SA, or from or to other addresses, or stopped, or expired."""
        ...

    def inbound_changed(self, node: str, spi: bytes, now: float) -> None:
        """*node* installed the inbound SA *spi*, or its expected peer changed."""
        ...


class InboundSa:
    """An inbound SA as the SAD holds it: SPI, expected peer (RFC 3948 §3), expired, its timeline row."""

    __slots__ = ("spi", "_peer", "expired", "row", "_on_peer", "limits")

    def __init__(self, spi: bytes, peer: Address | None, row: int, on_peer: Callable[[], None],
                 limits: EspLimits | None = None) -> None:
        self.spi, self._peer, self.expired, self.row, self._on_peer = spi, peer, False, row, on_peer
        self.limits = limits
        """RFC 4301 §4.4.2.1 volume limits (``ikesim.sim.fleet_limits`` counts against them)."""

    @property
    def peer(self) -> Address | None:
        """Where UDP-encapsulated ESP of this SA is expected from (RFC 3948 §3)."""
        return self._peer

    @peer.setter
    def peer(self, value: Address | None) -> None:
        if value != self._peer:
            self._peer = value
            self._on_peer()


class OutboundSa:
    """A policy's outbound SA and the outer addresses it sends with (RFC 4301 §4.4.1.2)."""

    __slots__ = ("spi", "src", "dst", "expired", "limits")

    def __init__(self, spi: bytes, src: Address, dst: Address, limits: EspLimits | None = None) -> None:
        self.spi, self.src, self.dst, self.expired = spi, src, dst, False
        self.limits = limits
        """RFC 4301 §4.4.2.1 volume limits (``ikesim.sim.fleet_limits`` counts against them)."""


class OutboundTimeline:
    """One policy's outbound SA over time: a row per change, as typed columns (addresses as codes)."""

    __slots__ = ("at", "spi", "expired", "src", "dst")

    def __init__(self) -> None:
        self.at = array("d")
        self.spi = array("q")
        self.expired = array("b")
        self.src = array("i")
        self.dst = array("i")

    def __len__(self) -> int:
        return len(self.at)


class InboundTimeline:
    """A node's inbound SAs: a row per SA installed, with when it was removed and expired (inf: not by the end)."""

    __slots__ = ("spi", "installed", "removed", "expired", "rows")

    def __init__(self) -> None:
        self.spi = array("q")
        self.installed = array("d")
        self.removed = array("d")
        self.expired = array("d")
        self.rows: dict[int, list[int]] = {}
        """SPI -> its rows, in order."""


class FleetSad:
    """RFC 4301 §4.4 SAD and SPD-to-SA bindings of one node, recording their timeline (see the module docstring)."""

    __slots__ = ("node", "_now", "_watcher", "_sad", "_out", "_events", "outbound_log", "inbound_log", "addresses",
                 "_codes", "passing")

    def __init__(self, node: str, now: Callable[[], float], watcher: SadWatcher, addresses: list[Address],
                 codes: dict[Address, int]) -> None:
        self.node = node
        self._now = now
        self._watcher = watcher
        self._sad: dict[bytes, InboundSa] = {}
        self._out: dict[Hashable, OutboundSa] = {}
        self._events: deque[EspEvent] = deque()
        self.outbound_log: dict[Hashable, OutboundTimeline] = {}
        self.inbound_log = InboundTimeline()
        self.addresses = addresses
        """Address codes of the timelines -> addresses (shared by every node of a run)."""
        self._codes = codes
        self.passing: tuple[float, Callable[[Hashable | None, bytes | None], bool]] | None = None
        """(now, which) while the daemon hears of a limit that a packet sent or arrived now reached: *which*
        (policy, inbound SPI) says whether a change now to that policy's outbound SA, or to that inbound SA,
        applies only after that packet's event (``stamp``; ``ikesim.sim.fleet_limits``)."""

    def stamp(self, *, policy: Hashable | None = None, spi: bytes | None = None) -> float:
        """The time a change made now to *policy*'s outbound SA or to inbound SA *spi* applies from: now, or
        ``JUST_AFTER`` s later if packets at this instant met it before the change (``passing``)."""
        now = self._now()
        passing = self.passing
        if passing is not None and passing[0] == now and passing[1](policy, spi):
            return now + JUST_AFTER
        return now

    def _code(self, a: Address) -> int:
        code = self._codes.get(a)
        if code is None:
            code = self._codes[a] = len(self.addresses)
            self.addresses.append(a)
        return code

    # --- SAD: inbound SAs ---------------------------------------------------------------------------

    def add_inbound(self, spi: bytes, suite: Suite, encr_key: bytes, integ_key: bytes, *, peer: Address,
                    limits: EspLimits | None = None) -> InboundSa:
        """RFC 4301 §4.4.2: install the inbound SA *spi* (replacing one with that SPI); *peer* sends from there."""
        now = self.stamp()
        self._end(spi, now)
        log = self.inbound_log
        code = spi_int(spi)
        log.rows.setdefault(code, []).append(len(log.spi))
        log.spi.append(code)
        log.installed.append(now)
        log.removed.append(math.inf)
        log.expired.append(math.inf)
        node = self.node
        sa = self._sad[spi] = InboundSa(spi, peer, len(log.spi) - 1,
                                        lambda: self._watcher.inbound_changed(node, spi, self._now()), limits)
        self._watcher.inbound_changed(node, spi, self._now())
        return sa

    def _end(self, spi: bytes, now: float) -> None:
        sa = self._sad.pop(spi, None)
        if sa is not None:
            self.inbound_log.removed[sa.row] = now

    def remove_inbound(self, spi: bytes) -> None:
        """RFC 4301 §4.4.2: remove the inbound SA *spi* (nothing if there is none)."""
        self._end(spi, self.stamp(spi=spi))

    def inbound(self, spi: bytes) -> InboundSa | None:
        """The inbound SA with SPI *spi*, if installed."""
        return self._sad.get(spi)

    # --- SPD -> outbound SA -------------------------------------------------------------------------

    def _note(self, policy: Hashable) -> None:
        """Write *policy*'s outbound state now into its timeline and tell the watcher."""
        now = self.stamp(policy=policy)
        log = self.outbound_log.get(policy)
        if log is None:
            log = self.outbound_log[policy] = OutboundTimeline()
        sa = self._out.get(policy)
        log.at.append(now)
        if sa is None:
            log.spi.append(-1)
            log.expired.append(0)
            log.src.append(-1)
            log.dst.append(-1)
        else:
            log.spi.append(spi_int(sa.spi))
            log.expired.append(1 if sa.expired else 0)
            log.src.append(self._code(sa.src))
            log.dst.append(self._code(sa.dst))
        self._watcher.outbound_changed(self.node, policy, self._now())

    def set_outbound(self, policy: Hashable, spi: bytes, suite: Suite, encr_key: bytes, integ_key: bytes, *,
                     src: Address, dst: Address, limits: EspLimits | None = None) -> OutboundSa:
        """RFC 4301 §4.4.1.2 / RFC 7296 §2.8: *policy* now sends with the outbound SA *spi* from *src* to *dst*."""
        sa = self._out[policy] = OutboundSa(spi, src, dst, limits)
        self._note(policy)
        return sa

    def clear_outbound(self, policy: Hashable) -> None:
        """*policy* has no outbound SA any more (nothing if it had none)."""
        if self._out.pop(policy, None) is not None:
            self._note(policy)

    def outbound(self, policy: Hashable) -> OutboundSa | None:
        """The outbound SA *policy* sends with, if any."""
        return self._out.get(policy)

    def move_outbound(self, policy: Hashable, src: Address, dst: Address) -> None:
        """RFC 4555 / RFC 7296 §2.23: *policy*'s outbound SA sends from *src* to *dst* now (nothing if it has none)."""
        sa = self._out.get(policy)
        if sa is not None and (sa.src, sa.dst) != (src, dst):
            sa.src, sa.dst = src, dst
            self._note(policy)

    def expire(self, spi: bytes) -> None:
        """RFC 4301 §4.4.2.1: the inbound SA *spi* and every outbound SA with SPI *spi* drop all further packets."""
        sa = self._sad.get(spi)
        if sa is not None and not sa.expired:
            sa.expired = True
            self.inbound_log.expired[sa.row] = self.stamp(spi=spi)
        for policy, out in list(self._out.items()):
            if out.spi == spi and not out.expired:
                out.expired = True
                self._note(policy)

    def expire_outbound(self, policy: Hashable) -> None:
        """RFC 4301 §4.4.2.1: *policy*'s outbound SA reached its hard limit: it drops all further packets."""
        out = self._out.get(policy)
        if out is not None and not out.expired:
            out.expired = True
            self._note(policy)

    def expire_inbound(self, spi: bytes) -> None:
        """RFC 4301 §4.4.2.1: the inbound SA *spi* reached its hard limit: it drops all further packets."""
        sa = self._sad.get(spi)
        if sa is not None and not sa.expired:
            sa.expired = True
            self.inbound_log.expired[sa.row] = self.stamp(spi=spi)

    # --- what the plane tells the daemon ----------------------------------------------------------

    def queue_event(self, event: EspEvent) -> None:
        """Queue an event for the daemon (the fleet engine's ``EspPeerMoved``)."""
        self._events.append(event)

    def next_event(self) -> EspEvent | None:
        """The oldest event not yet taken, or None."""
        return self._events.popleft() if self._events else None
