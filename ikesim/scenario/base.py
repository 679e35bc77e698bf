"""What every scenario model shares: the strict base model and the value types of scenario files.

The other model modules (``node_model``, ``link_model``, ``connection_model``, ``network_model``,
``faults_model``, ``fleet``, ``expect_model``, ``model``) import from here and never from each other
in a circle.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, WithJsonSchema

from ikesim.errors import ConfigError
from ikesim.scenario.durations import RATIO_JSON_SCHEMA, duration_json_schema, parse_duration, parse_ratio

__all__ = ["StrictModel", "Count", "Duration", "PositiveDuration", "Ratio", "IpAddress", "Seed", "SEED_MAX", "check_seed",
           "check_ip_address", "check_subnet"]

SEED_MAX = 2**64 - 1
"""Seeds are unsigned 64-bit numbers: 0 .. 2^64 - 1."""


class StrictModel(BaseModel):
    """A scenario mapping: unknown keys are errors, values are frozen, and no float is NaN or infinite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def check_ip_address(value: str) -> str:
    """*value* if it is an IPv4 address (``ipaddress``); else ValueError (IPv6: the capture writer is IPv4 only)."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"invalid IP address {value!r}") from None
    if ip.version == 6:
        raise ValueError(f"{value} is an IPv6 address: IPv6 is not supported yet; use IPv4")
    return value


def check_subnet(value: str) -> str:
    """*value* if it is an IPv4 network (``10.1.0.0/16``); else ValueError (IPv6 as in ``check_ip_address``)."""
    try:
        net = ipaddress.ip_network(value)
    except ValueError as exc:
        raise ValueError(f"invalid subnet {value!r}: {exc}") from None
    if net.version == 6:
        raise ValueError(f"{value} is an IPv6 subnet: IPv6 is not supported yet; use IPv4")
    return value


def check_seed(seed: int, what: str = "seed") -> int:
    """*seed* if it is in 0 .. 2^64 - 1; else ConfigError naming *what* (``--seed``, ``seed``)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"{what}: {seed!r} is outside 0 .. 2^64 - 1 ({SEED_MAX})")
    return seed


def _seed_range(seed: int) -> int:
    if not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed {seed} is outside 0 .. 2^64 - 1")
    return seed


def _more_than_zero(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("must be more than 0 s")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(duration_json_schema())]
"""Seconds: a number or ``30s``, ``1h30m``; finite, not negative, at most ``durations.MAX_DURATION``."""
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_more_than_zero),
                             WithJsonSchema(duration_json_schema(positive=True))]
"""A ``Duration`` that must be more than 0 s (a run's length, a timeout, a mean interval)."""
Ratio = Annotated[float, BeforeValidator(parse_ratio), WithJsonSchema(RATIO_JSON_SCHEMA)]
"""A probability in [0, 1]: ``0.01`` or ``1%``."""
IpAddress = Annotated[str, AfterValidator(check_ip_address)]
"""An IPv4 address, as written (IPv6 is refused: ``ikesim.metrics.export`` writes IPv4 captures only)."""
Seed = Annotated[StrictInt, AfterValidator(_seed_range)]
"""A seed of the random streams (``ikesim.rng``): a whole number in 0 .. 2^64 - 1 (not true, not '12')."""
Count = Annotated[StrictInt, Field(ge=0)]
"""A whole number >= 0 (``true`` and ``'12'`` are not numbers, as pydantic's lax ``int`` would take them)."""
