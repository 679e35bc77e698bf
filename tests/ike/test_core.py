"""Lifetimes (soft rekey at the drawn deadline, hard expiry) and SA bookkeeping (RFC 7296 §2.8)."""

from __future__ import annotations

import pytest
from ikepeers import LONG, make_peers, names

from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy, IkePolicy, Lifetime


def test_child_soft_lifetime_rekeys_at_drawn_deadline() -> None:
    """The CHILD_SA soft deadline (rekey_time minus whole seconds, ``ike.lifetimes``) triggers a rekey exactly then."""
    child = ChildPolicy(lifetime=Lifetime(rekey_time=600.0, life_time=700.0, rand_time=60.0))
    p = make_peers(client_ike=IkePolicy(lifetime=LONG), gateway_ike=IkePolicy(lifetime=LONG),
                   client_children=(child,), gateway_children=(child,))
    p.client.initiate("vpn", 0.0)
    p.settle(0.0)
    (ci,) = [e for e in p.events(p.client) if isinstance(e, ev.ChildSaInstalled)]
    (gi,) = [e for e in p.events(p.gateway) if isinstance(e, ev.ChildSaInstalled)]
    assert 540.0 <= ci.rekey_at <= 600.0 and 540.0 <= gi.rekey_at <= 600.0
    assert ci.rekey_at != gi.rekey_at and ci.expire_at == gi.expire_at == 700.0
    first = min(ci.rekey_at, gi.rekey_at)
    assert min(p.client.get_timer(), p.gateway.get_timer()) == first
    who = p.client if ci.rekey_at < gi.rekey_at else p.gateway
    who.handle_timer(first - 1e-6)
    assert p.events(who) == []
    who.handle_timer(first)
    e = p.events(who)
    assert names(e) == ["RekeyStarted", "ExchangeStarted"] and e[0].trigger == "soft_lifetime"
    p.settle(first)
    # the other side's soft timer of the old SA is cancelled: the next deadlines are the new SA's
    new = [x for x in p.events(p.other(who)) if isinstance(x, ev.ChildSaInstalled)]
    assert len(new) == 1 and new[0].rekey_at > first


def test_child_hard_lifetime_expires_and_deletes() -> None:
    """Hard lifetime without a rekey: SaExpired, Delete sent, ChildSaDeleted(expired)."""
    child = ChildPolicy(lifetime=Lifetime(rekey_time=0.0, life_time=300.0, rand_time=0.0))
    p = make_peers(client_ike=IkePolicy(lifetime=LONG), gateway_ike=IkePolicy(lifetime=LONG),
                   client_children=(child,), gateway_children=(ChildPolicy(lifetime=LONG),))
    c_spi, g_spi = p.establish(0.0)
    assert p.client.get_timer() == 300.0
    p.client.handle_timer(300.0)
    p.settle(300.0)
    c = p.events(p.client)
    assert names(c) == ["SaExpired", "ExchangeStarted", "ExchangeCompleted", "ChildSaDeleted"]
    assert (c[0].kind, c[0].spi) == (ev.SaKind.CHILD, c_spi) and c[1].purpose == "delete_child"
    assert (c[3].spi_in, c[3].reason) == (c_spi, "expired")
    g = p.events(p.gateway)
    assert [(type(e).__name__, e.spi_in, e.reason) for e in g] == [
        ("ChildSaDeleted", g_spi, "deleted_by_peer")]
    assert p.client.child_sa_spis() == [] and p.gateway.child_sa_spis() == []
    assert len(p.client.ike_sa_spis()) == 1


def test_ike_soft_lifetime_rekeys_ike_sa() -> None:
    """IKE_SA soft deadline triggers an IKE rekey with trigger soft_lifetime."""
    ike = IkePolicy(lifetime=Lifetime(rekey_time=1000.0, life_time=1200.0, rand_time=0.0))
    p = make_peers(client_ike=ike, gateway_ike=IkePolicy(lifetime=LONG),
                   client_children=(ChildPolicy(lifetime=LONG),),
                   gateway_children=(ChildPolicy(lifetime=LONG),))
    p.establish(0.0)
    assert p.client.get_timer() == 1000.0
    p.run_timers(1000.0)
    c = p.events(p.client)
    assert c[0] == ev.RekeyStarted(spi_i=c[0].spi_i, spi_r=c[0].spi_r, connection="vpn",
                                   kind=ev.SaKind.IKE, old_spi=c[0].spi_i,
                                   old_spi_out=c[0].spi_r, trigger="soft_lifetime")
    assert "IkeSaEstablished" in names(c) and names(c)[-1] == "IkeSaDeleted"
    (new,) = p.client.ike_sa_spis()
    assert p.client.ike_sa_info(new).rekey_at == pytest.approx(2000.0)


def test_ike_hard_lifetime_deletes_ike_sa() -> None:
    """IKE_SA hard lifetime: SaExpired then the IKE_SA and its children are deleted."""
    ike = IkePolicy(lifetime=Lifetime(rekey_time=0.0, life_time=500.0, rand_time=0.0))
    p = make_peers(client_ike=ike, client_children=(ChildPolicy(lifetime=LONG),),
                   gateway_children=(ChildPolicy(lifetime=LONG),),
                   gateway_ike=IkePolicy(lifetime=LONG))
    p.establish(0.0)
    p.run_timers(500.0)
    c = p.events(p.client)
    assert names(c) == ["SaExpired", "ExchangeStarted", "ExchangeCompleted", "ChildSaDeleted",
                        "IkeSaDeleted"]
    assert c[-1].reason == "expired" and c[1].purpose == "delete_ike"
    assert p.gateway.ike_sa_spis() == []


