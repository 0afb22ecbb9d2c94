"""Crash safety: a run killed with SIGKILL in the middle of a bronze, silver or gold write leaves every
table readable at its last commit, and running again gives exactly the tables of a run never killed.

The killing is done by ``crash.py`` in a child process, at the point each test names.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from lakehouse_tests.conftest import resources_at
from lakehouse_tests.pipeline import GOLD_ASSETS, INGEST_ASSETS, LINEAGE_COLUMNS, fingerprint, materialize

JAN1, JAN2 = date(2013, 1, 1), date(2013, 1, 2)
PROJECT = Path(__file__).resolve().parents[2]

POINTS = [
    "during:bronze/flights",  # data files of the day being written, no commit yet
    "after:bronze/weather",  # committed to Delta, never recorded by Dagster
    "during:silver/flights",
    "after:silver/flights",  # clean rows committed, their quarantine slice not written
    "during:silver/planes",  # a reference table's first write
    "during:gold.flight_features",  # inside the warehouse transaction, before COMMIT
]


@pytest.fixture(scope="module")
def clean_run(landed_once: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The tables of a run that was never interrupted."""
    data = tmp_path_factory.mktemp("clean") / "data"
    shutil.copytree(landed_once, data)
    resources = resources_at(data)
    assert materialize(INGEST_ASSETS + GOLD_ASSETS, resources, JAN1, JAN2).success
    return fingerprint(resources, ignore=LINEAGE_COLUMNS)


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
def test_a_run_killed_mid_write_recovers_to_the_clean_tables(landed: Path, clean_run: dict, point: str):
    child = subprocess.run(
        [sys.executable, "-m", "lakehouse_tests.reliability.crash", str(landed), point],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    assert (landed / "killed").read_text() == point

    # Every table is readable where the crash left it: Delta at its last commit, DuckDB without the
    # transaction that never committed.
    resources = resources_at(landed)
    left = fingerprint(resources, ignore=LINEAGE_COLUMNS)
    assert left != clean_run  # the crash did leave the lake unfinished
    if point.startswith("during:gold."):
        table = point.split(":")[1]
        with duckdb.connect(str(landed / "warehouse.duckdb"), read_only=True) as connection:
            tables = {
                row[0]
                for row in connection.sql(
                    "SELECT schema_name || '.' || table_name FROM duckdb_tables()"
                ).fetchall()
            }
        assert table not in tables  # its first write rolled back as a whole

    assert materialize(INGEST_ASSETS + GOLD_ASSETS, resources, JAN1, JAN2).success
    assert fingerprint(resources, ignore=LINEAGE_COLUMNS) == clean_run
