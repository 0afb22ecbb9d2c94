"""Bronze: each landed file and source table kept as delivered, one Delta table per source.

A day's partition is replaced only when its file changed (its checksum differs from the one
already loaded), so re-running or re-delivering an identical file changes nothing, and a corrected
re-delivery replaces exactly its own day.
"""

from collections.abc import Callable
from datetime import UTC, date, datetime

import dagster as dg
import polars as pl

from lakehouse.bronze.checks import landing_check_specs, landing_complete, landing_fresh
from lakehouse.lib.bronze import (
    LandingFileError,
    check_flights_file,
    check_jsonl_file,
    raise_unreadable,
    read_flights_file,
    read_jsonl_file,
    reference_frame,
    table_checksum,
)
from lakehouse.lib.contracts import FLIGHTS_SOURCE_SCHEMA, REFERENCE_SOURCE_SCHEMAS
from lakehouse.lib.files import sha256
from lakehouse.metadata import delta_metadata
from lakehouse.partitions import chunks, daily_partitions, partition_dates
from lakehouse.resources import DeltaWrite, LakeStorage, SourceSystems
from lakehouse.sources.assets import flights_files, reference_tables, weather_files

# For chunking a run's files by the rows they hold, before reading them (flights run about 100 bytes).
BYTES_PER_ROW = 100

Checker = Callable[[bytes, str], None]
Parser = Callable[[bytes, str, date, datetime, str], pl.DataFrame]


def _loaded_checksums(lake: LakeStorage, table: str, dates: list[date]) -> dict[date, str]:
    if lake.table(table) is None:
        return {}
    loaded = (
        lake.scan(table)
        .filter(pl.col("_landing_date").is_in(dates))
        .select("_landing_date", "_source_sha256")
        .unique()
        .collect()
    )
    return dict(zip(loaded["_landing_date"], loaded["_source_sha256"], strict=True))


