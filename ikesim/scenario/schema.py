"""The JSON Schema of scenario files, generated from the pydantic model (``ikesim schema``), for editors and linters.

The package ships it as ``ikesim/data/scenario.schema.json``; a test keeps that file equal to ``schema_text()``.
The schema describes the file as written: durations as numbers or strings (``30s``), proposals as one string or a
list, and the top-level ``variants:`` block (``ikesim.scenario.variants``), whose ``${var}`` placeholders only the
loader fills in. Cross-key rules (a child name a traffic flow uses exists, ...) stay the loader's.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from ikesim.scenario.durations import duration_json_schema
from ikesim.scenario.model import ScenarioModel

__all__ = ["SCHEMA_ID", "scenario_schema", "schema_text", "shipped_schema_text"]

SCHEMA_ID = "https://ikesim.invalid/scenario.schema.json"
"""The schema's ``$id`` (a name, not a download address: editors take the shipped file)."""
_VARIANTS: dict[str, Any] = {
    "description": "variants of this scenario: a list of {name, vars}, or {matrix, vars, vars_by}; ${var} is substituted "
                   "in the rest of the file (ikesim.scenario.variants)",
    "anyOf": [
        {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "vars": {"type": "object"}},
                                    "required": ["name"], "additionalProperties": False}},
        {"type": "object", "properties": {"matrix": {"type": "object"}, "vars": {"type": "object"},
                                          "vars_by": {"type": "object"}},
         "required": ["matrix"], "additionalProperties": False},
    ],
}


_STRING = {"type": "string"}
_COUNT = {"type": "integer", "minimum": 0}
_BYTES = {"type": "string", "pattern": "^ *(0[xX][0-9a-fA-F]+|[0-9]+) *[kKmMgG]? *$",
          "description": "bytes, with k, m or g (1024-based, as swanctl.conf): 512k, 2m, 1g"}
_WIDER_REFS: dict[str, dict[str, Any]] = {
    "CountSpec": _COUNT, "EventSpec": _COUNT, "NotifySpec": _COUNT, "ExchangeSpec": _COUNT,
    "SizeModel": {"anyOf": [{"type": "integer"}, {"const": "imix"}], "description": "bytes, imix or a distribution"},
}
"""A model a bare value also stands for (a before-validator turns ``1`` into ``{count: 1}``): every ``$ref`` to it
takes that value too."""
_WIDER_KEYS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "proposals": (_STRING, ()),
    "rekey_bytes": (_BYTES, ()), "life_bytes": (_BYTES, ()), "rand_bytes": (_BYTES, ()),
    "bandwidth": ({"type": "string", "description": "bits/s with a unit: 512kbit, 10Mbit, 1Gbit, 2Mbps"}, ()),
    "queue": ({"anyOf": [{"type": "integer"}, _STRING], "description": "packets (64) or bytes (64KB)"}, ()),
    "after": (duration_json_schema(), ("FaultModel",)), "before": (duration_json_schema(), ("FaultModel",)),
    "delay": (duration_json_schema(), ("FaultModel",)), "carries": (_STRING, ("FaultModel",)),
    "between": ({"type": "array", "prefixItems": [duration_json_schema(), duration_json_schema()], "minItems": 2,
                 "maxItems": 2, "description": "[from, to]: two durations"},
                ("CountSpec", "EventSpec", "NotifySpec", "ExchangeSpec")),
}
"""Keys whose written form a before-validator turns into the typed one (``proposals: aes256gcm16``, ``life_bytes:
2m``, ``carries: SA``): the written form is added (in the models named, or in every model)."""


def _or(schema: dict[str, Any], alternative: dict[str, Any]) -> dict[str, Any]:
    """*schema* or *alternative* (an ``anyOf``; the description and default stay outside)."""
    outer = {k: schema.pop(k) for k in ("description", "default", "title") if k in schema}
    if "anyOf" in schema and len(schema) == 1:
        return {**outer, "anyOf": [*schema["anyOf"], alternative]}
    return {**outer, "anyOf": [schema, alternative]}


def _widen_refs(node: Any) -> Any:
    """*node* with every ``$ref`` to a ``_WIDER_REFS`` model also taking the model's bare value."""
    if isinstance(node, list):
        return [_widen_refs(x) for x in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref", "")
    name = ref.removeprefix("#/$defs/")
    if ref and name in _WIDER_REFS and len(node) == 1:
        return {"anyOf": [node, _WIDER_REFS[name]]}
    return {k: _widen_refs(v) for k, v in node.items()}


def _widen_keys(defs: dict[str, Any]) -> None:
    """Every ``_WIDER_KEYS`` key of the models also takes its written form."""
    for name, model in defs.items():
        props = model.get("properties", {})
        for key, (alternative, models) in _WIDER_KEYS.items():
            if key in props and (not models or name in models):
                if key == "between":
                    props[key] = {"anyOf": [alternative, {"type": "null"}], "default": None}
                else:
                    props[key] = _or(props[key], alternative)


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario file, as the model validates it."""
    schema = ScenarioModel.model_json_schema(mode="validation")
    _widen_keys(schema["$defs"])
    schema = _widen_refs(schema)
    schema["properties"]["variants"] = _VARIANTS
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "ikesim scenario", **schema}


def schema_text() -> str:
    """The schema as the shipped file holds it: indented JSON, sorted keys, a final newline."""
    return json.dumps(scenario_schema(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def shipped_schema_text() -> str:
    """The schema file shipped in the package (``ikesim/data/scenario.schema.json``)."""
    return resources.files("ikesim").joinpath("data", "scenario.schema.json").read_text(encoding="utf-8")
