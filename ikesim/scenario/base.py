"""What every scenario model shares: the strict base model and the value types of scenario files.

The other model modules (``node_model``, ``link_model``, ``connection_model``, ``network_model``,
``faults_model``, ``fleet``, ``expect_model``, ``model``) import from here and never from each other
in a circle.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from ikesim.errors import ConfigError
from ikesim.scenario.durations import parse_duration, parse_ratio

__all__ = ["StrictModel", "Duration", "Ratio", "IpAddress", "Seed", "SEED_MAX", "check_seed", "check_ip_address"]

SEED_MAX = 2**64 - 1
"""Seeds are unsigned 64-bit numbers: 0 .. 2^64 - 1."""


class StrictModel(BaseModel):
    """A scenario mapping: unknown keys are errors, values are frozen, and no float is NaN or infinite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def check_ip_address(value: str) -> str:
    """*value* if it is an IPv4 or IPv6 address (``ipaddress``); else ValueError."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"invalid IP address {value!r}") from None
    return value


def check_seed(seed: int, what: str = "seed") -> int:
    """*seed* if it is in 0 .. 2^64 - 1; else ConfigError naming *what* (``--seed``, ``seed``)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"{what}: {seed!r} is outside 0 .. 2^64 - 1 ({SEED_MAX})")
    return seed


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds: a number or ``30s``, ``1h30m``; finite, not negative, at most ``durations.MAX_DURATION``."""
Ratio = Annotated[float, BeforeValidator(parse_ratio)]
"""A probability in [0, 1]: ``0.01`` or ``1%``."""
IpAddress = Annotated[str, AfterValidator(check_ip_address)]
"""An IPv4 or IPv6 address, as written."""
Seed = Annotated[int, Field(ge=0, le=SEED_MAX)]
"""A seed of the random streams (``ikesim.rng``)."""
