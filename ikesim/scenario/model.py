"""The scenario schema: pydantic models (unknown keys are errors; defaults are strongSwan's).

The parts live in their own modules (``node_model``, ``link_model``, ``connection_model``,
``network_model``, ``faults_model``, ``fleet``, ``expect_model``); this module adds actions and the
whole scenario, and re-exports the parts under their old names.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ikesim.scenario.base import Duration, PositiveDuration, Ratio, Seed, StrictModel
from ikesim.scenario.cluster_model import ClusterModel
from ikesim.scenario.connection_model import (
    EXTRA_CHILD_DELAY,
    AuthModel,
    ChildModel,
    ConnectionModel,
    IdsModel,
    IkeModel,
    RetransmitModel,
    SideValue,
)
from ikesim.scenario.eap_model import AaaModel
from ikesim.scenario.expect_model import ExpectModel
from ikesim.scenario.faults_model import FaultModel
from ikesim.scenario.fleet import FleetField
from ikesim.scenario.link_model import DelayDistModel, DownModel, GilbertModel, LinkModel, PathModel
from ikesim.scenario.messages import quoted
from ikesim.scenario.network_model import NatModel, RouterModel
from ikesim.scenario.node_model import CpuModelSpec, NodeModel, Processing
from ikesim.scenario.traffic_model import DataPlaneModel, TrafficModel

__all__ = [
    "Duration", "Ratio", "NodeModel", "CpuModelSpec", "DelayDistModel", "GilbertModel", "DownModel", "PathModel", "LinkModel",
    "RetransmitModel", "SideValue", "IkeModel", "ChildModel", "AuthModel", "EXTRA_CHILD_DELAY", "IdsModel", "ConnectionModel",
    "ActionModel", "ScenarioModel", "NAME_MAX",
]

NAME_MAX = 100
"""The longest scenario name (it names a directory; file systems allow 255 bytes, variants append ``[variant]``)."""
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_CHILD_ACTIONS = ("rekey_child", "delete_child", "expire_child", "forget_child")
"""Actions on one CHILD_SA (``ikesim.sim.actions.CHILD_ACTIONS``)."""
_IKE_ACTIONS = ("rekey_ike", "delete_ike", "dpd", "create_child", "expire_ike", "forget_ike")
"""Actions on one IKE_SA (``ikesim.sim.actions.IKE_ACTIONS``)."""


class ActionModel(StrictModel):
    """A scripted command at a given time; ``pin_*`` queue a value (hex, a prefix) for the node's next draw."""

    at: Duration
    node: str
    action: Literal["initiate", "rekey_child", "rekey_ike", "create_child", "delete_child", "delete_ike", "dpd",
                    "pin_nonce", "pin_child_spi", "pin_ike_spi", "restart", "expire_child", "expire_ike", "forget_child",
                    "forget_ike"]
    """``restart``: the node's daemon restarts with no SAs (``ikesim.sim.restart``); takes no connection.
    ``expire_*``: the SA's hard lifetime is reached now (RFC 7296 §2.8); ``forget_*``: the node drops the SA silently,
    no Delete (a crashed or buggy peer, ``ikesim.ike.forget``)."""
    connection: str | None = None
    """Required except for pin actions (a node's random stream serves all its connections)."""
    child: str | None = None
    value: str | None = None
    """Pin actions: hex bytes the next nonce / CHILD SPI / IKE SPI begins with (e.g. ``"00"``)."""
    spi: str | int | None = None
    """Act on the SA with this SPI (hex, ``0x`` optional; a CHILD_SA's inbound or outbound SPI on this node, 4 bytes;
    an IKE_SA's spi_i or spi_r, 8 bytes), even a rekeyed one still lingering (``ikesim.sim.actions``)."""
    ordinal: int | None = Field(default=None, ge=1, strict=True)
    """Act on the n-th SA the node holds for the connection (and ``child``), in installation order (1 = oldest)."""

    @field_validator("value")
    @classmethod
    def _hex(cls, v: str | None) -> str | None:
        if v is None:
            return v
        text = v.strip().lower().removeprefix("0x")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ValueError(f"value {v!r} is not hex bytes (e.g. \"00\" or \"0x8000\")") from None
        if not 1 <= len(raw) <= 256:
            raise ValueError(f"value {v!r}: give 1 to 256 bytes")
        return text

    @model_validator(mode="after")
    def _shape(self) -> ActionModel:
        pin = self.action.startswith("pin_")
        if pin and self.value is None:
            raise ValueError(f"{self.action} needs a value (hex, e.g. \"00\")")
        if not pin and self.value is not None:
            raise ValueError(f"{self.action} takes no value")
        if not pin and self.connection is None and self.action != "restart":
            raise ValueError(f"{self.action} needs a connection")
        if pin and self.child is not None:
            raise ValueError(f"{self.action} takes no child")
        if self.spi is not None or self.ordinal is not None:
            self._check_selector()
        return self

    def _check_selector(self) -> None:
        """``spi`` or ``ordinal``, on an action that acts on one SA; the SPI as hex of that SA kind's size (§3.3.1)."""
        if self.spi is not None and self.ordinal is not None:
            raise ValueError("give spi or ordinal, not both")
        size = 4 if self.action in _CHILD_ACTIONS else 8 if self.action in _IKE_ACTIONS else 0
        if not size:
            raise ValueError(f"{self.action} acts on no single SA: it takes no spi or ordinal")
        if self.spi is None:
            return
        spi = self.spi
        if isinstance(spi, int) and not isinstance(spi, bool):  # YAML reads 0xc1c1c1c1 as a number
            text = f"{spi:0{2 * size}x}" if 0 <= spi < 256 ** size else ""
        else:
            text = str(spi).strip().lower().removeprefix("0x")
        what = "a CHILD_SA" if size == 4 else "an IKE_SA"
        if len(text) != 2 * size or any(c not in "0123456789abcdef" for c in text):
            shown = f"0x{spi:x}" if isinstance(spi, int) else repr(spi)
            raise ValueError(f"spi {shown}: {what} SPI is {size} bytes of hex (e.g. \"0x{'c1' * size}\")")
        object.__setattr__(self, "spi", text)

    @property
    def spi_bytes(self) -> bytes:
        """The ``spi`` selector as bytes (empty without one)."""
        return bytes.fromhex(str(self.spi)) if self.spi is not None else b""

    @property
    def value_bytes(self) -> bytes:
        """The pinned value as bytes (empty for other actions)."""
        return bytes.fromhex(self.value) if self.value is not None else b""