def test_event_pairing_invariants_over_many_rekeys() -> None:
    """Soft-lifetime churn on both sides: every start completes, every SA appears and goes once."""
    child = ChildPolicy(lifetime=Lifetime(rekey_time=60.0, life_time=90.0, rand_time=20.0),
                        proposals=("aes256gcm16-x25519",))
    ike = IkePolicy(lifetime=Lifetime(rekey_time=200.0, life_time=260.0, rand_time=50.0))
    p = make_peers(client_ike=ike, gateway_ike=ike, client_children=(child,),
                   gateway_children=(child,))
    p.establish(0.0)
    p.run_timers(2000.0)
    (spi,) = p.client.ike_sa_spis()
    p.client.delete_ike_sa(spi, 2001.0)
    p.settle(2001.0)
    p.run_timers(3000.0)
    for side in ("client", "gateway"):
        d = p.client if side == "client" else p.gateway
        p.events(d)
        log = p.log[side]
        started = [(e.spi_i, e.message_id, e.exchange) for e in log
                   if isinstance(e, ev.ExchangeStarted)]
        done = [(e.spi_i, e.message_id, e.exchange) for e in log
                if isinstance(e, ev.ExchangeCompleted)]
        assert sorted(started) == sorted(done) and len(started) > 20
        up = [(e.spi_i, e.spi_r) for e in log if isinstance(e, ev.IkeSaEstablished)]
        down = [(e.spi_i, e.spi_r) for e in log if isinstance(e, ev.IkeSaDeleted)]
        assert sorted(up) == sorted(down) and len(up) >= 5
        installed = [e.spi_in for e in log if isinstance(e, ev.ChildSaInstalled)]
        deleted = [e.spi_in for e in log if isinstance(e, ev.ChildSaDeleted)]
        assert sorted(installed) == sorted(deleted) and len(installed) >= 20
        assert d.sas == {} and d.children == {} and d.get_timer() is None


def test_nonce_can_be_pinned() -> None:
    """rng.force("nonce", prefix) on the daemon's Rng pins the next nonce's first bytes."""
    from ikesim.rng import Rng
    from ikesim.wire.codec import parse_message
    from ikesim.wire.payloads import NoncePayload

    p = make_peers()
    assert isinstance(p.client.rng, Rng)
    p.client.rng.force("nonce", b"\x00\x00\x00")
    p.client.initiate("vpn", 0.0)
    (d,) = p.client.datagrams_to_send(0.0)
    nonce = parse_message(d.data).get(NoncePayload)
    assert nonce is not None and nonce.data[:3] == b"\x00\x00\x00" and len(nonce.data) == 32


def test_streams_are_built_on_first_draw_and_draw_the_same_bytes() -> None:
    """A daemon builds its ke/iv/jitter/cookie streams when first drawn from (a fleet's clients make no
    cookies); a stream depends only on its seed and name, so a late one draws what an early one would."""
    from ikesim.rng import Rng

    p = make_peers(seed=11)
    assert "cookies" not in vars(p.client) and "rng_ke" not in vars(p.client)
    p.establish(0.0)
    assert "cookies" not in vars(p.client) and "rng_ke" in vars(p.client)
    assert "cookies" in vars(p.gateway)  # the responder asks whether cookies are required (RFC 7296 §2.6)
    parent = Rng(11, "client")
    early = parent.child("ke")
    parent.bytes(40)
    assert parent.child("ke").bytes(8) == early.bytes(8)


def test_connections_with_equal_policies_share_their_parsed_proposals() -> None:
    """Proposals are parsed once per configuration, not once per connection: a fleet's gateway has one
    connection per client (RFC 7296 §3.3 proposals, §2.9 child policies)."""
    from dataclasses import replace

    from ikesim.ike.profile import ConnectionProfile

    p = make_peers()
    conn = p.gateway.profiles["vpn"].connection
    a = ConnectionProfile.build(replace(conn, name="a", remote_id="a@sim.test"))
    b = ConnectionProfile.build(replace(conn, name="b", remote_id="b@sim.test",
                                        children=tuple(replace(c) for c in conn.children)))
    assert a.ike_specs is b.ike_specs and a.children is b.children and a.connection.name == "a"
    with pytest.raises(TypeError):
        a.children["x"] = a.children["net"]  # type: ignore[index]  # shared: read-only


def _ike_imports(module: str) -> set[str]:
    """ikesim.ike modules *module* imports, TYPE_CHECKING-only imports included (a circle for mypy all the same)."""
    import ast
    from pathlib import Path

    import ikesim.ike

    tree = ast.parse((Path(ikesim.ike.__file__).parent / f"{module}.py").read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "ikesim.ike":
                out.update(a.name for a in node.names)
            elif node.module.startswith("ikesim.ike."):
                out.add(node.module.split(".")[2])
    return out - {module}


def test_core_is_in_no_import_circle() -> None:
    """core imports fragmentation; fragmentation and natt share only ikesim.ike.transport with it (issue 11)."""
    from pathlib import Path

    import networkx as nx

    from ikesim.ike import __file__ as package_init

    modules = [p.stem for p in Path(package_init).parent.glob("*.py") if p.stem != "__init__"]
    graph = nx.DiGraph([(m, dep) for m in modules for dep in _ike_imports(m) if dep in modules])
    circles = [c for c in nx.simple_cycles(graph) if "core" in c]
    assert circles == []
    assert _ike_imports("fragmentation") == _ike_imports("natt") == {"events", "sa", "transport"}
