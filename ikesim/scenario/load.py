"""Scenario YAML -> validated ``ScenarioModel``; every error names the file, the line and the key path.

A file that declares ``variants:`` (``ikesim.scenario.variants``) stands for one scenario per variant,
named ``<name>[<variant>]``: ``load_scenarios`` returns them all, ``load_scenario`` only one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml
from pydantic import ValidationError

from ikesim.errors import ConfigError
from ikesim.scenario.cluster_checks import check_clusters, member_hint, member_map
from ikesim.scenario.fleet import MAX_REBINDS
from ikesim.scenario.messages import describe_errors
from ikesim.scenario.model import ScenarioModel
from ikesim.scenario.node_model import MobilityModel, mobility_problems
from ikesim.scenario.variants import VariantText, expand_variants
from ikesim.scenario.yaml_parse import compose_and_load
from ikesim.sim.topology import Topology

__all__ = ["load_scenario", "load_scenario_text", "load_scenarios", "load_scenarios_text", "load_variants", "read_scenario_text"]

Path_ = tuple[str | int, ...]


class _Duplicate(Exception):
    def __init__(self, path: Path_, line: int, first: int) -> None:
        super().__init__(path, line, first)
        self.path, self.line, self.first = path, line, first


def _line_map(node: yaml.Node, path: Path_, out: dict[Path_, int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[object, int] = {}
        for key, value in node.value:
            k = key.value
            if k in seen:
                raise _Duplicate(path + (k,), key.start_mark.line + 1, seen[k])
            seen[k] = key.start_mark.line + 1
            out[path + (k,)] = key.start_mark.line + 1
            _line_map(value, path + (k,), out)
            out[path + (k,)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, path + (i,), out)


def _line_for(loc: Path_, lines: dict[Path_, int]) -> int:
    for n in range(len(loc), -1, -1):
        if tuple(loc[:n]) in lines:
            return lines[tuple(loc[:n])]
    return 1


def _dotted(loc: Path_) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def _validate_text(text: str, source: str) -> ScenarioModel:
    """Parse and validate the YAML of one scenario (variables already substituted)."""
    try:
        root, data = compose_and_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}:{line}: YAML syntax error: {problem}") from None
    if root is None or not isinstance(data, dict):
        raise ConfigError(f"{source}:1: a scenario must be a YAML mapping")
    lines: dict[Path_, int] = {}
    try:
        _line_map(root, (), lines)
    except _Duplicate as dup:
        raise ConfigError(f"{source}:{dup.line}: {_dotted(dup.path)}: duplicate key {dup.path[-1]!r} (first at line {dup.first})") from None
    try:
        model = ScenarioModel.model_validate(data)
    except ValidationError as exc:
        msgs = [f"{source}:{_line_for(loc, lines)}: {_dotted(loc)}: {what}"
                for loc, what in describe_errors(exc.errors(), data, ScenarioModel)]
        raise ConfigError("\n".join(dict.fromkeys(msgs))) from None
    _cross_check(model, lines, source)
    return model


def _cross_check(m: ScenarioModel, lines: dict[Path_, int], source: str) -> None:
    errors = []

    def err(loc: Path_, msg: str) -> None:
        errors.append(f"{source}:{_line_for(loc, lines)}: {_dotted(loc)}: {msg}")

    boxes = set(m.nats) | set(m.routers)
    for name in sorted(boxes & set(m.nodes)):
        err(("nats" if name in m.nats else "routers", name), f"{name!r} is also a node")
    for name in sorted(set(m.nats) & set(m.routers)):
        err(("routers", name), f"{name!r} is also a NAT")
    for name, nat in m.nats.items():
        for j, n in enumerate(nat.inside):
            host, _, iface = n.partition("/")
            if host not in m.nodes:
                err(("nats", name, "inside", j), f"unknown node {host!r}")
            elif iface and iface not in (m.nodes[host].interfaces or {}):
                err(("nats", name, "inside", j), f"node {host!r} has no interface {iface!r}")
    members = member_map(m)

    def unknown(n: str) -> str:
        """Why *n* names no node a link or a connection can end at."""
        if n in members:
            return f"{n!r} is a member of cluster {members[n]!r}: name the cluster"
        return f"unknown node {n!r}"

    for i, link in enumerate(m.links):
        for j, n in enumerate(link.between):
            if n not in m.nodes and n not in boxes:
                err(("links", i, "between", j), unknown(n))
            elif n in m.nodes and m.nodes[n].interfaces is not None:
                err(("links", i, "between", j), f"node {n!r} has interfaces: its links are interfaces.<name>.link")
        if link.between[0] == link.between[1]:
            err(("links", i, "between"), "a link joins two different nodes")
    for name, c in m.connections.items():
        for side in ("initiator", "responder"):
            if getattr(c, side) not in m.nodes:
                err(("connections", name, side), unknown(getattr(c, side)))
        if c.initiator in m.clusters:
            err(("connections", name, "initiator"), f"{c.initiator!r} is a cluster: clusters answer connections "
                "(make it the responder)")
        if c.initiator == c.responder:
            err(("connections", name, "responder"), "the responder must be another node than the initiator")
        if c.start >= m.duration:
            err(("connections", name, "start"), f"{c.start:g}s is not before the end of the run ({m.duration:g}s)")
    for i, a in enumerate(m.actions):
        if a.node in m.clusters:
            err(("actions", i, "node"), f"{a.node!r} is a cluster: actions run on one of its members "
                f"({member_hint(m, a.node)})")
        elif a.node not in m.nodes and a.node not in members:
            err(("actions", i, "node"), f"unknown node {a.node!r}")
        if a.at >= m.duration:
            err(("actions", i, "at"), f"{a.at:g}s is not before the end of the run ({m.duration:g}s)")
        if a.connection is None:  # a pin action
            continue
        conn = m.connections.get(a.connection)
        if conn is None:
            err(("actions", i, "connection"), f"unknown connection {a.connection!r}")
            continue
        if (a.node in m.nodes or a.node in members) and members.get(a.node, a.node) not in (conn.initiator, conn.responder):
            err(("actions", i, "node"), f"node {a.node!r} is not an end of connection {a.connection!r}")
        names = [n for n, _ in conn.child_items()]
        if a.child is not None and a.child not in names:
            err(("actions", i, "child"), f"connection {a.connection!r} has no child {a.child!r} (has {', '.join(names)})")
        if a.action == "create_child" and a.child is None:
            err(("actions", i), "create_child needs a child")
    for i, t in enumerate(m.traffic):  # every flow names a connection and, if it names one, a child of it
        if t.connection is None:
            err(("traffic", i), "connection is required (fleet.traffic gives every client a flow)")
            continue
        conn = m.connections.get(t.connection)
        if conn is None:
            err(("traffic", i, "connection"), f"unknown connection {t.connection!r}")
            continue
        names = [n for n, _ in conn.child_items()]
        if t.child is not None and t.child not in names:
            err(("traffic", i, "child"), f"connection {t.connection!r} has no child {t.child!r} (has {', '.join(names)})")
    names = [f.name for f in m.faults if f.name is not None]
    for i, f in enumerate(m.faults):
        for key in ("from", "to"):
            end = f.from_ if key == "from" else f.to
            if end is not None and key == "from" and end in m.clusters:
                err(("faults", i, key), f"{end!r} is a cluster: it sends from its members ({member_hint(m, end)})")
            elif end is not None and key == "to" and end in members:
                err(("faults", i, key), f"{end!r} is a member of cluster {members[end]!r}, which owns no address: "
                    f"datagrams to the cluster go to {members[end]!r}")
            elif end is not None and m.nodes and end not in m.nodes and end not in members:
                err(("faults", i, key), f"unknown node {end!r}")
        if f.until is not None and f.until not in names:
            err(("faults", i, "until"), f"no fault named {f.until!r} (named: {', '.join(names) or 'none'})")
        if f.name is not None and any(g.name == f.name for g in m.faults[:i]):
            err(("faults", i, "name"), f"duplicate fault name {f.name!r}")
    _check_interfaces(m, err)
    check_clusters(m, err)
    seen: dict[str, str] = {}
    owned: list[tuple[Path_, str, str]] = []
    for name, node in m.nodes.items():
        if node.interfaces is None:
            owned += [(("nodes", name, "addresses", k), f"node {name!r}", ip) for k, ip in enumerate(node.addresses)]
        else:
            owned += [(("nodes", name, "interfaces", i, "address"), f"interface {name + '/' + i!r}", f.address)
                      for i, f in node.interfaces.items()]
    owned += [(("nats", name, "public"), f"node {name!r}", nat.public) for name, nat in m.nats.items()]
    owned += [(("routers", name, "addresses", k), f"node {name!r}", ip) for name, r in m.routers.items()
              for k, ip in enumerate(r.addresses)]
    for loc, name, ip in owned:
        if ip in seen:
            err(loc, f"address {ip} is also on {seen[ip]}")
        seen[ip] = name
    for name, nat in m.nats.items():
        if nat.rebind_every is not None and m.duration / nat.rebind_every > MAX_REBINDS:
            err(("nats", name, "rebind_every"), f"{nat.rebind_every:g}s means about {m.duration / nat.rebind_every:.3g} rebinds in "
                f"the run; at most {MAX_REBINDS:,}")
    if not errors:
        for name, problem in _unrouted(m):
            err(("connections", name), problem)
    if errors:
        raise ConfigError("\n".join(errors))


def _check_interfaces(m: ScenarioModel, err: Callable[[Path_, str], None]) -> None:
    """Interfaces' links end at a node without interfaces, a router or a NAT; mobility names known interfaces and
    finds its first interface up and the others down; fleet mode's data plane has no interfaces."""
    boxes = set(m.nats) | set(m.routers)

    def end(loc: Path_, to: str) -> None:
        if to in m.nodes and m.nodes[to].interfaces is not None:
            err(loc, f"node {to!r} has interfaces: a link cannot end at it")
        elif to not in m.nodes and to not in boxes:
            err(loc, f"unknown node {to!r}")

    def moves(loc: Path_, mobility: MobilityModel | None, up: dict[str, bool]) -> None:
        if mobility is None:
            return
        for where, problem in mobility_problems(mobility, up):
            err(loc + (where if where[0] == "interfaces" else ("mobility", *where)), problem)
        for i, step in enumerate(mobility.script or ()):
            if step.at >= m.duration:
                err(loc + ("mobility", "script", i, "at"), f"{step.at:g}s is not before the end of the run ({m.duration:g}s)")

    multi = False
    for name, n in m.nodes.items():
        if n.interfaces is not None:
            multi = True
            for iface, f in n.interfaces.items():
                end(("nodes", name, "interfaces", iface, "link", "to"), f.link.to)
            moves(("nodes", name), n.mobility, {k: f.up for k, f in n.interfaces.items()})
    fleet = m.fleet
    if fleet is not None and fleet.gateway in m.nodes and m.nodes[fleet.gateway].interfaces is not None:
        err(("fleet", "gateway"), f"node {fleet.gateway!r} has interfaces: the clients' links cannot end at it")
    if fleet is not None and fleet.interfaces is not None:
        multi = True
        for iface, fi in fleet.interfaces.items():
            if fi.link.to is not None and fi.link.to != fleet.gateway:
                end(("fleet", "interfaces", iface, "link", "to"), fi.link.to)
        moves(("fleet",), fleet.mobility, {k: f.up for k, f in fleet.interfaces.items()})
    if multi and m.data_plane.mode == "fleet":
        err(("data_plane", "mode"), "fleet mode does not model interfaces (ikesim.sim.mobility): use mode: packet")


