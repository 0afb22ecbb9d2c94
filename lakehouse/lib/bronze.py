"""Turning landed files and source tables into bronze rows: every value kept as the string that
arrived, plus lineage columns that say where and when each row came from.

A byte-order mark and CR line endings are read past. A file that cannot be read as its format (no
header, a missing column, too few lines that parse, too many malformed ones: ``Tolerance``) raises
``LandingFileError`` naming the file, the line or column and the problem. A malformed line among good
ones (the wrong number of fields, bytes that are not UTF-8) is kept as a bronze row marked
``_malformed``, with its raw text escaped, for silver to quarantine like any bad row; problems inside
values are left for silver too.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, replace
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


@dataclass(frozen=True)
class Tolerance:
    """How much of a delivery may be broken before the file, not its rows, is the problem.

    A file in which fewer than ``min_parsed_share`` of the lines parse in its format (CSV rows with the
    header's fields, JSON values) was not written in that format at all; one in which more than
    ``max_malformed_share`` of the lines are malformed (the wrong number of fields, bytes that are not
    UTF-8) was broken in transfer. Either is unreadable and fails its day before anything is written.
    Below those shares, each malformed line is a bad row like any other, quarantined under its rule.
    """

    min_parsed_share: float = 0.5
    max_malformed_share: float = 0.1


INVALID_ENCODING = "invalid_encoding"
MALFORMED_ROW = "malformed_row"
BOM = b"\xef\xbb\xbf"
# The columns bronze adds to a malformed line: its rule, what is wrong, and the line as delivered.
MALFORMED_COLUMNS = {"_malformed": pl.String, "_malformed_detail": pl.String, "_raw_line": pl.String}


@dataclass(frozen=True)
class Line:
    """One non-blank line of a delivery, by its number in the file, decoded if it is UTF-8."""

    number: int
    raw: bytes
    text: str | None
    problem: str | None = None  # why the line is malformed, if it is

    @property
    def escaped(self) -> str:
        """The line as delivered, with any byte that is not UTF-8 written as ``\\xNN``."""
        return self.raw.decode("utf-8", "backslashreplace")


def delivered_lines(content: bytes) -> list[Line]:
    """The delivery's non-blank lines, a byte-order mark and CR line endings read past."""
    lines = []
    for number, raw in enumerate(content.removeprefix(BOM).split(b"\n"), start=1):
        raw = raw.removesuffix(b"\r")
        if not raw.strip():
            continue
        try:
            lines.append(Line(number, raw, raw.decode("utf-8")))
        except UnicodeDecodeError as error:
            problem = f"byte {raw[error.start]:#04x} at column {error.start + 1} is not UTF-8"
            lines.append(Line(number, raw, None, problem))
    return lines


def _judge(
    total: int, failing: list[Line], malformed: int, file: str, kind: str, fmt: str, tolerance: Tolerance
) -> None:
    """Raise ``LandingFileError`` if, of ``total`` lines, too few parse as ``kind`` (``failing`` do not:
    the file is not in its format ``fmt``) or too many are ``malformed``, naming the first that do not."""
    examples = "; ".join(
        f'line {line.number}: "{line.escaped[:60]}" ({line.problem})' for line in failing[:3]
    )
    if total and total - len(failing) < tolerance.min_parsed_share * total:
        raise LandingFileError(
            file,
            f"only {total - len(failing)} of {total} lines parse as {kind} (at least "
            f"{tolerance.min_parsed_share:.0%} must), so it is not a {fmt} file; the first that do not: "
            f"{examples}",
        )
    if total and malformed > tolerance.max_malformed_share * total:
        raise LandingFileError(
            file,
            f"{malformed} of {total} lines are malformed (more than the "
            f"{tolerance.max_malformed_share:.0%} tolerated): {examples}",
        )


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


def _csv_fields(line: Line, width: int) -> tuple[list[str | None] | None, Line]:
    """The line's fields (empty ones as null), or None and the line marked malformed."""
    if line.text is None:
        return None, line
    try:
        fields = next(csv.reader([line.text]))
    except csv.Error as error:
        return None, replace(line, problem=f"not a CSV row ({error})")
    if len(fields) != width:
        return None, replace(line, problem=f"{len(fields)} fields where the header has {width}")
    return [value if value != "" else None for value in fields], line


def _flights_header(lines: list[Line], file: str, required_columns: tuple[str, ...]) -> list[str]:
    if not lines:
        raise LandingFileError(file, "the file is empty: expected a header line")
    header = lines[0]
    if header.text is None:
        raise LandingFileError(file, f"the header is not UTF-8: {header.problem}", header.number)
    try:
        columns = next(csv.reader([header.text]))
    except csv.Error as error:
        raise LandingFileError(file, f"the header is not a CSV line ({error})", header.number) from None
    missing = [column for column in required_columns if column not in columns]
    if missing:
        raise LandingFileError(
            file, f"missing column(s) {', '.join(missing)}; the header is {header.text!r}", header.number
        )
    return columns


def _split_flights(
    content: bytes, file: str, required_columns: tuple[str, ...], tolerance: Tolerance
) -> tuple[list[str], list[tuple[int, list[str | None]]], list[Line]]:
    """The header, the well-formed rows with their line numbers, and the malformed lines; raises
    ``LandingFileError`` for a file that cannot be read as the flights CSV."""
    lines = delivered_lines(content)
    header = _flights_header(lines, file, required_columns)
    rows, malformed = [], []
    for line in lines[1:]:
        fields, judged = _csv_fields(line, len(header))
        if fields is None:
            malformed.append(judged)
        else:
            rows.append((line.number, fields))
    kind = f"CSV rows of the header's {len(header)} fields"
    _judge(len(lines) - 1, malformed, len(malformed), file, kind, "CSV", tolerance)
    return header, rows, malformed


def check_flights_file(
    content: bytes,
    file: str,
    required_columns: tuple[str, ...] = tuple(FLIGHTS_SOURCE_SCHEMA),
    tolerance: Tolerance = Tolerance(),
) -> None:
    """Raise ``LandingFileError`` if the flights CSV cannot be read: no header, a missing column, or too
    few well-formed rows (``Tolerance``)."""
    _split_flights(content, file, required_columns, tolerance)


def _malformed_frame(lines: list[Line], kind: str) -> pl.DataFrame:
    """Malformed lines as bronze rows: nothing but their rule, problem, line and raw text."""
    return pl.DataFrame(
        {
            "_source_line": [line.number for line in lines],
            "_malformed": [INVALID_ENCODING if line.text is None else kind for line in lines],
            "_malformed_detail": [line.problem for line in lines],
            "_raw_line": [line.escaped for line in lines],
        },
        schema={"_source_line": pl.Int64, **MALFORMED_COLUMNS},
    )


def read_flights_file(
    content: bytes,
    file: str,
    landing_date: date,
    loaded_at: datetime,
    run_id: str,
    required_columns: tuple[str, ...] = tuple(FLIGHTS_SOURCE_SCHEMA),
    tolerance: Tolerance = Tolerance(),
) -> pl.DataFrame:
    """One day's flights CSV as string columns plus lineage, one row per non-blank line: well-formed rows
    with their values (extra columns kept), malformed ones with ``_malformed``, its detail and the raw
    line, for silver to quarantine."""
    header, rows, malformed = _split_flights(content, file, required_columns, tolerance)
    good = pl.DataFrame(
        [fields for _, fields in rows], schema={c: pl.String for c in header}, orient="row"
    ).with_columns(
        _source_line=pl.Series([number for number, _ in rows], dtype=pl.Int64),
        **{name: pl.lit(None, dtype) for name, dtype in MALFORMED_COLUMNS.items()},
    )
    frame = pl.concat([good, _malformed_frame(malformed, MALFORMED_ROW)], how="diagonal_relaxed")
    return _with_lineage(frame.sort("_source_line"), file, sha256(content), landing_date, loaded_at, run_id)


def _json_lines(content: bytes, file: str, tolerance: Tolerance) -> list[Line]:
    """The delivery's lines, judged as JSON lines; raises ``LandingFileError`` for a file that is not."""
    lines = delivered_lines(content)
    failing = []
    for line in lines:
        if line.text is None:
            failing.append(line)
            continue
        try:
            json.loads(line.text)
        except ValueError as error:
            # Broken, not malformed in transfer: silver quarantines it as malformed JSON.
            failing.append(replace(line, problem=f"not JSON: {error}"))
    malformed = sum(line.text is None for line in lines)
    _judge(len(lines), failing, malformed, file, "JSON", "JSON lines", tolerance)
    return lines


def check_jsonl_file(content: bytes, file: str, tolerance: Tolerance = Tolerance()) -> None:
    """Raise ``LandingFileError`` if the delivery is not JSON lines (records are judged in silver)."""
    _json_lines(content, file, tolerance)


def read_jsonl_file(
    content: bytes,
    file: str,
    landing_date: date,
    loaded_at: datetime,
    run_id: str,
    tolerance: Tolerance = Tolerance(),
) -> pl.DataFrame:
    """One row per non-blank line of a JSON-lines file, the line's text kept whole in ``_raw``.

    Parsing waits for silver, so that one broken record is quarantined instead of failing the day; a line
    that is not UTF-8 keeps its bytes escaped in ``_raw`` and is marked ``invalid_encoding``.
    """
    lines = _json_lines(content, file, tolerance)
    frame = pl.DataFrame(
        {
            "_raw": [line.escaped for line in lines],
            "_source_line": [line.number for line in lines],
            "_malformed": [None if line.text is not None else INVALID_ENCODING for line in lines],
            "_malformed_detail": [line.problem for line in lines],
        },
        schema={
            "_raw": pl.String,
            "_source_line": pl.Int64,
            "_malformed": pl.String,
            "_malformed_detail": pl.String,
        },
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
