"""Gold: the point-in-time feature table the model trains on and batch scoring reads.

Features are computed by ``lakehouse.lib.features`` from silver, a chunk of days at a time (each with its
own 29 days of history), handed to DuckDB as Arrow data and written over exactly their own days in one
transaction.
"""

import dagster as dg
import polars as pl

from lakehouse import quality
from lakehouse.catalog import FLIGHT_FEATURES, SILVER_AIRPORTS, SILVER_FLIGHTS, SILVER_PLANES, SILVER_WEATHER
from lakehouse.defs.gold import checks
from lakehouse.lib.features import FEATURE_COLUMNS, HISTORY_LOOKBACK_DAYS
from lakehouse.metadata import Progress, warehouse_metadata
from lakehouse.partitions import (
    FLIGHT_HISTORY,
    PREVIOUS_DAY,
    Chunking,
    daily_partitions,
    partition_dates,
    rows_per_day,
)
from lakehouse.reads import features_of_days
from lakehouse.resources import WAREHOUSE_POOL, LakeStorage, Warehouse


def flight_features_asset() -> dg.AssetsDefinition:
    table = FLIGHT_FEATURES

    @table.asset(
        deps=[
            dg.AssetDep(SILVER_FLIGHTS.key, partition_mapping=FLIGHT_HISTORY),
            dg.AssetDep(SILVER_WEATHER.key, partition_mapping=PREVIOUS_DAY),
            SILVER_PLANES.key,
            SILVER_AIRPORTS.key,
        ],
        partitions_def=daily_partitions(),
        pool=WAREHOUSE_POOL,
        code_version="2",
    )
    def flight_features(
        context: dg.AssetExecutionContext, lake: LakeStorage, warehouse: Warehouse, chunking: Chunking
    ) -> dg.MaterializeResult:
        dates = partition_dates(context)
        checked: dict[str, list[dg.AssetCheckResult]] = {}
        feature_rows, rows, late = [], 0, 0
        silver_rows = rows_per_day(lake.scan(SILVER_FLIGHTS.path), "flight_date", dates)
        runs = chunking.chunks(dates, silver_rows)
        progress = Progress(context.log.info, table.path, len(runs))
        for number, chunk in enumerate(runs, start=1):
            features = features_of_days(lake, chunk[0], chunk[-1])
            with warehouse.get_connection() as connection:
                total = warehouse.replace_days(connection, table.warehouse_table, features, chunk)
            feature_rows.append(checks.rows_by_date(features))
            rows, late = rows + features.height, late + int(features["late"].sum())
            for result in (
                quality.schema_check(table.key, features, table.contract),
                quality.unique_check(table.key, features, list(table.key_columns)),
                checks.label_rate_check(table.key, features),
                checks.null_rates_check(table.key, features, FEATURE_COLUMNS),
            ):
                checked.setdefault(result.check_name, []).append(result)
            progress.chunk(number, rows, "flights")
        matches = checks.matches_silver_check(
            table.key, checks.daily_rows(silver_rows), pl.concat(feature_rows)
        )
        results = [matches, *(quality.combine(results) for results in checked.values())]
        return dg.MaterializeResult(
            metadata=warehouse_metadata(features, table.warehouse_table, rows, total, warehouse.database)
            | {
                "days": len(dates),
                "late_rate": late / rows if rows else float("nan"),
                "history_days_read": HISTORY_LOOKBACK_DAYS * len(runs) + len(dates),
                "chunks": len(runs),
                **quality.failed_checks(results),
            },
            check_results=results,
        )

    return flight_features


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[flight_features_asset()])
