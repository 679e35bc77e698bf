"""Core events: IkeSaKeysDerived after IKE_SA_INIT, and no key bytes in the repr of any event or key holder."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing

from ikepeers import CLIENT, GATEWAY, PSK, make_peers, names

from ikesim.crypto.prf import ChildKeys, IkeKeys
from ikesim.ike import events as ev
from ikesim.ike.config import Credentials
from ikesim.metrics import recorder
from ikesim.sim.faults import FaultApplied
from ikesim.types import Address


def _secrets(events: list[ev.IkeEvent]) -> set[str]:
    """The hex of every key an event carries (IKE SK_e/SK_a, ESP keys), empty ones left out."""
    fields = ("sk_ei", "sk_er", "sk_ai", "sk_ar", "encr_key_in", "integ_key_in", "encr_key_out", "integ_key_out")
    return {getattr(e, f).hex() for e in events for f in fields if getattr(e, f, b"")}


def _column_type(hint: object) -> str:
    """The type an event field has in the events table: bytes and Address are written as text, an enum as its
    value (``ikesim.metrics.results._cell``), and None is a missing cell of any column."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    if hint in (bytes, Address):
        return "str"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        (value_type,) = {type(m.value) for m in hint}
        return value_type.__name__
    return hint.__name__ if isinstance(hint, type) else repr(hint)


def test_one_field_name_has_one_type_in_every_event_of_the_events_table() -> None:
    """Every record the events table holds (core events, scripted actions, NAT, invariant and fault records) gives a
    field name one column type: parquet cannot write a column of text and numbers (``group``), or of addresses and
    booleans (``local``); the table's own ``time``/``node``/``event`` columns are no field's name."""
    core = [c for c in vars(ev).values() if isinstance(c, type) and issubclass(c, ev.IkeEvent)]
    others = [recorder.ActionExecuted, recorder.ActionSkipped, recorder.InvariantViolated, recorder.NatEvent,
              FaultApplied]
    assert {"IkeSaInitRetried", "IkeSaEstablished", "AuthFailed", "ProposalRejected", "NatTraversalStarted"} <= {
        c.__name__ for c in core}
    columns: dict[str, dict[str, list[str]]] = {"time": {"float": ["table"]}, "node": {"str": ["table"]},
                                                "event": {"str": ["table"]}}
    for cls in core + others:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            columns.setdefault(f.name, {}).setdefault(_column_type(hints[f.name]), []).append(cls.__name__)
    assert {name: by_type for name, by_type in columns.items() if len(by_type) > 1} == {}
    assert columns["group"] == {"str": ["IkeSaInitRetried", "IkeSaEstablished"]}
    assert columns["by_us"] == {"bool": ["TicketIssued", "TicketRejected", "AuthFailed", "ProposalRejected"]}


def test_keys_derived_is_emitted_before_ike_auth_with_the_established_keys() -> None:
    """Each side reports IkeSaKeysDerived once, right after IKE_SA_INIT (before any IKE_AUTH event), same keys."""
    p = make_peers(seed=5)
    p.client.initiate("vpn", 0.0)
    p.deliver(p.client, 0.0)  # IKE_SA_INIT request: the responder derives its keys before answering
    p.deliver(p.gateway, 0.0)
    p.events(p.client)
    p.events(p.gateway)
    assert names(p.log["client"]) == ["ExchangeStarted", "IkeSaKeysDerived", "ExchangeCompleted", "ExchangeStarted"]
    assert names(p.log["gateway"]) == ["IkeSaKeysDerived"]
    p.settle(0.0)
    p.events(p.client)
    p.events(p.gateway)
    (kc,) = [e for e in p.log["client"] if isinstance(e, ev.IkeSaKeysDerived)]
    (kg,) = [e for e in p.log["gateway"] if isinstance(e, ev.IkeSaKeysDerived)]
    (ec,) = [e for e in p.log["client"] if isinstance(e, ev.IkeSaEstablished)]
    assert kc.initiator and not kg.initiator
    assert (kc.spi_i, kc.spi_r, kc.sk_ei, kc.sk_er, kc.sk_ai, kc.sk_ar) == (kg.spi_i, kg.spi_r, kg.sk_ei, kg.sk_er,
                                                                           kg.sk_ai, kg.sk_ar)
    assert (kc.spi_i, kc.spi_r, kc.sk_ei, kc.sk_er) == (ec.spi_i, ec.spi_r, ec.sk_ei, ec.sk_er)
    assert len(kc.sk_ei) == 32 + 4 and kc.sk_ai == b""  # AES-GCM-256 with its salt, no integrity key
    assert (kc.encr_wireshark, kc.integ_wireshark) == (ec.encr_wireshark, ec.integ_wireshark)


def test_no_event_repr_shows_a_key() -> None:
    """repr and str of every event of an IKE_SA + CHILD_SA, a CHILD rekey and an IKE rekey hold no key hex or bytes."""
    p = make_peers(seed=6)
    p.establish(0.0)
    spi = p.client.child_sa_spis()[0]
    p.client.rekey_child_sa(spi, 1.0)
    p.settle(1.0)
    (ike,) = p.client.ike_sa_spis()
    p.client.rekey_ike_sa(ike, 2.0)
    p.settle(2.0)
    p.events(p.client)
    p.events(p.gateway)
    events = p.log["client"] + p.log["gateway"]
    assert {"IkeSaKeysDerived", "IkeSaEstablished", "ChildSaInstalled"} <= set(names(events))
    secrets = _secrets(events)
    assert len(secrets) == 2 * 2 + 2 * 2  # SK_ei/SK_er of 2 IKE_SAs; ESP in/out keys of 2 CHILD_SAs (GCM)
    text = "\n".join(repr(e) + str(e) for e in events)
    assert not [k for k in secrets if k in text or repr(bytes.fromhex(k))[2:-1] in text]
    assert "sk_e" not in text and "_key_" not in text


def test_key_holders_do_not_show_their_keys() -> None:
    """IkeKeys, ChildKeys, a live IKE_SA and CHILD_SA, and PSK credentials redact their secrets in repr."""
    k = IkeKeys(*(bytes([i]) * 32 for i in range(1, 8)))
    c = ChildKeys(b"\xaa" * 20, b"\xbb" * 32, b"\xcc" * 20, b"\xdd" * 32)
    cred = Credentials(psk=PSK)
    assert repr(k) == "IkeKeys()" and repr(c) == "ChildKeys()"
    assert PSK.decode() not in repr(cred) and "psk=" not in repr(cred)
    p = make_peers(seed=7)
    p.establish(0.0)
    sa = next(iter(p.client.sas.values()))
    child = next(iter(sa.children.values()))
    assert child.encr_key_in.hex() not in repr(child) and repr(child.encr_key_in)[2:-1] not in repr(child)
    assert "encr_key_in=" not in repr(child) and repr(child).startswith("ChildSa(")
    assert (sa.local, sa.peer) == (CLIENT, GATEWAY) and sa.keys is not None
    assert sa.keys.sk_pi == sa.keys.sk_pr == b""  # RFC 7296 §2.15: dropped once AUTH is done
    for key in (sa.keys.sk_d, sa.keys.sk_ei, sa.keys.sk_er):
        assert key.hex() not in repr(sa) and repr(key)[2:-1] not in repr(sa)
