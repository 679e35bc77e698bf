"""The sweep progress bar and its ETA, computed from finished work per worker."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["clock", "sweep_eta", "sweep_progress"]


def sweep_eta(remaining: int, walls: Sequence[float], workers: int) -> float | None:
    """Seconds left: *remaining* runs × the mean wall time of the finished runs (*walls*) / the workers busy.

    None before the first run has finished (nothing to base it on). The workers busy are at most the runs
    remaining: the last run alone takes a whole run's time, however many workers wait.
    """
    if not walls:
        return None
    if remaining <= 0:
        return 0.0
    return remaining * (sum(walls) / len(walls)) / max(1, min(workers, remaining))


def clock(seconds: float | None) -> str:
    """``h:mm:ss`` (rounded up), or ``-:--:--`` when unknown."""
    if seconds is None:
        return "-:--:--"
    s = math.ceil(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


@contextmanager
def sweep_progress(total: int, done: int, enabled: bool,
                   console: Console | None = None) -> Iterator[Callable[[float, int], None] | None]:
    """A rich bar (on stderr by default); yields ``finished(wall, workers)``, to call as each run ends.

    Yields None when not *enabled*.
    """
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    walls: list[float] = []
    with Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("ETA {task.fields[eta]}"), console=console or Console(stderr=True)) as bar:
        task = bar.add_task("sweep", total=total, completed=done, eta=clock(None))

        def finished(wall: float, workers: int) -> None:
            walls.append(wall)
            left = total - done - len(walls)
            bar.update(task, advance=1, eta=clock(sweep_eta(left, walls, workers)))

        yield finished
