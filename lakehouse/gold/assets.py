"""Gold: DuckDB marts that answer business questions, and the point-in-time feature table.

The daily assets read silver Delta tables lazily with Polars, a chunk of days at a time, hand DuckDB the
Arrow data and replace exactly their own days in one transaction. One of them, ``gold.departures``,
keeps a slim copy of silver in the warehouse: the whole-history marts are SQL over it, so no daily
update re-reads the history from the lake. Every gold asset takes the ``warehouse`` pool, so two runs
never write the warehouse at once.
"""

from datetime import date, timedelta

import dagster as dg
import polars as pl

from lakehouse import quality
from lakehouse.gold import checks
from lakehouse.gold.schemas import (
    CarrierMonthlyPerformance,
    DailyAirportPerformance,
    Departures,
    FlightFeatures,
    RoutePerformance,
    WeatherDelayImpact,
)
from lakehouse.lib import marts
from lakehouse.lib.features import (
    FEATURE_COLUMNS,
    HISTORY_LOOKBACK_DAYS,
    WEATHER_MAX_LAG,
    flight_features,
    latest_observation,
    with_outcomes,
)
from lakehouse.lib.silver import airport_zones
from lakehouse.metadata import column_schema, markdown_table
from lakehouse.partitions import chunks, daily_partitions, partition_dates, rows_per_day
from lakehouse.resources import LakeStorage, Warehouse
from lakehouse.silver import assets as silver

POOL = "warehouse"

# A day's features look back at the flights of the 29 days before it, and at the previous day's weather.
FLIGHT_HISTORY = dg.TimeWindowPartitionMapping(
    start_offset=-HISTORY_LOOKBACK_DAYS, end_offset=0, allow_nonexistent_upstream_partitions=True
)
PREVIOUS_DAY = dg.TimeWindowPartitionMapping(
    start_offset=-1, end_offset=0, allow_nonexistent_upstream_partitions=True
)


def _silver_flights(source: LakeStorage | pl.LazyFrame, first: date, last: date) -> pl.LazyFrame:
    """Silver flights (or a projection of them) of ``first`` through ``last``."""
    flights = source.scan("silver/flights") if isinstance(source, LakeStorage) else source
    return flights.filter(pl.col("flight_date").is_between(first, last))


def _daily_rows(rows: dict[date, int]) -> pl.DataFrame:
    """Rows per day already counted, as ``_rows_by_date`` gives them."""
    return pl.DataFrame(
        {"flight_date": list(rows), "rows": list(rows.values())},
        schema={"flight_date": pl.Date, "rows": pl.Int64},
    )


def _rows_by_date(frame: pl.DataFrame, rows: pl.Expr | None = None) -> pl.DataFrame:
    """Rows per day (or the sum of ``rows`` per day), as the ``matches_silver`` check compares them."""
    return frame.group_by("flight_date").agg(rows=(pl.len() if rows is None else rows).cast(pl.Int64))


def _table_metadata(frame: pl.DataFrame, table: str, total_rows: int, warehouse: Warehouse) -> dict:
    return {
        "dagster/row_count": frame.height,
        "dagster/table_name": table,
        "table_rows_total": total_rows,
        "dagster/uri": warehouse.database,
        "dagster/column_schema": column_schema(frame),
        "preview": dg.MetadataValue.md(markdown_table(frame)),
    }


def features_of_days(lake: LakeStorage, first: date, last: date, zones: dict[str, str]) -> pl.DataFrame:
    """The features of the flights of ``first`` through ``last``, from silver and its 29 days before."""
    history = with_outcomes(_silver_flights(lake, first - timedelta(days=HISTORY_LOOKBACK_DAYS), last))
    weather = lake.scan("silver/weather").filter(
        pl.col("observed_at")
        >= pl.lit(first - timedelta(days=1)).cast(pl.Datetime("us", "UTC")) - WEATHER_MAX_LAG
    )
    return flight_features(
        history.filter(pl.col("flight_date").is_between(first, last)),
        history,
        weather,
        lake.scan("silver/planes"),
        zones,
    ).collect()


