"""The daily partitions that flights, weather and everything built on them share.

The embedded data set covers 2013, so by default the partitions do too. Point the lakehouse at a
live feed by setting ``LAKEHOUSE_START_DATE`` (and leaving ``LAKEHOUSE_END_DATE`` empty for
partitions that keep growing with the calendar).
"""

from __future__ import annotations

import os
from datetime import date, timedelta

import dagster as dg

START_DATE = os.environ.get("LAKEHOUSE_START_DATE", "2013-01-01")
END_DATE = os.environ.get("LAKEHOUSE_END_DATE", "2014-01-01") or None

daily_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE, end_date=END_DATE)


def partition_dates(context: dg.AssetExecutionContext) -> list[date]:
    """The days a (possibly multi-day, single-run backfill) partition run covers."""
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    return [start + timedelta(days=i) for i in range((end - start).days)]
