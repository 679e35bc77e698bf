"""A simulated host running one sans-IO ``IkeDaemon`` (the driver loop, aioquic order).

On a datagram or a timer: call the daemon, drain its events to the
collector (stamped with ``env.now`` and the node), send what it wants sent,
re-arm the wake-up. The node keeps at most one pending wake-up per distinct
deadline and only schedules a new one when the daemon's deadline is earlier
than every pending one; SimPy timeouts cannot be cancelled, so a wake-up
that finds nothing due simply re-arms. Each new wake-up is earlier than all
pending ones, so their deadlines form a decreasing list whose last entry is
the earliest. With a processing model (``sim.processing``) each datagram is
handed over after its drawn processing time and each wake-up comes late by one.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import simpy

from ikesim.crypto.meter import OpCounter
from ikesim.errors import IkesimError
from ikesim.ike.daemon import IkeDaemon
from ikesim.ike.events import AaaRequested, IkeSaMoved, NatTraversalStarted
from ikesim.rng import Rng
from ikesim.sim.cpu import CpuModel
from ikesim.sim.processing import ProcessingModel
from ikesim.sim.view import EventWatcher
from ikesim.types import Address, Datagram
from ikesim.wire.codec import peek_header
from ikesim.wire.iana import ExchangeType, HeaderFlag

if TYPE_CHECKING:
    from ikesim.metrics.recorder import Recorder
    from ikesim.sim.dataplane import NodeDataPlane

__all__ = ["Node"]


def _describe(data: bytes) -> str:
    """A CPU job's datagram as ``CREATE_CHILD_SA request`` (or ``datagram`` if it is no IKE message)."""
    try:
        _si, _sr, xchg, flags, _mid = peek_header(data)
        # interned: the CPU table keeps one per job, and there are only a few distinct ones
        return sys.intern(f"{ExchangeType(xchg).name} {'response' if flags & HeaderFlag.RESPONSE else 'request'}")
    except IkesimError:
        return "datagram"