@dg.asset(
    key=["gold", "flight_features"],
    group_name="gold",
    kinds={"duckdb", "polars"},
    deps=[
        dg.AssetDep(silver.flights, partition_mapping=FLIGHT_HISTORY),
        dg.AssetDep(silver.weather, partition_mapping=PREVIOUS_DAY),
        silver.planes,
        silver.airports,
    ],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=POOL,
    check_specs=checks.feature_check_specs(dg.AssetKey(["gold", "flight_features"])),
    code_version="2",
)
def flight_features_table(
    context: dg.AssetExecutionContext, lake: LakeStorage, warehouse: Warehouse
) -> dg.MaterializeResult:
    """One row per scheduled flight, keyed by `flight_id`: what was knowable one hour before its scheduled
    departure (schedule, origin weather, the plane, congestion at the origin, the route's and carrier's
    late rate over the 28 days before, the plane's earlier flights that day) and the label `late`
    (arrived 15+ minutes late, cancelled or diverted). Computed by `lakehouse.lib.features`, the same
    functions batch scoring uses."""
    key = context.asset_key
    dates = partition_dates(context)
    zones = airport_zones(lake.scan("silver/airports").select("faa", "tzone").collect())
    checked: dict[str, list[dg.AssetCheckResult]] = {}
    feature_rows, rows, late = [], 0, 0
    silver_rows = rows_per_day(lake.scan("silver/flights"), "flight_date", dates)
    # A chunk of days at a time (each with its own 29 days of history), so memory stays one chunk's.
    runs = chunks(dates, silver_rows)
    for chunk in runs:
        features = features_of_days(lake, chunk[0], chunk[-1], zones)
        with warehouse.get_connection() as connection:
            total = warehouse.replace_days(connection, "gold.flight_features", features, chunk)
        feature_rows.append(_rows_by_date(features))
        rows, late = rows + features.height, late + int(features["late"].sum())
        for result in (
            quality.schema_check(key, features, FlightFeatures),
            quality.unique_check(key, features, ["flight_id"]),
            checks.label_rate_check(key, features),
            checks.null_rates_check(key, features, FEATURE_COLUMNS),
        ):
            checked.setdefault(result.check_name, []).append(result)
    matches = checks.matches_silver_check(key, _daily_rows(silver_rows), pl.concat(feature_rows))
    return dg.MaterializeResult(
        metadata=_table_metadata(features, "gold.flight_features", total, warehouse)
        | {
            "dagster/row_count": rows,
            "days": len(dates),
            "late_rate": late / rows if rows else float("nan"),
            "history_days_read": HISTORY_LOOKBACK_DAYS * len(runs) + len(dates),
            "chunks": len(runs),
        },
        check_results=[matches, *(quality.combine(results) for results in checked.values())],
    )


@dg.asset(
    key=["gold", "daily_airport_performance"],
    group_name="gold",
    kinds={"duckdb"},
    deps=[silver.flights],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=POOL,
    check_specs=checks.mart_check_specs(
        dg.AssetKey(["gold", "daily_airport_performance"]), matches_silver=True
    ),
    code_version="1",
)
def daily_airport_performance(
    context: dg.AssetExecutionContext, lake: LakeStorage, warehouse: Warehouse
) -> dg.MaterializeResult:
    """How did each New York airport do each day? Scheduled, cancelled and diverted flights, the on-time
    rate (arrived under 15 minutes late, US DOT; cancelled and diverted count as not on time), and mean,
    median and 90th-percentile departure and arrival delays, per origin and day."""
    dates = partition_dates(context)
    key = context.asset_key
    schema_checks, silver_rows, mart_rows = [], [], []
    for chunk in chunks(dates, rows_per_day(lake.scan("silver/flights"), "flight_date", dates)):
        flights = _silver_flights(lake, chunk[0], chunk[-1]).collect()
        with warehouse.get_connection() as connection:
            connection.register("flights", flights.to_arrow())
            mart = connection.sql(marts.DAILY_AIRPORT_PERFORMANCE).pl()
            total = warehouse.replace_days(connection, "gold.daily_airport_performance", mart, chunk)
        schema_checks.append(quality.schema_check(key, mart, DailyAirportPerformance))
        silver_rows.append(_rows_by_date(flights))
        mart_rows.append(_rows_by_date(mart, pl.col("scheduled").sum()))
    return dg.MaterializeResult(
        metadata=_table_metadata(mart, "gold.daily_airport_performance", total, warehouse),
        check_results=[
            quality.combine(schema_checks),
            checks.matches_silver_check(key, pl.concat(silver_rows), pl.concat(mart_rows)),
        ],
    )


# The slim copy of silver the whole-history marts aggregate: what they group by and measure, and the
# weather at the origin at the scheduled departure hour.
DEPARTURE_COLUMNS = (
    "flight_id", "flight_date", "carrier", "origin", "dest", "sched_dep_at",
    "dep_delay", "arr_delay", "cancelled", "diverted",
)  # fmt: skip
DEPARTURE_WEATHER = ("visib", "wind_speed", "precip")


def departures_of_days(lake: LakeStorage, first: date, last: date) -> pl.DataFrame:
    """Silver's flights of ``first`` through ``last``, slimmed to ``DEPARTURE_COLUMNS``, each with the
    origin's latest observation at or before its scheduled departure hour (``latest_observation``)."""
    flights = _silver_flights(lake, first, last).select(DEPARTURE_COLUMNS)
    # Flights and weather are both dated by the local day: a flight's latest observation is from its own
    # day or, within the lag after midnight, the day before (the asset's PREVIOUS_DAY dependency).
    weather = lake.scan("silver/weather").filter(
        pl.col("observation_date").is_between(first - timedelta(days=1), last)
    )
    return (
        latest_observation(
            flights.with_columns(_hour=pl.col("sched_dep_at").dt.truncate("1h")),
            weather,
            "_hour",
            {column: column for column in DEPARTURE_WEATHER},
        )
        .drop("_hour", "observed_at")
        .sort("flight_date", "sched_dep_at", "flight_id")
        .collect()
    )


