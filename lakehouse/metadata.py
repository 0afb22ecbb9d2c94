"""What a materialization shows in the UI: row count, schema, a preview, where the table lives."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import dagster as dg
import polars as pl

from lakehouse.resources import DeltaWrite

# A preview shows at most this many columns: the first ones, lineage columns (``_source_file``...) aside.
PREVIEW_COLUMNS = 8


def markdown_table(frame: pl.DataFrame, max_rows: int = 10, total: int | None = None) -> str:
    """A small frame as a Markdown table (values shortened so the UI stays readable); ``total`` is the
    number of rows the frame stands for, when it is a sample of more."""
    shown = frame.head(max_rows)

    def cell(value: object) -> str:
        text = "" if value is None else str(value)
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= 60 else f"{text[:57]}..."

    lines = [
        "| " + " | ".join(shown.columns) + " |",
        "|" + "---|" * len(shown.columns),
        *("| " + " | ".join(cell(v) for v in row) + " |" for row in shown.iter_rows()),
    ]
    total = frame.height if total is None else total
    if total > shown.height:
        lines.append(f"\n_{shown.height} of {total:,} rows_")
    return "\n".join(lines)


def column_schema(frame: pl.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, str(dtype)) for name, dtype in frame.schema.items()])


def preview(frame: pl.DataFrame, total: int | None = None) -> dg.MetadataValue:
    """The first rows of a few key columns, as a readable table."""
    columns = [c for c in frame.columns if not c.startswith("_")][:PREVIEW_COLUMNS]
    return dg.MetadataValue.md(markdown_table(frame.select(columns), total=total))


def delta_metadata(
    write: DeltaWrite, frame: pl.DataFrame, total_rows: int | None = None
) -> dict[str, object]:
    """The standard metadata of a Delta write: the rows this run wrote (``dagster/row_count``), the
    table's total when known, its version, location, schema and a preview."""
    metadata: dict[str, object] = {
        "dagster/row_count": write.rows,
        "dagster/uri": write.uri,
        "delta_version": write.version,
        "dagster/column_schema": column_schema(frame),
        "preview": preview(frame, total=max(write.rows, frame.height)),
    }
    if total_rows is not None:
        metadata["table_rows_total"] = total_rows
    return metadata


def warehouse_metadata(frame: pl.DataFrame, table: str, rows: int, total_rows: int, database: str) -> dict:
    """The standard metadata of a warehouse write: the rows this run wrote (``dagster/row_count``), the
    table's total named as such, where it lives, its schema and a preview."""
    return {
        "dagster/row_count": rows,
        "dagster/table_name": table,
        "table_rows_total": total_rows,
        "dagster/uri": database,
        "dagster/column_schema": column_schema(frame),
        "preview": preview(frame, total=max(rows, frame.height)),
    }


def counts_table(counts: Mapping[str, int], key: str, value: str = "rows") -> dg.MetadataValue:
    """A mapping such as rows by rule as a Markdown table, largest first."""
    frame = pl.DataFrame(
        {key: list(counts), value: list(counts.values())}, schema={key: pl.String, value: pl.Int64}
    )
    return dg.MetadataValue.md(markdown_table(frame.sort(value, descending=True), max_rows=50))


class Progress:
    """Progress lines for the run's log while a long step works through its chunks: chunk k of n, rows
    so far and the rate."""

    def __init__(self, log: Callable[[str], None], what: str, chunks: int):
        self.log, self.what, self.chunks = log, what, chunks
        self.started = time.monotonic()

    def chunk(self, number: int, rows: int, unit: str = "rows") -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        self.log(
            f"{self.what}: chunk {number} of {self.chunks} done, {rows:,} {unit} so far "
            f"({rows / elapsed:,.0f} {unit}/s, {elapsed:,.1f} s)"
        )
