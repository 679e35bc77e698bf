"""``ikesim import``: the ``connections`` of one swanctl.conf, or of two (one per peer), as an ikesim scenario.

One file: its host is one node and each connection's remote end another, configured as the host's mirror image (the
same proposals, lifetimes and DPD, identities and selectors swapped). Two files: each file's host is a node, their
connections are paired by name (or the only one of each), the initiator's settings are the connection's and the
responder's differences its ``peers`` entry. The end whose child has ``start_action = start`` (or ``trap``) initiates;
with none, the remote end of a single file does (a road warrior dialling in), or the first file's host.
Addresses come from ``local_addrs``/``remote_addrs`` (the first address, a subnet's first host, a range's start),
else from 192.0.2.0/24. Secrets are never copied: a PSK connection gets a made-up key.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ikesim.errors import ConfigError
from ikesim.scenario.swanctl import Section, parse_settings, resolve
from ikesim.scenario.swanctl_import import _EAP, End, read_end

__all__ = ["Imported", "import_swanctl", "render_yaml"]

_FALLBACK = ipaddress.IPv4Address("192.0.2.1")
"""Addresses for ends whose swanctl.conf gives none usable (``%any``, a DNS name): TEST-NET-1 from here on."""
_NODE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class Imported:
    """The scenario mapping and what the import could not carry over."""

    scenario: dict[str, Any]
    sources: list[str]
    unsupported: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _address(values: list[str], taken: set[str]) -> str | None:
    """The first IPv4 address of an ``*_addrs`` list: an address, a subnet's first host (not *taken* by another
    node), a range's start."""
    for v in values:
        text = v.split("-", 1)[0].strip()
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if net.version == 4:
            hosts = [net.network_address] if net.num_addresses == 1 else net.hosts()
            return next((str(h) for h in hosts if str(h) not in taken), None)
    return None


def _node_name(text: str, default: str) -> str:
    """A node name from a file name: letters, digits, '_', '-', '.'; *default* for an empty one or ``swanctl``."""
    name = _NODE.sub("-", text).strip("-.") or default
    return name if name not in ("swanctl", "swanctl.conf") else default


def _connections(path: Path) -> tuple[Section, dict[str, End]]:
    """The file's top section and each of its ``connections``, references resolved, as one end."""
    root = parse_settings(path)
    conns = root.sections.get("connections")
    if conns is None or not conns.sections:
        raise ConfigError(f"{path}: no connections {{ }} section with a connection in it")
    for key, s in conns.settings.items():
        raise ConfigError(f"{s.file}:{s.line}: connections.{key}: expected a connection section, not a setting")
    return root, {name: read_end(name, resolve(sec, root)) for name, sec in conns.sections.items()}


def _auth(init: tuple[str, str | None], resp: tuple[str, str | None], conn: str, notes: list[str]) -> dict[str, Any]:
    """``auth`` from (method, EAP identity) of the initiator and (method, EAP identity it asks) of the responder: the
    responder's method (PSK or ikesim's certificates), and the initiator's EAP if it uses one."""
    method, init_method = resp[0], init[0]
    out: dict[str, Any] = {"method": "psk", "psk": f"imported-{conn}-psk"} if method == "psk" else {"method": "ecdsa"}
    if method == "psk":
        notes.append(f"{conn}: the PSK is made up ({out['psk']}): secrets are never copied into a scenario")
    elif method not in ("pubkey", "ecdsa", "rsa"):
        notes.append(f"{conn}: responder auth {method} is modelled as certificates (ecdsa)")
    if init_method in _EAP:
        eap: dict[str, Any] = {"method": _EAP[init_method]}
        if eap["method"] != "tls":
            eap["secret"] = f"imported-{conn}-eap"
            notes.append(f"{conn}: the EAP password is made up ({eap['secret']})")
        if init[1] not in (None, "", "%any"):
            eap["identity"] = init[1]
        if resp[1] == "%any":
            eap["identity_request"] = True
        out["eap"] = eap
    elif init_method.startswith(("eap", "xauth")):
        notes.append(f"{conn}: initiator auth {init_method} is not modelled: the initiator authenticates as the "
                     "responder does")
    elif (init_method == "psk") != (method == "psk"):
        notes.append(f"{conn}: initiator auth {init_method} differs from the responder's {method}: ikesim's ends "
                     "authenticate alike, as the responder")
    return out


def _id(value: str | None, address: str) -> str:
    """An identity as ikesim takes it: strongSwan's default for a missing local id is the host's address."""
    return address if value in (None, "", "%any") else str(value)


