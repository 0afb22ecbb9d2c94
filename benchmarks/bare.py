"""The lakehouse's bronze-to-gold work as a bare Python script: the same ``lakehouse.lib`` functions, the
same Delta and DuckDB writes, no Dagster. The orchestration-overhead benchmark times this against
``gold_job``; it is also the Polars side of the pandas comparison.

    python -m benchmarks.bare --data /tmp/bench/n1 --state /tmp/state --from 2013-01-01 --through 2013-12-30
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from lakehouse.gold.assets import flights_with_departure_weather
from lakehouse.lib import marts
from lakehouse.lib.bronze import read_flights_file, read_jsonl_file, reference_frame, table_checksum
from lakehouse.lib.contracts import FLIGHTS_SOURCE_SCHEMA, REFERENCE_KEYS, REFERENCE_SOURCE_SCHEMAS
from lakehouse.lib.features import HISTORY_LOOKBACK_DAYS, WEATHER_MAX_LAG, flight_features, with_outcomes
from lakehouse.lib.silver import airport_zones, clean_flights, clean_reference, clean_weather
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

    # bronze
    for name, path, parse in (
        (
            "flights",
            flights_path,
            lambda c, f, d: read_flights_file(c, f, d, list(FLIGHTS_SOURCE_SCHEMA), now, RUN),
        ),
        ("weather", weather_path, lambda c, f, d: read_jsonl_file(c, f, d, now, RUN)),
    ):
        frames = [parse(sources.landing.read_bytes(path(day)), path(day), day) for day in days]
        lake.replace_dates(
            f"bronze/{name}", pl.concat(frames, how="diagonal_relaxed"), "_landing_date", days, RUN
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
    flights = clean_flights(lake.scan("bronze/flights").filter(pl.col("_landing_date").is_in(days)), zones)
    weather = clean_weather(lake.scan("bronze/weather").filter(pl.col("_landing_date").is_in(days)))
    lake.replace_dates("silver/flights", flights.rows, "flight_date", days, RUN)
    lake.replace_dates("silver/weather", weather.rows, "observation_date", days, RUN)
    quarantine = pl.concat([flights.quarantine, weather.quarantine])
    lake.replace_where("silver/quarantine", quarantine, "TRUE", ["source_table", "partition_date"], RUN)

    # gold
    history = lake.scan("silver/flights").filter(
        pl.col("flight_date").is_between(first - timedelta(days=HISTORY_LOOKBACK_DAYS), last)
    )
    history = with_outcomes(history)
    observations = lake.scan("silver/weather").filter(
        pl.col("observed_at")
        >= pl.lit(first - timedelta(days=1)).cast(pl.Datetime("us", "UTC")) - WEATHER_MAX_LAG
    )
    features = flight_features(
        history.filter(pl.col("flight_date").is_between(first, last)),
        history,
        observations,
        lake.scan("silver/planes"),
        zones,
    ).collect()
    silver_flights = lake.scan("silver/flights").collect()
    with warehouse.get_connection() as connection:
        warehouse.replace_rows(
            connection, "gold.flight_features", features, "flight_date BETWEEN ? AND ?", [first, last]
        )
        connection.register("flights", silver_flights.to_arrow())
        for name, sql in (
            ("daily_airport_performance", marts.DAILY_AIRPORT_PERFORMANCE),
            ("carrier_monthly_performance", marts.CARRIER_MONTHLY_PERFORMANCE),
            ("route_performance", marts.ROUTE_PERFORMANCE),
        ):
            warehouse.replace_rows(connection, f"gold.{name}", connection.sql(sql).pl(), "TRUE", [])
        connection.register(
            "flights_weather", flights_with_departure_weather(silver_flights.lazy(), lake).to_arrow()
        )
        impact = connection.sql(marts.WEATHER_DELAY_IMPACT).pl()
        warehouse.replace_rows(connection, "gold.weather_delay_impact", impact, "TRUE", [])
    return flights.rows.height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with landing/ and sources/")
    parser.add_argument("--state", type=Path, required=True, help="folder for the lake and the warehouse")
    parser.add_argument("--from", dest="first", type=date.fromisoformat, default=date(2013, 1, 1))
    parser.add_argument("--through", type=date.fromisoformat, default=date(2013, 12, 31))
    args = parser.parse_args()
    rows = build(args.data, args.state, args.first, args.through)
    print(f"{rows:,} flights to gold")


if __name__ == "__main__":
    main()
