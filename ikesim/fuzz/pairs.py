"""Daemon pairs for the fuzz harness: an established pair, half-open pairs, and message templates.

A pair is two sans-IO ``IkeDaemon``s (client 10.0.0.1 initiates to gateway 10.0.0.2, PSK) joined by a
hand-driven link, the way tests/ike/ikepeers.py drives them. ``Template``s are the decrypted payloads of
every message of a reference run (IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA for a CHILD_SA and an IKE_SA
rekey, INFORMATIONAL delete and liveness): the raw material the structure mutators work on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy, Lifetime
from ikesim.ike.daemon import IkeDaemon
from ikesim.ike.sa import IkeSa
from ikesim.ike.state import IkeSaState
from ikesim.rng import Rng
from ikesim.types import Address, Datagram
from ikesim.wire.codec import parse_message, unprotect_message
from ikesim.wire.iana import ExchangeType
from ikesim.wire.message import Message
from ikesim.wire.payloads import Payload

__all__ = ["CLIENT", "GATEWAY", "Pair", "Template", "make_pair", "capture_templates"]

CLIENT = Address("10.0.0.1")
GATEWAY = Address("10.0.0.2")
_PSK = b"fuzz-harness-psk-0123456789"
_LONG = Lifetime(rekey_time=1_000_000.0, life_time=1_100_000.0, rand_time=0.0)


@dataclass(frozen=True, slots=True)
class Template:
    """One message of a reference run: its header facts and its (decrypted) payloads."""

    label: str
    exchange: ExchangeType
    response: bool
    payloads: tuple[Payload, ...]


def _config(name: str, addr: Address, peer: Address | None, local_id: str, remote_id: str | None) -> DaemonConfig:
    conn = Connection(name="vpn", local_id=local_id, remote_id=remote_id, remote_addr=peer,
                      credentials=Credentials(psk=_PSK), ike=IkePolicy(lifetime=_LONG),
                      children=(ChildPolicy(lifetime=_LONG),))
    return DaemonConfig(name=name, addresses=(addr,), connections=(conn,))


@dataclass
class Pair:
    """A client and a gateway daemon and the hand-driven link between them."""

    client: IkeDaemon
    gateway: IkeDaemon
    captured: list[tuple[str, Datagram, Message]] = field(default_factory=list)
    capture: bool = False
    cur: bytes = b""
    """The client's local SPI of the IKE_SA the harness is working with."""

    def other(self, d: IkeDaemon) -> IkeDaemon:
        """The peer of *d*."""
        return self.gateway if d is self.client else self.client

    def deliver(self, sender: IkeDaemon, now: float) -> int:
        """Move *sender*'s queued datagrams to its peer; return how many."""
        out = sender.datagrams_to_send(now)
        receiver = self.other(sender)
        for d in out:
            if self.capture:
                self._record(receiver, d)
            receiver.receive_datagram(d.data, d.src, d.dst, now)
        return len(out)

    def _record(self, receiver: IkeDaemon, d: Datagram) -> None:
        msg = parse_message(d.data)
        if msg.exchange_type != ExchangeType.IKE_SA_INIT:
            sa = receiver.sas.get(msg.spi_r if msg.from_original_initiator else msg.spi_i)
            if sa is None or sa.protect_in is None or not msg.payloads or msg.payloads[-1].payload_type != 46:
                return
            msg = unprotect_message(d.data, sa.protect_in)
        self.captured.append(("client" if receiver is self.gateway else "gateway", d, msg))

    def settle(self, now: float, rounds: int = 30) -> None:
        """Exchange datagrams back and forth until both outboxes are empty."""
        for _ in range(rounds):
            if not self.deliver(self.client, now) + self.deliver(self.gateway, now):
                return

    def drain(self) -> None:
        """Throw away both daemons' pending events."""
        for d in (self.client, self.gateway):
            while d.next_event() is not None:
                pass

    def run_until(self, until: float, now: float) -> float:
        """Fire both daemons' timers in time order up to *until*, settling the link each time."""
        while True:
            t = [x for x in (self.client.get_timer(), self.gateway.get_timer()) if x is not None]
            if not t or min(t) > until:
                return max(now, until)
            now = max(now, min(t))
            for d in (self.client, self.gateway):
                timer = d.get_timer()
                if timer is not None and timer <= now:
                    d.handle_timer(now)
            self.settle(now)

    def establish(self, now: float) -> bool:
        """IKE_SA_INIT + IKE_AUTH from the client; True if both ends have one established IKE_SA."""
        self.cur = self.client.initiate("vpn", now)
        self.settle(now)
        self.drain()
        return self.current() is not None

    def current(self) -> tuple[IkeSa, IkeSa] | None:
        """(client's, gateway's) current IKE_SA if both are ESTABLISHED and name each other, else None."""
        c = self.client.sas.get(self.cur)
        if c is None or c.local_spi != self.cur or c.state is not IkeSaState.ESTABLISHED:
            return None
        g = self.gateway.sas.get(c.peer_spi)
        if g is None or g.local_spi != c.peer_spi or g.peer_spi != c.local_spi or g.state is not IkeSaState.ESTABLISHED:
            return None
        return c, g

    def side(self, d: IkeDaemon) -> IkeSa | None:
        """*d*'s half of the current IKE_SA, or None."""
        cur = self.current()
        if cur is None:
            return None
        return cur[0] if d is self.client else cur[1]


def make_pair(rng: Rng) -> Pair:
    """A fresh, unconnected pair whose daemons draw from children of *rng*."""
    client = IkeDaemon(_config("client", CLIENT, GATEWAY, "client@fuzz.test", "gw@fuzz.test"), rng=rng.child("client"))
    gateway = IkeDaemon(_config("gateway", GATEWAY, None, "gw@fuzz.test", None), rng=rng.child("gateway"))
    return Pair(client, gateway)


def capture_templates(rng: Rng) -> tuple[Template, ...]:
    """Run a reference pair through every exchange kind and keep each message's decrypted payloads."""
    pair = make_pair(rng)
    pair.capture = True
    now = 0.0
    if not pair.establish(now):
        raise RuntimeError("reference pair did not establish")
    labels = ["ike_sa_init", "ike_sa_init", "ike_auth", "ike_auth"]

    def step(label: str, action: object) -> None:
        nonlocal now
        before = len(pair.captured)
        now += 1.0
        action()  # type: ignore[operator]
        pair.settle(now)
        now = pair.run_until(now + 30.0, now)
        labels.extend([label] * (len(pair.captured) - before))
        pair.drain()

    step("rekey_child", lambda: pair.client.rekey_child_sa(pair.client.child_sa_spis()[0], now))
    step("create_child", lambda: pair.gateway.create_child_sa(pair.gateway.ike_sa_spis()[0], "net", now))
    step("rekey_ike", lambda: pair.gateway.rekey_ike_sa(pair.gateway.ike_sa_spis()[0], now))
    step("liveness", lambda: pair.client.check_liveness(pair.client.ike_sa_spis()[0], now))
    step("delete_child", lambda: pair.client.delete_child_sa(pair.client.child_sa_spis()[0], now))
    step("delete_ike", lambda: pair.gateway.delete_ike_sa(pair.gateway.ike_sa_spis()[0], now))
    return tuple(Template(label, msg.exchange_type, msg.is_response, msg.payloads)
                 for label, (_who, _d, msg) in zip(labels, pair.captured, strict=True))
