"""Silver: typed, cleaned, de-duplicated Delta tables, and ``silver/quarantine`` for every rejected row.

Each silver asset cleans its bronze table with the transform its catalog entry names, writes the clean
rows to its own table and its rejected rows, with the rule they broke, to its own slice of the shared
quarantine (``source_table`` and day). Quarantine writes are recorded as materializations of
``silver/quarantine``, so the UI shows them there too.
"""

from datetime import date

import dagster as dg
import polars as pl
from pydantic import Field

from lakehouse import catalog, quality
from lakehouse.catalog import SILVER_QUARANTINE, Table
from lakehouse.lib.silver import SchemaChangeError
from lakehouse.metadata import Progress, counts_table, delta_metadata, markdown_table
from lakehouse.partitions import Chunking, daily_partitions, partition_dates, rows_per_day
from lakehouse.resources import DeltaWrite, LakeStorage

QUARANTINE_PARTITIONS = ["source_table", "partition_date"]


def write_quarantine(
    context: dg.AssetExecutionContext, lake: LakeStorage, rejected: pl.DataFrame, table: Table, dates
) -> tuple[DeltaWrite, dict[str, int]]:
    """Replace this table's (and these days') slice of the quarantine, and say so in the UI."""
    rejected = rejected.with_columns(source_table=pl.lit(table.name))  # the slice is the table's own
    scope = {"source_table": table.name}
    by_rule = dict(rejected.group_by("rule").len().sort("rule").iter_rows())
    if dates is None and _same_slice(lake, rejected, table):
        # A reference table's unchanged snapshot quarantines the same rows: nothing to write.
        version = lake.version(SILVER_QUARANTINE.path)
        return DeltaWrite(lake.uri(SILVER_QUARANTINE.path), version, 0), by_rule
    if dates is None:
        write = lake.replace_where(
            SILVER_QUARANTINE.path,
            rejected,
            f"source_table = '{table.name}'",
            QUARANTINE_PARTITIONS,
            context.run.run_id,
        )
    else:
        write = lake.replace_dates(
            SILVER_QUARANTINE.path, rejected, "partition_date", dates, context.run.run_id, scope=scope
        )
    context.log_event(
        dg.AssetMaterialization(
            asset_key=SILVER_QUARANTINE.key,
            description=f"{rejected.height:,} {table.name} row(s) quarantined",
            metadata={
                "source_table": table.name,
                "rows_quarantined": rejected.height,
                "rows_by_rule": counts_table(by_rule, "rule"),
                "delta_version": write.version,
                "dagster/uri": write.uri,
            },
        )
    )
    return write, by_rule


def _same_slice(lake: LakeStorage, rejected: pl.DataFrame, table: Table) -> bool:
    """Whether the quarantine holds exactly ``rejected`` as ``table``'s slice already."""
    if lake.table(SILVER_QUARANTINE.path) is None:
        return False
    held = lake.scan(SILVER_QUARANTINE.path).filter(pl.col("source_table") == table.name).collect()
    order = ["source_line", "rule"]
    return held.height == rejected.height and held.select(rejected.columns).sort(order).equals(
        rejected.sort(order)
    )


def quarantined_counts(lake: LakeStorage, table: Table, dates: list[date] | None) -> pl.DataFrame:
    """Quarantined rows of ``table`` per day (or in all, for a table without days)."""
    rows = lake.scan(SILVER_QUARANTINE.path).filter(pl.col("source_table") == table.name)
    if dates is None:
        return partition_ledger(table, rows.select(pl.len()).collect().item())
    return quality.counts_by(
        rows.filter(pl.col("partition_date").is_in(dates)).select("partition_date").collect(),
        "partition_date",
    )


def partition_ledger(table: Table, rows: int) -> pl.DataFrame:
    """A table without days as one partition of the conservation ledger."""
    return pl.DataFrame(
        {"partition": [table.name], "rows": [rows]}, schema={"partition": pl.String, "rows": pl.Int64}
    )


def schema_change_result(table: Table, error: SchemaChangeError) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=table.key,
        check_name=catalog.SCHEMA.name,
        passed=False,
        description=str(error),
        metadata={
            "changed_columns": dg.MetadataValue.md(
                markdown_table(pl.DataFrame(error.changes).with_columns(pl.col("examples").list.join(" | ")))
            )
        },
    )


