"""The arguments the benchmark scripts share: where the landed data is, where to write, which days."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path


def range_arguments(doc: str) -> argparse.Namespace:
    """``--data`` (a folder with landing/ and sources/), ``--state``, ``--from`` and ``--through``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with landing/ and sources/")
    parser.add_argument("--state", type=Path, required=True, help="folder to write the results to")
    parser.add_argument("--from", dest="first", type=date.fromisoformat, default=date(2013, 1, 1))
    parser.add_argument("--through", type=date.fromisoformat, default=date(2013, 12, 31))
    return parser.parse_args()
