"""A real-socket driver for the sans-IO ``IkeDaemon`` (RFC 7296 §2.11, RFC 3948 §2.2).

Outside the protocol core: this module owns the sockets and the wall clock.
It binds one UDP socket for IKE (e.g. 127.0.0.2:1500) and, optionally, one for
the NAT-T port (e.g. 127.0.0.2:14500), waits with ``selectors`` until the next
datagram or the daemon's next deadline (``get_timer()``), feeds
``receive_datagram(data, src, dst, now)`` with ``now = time.monotonic() - start``,
fires ``handle_timer(now)`` and sends ``datagrams_to_send(now)``, each datagram from
the socket bound to its ``src`` (a host with several addresses, e.g. a MOBIKE client,
binds them all with ``extra``: RFC 4555 §3.5 path tests leave from the new one). On the NAT-T
flow (our NAT-T socket, or a peer port 4500) IKE messages carry the 4-byte
non-ESP marker (RFC 3948 §2.2): it is added on send and stripped on receive;
datagrams without it are ESP (RFC 3948 §2.1). The driver has no ESP of its own:
given ``on_esp`` it hands each ESP packet to it, otherwise it counts them in
``esp_ignored``; ``send_esp`` sends an ESP packet in UDP, and ``on_event`` lets an
ESP data plane follow the daemon's CHILD_SA events as they are collected.

A flood cannot starve the daemon's timers: each ``step`` reads at most
``max_per_step`` datagrams per socket before it fires the due deadline. The
driver keeps only the last ``history`` events, sent and received datagrams
(ring buffers), counting what it forgot (``events_dropped``, ``sent_dropped``,
``received_dropped``).

Example::

    with UdpDriver(daemon, Address("127.0.0.2", 1500)) as drv:
        daemon.initiate("vpn", drv.now())
        ev = drv.run_until(lambda e: isinstance(e, IkeSaEstablished), timeout=5.0)
"""

from __future__ import annotations

import selectors
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from ikesim.ike.events import IkeEvent
from ikesim.types import NATT_PORT, Address, Datagram

__all__ = ["NON_ESP_MARKER", "NAT_KEEPALIVE", "SansIoDaemon", "UdpDriver", "MAX_PER_STEP", "HISTORY"]

NON_ESP_MARKER = b"\x00\x00\x00\x00"
"""Prefix of IKE messages on the NAT-T port (RFC 3948 §2.2)."""
NAT_KEEPALIVE = b"\xff"
"""A NAT-keepalive packet: the single octet 0xFF (RFC 3948 §2.3); neither IKE nor ESP."""

_MAX_DATAGRAM = 65535
MAX_PER_STEP = 64
"""Datagrams read from one socket per ``step`` before the daemon's due deadline is fired."""
HISTORY = 10_000
"""Events, sent and received datagrams the driver keeps (the oldest are forgotten and counted)."""


class SansIoDaemon(Protocol):
    """The driver half of ``ikesim.ike.daemon.IkeDaemon`` that a socket loop needs."""

    def receive_datagram(self, data: bytes, src: Address, dst: Address, now: float) -> None: ...
    def datagrams_to_send(self, now: float) -> list[Datagram]: ...
    def get_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...
    def next_event(self) -> IkeEvent | None: ...


