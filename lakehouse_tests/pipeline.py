"""Running the bronze and silver assets in-process, as the tests and the CLI test need them."""

from __future__ import annotations

import functools
import hashlib
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from lakehouse import catalog
from lakehouse.catalog import Table
from lakehouse.definitions import defs
from lakehouse.resources import LakeStorage


@functools.cache
def definitions() -> dg.Definitions:
    """The project's definitions, built once per test process (as `dagster dev` would)."""
    return defs()


def assets_of(*tables: Table) -> list:
    """The asset definitions (or specs) of ``tables``, as the definitions built them."""
    built = {asset.key: asset for asset in definitions().assets}
    return [built[table.key] for table in tables]


def layer_assets(*layers: str) -> list:
    """Every asset of the ``layers``, in catalog order."""
    return assets_of(*(table for name in layers for table in catalog.layer(name)))


INGEST_ASSETS = layer_assets("bronze", "silver")
GOLD_ASSETS = layer_assets("gold")
ML_ASSETS = assets_of(catalog.DELAY_MODEL, catalog.PROMOTIONS, catalog.PREDICTIONS)

# The Delta tables an ingestion run writes.
TABLES = [t.path for t in catalog.delta_tables() if t.layer in ("bronze", "silver")]


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