def _child_in_initiator_view(child: dict[str, Any], initiator: bool) -> dict[str, Any]:
    """A child's keys as the initiator sees them: a responder's local_ts is the initiator's remote_ts."""
    if initiator:
        return dict(child)
    swap = {"local_ts": "remote_ts", "remote_ts": "local_ts"}
    return {swap.get(k, k): v for k, v in child.items()}


_ABSENT: dict[str, Any] = {"dpd_delay": 0, "keyingtries": 1, "fragmentation": True, "dpd_action": "clear",
                           "close_action": "none", "reauth_time": 0, "local_ts": ["dynamic"], "remote_ts": ["dynamic"],
                           **{f"{w}_{u}": 0 for w in ("rekey", "life", "rand") for u in ("bytes", "packets")}}
"""What a key ``read_end`` leaves out means (strongSwan's default, which is ikesim's)."""


def _diff(mine: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """*mine*'s keys that *base* does not give alike, and what *mine* leaves out that *base* gives."""
    out = {k: v for k, v in mine.items() if base.get(k, _ABSENT.get(k)) != v}
    out.update({k: _ABSENT[k] for k in base if k not in mine and base[k] != _ABSENT.get(k, base[k])})
    return out


def _connection(name: str, i: End, r: End, nodes: tuple[str, str], addresses: tuple[str, str], *, i_is_file: bool,
                r_is_file: bool, notes: list[str]) -> dict[str, Any]:
    """One scenario connection: the initiator's settings, the responder's differences as ``peers``."""
    base = i if i_is_file else r
    children = {n: _child_in_initiator_view(c, i_is_file) for n, c in base.children.items()}
    out: dict[str, Any] = {
        "initiator": nodes[0], "responder": nodes[1],
        "auth": _auth((i.local_auth, i.local_eap_id) if i_is_file else (r.remote_auth, r.remote_eap_id),
                      (r.local_auth, r.remote_eap_id) if r_is_file else (i.remote_auth, i.local_eap_id), name, notes),
        "ids": {"initiator": _id(i.local_id if i_is_file else r.remote_id, addresses[0]),
                "responder": _id(r.local_id if r_is_file else i.remote_id, addresses[1])},
        "ike": {k: v for k, v in base.ike.items() if k not in ("close_action",) or v != "none"},
        "children": children,
        "start_action": i.start_action if i.start_action != "none" else "start",
    }
    if i.start_action == "none":
        notes.append(f"{name}: no start_action start or trap: {nodes[0]} initiates it at 0 s")
    if i_is_file and r_is_file:
        peer: dict[str, Any] = {}
        ike = _diff(r.ike, i.ike)
        if ike:
            peer["ike"] = ike
        own = {}
        for child, settings in r.children.items():
            if child not in children:
                notes.append(f"{name}: child {child} is only in {nodes[1]}'s file: not simulated")
                continue
            theirs = _child_in_initiator_view(children[child], False)  # the connection's, in the responder's view
            d = _diff(settings, theirs)
            if d:
                own[child] = d
        for child in children:
            if child not in r.children:
                notes.append(f"{name}: child {child} is only in {nodes[0]}'s file: both ends get it")
        if own:
            peer["children"] = own
        if peer:
            out["peers"] = {nodes[1]: peer}
    return out


def _pairs(files: list[dict[str, End]], paths: list[Path]) -> list[tuple[str, End, End | None]]:
    """(connection name, first file's end, second file's end or None) by name, or the only one of each."""
    if len(files) == 1:
        return [(n, e, None) for n, e in files[0].items()]
    a, b = files
    if len(a) == 1 and len(b) == 1:
        (na, ea), (_, eb) = next(iter(a.items())), next(iter(b.items()))
        return [(na, ea, eb)]
    alone = sorted(set(a) ^ set(b))
    if alone:
        raise ConfigError(f"{paths[0]} and {paths[1]}: connections are paired by name, and these are in one file only: "
                          f"{', '.join(alone)}")
    return [(n, a[n], b[n]) for n in a]


def import_swanctl(paths: list[Path], *, name: str | None = None, nodes: list[str] | None = None,
                   duration: str = "1h") -> Imported:
    """The scenario the connections of one swanctl.conf (or two, one per peer) describe (ConfigError: file, line, key)."""
    if not 1 <= len(paths) <= 2:
        raise ConfigError("give one swanctl.conf, or two (one per peer)")
    files = [_connections(p)[1] for p in paths]
    hosts = nodes or ([_node_name(p.stem, f"peer{k + 1}") for k, p in enumerate(paths)] if len(paths) == 2 else
                      [_node_name(paths[0].stem, "local")])
    if len(paths) == 2 and hosts[0] == hosts[1]:
        hosts = [_node_name(p.resolve().parent.name, f"peer{k + 1}") for k, p in enumerate(paths)]
        hosts = hosts if hosts[0] != hosts[1] else ["peer1", "peer2"]
    out = Imported(scenario={}, sources=[str(p) for p in paths])
    addresses: dict[str, list[str]] = {h: [] for h in hosts}
    fallback = iter(ipaddress.IPv4Address(int(_FALLBACK) + k) for k in range(250))
    remote_nodes: dict[str, str] = {}
    connections: dict[str, Any] = {}
    pairs = _pairs(files, paths)
    for conn, a, b in pairs:
        for end in (a, b) if b is not None else (a,):
            out.unsupported += end.unsupported
            out.notes += end.notes
        taken = {x for node, addrs in addresses.items() if node != hosts[0] for x in addrs}
        a_addr = _address(a.local_addrs, taken) or (_address(b.remote_addrs, taken) if b else None)
        taken = set(addresses[hosts[0]]) | ({a_addr} if a_addr else set())
        if b is not None:
            b_addr = _address(b.local_addrs, taken) or _address(a.remote_addrs, taken)
            b_node = hosts[1]
        else:
            b_addr = _address(a.remote_addrs, taken)
            key = b_addr or "%any"
            if key not in remote_nodes:
                remote_nodes[key] = "remote" if not remote_nodes else f"remote{len(remote_nodes) + 1}"
                addresses[remote_nodes[key]] = []
            b_node = remote_nodes[key]
        for node, addr in ((hosts[0], a_addr), (b_node, b_addr)):
            if addr is None and not addresses[node]:
                addr = str(next(fallback))
                out.notes.append(f"{conn}: no IPv4 address for {node} in local_addrs/remote_addrs: it gets {addr}")
            if addr is not None and addr not in addresses[node]:
                addresses[node].append(addr)
        a_starts = a.start_action != "none"
        b_starts = b is not None and b.start_action != "none"
        a_first = a_starts or (b is not None and not b_starts)
        if b is not None and a_starts and b_starts:
            out.notes.append(f"{conn}: both ends start it: {hosts[0]} initiates")
        node_a, node_b = hosts[0], b_node
        addr_a = a_addr or addresses[node_a][0]
        addr_b = b_addr or addresses[node_b][0]
        if a_first:
            i, r = a, (b if b is not None else a)
            names, addrs = (node_a, node_b), (addr_a, addr_b)
        else:
            i, r = (b if b is not None else a), a
            names, addrs = (node_b, node_a), (addr_b, addr_a)
        if addresses[names[1]][0] != addrs[1]:
            out.notes.append(f"{conn}: the initiator connects to {names[1]}'s first address "
                             f"{addresses[names[1]][0]}, not {addrs[1]}")
        i_is_file = b is not None or a_first
        r_is_file = b is not None or not a_first
        connections[conn] = _connection(conn, i, r, names, addrs, i_is_file=i_is_file, r_is_file=r_is_file,
                                        notes=out.notes)
    host_nodes = [h for h in hosts if addresses.get(h)]
    out.scenario = {
        "name": name or _node_name(paths[0].stem if paths[0].stem != "swanctl" else "swanctl-import", "imported"),
        "description": f"imported from {' and '.join(p.name for p in paths)} (ikesim import)",
        "seed": 1, "duration": duration,
        "nodes": {n: {"addresses": a} for n, a in addresses.items() if a},
        "links": [{"between": [host_nodes[0], n], "delay": "10ms"} for n in addresses if n != host_nodes[0] and addresses[n]],
        "connections": connections,
    }
    trapped = [n for n, c in connections.items() if c["start_action"] == "trap"]
    if trapped:  # a trap policy waits for a packet (the kernel's acquire): give it one packet a second
        out.scenario["traffic"] = [{"connection": n, "direction": "both", "pattern": "constant", "rate": 1, "size": 1000}
                                   for n in trapped]
        out.notes += [f"{n}: start_action trap waits for traffic: one packet a second each way is added"
                      for n in trapped]
    return out


def render_yaml(imported: Imported) -> str:
    """The scenario as YAML, headed by comments: where it came from, unsupported settings and notes."""
    lines = [f"# Imported by 'ikesim import' from {', '.join(imported.sources)} (strongSwan swanctl.conf).",
             "# The network (one 10 ms link per pair of nodes) and the duration are ikesim's choice: edit them."]
    if imported.unsupported:
        lines.append("# Unsupported settings (not in this scenario):")
        lines += [f"#   {u}" for u in imported.unsupported]
    if imported.notes:
        lines.append("# Notes:")
        lines += [f"#   {n}" for n in imported.notes]
    body = yaml.safe_dump(imported.scenario, sort_keys=False, default_flow_style=None, allow_unicode=True, width=120)
    return "\n".join(lines) + "\n" + body
