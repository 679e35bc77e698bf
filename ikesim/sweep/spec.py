"""Sweep specifications: ``--param KEY=V1,V2`` arguments and YAML sweep files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ikesim.errors import ConfigError

__all__ = ["Param", "SweepSpec", "is_sweep_file", "load_sweep_file", "parse_param", "parse_values"]


@dataclass(frozen=True, slots=True)
class Param:
    """One swept key: a dotted path into the scenario YAML and the values it takes, in order."""

    key: str
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class SweepSpec:
    """What to sweep: a scenario file, its swept params (outermost first), and replications per point."""

    scenario: Path
    params: tuple[Param, ...]
    replications: int = 1
    out: Path | None = None

    def identity(self, scenario_sha256: str) -> dict[str, Any]:
        """The JSON-ready identity of the grid, stored in ``DIR/sweep.json`` to refuse mixing grids."""
        return {"scenario_sha256": scenario_sha256, "replications": self.replications,
                "params": [[p.key, list(p.values)] for p in self.params]}


def _check_values(key: str, values: list[Any]) -> tuple[Any, ...]:
    if not values:
        raise ConfigError(f"--param {key}: no values")
    seen: list[str] = []
    for v in values:
        if isinstance(v, dict | list) or v is None:
            raise ConfigError(f"--param {key}: values must be YAML scalars (got {v!r})")
        s = json.dumps(v)
        if s in seen:
            raise ConfigError(f"--param {key}: value {v!r} is repeated")
        seen.append(s)
    return tuple(values)


def _check_key(key: str) -> str:
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--param {key!r}: the key must be a dotted path such as connections.vpn.child.rand_time")
    if key == "seed":
        raise ConfigError("--param seed: replications vary the run number, not the seed (STYLE.md rule 9): "
                          "use --replications R, or set the seed in the scenario")
    return key


def parse_values(key: str, text: str) -> tuple[Any, ...]:
    """Values of ``V1,V2,...`` (or a YAML flow list ``[V1, V2]``), each parsed like a YAML scalar."""
    try:
        if text.strip().startswith("["):
            parsed = yaml.safe_load(text)
            if not isinstance(parsed, list):
                raise ConfigError(f"--param {key}: {text!r} is not a YAML list")
            return _check_values(key, parsed)
        tokens = [t.strip() for t in text.split(",")]
        if any(not t for t in tokens):
            raise ConfigError(f"--param {key}: empty value in {text!r}")
        return _check_values(key, [yaml.safe_load(t) for t in tokens])
    except yaml.YAMLError as exc:
        raise ConfigError(f"--param {key}: cannot parse {text!r}: {exc}") from None


def parse_param(text: str) -> Param:
    """Parse a ``KEY=V1,V2,...`` command-line argument."""
    key, sep, values = text.partition("=")
    if not sep:
        raise ConfigError(f"--param {text!r}: expected KEY=V1,V2,...")
    key = _check_key(key.strip())
    return Param(key, parse_values(key, values))


def is_sweep_file(path: str | Path) -> bool:
    """True when *path* is a YAML sweep file (top-level ``scenario`` and ``params``), not a scenario."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "scenario" in data and "params" in data


def load_sweep_file(path: str | Path) -> SweepSpec:
    """Read a sweep file: ``scenario`` (relative to the file), ``params {key: [values]}``, ``replications``, ``out``."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read sweep file: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: YAML syntax error: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a sweep file must be a YAML mapping")
    unknown = sorted(set(data) - {"scenario", "params", "replications", "out"})
    if unknown:
        raise ConfigError(f"{p}: unknown key(s) {', '.join(unknown)} (expected scenario, params, replications, out)")
    if not isinstance(data.get("scenario"), str):
        raise ConfigError(f"{p}: scenario: the path of a scenario file is required")
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{p}: params: expected a mapping {{key: [values]}}")
    out_params = []
    for key, values in params.items():
        key = _check_key(str(key))
        out_params.append(Param(key, _check_values(key, values if isinstance(values, list) else [values])))
    reps = data.get("replications", 1)
    if not isinstance(reps, int) or isinstance(reps, bool) or reps < 1:
        raise ConfigError(f"{p}: replications: expected an integer >= 1 (got {reps!r})")
    out = data.get("out")
    return SweepSpec(scenario=p.parent / data["scenario"], params=tuple(out_params), replications=reps,
                     out=(p.parent / str(out)) if out is not None else None)