def reads_of(table: Table, lake: LakeStorage) -> dict[str, pl.LazyFrame]:
    """The silver tables ``table``'s transform reads, by name."""
    return {read.name: lake.scan(read.path) for read in table.reads}


def references_of(table: Table, lake: LakeStorage) -> dict[str, tuple[str, pl.Series]]:
    """For each coded column, its reference table's name and keys (for the referential check)."""
    return {
        column: (reference.name, lake.scan(reference.path).select(key).collect()[key])
        for column, (reference, key) in table.references.items()
    }


def chunk_checks(table: Table, rows: pl.DataFrame) -> list[dg.AssetCheckResult]:
    """The checks of the rows a chunk wrote: its contract and its key."""
    return [
        quality.schema_check(table.key, rows, table.contract),
        quality.unique_check(table.key, rows, list(table.key_columns)),
    ]


def conservation(table: Table, lake: LakeStorage, bronze_rows: dict, dates: list) -> dg.AssetCheckResult:
    """Per day of the run: bronze rows = rows in ``table`` + its quarantined rows."""
    written = lake.scan(table.path).filter(pl.col(table.partition_column).is_in(dates))
    silver = quality.counts_by(written.select(table.partition_column).collect(), table.partition_column)
    quarantined = quarantined_counts(lake, table, dates)
    return quality.conservation_check(table.key, quality.ledger(bronze_rows), silver, quarantined)


class SilverConfig(dg.Config):
    """Whether to clean again the days whose bronze has not changed since silver was built."""

    rebuild: bool = Field(
        default=False,
        description="Clean every day of the run again, even those whose bronze is unchanged (after a change "
        "of the cleaning rules, or a corrected reference table).",
    )


def _stamps(rows: pl.LazyFrame, day: str, loaded_at: str, dates: list[date]) -> dict[date, tuple]:
    """Per day: the rows, and the earliest and latest load time they carry."""
    found = (
        rows.filter(pl.col(day).is_in(dates))
        .group_by(day)
        .agg(pl.len(), pl.col(loaded_at).min().alias("first"), pl.col(loaded_at).max().alias("last"))
        .collect()
    )
    return {row[0]: row[1:] for row in found.iter_rows()}


def up_to_date(table: Table, lake: LakeStorage, dates: list[date]) -> set[date]:
    """The days whose silver and quarantine rows were cleaned from exactly the bronze rows there now: all
    from the same load of the day's file (``_loaded_at``), and every bronze row accounted for."""
    [bronze] = table.upstream
    if lake.table(table.path) is None or lake.table(SILVER_QUARANTINE.path) is None:
        return set()
    loaded = _stamps(lake.scan(bronze.path), bronze.partition_column, "_loaded_at", dates)
    silver = _stamps(lake.scan(table.path), table.partition_column, "_loaded_at", dates)
    quarantine = lake.scan(SILVER_QUARANTINE.path).filter(pl.col("source_table") == table.name)
    rejected = _stamps(quarantine, "partition_date", "loaded_at", dates)
    current = set()
    for day in dates:
        rows, first, last = loaded.get(day, (0, None, None))
        written = [side[day] for side in (silver, rejected) if day in side]
        balanced = rows == sum(count for count, _, _ in written)
        if balanced and all(stamp[1] == first and stamp[2] == last for stamp in written):
            current.add(day)
    return current


