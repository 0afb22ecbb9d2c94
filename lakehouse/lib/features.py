"""The features of a flight, as known one hour before its scheduled departure.

One definition serves training (``gold/flight_features``), batch scoring and any online scoring:
``flight_features(flights, history, weather, planes, zones)`` takes the flights to score and the
history they may look at, and uses only what was known at each flight's prediction time:

- an outcome (departure delay, late arrival, cancellation) counts only once it happened:
  ``departed_at`` for departures, ``outcome_known_at`` for the label;
- weather is the latest observation at or before the prediction time, at most ``WEATHER_MAX_LAG`` old;
- the schedule (which flights are planned, by which plane) is known in advance.

Rolling counts use cumulative sums and as-of joins instead of a join per flight, so the cost grows
with the flights scored plus their 28-day window, not with the square of the history.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

PREDICTION_LEAD = timedelta(hours=1)
WEATHER_MAX_LAG = timedelta(hours=3)
CONGESTION_WINDOW = timedelta(hours=2)
HISTORY_DAYS = 28
LATE_MINUTES = 15

# The history a day's features need: this many days before it (the rolling window and one more day).
HISTORY_LOOKBACK_DAYS = HISTORY_DAYS + 1

WEATHER_FEATURES = [
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "wind_gust",
    "precip",
    "pressure",
    "visib",
]
FEATURE_COLUMNS = [
    "dep_hour", "weekday", "month", "carrier", "origin", "dest", "distance", "sched_block_minutes",
    *(f"weather_{c}" for c in WEATHER_FEATURES), "weather_age_minutes",
    "plane_known", "plane_age", "plane_seats", "plane_engines",
    "origin_departures_2h", "origin_mean_dep_delay_2h", "origin_scheduled_2h",
    "origin_departures_today", "origin_mean_dep_delay_today", "origin_cancelled_today",
    "carrier_origin_mean_dep_delay_today", "dest_flights_known_today", "dest_late_rate_today",
    "route_flights_28d", "route_late_rate_28d", "carrier_flights_28d", "carrier_late_rate_28d",
    "plane_flights_before_today", "plane_departed_today", "plane_mean_dep_delay_today",
    "plane_last_dep_delay",
]  # fmt: skip
CATEGORICAL_FEATURES = ["carrier", "origin", "dest"]


def with_outcomes(flights: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``late`` (the label) and ``outcome_known_at`` (when the label became a fact).

    A flight is late if it arrived 15 or more minutes late, or was cancelled or diverted. Its outcome
    is known at arrival (or, where the arrival zone is unknown, at departure plus air time); a
    cancellation at its scheduled departure; a diversion at its scheduled arrival. Knowledge is capped
    at the end of the day after the flight's date, so anything older than the window is always known.
    """
    known = (
        pl.when(pl.col("cancelled"))
        .then(pl.col("sched_dep_at"))
        .otherwise(
            pl.coalesce(
                pl.col("arr_at"),
                pl.col("dep_at") + pl.duration(minutes=pl.col("air_time")),
                pl.col("sched_arr_at"),
                pl.col("dep_at") + pl.duration(hours=12),
            )
        )
    )
    end_of_next_day = (
        (pl.col("flight_date") + pl.duration(days=2)).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    )
    return flights.with_columns(
        late=(pl.col("arr_delay") >= LATE_MINUTES) | pl.col("cancelled") | pl.col("diverted"),
        outcome_known_at=pl.min_horizontal(known, end_of_next_day),
    )


def _local_hour(at: pl.Expr, zone: pl.Expr, zones: list[str]) -> pl.Expr:
    """The hour of ``at`` on the local clock of each row's zone (UTC where the zone is unknown)."""
    return pl.coalesce(
        [pl.when(zone == name).then(at.dt.convert_time_zone(name).dt.hour()) for name in zones]
        + [at.dt.hour()]
    )


def _running_totals(
    targets: pl.LazyFrame,
    events: pl.LazyFrame,
    at: str,
    event_time: str,
    by: list[str],
    sums: dict[str, str],
    prefix: str,
) -> pl.LazyFrame:
    """Join to each target the count of events of its ``by`` group at or before its ``at``, and the
    running sums of the ``sums`` columns (name: source column), as ``<prefix>_n`` and ``<prefix>_<name>``."""
    names = [f"{prefix}_n", *(f"{prefix}_{name}" for name in sums)]
    running = (
        events.filter(pl.col(event_time).is_not_null())
        .sort(event_time)
        .select(
            *by,
            pl.col(event_time).alias(f"_{prefix}_at"),
            pl.col(event_time).cum_count().over(by).alias(f"{prefix}_n"),
            *(
                pl.col(source).fill_null(0).cum_sum().over(by).alias(f"{prefix}_{name}")
                for name, source in sums.items()
            ),
        )
    )
    return (
        targets.sort(at)
        .join_asof(
            running, left_on=at, right_on=f"_{prefix}_at", by=by, strategy="backward", check_sortedness=False
        )
        .drop(f"_{prefix}_at")
        .with_columns(pl.col(names).fill_null(0))
    )