class ScenarioModel(StrictModel):
    """A whole scenario file."""

    name: str
    """Names the results directory (``results/<name>``): a safe file name."""
    seed: Seed = 1
    duration: PositiveDuration
    warmup: Duration = 0.0
    """The first part of the run that the summary's CPU figures (peak, mean, queue, waits) leave out."""
    trace: Literal["full", "exchanges", "summary"] = "full"
    """What the run records (``ikesim.metrics.trace``): ``full`` (every table, capture, key tables),
    ``exchanges`` (exchanges and SAs tables and the summary) or ``summary`` (the summary only)."""
    nodes: dict[str, NodeModel] = Field(default_factory=dict)
    processing: Processing = "none"
    """Every node's per-message processing time unless the node sets its own (``ikesim.sim.processing``):
    ``none`` (inputs handled the instant they arrive; race scenarios script exact times), ``strongswan``
    (0.2 to 1.0 ms per datagram and timer wake-up, so that simultaneous timers race by noise, not by the event
    queue's order) or ``{low: ..., high: ...}``."""
    links: list[LinkModel] = Field(default_factory=list)
    connections: dict[str, ConnectionModel] = Field(default_factory=dict)
    actions: list[ActionModel] = Field(default_factory=list)
    nats: dict[str, NatModel] = Field(default_factory=dict)
    """NAT boxes (``ikesim.scenario.network_model``)."""
    routers: dict[str, RouterModel] = Field(default_factory=dict)
    """Forwarding nodes, optionally UDP firewalls."""
    clusters: dict[str, ClusterModel] = Field(default_factory=dict)
    """HA gateway clusters: each the node of that name, run by its members (``ikesim.scenario.cluster_model``)."""
    faults: list[FaultModel] = Field(default_factory=list)
    """Scripted faults on datagrams (``ikesim.scenario.faults_model``)."""
    fleet: FleetField = Field(default=None, validate_default=True)
    """N client tunnels to one gateway (``ikesim.scenario.fleet``); without it, nodes and connections are required."""
    traffic: list[TrafficModel] = Field(default_factory=list)
    """User packet flows through CHILD_SAs (``ikesim.scenario.traffic_model``)."""
    data_plane: DataPlaneModel = Field(default_factory=DataPlaneModel)
    """How the traffic is simulated (per packet or from the fleet timeline) and how much of it is captured."""
    aaa: dict[str, AaaModel] = Field(default_factory=dict)
    """AAA (RADIUS) servers EAP gateways wait for (``auth.eap.aaa``; ``ikesim.scenario.eap_model``)."""
    description: str = ""
    expect: ExpectModel | None = None
    """What a run must produce (``ikesim.scenario.expect_model``), checked by ``ikesim check`` and the pytest plugin."""

    @field_validator("name")
    @classmethod
    def _safe_file_name(cls, v: str) -> str:
        """The name becomes a directory name: no path, no hidden file, no control characters."""
        if not v:
            raise ValueError("the name must not be empty")
        if "/" in v or "\\" in v:
            raise ValueError(f"name {quoted(v)} contains a path separator: give a plain file name")
        if any(ord(c) < 32 or ord(c) == 127 for c in v):
            raise ValueError(f"name {quoted(v)} contains a control character")
        if v in (".", ".."):
            raise ValueError(f"name {quoted(v)} is not a file name")
        if v.startswith("."):
            raise ValueError(f"name {quoted(v)} starts with a dot (a hidden file)")
        if len(v) > NAME_MAX:
            raise ValueError(f"name is {len(v)} characters long; at most {NAME_MAX}")
        if not _NAME.fullmatch(v):
            raise ValueError(f"name {quoted(v)} may contain only letters, digits, '_', '-' and '.'")
        return v

    @field_validator("warmup")
    @classmethod
    def _warmup_within_run(cls, v: float, info: Any) -> float:
        if "duration" in info.data and v >= info.data["duration"]:
            raise ValueError(f"warmup ({v:g} s) must be shorter than duration ({info.data['duration']:g} s)")
        return v
