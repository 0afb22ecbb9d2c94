"""The lakehouse's bronze-to-gold work as a bare Python script: the same ``lakehouse.lib`` functions, the
same Delta and DuckDB writes, in the same chunks of days as the assets, and no Dagster. The
orchestration-overhead benchmark times this against ``gold_job``.

    python -m benchmarks.bare --data /tmp/bench/n1 --state /tmp/state --from 2013-01-01 --through 2013-12-30
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from benchmarks.cli import range_arguments
from lakehouse import catalog
from lakehouse.defs.bronze.assets import BYTES_PER_ROW
from lakehouse.defs.gold.marts import QUERIES
from lakehouse.lib import marts
from lakehouse.lib.bronze import reference_frame, table_checksum
from lakehouse.partitions import Chunking, rows_per_day
from lakehouse.reads import departures_of_days, features_of_days
from lakehouse.resources import LakeStorage, SourceSystems, Warehouse

RUN = "bare-script"


def build(data: Path, state: Path, first: date, last: date) -> int:
    """Land-to-gold for ``first`` through ``last``; returns the flights written to silver."""
    sources = SourceSystems(
        landing_uri=str(data / "landing"), database_path=str(data / "sources" / "operational.sqlite")
    )
    lake, warehouse = (
        LakeStorage(root=str(state / "lake")),
        Warehouse(database=str(state / "warehouse.duckdb")),
    )
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    now = datetime.now(UTC)

    chunks = Chunking().chunks

    # bronze: every file checked first, then loaded a chunk of days at a time
    for table in (catalog.BRONZE_FLIGHTS, catalog.BRONZE_WEATHER):
        feed, sizes = table.feed, {}
        for day in days:
            content = sources.landing.read_bytes(feed.path(day))
            feed.check(content, feed.path(day))
            sizes[day] = len(content) // BYTES_PER_ROW
        for chunk in chunks(days, sizes):
            frames = [
                feed.parse(sources.landing.read_bytes(feed.path(day)), feed.path(day), day, now, RUN)
                for day in chunk
            ]
            frame = pl.concat(frames, how="diagonal_relaxed")
            lake.replace_dates(table.path, frame, table.partition_column, chunk, RUN)
    for table in (catalog.BRONZE_PLANES, catalog.BRONZE_AIRPORTS, catalog.BRONZE_AIRLINES):
        columns, rows = sources.read_table(table.name)
        frame = reference_frame(rows, columns, table.name, table_checksum(rows, columns), now, RUN)
        lake.overwrite(table.path, frame, RUN)

    # silver
    for table in (catalog.SILVER_PLANES, catalog.SILVER_AIRPORTS, catalog.SILVER_AIRLINES):
        cleaned = table.transform(lake.scan(table.upstream[0].path), {})
        lake.merge(table.path, cleaned.rows, list(table.key_columns), RUN)
    quarantined, written = [], 0
    for table in (catalog.SILVER_FLIGHTS, catalog.SILVER_WEATHER):
        [bronze_table] = table.upstream
        bronze = lake.scan(bronze_table.path)
        reads = {read.name: lake.scan(read.path) for read in table.reads}
        for chunk in chunks(days, rows_per_day(bronze, bronze_table.partition_column, days)):
            cleaned = table.transform(
                bronze.filter(pl.col(bronze_table.partition_column).is_in(chunk)), reads
            )
            lake.replace_dates(table.path, cleaned.rows, table.partition_column, chunk, RUN)
            quarantined.append(cleaned.quarantine)
            written += cleaned.rows.height if table is catalog.SILVER_FLIGHTS else 0
    lake.replace_where(
        catalog.SILVER_QUARANTINE.path,
        pl.concat(quarantined),
        "TRUE",
        ["source_table", "partition_date"],
        RUN,
    )

    # gold: features, the daily mart and departures a chunk at a time; the whole-history marts over departures
    silver = lake.scan(catalog.SILVER_FLIGHTS.path)
    runs = chunks(days, rows_per_day(silver, "flight_date", days))
    with warehouse.get_connection() as connection:
        for chunk in runs:
            first, last = chunk[0], chunk[-1]
            features = features_of_days(lake, first, last)
            warehouse.replace_days(connection, catalog.FLIGHT_FEATURES.warehouse_table, features, chunk)
            flights = silver.filter(pl.col("flight_date").is_between(first, last)).collect()
            connection.register("flights", flights.to_arrow())
            daily = connection.sql(marts.DAILY_AIRPORT_PERFORMANCE).pl()
            warehouse.replace_days(
                connection, catalog.DAILY_AIRPORT_PERFORMANCE.warehouse_table, daily, chunk
            )
            connection.unregister("flights")
            departed = departures_of_days(lake, first, last)
            warehouse.replace_days(connection, catalog.DEPARTURES.warehouse_table, departed, chunk)
        connection.execute(f"CREATE TEMP VIEW flights AS SELECT * FROM {catalog.DEPARTURES.warehouse_table}")
        for name, sql in QUERIES.items():
            mart = connection.sql(sql).pl()
            warehouse.replace_rows(
                connection, catalog.table(f"gold/{name}").warehouse_table, mart, "TRUE", []
            )
    return written


def main() -> None:
    args = range_arguments(__doc__)
    print(f"{build(args.data, args.state, args.first, args.through):,} flights to gold")


if __name__ == "__main__":
    main()
