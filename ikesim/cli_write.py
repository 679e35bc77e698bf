"""The commands that write a file of their own: ``ikesim import`` (a scenario from swanctl.conf) and ``ikesim schema``
(the JSON Schema of scenario files). ikesim never overwrites a file it did not write: an existing ``--out`` needs
``--force``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ikesim.errors import ConfigError

__all__ = ["cmd_import", "cmd_schema"]


def _write_new(path: str | None, text: str, *, force: bool) -> None:
    """*text* to *path* (stdout without one); an existing file only with ``--force`` (ikesim never overwrites files it
    did not write)."""
    if path is None:
        sys.stdout.write(text)
        return
    try:
        with open(path, "w" if force else "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise ConfigError(f"{path} exists: give --force to overwrite it, or another --out") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc}") from None


def cmd_import(args: argparse.Namespace) -> int:
    """``ikesim import``: swanctl.conf connections -> a scenario (``ikesim.scenario.swanctl_scenario``)."""
    from ikesim.scenario.durations import parse_duration
    from ikesim.scenario.load import load_scenario_text
    from ikesim.scenario.swanctl_scenario import import_swanctl, render_yaml

    if len(args.files) > 2:
        raise ConfigError("give one swanctl.conf, or two (one per peer)")
    try:
        parse_duration(args.duration)
    except ValueError as exc:
        raise ConfigError(f"--duration: {exc}") from None
    nodes = args.nodes.split(",") if args.nodes else None
    if nodes is not None and len(nodes) != len(args.files):
        raise ConfigError(f"--nodes: give {len(args.files)} node name(s), one per file")
    imported = import_swanctl([Path(f) for f in args.files], name=args.name, nodes=nodes, duration=args.duration)
    text = render_yaml(imported)
    try:
        load_scenario_text(text, args.out or "<imported>")
    except ConfigError as exc:
        raise ConfigError(f"the imported scenario is not valid for ikesim:\n{exc}") from None
    _write_new(args.out, text, force=args.force)
    if imported.unsupported and not args.quiet:
        print(f"ikesim import: {len(imported.unsupported)} setting(s) not imported (listed in the scenario's header):",
              file=sys.stderr)
        for u in imported.unsupported:
            print(f"  {u}", file=sys.stderr)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """``ikesim schema``: the JSON Schema of scenario files (``ikesim.scenario.schema``)."""
    from ikesim.scenario.schema import schema_text

    _write_new(args.out, schema_text(), force=args.force)
    return 0
