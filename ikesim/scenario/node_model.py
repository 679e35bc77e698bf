"""A host of a scenario (``nodes:``): its addresses and node-wide settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from ikesim.scenario.base import Duration, IpAddress, StrictModel

__all__ = ["CpuModelSpec", "NodeModel"]


class CpuModelSpec(StrictModel):
    """A node's CPU (``ikesim.sim.cpu``): cores, per-operation costs (default: the shipped table) and a per-job base."""

    cores: int = Field(ge=1, le=1024)
    costs: str | dict[str, Duration] | None = None
    """A table written by ``ikesim calibrate --out FILE`` (path relative to the working directory), or
    operation name -> duration overriding the shipped table's entries (``ke_keygen:31: 60us``)."""
    base: Duration = 20e-6

    @field_validator("costs")
    @classmethod
    def _known_ops(cls, v: str | dict[str, float] | None) -> str | dict[str, float] | None:
        from ikesim.sim.cpu import default_costs

        if isinstance(v, dict):
            known = default_costs()
            unknown = sorted(set(v) - set(known))
            if unknown:
                raise ValueError(f"unknown operation(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        elif isinstance(v, str) and not Path(v).is_file():
            raise ValueError(f"no calibration table at {v!r} (write one with ikesim calibrate --out FILE)")
        return v

    def build(self) -> Any:
        """The ``CpuModel`` (a ConfigError-worthy ValueError if the table cannot be read)."""
        from ikesim.sim.cpu import CpuModel, default_costs, load_costs

        costs = default_costs()
        if isinstance(self.costs, str):
            try:
                costs = load_costs(self.costs)
            except OSError as exc:
                raise ValueError(f"cpu.costs: cannot read {self.costs}: {exc.strerror}") from None
        elif isinstance(self.costs, dict):
            costs.update(self.costs)
        return CpuModel(self.cores, costs, self.base)


class NodeModel(StrictModel):
    """A host: its addresses and node-wide settings."""

    addresses: list[IpAddress] = Field(min_length=1)
    cookie_threshold: int | None = Field(30, ge=0)
    """Half-open IKE_SAs (all sources) from which IKE_SA_INIT must carry a COOKIE (RFC 7296 §2.6); 0 = always,
    null = never. strongSwan ``charon.cookie_threshold``: 30."""
    cookie_threshold_ip: int | None = Field(3, ge=0)
    """The same, counting one source IP's half-open IKE_SAs; null = never. strongSwan ``charon.cookie_threshold_ip``: 3."""
    block_threshold: int | None = Field(5, ge=1)
    """Half-open IKE_SAs from one source IP from which its IKE_SA_INIT requests are dropped; null = never.
    strongSwan ``charon.block_threshold``: 5."""
    init_limit_half_open: int | None = Field(None, ge=1)
    """Half-open IKE_SAs in all from which every IKE_SA_INIT is dropped; null = no limit (strongSwan's 0, off)."""
    half_open_timeout: Duration = 30.0
    """How long a responder keeps a half-open IKE_SA. strongSwan ``charon.half_open_timeout``: 30s."""
    cpu: CpuModelSpec | None = None
    """None: the node's work takes no time. Else it queues for ``cores`` (``ikesim.sim.cpu``)."""