def _unrouted(m: ScenarioModel) -> list[tuple[str, str]]:
    """Connections whose ends no chain of links joins: ``(connection, problem)`` (RFC 7296 §2.1: each request needs its response back).

    A node with interfaces reaches (and is reached) through any of them, never through itself.
    """
    topology = Topology()
    vertices: dict[str, list[str]] = {}
    for name in [*m.nodes, *m.routers, *m.nats]:
        topology.add_node(name, [])
        interfaces = m.nodes[name].interfaces if name in m.nodes else None
        vertices[name] = [name]
        if interfaces is not None:
            vertices[name] = [f"{name}/{i}" for i in interfaces]
            for v in vertices[name]:
                topology.add_node(v, [])
    for link in m.links:
        topology.add_link(*link.between, delay=0.0)
    for name, n in m.nodes.items():
        for i, f in (n.interfaces or {}).items():
            topology.add_link(f"{name}/{i}", f.link.to, delay=0.0)
    out = []
    for name, c in m.connections.items():
        for a, b in ((c.initiator, c.responder), (c.responder, c.initiator)):
            if not any(topology.has_route(x, y) for x in vertices[a] for y in vertices[b]):
                out.append((name, f"no route from {a} to {b} (no chain of links joins them)"))
                break
    return out


def _load_variant(vt: VariantText, source: str) -> ScenarioModel:
    """Validate one variant; its model is named ``<name>[<variant>]`` and each error line names the variant."""
    try:
        model = _validate_text(vt.render(source), source)
    except ConfigError as exc:
        if vt.name is None:
            raise
        raise ConfigError("\n".join(f"{line} (variant {vt.name})" for line in str(exc).splitlines())) from None
    return model if vt.name is None else model.model_copy(update={"name": f"{model.name}[{vt.name}]"})


