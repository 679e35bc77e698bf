"""The public surface of ikesim.wire: one __all__ re-exporting each submodule's public names."""

from __future__ import annotations

import dataclasses

import ikesim.wire as wire
from ikesim.wire import buffer, codec, iana, message, payloads, verify
from ikesim.wire.payload_codec import PARSERS, POSITIONAL_FIELDS


def test_all_is_exactly_the_submodules_public_names() -> None:
    """ikesim.wire.__all__ is the union of the codec, message, buffer, payload, IANA and verify __all__ lists."""
    expected = {*codec.__all__, *message.__all__, *buffer.__all__, *payloads.__all__, *iana.__all__, *verify.__all__}
    assert len(wire.__all__) == len(set(wire.__all__))
    assert set(wire.__all__) == expected


def test_every_exported_name_is_the_submodule_object() -> None:
    """Each re-export is the very object its submodule defines (no copies, no stale aliases)."""
    for module in (codec, message, buffer, payloads, iana, verify):
        for name in module.__all__:
            assert getattr(wire, name) is getattr(module, name), name


def test_parsers_positional_argument_order_matches_the_dataclasses() -> None:
    """The payload classes still start with the fields the parsers pass positionally, in that order."""
    for cls, names in POSITIONAL_FIELDS.items():
        assert tuple(f.name for f in dataclasses.fields(cls))[: len(names)] == names, cls.__name__
    parsed_classes = {parser.__annotations__["return"] for parser in PARSERS.values()}
    assert parsed_classes <= {cls.__name__ for cls in POSITIONAL_FIELDS}
