"""Fate columns: what became of each datagram or user packet, when and where, as typed arrays."""

from __future__ import annotations

import math
from array import array

__all__ = ["FateColumns"]


class FateColumns:
    """Per item (index = number - 1): its fate (a code into ``fate_names``; -1 while pending), when it met it,
    and where (a code into ``places``). ``Trace`` keeps one set for IKE datagrams, ``TrafficLog`` for user packets."""

    def __init__(self) -> None:
        self.fate = array("b")
        self.fate_time = array("d")
        self.fate_at = array("i")
        self.fate_names: list[str] = []
        self._fate_code: dict[str, int] = {}
        self.places: list[str] = []
        self._place_code: dict[str, int] = {}

    def pending(self) -> None:
        """One more item, its fate not yet known."""
        self.fate.append(-1)
        self.fate_time.append(math.nan)
        self.fate_at.append(0)

    def set_fate(self, i: int, fate: str, now: float, where: str) -> None:
        """Item *i* met *fate* at *now* in *where* (a later fate replaces an earlier one)."""
        code = self._fate_code.get(fate)
        if code is None:
            code = self._fate_code[fate] = len(self.fate_names)
            self.fate_names.append(fate)
        place = self._place_code.get(where)
        if place is None:
            place = self._place_code[where] = len(self.places)
            self.places.append(where)
        self.fate[i] = code
        self.fate_time[i] = now
        self.fate_at[i] = place
