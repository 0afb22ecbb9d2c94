"""The live path's facts: silver's days as events in the order they became known, the state those events
build, and the features of that state, computed by ``lakehouse.lib.features`` like the batch path's.

An **event** is one fact at the time silver says it became known (``lakehouse.lib.known_times``):

- ``scheduled``: a flight as planned, at the start of its day (local midnight in New York);
- ``weather``: an hourly observation, at its ``known_at``;
- ``departed``: ``dep_at`` and ``dep_delay``, at ``dep_at``;
- ``arrived``: ``arr_at`` and ``arr_delay``, at ``arr_at``;
- ``outcome``: the label ``late`` (cancelled and diverted flights are late), at ``outcome_known_at``.

``OnlineFeatures`` applies events (idempotently: a fact set twice is the same fact) and computes, for the
flights of the live days, the feature vector as of the latest event: ``flight_features`` over the history
of the days before (from the lake, with every fact not yet known masked out) and the live days' facts. A
flight whose prediction time the events have passed has its final vector, as of its prediction time:
the features count only facts known by then, so it equals its ``gold/flight_features`` row.

Plain functions and one class over Polars frames: no Redis here (``lakehouse.online`` moves the events
and vectors), so the proof that online equals offline runs without a server too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from lakehouse.lib.features import (
    FEATURE_COLUMNS,
    HISTORY_LOOKBACK_DAYS,
    WEATHER_MAX_LAG,
    flight_features,
    rolling_features,
)

HOME_ZONE = ZoneInfo("America/New_York")
UTC_US = pl.Datetime("us", "UTC")

# The columns of silver flights (after ``with_outcomes``) that the features read: the schedule, and the
# facts each event kind sets.
SCHEDULE = {
    "flight_id": pl.String,
    "flight_date": pl.Date,
    "carrier": pl.String,
    "flight": pl.Int32,
    "tailnum": pl.String,
    "origin": pl.String,
    "dest": pl.String,
    "distance": pl.Int32,
    "sched_dep_at": UTC_US,
    "sched_arr_at": UTC_US,
}
FACTS = {
    "departed": {"dep_at": UTC_US, "dep_delay": pl.Int32},
    "arrived": {"arr_at": UTC_US, "arr_delay": pl.Int32},
    "outcome": {"outcome_known_at": UTC_US, "late": pl.Boolean},
}
FLIGHT_SCHEMA = SCHEDULE | {name: dtype for facts in FACTS.values() for name, dtype in facts.items()}
WEATHER_SCHEMA = {
    "origin": pl.String,
    "observed_at": UTC_US,
    "known_at": UTC_US,
    "observation_date": pl.Date,
    "temp": pl.Float64,
    "dewp": pl.Float64,
    "humid": pl.Float64,
    "wind_dir": pl.Int32,
    "wind_speed": pl.Float64,
    "wind_gust": pl.Float64,
    "precip": pl.Float64,
    "pressure": pl.Float64,
    "visib": pl.Float64,
}
EVENT_KINDS = ("scheduled", "weather", "departed", "arrived", "outcome")
EVENT_SCHEMA = {"at": UTC_US, "day": pl.Date, "kind": pl.String, "event_id": pl.String, "payload": pl.String}


def day_start(day: date) -> datetime:
    """Midnight at the start of ``day`` in New York, in UTC: when the day's schedule is published."""
    return datetime.combine(day, datetime.min.time(), HOME_ZONE).astimezone(UTC)


def _micros(frame: pl.DataFrame) -> pl.DataFrame:
    """Times as integer microseconds since the epoch and dates as ISO text: JSON that decodes exactly."""
    return frame.with_columns(
        *(pl.col(c).dt.epoch("us") for c, t in frame.schema.items() if isinstance(t, pl.Datetime)),
        *(pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t == pl.Date),
    )


def _events(frame: pl.DataFrame, at: pl.Expr, day: str, kind: str, event_id: pl.Expr) -> pl.DataFrame:
    payload = _micros(frame)
    return pl.DataFrame(
        {
            "at": frame.select(at).to_series(),
            "day": frame[day],
            "kind": [kind] * frame.height,
            "event_id": frame.select(event_id).to_series(),
            "payload": [json.dumps(row, separators=(",", ":")) for row in payload.iter_rows(named=True)],
        },
        schema=EVENT_SCHEMA,
    )


