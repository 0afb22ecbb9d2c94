"""Reads that several layers share: the features and departures of a range of days from the lake, and
the feature table from the warehouse. Plain functions over the resources, used by the assets, training,
the benchmarks' bare script and the tests alike.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from lakehouse.catalog import (
    FLIGHT_FEATURES,
    SILVER_AIRPORTS,
    SILVER_FLIGHTS,
    SILVER_PLANES,
    SILVER_WEATHER,
    Table,
)
from lakehouse.lib.features import (
    HISTORY_LOOKBACK_DAYS,
    WEATHER_MAX_LAG,
    flight_features,
    latest_observation,
    with_outcomes,
)
from lakehouse.lib.silver import airport_zones
from lakehouse.resources import LakeStorage, Warehouse

# The slim copy of silver the whole-history marts aggregate: what they group by and measure, and the
# weather at the origin at the scheduled departure hour.
DEPARTURE_COLUMNS = (
    "flight_id", "flight_date", "carrier", "origin", "dest", "sched_dep_at",
    "dep_delay", "arr_delay", "cancelled", "diverted",
)  # fmt: skip
DEPARTURE_WEATHER = ("visib", "wind_speed", "precip")


def loaded_checksums(lake: LakeStorage, table: Table, dates: list[date]) -> dict[date, str]:
    """The checksum of the file each of ``dates`` was loaded from, for a daily bronze table."""
    if lake.table(table.path) is None:
        return {}
    loaded = (
        lake.scan(table.path)
        .filter(pl.col(table.partition_column).is_in(dates))
        .select(table.partition_column, "_source_sha256")
        .unique()
        .collect()
    )
    return dict(zip(loaded[table.partition_column], loaded["_source_sha256"], strict=True))


def silver_flights(lake: LakeStorage, first: date, last: date, version: int | None = None) -> pl.LazyFrame:
    """Silver flights of ``first`` through ``last`` (at a Delta ``version`` if given)."""
    return lake.scan(SILVER_FLIGHTS.path, version=version).filter(
        pl.col("flight_date").is_between(first, last)
    )


def features_of_days(
    lake: LakeStorage, first: date, last: date, versions: dict[str, int] | None = None
) -> pl.DataFrame:
    """The features of the flights of ``first`` through ``last``, from silver and its 29 days before (at
    the Delta versions ``versions`` names by table path, else the current ones)."""
    versions = versions or {}

    def scan(table) -> pl.LazyFrame:
        return lake.scan(table.path, version=versions.get(table.path))

    history = with_outcomes(
        scan(SILVER_FLIGHTS).filter(
            pl.col("flight_date").is_between(first - timedelta(days=HISTORY_LOOKBACK_DAYS), last)
        )
    )
    weather = scan(SILVER_WEATHER).filter(
        pl.col("known_at")
        >= pl.lit(first - timedelta(days=1)).cast(pl.Datetime("us", "UTC")) - WEATHER_MAX_LAG
    )
    return flight_features(
        history.filter(pl.col("flight_date").is_between(first, last)),
        history,
        weather,
        scan(SILVER_PLANES),
        airport_zones(scan(SILVER_AIRPORTS)),
    ).collect()


def departures_of_days(lake: LakeStorage, first: date, last: date) -> pl.DataFrame:
    """Silver's flights of ``first`` through ``last``, slimmed to ``DEPARTURE_COLUMNS``, each with the
    origin's latest observation at or before its scheduled departure hour (``latest_observation``)."""
    flights = silver_flights(lake, first, last).select(DEPARTURE_COLUMNS)
    # Flights and weather are both dated by the local day: a flight's latest observation is from its own
    # day or, within the lag after midnight, the day before (the asset's PREVIOUS_DAY dependency).
    weather = lake.scan(SILVER_WEATHER.path).filter(
        pl.col("observation_date").is_between(first - timedelta(days=1), last)
    )
    return (
        latest_observation(
            flights.with_columns(_hour=pl.col("sched_dep_at").dt.truncate("1h")),
            weather,
            "_hour",
            {column: column for column in DEPARTURE_WEATHER},
            time="observed_at",
        )
        .drop("_hour", "observed_at")
        .sort("flight_date", "sched_dep_at", "flight_id")
        .collect()
    )


def read_features(
    warehouse: Warehouse, first: date | None = None, last: date | None = None, every: int = 1
) -> pl.DataFrame:
    """Rows of ``gold.flight_features`` (all, or of the days ``first`` through ``last``), by flight.

    With ``every`` = k, only the 1st, (k+1)th, (2k+1)th... in flight_id order: what Polars'
    ``gather_every(k)`` takes from the same rows sorted by flight_id. DuckDB numbers the flight ids
    alone and the rest never reach Python.
    """
    table = FLIGHT_FEATURES.warehouse_table
    where, days = ("flight_date BETWEEN ? AND ?", [first, last]) if first else ("TRUE", [])
    with warehouse.get_connection() as connection:
        if every == 1:
            rows = connection.sql(f"SELECT * FROM {table} WHERE {where} ORDER BY flight_id", params=days)
        else:
            rows = connection.sql(
                f"""SELECT * FROM {table} WHERE {where} AND flight_id IN (
                    SELECT flight_id FROM (
                        SELECT flight_id, row_number() OVER (ORDER BY flight_id) - 1 AS _row
                        FROM {table} WHERE {where}
                    ) WHERE _row % ? = 0
                ) ORDER BY flight_id""",
                params=[*days, *days, every],
            )
        return rows.pl()


def count_features(warehouse: Warehouse, first: date, last: date) -> int:
    """How many rows ``gold.flight_features`` holds for the days ``first`` through ``last``."""
    with warehouse.get_connection() as connection:
        return connection.execute(
            f"SELECT count(*) FROM {FLIGHT_FEATURES.warehouse_table} WHERE flight_date BETWEEN ? AND ?",
            [first, last],
        ).fetchall()[0][0]


def feature_days(warehouse: Warehouse) -> list[date]:
    """The days ``gold.flight_features`` holds, in order."""
    with warehouse.get_connection() as connection:
        found = connection.execute(
            f"SELECT DISTINCT flight_date FROM {FLIGHT_FEATURES.warehouse_table} ORDER BY 1"
        ).fetchall()
    return [day for (day,) in found]
