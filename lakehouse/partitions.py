"""The daily partitions that flights, weather and everything built on them share, and the chunks of days a
run processes at a time.

The embedded data set covers 2013, so by default the partitions do too. Point the lakehouse at a live feed
by setting ``LAKEHOUSE_START_DATE`` (and leaving ``LAKEHOUSE_END_DATE`` empty for partitions that keep
growing with the calendar). The partitions are built from the checked settings when the definitions are
built (``daily_partitions()``), never when a module is imported.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import date, timedelta

import dagster as dg
import polars as pl

from lakehouse.lib.features import HISTORY_LOOKBACK_DAYS
from lakehouse.settings import Settings, current

# A day's features look back at the flights of the 29 days before it, and at the previous day's weather.
FLIGHT_HISTORY = dg.TimeWindowPartitionMapping(
    start_offset=-HISTORY_LOOKBACK_DAYS, end_offset=0, allow_nonexistent_upstream_partitions=True
)
PREVIOUS_DAY = dg.TimeWindowPartitionMapping(
    start_offset=-1, end_offset=0, allow_nonexistent_upstream_partitions=True
)


@functools.cache
def _partitions(start: date, end: date | None) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(
        start_date=start.isoformat(), end_date=end.isoformat() if end else None
    )


def daily_partitions(settings: Settings | None = None) -> dg.DailyPartitionsDefinition:
    """The deployment's daily partitions (one object per date range, shared by every daily asset)."""
    settings = settings or current()
    return _partitions(settings.start_date, settings.end_date)


def partition_dates(context: dg.AssetExecutionContext) -> list[date]:
    """The days a (possibly multi-day, single-run backfill) partition run covers."""
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    return [start + timedelta(days=i) for i in range((end - start).days)]


def rows_per_day(frame: pl.LazyFrame, column: str, dates: list[date] | None = None) -> dict[date, int]:
    """Rows per day of ``frame`` (a Delta scan: only the date column is read), among ``dates`` if given."""
    if dates is not None:
        frame = frame.filter(pl.col(column).is_in(dates))
    counts = frame.group_by(column).len().collect()
    return dict(zip(counts[column], counts["len"], strict=True))


class Chunking(dg.ConfigurableResource):
    """How many days a run holds in memory at once, so that a backfill of any length, at any volume, holds
    one chunk at a time: at most ``max_days`` days, and no more rows than ``max_rows`` where the rows per
    day are known. (A year of partitions written at once costs delta-rs a writer per day: 4 GiB more at
    ten times the real volume.)"""

    max_days: int = 31
    max_rows: int = 500_000

    def chunks(self, dates: list[date], rows: Mapping[date, int] | None = None) -> list[list[date]]:
        """``dates`` in consecutive runs of at most ``max_days`` days and, given ``rows`` per day, at most
        ``max_rows`` rows (a day with more stands alone)."""
        if self.max_days < 1 or self.max_rows < 1:
            raise ValueError(f"chunking needs max_days and max_rows of at least 1, not {self}")
        rows = rows or {}
        found: list[list[date]] = []
        current_chunk: list[date] = []
        weight = 0
        for day in dates:
            day_rows = rows.get(day, 0)
            if current_chunk and (len(current_chunk) == self.max_days or weight + day_rows > self.max_rows):
                found.append(current_chunk)
                current_chunk, weight = [], 0
            current_chunk.append(day)
            weight += day_rows
        return [*found, current_chunk] if current_chunk else found
