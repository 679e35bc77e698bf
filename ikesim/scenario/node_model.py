"""A host of a scenario (``nodes:``): its addresses and node-wide settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, StrictInt, field_validator

from ikesim.scenario.base import Count, Duration, IpAddress, PositiveDuration, StrictModel

__all__ = ["CpuModelSpec", "NodeModel", "CookieThreshold"]

CookieThreshold = Count | Literal["always"] | None
"""A COOKIE threshold: a count (0 = off, as in strongswan.conf), ``always`` or null (off)."""


class CpuModelSpec(StrictModel):
    """A node's CPU (``ikesim.sim.cpu``): cores, per-operation costs (default: the shipped table) and a per-job base."""

    cores: StrictInt = Field(ge=1, le=1024)
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
    cookie_threshold: CookieThreshold = 30
    """Half-open IKE_SAs (all sources) from which IKE_SA_INIT must carry a COOKIE (RFC 7296 §2.6).
    0 or null = never (as in strongswan.conf); ``always`` = every IKE_SA_INIT. strongSwan ``charon.cookie_threshold``: 30."""
    cookie_threshold_ip: CookieThreshold = 3
    """The same, counting one source IP's half-open IKE_SAs; 0 or null = never, ``always`` = every IKE_SA_INIT.
    strongSwan ``charon.cookie_threshold_ip``: 3."""
    block_threshold: Count | None = 5
    """Half-open IKE_SAs from one source IP from which its IKE_SA_INIT requests are dropped; 0 or null = never.
    strongSwan ``charon.block_threshold``: 5."""
    init_limit_half_open: Count | None = None
    """Half-open IKE_SAs in all from which every IKE_SA_INIT is dropped; 0 or null = no limit (strongSwan's default, 0)."""
    half_open_timeout: PositiveDuration = 30.0
    """How long a responder keeps a half-open IKE_SA (more than 0 s). strongSwan ``charon.half_open_timeout``: 30s."""
    cpu: CpuModelSpec | None = None
    """None: the node's work takes no time. Else it queues for ``cores`` (``ikesim.sim.cpu``)."""

    def daemon_threshold(self, key: str) -> int | None:
        """Threshold *key* as ``DaemonConfig`` counts it: strongSwan's 0 (off) is None, ``always`` is 0 (every request)."""
        value = getattr(self, key)
        if value == "always":
            return 0
        return value or None
