"""``fleet:``: N client tunnels to one gateway, expanded into nodes, links and connections.

A fleet writes in six lines what would otherwise be N nodes, N links and N
connections listed by hand (``benchmarks/bench_tunnels.py`` builds the same
shape in code)::

    fleet:
      clients: 1000                  # nodes c0000 .. c0999 (prefix + index, zero-padded)
      client_subnet: 10.1.0.0/16     # client i gets the i-th host address (no network/broadcast)
      gateway: gw                    # generated at gateway_address, or a node listed under nodes
      gateway_address: 10.255.255.254
      link: {delay: 25ms}            # one link per client to the gateway
      start: {spread: 60s}           # or {every: 50ms}; omitted: everyone at 0 s
      connection:                    # a connection without initiator, responder and start
        ids: {initiator: "{name}@sim.test"}
        child: {rekey_time: 1h, rekey_fraction: {initiator: 0.7, responder: 0.8}}
      traffic: {rate: 1, direction: both}   # a flow without connection: every client's connection gets it

Client *i* is node ``<client_prefix><i>``; its connection has the same name,
is initiated by the client and answered by the gateway, so the gateway carries
one connection per client. Start times are drawn from ``Rng(seed, "fleet-starts")``
in client order, so they follow the (possibly overridden) seed and nothing else.

Multi-homed clients (``ikesim.sim.mobility``) list ``interfaces`` instead of ``client_subnet`` and ``link``:
client *i* gets the *i*-th host address of each interface's subnet, and every client moves as ``mobility``
says (``random_dwell`` draws each client's dwell times from its own stream)::

    fleet:
      clients: 100
      interfaces:
        wlan: {subnet: 10.1.0.0/16, priority: 1, link: {delay: 5ms}, nat: {public_subnet: 100.64.0.0/16}}
        lte:  {subnet: 10.2.0.0/16, priority: 2, link: {to: carrier, delay: 40ms}, up: false}
      mobility: {random_dwell: {mean: 5min, interfaces: [wlan, lte]}}

An interface's link goes to the gateway, or to the listed node, router or NAT named by ``to``; with ``nat`` the
interface sits behind NAT boxes of its own (``<prefix><interface>-nat<j>``, as ``fleet.nat`` makes them), which
that link joins instead.

The model is validated once; ``ikesim.scenario.fleet_expand.expand_fleet`` copies the validated connection
template per client without validating 1,000 copies again.
"""

from __future__ import annotations

import ipaddress
import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StrictInt, ValidationError, ValidationInfo, field_validator, model_validator

from ikesim.rng import Rng
from ikesim.scenario.base import Count, Duration, PositiveDuration, Ratio, StrictModel, check_ip_address, check_subnet
from ikesim.scenario.connection_model import ConnectionBody, ConnectionModel, IdsModel
from ikesim.scenario.link_model import PathModel
from ikesim.scenario.node_model import MobilityModel, NodeModel, check_interface_names
from ikesim.scenario.traffic_model import TrafficModel

__all__ = [
    "FleetLinkModel", "FleetStartModel", "FleetIdsModel", "FleetConnectionModel", "FleetModel", "FleetField",
    "DelayDist", "RatioDist", "FleetVaryModel", "FleetRebindingModel", "FleetNatModel",
    "FleetInterfaceLinkModel", "FleetInterfaceModel",
    "DEFAULT_GATEWAY_ADDRESS", "MAX_REBINDS", "client_names", "client_addresses", "start_times", "host_range", "gateway_ip",
    "client_subnets", "interface_addresses", "interface_nat_name", "client_number",
]

MAX_REBINDS = 1_000_000
"""The most random rebinds one NAT may expect in a run (duration / mean interval): more is a typo, and would take long to schedule."""

DEFAULT_GATEWAY_ADDRESS = "10.255.255.254"
"""The generated gateway's address when ``gateway_address`` is not given."""

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class FleetLinkModel(PathModel):
    """The link between each client (or its NAT) and the gateway: every key of a link but ``between`` and ``cost``."""


