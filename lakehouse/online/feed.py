"""``lakehouse replay --live``: silver's days sent to the event stream as they happened.

Each fact goes at the time silver says it became known (``lakehouse.lib.live.events_of``), paced ``speed``
times faster than real time (None: as fast as the server takes them). If the store goes away, the feed
waits for it and sends again what it could not confirm: the worker drops a fact it has already seen, by
its event id, so a resend never counts twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl
import redis

from lakehouse.catalog import SILVER_FLIGHTS, SILVER_WEATHER
from lakehouse.lib.features import with_outcomes
from lakehouse.lib.live import events_of
from lakehouse.online.store import OnlineStore, StoreUnavailable
from lakehouse.reads import silver_flights
from lakehouse.resources import LakeStorage

# At full speed, events go in round trips of this many.
MAX_SPEED_BATCH = 500


def live_events(lake: LakeStorage, first: date, through: date) -> pl.DataFrame:
    """The events of silver's days ``first`` through ``through``, in the order they became known."""
    if lake.table(SILVER_FLIGHTS.path) is None:
        raise ValueError(f"the lake at {lake.root} has no {SILVER_FLIGHTS.path}: run `make demo` first")
    flights = with_outcomes(silver_flights(lake, first, through)).collect()
    if flights.is_empty():
        raise ValueError(f"{SILVER_FLIGHTS.path} has no flights from {first} through {through}")
    weather = (
        lake.scan(SILVER_WEATHER.path).filter(pl.col("observation_date").is_between(first, through)).collect()
    )
    return events_of(flights, weather)


def stream_fields(event: dict) -> dict[str, str | int]:
    return {
        "id": event["event_id"],
        "kind": event["kind"],
        "day": event["day"].isoformat(),
        "at": int(event["at"].timestamp() * 1_000_000),
        "payload": event["payload"],
    }


@dataclass(frozen=True)
class FeedReport:
    events: int
    seconds: float
    resends: int


def send_live(
    store: OnlineStore,
    events: pl.DataFrame,
    speed: float | None,
    progress: Callable[[int], None] | None = None,
    retry_seconds: float = 120,
    stop: threading.Event | None = None,
) -> FeedReport:
    """Send ``events`` in order, paced by their times at ``speed`` (None: at full speed), until all are
    sent or ``stop`` is set."""
    rows = events.to_dicts()
    started, resends = time.monotonic(), 0
    first_at = rows[0]["at"] if rows else None
    position = 0
    while position < len(rows) and not (stop is not None and stop.is_set()):
        if speed is None:
            chunk = rows[position : position + MAX_SPEED_BATCH]
        else:
            at = rows[position]["at"]
            due = started + (at - first_at) / timedelta(seconds=1) / speed
            if stop is not None:
                stop.wait(max(0.0, due - time.monotonic()))
            else:
                time.sleep(max(0.0, due - time.monotonic()))
            chunk = [row for row in rows[position : position + MAX_SPEED_BATCH] if row["at"] == at]
        down_since = None
        while True:
            try:
                store.send(stream_fields(row) for row in chunk)
                break
            except (redis.ConnectionError, redis.TimeoutError) as error:
                down_since = down_since or time.monotonic()
                if time.monotonic() - down_since > retry_seconds:
                    raise StoreUnavailable(
                        f"the online store at {store.url} has not answered for {retry_seconds:g} s "
                        f"({error}); {position} of {len(rows)} events were sent"
                    ) from None
                resends += 1
                time.sleep(0.2)
        position += len(chunk)
        if progress is not None:
            progress(len(chunk))
    return FeedReport(position, time.monotonic() - started, resends)
