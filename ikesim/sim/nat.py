"""NAT boxes and routers: address translation, mapping timeouts, rebinding, reboots, UDP firewalls.

A ``NatBox`` owns one public address. A datagram from a host behind it gets
its source rewritten to ``public:port`` through a mapping (RFC 4787 terms):

- ``endpoint_independent``: one mapping per inside endpoint, any remote may answer;
- ``address_dependent``: one mapping per inside endpoint and remote address;
- ``symmetric``: one per inside endpoint and remote address and port.

A mapping unused for ``idle_timeout`` seconds expires (checked when it is
next needed, so an idle fleet costs nothing). NAT keepalives (RFC 3948
§2.3, one 0xFF octet every ``interval`` seconds to the peer's port 4500)
are not sent as datagrams: a host behind a NAT registers a keepalive
stream when its IKE_SA floats, and the mapping counts as used at the last
keepalive instant. That keeps a 10,000-client day at a few events per
client instead of millions of one-octet datagrams; keepalives are counted
in the summary. Rebinding gives every mapping a new public port at once;
a reboot forgets every mapping. A datagram the NAT cannot translate is
dropped with fate ``nat_no_mapping``; one a firewall rule refuses with
``firewall``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

from ikesim.metrics.recorder import NatEvent
from ikesim.rng import Rng
from ikesim.sim.datagram import SimDatagram
from ikesim.types import Address

__all__ = ["NAT_TYPES", "Mapping", "NatEvent", "NatBox", "Router", "KeepaliveStream", "NatDataHook"]

NAT_TYPES = ("endpoint_independent", "address_dependent", "symmetric")
_PORTS = (1024, 65535)


@dataclass(slots=True)
class Mapping:
    """One NAT binding: inside endpoint -> public port (for one remote, unless endpoint-independent)."""

    inside: Address
    remote: Address | None
    """The remote the mapping is for (address_dependent: port 0; endpoint_independent: None)."""
    port: int
    created: float
    last_used: float
    key: tuple[Address, Address | None] = (Address("0.0.0.0"), None)


@dataclass(slots=True)
class KeepaliveStream:
    """NAT keepalives from one inside endpoint, every *interval* s from *start* until *stop* (RFC 3948 §2.3)."""

    start: float
    interval: float
    stop: float | None = None

    def last_before(self, now: float) -> float | None:
        """The last keepalive instant at or before *now* (None if none yet)."""
        end = now if self.stop is None else min(now, self.stop)
        if end < self.start + self.interval:
            return None
        return self.start + ((end - self.start) // self.interval) * self.interval

    def count(self, until: float) -> int:
        """How many keepalives were sent up to *until*."""
        end = until if self.stop is None else min(until, self.stop)
        return max(0, int((end - self.start) // self.interval))


class NatDataHook(Protocol):
    """Fleet mode's user traffic as a NAT sees it (``ikesim.sim.fleet_traffic``): no datagrams, but their effect.

    Like a keepalive stream, a flow's packets keep a mapping in use at the last packet instant; and the hook
    hears of every mapping change (to know, after the run, which public port led where when).
    """

    def last_used(self, box: NatBox, m: Mapping, now: float) -> float | None:
        """The last instant at or before *now* a user packet left through *m* (None: none did)."""
        ...

    def noted(self, box: NatBox, kind: str, old: str, new: str, at: float) -> None:
        """*box* created, expired, rebound or forgot a mapping (the ``NatEvent`` fields)."""
        ...


@dataclass(slots=True)
class Router:
    """A forwarding node; optionally a firewall dropping UDP to or from some ports."""

    name: str
    drop_udp: frozenset[int] = frozenset()

    def refuses(self, sd: SimDatagram) -> bool:
        """True if a firewall rule drops *sd*."""
        return bool(self.drop_udp) and (sd.dst.port in self.drop_udp or sd.src.port in self.drop_udp)


@dataclass(slots=True)
class NatBox(Router):
    """A NAT with one public address in front of the hosts whose addresses are in *inside*."""

    public: str = ""
    kind: str = "endpoint_independent"
    idle_timeout: float = 120.0
    inside: Collection[str] = ()
    """Inside IP addresses (those of the hosts behind it): a tuple when few (a fleet's home NAT: one), else a frozenset."""
    rng: Rng | None = None
    record: Callable[..., None] | None = None
    """Where NAT events go: a collector's ``record(event, now=, node=)`` (one shared by every box)."""
    keepalive: Callable[[Address], KeepaliveStream | None] | None = None
    """Inside endpoint -> its keepalive stream, if any."""
    mappings: dict[tuple[Address, Address | None], Mapping] = field(default_factory=dict)
    by_port: dict[int, Mapping] = field(default_factory=dict)
    data_hook: NatDataHook | None = None
    """Fleet mode's user traffic (``NatDataHook``); None: user packets pass as datagrams, or there are none."""

    def __post_init__(self) -> None:
        if self.kind not in NAT_TYPES:
            raise ValueError(f"NAT {self.name}: unknown type {self.kind!r} (one of {', '.join(NAT_TYPES)})")

    # ------------------------------------------------------------------ mappings
    def _key(self, inside: Address, remote: Address) -> tuple[Address, Address | None]:
        if self.kind == "endpoint_independent":
            return inside, None
        if self.kind == "address_dependent":
            return inside, Address(remote.ip, 0)
        return inside, remote

    def _last_used(self, m: Mapping, now: float) -> float:
        """When *m* was last used: its own, its keepalive stream's and (fleet mode) user traffic's last instant;
        the traffic is asked only if the others would let the mapping expire."""
        ka = self.keepalive(m.inside) if self.keepalive is not None else None
        t = ka.last_before(now) if ka is not None else None
        last = m.last_used if t is None else max(m.last_used, t)
        if self.data_hook is not None and now - last > self.idle_timeout:  # only needed where it decides
            d = self.data_hook.last_used(self, m, now)
            if d is not None and d > last:
                last = d
        return last

    def _alive(self, m: Mapping, now: float) -> bool:
        last = self._last_used(m, now)
        if now - last <= self.idle_timeout:
            return True
        self._forget(m)
        self._note("expired", now, m.inside, self._ep(m.port), "", at=last + self.idle_timeout)
        return False

    def _forget(self, m: Mapping) -> None:
        if self.mappings.get(m.key) is m:
            del self.mappings[m.key]
        if self.by_port.get(m.port) is m:
            del self.by_port[m.port]

    def _new_port(self) -> int:
        assert self.rng is not None
        lo, hi = _PORTS
        while True:
            port = lo + self.rng.below(hi - lo + 1)
            if port not in self.by_port:
                return port

    def _ep(self, port: int) -> str:
        return str(Address(self.public, port))

    def _note(self, kind: str, now: float, inside: Address | None, old: str, new: str, *, at: float | None = None) -> None:
        if self.record is not None:
            self.record(NatEvent(kind=kind, inside=str(inside) if inside else "", old=old, new=new,
                                 at=now if at is None else at), now=now, node=self.name)
        if self.data_hook is not None:
            self.data_hook.noted(self, kind, old, new, now if at is None else at)

    # ------------------------------------------------------------------ traffic
    def outbound(self, sd: SimDatagram, now: float) -> SimDatagram:
        """Translate the source of a datagram leaving the inside network (creating or refreshing a mapping)."""
        key = self._key(sd.src, sd.dst)
        m = self.mappings.get(key)
        if m is not None and not self._alive(m, now):
            m = None
        if m is None:
            m = Mapping(sd.src, key[1], self._new_port(), now, now, key)
            self.mappings[key] = m
            self.by_port[m.port] = m
            self._note("mapping_created", now, sd.src, "", self._ep(m.port))
        m.last_used = now
        return SimDatagram(sd.id, Address(self.public, m.port), sd.dst, sd.data)

    def inbound(self, sd: SimDatagram, now: float) -> SimDatagram | None:
        """Translate the destination of a datagram to the public address; None if no mapping lets it in."""
        m = self.by_port.get(sd.dst.port)
        if m is None or not self._alive(m, now):
            return None
        if self.kind == "address_dependent" and m.remote is not None and m.remote.ip != sd.src.ip:
            return None
        if self.kind == "symmetric" and m.remote != sd.src:
            return None
        return SimDatagram(sd.id, sd.src, m.inside, sd.data)

    def sweep(self, now: float) -> None:
        """Note every mapping that has expired by *now* (expiry is otherwise noticed when a mapping is next needed)."""
        for m in sorted(self.by_port.values(), key=lambda x: x.port):
            self._alive(m, now)

    def peek_outbound(self, src: Address, dst: Address, now: float) -> int | None:
        """The public port a datagram from *src* to *dst* would leave with now, if a live mapping has it (no side effects)."""
        m = self.mappings.get(self._key(src, dst))
        if m is None or now - self._last_used(m, now) > self.idle_timeout:
            return None
        return m.port

    def resolve(self, port: int, now: float) -> Address | None:
        """The inside endpoint behind ``public:port`` now (no side effects), or None."""
        m = self.by_port.get(port)
        if m is None or now - self._last_used(m, now) > self.idle_timeout:
            return None
        return m.inside

    # ------------------------------------------------------------------ scripted
    def rebind(self, now: float) -> None:
        """Give every live mapping a new public port (the old one is dropped at once)."""
        for m in sorted(self.by_port.values(), key=lambda x: x.port):
            if not self._alive(m, now):
                continue
            old = m.port
            del self.by_port[old]
            m.port = self._new_port()
            self.by_port[m.port] = m
            self._note("rebind", now, m.inside, self._ep(old), self._ep(m.port))

    def reboot(self, now: float) -> None:
        """Forget every mapping."""
        for m in sorted(self.by_port.values(), key=lambda x: x.port):
            self._note("reboot", now, m.inside, self._ep(m.port), "")
        self.mappings.clear()
        self.by_port.clear()