class UdpDriver:
    """Run a sans-IO IKE daemon over real UDP sockets with the monotonic clock (RFC 7296 §2.11)."""

    def __init__(self, daemon: SansIoDaemon, bind: Address, *, natt: Address | None = None,
                 clock: Callable[[], float] = time.monotonic, max_per_step: int = MAX_PER_STEP,
                 history: int = HISTORY, on_event: Callable[[IkeEvent, float], None] | None = None,
                 on_esp: Callable[[Datagram], None] | None = None, extra: Sequence[Address] = ()) -> None:
        if max_per_step < 1 or history < 1:
            raise ValueError("max_per_step and history must be at least 1")
        self.daemon = daemon
        self.bind = bind
        self.natt = natt
        self.extra = tuple(extra)
        """Further addresses bound (a host's other addresses); those on the NAT-T port carry the NAT-T flow."""
        self._natt_locals = frozenset(a for a in (natt, *self.extra)
                                      if a is not None and a.port in {NATT_PORT, natt.port if natt else NATT_PORT})
        self.max_per_step = max_per_step
        self._clock = clock
        self._start = clock()
        self.events: deque[IkeEvent] = deque(maxlen=history)
        """The last ``history`` events the daemon emitted, in order."""
        self.sent: deque[Datagram] = deque(maxlen=history)
        """The last ``history`` datagrams sent (IKE bytes, without the non-ESP marker)."""
        self.received: deque[Datagram] = deque(maxlen=history)
        """The last ``history`` IKE datagrams handed to the daemon (without the non-ESP marker)."""
        self.events_dropped = 0
        """Events forgotten from ``events`` (the ring was full)."""
        self.sent_dropped = 0
        """Datagrams forgotten from ``sent``."""
        self.received_dropped = 0
        """Datagrams forgotten from ``received``."""
        self.on_event = on_event
        """Called with each event and ``now`` as the driver collects it, in order (an ESP plane follows the SAs)."""
        self.on_esp = on_esp
        """Called with each ESP packet on the NAT-T flow: ``Datagram(esp, src=peer, dst=our socket)``."""
        self.esp_ignored = 0
        """Datagrams on the NAT-T flow that were neither IKE nor handed to ``on_esp`` (ESP without a handler,
        NAT-keepalives)."""
        self.esp_received = 0
        """ESP packets handed to ``on_esp``."""
        self.esp_sent = 0
        """ESP packets sent with ``send_esp``."""
        self._emitted = 0
        self._consumed = 0
        self._selector = selectors.DefaultSelector()
        self._sockets: dict[Address, socket.socket] = {}
        try:
            for addr in (bind, natt, *self.extra):
                if addr is not None and addr not in self._sockets:
                    sock = socket.socket(socket.AF_INET6 if ":" in addr.ip else socket.AF_INET,
                                         socket.SOCK_DGRAM)
                    self._sockets[addr] = sock
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind((addr.ip, addr.port))
                    sock.setblocking(False)
                    self._selector.register(sock, selectors.EVENT_READ, addr)
        except OSError:
            self.close()
            raise

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the sockets and the selector."""
        self._selector.close()
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()

    def __enter__(self) -> UdpDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def now(self) -> float:
        """Seconds since the driver started: the ``now`` the daemon is given."""
        return self._clock() - self._start

    # ------------------------------------------------------------------ I/O
    def _natt_flow(self, local: Address, peer: Address) -> bool:
        return local in self._natt_locals or peer.port == NATT_PORT

    def flush(self) -> None:
        """Send everything the daemon has queued, and collect its events."""
        for d in self.daemon.datagrams_to_send(self.now()):
            local = self._local_for(d.src)
            data = NON_ESP_MARKER + d.data if self._natt_flow(local, d.dst) else d.data
            self._sockets[local].sendto(data, (d.dst.ip, d.dst.port))
            self.sent_dropped += _push(self.sent, d)
        while (e := self.daemon.next_event()) is not None:
            self.events_dropped += _push(self.events, e)
            self._emitted += 1
            if self.on_event is not None:
                self.on_event(e, self.now())

    def _local_for(self, src: Address) -> Address:
        """The bound address that sends for *src*: itself, or, if the daemon floated to a port we did not
        bind, the socket of the same role (NAT-T for port 4500)."""
        if src in self._sockets:
            return src
        return self.natt if (self.natt is not None and src.port == NATT_PORT) else self.bind

    def send_esp(self, d: Datagram) -> None:
        """RFC 3948 §2.1: send the ESP packet ``d.data`` in UDP (no non-ESP marker) from our socket for
        ``d.src`` to ``d.dst``; plain ESP (port 0, IP protocol 50) needs a raw socket and is refused."""
        if d.dst.port == 0:
            raise ValueError("plain ESP (IP protocol 50) is not sent by this driver, only ESP in UDP (RFC 3948)")
        self._sockets[self._local_for(d.src)].sendto(d.data, (d.dst.ip, d.dst.port))
        self.esp_sent += 1

    def _receive(self, local: Address) -> None:
        """Read at most ``max_per_step`` datagrams, so a flood cannot hold back the timers."""
        sock = self._sockets[local]
        for _ in range(self.max_per_step):
            try:
                data, peer = sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. an ICMP error reported on the socket; nothing to read
                return
            src = Address(peer[0], peer[1])
            if self._natt_flow(local, src):
                if not data.startswith(NON_ESP_MARKER):
                    if self.on_esp is None or data == NAT_KEEPALIVE:
                        self.esp_ignored += 1
                    else:
                        self.esp_received += 1
                        self.on_esp(Datagram(data, src, local))
                        self.flush()  # the handler may have told the daemon something (RFC 3948 §3)
                    continue
                data = data[len(NON_ESP_MARKER):]
            self.received_dropped += _push(self.received, Datagram(data, src, local))
            self.daemon.receive_datagram(data, src, local, self.now())
            self.flush()

    def step(self, max_wait: float) -> None:
        """Wait up to *max_wait* seconds for a datagram or the daemon's deadline, and handle it."""
        self.flush()
        now = self.now()
        timer = self.daemon.get_timer()
        wait = max_wait if timer is None else min(max_wait, max(0.0, timer - now))
        for key, _ in self._selector.select(max(0.0, wait)):
            self._receive(key.data)
        timer = self.daemon.get_timer()
        now = self.now()
        if timer is not None and timer <= now:
            self.daemon.handle_timer(now)
        self.flush()

    def run_until(self, predicate: Callable[[IkeEvent], bool], timeout: float) -> IkeEvent:
        """Drive the daemon until an event not yet returned satisfies *predicate*; return it.

        Raises ``TimeoutError`` after *timeout* seconds of wall-clock time.
        """
        deadline = self.now() + timeout
        while True:
            self.flush()
            for e in self._unread():
                if predicate(e):
                    return e
            remaining = deadline - self.now()
            if remaining <= 0:
                raise TimeoutError(f"no matching event within {timeout} s")
            self.step(remaining)

    def run_for(self, seconds: float) -> None:
        """Drive the daemon for *seconds* of wall-clock time (answering whatever arrives)."""
        deadline = self.now() + seconds
        while (remaining := deadline - self.now()) > 0:
            self.step(remaining)

    def take_events(self) -> list[IkeEvent]:
        """Events not yet returned by ``run_until``/``take_events`` and still kept; marks them consumed."""
        self.flush()
        return list(self._unread())

    def _unread(self) -> Iterator[IkeEvent]:
        """Yield kept events not yet returned, marking each consumed (forgotten ones are skipped)."""
        first = self._emitted - len(self.events)  # number of the oldest kept event
        self._consumed = max(self._consumed, first)
        while self._consumed < self._emitted:
            e = self.events[self._consumed - first]
            self._consumed += 1
            yield e


def _push(ring: deque[Any], item: object) -> int:
    """Append *item* to a bounded deque; 1 if that forgot the oldest entry, else 0."""
    full = len(ring) == ring.maxlen
    ring.append(item)
    return int(full)
