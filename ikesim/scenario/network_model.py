"""``nats:`` and ``routers:`` in a scenario: forwarding nodes without an IKE daemon.

::

    nats:
      home:
        public: 203.0.113.7            # the NAT's own (outside) address
        inside: [client]               # nodes behind it (their addresses are translated)
        type: endpoint_independent     # address_dependent | symmetric
        idle_timeout: 2min             # a mapping unused this long is forgotten
        rebind: [1h, 3h]               # every mapping gets a new public port at these times
        rebind_every: 6h               # ... and/or at random, exponential intervals of this mean
        reboot: [5h]                   # every mapping is forgotten
        drop_udp: [500]                # a firewall on the NAT
    routers:
      isp: {drop_udp: [4500]}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt, field_validator

from ikesim.scenario.base import Duration, IpAddress, PositiveDuration, StrictModel

__all__ = ["NatModel", "RouterModel"]


def _ports(v: list[int]) -> list[int]:
    for p in v:
        if not 0 < p < 65536:
            raise ValueError(f"UDP port {p} is outside 1..65535")
    return v


class RouterModel(StrictModel):
    """A forwarding node; with ``drop_udp`` a firewall dropping UDP to or from those ports."""

    addresses: list[IpAddress] = Field(default_factory=list)
    drop_udp: list[StrictInt] = Field(default_factory=list)

    _check_ports = field_validator("drop_udp")(_ports)


class NatModel(StrictModel):
    """A NAT box in front of the ``inside`` nodes (RFC 4787 mapping behaviours)."""

    public: IpAddress
    inside: list[str] = Field(min_length=1)
    type: Literal["endpoint_independent", "address_dependent", "symmetric"] = "endpoint_independent"
    idle_timeout: PositiveDuration = 120.0
    rebind: list[Duration] = Field(default_factory=list)
    rebind_every: PositiveDuration | None = None
    reboot: list[Duration] = Field(default_factory=list)
    drop_udp: list[StrictInt] = Field(default_factory=list)

    _check_ports = field_validator("drop_udp")(_ports)
