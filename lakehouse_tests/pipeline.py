"""Running the bronze and silver assets in-process, as the tests and the CLI test need them."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from lakehouse.bronze import assets as bronze
from lakehouse.gold import assets as gold
from lakehouse.ml import assets as ml
from lakehouse.resources import LakeStorage
from lakehouse.silver import assets as silver

INGEST_ASSETS = [
    bronze.flights, bronze.weather, bronze.planes, bronze.airports, bronze.airlines,
    silver.quarantine, silver.flights, silver.weather, silver.planes, silver.airports, silver.airlines,
]  # fmt: skip

GOLD_ASSETS = [
    gold.flight_features_table, gold.daily_airport_performance, gold.departures,
    gold.carrier_monthly_performance, gold.route_performance, gold.weather_delay_impact,
]  # fmt: skip

ML_ASSETS = [ml.delay_model, ml.promotions, ml.predictions]

TABLES = [
    "bronze/flights",
    "bronze/weather",
    "bronze/planes",
    "silver/flights",
    "silver/weather",
    "silver/planes",
    "silver/airports",
    "silver/airlines",
    "silver/quarantine",
]


def ingest(resources: dict, start: date, end: date | None = None, **kwargs) -> dg.ExecuteInProcessResult:
    """Materialize bronze and silver for the days ``start`` through ``end`` in one run."""
    return materialize(INGEST_ASSETS, resources, start, end, **kwargs)


def materialize(assets: list, resources: dict, start: date, end: date | None = None, **kwargs):
    """Materialize ``assets`` for the days ``start`` through ``end`` as one run."""
    return dg.materialize(
        assets,
        resources=resources,
        tags={
            "dagster/asset_partition_range_start": start.isoformat(),
            "dagster/asset_partition_range_end": (end or start).isoformat(),
        },
        **kwargs,
    )


def content_hash(lake: LakeStorage, table: str) -> str:
    """A hash of a table's rows, independent of file layout and row order."""
    return frame_hash(lake.scan(table).collect())


# Columns that record which run wrote a row, when, and from which path: they differ between two folders.
LINEAGE_COLUMNS = {"_run_id", "_loaded_at", "_source_file", "run_id", "loaded_at", "source_file"}


def frame_hash(frame: pl.DataFrame) -> str:
    return hashlib.sha256(frame.sort(frame.columns).write_csv().encode()).hexdigest()


def fingerprint(resources: dict, ignore: set[str] = frozenset()) -> dict[str, str]:
    """A content hash of every Delta table of the lake and every table of the warehouse.

    A table whose first write was killed before its commit has a ``_delta_log`` folder but no version:
    it does not exist yet, and is recorded as such.
    """
    lake: LakeStorage = resources["lake"]
    hashes = {}
    for log in sorted(Path(lake.root).rglob("_delta_log")):
        table = log.parent.relative_to(lake.root).as_posix()
        if lake.table(table) is None:
            hashes[table] = "no commit"
            continue
        frame = lake.scan(table).collect()
        hashes[table] = frame_hash(frame.drop(ignore & set(frame.columns)))
    if not Path(resources["warehouse"].database).exists():
        return hashes
    with duckdb.connect(resources["warehouse"].database, read_only=True) as connection:
        for (table,) in connection.sql(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables"
        ).fetchall():
            frame = connection.sql(f"SELECT * FROM {table}").pl()
            hashes[table] = frame_hash(frame.drop(ignore & set(frame.columns)))
    return hashes


def check_result(result: dg.ExecuteInProcessResult, asset: str, check: str) -> dg.AssetCheckEvaluation:
    key = dg.AssetKey(asset.split("/"))
    found = [e for e in result.get_asset_check_evaluations() if e.asset_key == key and e.check_name == check]
    assert found, f"no evaluation of {asset}:{check}"
    return found[-1]


def rows_for(lake: LakeStorage, table: str, column: str, day: date) -> pl.DataFrame:
    return lake.scan(table).filter(pl.col(column) == day).collect()
