"""Silver: typed, cleaned, de-duplicated Delta tables, and ``silver/quarantine`` for every rejected row.

Each silver asset writes its clean rows to its own table and its rejected rows, with the rule they
broke, to its own slice of the shared quarantine table (``source_table`` and day). Quarantine writes
are recorded as materializations of ``silver/quarantine``, so the UI shows them there too.
"""

from collections.abc import Callable

import dagster as dg
import pandera.polars as pa
import polars as pl

from lakehouse import quality
from lakehouse.bronze import assets as bronze
from lakehouse.lib.contracts import REFERENCE_KEYS
from lakehouse.lib.silver import (
    FLIGHT_KEY,
    WEATHER_KEY,
    Cleaned,
    SchemaChangeError,
    airport_zones,
    clean_flights,
    clean_reference,
    clean_weather,
)
from lakehouse.metadata import counts_table, delta_metadata, markdown_table
from lakehouse.partitions import chunks, daily_partitions, partition_dates, rows_per_day
from lakehouse.quality import REFERENTIAL_INTEGRITY, SCHEMA, UNIQUE_KEYS
from lakehouse.resources import DeltaWrite, LakeStorage
from lakehouse.silver import checks
from lakehouse.silver.schemas import REFERENCE_MODELS, SilverFlights, SilverWeather

QUARANTINE_KEY = dg.AssetKey(["silver", "quarantine"])
QUARANTINE_TABLE = "silver/quarantine"
QUARANTINE_PARTITIONS = ["source_table", "partition_date"]

quarantine = dg.AssetSpec(
    key=QUARANTINE_KEY,
    description="Every row that silver rejected, with its source table, partition, the rule it broke, a "
    "detail naming the column and value, the raw row as JSON, its source file and line, and the run that "
    "ingested it. Written by each silver asset for its own slice; nothing is dropped silently.",
    group_name="silver",
    kinds={"deltalake"},
    deps=[bronze.flights, bronze.weather, bronze.planes, bronze.airports, bronze.airlines],
)


def write_quarantine(
    context: dg.AssetExecutionContext,
    lake: LakeStorage,
    rejected: pl.DataFrame,
    source_table: str,
    dates: "list | None",
) -> tuple[DeltaWrite, dict[str, int]]:
    """Replace this table's (and these days') slice of the quarantine, and say so in the UI."""
    if dates is None:
        write = lake.replace_where(
            QUARANTINE_TABLE,
            rejected,
            f"source_table = '{source_table}'",
            QUARANTINE_PARTITIONS,
            context.run.run_id,
        )
    else:
        write = lake.replace_dates(
            QUARANTINE_TABLE,
            rejected,
            "partition_date",
            dates,
            context.run.run_id,
            scope={"source_table": source_table},
        )
    by_rule = dict(rejected.group_by("rule").len().sort("rule").iter_rows())
    context.log_event(
        dg.AssetMaterialization(
            asset_key=QUARANTINE_KEY,
            description=f"{rejected.height:,} {source_table} row(s) quarantined",
            metadata={
                "source_table": source_table,
                "rows_quarantined": rejected.height,
                "rows_by_rule": counts_table(by_rule, "rule"),
                "delta_version": write.version,
                "dagster/uri": write.uri,
            },
        )
    )
    return write, by_rule


def _quarantined_counts(lake: LakeStorage, source_table: str, dates: list) -> pl.DataFrame:
    return quality.counts_by(
        lake.scan(QUARANTINE_TABLE)
        .filter((pl.col("source_table") == source_table) & pl.col("partition_date").is_in(dates))
        .select("partition_date")
        .collect(),
        "partition_date",
    )


def schema_change_result(key: dg.AssetKey, error: SchemaChangeError) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=SCHEMA,
        passed=False,
        description=str(error),
        metadata={
            "changed_columns": dg.MetadataValue.md(
                markdown_table(pl.DataFrame(error.changes).with_columns(pl.col("examples").list.join(" | ")))
            )
        },
    )


