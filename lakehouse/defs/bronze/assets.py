"""Bronze: each landed file and source table kept as delivered, one Delta table per source.

A day's partition is replaced only when its file changed (its checksum differs from the one already
loaded), so re-running or re-delivering an identical file changes nothing, and a corrected re-delivery
replaces exactly its own day. A feed that stops delivering is flagged by the tables' freshness policy:
a daily table not refreshed for longer than a day and a bit turns stale in the UI without any run.
"""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl

from lakehouse import catalog
from lakehouse.catalog import Table
from lakehouse.defs.bronze.checks import landing_complete
from lakehouse.lib.bronze import LandingFileError, raise_unreadable, reference_frame, table_checksum
from lakehouse.lib.contracts import REFERENCE_SOURCE_SCHEMAS
from lakehouse.lib.files import sha256
from lakehouse.metadata import Progress, delta_metadata
from lakehouse.partitions import Chunking, daily_partitions, partition_dates
from lakehouse.reads import loaded_checksums
from lakehouse.resources import DeltaWrite, LakeStorage, SourceSystems

# For chunking a run's files by the rows they hold, before reading them (flights run about 100 bytes).
BYTES_PER_ROW = 100
# A daily feed that has not delivered for longer than a day and a bit has stalled.
FEED_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=26), warn_window=timedelta(hours=25)
)


def _parse(table: Table, sources: SourceSystems, path: str, day: date, now: datetime, run_id: str):
    landing, tolerance = sources.landing, sources.tolerance
    return table.feed.parse(
        landing.read_bytes(path), landing.describe(path), day, now, run_id, tolerance=tolerance
    )


def changed_days(
    table: Table, sources: SourceSystems, paths: dict[date, str], loaded: dict[date, str]
) -> list:
    """The days whose landed file differs from what bronze loaded, every one of them checked first: the
    unreadable files of a range are all named at once, and none of the range is written. Each file is
    read once here (its content is not kept: a chunk's files are read again when it loads)."""
    landing, changed, unreadable = sources.landing, [], []
    for day, path in paths.items():
        content = landing.read_bytes(path)
        if loaded.get(day) == sha256(content):
            continue
        changed.append(day)
        try:
            table.feed.check(content, landing.describe(path), tolerance=sources.tolerance)
        except LandingFileError as error:
            unreadable.append(error)
    raise_unreadable(unreadable)
    return changed


def daily_file_asset(table: Table) -> dg.AssetsDefinition:
    """A bronze asset loading one landing file per day of its feed (``<folder>/YYYY-MM-DD<suffix>``)."""

    @table.asset(partitions_def=daily_partitions(), freshness_policy=FEED_FRESHNESS, code_version="1")
    def _asset(
        context: dg.AssetExecutionContext, sources: SourceSystems, lake: LakeStorage, chunking: Chunking
    ) -> dg.MaterializeResult:
        landing, feed, run_id = sources.landing, table.feed, context.run.run_id
        dates = partition_dates(context)
        landed = {f.path: f for f in landing.list(feed.folder, feed.suffix)}
        paths = {day: feed.path(day) for day in dates if feed.path(day) in landed}
        missing = [feed.path(day) for day in dates if day not in paths]
        loaded = loaded_checksums(lake, table, dates)
        now = datetime.now(UTC)

        changed = changed_days(table, sources, paths, loaded)
        # A day that was loaded and whose file is now gone is left as loaded: deletions are not deliveries.
        empty, rows, write, frame = [], 0, None, None
        sizes = {day: landed[paths[day]].size // BYTES_PER_ROW for day in changed}
        chunks = chunking.chunks(changed, sizes)
        progress = Progress(context.log.info, f"{table.path}: loading", len(chunks))
        for number, chunk in enumerate(chunks, start=1):
            frames = [_parse(table, sources, paths[day], day, now, run_id) for day in chunk]
            empty += [paths[day] for day, part in zip(chunk, frames, strict=True) if part.is_empty()]
            frame = pl.concat(frames, how="diagonal_relaxed")
            write = lake.replace_dates(
                table.path, frame, table.partition_column, chunk, run_id, schema_merge=True
            )
            rows += frame.height
            progress.chunk(number, rows)
        metadata = {
            "files_loaded": len(changed),
            "files_unchanged": len(paths) - len(changed),
            "files_missing": len(missing),
        }
        if write is not None:
            total = lake.scan(table.path).select(pl.len()).collect().item()
            metadata |= delta_metadata(DeltaWrite(write.uri, write.version, rows), frame, total)
            version = write.version
        else:
            version = lake.version(table.path)
            metadata |= {"dagster/row_count": 0, "delta_version": version if version is not None else -1}
        context.log.info(
            f"{table.path}: loaded {len(changed)} file(s), {len(paths) - len(changed)} unchanged, "
            f"{len(missing)} missing"
        )
        return dg.MaterializeResult(
            metadata=metadata,
            data_version=dg.DataVersion(str(version)) if version is not None else None,
            check_results=[landing_complete(table, missing, empty)],
        )

    return _asset


def reference_asset(table: Table) -> dg.AssetsDefinition:
    """A bronze snapshot of one operational table, reloaded only when its content changed."""
    [source] = table.upstream

    @table.asset(code_version="1")
    def _asset(
        context: dg.AssetExecutionContext, sources: SourceSystems, lake: LakeStorage
    ) -> dg.MaterializeResult:
        columns, rows = sources.read_table(source.name)
        missing = [c for c in REFERENCE_SOURCE_SCHEMAS[source.name] if c not in columns]
        if missing:
            raise ValueError(
                f"operational table {source.name} in {sources.database_path} lacks column(s) "
                f"{', '.join(missing)}"
            )
        checksum = table_checksum(rows, columns)
        current = lake.table(table.path)
        if current is not None:
            loaded = lake.scan(table.path).select("_source_sha256").unique().collect()["_source_sha256"]
            if loaded.to_list() == [checksum]:
                context.log.info(f"{table.path}: unchanged since version {current.version()}")
                return dg.MaterializeResult(
                    metadata={
                        "dagster/row_count": len(rows),
                        "delta_version": current.version(),
                        "unchanged": True,
                    },
                    data_version=dg.DataVersion(str(current.version())),
                )
        frame = reference_frame(rows, columns, source.name, checksum, datetime.now(UTC), context.run.run_id)
        write = lake.overwrite(table.path, frame, context.run.run_id)
        return dg.MaterializeResult(
            metadata=delta_metadata(write, frame) | {"unchanged": False},
            data_version=dg.DataVersion(str(write.version)),
        )

    return _asset


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[
            daily_file_asset(table) if table.daily else reference_asset(table)
            for table in catalog.layer("bronze")
        ]
    )
