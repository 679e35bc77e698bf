"""The ``faults:`` list of a scenario: scripted drops, delays, holds, duplicates and reorders.

Each entry becomes an ``ikesim.sim.faults.FaultRule``::

    faults:
      - {name: late-answer, from: client, to: gateway, exchange: CREATE_CHILD_SA, message: response,
         action: hold, until: delete-seen}
      - {name: delete-seen, from: client, carries: [DELETE_CHILD], action: pass}
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, StrictInt, field_validator, model_validator

from ikesim.scenario.base import StrictModel
from ikesim.scenario.durations import parse_duration
from ikesim.sim.faults import FaultRule
from ikesim.sim.inspect import CARRY_NAMES
from ikesim.wire.iana import ExchangeType

__all__ = ["FaultModel", "fault_rules"]

class FaultModel(StrictModel):
    """One fault rule (every criterion given must hold; occurrence 1 = the first pick)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)

    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    """Needed when a hold waits for this rule (``until``); default ``fault<index>``."""
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    exchange: Literal["IKE_SA_INIT", "IKE_AUTH", "CREATE_CHILD_SA", "INFORMATIONAL"] | None = None
    message: Literal["request", "response"] | None = None
    message_id: StrictInt | None = Field(default=None, ge=0, le=0xFFFFFFFF)
    carries: list[str] = Field(default_factory=list)
    after: float | None = None
    before: float | None = None
    occurrence: StrictInt | Literal["first", "every"] = 1
    action: Literal["drop", "delay", "hold", "duplicate", "reorder", "pass"]
    delay: float | None = None
    until: str | None = None
    copies: StrictInt | None = Field(default=None, ge=1, le=100)

    @field_validator("after", "before", "delay", mode="before")
    @classmethod
    def _durations(cls, v: object) -> object:
        return None if v is None else parse_duration(v)

    @field_validator("carries", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @field_validator("carries")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = [c for c in v if c not in CARRY_NAMES]
        if unknown:
            raise ValueError(f"unknown payload or notify {', '.join(map(repr, unknown))} (for example REKEY_SA, "
                             "DELETE, DELETE_CHILD, DELETE_IKE, TEMPORARY_FAILURE, KE, NONCE, TSi)")
        return v

    @field_validator("occurrence")
    @classmethod
    def _positive(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 1:
            raise ValueError("occurrence counts from 1 (or 'first', 'every')")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> FaultModel:
        a = self.action
        if a == "hold" and self.until is None and not self.delay:
            raise ValueError("hold needs until (the fault whose message must be delivered first) or a delay")
        if a == "delay" and not self.delay:
            raise ValueError("delay needs a delay > 0")
        if self.until is not None and a != "hold":
            raise ValueError("until goes with action hold")
        if self.copies is not None and a != "duplicate":
            raise ValueError("copies goes with action duplicate")
        if self.delay is not None and a in ("drop", "pass"):
            raise ValueError(f"action {a} takes no delay")
        if self.after is not None and self.before is not None and self.before <= self.after:
            raise ValueError("before must be later than after")
        return self


def fault_rules(faults: list[FaultModel]) -> list[FaultRule]:
    """The simulation's rules for a scenario's ``faults:`` (unnamed ones are ``fault<index>``)."""
    out = []
    for i, f in enumerate(faults):
        occ = f.occurrence
        out.append(FaultRule(
            name=f.name or f"fault{i}", action=f.action, src=f.from_, dst=f.to,
            exchange=ExchangeType[f.exchange] if f.exchange else None,
            response=None if f.message is None else f.message == "response",
            message_id=f.message_id, carries=frozenset(f.carries), after=f.after, before=f.before,
            occurrence=None if occ == "every" else (1 if occ == "first" else int(occ)),
            delay=f.delay or 0.0, until=f.until, copies=f.copies or 1,
        ))
    return out

