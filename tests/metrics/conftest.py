"""Fixtures for the metrics tests (helpers live in metrics_helpers.py to avoid conftest name clashes)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from metrics_helpers import scripted  # noqa: E402,F401  (re-exported fixture)
