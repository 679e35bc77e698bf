"""One end of a swanctl.conf connection in ikesim's terms (``ikesim import``): its ``ike`` and children's keys.

Values are read as charon's vici backend reads them (``vici_config.c``: ``parse_time``, ``parse_bool``,
``parse_bytes``; the defaults of ``peer_cfg``/``check_lifetimes``), and strongSwan's defaults that ikesim does not
share are written out (``proposals: default``, ``mobike``, ``childless``, the IKE_SA's over_time and rand_time).
A key ikesim does not model is listed in ``End.unsupported`` with its file and line, never dropped silently.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from ikesim.crypto.proposal_lists import parse_proposals
from ikesim.errors import ConfigError
from ikesim.scenario.connection_model import derived_volume, parse_byte_size
from ikesim.scenario.swanctl import Section, Setting
from ikesim.wire.iana import ProtocolId

__all__ = ["End", "read_end", "strongswan_ike_times", "duration_text"]

_TIME = re.compile(r"(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*) *([sSmMhHdD]?)")
"""``parse_time``: ``strtoul(v, 0)`` (decimal, 0x hex, 0 octal), spaces, then s, m, h or d."""
_TIME_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_TRUE, _FALSE = ("yes", "true", "enabled", "1"), ("no", "false", "disabled", "0")
_NOT_MODELLED_CONN = ("aggressive", "pull", "dscp", "encap", "vips", "pools", "send_certreq", "send_cert", "ocsp",
                      "ppk_id", "ppk_required", "unique", "if_id_in", "if_id_out", "mediation", "mediated_by",
                      "mediation_peer")
_EAP = {"eap-md5": "md5", "eap-mschapv2": "mschapv2", "eap-tls": "tls"}


@dataclass
class End:
    """One host's view of one connection, in ikesim's keys (local/remote as that host sees them)."""

    name: str
    file: str
    line: int
    ike: dict[str, Any] = field(default_factory=dict)
    children: dict[str, dict[str, Any]] = field(default_factory=dict)
    local_addrs: list[str] = field(default_factory=list)
    remote_addrs: list[str] = field(default_factory=list)
    local_auth: str = "pubkey"
    remote_auth: str = "pubkey"
    local_id: str | None = None
    remote_id: str | None = None
    local_eap_id: str | None = None
    remote_eap_id: str | None = None
    start_action: str = "none"
    """``start`` if a child starts, else ``trap`` if one traps, else ``none`` (ikesim's is per connection)."""
    unsupported: list[str] = field(default_factory=list)
    """``file:line: key = value: why`` of each setting ikesim does not model."""
    notes: list[str] = field(default_factory=list)


def _where(s: Setting, key: str) -> str:
    """``file:line: key`` of a setting."""
    return f"{s.file}:{s.line}: {key}"


def _bad(s: Setting, key: str, what: str) -> ConfigError:
    """A ConfigError naming the setting's file, line, key and value."""
    return ConfigError(f"{_where(s, key)} = {s.value or ''}: {what}")


def _whole(digits: str) -> int:
    """``strtoul(digits, 0)``: 0x hex, 0 octal, else decimal."""
    return int(digits, 16) if digits[:2] in ("0x", "0X") else int(digits, 8) if digits[0] == "0" else int(digits)


def parse_time(s: Setting, key: str) -> int:
    """Seconds from a swanctl.conf time (``vici_config.c`` ``parse_time``): a whole number, then s, m, h or d."""
    m = _TIME.fullmatch((s.value or "").strip())
    if m is None:
        raise _bad(s, key, "not a time: a whole number with s, m, h or d (e.g. 4h, 30m, 90s)")
    return _whole(m.group(1)) * _TIME_UNIT[m.group(2).lower()]


def parse_bool(s: Setting, key: str) -> bool:
    """``yes``/``no`` as libstrongswan reads them (``settings_value_as_bool``)."""
    v = (s.value or "").strip().lower()
    if v in _TRUE or v in _FALSE:
        return v in _TRUE
    raise _bad(s, key, "expected yes or no")


def _count(s: Setting, key: str) -> int:
    """A whole number as ``strtoul(v, 0)`` reads it: decimal, 0x hex or 0 octal."""
    m = _TIME.fullmatch((s.value or "").strip())
    if m is None or m.group(2):
        raise _bad(s, key, "expected a whole number")
    return _whole(m.group(1))


def _choice(s: Setting, key: str, allowed: tuple[str, ...]) -> str:
    """One of *allowed* (case-insensitive), else ConfigError listing them."""
    v = (s.value or "").strip().lower()
    if v not in allowed:
        raise _bad(s, key, f"expected one of {', '.join(allowed)}")
    return v


def _items(s: Setting) -> list[str]:
    """A swanctl.conf list: comma-separated (spaces around the commas do not count)."""
    return [x.strip() for x in (s.value or "").split(",") if x.strip()]


def duration_text(seconds: int) -> str | int:
    """A whole number of seconds as a scenario duration: ``4h``, ``30min``, ``90s`` (0 stays 0)."""
    if seconds == 0:
        return 0
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _proposals(end: End, s: Setting, key: str, protocol: ProtocolId) -> list[str]:
    """The proposals ikesim can offer; each one it cannot is listed (all of them unsupported: strongSwan's default)."""
    kept = []
    for p in _items(s):
        try:
            parse_proposals([p], protocol)
        except ConfigError as exc:
            end.unsupported.append(f"{_where(s, key)}: proposal {p}: {exc}")
            continue
        kept.append(p)
    if not kept:
        end.notes.append(f"{_where(s, key)}: no proposal ikesim supports: strongSwan's default proposals instead")
    return kept or ["default"]


def strongswan_ike_times(given: dict[str, int]) -> dict[str, int]:
    """The IKE_SA's rekey_time, reauth_time, over_time and rand_time as charon derives those not given
    (``vici_config.c`` ``load_conn``; integer arithmetic as its uint64 fields)."""
    rekey, reauth = given.get("rekey_time"), given.get("reauth_time")
    if rekey is None and reauth is None:
        rekey = 4 * 3600
    rekey, reauth = rekey or 0, reauth or 0
    over = given.get("over_time", max(rekey, reauth) // 10)
    rand = given.get("rand_time")
    if rand is None:
        rand = min(over, (min(rekey, reauth) if rekey and reauth else max(rekey, reauth)) // 2)
    return {"rekey_time": rekey, "reauth_time": reauth, "over_time": over, "rand_time": rand}


def _ike_times(end: End, given: dict[str, int]) -> None:
    """strongSwan's IKE_SA lifetimes, all written out (ikesim derives over_time and rand_time otherwise). Without
    rekeying (rekey_time 0) strongSwan's hard lifetime follows reauthentication only: ``life_time: 0``."""
    t = strongswan_ike_times(given)
    end.ike["rekey_time"] = duration_text(t["rekey_time"])
    if t["reauth_time"]:
        end.ike["reauth_time"] = duration_text(t["reauth_time"])
        if not t["rekey_time"]:
            end.ike["life_time"] = 0
    end.ike["over_time"] = duration_text(t["over_time"])
    end.ike["rand_time"] = duration_text(t["rand_time"])


def _child_times(out: dict[str, Any], given: dict[str, int], volume: dict[str, int]) -> None:
    """A CHILD_SA's rekey, life and rand times as ``check_lifetimes`` derives them, all written out, and each byte
    or packet limit given with its two partners (``derived_volume``, the same arithmetic)."""
    rekey = given.get("rekey_time", int(given["life_time"] / 1.1) if "life_time" in given else 3600)
    life = given.get("life_time", int(rekey * 1.1))
    out["rekey_time"] = duration_text(rekey)
    out["life_time"] = duration_text(life)
    out["rand_time"] = duration_text(given.get("rand_time", life - min(life, rekey)))
    for unit in ("bytes", "packets"):
        keys = (f"rekey_{unit}", f"life_{unit}", f"rand_{unit}")
        if any(k in volume for k in keys):
            out.update(zip(keys, derived_volume(*(volume.get(k) for k in keys)), strict=True))


def _ts(end: End, s: Setting, key: str) -> list[str]:
    """Traffic selectors ikesim takes (``dynamic``, an address, a subnet); the others are listed."""
    out = []
    for ts in _items(s):
        net, _, rest = ts.partition("[")
        if rest:
            end.unsupported.append(f"{_where(s, key)}: {ts}: protocol and port selectors ([{rest}) are not modelled; "
                                   f"{net} is kept")
        try:
            if net != "dynamic":
                ipaddress.ip_network(net, strict=False)
        except ValueError:
            end.unsupported.append(f"{_where(s, key)}: {ts}: only dynamic, addresses and subnets are modelled")
            continue
        out.append(net)
    return out or ["dynamic"]


def _read_child(end: End, name: str, sec: Section) -> None:
    """One ``children.<child>`` section: proposals, selectors, lifetimes and its actions."""
    out: dict[str, Any] = {"proposals": ["default"]}
    times: dict[str, int] = {}
    volume: dict[str, int] = {}
    for key, s in sec.settings.items():
        if key == "esp_proposals":
            out["proposals"] = _proposals(end, s, key, ProtocolId.ESP)
        elif key in ("local_ts", "remote_ts"):
            out[key] = _ts(end, s, key)
        elif key in ("rekey_time", "life_time", "rand_time"):
            times[key] = parse_time(s, key)
        elif key in ("rekey_bytes", "life_bytes", "rand_bytes"):
            try:
                volume[key] = parse_byte_size(key, (s.value or "").strip())
            except ValueError as exc:
                raise _bad(s, key, str(exc)) from None
        elif key in ("rekey_packets", "life_packets", "rand_packets"):
            volume[key] = _count(s, key)
        elif key == "mode":
            if _choice(s, key, ("tunnel", "transport", "transport_proxy", "beet", "pass", "drop")) != "tunnel":
                end.unsupported.append(f"{_where(s, key)} = {s.value}: only tunnel mode is modelled")
        elif key == "start_action":
            actions = set(_choice(s, key, ("none", "trap", "start", "trap|start", "start|trap")).split("|"))
            end.start_action = "start" if "start" in actions or end.start_action == "start" else \
                "trap" if "trap" in actions or end.start_action == "trap" else "none"
        elif key in ("dpd_action", "close_action"):
            value = _choice(s, key, ("clear", "trap", "restart", "none") if key == "dpd_action" else ("none", "trap", "start"))
            value = "clear" if value == "none" and key == "dpd_action" else value
            if key in end.ike and end.ike[key] != value:
                end.unsupported.append(f"{_where(s, key)} = {s.value}: ikesim has one {key} per connection: "
                                       f"{end.ike[key]} (the first child's) is kept")
            end.ike.setdefault(key, value)
        else:
            end.unsupported.append(f"{_where(s, key)} = {s.value or ''}: not modelled by ikesim")
    for sub in sec.sections.values():
        end.unsupported.append(f"{sub.file}:{sub.line}: children.{name}.{sub.name} {{ }}: not modelled by ikesim")
    _child_times(out, times, volume)
    end.children[name] = out


def _read_auth(end: End, sec: Section, local: bool) -> None:
    """``local { }`` or ``remote { }``: the method, the identity and the EAP identity."""
    for key, s in sec.settings.items():
        if key == "auth":
            method = (s.value or "").strip().lower()
            if local:
                end.local_auth = method
            else:
                end.remote_auth = method
        elif key == "id":
            value = (s.value or "").strip()
            if local:
                end.local_id = value
            else:
                end.remote_id = value
        elif key == "eap_id":
            if local:
                end.local_eap_id = (s.value or "").strip()
            else:
                end.remote_eap_id = (s.value or "").strip()
        elif key in ("certs", "cacerts", "pubkeys", "cert_policy", "revocation", "ca_id", "groups", "round") or \
                key.startswith(("cert", "cacert")):
            end.notes.append(f"{_where(s, key)}: ikesim makes its own CA and certificates (auth ecdsa): "
                             f"{sec.name}.{key} is not read")
        else:
            end.unsupported.append(f"{_where(s, key)} = {s.value or ''}: {sec.name}.{key} is not modelled by ikesim")
    for sub in sec.sections.values():
        end.notes.append(f"{sub.file}:{sub.line}: {sec.name}.{sub.name} {{ }}: ikesim makes its own certificates")


def _read_conn_key(end: End, key: str, s: Setting, times: dict[str, int]) -> None:
    """One setting of ``connections.<conn>``."""
    if key == "version":
        if _choice(s, key, ("0", "1", "2")) == "1":
            raise _bad(s, key, "IKEv1 is not simulated: ikesim speaks IKEv2")
    elif key in ("local_addrs", "remote_addrs"):
        setattr(end, key, _items(s))
    elif key in ("local_port", "remote_port"):
        if _count(s, key) != 500:
            end.unsupported.append(f"{_where(s, key)} = {s.value}: ikesim's ends use ports 500 and 4500")
    elif key == "proposals":
        end.ike["proposals"] = _proposals(end, s, key, ProtocolId.IKE)
    elif key == "mobike":
        end.ike["mobike"] = parse_bool(s, key)
    elif key == "dpd_delay":
        end.ike["dpd_delay"] = duration_text(parse_time(s, key))
    elif key == "dpd_timeout":
        parse_time(s, key)
        end.unsupported.append(f"{_where(s, key)} = {s.value}: IKEv1 only (IKEv2 DPD times out as any request does, "
                               "by retransmission: strongSwan ignores it too)")
    elif key == "fragmentation":
        value = _choice(s, key, ("yes", "accept", "force", "no"))
        end.ike["fragmentation"] = value != "no"
        if value in ("accept", "force"):
            end.unsupported.append(f"{_where(s, key)} = {value}: modelled as yes")
    elif key == "childless":
        end.ike["childless"] = _choice(s, key, ("allow", "prefer", "force", "never"))
    elif key == "keyingtries":
        end.ike["keyingtries"] = _count(s, key)
    elif key in ("rekey_time", "reauth_time", "over_time", "rand_time"):
        times[key] = parse_time(s, key)
    else:
        why = "not modelled by ikesim" if key in _NOT_MODELLED_CONN else "not a swanctl.conf connection key ikesim knows"
        end.unsupported.append(f"{_where(s, key)} = {s.value or ''}: {why}")


def read_end(name: str, sec: Section) -> End:
    """One resolved ``connections.<name>`` section as one end's settings (ConfigError naming file, line and key)."""
    end = End(name, sec.file, sec.line)
    end.ike = {"proposals": ["default"], "mobike": True, "childless": "allow"}  # strongSwan's defaults, not ikesim's
    times: dict[str, int] = {}
    for key, s in sec.settings.items():
        _read_conn_key(end, key, s, times)
    _ike_times(end, times)
    auth_rounds = [n for n in sec.sections if n.startswith(("local", "remote"))]
    for sub_name, sub in sec.sections.items():
        if sub_name in ("local", "remote"):
            _read_auth(end, sub, sub_name == "local")
        elif sub_name in auth_rounds:
            end.unsupported.append(f"{sub.file}:{sub.line}: {sub_name} {{ }}: more than one authentication round is "
                                   "not modelled")
        elif sub_name == "children":
            for child_name, child in sub.sections.items():
                _read_child(end, child_name, child)
            for key, s in sub.settings.items():
                end.unsupported.append(f"{_where(s, key)}: children.{key}: expected a child section")
        else:
            end.unsupported.append(f"{sub.file}:{sub.line}: {sub_name} {{ }}: not a connection section ikesim knows")
    if not end.children:
        end.notes.append(f"{sec.file}:{sec.line}: connection {name} has no children: ikesim gives it one, 'net'")
        _read_child(end, "net", Section("net", sec.file, sec.line))
    return end