def events_of(flights: pl.DataFrame, weather: pl.DataFrame) -> pl.DataFrame:
    """The events of silver ``flights`` (with the label) and ``weather``, in the order they became known
    (at one time: schedules, weather, departures, arrivals, outcomes; then by event id)."""
    flight_key = pl.col("flight_id")
    parts = [
        _events(
            flights.select(*SCHEDULE),
            pl.col("flight_date").map_elements(day_start, return_dtype=UTC_US),
            "flight_date",
            "scheduled",
            pl.lit("scheduled:") + flight_key,
        )
    ]
    for kind, facts in FACTS.items():
        time = next(iter(facts))
        known = flights.filter(pl.col(time).is_not_null()).select("flight_id", "flight_date", *facts)
        parts.append(_events(known, pl.col(time), "flight_date", kind, pl.lit(f"{kind}:") + flight_key))
    observations = weather.select(*WEATHER_SCHEMA)
    parts.append(
        _events(
            observations,
            pl.col("known_at"),
            "observation_date",
            "weather",
            pl.format("weather:{}:{}", "origin", pl.col("observed_at").dt.epoch("us")),
        )
    )
    rank = {kind: number for number, kind in enumerate(EVENT_KINDS)}
    return (
        pl.concat(parts)
        .with_columns(_rank=pl.col("kind").replace_strict(rank, return_dtype=pl.Int8))
        .sort("at", "_rank", "event_id")
        .drop("_rank")
    )


