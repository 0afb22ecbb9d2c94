"""What silver holds against bronze: each silver table's slice of the quarantine (written, counted,
left alone when unchanged), the conservation ledger, and the days whose bronze has not changed since
silver was cleaned from it. Plain functions over the lake, used by the silver assets."""

from datetime import date

import dagster as dg
import polars as pl

from lakehouse import quality
from lakehouse.catalog import SILVER_QUARANTINE, Table
from lakehouse.metadata import counts_table
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


def conservation(table: Table, lake: LakeStorage, bronze_rows: dict, dates: list) -> dg.AssetCheckResult:
    """Per day of the run: bronze rows = rows in ``table`` + its quarantined rows."""
    written = lake.scan(table.path).filter(pl.col(table.partition_column).is_in(dates))
    silver = quality.counts_by(written.select(table.partition_column).collect(), table.partition_column)
    quarantined = quarantined_counts(lake, table, dates)
    return quality.conservation_check(table.key, quality.ledger(bronze_rows), silver, quarantined)


def stamps(rows: pl.LazyFrame, day: str, loaded_at: str, dates: list[date]) -> dict[date, tuple]:
    """Per day: the rows, and the earliest and latest load time they carry."""
    found = (
        rows.filter(pl.col(day).is_in(dates))
        .group_by(day)
        .agg(pl.len(), pl.col(loaded_at).min().alias("first"), pl.col(loaded_at).max().alias("last"))
        .collect()
    )
    return {row[0]: row[1:] for row in found.iter_rows()}


def up_to_date(table: Table, lake: LakeStorage, dates: list[date], loaded: dict[date, tuple]) -> set[date]:
    """The days whose silver and quarantine rows were cleaned from exactly the bronze rows there now
    (``loaded``, bronze's ``stamps``): all from the same load of the day's file (``_loaded_at``), and every
    bronze row accounted for. None is, when the stored table lacks a column of the current contract: its
    rows were cleaned by an older version of the rules (a new known-time column, say)."""
    stored = lake.table(table.path)
    if stored is None or lake.table(SILVER_QUARANTINE.path) is None:
        return set()
    if set(table.contract.to_schema().columns) - set(stored.schema().to_arrow().names):
        return set()
    silver = stamps(lake.scan(table.path), table.partition_column, "_loaded_at", dates)
    quarantine = lake.scan(SILVER_QUARANTINE.path).filter(pl.col("source_table") == table.name)
    rejected = stamps(quarantine, "partition_date", "loaded_at", dates)
    current = set()
    for day in dates:
        rows, first, last = loaded.get(day, (0, None, None))
        written = [side[day] for side in (silver, rejected) if day in side]
        balanced = rows == sum(count for count, _, _ in written)
        if balanced and all(stamp[1] == first and stamp[2] == last for stamp in written):
            current.add(day)
    return current