def daily_silver_asset(table: Table) -> dg.AssetsDefinition:
    """A daily silver table cleaned from its bronze partition, with schema, key, conservation checks."""
    [bronze] = table.upstream
    deps = [
        bronze.key,
        *(read.key for read in table.reads),
        *(ref.key for ref, _ in table.references.values()),
    ]

    @table.asset(deps=list(dict.fromkeys(deps)), partitions_def=daily_partitions(), code_version="1")
    def _asset(
        context: dg.AssetExecutionContext, config: SilverConfig, lake: LakeStorage, chunking: Chunking
    ):
        dates = partition_dates(context)
        bronze_rows = rows_per_day(lake.scan(bronze.path), bronze.partition_column, dates)
        unchanged = set() if config.rebuild else up_to_date(table, lake, dates)
        todo = [day for day in dates if day not in unchanged]
        reads, relations = reads_of(table, lake), references_of(table, lake)
        checked: dict[str, list[dg.AssetCheckResult]] = {}
        quarantined, found, rows, write, shown = [], [], 0, None, None
        chunks = chunking.chunks(todo, bronze_rows)
        progress = Progress(context.log.info, f"{table.path}: cleaning", len(chunks))
        for number, chunk in enumerate(chunks, start=1):
            source = lake.scan(bronze.path).filter(pl.col(bronze.partition_column).is_in(chunk))
            try:
                cleaned = table.transform(source, reads)
            except SchemaChangeError as error:
                # A changed contract fails the blocking schema check before the chunk is written.
                yield schema_change_result(table, error)
                raise dg.Failure(description=str(error), allow_retries=False) from None
            write = lake.replace_dates(
                table.path, cleaned.rows, table.partition_column, chunk, context.run.run_id
            )
            rows, shown = rows + cleaned.rows.height, cleaned.rows
            quarantined.append(cleaned.quarantine)
            for result in chunk_checks(table, cleaned.rows):
                checked.setdefault(result.check_name, []).append(result)
            found.append(quality.orphans(cleaned.rows, relations))
            progress.chunk(number, rows)
        # The days kept as they were are checked as they are.
        for chunk in chunking.chunks(sorted(unchanged), bronze_rows):
            kept = lake.scan(table.path).filter(pl.col(table.partition_column).is_in(chunk)).collect()
            shown = kept if shown is None else shown
            for result in chunk_checks(table, kept):
                checked.setdefault(result.check_name, []).append(result)
            found.append(quality.orphans(kept, relations))
        rejected = pl.concat(quarantined) if quarantined else None
        metadata = {"days": len(dates), "days_cleaned": len(todo), "days_unchanged": len(unchanged)}
        if rejected is not None:
            quarantine_write, by_rule = write_quarantine(context, lake, rejected, table, todo)
            metadata |= {
                "rows_quarantined": rejected.height,
                "quarantined_by_rule": counts_table(by_rule, "rule"),
                "quarantine_delta_version": quarantine_write.version,
            }
        if unchanged:
            context.log.info(f"{table.path}: {len(unchanged)} day(s) unchanged since bronze was loaded")
        version = write.version if write else lake.version(table.path)
        total = lake.scan(table.path).select(pl.len()).collect().item()
        ledger = conservation(table, lake, bronze_rows, dates)
        # Distinct codes counted once over every chunk, examples from all of them.
        referential = quality.referential_check(table.key, quality.merge_orphans(found), relations)
        yield dg.MaterializeResult(
            metadata=delta_metadata(DeltaWrite(lake.uri(table.path), version, rows), shown, total) | metadata,
            data_version=dg.DataVersion(str(version)),
            check_results=[
                ledger,
                referential,
                *(quality.combine(results) for results in checked.values()),
            ],
        )

    return _asset


def reference_silver_asset(table: Table) -> dg.AssetsDefinition:
    """A silver reference table, made equal to its cleaned bronze snapshot by MERGE on its key."""
    [bronze] = table.upstream

    @table.asset(code_version="1")
    def _asset(context: dg.AssetExecutionContext, lake: LakeStorage) -> dg.MaterializeResult:
        source = lake.scan(bronze.path)
        cleaned = table.transform(source, reads_of(table, lake))
        keys = list(table.key_columns)
        write, merged = lake.merge(table.path, cleaned.rows, keys, context.run.run_id)
        quarantine_write, by_rule = write_quarantine(context, lake, cleaned.quarantine, table, None)
        bronze_rows = source.select(pl.len()).collect().item()
        silver_rows = lake.scan(table.path).select(pl.len()).collect().item()
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
                quality.schema_check(table.key, cleaned.rows, table.contract),
                quality.unique_check(table.key, cleaned.rows, keys),
                quality.conservation_check(
                    table.key,
                    partition_ledger(table, bronze_rows),
                    partition_ledger(table, silver_rows),
                    quarantined_counts(lake, table, None),
                ),
            ],
        )

    return _asset


@dg.definitions
def defs() -> dg.Definitions:
    quarantine = dg.AssetSpec(
        key=SILVER_QUARANTINE.key,
        description=SILVER_QUARANTINE.description,
        group_name=SILVER_QUARANTINE.layer,
        kinds=set(SILVER_QUARANTINE.kinds),
        deps=[upstream.key for upstream in SILVER_QUARANTINE.upstream],
    )
    built = [
        daily_silver_asset(table) if table.daily else reference_silver_asset(table)
        for table in catalog.layer("silver")
        if table.transform is not None
    ]
    return dg.Definitions(assets=[quarantine, *built])