def _window_totals(
    targets: pl.LazyFrame,
    events: pl.LazyFrame,
    event_time: str,
    by: list[str],
    sums: dict[str, str],
    window: timedelta,
    prefix: str,
) -> pl.LazyFrame:
    """Join to each target the count (``<prefix>_n``) and sums of its group's events in the ``window``
    up to its prediction time: the running totals then, less the running totals a window earlier."""
    names = ["n", *sums]
    out = _running_totals(targets, events, "predict_at", event_time, by, sums, "_now")
    out = _running_totals(
        out.with_columns(_window_at=pl.col("predict_at") - window),
        events,
        "_window_at",
        event_time,
        by,
        sums,
        "_before",
    )
    return out.with_columns(
        (pl.col(f"_now_{name}") - pl.col(f"_before_{name}")).alias(f"{prefix}_{name}") for name in names
    ).drop(*(f"_now_{name}" for name in names), *(f"_before_{name}" for name in names), "_window_at")


def _mean(total: str, count: str) -> pl.Expr:
    """``total / count``, null where nothing was counted."""
    return pl.when(pl.col(count) > 0).then(pl.col(total) / pl.col(count))


def latest_observation(
    frame: pl.LazyFrame, weather: pl.LazyFrame, at: str, columns: dict[str, str]
) -> pl.LazyFrame:
    """Each row with its origin's latest weather observation at or before ``at``, at most
    ``WEATHER_MAX_LAG`` old: the ``columns`` (silver name: new name) and ``observed_at``.

    The one definition of "the weather at a time", for the features and for the weather mart.
    """
    observations = weather.select(
        "origin", "observed_at", *(pl.col(source).alias(name) for source, name in columns.items())
    ).sort("observed_at")
    return frame.sort(at).join_asof(
        observations,
        left_on=at,
        right_on="observed_at",
        by="origin",
        strategy="backward",
        tolerance=WEATHER_MAX_LAG,
        check_sortedness=False,
    )


def _rolling_outcomes(targets: pl.LazyFrame, history: pl.LazyFrame, key: str, name: str) -> pl.LazyFrame:
    """Flights and late rate of the target's ``key`` over the 28 days strictly before its date, counting
    only outcomes known by its prediction time.

    known by the prediction time, any date  (running totals by ``outcome_known_at``)
    - of the flight's own date, known by then (same, grouped by date too)
    - of dates more than 28 days before     (running totals by date; all known, by the cap)
    """
    events = history.filter(pl.col("late").is_not_null()).select(
        key, "flight_date", "outcome_known_at", late=pl.col("late").cast(pl.Int64)
    )
    daily = events.group_by(key, "flight_date").agg(
        _day_n=pl.len().cast(pl.Int64), _day_late=pl.col("late").sum()
    )
    by_date = daily.sort("flight_date").select(
        key,
        pl.col("flight_date").alias("_old_date"),
        pl.col("_day_n").cum_sum().over(key).alias("_old_n"),
        pl.col("_day_late").cum_sum().over(key).alias("_old_late"),
    )
    out = _running_totals(targets, events, "predict_at", "outcome_known_at", [key], {"late": "late"}, "_all")
    out = _running_totals(
        out, events, "predict_at", "outcome_known_at", [key, "flight_date"], {"late": "late"}, "_day"
    )
    out = (
        out.with_columns(_window_start=pl.col("flight_date") - pl.duration(days=HISTORY_DAYS + 1))
        .sort("_window_start")
        .join_asof(
            by_date.sort("_old_date"),
            left_on="_window_start",
            right_on="_old_date",
            by=key,
            check_sortedness=False,
        )
        .with_columns(pl.col("_old_n", "_old_late").fill_null(0))
    )
    flights = pl.col("_all_n") - pl.col("_day_n") - pl.col("_old_n")
    late = pl.col("_all_late") - pl.col("_day_late") - pl.col("_old_late")
    return out.with_columns(
        flights.alias(f"{name}_flights_28d"),
        pl.when(flights > 0).then(late / flights).alias(f"{name}_late_rate_28d"),
    ).drop("_all_n", "_all_late", "_day_n", "_day_late", "_window_start", "_old_date", "_old_n", "_old_late")


