"""The invariant checker's clock: its deadlines run between engine events, in the places their timeouts had.

SimPy runs the events of one instant in the order they were scheduled, by a sequence number taken from
``env._eid`` when each is scheduled (STYLE.md §3 rule 3). The checker used to arm one ``Timeout`` per
deadline: 42 % of all engine events (issue 12). A deadline now takes the sequence number its timeout would
have had and waits in a heap of the checker's own. Before each engine step, the clock runs every deadline
that sorts before the next scheduled event (same key: time, priority, sequence number), with the clock at its
time: the same checks, in the same places among same-instant events, with no engine event.

SimPy's ``run`` loop calls ``env.step()`` for each event; the clock installs itself in front of it.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any

import simpy
from simpy.events import NORMAL

__all__ = ["CheckClock"]


class CheckClock:
    """Runs *due* (check) at each check's deadline; a check that *moot* (check) says is moot is dropped."""

    __slots__ = ("_env", "_queue", "_heap", "_step", "_due", "_moot")

    def __init__(self, env: simpy.Environment, due: Callable[[Any], None], moot: Callable[[Any], bool]) -> None:
        self._env = env
        self._queue: list[tuple[Any, ...]] = env._queue
        self._heap: list[tuple[float, int, int, Any]] = []
        """(time, priority, sequence number, check): keyed like SimPy's own schedule."""
        self._step = env.step
        self._due = due
        self._moot = moot
        env.step = self.step  # type: ignore[method-assign]

    def at(self, when: float, check: Any) -> None:
        """Run *check* at *when* (now if past), where a timeout scheduled now would run."""
        env = self._env
        now = env.now
        heappush(self._heap, (now + max(0.0, when - now), NORMAL, next(env._eid), check))

    def step(self) -> None:
        """Run the checks that come before the next engine event, then that event (``Environment.step``)."""
        heap = self._heap
        if heap:
            queue = self._queue
            while heap and (not queue or heap[0] < queue[0]):
                at, _priority, _eid, check = heappop(heap)
                if not self._moot(check):
                    self._env._now = at  # as SimPy's step sets it
                    self._due(check)
        self._step()
