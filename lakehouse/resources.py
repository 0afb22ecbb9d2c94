"""Everything outside the process, as configurable resources: the sources, the Delta lake.

Defaults put every store under the project's ``data/`` folder; environment variables move them
(``LAKEHOUSE_LANDING_URI=s3://bucket/landing``, ``LAKEHOUSE_LAKE_URI=s3://bucket/lake``) with no
code change. Object-store credentials are read by deltalake and pyarrow from their usual environment
variables (``AWS_ACCESS_KEY_ID`` and so on) and never appear in configuration.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import mlflow
import polars as pl
from dagster_duckdb import DuckDBResource
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import Field

from lakehouse.lib.bronze import Tolerance
from lakehouse.lib.files import FileStore
from lakehouse.settings import project_data_dir

CHAMPION = "champion"
MLFLOW_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
# The concurrency pool of every writer of the warehouse (limited to one in lakehouse/dagster.yaml).
WAREHOUSE_POOL = "warehouse"


def default_data_dir() -> Path:
    """``$LAKEHOUSE_DATA_DIR``, else the ``data/`` folder beside the package's project."""
    configured = os.environ.get("LAKEHOUSE_DATA_DIR")
    return Path(configured) if configured else project_data_dir()


class SourceSystems(dg.ConfigurableResource):
    """Where the sources deliver: the landing zone of daily files and the operational database."""

    landing_uri: str = Field(description="Folder or object-store prefix the daily files land in.")
    database_path: str = Field(description="Path of the operational SQLite database.")
    min_parsed_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="A delivery in which fewer lines than this share parse in its format is unreadable.",
    )
    max_malformed_share: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="A delivery with more malformed lines (wrong field count, not UTF-8) than this share is "
        "unreadable; below it each is quarantined as a bad row.",
    )

    @property
    def landing(self) -> FileStore:
        return FileStore(self.landing_uri)

    @property
    def tolerance(self) -> Tolerance:
        return Tolerance(self.min_parsed_share, self.max_malformed_share)

    def read_table(self, table: str) -> tuple[list[str], list[tuple]]:
        """All rows of an operational table, each led by its rowid (the source's line number)."""
        if not Path(self.database_path).is_file():
            raise FileNotFoundError(f"the operational database {self.database_path} does not exist")
        uri = f"{Path(self.database_path).resolve().as_uri()}?mode=ro"
        with sqlite3.connect(uri, uri=True) as connection:
            known = {
                row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if table not in known:
                raise LookupError(f"{self.database_path} has no table {table!r} (it has {sorted(known)})")
            cursor = connection.execute(f'SELECT rowid, * FROM "{table}" ORDER BY rowid')
            columns = [d[0] for d in cursor.description][1:]
            return columns, cursor.fetchall()


@dataclass(frozen=True)
class DeltaWrite:
    """What a write did: the table's new version and the rows written."""

    uri: str
    version: int
    rows: int


def consecutive_spans(dates: Sequence[date]) -> list[tuple[date, date]]:
    """``dates`` as (first, last) runs of consecutive days, in order."""
    spans: list[tuple[date, date]] = []
    for day in sorted(set(dates)):
        if spans and (day - spans[-1][1]).days == 1:
            spans[-1] = (spans[-1][0], day)
        else:
            spans.append((day, day))
    return spans


# Each write's own id in its commit's metadata, and how far back in a table's history to look for it.
WRITE_ID = "lakehouse_write_id"
COMMIT_LOOKBACK = 100


class LakeStorage(dg.ConfigurableResource):
    """The Delta lake: one table per asset at ``<root>/<layer>/<name>``, local path or object store.

    Writes replace exactly a slice (a predicate-scoped overwrite) or merge on a key, so running any
    partition twice gives the same table. Every commit carries the Dagster run id in its metadata.
    """

    root: str = Field(description="Local folder or object-store URI (s3://, gs://, az://) of the lake.")
    storage_options: dict[str, str] = Field(
        default_factory=dict, description="deltalake storage options, such as AWS_REGION or AWS_ENDPOINT_URL."
    )
    max_commit_retries: int = Field(
        default=15, description="How often a commit that conflicts with a concurrent writer is retried."
    )

    def uri(self, table: str) -> str:
        return f"{self.root.rstrip('/')}/{table}"

    def _options(self) -> dict[str, str] | None:
        return self.storage_options or None

    def table(self, table: str, version: int | None = None) -> DeltaTable | None:
        """The Delta table, or None if it has not been written yet."""
        try:
            return DeltaTable(self.uri(table), version=version, storage_options=self._options())
        except TableNotFoundError:
            return None

    def version(self, table: str) -> int | None:
        found = self.table(table)
        return None if found is None else found.version()

    def scan(self, table: str, version: int | None = None) -> pl.LazyFrame:
        """A lazy scan of the table (at ``version`` if given); filters push down to the files."""
        found = self.table(table, version=version)
        if found is None:
            raise LookupError(
                f"the Delta table {self.uri(table)} does not exist yet: materialize {table} first"
            )
        # The loaded table, not its URI: scanning by URI would read the transaction log a second time.
        return pl.scan_delta(found)

    def _commit(self, run_id: str, write_id: str, **extra: str) -> CommitProperties:
        return CommitProperties(
            custom_metadata={"dagster_run_id": run_id, WRITE_ID: write_id, **extra},
            max_commit_retries=self.max_commit_retries,
        )

    def _committed(self, table: str, write_id: str, frame: pl.DataFrame) -> DeltaWrite:
        """The version the write ``write_id`` committed when it was made by the table's URI (a write that
        created the table, or replaced a new one whole), found by its id in the table's history.

        deltalake numbers a history from the newest version it saw, which a concurrent commit can move
        between reading that version and listing the commits; a history that reaches the table's first
        commit is numbered from that end instead (a table created just now has a short one)."""
        history = DeltaTable(self.uri(table), storage_options=self._options()).history(COMMIT_LOOKBACK)
        for index, entry in enumerate(history):
            if entry.get(WRITE_ID) == write_id:
                version = len(history) - 1 - index if len(history) < COMMIT_LOOKBACK else entry["version"]
                return DeltaWrite(self.uri(table), version, frame.height)
        raise RuntimeError(
            f"{self.uri(table)}: the write {write_id} is not among the last {COMMIT_LOOKBACK} commits"
        )

    def _created_meanwhile(self, table: str, existed: bool) -> bool:
        """Whether a write that meant to create ``table`` failed because a concurrent writer created it
        first (two runs of a fanned-out backfill writing their first days at once): the write is then
        made again against the table that now exists. Any other failed commit is the caller's to raise."""
        return not existed and self.table(table) is not None

    def replace_where(
        self,
        table: str,
        frame: pl.DataFrame,
        predicate: str,
        partition_by: list[str],
        run_id: str,
        schema_merge: bool = False,
    ) -> DeltaWrite:
        """Replace the rows matching ``predicate`` with ``frame``, atomically, in one commit.

        ``predicate`` should select whole partitions (``partition_by``), so the overwrite rewrites only
        those partitions' files and writers of other partitions do not conflict.
        """
        uri, write_id = self.uri(table), uuid.uuid4().hex
        target = self.table(table)
        exists = target is not None
        try:
            write_deltalake(
                target if exists else uri,
                frame.to_arrow(),
                mode="overwrite" if exists else "append",
                predicate=predicate if exists else None,
                partition_by=partition_by,
                schema_mode="merge" if schema_merge and exists else None,
                storage_options=self._options(),
                commit_properties=self._commit(run_id, write_id, predicate=predicate),
            )
        except CommitFailedError:
            if not self._created_meanwhile(table, exists):
                raise
            return self.replace_where(table, frame, predicate, partition_by, run_id, schema_merge)
        # Written through the loaded table, the table moves to the version this write committed (the
        # table's newest version may already be a concurrent writer's).
        return (
            DeltaWrite(uri, target.version(), frame.height)
            if exists
            else self._committed(table, write_id, frame)
        )

    def replace_dates(
        self,
        table: str,
        frame: pl.DataFrame,
        date_column: str,
        dates: Sequence[date],
        run_id: str,
        scope: dict[str, str] | None = None,
        schema_merge: bool = False,
    ) -> DeltaWrite:
        """Replace the rows of ``dates`` (within ``scope``, a column=value slice) with ``frame``.

        The table is partitioned by the scope's columns and ``date_column``.
        """
        if not dates:
            raise ValueError(f"no dates to replace in {table}")
        outside = frame.filter(~pl.col(date_column).is_in(list(dates)))
        if outside.height:
            raise ValueError(
                f"{outside.height} row(s) for {table} have {date_column} outside the dates being replaced"
            )
        scope = scope or {}
        # The days as ranges of consecutive days, not one IN list: deltalake's check of concurrent commits
        # cannot tell a long IN list of dates from the whole table (two runs writing different months would
        # refuse each other's commits), and tells ranges apart.
        spans = " OR ".join(
            f"({date_column} >= '{first.isoformat()}' AND {date_column} <= '{last.isoformat()}')"
            for first, last in consecutive_spans(dates)
        )
        predicate = " AND ".join([*(f"{k} = '{v}'" for k, v in scope.items()), f"({spans})"])
        return self.replace_where(table, frame, predicate, [*scope, date_column], run_id, schema_merge)

    def overwrite(self, table: str, frame: pl.DataFrame, run_id: str) -> DeltaWrite:
        """Replace the whole table (a snapshot, such as a reference table as delivered)."""
        write_id, target = uuid.uuid4().hex, self.table(table)
        write_deltalake(
            target if target is not None else self.uri(table),
            frame.to_arrow(),
            mode="overwrite",
            schema_mode="overwrite",
            storage_options=self._options(),
            commit_properties=self._commit(run_id, write_id),
        )
        if target is None:
            return self._committed(table, write_id, frame)
        return DeltaWrite(self.uri(table), target.version(), frame.height)

    def append(self, table: str, frame: pl.DataFrame, partition_by: list[str], writer: str) -> DeltaWrite:
        """Append ``frame`` in one commit (a log: rows are only ever added), tagged with ``writer``."""
        uri, write_id = self.uri(table), uuid.uuid4().hex
        target = self.table(table)
        try:
            write_deltalake(
                target if target is not None else uri,
                frame.to_arrow(),
                mode="append",
                partition_by=partition_by,
                storage_options=self._options(),
                commit_properties=self._commit(writer, write_id),
            )
        except CommitFailedError:
            if not self._created_meanwhile(table, target is not None):
                raise
            return self.append(table, frame, partition_by, writer)
        return (
            DeltaWrite(uri, target.version(), frame.height)
            if target is not None
            else self._committed(table, write_id, frame)
        )

    def merge(
        self, table: str, frame: pl.DataFrame, keys: list[str], run_id: str, delete_missing: bool = True
    ) -> tuple[DeltaWrite, dict]:
        """MERGE ``frame`` into the table on ``keys``: update changed rows, insert new ones and (with
        ``delete_missing``, making the table equal to the frame) delete rows the frame lacks.

        Unchanged rows are not rewritten; the returned metrics count what changed.
        """
        uri = self.uri(table)
        target = self.table(table)
        write_id = uuid.uuid4().hex
        if target is None:
            try:
                write_deltalake(
                    uri,
                    frame.to_arrow(),
                    storage_options=self._options(),
                    commit_properties=self._commit(run_id, write_id),
                )
            except CommitFailedError:
                if not self._created_meanwhile(table, False):
                    raise
                return self.merge(table, frame, keys, run_id, delete_missing)
            return self._committed(table, write_id, frame), {"num_target_rows_inserted": frame.height}
        on = " AND ".join(f't."{k}" = s."{k}"' for k in keys)
        # Parenthesised: delta-rs parses `a IS DISTINCT FROM b OR ...` with the OR binding first.
        changed = " OR ".join(f'(t."{c}" IS DISTINCT FROM s."{c}")' for c in frame.columns if c not in keys)
        merger = (
            target.merge(
                frame.to_arrow(),
                predicate=on,
                source_alias="s",
                target_alias="t",
                commit_properties=self._commit(run_id, write_id),
            )
            .when_matched_update_all(predicate=changed or None)
            .when_not_matched_insert_all()
        )
        if delete_missing:
            merger = merger.when_not_matched_by_source_delete()
        metrics = merger.execute()
        # A merge moves its target to the version it committed.
        return DeltaWrite(uri, target.version(), frame.height), metrics


class WarehouseLockedError(RuntimeError):
    """The DuckDB warehouse file is held by another process."""


class Warehouse(DuckDBResource):
    """The DuckDB warehouse of the gold layer.

    dagster-duckdb retries a locked file for about 100 s; this waits at most ``lock_timeout_seconds``
    and then says who holds it. Dagster runs never collide on it: gold assets share the ``warehouse``
    concurrency pool, limited to one in ``lakehouse/dagster.yaml``.
    """

    lock_timeout_seconds: float = Field(
        default=5.0, description="How long to wait for a locked warehouse file."
    )
    connection_config: dict[str, str] = Field(
        default_factory=lambda: {"memory_limit": "2GB"},
        description="DuckDB settings. The memory limit makes large marts spill to disk instead of growing.",
    )

    @contextmanager
    def get_connection(self):
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout_seconds
        while True:
            try:
                connection = duckdb.connect(self.database, config=self.connection_config)
                break
            except duckdb.IOException as error:
                if "lock" not in str(error).lower():
                    raise
                if time.monotonic() >= deadline:
                    raise WarehouseLockedError(
                        f"the warehouse {self.database} is open in another process and stayed locked for "
                        f"{self.lock_timeout_seconds:g} s ({error}). Close that process (a duckdb shell, a "
                        "notebook) and run again."
                    ) from None
                time.sleep(0.2)
        try:
            yield connection
        finally:
            connection.close()

    def exists(self, connection: duckdb.DuckDBPyConnection, table: str) -> bool:
        """Whether ``table`` (``schema.name``) exists in the warehouse."""
        schema, name = table.split(".")
        return bool(
            connection.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                [schema, name],
            ).fetchall()[0][0]
        )

    def replace_days(
        self, connection: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, days: list[date]
    ) -> int:
        """Replace the rows of ``table`` whose ``flight_date`` lies in ``days`` (a run of consecutive
        days, a chunk) with ``frame``, in one transaction; the table's row count afterwards."""
        return self.replace_rows(connection, table, frame, "flight_date BETWEEN ? AND ?", [days[0], days[-1]])

    def replace_rows(
        self, connection: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, where: str, params: list
    ) -> int:
        """In one transaction, delete the rows of ``table`` matching ``where`` and insert ``frame``.

        The table is created from the frame's schema on first write; columns the frame adds are added, and
        columns it no longer has (an older version's features) are dropped.
        Returns the table's row count afterwards.
        """
        schema, name = table.split(".")
        connection.register("_batch", frame.to_arrow())
        try:
            connection.execute("BEGIN TRANSACTION")
            connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            connection.execute(
                f'CREATE TABLE IF NOT EXISTS "{schema}"."{name}" AS SELECT * FROM _batch WITH NO DATA'
            )
            existing = {row[0] for row in connection.execute(f'DESCRIBE "{schema}"."{name}"').fetchall()}
            batch = connection.execute("DESCRIBE _batch").fetchall()
            for column, column_type, *_ in batch:
                if column not in existing:
                    connection.execute(f'ALTER TABLE "{schema}"."{name}" ADD COLUMN "{column}" {column_type}')
            for column in existing - {row[0] for row in batch}:
                connection.execute(f'ALTER TABLE "{schema}"."{name}" DROP COLUMN "{column}"')
            connection.execute(f'DELETE FROM "{schema}"."{name}" WHERE {where}', params)
            connection.execute(f'INSERT INTO "{schema}"."{name}" BY NAME SELECT * FROM _batch')
            connection.execute("COMMIT")
        except Exception:
            connection.execute("ROLLBACK")
            raise
        finally:
            connection.unregister("_batch")
        return connection.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchall()[0][0]