def schedule_features(flights: pl.LazyFrame, zones: dict[str, str]) -> pl.LazyFrame:
    """The flight as scheduled (known in advance): its prediction time, local departure hour, weekday,
    month, route and scheduled block time."""
    origin_zone = pl.col("origin").replace_strict(zones, default=None, return_dtype=pl.String)
    return flights.select(
        "flight_id",
        "flight_date",
        "sched_dep_at",
        "carrier",
        "origin",
        "dest",
        "distance",
        "tailnum",
        "late",
        predict_at=pl.col("sched_dep_at") - PREDICTION_LEAD,
        dep_hour=_local_hour(pl.col("sched_dep_at"), origin_zone, sorted(set(zones.values()))).cast(pl.Int8),
        weekday=pl.col("flight_date").dt.weekday().cast(pl.Int8),
        month=pl.col("flight_date").dt.month().cast(pl.Int8),
        route=pl.format("{}-{}", "origin", "dest"),
        sched_block_minutes=(pl.col("sched_arr_at") - pl.col("sched_dep_at"))
        .dt.total_minutes()
        .cast(pl.Int32),
    )


def weather_features(targets: pl.LazyFrame, weather: pl.LazyFrame) -> pl.LazyFrame:
    """The origin's latest observation at the prediction time, and how old it is."""
    return (
        latest_observation(targets, weather, "predict_at", {c: f"weather_{c}" for c in WEATHER_FEATURES})
        .with_columns(
            weather_age_minutes=(pl.col("predict_at") - pl.col("observed_at"))
            .dt.total_minutes()
            .cast(pl.Int32)
        )
        .drop("observed_at")
    )


def plane_features(targets: pl.LazyFrame, planes: pl.LazyFrame) -> pl.LazyFrame:
    """The aircraft from the reference table: known at all, its age, seats and engines."""
    reference = planes.select(
        "tailnum", _plane_year="year", plane_seats="seats", plane_engines="engines", _known=pl.lit(True)
    )
    return (
        targets.join(reference, on="tailnum", how="left")
        .with_columns(
            plane_known=pl.col("_known").fill_null(False),
            plane_age=(pl.col("flight_date").dt.year() - pl.col("_plane_year")).cast(pl.Int32),
        )
        .drop("_plane_year", "_known")
    )


def departures_of(history: pl.LazyFrame) -> pl.LazyFrame:
    """The flights of ``history`` that have departed, with when and how late."""
    return history.filter(pl.col("dep_at").is_not_null()).select(
        "origin", "carrier", "tailnum", "flight_date", "dep_at", "dep_delay"
    )


def origin_congestion_features(targets: pl.LazyFrame, history: pl.LazyFrame) -> pl.LazyFrame:
    """The origin's last two hours before the prediction time: departures and their mean delay, and the
    flights scheduled to leave (the schedule is known)."""
    out = _window_totals(
        targets,
        departures_of(history),
        "dep_at",
        ["origin"],
        {"delay": "dep_delay"},
        CONGESTION_WINDOW,
        "_left",
    )
    planned = history.select("origin", "sched_dep_at")
    out = _window_totals(out, planned, "sched_dep_at", ["origin"], {}, CONGESTION_WINDOW, "_planned")
    return out.with_columns(
        origin_departures_2h=pl.col("_left_n").cast(pl.Int32),
        origin_mean_dep_delay_2h=_mean("_left_delay", "_left_n"),
        origin_scheduled_2h=pl.col("_planned_n").cast(pl.Int32),
    ).drop("_left_n", "_left_delay", "_planned_n")


def origin_today_features(targets: pl.LazyFrame, history: pl.LazyFrame) -> pl.LazyFrame:
    """The origin's day so far: departures and their mean delay (of all carriers, and of the flight's),
    and cancellations already known."""
    departures = departures_of(history)
    today = ["origin", "flight_date"]
    out = _running_totals(
        targets, departures, "predict_at", "dep_at", today, {"delay": "dep_delay"}, "_today"
    )
    cancellations = history.filter(pl.col("cancelled") & pl.col("outcome_known_at").is_not_null()).select(
        "origin", "flight_date", "outcome_known_at"
    )
    out = _running_totals(out, cancellations, "predict_at", "outcome_known_at", today, {}, "_cancelled")
    out = _running_totals(
        out, departures, "predict_at", "dep_at", ["carrier", *today], {"delay": "dep_delay"}, "_carrier"
    )
    return out.with_columns(
        origin_departures_today=pl.col("_today_n").cast(pl.Int32),
        origin_mean_dep_delay_today=_mean("_today_delay", "_today_n"),
        origin_cancelled_today=pl.col("_cancelled_n").cast(pl.Int32),
        carrier_origin_mean_dep_delay_today=_mean("_carrier_delay", "_carrier_n"),
    ).drop("_today_n", "_today_delay", "_cancelled_n", "_carrier_n", "_carrier_delay")