@dg.asset(
    key=["gold", "departures"],
    group_name="gold",
    kinds={"duckdb", "polars"},
    deps=[silver.flights, dg.AssetDep(silver.weather, partition_mapping=PREVIOUS_DAY)],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=POOL,
    check_specs=checks.mart_check_specs(dg.AssetKey(["gold", "departures"]), matches_silver=True),
    code_version="1",
)
def departures(
    context: dg.AssetExecutionContext, lake: LakeStorage, warehouse: Warehouse
) -> dg.MaterializeResult:
    """Every scheduled departure with its outcome (delays, cancelled, diverted) and the weather at the origin
    at its scheduled hour (visibility, wind speed, precipitation), keyed by `flight_id`: a slim copy of
    silver flights in the warehouse, kept day by day. The whole-history marts aggregate it in DuckDB, so a
    new day costs a day's work here and one SQL query there, however long the history."""
    key = context.asset_key
    dates = partition_dates(context)
    silver_rows = rows_per_day(lake.scan("silver/flights"), "flight_date", dates)
    schema_checks, gold_rows, rows, without_weather = [], [], 0, 0
    for chunk in chunks(dates, silver_rows):
        frame = departures_of_days(lake, chunk[0], chunk[-1])
        with warehouse.get_connection() as connection:
            total = warehouse.replace_days(connection, "gold.departures", frame, chunk)
        schema_checks.append(quality.schema_check(key, frame, Departures))
        gold_rows.append(_rows_by_date(frame))
        rows += frame.height
        without_weather += frame.select(pl.all_horizontal(pl.col(DEPARTURE_WEATHER).is_null()).sum()).item()
    return dg.MaterializeResult(
        metadata=_table_metadata(frame, "gold.departures", total, warehouse)
        | {"dagster/row_count": rows, "days": len(dates), "departures_without_weather": without_weather},
        check_results=[
            quality.combine(schema_checks),
            checks.matches_silver_check(key, _daily_rows(silver_rows), pl.concat(gold_rows)),
        ],
    )


def whole_history_mart(name: str, sql: str, model, description: str):
    """A mart over every departure so far: one DuckDB query over ``gold.departures``, rebuilt each time.

    The query runs inside DuckDB, which spills to disk past its memory limit; no history passes through
    Python, and the days a run adds were already written by ``departures``.
    """
    key = dg.AssetKey(["gold", name])

    @dg.asset(
        key=key,
        description=description,
        group_name="gold",
        kinds={"duckdb"},
        deps=[departures],
        pool=POOL,
        check_specs=checks.mart_check_specs(key, matches_silver=False),
        code_version="2",
    )
    def _asset(warehouse: Warehouse) -> dg.MaterializeResult:
        with warehouse.get_connection() as connection:
            if not warehouse.exists(connection, "gold.departures"):
                raise dg.Failure(
                    f"gold.departures does not exist in {warehouse.database}: materialize gold/departures "
                    f"for the days to aggregate, then gold/{name}."
                )
            connection.execute("CREATE OR REPLACE TEMP VIEW flights AS SELECT * FROM gold.departures")
            mart = connection.sql(sql).pl()
            departures_read = connection.execute("SELECT count(*) FROM flights").fetchall()[0][0]
            total = warehouse.replace_rows(connection, f"gold.{name}", mart, "TRUE", [])
        return dg.MaterializeResult(
            metadata=_table_metadata(mart, f"gold.{name}", total, warehouse)
            | {"departures_aggregated": departures_read},
            check_results=[quality.schema_check(key, mart, model)],
        )

    return _asset


carrier_monthly_performance = whole_history_mart(
    "carrier_monthly_performance",
    marts.CARRIER_MONTHLY_PERFORMANCE,
    CarrierMonthlyPerformance,
    "How reliable is each airline, month by month? Scheduled, cancelled and diverted flights, on-time rate "
    "and delay distribution (mean, median, 90th percentile) per carrier and month.",
)

route_performance = whole_history_mart(
    "route_performance",
    marts.ROUTE_PERFORMANCE,
    RoutePerformance,
    "Which routes out of New York are late most often? The same measures per origin and destination, "
    "over every departure so far.",
)

weather_delay_impact = whole_history_mart(
    "weather_delay_impact",
    marts.WEATHER_DELAY_IMPACT,
    WeatherDelayImpact,
    "How much does weather at departure matter? Late and cancellation rates and mean departure delay by "
    "band of visibility, wind speed and precipitation at the origin, at the scheduled departure hour.",
)
