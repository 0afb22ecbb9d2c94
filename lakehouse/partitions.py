"""The daily partitions that flights, weather and everything built on them share.

The embedded data set covers 2013, so by default the partitions do too. Point the lakehouse at a
live feed by setting ``LAKEHOUSE_START_DATE`` (and leaving ``LAKEHOUSE_END_DATE`` empty for
partitions that keep growing with the calendar).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

import dagster as dg
import polars as pl

from lakehouse.settings import current

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=current().start_date.isoformat(),
    end_date=current().end_date.isoformat() if current().end_date else None,
)


def partition_dates(context: dg.AssetExecutionContext) -> list[date]:
    """The days a (possibly multi-day, single-run backfill) partition run covers."""
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    return [start + timedelta(days=i) for i in range((end - start).days)]


# A run processes its days in chunks, so that a backfill of any length, at any volume, holds one chunk
# in memory at a time: at most CHUNK_DAYS days, and no more rows than CHUNK_ROWS where the rows per day
# are known. (A year of partitions written at once costs delta-rs a writer per day: 4 GiB more at ten
# times the real volume.)
CHUNK_DAYS = 31
CHUNK_ROWS = 500_000


def chunks(dates: list[date], rows: Mapping[date, int] | None = None) -> list[list[date]]:
    """``dates`` in consecutive runs of at most ``CHUNK_DAYS`` days and, given ``rows`` per day, at most
    ``CHUNK_ROWS`` rows (a day with more stands alone)."""
    rows = rows or {}
    found: list[list[date]] = []
    current: list[date] = []
    weight = 0
    for day in dates:
        day_rows = rows.get(day, 0)
        if current and (len(current) == CHUNK_DAYS or weight + day_rows > CHUNK_ROWS):
            found.append(current)
            current, weight = [], 0
        current.append(day)
        weight += day_rows
    return [*found, current] if current else found


def rows_per_day(frame: pl.LazyFrame, column: str, dates: list[date] | None = None) -> dict[date, int]:
    """Rows per day of ``frame`` (a Delta scan: only the date column is read), among ``dates`` if given."""
    if dates is not None:
        frame = frame.filter(pl.col(column).is_in(dates))
    counts = frame.group_by(column).len().collect()
    return dict(zip(counts[column], counts["len"], strict=True))
