"""A recorder that keeps everything in plain lists: lets the sim tests look at what a link or node recorded."""

from __future__ import annotations

from typing import Any

from ikesim.types import Address


class ListRecorder:
    """An ``ikesim.metrics.recorder.Recorder`` that keeps every call in memory."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, Any]] = []
        self.datagrams: list[tuple[int, float, str, Address, Address, bytes]] = []
        self.fates: dict[int, tuple[str, float, str]] = {}
        self.jobs: list[tuple[str, float, float, float, str]] = []
        self.fragments: dict[int, int] = {}

    def record(self, event: Any, *, now: float, node: str) -> None:
        self.events.append((now, node, event))

    def record_sent(self, dgram_id: int, now: float, node: str, src: Address, dst: Address, data: bytes) -> None:
        self.datagrams.append((dgram_id, now, node, src, dst, data))

    def record_job(self, node: str, arrived: float, start: float, end: float, what: str) -> None:
        self.jobs.append((node, arrived, start, end, what))

    def record_fragmented(self, dgram_id: int, mtu: int) -> None:
        self.fragments.setdefault(dgram_id, mtu)

    def record_fate(self, dgram_id: int, fate: str, now: float, where: str) -> None:
        self.fates[dgram_id] = (fate, now, where)