Cleaner = Callable[[pl.LazyFrame, LakeStorage], Cleaned]


def daily_silver_asset(
    name: str,
    upstream: dg.AssetsDefinition,
    clean: Cleaner,
    date_column: str,
    key_columns: list[str],
    model: type[pa.DataFrameModel],
    references: Callable[[LakeStorage], dict[str, tuple[str, pl.Series]]],
    extra_deps: list,
    description: str,
) -> dg.AssetsDefinition:
    """A daily silver table cleaned from its bronze partition, with schema, key, conservation checks."""
    key = dg.AssetKey(["silver", name])
    table = f"silver/{name}"

    @dg.asset(
        key=key,
        description=description,
        group_name="silver",
        kinds={"deltalake", "polars"},
        deps=[upstream, *extra_deps],
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=checks.check_specs(key, key_columns, references=True),
        code_version="1",
    )
    def _asset(context: dg.AssetExecutionContext, lake: LakeStorage):
        dates = partition_dates(context)
        relations = references(lake)
        checked: dict[str, list[dg.AssetCheckResult]] = {
            SCHEMA: [],
            UNIQUE_KEYS: [],
            REFERENTIAL_INTEGRITY: [],
        }
        quarantined, rows, write, cleaned = [], 0, None, None
        bronze_rows = rows_per_day(lake.scan(f"bronze/{name}"), "_landing_date", dates)
        # A chunk of days at a time, so that a backfill of any length holds one chunk in memory.
        for chunk in chunks(dates, bronze_rows):
            source = lake.scan(f"bronze/{name}").filter(pl.col("_landing_date").is_in(chunk))
            try:
                cleaned = clean(source, lake)
            except SchemaChangeError as error:
                # A changed contract fails the blocking schema check before the chunk is written.
                yield schema_change_result(key, error)
                raise dg.Failure(description=str(error), allow_retries=False) from None
            write = lake.replace_dates(table, cleaned.rows, date_column, chunk, context.run.run_id)
            rows += cleaned.rows.height
            quarantined.append(cleaned.quarantine)
            checked[SCHEMA].append(quality.schema_check(key, cleaned.rows, model))
            checked[UNIQUE_KEYS].append(quality.unique_check(key, cleaned.rows, key_columns))
            checked[REFERENTIAL_INTEGRITY].append(quality.referential_check(key, cleaned.rows, relations))
        rejected = pl.concat(quarantined)
        quarantine_write, by_rule = write_quarantine(context, lake, rejected, name, dates)

        silver_counts = quality.counts_by(
            lake.scan(table).filter(pl.col(date_column).is_in(dates)).select(date_column).collect(),
            date_column,
        )
        yield dg.MaterializeResult(
            metadata=delta_metadata(DeltaWrite(write.uri, write.version, rows), cleaned.rows)
            | {
                "days": len(dates),
                "rows_quarantined": rejected.height,
                "quarantined_by_rule": counts_table(by_rule, "rule"),
                "quarantine_delta_version": quarantine_write.version,
            },
            data_version=dg.DataVersion(str(write.version)),
            check_results=[
                quality.combine(checked[SCHEMA]),
                quality.combine(checked[UNIQUE_KEYS]),
                quality.conservation_check(
                    key, quality.ledger(bronze_rows), silver_counts, _quarantined_counts(lake, name, dates)
                ),
                quality.combine(checked[REFERENTIAL_INTEGRITY]),
            ],
        )

    return _asset