def destination_today_features(targets: pl.LazyFrame, history: pl.LazyFrame) -> pl.LazyFrame:
    """Today's flights to the same destination whose outcome is already known: the destination's day so
    far."""
    known = history.filter(pl.col("late").is_not_null()).select(
        "dest", "flight_date", "outcome_known_at", late=pl.col("late").cast(pl.Int64)
    )
    out = _running_totals(
        targets, known, "predict_at", "outcome_known_at", ["dest", "flight_date"], {"late": "late"}, "_dest"
    )
    return out.with_columns(
        dest_flights_known_today=pl.col("_dest_n").cast(pl.Int32),
        dest_late_rate_today=_mean("_dest_late", "_dest_n"),
    ).drop("_dest_n", "_dest_late")


def rolling_late_rates(targets: pl.LazyFrame, history: pl.LazyFrame) -> pl.LazyFrame:
    """The route's and the carrier's flights and late rate over the 28 days before."""
    with_route = history.with_columns(route=pl.format("{}-{}", "origin", "dest"))
    return targets.pipe(_rolling_outcomes, with_route, "route", "route").pipe(
        _rolling_outcomes, with_route, "carrier", "carrier"
    )


def plane_today_features(targets: pl.LazyFrame, history: pl.LazyFrame) -> pl.LazyFrame:
    """The same plane earlier that day: its schedule is known in advance, its departures once they
    happen (how many, their mean delay, the last one's delay)."""
    scheduled = history.filter(pl.col("tailnum").is_not_null()).select(
        "flight_id",
        plane_flights_before_today=(
            pl.col("sched_dep_at").rank("min").over("tailnum", "flight_date") - 1
        ).cast(pl.Int32),
    )
    departures = departures_of(history).filter(pl.col("tailnum").is_not_null())
    by_day = ["tailnum", "flight_date"]
    out = _running_totals(
        targets, departures, "predict_at", "dep_at", by_day, {"delay": "dep_delay"}, "_plane"
    )
    last = departures.select(*by_day, _last_at="dep_at", plane_last_dep_delay="dep_delay").sort("_last_at")
    out = (
        out.sort("predict_at")
        .join_asof(
            last,
            left_on="predict_at",
            right_on="_last_at",
            by=by_day,
            strategy="backward",
            check_sortedness=False,
        )
        .drop("_last_at")
    )
    return (
        out.join(scheduled, on="flight_id", how="left")
        .with_columns(
            plane_flights_before_today=pl.col("plane_flights_before_today").fill_null(0),
            plane_departed_today=pl.col("_plane_n").cast(pl.Int32),
            plane_mean_dep_delay_today=_mean("_plane_delay", "_plane_n"),
        )
        .drop("_plane_n", "_plane_delay")
    )


def flight_features(
    flights: pl.LazyFrame,
    history: pl.LazyFrame,
    weather: pl.LazyFrame,
    planes: pl.LazyFrame,
    zones: dict[str, str],
) -> pl.LazyFrame:
    """One row per flight in ``flights``: its features as of one hour before scheduled departure,
    and its label ``late``, one feature group at a time.

    ``flights`` and ``history`` are silver flights passed through ``with_outcomes``; ``history`` must
    cover the flights' dates and the ``HISTORY_LOOKBACK_DAYS`` before them. Where an outcome or a
    departure is not known (null ``late`` or ``dep_at``), it is simply not counted, which is how the
    leakage tests truncate history.
    """
    return (
        schedule_features(flights, zones)
        .pipe(weather_features, weather)
        .pipe(plane_features, planes)
        .pipe(origin_congestion_features, history)
        .pipe(origin_today_features, history)
        .pipe(destination_today_features, history)
        .pipe(rolling_late_rates, history)
        .pipe(plane_today_features, history)
        .select("flight_id", "flight_date", "sched_dep_at", "predict_at", *FEATURE_COLUMNS, "late")
        .sort("flight_date", "sched_dep_at", "flight_id")
    )