class DelayDist(StrictModel):
    """A per-client draw: ``uniform`` in [low, high), ``normal`` (mean, sd; clipped at 0) or ``exponential`` (mean)."""

    dist: Literal["uniform", "normal", "exponential"]
    low: Duration = 0.0
    high: Duration = 0.0
    mean: Duration = 0.0
    sd: Duration = 0.0

    @model_validator(mode="after")
    def _params(self) -> DelayDist:
        if self.dist == "uniform" and self.high < self.low:
            raise ValueError("uniform needs high >= low")
        if self.dist in ("normal", "exponential") and self.mean <= 0:
            raise ValueError(f"{self.dist} needs a mean > 0")
        return self

    def draw(self, rng: Rng) -> float:
        """One value (seconds, or a ratio for loss) drawn from *rng*."""
        if self.dist == "uniform":
            return rng.uniform(self.low, self.high)
        if self.dist == "exponential":
            return -self.mean * math.log(1.0 - rng.random())
        u1, u2 = rng.random(), rng.random()  # Box-Muller
        return max(0.0, self.mean + self.sd * math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2 * math.pi * u2))


class RatioDist(DelayDist):
    """A per-client loss ratio draw (values are ratios such as ``1%``)."""

    low: Ratio = 0.0
    high: Ratio = 0.0
    mean: Ratio = 0.0
    sd: Ratio = 0.0

    def draw(self, rng: Rng) -> float:
        """One ratio, clipped to [0, 1]."""
        return min(1.0, super().draw(rng))


class FleetVaryModel(StrictModel):
    """Link properties drawn once per client (or per NAT) from ``Rng(seed, "fleet-links")``, replacing ``link``'s."""

    delay: DelayDist | None = None
    jitter: DelayDist | None = None
    loss: RatioDist | None = None


class FleetRebindingModel(StrictModel):
    """Which NATs rebind at random: each with probability ``fraction``, at exponential intervals of mean ``every``."""

    fraction: Ratio = 0.0
    every: PositiveDuration = 21600.0


class FleetNatModel(StrictModel):
    """Every client (or every ``share`` clients) behind its own NAT box (``nats:``), one public address each."""

    share: StrictInt = Field(default=1, ge=1)
    public_subnet: str = "100.64.0.0/10"
    type: Literal["endpoint_independent", "address_dependent", "symmetric"] = "endpoint_independent"
    idle_timeout: PositiveDuration = 120.0
    access_delay: Duration = 0.001
    """Delay of the link from a client to its NAT."""
    rebinding: FleetRebindingModel = Field(default_factory=FleetRebindingModel)

    @field_validator("public_subnet")
    @classmethod
    def _subnet(cls, v: str) -> str:
        return check_subnet(v)


class FleetInterfaceLinkModel(PathModel):
    """A client interface's link: every key of a link but ``between`` and ``cost``; ``to`` its other end."""

    to: str | None = None
    """A listed node, router or NAT; default: the gateway."""


class FleetInterfaceModel(StrictModel):
    """One interface of every client: client *i* gets the *i*-th host address of ``subnet``."""

    subnet: str
    priority: Count = 0
    """Lower is preferred (``nodes.<name>.interfaces``)."""
    up: bool = True
    link: FleetInterfaceLinkModel = Field(default_factory=FleetInterfaceLinkModel)
    nat: FleetNatModel | None = None
    """Behind NAT boxes of its own (one per ``share`` clients), which ``link`` joins to its other end."""

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, v: str) -> str:
        return check_subnet(v)


class FleetStartModel(StrictModel):
    """When client *i* initiates: uniform in ``[0, spread)``, or at ``i * every``; both 0: all at 0 s."""

    spread: Duration = 0.0
    every: Duration = 0.0

    @model_validator(mode="after")
    def _one_of(self) -> FleetStartModel:
        if self.spread and self.every:
            raise ValueError("give either spread or every, not both")
        return self


def _placeholders_ok(v: str) -> str:
    try:
        formatted = v.format(i=0, name="c0")
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"{v!r}: only the placeholders {{i}} and {{name}} are known ({exc})") from None
    if formatted == v:
        raise ValueError(f"{v!r} needs {{i}} or {{name}} so that every client has its own identity")
    return v