class Node:
    """A host: an IkeDaemon plus its wiring to the network."""

    __slots__ = ("env", "daemon", "name", "meter", "_collector", "_send", "_pending", "checker", "on_natt", "cpu",
                 "_jobs", "_busy", "_wake_cb", "plane", "on_aaa", "processing", "_proc_rng", "_proc_last")

    def __init__(
        self,
        env: simpy.Environment,
        daemon: IkeDaemon,
        meter: OpCounter,
        collector: Recorder,
        send: Callable[[str, Datagram], None],
    ) -> None:
        self.env = env
        self.daemon = daemon
        self.name = daemon.name
        self.meter = meter
        self._collector = collector
        self._send = send
        self._pending: list[float] = []
        """Deadlines of the pending wake-ups, latest first (so the last one is the earliest)."""
        self.checker: EventWatcher | None = None
        """Told about every batch of events: the simulation's invariant checker (None = off, ``ikesim.sim.invariants``)."""
        self.on_natt: Callable[[Node, NatTraversalStarted | IkeSaMoved], None] | None = None
        """Told when an IKE_SA floats to port 4500 (the simulation starts NAT keepalives, ``ikesim.sim.nat``)."""
        self.cpu: CpuModel | None = None
        """None: work takes no time. Else datagrams and timers queue for its cores (``ikesim.sim.cpu``)."""
        self._jobs: deque[tuple[float, tuple]] | None = None  # type: ignore[type-arg]
        """Jobs waiting for a core (made on the first one: a node without a CPU model never has any)."""
        self._busy = 0
        self._wake_cb = self._wake  # bound once: a fleet's gateway has thousands of wake-ups pending
        self.plane: NodeDataPlane | None = None
        """The ESP data plane following this node's daemon (``ikesim.sim.dataplane``); None without traffic."""
        self.on_aaa: Callable[[Node, AaaRequested], None] | None = None
        """Told about each ``AaaRequested`` of an EAP gateway: its AAA server (``ikesim.sim.aaa``); None: no AAA."""
        self.processing: ProcessingModel | None = None
        """None: inputs are handled the instant they arrive. Else each waits a drawn processing time (``sim.processing``)."""
        self._proc_rng = Rng(0)
        """The stream of processing times (set with the model; unused without one)."""
        self._proc_last = 0.0
        """When the last datagram received is handed to the daemon (FIFO under processing noise)."""

    def set_processing(self, model: ProcessingModel | None, rng: Rng) -> None:
        """Give every input of this node a processing time drawn from *model* with *rng* (``sim.processing``)."""
        self.processing = model
        self._proc_rng = rng

    @property
    def child_names(self) -> dict[bytes, str]:
        """spi_in -> child configuration name, for every CHILD_SA this node installed (and has not deleted)."""
        return {spi: child.name for spi, child in self.daemon.children.items()}

    def receive(self, data: bytes, src: Address, dst: Address) -> None:
        """A datagram addressed to this node arrived (called from a link callback)."""
        if self.processing is not None:
            self._process_later(data, src, dst)
            return
        self._handle_datagram(data, src, dst)

    def _process_later(self, data: bytes, src: Address, dst: Address) -> None:
        """Hand the datagram to the daemon after its processing time, in arrival order (``sim.processing``)."""
        assert self.processing is not None
        now = self.env.now
        at = max(now + self.processing.draw(self._proc_rng), self._proc_last)
        self._proc_last = at
        self.env.timeout(at - now).callbacks.append(lambda _ev: self._handle_datagram(data, src, dst))

    def _handle_datagram(self, data: bytes, src: Address, dst: Address) -> None:
        """Give the datagram to the daemon now, or queue it for the CPU (``sim.cpu``)."""
        if self.cpu is not None:
            self._enqueue(("datagram", data, src, dst))
            return
        now = self.env.now
        self.daemon.receive_datagram(data, src, dst, now)
        self.service()

    # ------------------------------------------------------------------ CPU model (ikesim.sim.cpu)
    def _enqueue(self, job: tuple) -> None:  # type: ignore[type-arg]
        if self._jobs is None:
            self._jobs = deque()
        self._jobs.append((self.env.now, job))
        self._dispatch()

    def _dispatch(self) -> None:
        cpu, jobs = self.cpu, self._jobs
        assert cpu is not None and jobs is not None
        while self._busy < cpu.cores and jobs:
            arrived, job = jobs.popleft()
            self._busy += 1
            self._run(arrived, job)

    def _run(self, arrived: float, job: tuple) -> None:  # type: ignore[type-arg]
        """Run *job* on a core now; its datagrams leave when the CPU time it cost has passed."""
        cpu, daemon, now = self.cpu, self.daemon, self.env.now
        assert cpu is not None
        before = dict(self.meter.counts)
        if job[0] == "datagram":
            daemon.receive_datagram(job[1], job[2], job[3], now)
            what = _describe(job[1])
        else:
            deadline = daemon.get_timer()
            if deadline is not None and deadline <= now:
                daemon.handle_timer(now)
            what = "timer"
        service = cpu.service_time(before, self.meter.counts)
        out = self.service(hold=True)
        self._collector.record_job(self.name, arrived, now, now + service, what)
        done = self.env.timeout(service)
        done.callbacks.append(lambda _ev: self._finish(out))

    def _finish(self, out: list[Datagram]) -> None:
        for d in out:
            self._send(self.name, d)
        self._busy -= 1
        if self._jobs:
            self._dispatch()

    def service(self, *, hold: bool = False) -> list[Datagram]:
        """Drain events, send datagrams (or return them with *hold*) and re-arm the timer (after any call into the daemon)."""
        daemon = self.daemon
        now = self.env.now
        event = daemon.next_event()
        if event is not None:
            self._drain(event, now)
        out = daemon.datagrams_to_send(now)
        if not hold:
            for d in out:
                self._send(self.name, d)
        deadline = daemon.get_timer()
        pending = self._pending
        if deadline is None or (pending and deadline >= pending[-1]):
            return out
        pending.append(deadline)
        late = self.processing.draw(self._proc_rng) if self.processing is not None else 0.0
        self.env.timeout(max(0.0, deadline - now) + late, deadline).callbacks.append(self._wake_cb)
        return out

    def _drain(self, event: Any, now: float) -> None:
        """Record *event* and the rest of the daemon's events; hand the batch to the checker."""
        daemon, record, name, checker, plane = self.daemon, self._collector.record, self.name, self.checker, self.plane
        batch = []
        while event is not None:
            if self.on_natt is not None and (type(event) is NatTraversalStarted
                                             or (type(event) is IkeSaMoved and event.nat_local)):
                self.on_natt(self, event)  # a MOBIKE move behind a new NAT starts keepalives too (RFC 3948 §2.3)
            if plane is not None:
                plane.on_event(event, now)
            if self.on_aaa is not None and type(event) is AaaRequested:
                self.on_aaa(self, event)
            record(event, now=now, node=name)
            batch.append(event)
            event = daemon.next_event()
        if checker is not None:
            checker.on_events(self, batch)

    def _wake(self, event: Any) -> None:
        """A wake-up fired (its value: the deadline it was armed for): run the daemon's due timers, or queue a timer job."""
        self._pending.remove(event.value)
        if self.cpu is not None:
            if not any(job[0] == "timer" for _t, job in self._jobs or ()):  # one waiting timer job is enough
                self._enqueue(("timer",))
            return
        now = self.env.now
        deadline = self.daemon.get_timer()
        if deadline is not None and deadline <= now:
            self.daemon.handle_timer(now)
        self.service()
