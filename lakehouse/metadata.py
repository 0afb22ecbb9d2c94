"""What a materialization shows in the UI: row count, schema, a preview, where the table lives."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
import polars as pl

from lakehouse.resources import DeltaWrite


def markdown_table(frame: pl.DataFrame, max_rows: int = 10) -> str:
    """A small frame as a Markdown table (values shortened so the UI stays readable)."""
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
    if frame.height > max_rows:
        lines.append(f"\n_{max_rows} of {frame.height:,} rows_")
    return "\n".join(lines)


def column_schema(frame: pl.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, str(dtype)) for name, dtype in frame.schema.items()])


def delta_metadata(write: DeltaWrite, frame: pl.DataFrame, preview: bool = True) -> dict[str, object]:
    """The standard metadata of a Delta write: rows, version, location, schema and a preview."""
    metadata: dict[str, object] = {
        "dagster/row_count": write.rows,
        "dagster/uri": write.uri,
        "delta_version": write.version,
        "dagster/column_schema": column_schema(frame),
    }
    if preview:
        metadata["preview"] = dg.MetadataValue.md(markdown_table(frame))
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
        "preview": dg.MetadataValue.md(markdown_table(frame)),
    }


def counts_table(counts: Mapping[str, int], key: str, value: str = "rows") -> dg.MetadataValue:
    """A mapping such as rows by rule as a Markdown table, largest first."""
    frame = pl.DataFrame(
        {key: list(counts), value: list(counts.values())}, schema={key: pl.String, value: pl.Int64}
    )
    return dg.MetadataValue.md(markdown_table(frame.sort(value, descending=True), max_rows=50))