def load_variants(text: str, source: str = "<string>") -> list[tuple[str | None, ScenarioModel | ConfigError]]:
    """Every variant of scenario *text*, each validated on its own: ``(variant, model or its ConfigError)``.

    A file without variants gives ``[(None, model or error)]``. Raises ConfigError only when the
    ``variants:`` block itself is invalid (then no variant can be loaded).
    """
    out: list[tuple[str | None, ScenarioModel | ConfigError]] = []
    for vt in expand_variants(text, source):
        try:
            out.append((vt.name, _load_variant(vt, source)))
        except ConfigError as exc:
            out.append((vt.name, exc))
    return out


def load_scenarios_text(text: str, source: str = "<string>") -> list[ScenarioModel]:
    """One validated model per variant of *text* (one for a file without variants); errors of all variants at once."""
    loaded = load_variants(text, source)
    errors = [str(m) for _, m in loaded if isinstance(m, ConfigError)]
    if errors:
        raise ConfigError("\n".join(errors))
    return [m for _, m in loaded if isinstance(m, ScenarioModel)]


def load_scenario_text(text: str, source: str = "<string>", *, variant: str | None = None) -> ScenarioModel:
    """Parse and validate scenario YAML *text*; raise ConfigError naming source:line: key.

    A text with several variants needs *variant*; a text with exactly one gives that one.
    """
    texts = expand_variants(text, source)
    names = [vt.name for vt in texts if vt.name is not None]
    if variant is not None:
        if not names:
            raise ConfigError(f"{source}: --variant {variant}: the scenario declares no variants")
        chosen = [vt for vt in texts if vt.name == variant]
        if not chosen:
            raise ConfigError(f"{source}: no variant {variant!r} (variants: {', '.join(names)})")
        return _load_variant(chosen[0], source)
    if len(texts) > 1:
        raise ConfigError(f"{source}: the scenario declares {len(texts)} variants ({', '.join(names)}): run them all with "
                          "`ikesim check` or load_scenarios(), or pick one with --variant NAME (load_scenario(..., variant=))")
    return _load_variant(texts[0], source)


def read_scenario_text(path: str | Path) -> str:
    """The text of a scenario file; ConfigError naming the file when it cannot be read."""
    p = Path(path)
    try:
        return p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read scenario: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: cannot read scenario: not UTF-8 text") from None


def _text_and_source(path_or_text: str | Path) -> tuple[str, str]:
    if isinstance(path_or_text, str) and "\n" in path_or_text:
        return path_or_text, "<string>"
    return read_scenario_text(path_or_text), str(Path(path_or_text))


def load_scenario(path_or_text: str | Path, *, variant: str | None = None) -> ScenarioModel:
    """Read and validate a scenario file, or YAML text (a ``str`` with a newline).

    A file with several variants needs *variant* (else ConfigError: use ``load_scenarios``).
    """
    return load_scenario_text(*_text_and_source(path_or_text), variant=variant)


def load_scenarios(path_or_text: str | Path) -> list[ScenarioModel]:
    """Every scenario a file (or YAML text) stands for: one per variant, or a one-element list."""
    return load_scenarios_text(*_text_and_source(path_or_text))
