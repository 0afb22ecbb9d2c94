"""The daily partitions that flights, weather and everything built on them share.

The embedded data set covers 2013, so by default the partitions do too. Point the lakehouse at a
live feed by setting ``LAKEHOUSE_START_DATE`` (and leaving ``LAKEHOUSE_END_DATE`` empty for
partitions that keep growing with the calendar).
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

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
