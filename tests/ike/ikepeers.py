"""Helpers for the sans-IO IKE tests: two daemons and a hand-driven link (aioquic roundtrip)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ikesim.ike import events as ev
from ikesim.ike.config import (
    ChildPolicy,
    Connection,
    Credentials,
    DaemonConfig,
    IkePolicy,
    Lifetime,
)
from ikesim.ike.daemon import IkeDaemon
from ikesim.rng import Rng
from ikesim.types import Address, Datagram

CLIENT = Address("10.0.0.1")
GATEWAY = Address("10.0.0.2")
PSK = b"sim-interop-psk-0123456789"
CLIENT_ID = "client@sim.test"
GATEWAY_ID = "gw@sim.test"


def config(name: str, addr: Address, peer: Address | None, *, local_id: str,
           remote_id: str | None, ike: IkePolicy | None = None,
           children: tuple[ChildPolicy, ...] | None = None,
           credentials: Credentials | None = None,
           cookie_threshold: int | None = None) -> DaemonConfig:
    """One node's DaemonConfig with a single connection named ``vpn``."""
    conn = Connection(
        name="vpn", local_id=local_id, remote_id=remote_id, remote_addr=peer,
        credentials=credentials or Credentials(psk=PSK),
        ike=ike or IkePolicy(), children=children or (ChildPolicy(),))
    return DaemonConfig(name=name, addresses=(addr,), connections=(conn,),
                        cookie_threshold=cookie_threshold)


@dataclass
class Peers:
    """A client and a gateway daemon and the hand-driven link between them."""

    client: IkeDaemon
    gateway: IkeDaemon
    log: dict[str, list[ev.IkeEvent]] = field(default_factory=lambda: {"client": [], "gateway": []})

    def other(self, d: IkeDaemon) -> IkeDaemon:
        """The peer of *d*."""
        return self.gateway if d is self.client else self.client

    def deliver(self, sender: IkeDaemon, now: float,
                mangle: Callable[[Datagram], Datagram | None] | None = None) -> list[Datagram]:
        """Move *sender*'s pending datagrams to its peer at *now*; return them (after mangling)."""
        out = sender.datagrams_to_send(now)
        receiver = self.other(sender)
        delivered = []
        for d in out:
            if mangle is not None:
                d = mangle(d)
                if d is None:
                    continue
            delivered.append(d)
            receiver.receive_datagram(d.data, d.src, d.dst, now)
        return delivered

    def settle(self, now: float, rounds: int = 20) -> None:
        """Exchange datagrams back and forth at *now* until both outboxes are empty."""
        for _ in range(rounds):
            a = self.deliver(self.client, now)
            b = self.deliver(self.gateway, now)
            if not a and not b:
                return
        raise AssertionError("link did not settle")

    def events(self, d: IkeDaemon) -> list[ev.IkeEvent]:
        """Drain *d*'s events (all kept in ``log``); ``IkeSaKeysDerived``, the key-table record, is only in ``log``."""
        out = []
        while (e := d.next_event()) is not None:
            out.append(e)
        self.log["client" if d is self.client else "gateway"].extend(out)
        return [e for e in out if not isinstance(e, ev.IkeSaKeysDerived)]

    def establish(self, now: float = 0.0) -> tuple[bytes, bytes]:
        """Bring up IKE_SA + CHILD_SA; return (client spi_in, gateway spi_in); drain events."""
        self.client.initiate("vpn", now)
        self.settle(now)
        self.events(self.client)
        self.events(self.gateway)
        (c,) = self.client.child_sa_spis()
        (g,) = self.gateway.child_sa_spis()
        return c, g

    def run_timers(self, until: float) -> float:
        """Fire both daemons' timers in time order up to *until*, settling the link each time."""
        now = 0.0
        while True:
            t = [x for x in (self.client.get_timer(), self.gateway.get_timer()) if x is not None]
            if not t or min(t) > until:
                return now
            now = min(t)
            for d in (self.client, self.gateway):
                timer = d.get_timer()
                if timer is not None and timer <= now:
                    d.handle_timer(now)
            self.settle(now)


def names(events: list[ev.IkeEvent]) -> list[str]:
    """Event class names, in order."""
    return [type(e).__name__ for e in events]


def make_peers(*, seed: int = 1, client_ike: IkePolicy | None = None,
               gateway_ike: IkePolicy | None = None,
               client_children: tuple[ChildPolicy, ...] | None = None,
               gateway_children: tuple[ChildPolicy, ...] | None = None,
               client_credentials: Credentials | None = None,
               gateway_credentials: Credentials | None = None,
               cookie_threshold: int | None = None,
               client_id: str = CLIENT_ID, gateway_id: str = GATEWAY_ID,
               client_remote_id: str = GATEWAY_ID) -> Peers:
    """Build the two peers (client 10.0.0.1 initiates to gateway 10.0.0.2)."""
    rng = Rng(seed)
    client = IkeDaemon(config("client", CLIENT, GATEWAY, local_id=client_id,
                              remote_id=client_remote_id, ike=client_ike, children=client_children,
                              credentials=client_credentials),
                       rng=rng.child("client"))
    gateway = IkeDaemon(config("gateway", GATEWAY, None, local_id=gateway_id, remote_id=None,
                               ike=gateway_ike, children=gateway_children,
                               credentials=gateway_credentials,
                               cookie_threshold=cookie_threshold),
                        rng=rng.child("gateway"))
    return Peers(client, gateway)


LONG = Lifetime(rekey_time=100_000.0, life_time=110_000.0, rand_time=0.0)
"""A lifetime that never fires during a test."""