class FleetIdsModel(IdsModel):
    """Identities: the client's may use ``{i}`` (its index) and ``{name}`` (its node name)."""

    initiator: str = "{name}@sim.test"
    responder: str = "gw.sim.test"

    @field_validator("initiator")
    @classmethod
    def _per_client(cls, v: str) -> str:
        return _placeholders_ok(v)


class FleetConnectionModel(ConnectionBody):
    """Every client's connection: a ``ConnectionModel`` without initiator, responder and start."""

    ids: FleetIdsModel = Field(default_factory=FleetIdsModel)

    @model_validator(mode="after")
    def _valid_connection(self) -> FleetConnectionModel:
        self.template("client", "gateway")
        return self

    def template(self, initiator: str, responder: str) -> ConnectionModel:
        """The validated ``ConnectionModel`` every client's connection is copied from."""
        data: dict[str, Any] = {k: getattr(self, k) for k in self.model_fields_set if k != "ids"}
        try:
            return ConnectionModel.model_validate({**data, "initiator": initiator, "responder": responder})
        except ValidationError as exc:
            raise ValueError("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())) from None


class FleetModel(StrictModel):
    """``clients`` client nodes, each with its own link and connection to one gateway."""

    clients: StrictInt = Field(ge=1, le=1_000_000)
    client_prefix: str = Field(default="c", pattern=r"^[A-Za-z0-9_.-]+$")
    interfaces: dict[str, FleetInterfaceModel] | None = None
    """Multi-homed clients: their interfaces by name (instead of ``client_subnet`` and ``link``)."""
    client_subnet: str = Field(default="10.1.0.0/16", validate_default=True)
    gateway: str = Field(default="gw", pattern=r"^[A-Za-z0-9_.-]+$")
    gateway_address: str | None = None
    """Default: the gateway node's first address if it is listed under ``nodes``, else 10.255.255.254."""
    link: FleetLinkModel = Field(default_factory=FleetLinkModel)
    vary: FleetVaryModel | None = None
    nat: FleetNatModel | None = None
    start: FleetStartModel = Field(default_factory=FleetStartModel)
    connection: FleetConnectionModel = Field(default_factory=FleetConnectionModel)
    traffic: TrafficModel | None = None
    """One flow (``ikesim.scenario.traffic_model``, without ``connection``) that every client's connection gets."""
    mobility: MobilityModel | None = None
    """How every client's interfaces go up and down (``nodes.<name>.mobility``; needs ``interfaces``)."""

    _names = field_validator("interfaces")(check_interface_names)

    @model_validator(mode="after")
    def _interfaces_fit(self) -> FleetModel:
        if self.interfaces is None:
            if self.mobility is not None:
                raise ValueError("mobility moves between interfaces: give the fleet interfaces")
            return self
        clash = [k for k in ("client_subnet", "link", "vary", "nat") if k in self.model_fields_set]
        if clash:
            raise ValueError(f"with interfaces, each interface has its own subnet, link and nat: {', '.join(clash)} "
                             "cannot be given")
        nets: list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]] = []
        for name, f in self.interfaces.items():
            _, count = host_range(ipaddress.ip_network(f.subnet))
            if count < self.clients:
                raise ValueError(f"interfaces.{name}.subnet {f.subnet} has {count} client addresses, fewer than clients "
                                 f"({self.clients})")
            nets.append((f"interfaces.{name}.subnet", ipaddress.ip_network(f.subnet)))
            if f.nat is not None:
                nats = -(-self.clients // f.nat.share)
                _, count = host_range(ipaddress.ip_network(f.nat.public_subnet))
                if count < nats:
                    raise ValueError(f"interfaces.{name}.nat.public_subnet {f.nat.public_subnet} has {count} addresses, "
                                     f"fewer than the {nats} NATs")
                nets.append((f"interfaces.{name}.nat.public_subnet", ipaddress.ip_network(f.nat.public_subnet)))
        for i, (a, net_a) in enumerate(nets):
            for b, net_b in nets[i + 1:]:
                if net_a.overlaps(net_b):
                    raise ValueError(f"{a} {net_a} overlaps {b} {net_b}")
        return self

    @field_validator("traffic")
    @classmethod
    def _traffic_for_all(cls, v: TrafficModel | None) -> TrafficModel | None:
        if v is not None and v.connection is not None:
            raise ValueError("fleet.traffic names no connection: every client's connection gets the flow")
        return v

    @field_validator("client_subnet")
    @classmethod
    def _subnet_fits(cls, v: str, info: ValidationInfo) -> str:
        net = ipaddress.ip_network(check_subnet(v))
        clients = info.data.get("clients")
        _, count = host_range(net)
        if clients is not None and count < clients and not info.data.get("interfaces"):  # unused with interfaces
            raise ValueError(f"{v} has {count} client addresses, fewer than clients ({clients})")
        return v

    @model_validator(mode="after")
    def _nats_fit(self) -> FleetModel:
        if self.nat is not None:
            nats = -(-self.clients // self.nat.share)
            _, count = host_range(ipaddress.ip_network(self.nat.public_subnet))
            if count < nats:
                raise ValueError(f"nat.public_subnet {self.nat.public_subnet} has {count} addresses, fewer than the {nats} NATs")
        return self

    @field_validator("gateway")
    @classmethod
    def _not_a_client(cls, v: str, info: ValidationInfo) -> str:
        clients, prefix = info.data.get("clients"), info.data.get("client_prefix")
        if clients is not None and prefix is not None and client_number(v, prefix, clients) is not None:
            raise ValueError(f"{v!r} is also the name of a client")
        return v

    @field_validator("gateway_address")
    @classmethod
    def _address(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        ip = ipaddress.ip_address(check_ip_address(v))
        clients, subnet, ifaces = info.data.get("clients"), info.data.get("client_subnet"), info.data.get("interfaces")
        subnets = [f.subnet for f in ifaces.values()] if ifaces else [subnet] if subnet is not None else []
        for net in subnets:
            first, _ = host_range(ipaddress.ip_network(net))
            if clients is not None and ip.version == first.version and 0 <= int(ip) - int(first) < clients:
                raise ValueError(f"{v} is one of the client addresses ({first} .. {first + (clients - 1)})")
        return v


def host_range(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[_Address, int]:
    """First usable host and how many: IPv4 without network and broadcast (but /31, /32 whole), IPv6 without the network address."""
    n = net.num_addresses
    if net.version == 4 and n > 2:
        return net.network_address + 1, n - 2
    if net.version == 6 and n > 1:
        return net.network_address + 1, n - 1
    return net.network_address, n


def client_names(fleet: FleetModel) -> list[str]:
    """Node (and connection) names in client order: prefix + index padded to the digits of ``clients`` (c0000 .. c0999 for 1,000)."""
    w = len(str(fleet.clients))
    return [f"{fleet.client_prefix}{i:0{w}d}" for i in range(fleet.clients)]


def client_number(name: str, prefix: str, clients: int) -> int | None:
    """The index of the client called *name*, or None if no client is."""
    digits = name[len(prefix):] if name.startswith(prefix) else ""
    if digits.isdigit() and len(digits) == len(str(clients)) and int(digits) < clients:
        return int(digits)
    return None


def client_addresses(fleet: FleetModel) -> list[str]:
    """Client addresses in client order: the subnet's host addresses from the first one."""
    first, _ = host_range(ipaddress.ip_network(fleet.client_subnet))
    return [str(first + i) for i in range(fleet.clients)]


def client_subnets(fleet: FleetModel) -> list[str]:
    """The subnets the clients' addresses come from: ``client_subnet``, or each interface's ``subnet``."""
    return [f.subnet for f in fleet.interfaces.values()] if fleet.interfaces is not None else [fleet.client_subnet]


def interface_addresses(fleet: FleetModel, name: str) -> list[str]:
    """The addresses of the clients' interface *name*, in client order: its subnet's host addresses from the first."""
    assert fleet.interfaces is not None
    first, _ = host_range(ipaddress.ip_network(fleet.interfaces[name].subnet))
    return [str(first + i) for i in range(fleet.clients)]


def interface_nat_name(fleet: FleetModel, name: str, j: int) -> str:
    """The name of the *j*-th NAT box of the clients' interface *name*: ``<prefix><name>-nat<j>`` (j zero-padded)."""
    nat = fleet.interfaces[name].nat if fleet.interfaces is not None else None
    assert nat is not None
    return f"{fleet.client_prefix}{name}-nat{j:0{len(str(-(-fleet.clients // nat.share)))}d}"


def _client_index(fleet: FleetModel, ip: _Address) -> int | None:
    """Which client owns *ip*, or None (O(1) per subnet: no list of addresses)."""
    for subnet in client_subnets(fleet):
        first, _ = host_range(ipaddress.ip_network(subnet))
        if ip.version != first.version:
            continue
        i = int(ip) - int(first)
        if 0 <= i < fleet.clients:
            return i
    return None


def start_times(fleet: FleetModel, seed: int) -> list[float]:
    """When each client initiates, in client order, from ``Rng(seed, "fleet-starts")`` (seconds)."""
    s = fleet.start
    if s.every:
        return [i * s.every for i in range(fleet.clients)]
    if not s.spread:
        return [0.0] * fleet.clients
    rng = Rng(seed, "fleet-starts")
    return [rng.uniform(0.0, s.spread) for _ in range(fleet.clients)]


def _last_start(fleet: FleetModel) -> float:
    s = fleet.start
    return (fleet.clients - 1) * s.every if s.every else s.spread


def gateway_ip(fleet: FleetModel, nodes: dict[str, NodeModel]) -> str:
    """The gateway's address: ``gateway_address``, else the listed gateway node's first address, else the default."""
    if fleet.gateway_address is not None:
        return fleet.gateway_address
    gw = nodes.get(fleet.gateway)
    return gw.addresses[0] if gw is not None else DEFAULT_GATEWAY_ADDRESS


def _check_in_scenario(fleet: FleetModel | None, info: ValidationInfo) -> FleetModel | None:
    """Scenario-level rules: something to simulate; fleet names and addresses apart from the listed ones."""
    data = info.data
    if fleet is None:
        missing = [k for k in ("nodes", "connections") if k in data and not data[k]]
        if missing:
            raise ValueError(f"a scenario needs a fleet, or at least one entry under {' and '.join(missing)}")
        return fleet
    nodes: dict[str, NodeModel] = data.get("nodes") or {}
    connections: dict[str, ConnectionModel] = data.get("connections") or {}
    errors: list[str] = []
    for key, names in (("nodes", nodes), ("connections", connections)):
        errors += [f"{key}.{n} is also the name of a fleet client (client_prefix {fleet.client_prefix!r}, {fleet.clients} clients)"
                   for n in names if client_number(n, fleet.client_prefix, fleet.clients) is not None]
    gw_node = nodes.get(fleet.gateway)
    gw_ip = gateway_ip(fleet, nodes)
    if gw_node is not None and gw_ip not in gw_node.addresses:
        errors.append(f"gateway_address {gw_ip} is not an address of nodes.{fleet.gateway}")
    if gw_node is None and _client_index(fleet, ipaddress.ip_address(gw_ip)) is not None:
        errors.append(f"the default gateway_address {gw_ip} is a client address: give another gateway_address")
    for n, node in nodes.items():
        for k, ip in enumerate(node.addresses):
            i = _client_index(fleet, ipaddress.ip_address(ip))
            if i is not None:
                errors.append(f"nodes.{n}.addresses[{k}] {ip} is the address of fleet client number {i}")
            elif gw_node is None and n != fleet.gateway and ip == gw_ip:
                errors.append(f"nodes.{n}.addresses[{k}] {ip} is the fleet gateway's address")
    duration = data.get("duration")
    if duration is not None and _last_start(fleet) > duration:
        errors.append(f"start: the last client starts at {_last_start(fleet):g}s, after the end of the run ({duration:g}s)")
    nat = fleet.nat
    if duration is not None and nat is not None and nat.rebinding.fraction > 0 and duration / nat.rebinding.every > MAX_REBINDS:
        errors.append(f"nat.rebinding.every: {nat.rebinding.every:g}s means about {duration / nat.rebinding.every:.3g} rebinds per NAT "
                      f"in the run; at most {MAX_REBINDS:,}")
    if errors:
        raise ValueError("; ".join(errors))
    return fleet


FleetField = Annotated[FleetModel | None, AfterValidator(_check_in_scenario)]
"""The type of ``ScenarioModel.fleet``: declared after nodes, connections and duration, which it checks against."""
