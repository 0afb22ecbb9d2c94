"""Silver: typed, cleaned, de-duplicated Delta tables, and ``silver/quarantine`` for every rejected row.

Each silver asset cleans its bronze table with the transform its catalog entry names, writes the clean
rows to its own table and its rejected rows, with the rule they broke, to its own slice of the shared
quarantine (``source_table`` and day). Quarantine writes are recorded as materializations of
``silver/quarantine``, so the UI shows them there too.
"""

import dagster as dg
import polars as pl
from pydantic import Field

from lakehouse import catalog, quality
from lakehouse.catalog import SILVER_QUARANTINE, Table
from lakehouse.defs.silver.quarantine import (
    conservation,
    partition_ledger,
    quarantined_counts,
    stamps,
    up_to_date,
    write_quarantine,
)
from lakehouse.lib.silver import SchemaChangeError
from lakehouse.metadata import Progress, counts_table, delta_metadata, markdown_table
from lakehouse.partitions import Chunking, daily_partitions, partition_dates
from lakehouse.resources import DeltaWrite, LakeStorage


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


class SilverConfig(dg.Config):
    """Whether to clean again the days whose bronze has not changed since silver was built."""

    rebuild: bool = Field(
        default=False,
        description="Clean every day of the run again, even those whose bronze is unchanged (after a change "
        "of the cleaning rules, or a corrected reference table).",
    )


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
        loaded = stamps(lake.scan(bronze.path), bronze.partition_column, "_loaded_at", dates)
        bronze_rows = {day: rows for day, (rows, _, _) in loaded.items()}
        unchanged = set() if config.rebuild else up_to_date(table, lake, dates, loaded)
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
            # Merging the schema lets a new contract column in (the days not rewritten read it as null).
            write = lake.replace_dates(
                table.path, cleaned.rows, table.partition_column, chunk, context.run.run_id, schema_merge=True
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