def _decoded(rows: Iterable[dict], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Payload rows back to typed columns (times from microseconds, dates from ISO text)."""
    times = [c for c, t in schema.items() if isinstance(t, pl.Datetime)]
    dates = [c for c, t in schema.items() if t == pl.Date]
    raw = pl.DataFrame(
        list(rows),
        schema={c: pl.Int64 if c in times else pl.String if c in dates else t for c, t in schema.items()},
    )
    return raw.with_columns(
        *(pl.from_epoch(c, "us").dt.replace_time_zone("UTC") for c in times),
        *(pl.col(c).str.to_date() for c in dates),
    )


def known_as_of(
    flights: pl.LazyFrame, weather: pl.LazyFrame, at: datetime
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """History with every fact not yet known at ``at`` removed: departures, arrivals and outcomes after
    it are unknown (null), observations complete after it are dropped. The schedule stays."""
    moment = pl.lit(at, dtype=UTC_US)
    masked = flights.with_columns(
        *(
            pl.when(pl.col(next(iter(facts))) <= moment).then(pl.col(column)).alias(column)
            for facts in FACTS.values()
            for column in facts
        )
    )
    return masked, weather.filter(pl.col("known_at") <= moment)


class EventError(ValueError):
    """An event that cannot be applied: names the event and what is wrong with it."""


@dataclass
class LiveDay:
    """The facts of one live day: each flight's columns, each observation's, by their keys."""

    flights: dict[str, dict] = field(default_factory=dict)
    weather: dict[str, dict] = field(default_factory=dict)


@dataclass
class Vectors:
    """Feature vectors of flights: ``FEATURE_COLUMNS`` and, per flight, when they hold (``as_of``),
    whether they are final (the events have passed the prediction time) and which history days the store
    lacked (features counted without them)."""

    rows: pl.DataFrame
    clock: datetime
    missing_days: list[date]


class OnlineFeatures:
    """Live state from events, and its features by ``lakehouse.lib.features``. ``planes`` and ``zones``
    are the reference data the batch path reads; ``vectors`` is given the lake's history of the days
    around the live ones (``history_needed``) as the store holds it."""

    def __init__(self, planes: pl.DataFrame, zones: dict[str, str]):
        self.planes, self.zones = planes, zones
        self.days: dict[date, LiveDay] = {}
        self.clock: datetime | None = None
        self.final: set[str] = set()
        # Per live day: the rolling features of its flights, and the facts of earlier days they counted.
        self._rolling: dict[date, tuple[tuple, pl.DataFrame]] = {}

    def apply(self, kind: str, day: date, at: datetime, payload: dict) -> None:
        """Apply one event (idempotent). Raises ``EventError`` for an unknown kind or a payload without
        its key fields."""
        live = self.days.setdefault(day, LiveDay())
        try:
            if kind == "weather":
                live.weather[f"{payload['origin']}:{payload['observed_at']}"] = payload
            elif kind == "scheduled":
                live.flights.setdefault(payload["flight_id"], {}).update(payload)
            elif kind in FACTS:
                live.flights.setdefault(payload["flight_id"], {"flight_id": payload["flight_id"]}).update(
                    {column: payload[column] for column in FACTS[kind]}
                )
            else:
                raise EventError(f"unknown event kind {kind!r} (known: {', '.join(EVENT_KINDS)})")
        except KeyError as missing:
            raise EventError(f"{kind} event of {day} has no field {missing}") from None
        self.clock = at if self.clock is None else max(self.clock, at)

    def live_flights(self) -> pl.DataFrame:
        """The live days' flights, typed as silver's (facts not yet known are null)."""
        rows = [
            {column: flight.get(column) for column in FLIGHT_SCHEMA}
            for live in self.days.values()
            for flight in live.flights.values()
            if "sched_dep_at" in flight  # a fact whose schedule has not come yet waits for it
        ]
        return _decoded(rows, FLIGHT_SCHEMA)

    def live_weather(self) -> pl.DataFrame:
        rows = [
            {column: observation.get(column) for column in WEATHER_SCHEMA}
            for live in self.days.values()
            for observation in live.weather.values()
        ]
        return _decoded(rows, WEATHER_SCHEMA)

    def _rolling_of(self, day: date, live: pl.DataFrame, flights: pl.DataFrame) -> pl.DataFrame:
        """``rolling_features`` of ``day``'s flights, computed again only when a flight of the day or a
        fact of an earlier day has come since (in the early hours, the day before's last outcomes)."""
        scheduled = live.filter(pl.col("flight_date") == day)
        version = (scheduled.height, *_earlier_facts(flights, day))
        cached = self._rolling.get(day)
        if cached is None or cached[0] != version:
            computed = rolling_features(scheduled.lazy(), flights.lazy(), self.zones).collect(
                engine="in-memory"
            )
            self._rolling[day] = cached = (version, computed)
        return cached[1]

    def history_needed(self) -> tuple[date, date] | None:
        """The days of lake history the live days' features read: from ``HISTORY_LOOKBACK_DAYS`` before
        the first live day to the last."""
        if not self.days:
            return None
        return min(self.days) - timedelta(days=HISTORY_LOOKBACK_DAYS), max(self.days)

    def vectors(
        self,
        history_flights: pl.DataFrame,
        history_weather: pl.DataFrame,
        missing_days: list[date],
        horizon: timedelta,
        recompute_final: bool = False,
    ) -> Vectors | None:
        """The vectors of the live days' flights scheduled within ``horizon`` after the clock and not final
        yet (all of them with ``recompute_final``). ``history_*`` are the lake's facts of the days before
        (and around) the live days; the live days' own rows in them are ignored."""
        if self.clock is None:
            return None
        live_days = list(self.days)
        lake_flights = history_flights.filter(~pl.col("flight_date").is_in(live_days)).select(*FLIGHT_SCHEMA)
        lake_weather = history_weather.filter(~pl.col("observation_date").is_in(live_days)).select(
            *WEATHER_SCHEMA
        )
        lake_flights, lake_weather = known_as_of(lake_flights.lazy(), lake_weather.lazy(), self.clock)
        live = self.live_flights()
        flights = pl.concat([lake_flights.collect(), live])
        weather = pl.concat([lake_weather.collect(), self.live_weather()])
        clock = pl.lit(self.clock, dtype=UTC_US)
        targets = live.filter(
            (pl.col("sched_dep_at") <= clock + horizon)
            & (pl.lit(recompute_final) | ~pl.col("flight_id").is_in(list(self.final)))
        )
        if targets.is_empty():
            return Vectors(pl.DataFrame(), self.clock, missing_days)
        weather = weather.filter(pl.col("known_at") >= targets["sched_dep_at"].min() - WEATHER_MAX_LAG * 2)
        rolling = pl.concat(
            [self._rolling_of(day, live, flights) for day in targets["flight_date"].unique().sort()]
        )
        rows = (
            flight_features(
                targets.lazy(), flights.lazy(), weather.lazy(), self.planes.lazy(), self.zones, rolling.lazy()
            )
            # A few hundred flights over a month of history: the in-memory engine is about five times
            # faster than the streaming one at this size.
            .collect(engine="in-memory")
            .with_columns(
                final=pl.col("predict_at") < clock,
                as_of=pl.min_horizontal("predict_at", clock),
            )
            .join(targets.select("flight_id", "carrier", "flight", "origin"), on="flight_id")
        )
        self.final.update(rows.filter("final")["flight_id"].to_list())
        return Vectors(rows, self.clock, missing_days)


def _earlier_facts(flights: pl.DataFrame, day: date) -> tuple:
    """How many facts of the days before ``day`` the history holds: the rolling features of ``day``'s
    flights change only when this does."""
    return (
        flights.filter(pl.col("flight_date") < day)
        .select(*(pl.col(next(iter(facts))).count() for facts in FACTS.values()), pl.len())
        .row(0)
    )


def vector_records(vectors: Vectors) -> list[dict]:
    """Each vector as a JSON-ready record: the flight, its times (ISO), the features, and what the store
    lacked."""
    missing = [day.isoformat() for day in vectors.missing_days]
    records = []
    for row in vectors.rows.iter_rows(named=True):
        records.append(
            {
                "flight_id": row["flight_id"],
                "carrier": row["carrier"],
                "flight": row["flight"],
                "origin": row["origin"],
                "date": row["flight_date"].isoformat(),
                "sched_dep_at": row["sched_dep_at"].isoformat(),
                "predict_at": row["predict_at"].isoformat(),
                "as_of": row["as_of"].isoformat(),
                "final": row["final"],
                "missing_history_days": missing,
                "features": {column: row[column] for column in FEATURE_COLUMNS},
            }
        )
    return records
