"""Scripted faults: pick IKE datagrams as they are sent and drop, delay, hold, duplicate or reorder them.

A ``FaultRule`` picks datagrams by direction (sending and receiving node),
exchange type, request or response, message ID, what they carry (a notify
or payload, decrypted by ``ikesim.sim.inspect``), a time window and which
occurrence of its matches (1 = the first, None = every one). Rules are
checked in order at the sending node; every rule that picks a datagram
counts it, and the first one whose action is not ``pass`` decides its fate.
``pass`` rules only mark a datagram, so that a ``hold`` can wait for it:
"hold A's response until B's Delete has been delivered".

Each applied rule is recorded as a ``FaultApplied`` event on the sending
node; a dropped datagram's fate is ``dropped_by_fault`` and one still held
when the run ends stays ``held``, so sent = delivered + dropped (each with
its reason) + held + in flight. The summary's ``datagrams.held_by_fault``
counts every datagram a ``hold`` or ``reorder`` rule held, released or not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ikesim.sim.datagram import SimDatagram
from ikesim.sim.inspect import CARRY_NAMES, Header, MessageInspector
from ikesim.sim.view import SimView
from ikesim.wire.iana import ExchangeType

__all__ = ["FAULT_ACTIONS", "FaultRule", "FaultApplied", "FaultInjector"]

FAULT_ACTIONS = ("drop", "delay", "hold", "duplicate", "reorder", "pass")


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultRule:
    """Which datagrams to pick and what to do with them (all given criteria must hold)."""

    name: str
    action: str
    src: str | None = None
    """Sending node."""
    dst: str | None = None
    """Node the datagram is addressed to."""
    exchange: ExchangeType | None = None
    response: bool | None = None
    """True: responses only; False: requests only; None: both."""
    message_id: int | None = None
    carries: frozenset[str] = frozenset()
    """Every name must be carried (``ikesim.sim.inspect.CARRY_NAMES``)."""
    after: float | None = None
    """Only datagrams sent at or after this time (seconds)."""
    before: float | None = None
    """Only datagrams sent before this time."""
    occurrence: int | None = 1
    """Act on the n-th pick only (1-based); None = every pick."""
    delay: float = 0.0
    """``delay``: extra delay; ``duplicate``: delay of the copies; ``reorder``/``hold``: longest wait (0 = no limit)."""
    until: str | None = None
    """``hold``: release once a datagram picked by the rule of this name has been delivered."""
    copies: int = 1
    """``duplicate``: how many extra copies."""

    def __post_init__(self) -> None:
        if self.action not in FAULT_ACTIONS:
            raise ValueError(f"fault {self.name!r}: unknown action {self.action!r} (one of {', '.join(FAULT_ACTIONS)})")
        unknown = sorted(self.carries - CARRY_NAMES)
        if unknown:
            raise ValueError(f"fault {self.name!r}: carries unknown name(s) {', '.join(unknown)}")
        if self.action == "hold" and not self.until and self.delay <= 0:
            raise ValueError(f"fault {self.name!r}: hold needs until (or a delay)")
        if self.action == "delay" and self.delay <= 0:
            raise ValueError(f"fault {self.name!r}: delay needs a delay > 0")
        if self.occurrence is not None and self.occurrence < 1:
            raise ValueError(f"fault {self.name!r}: occurrence counts from 1")
        if self.copies < 1:
            raise ValueError(f"fault {self.name!r}: copies must be at least 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultApplied:
    """A fault rule acted on a datagram sent by this node (``ikesim.sim.faults``)."""

    rule: str
    action: str
    datagram: int
    """Id of the datagram (its row in the packets table)."""
    exchange: str
    response: bool
    message_id: int
    to: str
    """Node the datagram was addressed to."""
    copies: tuple[int, ...] = ()
    """``duplicate``: ids of the copies."""


@dataclass(slots=True)
class _Held:
    here: str
    sd: SimDatagram
    released: bool = False


@dataclass(slots=True)
class _RuleState:
    rule: FaultRule
    picks: int = 0
    waiting: list[_Held] = field(default_factory=list)
    """Datagrams this ``hold``/``reorder`` rule holds."""


class FaultInjector:
    """Applies fault rules to datagrams at the sending node (hooked into ``Simulation._send``)."""

    def __init__(self, sim: SimView, rules: Sequence[FaultRule]) -> None:
        names = [r.name for r in rules]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate fault name(s): {', '.join(dup)}")
        for r in rules:
            if r.until is not None and r.until not in names:
                raise ValueError(f"fault {r.name!r}: until names no fault rule {r.until!r}")
        self._sim = sim
        self._states = [_RuleState(r) for r in rules]
        self._by_name = {s.rule.name: s for s in self._states}
        self._inspector = MessageInspector({n: node.daemon for n, node in sim.nodes.items()})
        self._watched: dict[int, list[str]] = {}
        """datagram id -> names of the rules that picked it and that some hold waits for."""
        self._awaited = {r.until for r in rules if r.until is not None}
        self._reorder: dict[tuple[str, str], list[_Held]] = {}
        """(sending node, receiving node) -> datagrams waiting to go out after the next one."""

    # ------------------------------------------------------------------ picking
    def _picks(self, st: _RuleState, here: str, dst: str | None, h: Header | None, now: float,
               carried: list[frozenset[str]]) -> bool:
        r = st.rule
        if (r.src is not None and r.src != here) or (r.dst is not None and r.dst != dst):
            return False
        if r.after is not None and now < r.after or r.before is not None and now >= r.before:
            return False
        if h is None:
            return False
        if r.exchange is not None and h.exchange != r.exchange:
            return False
        if r.response is not None and h.response != r.response:
            return False
        if r.message_id is not None and h.message_id != r.message_id:
            return False
        if r.carries:
            if not carried:
                carried.append(self._inspector.carries(here, h) or frozenset())
            if not r.carries <= carried[0]:
                return False
        return True

    def on_send(self, here: str, sd: SimDatagram, forward: Callable[[str, SimDatagram], None]) -> None:
        """Apply the rules to *sd*, just sent by node *here*, and forward it (or not) with *forward*."""
        sim = self._sim
        now = sim.env.now
        dst = sim.topology.owner(sd.dst.ip)
        h = self._inspector.header(sd.data)
        carried: list[frozenset[str]] = []
        acting: _RuleState | None = None
        for st in self._states:
            if not self._picks(st, here, dst, h, now, carried):
                continue
            st.picks += 1
            r = st.rule
            if r.occurrence is not None and st.picks != r.occurrence:
                continue
            if r.name in self._awaited:
                self._watched.setdefault(sd.id, []).append(r.name)
            if r.action == "pass":
                self._record(here, dst, sd, h, r)
            elif acting is None:
                acting = st
        pair = (here, dst or "")
        if acting is None:
            forward(here, sd)
            self._release_reordered(pair, forward)
            return
        r = acting.rule
        self._record(here, dst, sd, h, r, copies=self._apply(acting, here, sd, pair, forward))

    def _apply(self, st: _RuleState, here: str, sd: SimDatagram, pair: tuple[str, str],
               forward: Callable[[str, SimDatagram], None]) -> tuple[int, ...]:
        r, sim = st.rule, self._sim
        env, collector = sim.env, sim.collector
        where = f"fault:{r.name}"
        if r.action == "drop":
            collector.record_fate(sd.id, "dropped_by_fault", env.now, where)
            self._release_reordered(pair, forward)
            return ()
        if r.action == "delay":
            env.timeout(r.delay).callbacks.append(lambda _ev: forward(here, sd))
            self._release_reordered(pair, forward)
            return ()
        if r.action == "duplicate":
            forward(here, sd)
            ids = []
            for _ in range(r.copies):
                copy = sim.copy_datagram(here, sd)
                ids.append(copy.id)
                if r.delay > 0:
                    env.timeout(r.delay).callbacks.append(lambda _ev, c=copy: forward(here, c))
                else:
                    forward(here, copy)
            self._release_reordered(pair, forward)
            return tuple(ids)
        held = _Held(here, sd)
        collector.record_fate(sd.id, "held", env.now, where)
        if r.action == "hold":
            st.waiting.append(held)
        else:  # reorder: goes out right after the next datagram on the same path
            self._release_reordered(pair, forward)
            self._reorder.setdefault(pair, []).append(held)
        if r.delay > 0:
            env.timeout(r.delay).callbacks.append(lambda _ev: self._release(held, forward))
        return ()

    def _release(self, held: _Held, forward: Callable[[str, SimDatagram], None]) -> None:
        if not held.released:
            held.released = True
            forward(held.here, held.sd)

    def _release_reordered(self, pair: tuple[str, str], forward: Callable[[str, SimDatagram], None]) -> None:
        waiting = self._reorder.pop(pair, None)
        for held in waiting or ():
            self._release(held, forward)

    def on_delivered(self, sd: SimDatagram, forward: Callable[[str, SimDatagram], None]) -> None:
        """*sd* reached its node: release what waits for a rule that picked it."""
        names = self._watched.pop(sd.id, None)
        if not names:
            return
        for st in self._states:
            if st.rule.until in names and st.waiting:
                waiting, st.waiting = st.waiting, []
                for held in waiting:
                    self._release(held, forward)

    def _record(self, here: str, dst: str | None, sd: SimDatagram, h: Header | None, r: FaultRule,
                copies: tuple[int, ...] = ()) -> None:
        self._sim.collector.record(FaultApplied(
            rule=r.name, action=r.action, datagram=sd.id, exchange=h.exchange.name if h else "",
            response=bool(h and h.response), message_id=h.message_id if h else -1, to=dst or "", copies=copies,
        ), now=self._sim.env.now, node=here)
