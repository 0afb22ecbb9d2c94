"""When each fact the features use became known: the rules, decided once, that silver writes as columns
(``outcome_known_at`` of a flight, ``known_at`` of a weather observation) and the features read.

- **The schedule** (which flights, when, by which plane) is known in advance.
- **A departure** is known when it happens: ``dep_at``. A flight that has not departed is known not to
  have departed, and nothing more: when a cancellation was decided is not in the data.
- **The outcome** (``late``: 15 or more minutes late at the gate, cancelled or diverted) is known at
  the arrival for a flight on time (``arr_at``), and at the scheduled arrival plus 15 minutes for every
  late, cancelled or diverted flight: by then it has provably not arrived in time.
- **The hourly weather** row labelled H is built from the reports of H:00 to H:51 (the first report at or
  before minute 51, precipitation summed to :51; nycflights13's ``data-raw/weather.R``): known at H:51.
- Anything is known by the end of the day after the flight's date (UTC), which bounds every lookback.

Arrival times need the destination's zone: nycflights13's ``airports.csv`` has none for four Caribbean
airports, so the project owns them as reference data (``reference/airport_zones.csv``).
"""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import polars as pl

LATE_MINUTES = 15
WEATHER_REPORTED_AFTER = timedelta(minutes=51)
ZONES_FILE = Path(__file__).with_name("reference") / "airport_zones.csv"


def project_zones() -> dict[str, str]:
    """FAA code to IANA zone of the airports the source lists without one."""
    with ZONES_FILE.open(newline="", encoding="utf-8") as rows:
        return {row["faa"]: row["tzone"] for row in csv.DictReader(rows)}


def late() -> pl.Expr:
    """The label: 15 or more minutes late at the gate, cancelled or diverted."""
    return (pl.col("arr_delay") >= LATE_MINUTES) | pl.col("cancelled") | pl.col("diverted")


def outcome_known_at() -> pl.Expr:
    """When the flight's label became a fact (silver's ``outcome_known_at``)."""
    proven_late = pl.col("sched_arr_at") + timedelta(minutes=LATE_MINUTES)
    known = pl.when(late()).then(proven_late).otherwise(pl.col("arr_at"))
    return pl.min_horizontal(known, known_by_cap())


def known_by_cap() -> pl.Expr:
    """The end of the day after the flight's date (UTC): every outcome counts as known by then, and an
    arrival later than that (a delay of more than a day) is not counted among the arrivals at all."""
    return (pl.col("flight_date") + pl.duration(days=2)).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def weather_known_at() -> pl.Expr:
    """When the hourly observation labelled ``observed_at`` was complete (silver's ``known_at``)."""
    return pl.col("observed_at") + WEATHER_REPORTED_AFTER
