"""The node's driver loop: exact timer wake-ups, lazy re-arming, event draining and sending."""

from __future__ import annotations

from typing import Any

import pytest
import simpy
from list_recorder import ListRecorder

from ikesim.crypto.meter import OpCounter
from ikesim.sim.node import Node
from ikesim.types import Address, Datagram

HERE, PEER = Address("10.0.0.1"), Address("10.0.0.2")


class CountingEnv(simpy.Environment):
    """A SimPy environment that counts the timeouts scheduled on it."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts = 0

    def timeout(self, delay: Any, value: Any = None) -> simpy.Timeout:  # type: ignore[override]
        self.timeouts += 1
        return super().timeout(delay, value)


class FakeDaemon:
    """The IkeDaemon driver API over a plain set of deadlines; records every call."""

    def __init__(self, deadlines: list[float]) -> None:
        self.name = "fake"
        self.deadlines = sorted(deadlines)
        self.timer_calls: list[float] = []
        self.received: list[tuple[float, bytes]] = []
        self.events: list[str] = []
        self.outbox: list[Datagram] = []

    def receive_datagram(self, data: bytes, src: Address, dst: Address, now: float) -> None:
        self.received.append((now, data))
        if data.startswith(b"at "):
            self.deadlines = sorted([*self.deadlines, float(data[3:])])
        elif data.startswith(b"move "):
            old, new = (float(x) for x in data[5:].split(b" "))
            self.deadlines = sorted([new if d == old else d for d in self.deadlines])
        self.events.append(f"got {data.decode()}")
        self.outbox.append(Datagram(b"ack " + data, HERE, PEER))

    def datagrams_to_send(self, now: float) -> list[Datagram]:
        out, self.outbox = self.outbox, []
        return out

    def get_timer(self) -> float | None:
        return self.deadlines[0] if self.deadlines else None

    def handle_timer(self, now: float) -> None:
        self.timer_calls.append(now)
        due = [d for d in self.deadlines if d <= now]
        self.deadlines = [d for d in self.deadlines if d > now]
        self.events.extend(f"timer {d}" for d in due)

    def next_event(self) -> str | None:
        return self.events.pop(0) if self.events else None


def _node(daemon: FakeDaemon) -> tuple[CountingEnv, Node, ListRecorder, list[tuple[float, str, Datagram]]]:
    env = CountingEnv()
    col = ListRecorder()
    sent: list[tuple[float, str, Datagram]] = []
    node = Node(env, daemon, OpCounter(), col, lambda n, d: sent.append((env.now, n, d)))  # type: ignore[arg-type]
    return env, node, col, sent


def _inject(env: simpy.Environment, node: Node, at: float, data: bytes) -> None:
    t = env.timeout(at)
    t.callbacks.append(lambda _e: node.receive(data, PEER, HERE))


def test_daemon_is_woken_exactly_at_each_deadline() -> None:
    """Deadlines 3, 5, 10: handle_timer is called at exactly 3, 5 and 10 and nowhere else."""
    d = FakeDaemon([5.0, 3.0, 10.0])
    env, node, col, _sent = _node(d)
    node.service()
    env.run(until=100)
    assert d.timer_calls == [3.0, 5.0, 10.0]
    assert [(t, n, e) for t, n, e in col.events] == [(3.0, "fake", "timer 3.0"), (5.0, "fake", "timer 5.0"),
                                                     (10.0, "fake", "timer 10.0")]
    assert env.timeouts == 3


def test_earlier_deadline_after_a_datagram_is_honoured() -> None:
    """A datagram at t=1 adds a deadline at 2 (earlier than the armed 5): wake-ups at 2 and 5 exactly."""
    d = FakeDaemon([5.0])
    env, node, _col, sent = _node(d)
    node.service()
    _inject(env, node, 1.0, b"at 2")
    env.run(until=100)
    assert d.timer_calls == [2.0, 5.0]
    assert [(t, n, dg.data) for t, n, dg in sent] == [(1.0, "fake", b"ack at 2")]


def test_postponed_deadline_wakes_late_without_calling_the_daemon_early() -> None:
    """The armed wake-up at 5 finds the deadline moved to 7: no handle_timer at 5, one at 7."""
    d = FakeDaemon([5.0, 10.0])
    env, node, col, _sent = _node(d)
    node.service()
    _inject(env, node, 4.0, b"move 5.0 7.0")
    env.run(until=100)
    assert d.timer_calls == [7.0, 10.0]
    assert [e for _t, _n, e in col.events] == ["got move 5.0 7.0", "timer 7.0", "timer 10.0"]


def test_repeated_service_does_not_stack_timeouts() -> None:
    """1000 datagrams while the deadline stays at 500 schedule one wake-up, not one per datagram."""
    d = FakeDaemon([500.0])
    env, node, _col, sent = _node(d)
    node.service()
    for i in range(1000):
        _inject(env, node, 0.1 * (i + 1), b"ping")
    env.run(until=1000)
    assert d.timer_calls == [500.0]
    assert len(sent) == 1000
    assert env.timeouts == 1000 + 1


def test_no_deadline_means_no_wakeup() -> None:
    """A daemon with no timer is never woken and no timeout is scheduled."""
    d = FakeDaemon([])
    env, node, _col, _sent = _node(d)
    node.service()
    env.run(until=50)
    assert d.timer_calls == [] and env.timeouts == 0


def test_events_are_stamped_with_the_time_of_the_call() -> None:
    """Events drained after receive_datagram carry env.now and the node name, in emission order."""
    d = FakeDaemon([])
    env, node, col, _sent = _node(d)
    _inject(env, node, 2.5, b"one")
    _inject(env, node, 4.0, b"two")
    env.run(until=10)
    assert col.events == [(2.5, "fake", "got one"), (4.0, "fake", "got two")]
    assert d.received == [(2.5, b"one"), (4.0, b"two")]


@pytest.mark.parametrize("past", [0.0, 1.0])
def test_deadline_in_the_past_fires_immediately(past: float) -> None:
    """A deadline already due when armed is handled at the current time, not before it."""
    d = FakeDaemon([])
    env, node, _col, _sent = _node(d)
    env.run(until=3)
    d.deadlines = [past]
    node.service()
    env.run(until=10)
    assert d.timer_calls == [3.0]
