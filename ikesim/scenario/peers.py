"""Per-peer settings of a connection (``peers:``): each end's own ``ike`` and ``child``/``children`` keys, merged over
the connection's before validation, as two swanctl.conf files give each end its own proposals, lifetimes, DPD and
retransmission settings.

A peer is named by its role (``initiator``, ``responder``) or, outside a fleet, by its node. Its keys replace the
connection's key by key; its ``local_ts``/``remote_ts`` are its own view (its own subnet is ``local_ts``, as in its
swanctl.conf), turned here into the initiator's view that the rest of a connection uses.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["ROLES", "peer_role", "merge_peers"]

ROLES = ("initiator", "responder")
"""The two ends of a connection (RFC 7296 §2.2: the original initiator and responder)."""
_SWAPPED = {"local_ts": "remote_ts", "remote_ts": "local_ts"}


def peer_role(key: str, initiator: object, responder: object) -> str | None:
    """The role a ``peers`` key names: a role itself, else the node at that end (None: neither)."""
    if key in ROLES:
        return key
    return "initiator" if key == initiator else "responder" if key == responder else None


def _raw(value: object) -> dict[str, Any]:
    """A mapping of the keys a scenario gave (a model's set fields, a dict as it is)."""
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True)
    return dict(value) if isinstance(value, dict) else {}


def _child_view(child: dict[str, Any], role: str, where: str) -> dict[str, Any]:
    """A peer's child keys in the initiator's view: the responder's local_ts is the initiator's remote_ts."""
    if "start" in child:
        raise ValueError(f"{where}.start: start is the connection's (when the initiator creates the child): give it there")
    if role == "initiator":
        return child
    return {_SWAPPED.get(k, k): v for k, v in child.items()}


def _merged_peer(data: dict[str, Any], key: str, peer: dict[str, Any], role: str) -> dict[str, Any]:
    """One peer's keys, each of ``ike``, ``child`` and ``children`` merged over the connection's."""
    out = dict(peer)
    if isinstance(peer.get("ike"), dict):
        out["ike"] = {**_raw(data.get("ike")), **peer["ike"]}
    if isinstance(peer.get("child"), dict):
        if data.get("children") is not None:
            raise ValueError(f"peers.{key}.child: the connection has children: give peers.{key}.children.<name>")
        out["child"] = {**_raw(data.get("child")), **_child_view(peer["child"], role, f"peers.{key}.child")}
    if isinstance(peer.get("children"), dict):
        ours = data.get("children")
        if not isinstance(ours, dict):
            raise ValueError(f"peers.{key}.children: the connection has no children (it has one child: give "
                             f"peers.{key}.child)")
        for name in peer["children"]:
            if name not in ours:
                raise ValueError(f"peers.{key}.children.{name}: the connection has no child {name!r} "
                                 f"(it has {', '.join(map(str, ours))})")
        out["children"] = {
            name: {**_raw(ours[name]), **_child_view(child, role, f"peers.{key}.children.{name}")} if isinstance(child, dict)
            else child for name, child in peer["children"].items()}
    return out


def merge_peers(data: Any) -> Any:
    """A connection's raw keys with every ``peers`` entry merged over the connection's settings (a peer given as a
    model was merged already: a fleet template's copy); ValueError for a key that names no end, or one end twice."""
    if not isinstance(data, dict) or not isinstance(data.get("peers"), dict):
        return data
    out, seen = {}, {}
    for key, peer in data["peers"].items():
        role = peer_role(str(key), data.get("initiator"), data.get("responder"))
        if role is None:
            nodes = [str(data[r]) for r in ROLES if isinstance(data.get(r), str)]
            raise ValueError(f"peers: {key!r} is neither initiator nor responder"
                             + (f" nor one of the connection's nodes ({', '.join(nodes)})" if nodes else ""))
        if role in seen:
            raise ValueError(f"peers: {seen[role]!r} and {key!r} are the same end (the {role})")
        seen[role] = key
        out[key] = _merged_peer(data, str(key), peer, role) if isinstance(peer, dict) else peer
    return {**data, "peers": out}
