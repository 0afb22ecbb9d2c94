"""Turning landed files and source tables into bronze rows: every value kept as the string that
arrived, plus lineage columns that say where and when each row came from.

Structural problems that make a file unreadable (not UTF-8, no header, a missing column, a row
with the wrong number of fields) raise ``LandingFileError`` naming the file, the line or column and
the problem. Problems inside values are left for silver to quarantine row by row.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from lakehouse.lib.contracts import FLIGHTS_SOURCE_SCHEMA
from lakehouse.lib.files import sha256

LINEAGE_COLUMNS = ["_source_file", "_source_line", "_source_sha256", "_loaded_at", "_run_id"]


class LandingFileError(ValueError):
    """A landed file that cannot be read at all; the message names the file, where, and why."""

    def __init__(self, file: str, problem: str, line: int | None = None):
        where = f"{file}, line {line}" if line is not None else file
        super().__init__(f"{where}: {problem}")
        self.file, self.line, self.problem = file, line, problem


class UnreadableFilesError(ValueError):
    """Several landed files of one run cannot be read: all are named, so one fix covers the range."""

    def __init__(self, errors: list[LandingFileError]):
        listed = "\n  ".join(str(error) for error in errors)
        super().__init__(f"{len(errors)} landed files cannot be read; nothing was loaded:\n  {listed}")
        self.errors = errors


def raise_unreadable(errors: list[LandingFileError]) -> None:
    """Raise the one error as itself, several as one ``UnreadableFilesError``; nothing if none."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise UnreadableFilesError(errors)


def _decode(content: bytes, file: str) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as error:
        line = content[: error.start].count(b"\n") + 1
        raise LandingFileError(file, f"byte {content[error.start]:#04x} is not UTF-8", line) from None


def _with_lineage(
    frame: pl.DataFrame, file: str, checksum: str, landing_date: date, loaded_at: datetime, run_id: str
) -> pl.DataFrame:
    return frame.with_columns(
        _landing_date=pl.lit(landing_date, pl.Date),
        _source_file=pl.lit(file),
        _source_sha256=pl.lit(checksum),
        _loaded_at=pl.lit(loaded_at, pl.Datetime("us", "UTC")),
        _run_id=pl.lit(run_id),
    )


def check_flights_file(
    content: bytes, file: str, required_columns: tuple[str, ...] = tuple(FLIGHTS_SOURCE_SCHEMA)
) -> None:
    """Raise ``LandingFileError`` if the flights CSV cannot be read: not UTF-8, no header, a missing
    column, or a row whose field count differs from the header's."""
    lines = _decode(content, file).splitlines()
    if not lines or not lines[0].strip():
        raise LandingFileError(file, "the file is empty: expected a header line")
    header = lines[0].split(",")
    missing = [column for column in required_columns if column not in header]
    if missing:
        raise LandingFileError(
            file, f"missing column(s) {', '.join(missing)}; the header is {lines[0]!r}", line=1
        )
    for number, line in enumerate(lines[1:], start=2):
        if line and line.count(",") != len(header) - 1:
            raise LandingFileError(
                file,
                f"{line.count(',') + 1} fields where the header has {len(header)}: {line[:80]!r}",
                number,
            )


def read_flights_file(
    content: bytes,
    file: str,
    landing_date: date,
    loaded_at: datetime,
    run_id: str,
    required_columns: tuple[str, ...] = tuple(FLIGHTS_SOURCE_SCHEMA),
) -> pl.DataFrame:
    """Parse one day's flights CSV into string columns plus lineage; extra columns are kept."""
    check_flights_file(content, file, required_columns)
    frame = pl.read_csv(content, infer_schema=False).with_row_index("_source_line", offset=2)
    frame = frame.with_columns(pl.col("_source_line").cast(pl.Int64))
    return _with_lineage(frame, file, sha256(content), landing_date, loaded_at, run_id)


def check_jsonl_file(content: bytes, file: str) -> None:
    """Raise ``LandingFileError`` if the JSON-lines file is not UTF-8 (records are judged in silver)."""
    _decode(content, file)


def read_jsonl_file(
    content: bytes, file: str, landing_date: date, loaded_at: datetime, run_id: str
) -> pl.DataFrame:
    """One row per non-blank line of a JSON-lines file, the line's text kept whole in ``_raw``.

    Parsing waits for silver, so that one broken record is quarantined instead of failing the day.
    """
    text = _decode(content, file)
    numbered = [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    frame = pl.DataFrame(
        {"_raw": [line for _, line in numbered], "_source_line": [number for number, _ in numbered]},
        schema={"_raw": pl.String, "_source_line": pl.Int64},
    )
    return _with_lineage(frame, file, sha256(content), landing_date, loaded_at, run_id)


def table_checksum(rows: list[tuple], columns: list[str]) -> str:
    """A checksum of a source table's content (rows led by rowid), so an unchanged table is not reloaded."""
    return sha256(repr((columns, rows)).encode())


def reference_frame(
    rows: list[tuple], columns: list[str], table: str, checksum: str, loaded_at: datetime, run_id: str
) -> pl.DataFrame:
    """Rows of a source table as strings (as delivered; SQLite's typing is loose) plus lineage.

    ``rows`` start with the source's rowid, which stands in for a line number.
    """
    as_text = [tuple(None if value is None else str(value) for value in row) for row in rows]
    frame = pl.DataFrame(
        as_text, schema={"_source_line": pl.String, **{c: pl.String for c in columns}}, orient="row"
    )
    return frame.with_columns(
        pl.col("_source_line").cast(pl.Int64),
        _source_file=pl.lit(f"operational.{table}"),
        _source_sha256=pl.lit(checksum),
        _loaded_at=pl.lit(loaded_at, pl.Datetime("us", "UTC")),
        _run_id=pl.lit(run_id),
    )
