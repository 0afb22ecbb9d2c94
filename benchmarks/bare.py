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
from lakehouse.bronze.assets import BYTES_PER_ROW
from lakehouse.gold.assets import departures_of_days, features_of_days
from lakehouse.lib import marts
from lakehouse.lib.bronze import (
    check_flights_file,
    check_jsonl_file,
    read_flights_file,
    read_jsonl_file,
    reference_frame,
    table_checksum,
)
from lakehouse.lib.contracts import FLIGHTS_SOURCE_SCHEMA, REFERENCE_KEYS, REFERENCE_SOURCE_SCHEMAS
from lakehouse.lib.silver import airport_zones, clean_flights, clean_reference, clean_weather
from lakehouse.partitions import chunks, rows_per_day
from lakehouse.resources import LakeStorage, SourceSystems, Warehouse
from lakehouse.sources.replay import flights_path, weather_path

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

    # bronze: every file checked first, then loaded a chunk of days at a time
    for name, path, check, parse in (
        (
            "flights",
            flights_path,
            lambda c, f: check_flights_file(c, f, list(FLIGHTS_SOURCE_SCHEMA)),
            lambda c, f, d: read_flights_file(c, f, d, list(FLIGHTS_SOURCE_SCHEMA), now, RUN),
        ),
        ("weather", weather_path, check_jsonl_file, lambda c, f, d: read_jsonl_file(c, f, d, now, RUN)),
    ):
        sizes = {}
        for day in days:
            content = sources.landing.read_bytes(path(day))
            check(content, path(day))
            sizes[day] = len(content) // BYTES_PER_ROW
        for chunk in chunks(days, sizes):
            frames = [parse(sources.landing.read_bytes(path(day)), path(day), day) for day in chunk]
            lake.replace_dates(
                f"bronze/{name}", pl.concat(frames, how="diagonal_relaxed"), "_landing_date", chunk, RUN
            )
    for table in REFERENCE_SOURCE_SCHEMAS:
        columns, rows = sources.read_table(table)
        frame = reference_frame(rows, columns, table, table_checksum(rows, columns), now, RUN)
        lake.overwrite(f"bronze/{table}", frame, RUN)

    # silver
    for table in REFERENCE_SOURCE_SCHEMAS:
        cleaned = clean_reference(table, lake.scan(f"bronze/{table}"))
        lake.merge(f"silver/{table}", cleaned.rows, REFERENCE_KEYS[table], RUN)
    zones = airport_zones(lake.scan("silver/airports").select("faa", "tzone").collect())
    quarantined, written = [], 0
    for name, date_column, clean in (
        ("flights", "flight_date", lambda source: clean_flights(source, zones)),
        ("weather", "observation_date", clean_weather),
    ):
        bronze = lake.scan(f"bronze/{name}")
        for chunk in chunks(days, rows_per_day(bronze, "_landing_date", days)):
            cleaned = clean(bronze.filter(pl.col("_landing_date").is_in(chunk)))
            lake.replace_dates(f"silver/{name}", cleaned.rows, date_column, chunk, RUN)
            quarantined.append(cleaned.quarantine)
            written += cleaned.rows.height if name == "flights" else 0
    lake.replace_where(
        "silver/quarantine", pl.concat(quarantined), "TRUE", ["source_table", "partition_date"], RUN
    )

    # gold: features, the daily mart and departures a chunk at a time; the whole-history marts over departures
    silver = lake.scan("silver/flights")
    runs = chunks(days, rows_per_day(silver, "flight_date", days))
    with warehouse.get_connection() as connection:
        for chunk in runs:
            first, last = chunk[0], chunk[-1]
            features = features_of_days(lake, first, last, zones)
            warehouse.replace_days(connection, "gold.flight_features", features, chunk)
            flights = silver.filter(pl.col("flight_date").is_between(first, last)).collect()
            connection.register("flights", flights.to_arrow())
            daily = connection.sql(marts.DAILY_AIRPORT_PERFORMANCE).pl()
            warehouse.replace_days(connection, "gold.daily_airport_performance", daily, chunk)
            connection.unregister("flights")
            departed = departures_of_days(lake, first, last)
            warehouse.replace_days(connection, "gold.departures", departed, chunk)
        connection.execute("CREATE TEMP VIEW flights AS SELECT * FROM gold.departures")
        for name, sql in (
            ("carrier_monthly_performance", marts.CARRIER_MONTHLY_PERFORMANCE),
            ("route_performance", marts.ROUTE_PERFORMANCE),
            ("weather_delay_impact", marts.WEATHER_DELAY_IMPACT),
        ):
            warehouse.replace_rows(connection, f"gold.{name}", connection.sql(sql).pl(), "TRUE", [])
    return written


def main() -> None:
    args = range_arguments(__doc__)
    print(f"{build(args.data, args.state, args.first, args.through):,} flights to gold")


if __name__ == "__main__":
    main()
