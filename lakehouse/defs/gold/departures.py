"""Gold, day by day from silver flights: ``gold.departures`` (a slim copy of silver with the weather at
departure, which the whole-history marts aggregate) and ``gold.daily_airport_performance``.

Both replace exactly their own days in the warehouse, a chunk of days at a time, and take the
``warehouse`` pool, so two runs never write the warehouse at once.
"""

import dagster as dg
import polars as pl

from lakehouse import quality
from lakehouse.catalog import DAILY_AIRPORT_PERFORMANCE, DEPARTURES, SILVER_FLIGHTS, SILVER_WEATHER, Table
from lakehouse.defs.gold import checks
from lakehouse.lib import marts
from lakehouse.metadata import Progress, warehouse_metadata
from lakehouse.partitions import (
    PREVIOUS_DAY,
    Chunking,
    daily_partitions,
    partition_dates,
    rows_per_day,
)
from lakehouse.reads import DEPARTURE_WEATHER, departures_of_days, silver_flights
from lakehouse.resources import WAREHOUSE_POOL, LakeStorage, Warehouse


def _daily_asset(table: Table, deps: list):
    """The decorator of a daily gold asset of ``table``."""
    return table.asset(deps=deps, partitions_def=daily_partitions(), pool=WAREHOUSE_POOL, code_version="1")


def departures_asset() -> dg.AssetsDefinition:
    table = DEPARTURES

    @_daily_asset(
        table, [SILVER_FLIGHTS.key, dg.AssetDep(SILVER_WEATHER.key, partition_mapping=PREVIOUS_DAY)]
    )
    def departures(
        context: dg.AssetExecutionContext, lake: LakeStorage, warehouse: Warehouse, chunking: Chunking
    ) -> dg.MaterializeResult:
        dates = partition_dates(context)
        silver_rows = rows_per_day(lake.scan(SILVER_FLIGHTS.path), "flight_date", dates)
        schema_checks, gold_rows, rows, without_weather = [], [], 0, 0
        chunks = chunking.chunks(dates, silver_rows)
        progress = Progress(context.log.info, table.path, len(chunks))
        for number, chunk in enumerate(chunks, start=1):
            frame = departures_of_days(lake, chunk[0], chunk[-1])
            with warehouse.get_connection() as connection:
                total = warehouse.replace_days(connection, table.warehouse_table, frame, chunk)
            schema_checks.append(quality.schema_check(table.key, frame, table.contract))
            gold_rows.append(checks.rows_by_date(frame))
            rows += frame.height
            without_weather += frame.select(
                pl.all_horizontal(pl.col(DEPARTURE_WEATHER).is_null()).sum()
            ).item()
            progress.chunk(number, rows, "departures")
        return dg.MaterializeResult(
            metadata=warehouse_metadata(frame, table.warehouse_table, rows, total, warehouse.database)
            | {"days": len(dates), "departures_without_weather": without_weather},
            check_results=[
                quality.combine(schema_checks),
                checks.matches_silver_check(table.key, checks.daily_rows(silver_rows), pl.concat(gold_rows)),
            ],
        )

    return departures


def daily_airport_performance_asset() -> dg.AssetsDefinition:
    table = DAILY_AIRPORT_PERFORMANCE

    @_daily_asset(table, [SILVER_FLIGHTS.key])
    def daily_airport_performance(
        context: dg.AssetExecutionContext, lake: LakeStorage, warehouse: Warehouse, chunking: Chunking
    ) -> dg.MaterializeResult:
        dates = partition_dates(context)
        schema_checks, silver_rows, mart_rows, rows = [], [], [], 0
        for chunk in chunking.chunks(
            dates, rows_per_day(lake.scan(SILVER_FLIGHTS.path), "flight_date", dates)
        ):
            flights = silver_flights(lake, chunk[0], chunk[-1]).collect()
            with warehouse.get_connection() as connection:
                connection.register("flights", flights.to_arrow())
                mart = connection.sql(marts.DAILY_AIRPORT_PERFORMANCE).pl()
                total = warehouse.replace_days(connection, table.warehouse_table, mart, chunk)
            schema_checks.append(quality.schema_check(table.key, mart, table.contract))
            silver_rows.append(checks.rows_by_date(flights))
            mart_rows.append(checks.rows_by_date(mart, pl.col("scheduled").sum()))
            rows += mart.height
        return dg.MaterializeResult(
            metadata=warehouse_metadata(mart, table.warehouse_table, rows, total, warehouse.database)
            | {"days": len(dates)},
            check_results=[
                quality.combine(schema_checks),
                checks.matches_silver_check(table.key, pl.concat(silver_rows), pl.concat(mart_rows)),
            ],
        )

    return daily_airport_performance


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[departures_asset(), daily_airport_performance_asset()])
