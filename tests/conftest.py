"""Shared test setup: make ``tests/vectors.py`` importable as ``vectors``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def pytest_addoption(parser):  # type: ignore[no-untyped-def]
    """``--update-golden`` rewrites tests/golden/*.json from the current code."""
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="regenerate the golden scenario summaries")