def daily_file_asset(
    name: str, source: dg.AssetSpec, suffix: str, check: Checker, parse: Parser, description: str
):
    """A bronze asset loading one landing file per day from ``<name>/YYYY-MM-DD<suffix>``."""
    key = dg.AssetKey(["bronze", name])

    @dg.asset(
        key=key,
        description=description,
        group_name="bronze",
        kinds={"deltalake", "polars"},
        deps=[source],
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=landing_check_specs(key),
        code_version="1",
    )
    def _asset(
        context: dg.AssetExecutionContext, sources: SourceSystems, lake: LakeStorage
    ) -> dg.MaterializeResult:
        landing = sources.landing
        dates = partition_dates(context)
        landed = {f.path: f for f in landing.list(name, suffix)}
        paths = {day: f"{name}/{day.isoformat()}{suffix}" for day in dates}
        missing = [path for path in paths.values() if path not in landed]
        loaded = _loaded_checksums(lake, f"bronze/{name}", dates)
        now = datetime.now(UTC)

        # First every file of the range is read and checked, so that unreadable ones are all named at
        # once and none of the range is written; then the changed days are loaded a chunk at a time.
        checksums, unchanged, unreadable = {}, [], []
        for day, path in paths.items():
            if path not in landed:
                continue
            content = landing.read_bytes(path)
            checksum = sha256(content)
            if loaded.get(day) == checksum:
                unchanged.append(day)
                continue
            try:
                check(content, landing.describe(path))
            except LandingFileError as error:
                unreadable.append(error)
            checksums[day] = checksum
        raise_unreadable(unreadable)
        changed = list(checksums)
        # A day that was loaded and whose file is now gone is left as loaded: deletions are not deliveries.
        empty, rows, write, frame = [], 0, None, None
        for chunk in chunks(changed, {day: landed[paths[day]].size // BYTES_PER_ROW for day in changed}):
            frames = [
                parse(
                    landing.read_bytes(paths[day]), landing.describe(paths[day]), day, now, context.run.run_id
                )
                for day in chunk
            ]
            empty += [paths[day] for day, part in zip(chunk, frames, strict=True) if part.is_empty()]
            frame = pl.concat(frames, how="diagonal_relaxed")
            write = lake.replace_dates(
                f"bronze/{name}", frame, "_landing_date", chunk, context.run.run_id, schema_merge=True
            )
            rows += frame.height
        metadata = {
            "files_loaded": len(changed),
            "files_unchanged": len(unchanged),
            "files_missing": len(missing),
        }
        if write is not None:
            metadata |= delta_metadata(DeltaWrite(write.uri, write.version, rows), frame)
            version = write.version
        else:
            version = lake.version(f"bronze/{name}")
            metadata |= {"dagster/row_count": 0, "delta_version": version if version is not None else -1}
        context.log.info(
            f"{name}: loaded {len(changed)} file(s), {len(unchanged)} unchanged, {len(missing)} missing"
        )
        return dg.MaterializeResult(
            metadata=metadata,
            data_version=dg.DataVersion(str(version)) if version is not None else None,
            check_results=[
                landing_complete(key, missing, empty),
                landing_fresh(key, list(landed.values()), now),
            ],
        )

    return _asset


def _read_flights(content: bytes, file: str, day: date, loaded_at: datetime, run_id: str) -> pl.DataFrame:
    return read_flights_file(content, file, day, list(FLIGHTS_SOURCE_SCHEMA), loaded_at, run_id)


flights = daily_file_asset(
    "flights",
    flights_files,
    ".csv",
    lambda content, file: check_flights_file(content, file, list(FLIGHTS_SOURCE_SCHEMA)),
    _read_flights,
    "Every row of each day's flights file as delivered: all values as strings (`NA` kept), plus the "
    "source file, line, checksum, load time and run id. Partitioned by landing day.",
)

weather = daily_file_asset(
    "weather",
    weather_files,
    ".jsonl",
    check_jsonl_file,
    read_jsonl_file,
    "Every line of each day's weather file as delivered (`_raw`, the JSON text), plus the source "
    "file, line, checksum, load time and run id. Parsing waits for silver, so one broken record "
    "cannot fail a day.",
)


def reference_asset(source: dg.AssetSpec) -> dg.AssetsDefinition:
    """A bronze snapshot of one operational table, reloaded only when its content changed."""
    table = source.key.path[-1]
    key = dg.AssetKey(["bronze", table])

    @dg.asset(
        key=key,
        description=f"The operational `{table}` table as delivered (values as strings), with lineage "
        "columns. Replaced as a whole when the source table changes.",
        group_name="bronze",
        kinds={"deltalake", "sqlite"},
        deps=[source],
        code_version="1",
    )
    def _asset(
        context: dg.AssetExecutionContext, sources: SourceSystems, lake: LakeStorage
    ) -> dg.MaterializeResult:
        columns, rows = sources.read_table(table)
        expected = list(REFERENCE_SOURCE_SCHEMAS[table])
        missing = [c for c in expected if c not in columns]
        if missing:
            raise ValueError(
                f"operational table {table} in {sources.database_path} lacks column(s) {', '.join(missing)}"
            )
        checksum = table_checksum(rows, columns)
        current = lake.table(f"bronze/{table}")
        if current is not None:
            loaded = (
                lake.scan(f"bronze/{table}").select("_source_sha256").unique().collect()["_source_sha256"]
            )
            if loaded.to_list() == [checksum]:
                context.log.info(f"{table}: unchanged since version {current.version()}")
                return dg.MaterializeResult(
                    metadata={
                        "dagster/row_count": len(rows),
                        "delta_version": current.version(),
                        "unchanged": True,
                    },
                    data_version=dg.DataVersion(str(current.version())),
                )
        frame = reference_frame(rows, columns, table, checksum, datetime.now(UTC), context.run.run_id)
        write = lake.overwrite(f"bronze/{table}", frame, context.run.run_id)
        return dg.MaterializeResult(
            metadata=delta_metadata(write, frame) | {"unchanged": False},
            data_version=dg.DataVersion(str(write.version)),
        )

    return _asset


planes, airports, airlines = (reference_asset(spec) for spec in reference_tables)