class MlflowTracking(dg.ConfigurableResource):
    """MLflow tracking and model registry.

    A local SQLite store and artifact folder by default; a tracking server (``http://...``) with object-store
    artifacts works the same. The experiment is created with an explicit artifact location, so artifacts
    never land in a stray ``./mlruns``.
    """

    tracking_uri: str = Field(description="MLflow tracking URI (sqlite:///..., http://...).")
    artifact_location: str = Field(description="Where the experiment's artifacts go (folder or s3://...).")
    experiment_name: str = Field(default="flight_delay")
    model_name: str = Field(default="flight_delay", description="Registered model name.")
    ui_url: str = Field(
        default="http://127.0.0.1:5000", description="The MLflow UI that links in the Dagster UI point at."
    )

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    @contextmanager
    def activated(self):
        """Point the mlflow module's fluent API at this store for the duration; yields the experiment id."""
        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        # MLflow exports the URIs it is given to the process environment (for subprocesses); they are put
        # back as they were, or a later process started from this one would track into this store.
        exported = {name: os.environ.get(name) for name in MLFLOW_URI_VARIABLES}
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        try:
            client = self.client()
            experiment = client.get_experiment_by_name(self.experiment_name)
            experiment_id = (
                experiment.experiment_id
                if experiment
                else client.create_experiment(self.experiment_name, artifact_location=self.artifact_location)
            )
            yield experiment_id
        finally:
            mlflow.set_tracking_uri(previous[0])
            mlflow.set_registry_uri(previous[1])
            for name, value in exported.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def champion(self) -> ModelVersion | None:
        """The model version the ``champion`` alias points at, or None before the first promotion."""
        try:
            return self.client().get_model_version_by_alias(self.model_name, CHAMPION)
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise


class OnlineRedis(dg.ConfigurableResource):
    """The online store and event stream of the live path (``lakehouse.online.store``)."""

    url: str = Field(description="Redis URL (redis://host:port/db, rediss://..., unix://...).")

    def store(self):
        from lakehouse.online.store import OnlineStore

        store = OnlineStore(self.url)
        store.check()
        return store
