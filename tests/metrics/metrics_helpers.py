"""A scripted two-node run with real daemons, shared by the metrics tests."""

from __future__ import annotations

import pytest

from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy
from ikesim.metrics.results import Results
from ikesim.metrics.trace import Trace
from ikesim.sim.simulation import Simulation
from ikesim.types import Address

DELAY = 0.01
SCRIPT = [
    (1.0, "client", "initiate", None),
    (30.0, "client", "create_child", "extra"),
    (60.0, "client", "rekey_child", "net"),
    (90.0, "gw", "rekey_ike", None),
    (120.0, "client", "rekey_child", "extra"),
    (150.0, "gw", "delete_child", "net"),
    (180.0, "client", "dpd", None),
    (240.0, "client", "delete_ike", None),
]
"""(time, node, action, child): every scripted action, each on an otherwise idle IKE_SA."""


def run_keeping_events(sim: Simulation, until: float) -> Results:
    """``sim.run(until)``, with the recorded ``(time, node, event)`` tuples kept as ``results.raw_events``.

    The trace keeps no event objects (and no key material outside the key tables); tests that look at
    events' key fields see them here.
    """
    raw: list[tuple[float, str, object]] = []
    record = sim.collector.record

    def keep(event: object, *, now: float, node: str) -> None:
        raw.append((now, node, event))
        record(event, now=now, node=node)

    sim.collector.record = keep  # type: ignore[method-assign]
    results = sim.run(until)
    results.raw_events = raw  # type: ignore[attr-defined]
    return results


def results_of(raw: list[tuple[float, str, object]], *, owners: dict[str, str] | None = None, name: str = "x",
               seed: int = 0, run: int = 0, duration: float = 10.0) -> Results:
    """Results of a trace that recorded exactly *raw* (no datagrams)."""
    trace = Trace()
    for t, node, e in raw:
        trace.record(e, now=t, node=node)
    return Results(trace, name=name, seed=seed, run=run, duration=duration, owners=owners or {}, crypto_ops={})


def scripted_run(seed: int = 21, until: float = 300.0) -> Results:
    """Client and gateway, PSK, aes256gcm16-prfsha256-x25519, children "net" (GCM) and "extra" (CBC)."""
    psk = Credentials(psk=b"metrics-test-psk-0123")
    ike = IkePolicy(proposals=("aes256gcm16-prfsha256-x25519",))
    kids = (ChildPolicy(name="net"), ChildPolicy(name="extra", proposals=("aes128-sha256",)))
    c = Connection(name="vpn", local_id="client@sim.test", remote_id="gw.sim.test", remote_addr=Address("10.0.0.2"),
                   credentials=psk, ike=ike, children=kids)
    g = Connection(name="vpn", local_id="gw.sim.test", remote_id="client@sim.test", credentials=psk, ike=ike,
                   children=kids)
    sim = Simulation(seed=seed, name="metrics")
    sim.add_node(DaemonConfig("client", (Address("10.0.0.1"),), (c,)))
    sim.add_node(DaemonConfig("gw", (Address("10.0.0.2"),), (g,)))
    sim.add_link("client", "gw", delay=DELAY)
    for at, node, action, child in SCRIPT:
        sim.schedule(at, node, action, connection="vpn", child=child)
    return run_keeping_events(sim, until)


@pytest.fixture(scope="module")
def scripted() -> Results:
    """The scripted run with seed 21."""
    return scripted_run()


def psk_mismatch_run(seed: int = 3) -> Results:
    """Client and gateway with different PSKs: IKE_SA_INIT succeeds, IKE_AUTH fails with AUTHENTICATION_FAILED."""
    ike = IkePolicy(proposals=("aes256gcm16-prfsha256-x25519",))
    kids = (ChildPolicy(name="net"),)
    c = Connection(name="vpn", local_id="client@sim.test", remote_id="gw.sim.test", remote_addr=Address("10.0.0.2"),
                   credentials=Credentials(psk=b"client-side-psk-0123456"), ike=ike, children=kids)
    g = Connection(name="vpn", local_id="gw.sim.test", remote_id="client@sim.test",
                   credentials=Credentials(psk=b"gateway-side-psk-0123456"), ike=ike, children=kids)
    sim = Simulation(seed=seed, name="psk-mismatch")
    sim.add_node(DaemonConfig("client", (Address("10.0.0.1"),), (c,)))
    sim.add_node(DaemonConfig("gw", (Address("10.0.0.2"),), (g,)))
    sim.add_link("client", "gw", delay=DELAY)
    sim.schedule(0.0, "client", "initiate", connection="vpn")
    return run_keeping_events(sim, 30.0)


def cookie_run(seed: int = 4) -> Results:
    """The gateway asks every IKE_SA_INIT for a COOKIE (``cookie_threshold=0``, RFC 7296 §2.6); the client retries."""
    psk = Credentials(psk=b"metrics-test-psk-0123")
    ike = IkePolicy(proposals=("aes256gcm16-prfsha256-x25519",))
    c = Connection(name="vpn", local_id="client@sim.test", remote_id="gw.sim.test", remote_addr=Address("10.0.0.2"),
                   credentials=psk, ike=ike)
    g = Connection(name="vpn", local_id="gw.sim.test", remote_id="client@sim.test", credentials=psk, ike=ike)
    sim = Simulation(seed=seed, name="cookies")
    sim.add_node(DaemonConfig("client", (Address("10.0.0.1"),), (c,)))
    sim.add_node(DaemonConfig("gw", (Address("10.0.0.2"),), (g,), cookie_threshold=0))
    sim.add_link("client", "gw", delay=DELAY)
    sim.schedule(0.0, "client", "initiate", connection="vpn")
    return sim.run(30.0)


def one_bad_one_good_run(seed: int = 5) -> Results:
    """Two connections from one client: ``bad`` has a PSK the gateway does not share (AUTHENTICATION_FAILED),
    ``good`` establishes."""
    ike = IkePolicy(proposals=("aes256gcm16-prfsha256-x25519",))
    good, other = Credentials(psk=b"the-good-psk-0123456789"), Credentials(psk=b"client-side-psk-0123456")
    gw_bad = Credentials(psk=b"gateway-side-psk-0123456")
    gw = Address("10.0.0.2")
    conns = (Connection(name="good", local_id="good@sim.test", remote_id="gw.sim.test", remote_addr=gw,
                        credentials=good, ike=ike),
             Connection(name="bad", local_id="bad@sim.test", remote_id="gw.sim.test", remote_addr=gw,
                        credentials=other, ike=ike))
    gw_conns = (Connection(name="good", local_id="gw.sim.test", remote_id="good@sim.test", credentials=good, ike=ike),
                Connection(name="bad", local_id="gw.sim.test", remote_id="bad@sim.test", credentials=gw_bad, ike=ike))
    sim = Simulation(seed=seed, name="one-bad-one-good")
    sim.add_node(DaemonConfig("client", (Address("10.0.0.1"),), conns))
    sim.add_node(DaemonConfig("gw", (gw,), gw_conns))
    sim.add_link("client", "gw", delay=DELAY)
    sim.schedule(0.0, "client", "initiate", connection="bad")
    sim.schedule(1.0, "client", "initiate", connection="good")
    return sim.run(30.0)