def reference_silver_asset(upstream: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """A silver reference table, made equal to its cleaned bronze snapshot by MERGE on its key."""
    name = upstream.key.path[-1]
    key = dg.AssetKey(["silver", name])
    keys = REFERENCE_KEYS[name]

    @dg.asset(
        key=key,
        description=f"The `{name}` reference table, typed, checked and unique on {', '.join(keys)}; upserted "
        "by MERGE (rows gone from the source are deleted; Delta history keeps them).",
        group_name="silver",
        kinds={"deltalake", "polars"},
        deps=[upstream],
        check_specs=checks.check_specs(key, keys, references=False),
        code_version="1",
    )
    def _asset(context: dg.AssetExecutionContext, lake: LakeStorage) -> dg.MaterializeResult:
        source = lake.scan(f"bronze/{name}")
        cleaned = clean_reference(name, source)
        write, merged = lake.merge(f"silver/{name}", cleaned.rows, keys, context.run.run_id)
        quarantine_write, by_rule = write_quarantine(context, lake, cleaned.quarantine, name, None)
        bronze_rows = source.select(pl.len()).collect().item()
        silver_rows = lake.scan(f"silver/{name}").select(pl.len()).collect().item()
        quarantined = (
            lake.scan(QUARANTINE_TABLE)
            .filter(pl.col("source_table") == name)
            .select(pl.len())
            .collect()
            .item()
        )

        def ledger(rows: int) -> pl.DataFrame:
            return pl.DataFrame(
                {"partition": [name], "rows": [rows]}, schema={"partition": pl.String, "rows": pl.Int64}
            )

        return dg.MaterializeResult(
            metadata=delta_metadata(write, cleaned.rows)
            | {
                "rows_inserted": merged.get("num_target_rows_inserted", 0),
                "rows_updated": merged.get("num_target_rows_updated", 0),
                "rows_deleted": merged.get("num_target_rows_deleted", 0),
                "rows_quarantined": cleaned.quarantine.height,
                "quarantined_by_rule": counts_table(by_rule, "rule"),
                "quarantine_delta_version": quarantine_write.version,
            },
            data_version=dg.DataVersion(str(write.version)),
            check_results=[
                quality.schema_check(key, cleaned.rows, REFERENCE_MODELS[name]),
                quality.unique_check(key, cleaned.rows, keys),
                quality.conservation_check(
                    key, ledger(bronze_rows), ledger(silver_rows), ledger(quarantined)
                ),
            ],
        )

    return _asset


planes, airports, airlines = (
    reference_silver_asset(a) for a in (bronze.planes, bronze.airports, bronze.airlines)
)


def _keys(lake: LakeStorage, table: str, column: str) -> pl.Series:
    return lake.scan(f"silver/{table}").select(column).collect()[column]


def _flight_references(lake: LakeStorage) -> dict[str, tuple[str, pl.Series]]:
    airports = _keys(lake, "airports", "faa")
    return {
        "tailnum": ("planes", _keys(lake, "planes", "tailnum")),
        "dest": ("airports", airports),
        "origin": ("airports", airports),
        "carrier": ("airlines", _keys(lake, "airlines", "carrier")),
    }


def _clean_flights(source: pl.LazyFrame, lake: LakeStorage) -> Cleaned:
    return clean_flights(source, airport_zones(lake.scan("silver/airports").select("faa", "tzone").collect()))


flights = daily_silver_asset(
    "flights",
    bronze.flights,
    _clean_flights,
    "flight_date",
    FLIGHT_KEY,
    SilverFlights,
    _flight_references,
    [airports, planes, airlines],
    "One row per scheduled departure, typed: scheduled and actual departure and arrival as UTC "
    "timestamps (arrivals in the destination's zone, midnight crossings handled), delays in minutes, "
    "`cancelled` for flights that never left and `diverted` for those that left and never arrived. "
    "Unique on date, carrier, flight number and origin. Rows that break a rule are in silver/quarantine.",
)

weather = daily_silver_asset(
    "weather",
    bronze.weather,
    lambda source, lake: clean_weather(source),
    "observation_date",
    WEATHER_KEY,
    SilverWeather,
    lambda lake: {"origin": ("airports", _keys(lake, "airports", "faa"))},
    [airports],
    "Hourly observations per airport, typed, keyed on the UTC hour (local hours repeat when daylight "
    "saving ends). Physically impossible readings, such as a wind speed over 250 mph, are quarantined.",
)
