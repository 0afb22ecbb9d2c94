"""The features of a flight, as known one hour before its scheduled departure.

One definition serves training (``gold/flight_features``), batch scoring and any online scoring:
``flight_features(flights, history, weather, planes, zones)`` takes the flights to score and the
history they may look at, and uses only what was known at each flight's prediction time, by the
known-times silver carries (``lakehouse.lib.known_times``):

- a departure counts from ``dep_at``; a flight not departed is only known not to have departed;
- an outcome (the label) counts from silver's ``outcome_known_at``;
- weather is the latest observation complete (silver's ``known_at``) at or before the prediction time,
  at most ``WEATHER_MAX_LAG`` old;
- the schedule (which flights are planned, when, by which plane) is known in advance.

Rolling counts use cumulative sums and as-of joins instead of a join per flight, so the cost grows
with the flights scored plus their 28-day window, not with the square of the history.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from lakehouse.lib.known_times import LATE_MINUTES, known_by_cap, late

PREDICTION_LEAD = timedelta(hours=1)
WEATHER_MAX_LAG = timedelta(hours=3)
CONGESTION_WINDOW = timedelta(hours=2)
HISTORY_DAYS = 28

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
# The outcome histories of a flight: (key, name, days). The key columns are built by ``_history_keys``.
ROLLING_HISTORIES = [
    ("route", "route", 28),
    ("route", "route", 7),
    ("route", "route", 1),
    ("carrier", "carrier", 28),
    ("flight_number", "flight_number", 28),
    ("flight_number", "flight_number", 7),
    ("flight_number", "flight_number", 1),
    ("origin_carrier_hour", "origin_carrier_hour", 28),
    ("dest_hour", "dest_hour", 28),
    ("carrier", "carrier", 7),
    ("tailnum", "tail", 7),
    ("tailnum", "tail", 28),
]
ROLLING_FEATURES = [
    f"{name}_{measure}_{days}d"
    for _, name, days in ROLLING_HISTORIES
    for measure in ("flights", "late_rate", "mean_arr_delay")
]


FEATURE_COLUMNS = [
    "dep_hour", "weekday", "month", "carrier", "origin", "dest", "distance", "sched_block_minutes",
    *(f"weather_{c}" for c in WEATHER_FEATURES), "weather_age_minutes",
    "plane_known", "plane_age", "plane_seats", "plane_engines",
    "origin_departures_2h", "origin_mean_dep_delay_2h", "origin_delayed_departures_2h",
    "origin_scheduled_2h", "origin_scheduled_next_2h",
    "origin_departures_today", "origin_mean_dep_delay_today", "origin_overdue_now",
    "carrier_origin_mean_dep_delay_today", "origin_flights_known_today", "origin_late_rate_today",
    "dest_flights_known_today", "dest_late_rate_today",
    *ROLLING_FEATURES, "plane_flights_before_today", "plane_departed_today", "plane_mean_dep_delay_today",
    "plane_last_dep_delay", "prev_leg_gap_minutes", "prev_leg_block_minutes", "prev_leg_departed",
    "prev_leg_dep_delay", "prev_leg_overdue_minutes", "prev_leg_slack_minutes", "prev_leg_arr_delay",
    "prev_leg_late",
]  # fmt: skip
CATEGORICAL_FEATURES = ["carrier", "origin", "dest"]


def with_outcomes(flights: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``late``, the label (``known_times.late``); silver's ``outcome_known_at`` says when it became
    known."""
    return flights.with_columns(late=late())


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
    frame: pl.LazyFrame, weather: pl.LazyFrame, at: str, columns: dict[str, str], time: str = "known_at"
) -> pl.LazyFrame:
    """Each row with its origin's latest weather observation whose ``time`` is at or before ``at``, at
    most ``WEATHER_MAX_LAG`` before: the ``columns`` (silver name: new name) and ``time``.

    The one definition of "the weather at a time": by ``known_at`` (complete by then) for the features;
    the departures mart describes the hour of departure after the fact, by ``observed_at``.
    """
    observations = weather.select(
        "origin", time, *(pl.col(source).alias(name) for source, name in columns.items())
    ).sort(time)
    return frame.sort(at).join_asof(
        observations,
        left_on=at,
        right_on=time,
        by="origin",
        strategy="backward",
        tolerance=WEATHER_MAX_LAG,
        check_sortedness=False,
    )


def _labels(history: pl.LazyFrame, *keys: str) -> pl.LazyFrame:
    """The labels of ``history`` as events: known (a truncated history leaves the rest null), with
    ``keys``, the date, when each became known and ``late`` as a count."""
    return history.filter(pl.col("late").is_not_null()).select(
        *keys, "flight_date", "outcome_known_at", late=pl.col("late").cast(pl.Int64)
    )


def _days_before(
    targets: pl.LazyFrame,
    events: pl.LazyFrame,
    key: str,
    event_time: str,
    sums: dict[str, str],
    days: int,
    prefix: str,
) -> pl.LazyFrame:
    """Count (``<prefix>_n``) and sums of the target's ``key`` events over the ``days`` days strictly
    before its date, counting only events whose ``event_time`` is at or before its prediction time:

    known by the prediction time, any date  (running totals by ``event_time``)
    - of the flight's own date, known by then (same, grouped by date too)
    - of dates more than ``days`` before    (running totals by date; all known: every event happens by
      the end of the day after its date, ``known_times``' cap)
    """
    names = ["n", *sums]
    daily = events.group_by(key, "flight_date").agg(
        pl.len().cast(pl.Int64).alias("_day_n"),
        *(pl.col(source).sum().alias(f"_day_{n}") for n, source in sums.items()),
    )
    by_date = daily.sort("flight_date").select(
        key,
        pl.col("flight_date").alias("_old_date"),
        *(pl.col(f"_day_{n}").cum_sum().over(key).alias(f"_old_{n}") for n in names),
    )
    out = _running_totals(targets, events, "predict_at", event_time, [key], sums, "_all")
    out = _running_totals(out, events, "predict_at", event_time, [key, "flight_date"], sums, "_day")
    out = (
        out.with_columns(_window_start=pl.col("flight_date") - pl.duration(days=days + 1))
        .sort("_window_start")
        .join_asof(
            by_date.sort("_old_date"),
            left_on="_window_start",
            right_on="_old_date",
            by=key,
            check_sortedness=False,
        )
        .with_columns(pl.col(*(f"_old_{n}" for n in names)).fill_null(0))
    )
    return out.with_columns(
        (pl.col(f"_all_{n}") - pl.col(f"_day_{n}") - pl.col(f"_old_{n}")).alias(f"{prefix}_{n}")
        for n in names
    ).drop(*(f"_{side}_{n}" for side in ("all", "day", "old") for n in names), "_window_start", "_old_date")


def _rolling_outcomes(
    targets: pl.LazyFrame, history: pl.LazyFrame, key: str, name: str, days: int = HISTORY_DAYS
) -> pl.LazyFrame:
    """Flights and late rate of the target's ``key`` over the ``days`` days before its date, by the labels
    known at its prediction time (``outcome_known_at``), and the mean arrival delay of the arrivals made
    by then (``arr_at``: a late flight is known to be late before its delay is known), as
    ``<name>_flights_<days>d``, ``<name>_late_rate_<days>d`` and ``<name>_mean_arr_delay_<days>d``."""
    labels = _labels(history, key)
    arrivals = history.filter(pl.col("arr_at") <= known_by_cap()).select(
        key, "flight_date", "arr_at", delay=pl.col("arr_delay").cast(pl.Int64)
    )
    out = _days_before(targets, labels, key, "outcome_known_at", {"late": "late"}, days, "_labels")
    out = _days_before(out, arrivals, key, "arr_at", {"delay": "delay"}, days, "_arrivals")
    return out.with_columns(
        pl.col("_labels_n").alias(f"{name}_flights_{days}d"),
        _mean("_labels_late", "_labels_n").alias(f"{name}_late_rate_{days}d"),
        _mean("_arrivals_delay", "_arrivals_n").alias(f"{name}_mean_arr_delay_{days}d"),
    ).drop("_labels_n", "_labels_late", "_arrivals_n", "_arrivals_delay")


def schedule_features(flights: pl.LazyFrame, zones: dict[str, str]) -> pl.LazyFrame:
    """The flight as scheduled (known in advance): its prediction time, local departure hour, weekday,
    month, route and scheduled block time."""
    origin_zone = pl.col("origin").replace_strict(zones, default=None, return_dtype=pl.String)
    return flights.select(
        "flight_id",
        "flight_date",
        "sched_dep_at",
        "carrier",
        "flight",
        "origin",
        "dest",
        "distance",
        "tailnum",
        "late",
        predict_at=pl.col("sched_dep_at") - PREDICTION_LEAD,
        dep_hour=_local_hour(pl.col("sched_dep_at"), origin_zone, sorted(set(zones.values()))).cast(pl.Int8),
        weekday=pl.col("flight_date").dt.weekday().cast(pl.Int8),
        month=pl.col("flight_date").dt.month().cast(pl.Int8),
        sched_block_minutes=(pl.col("sched_arr_at") - pl.col("sched_dep_at"))
        .dt.total_minutes()
        .cast(pl.Int32),
    )


def weather_features(targets: pl.LazyFrame, weather: pl.LazyFrame) -> pl.LazyFrame:
    """The origin's latest observation at the prediction time, and how old it is."""
    return (
        latest_observation(targets, weather, "predict_at", {c: f"weather_{c}" for c in WEATHER_FEATURES})
        .with_columns(
            weather_age_minutes=(pl.col("predict_at") - pl.col("known_at")).dt.total_minutes().cast(pl.Int32)
        )
        .drop("known_at")
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
        "flight_id", "origin", "carrier", "tailnum", "flight_date", "sched_dep_at", "dep_at", "dep_delay"
    )


def origin_congestion_features(targets: pl.LazyFrame, history: pl.LazyFrame) -> pl.LazyFrame:
    """The origin's last two hours before the prediction time: departures, their mean delay and how many
    left 15 or more minutes late; the flights scheduled to leave in those two hours and in the two hours
    after (the schedule is known)."""
    departures = departures_of(history).with_columns(
        _delayed=(pl.col("dep_delay") >= LATE_MINUTES).cast(pl.Int64)
    )
    out = _window_totals(
        targets,
        departures,
        "dep_at",
        ["origin"],
        {"delay": "dep_delay", "delayed": "_delayed"},
        CONGESTION_WINDOW,
        "_left",
    )
    planned = history.select("origin", "sched_dep_at")
    out = _window_totals(out, planned, "sched_dep_at", ["origin"], {}, CONGESTION_WINDOW, "_planned")
    out = _running_totals(out, planned, "predict_at", "sched_dep_at", ["origin"], {}, "_due_now")
    out = _running_totals(
        out.with_columns(_ahead_at=pl.col("predict_at") + CONGESTION_WINDOW),
        planned,
        "_ahead_at",
        "sched_dep_at",
        ["origin"],
        {},
        "_due_ahead",
    )
    return out.with_columns(
        origin_departures_2h=pl.col("_left_n").cast(pl.Int32),
        origin_mean_dep_delay_2h=_mean("_left_delay", "_left_n"),
        origin_delayed_departures_2h=pl.col("_left_delayed").cast(pl.Int32),
        origin_scheduled_2h=pl.col("_planned_n").cast(pl.Int32),
        origin_scheduled_next_2h=(pl.col("_due_ahead_n") - pl.col("_due_now_n")).cast(pl.Int32),
    ).drop("_left_n", "_left_delay", "_left_delayed", "_planned_n", "_due_now_n", "_due_ahead_n", "_ahead_at")


def origin_today_features(targets: pl.LazyFrame, history: pl.LazyFrame) -> pl.LazyFrame:
    """The origin's day so far: departures and their mean delay (of all carriers, and of the flight's),
    and the flights overdue: scheduled before the prediction time and not departed by it (a cancellation
    is not known before; a flight that has not left is)."""
    departures = departures_of(history)
    today = ["origin", "flight_date"]
    out = _running_totals(
        targets, departures, "predict_at", "dep_at", today, {"delay": "dep_delay"}, "_today"
    )
    # Overdue at t: scheduled by t, less scheduled and departed by t (both by the later of the two times).
    scheduled = history.select(*today, "sched_dep_at")
    left = departures_of(history)
    out = _running_totals(out, scheduled, "predict_at", "sched_dep_at", today, {}, "_due")
    out = _running_totals(
        out,
        left.select(*today, _gone_at=pl.max_horizontal("sched_dep_at", "dep_at")),
        "predict_at",
        "_gone_at",
        today,
        {},
        "_gone",
    )
    out = _running_totals(
        out, departures, "predict_at", "dep_at", ["carrier", *today], {"delay": "dep_delay"}, "_carrier"
    )
    return out.with_columns(
        origin_departures_today=pl.col("_today_n").cast(pl.Int32),
        origin_mean_dep_delay_today=_mean("_today_delay", "_today_n"),
        origin_overdue_now=(pl.col("_due_n") - pl.col("_gone_n")).cast(pl.Int32),
        carrier_origin_mean_dep_delay_today=_mean("_carrier_delay", "_carrier_n"),
    ).drop("_today_n", "_today_delay", "_due_n", "_gone_n", "_carrier_n", "_carrier_delay")


def known_today_features(targets: pl.LazyFrame, history: pl.LazyFrame) -> pl.LazyFrame:
    """Today's flights from the same origin, and to the same destination, whose outcome is already known:
    how many, and how many of them were late."""
    known = _labels(history, "origin", "dest")
    out = targets
    for side in ("origin", "dest"):
        out = _running_totals(
            out, known, "predict_at", "outcome_known_at", [side, "flight_date"], {"late": "late"}, f"_{side}"
        )
    return out.with_columns(
        origin_flights_known_today=pl.col("_origin_n").cast(pl.Int32),
        origin_late_rate_today=_mean("_origin_late", "_origin_n"),
        dest_flights_known_today=pl.col("_dest_n").cast(pl.Int32),
        dest_late_rate_today=_mean("_dest_late", "_dest_n"),
    ).drop("_origin_n", "_origin_late", "_dest_n", "_dest_late")


def _history_keys(frame: pl.LazyFrame, zones: dict[str, str]) -> pl.LazyFrame:
    """The keys the outcome histories group by: route, flight number, origin by carrier by local hour,
    destination by local hour (all from the schedule)."""
    origin_zone = pl.col("origin").replace_strict(zones, default=None, return_dtype=pl.String)
    hour = _local_hour(pl.col("sched_dep_at"), origin_zone, sorted(set(zones.values())))
    return frame.with_columns(
        route=pl.format("{}-{}", "origin", "dest"),
        flight_number=pl.format("{}{}", "carrier", "flight"),
        origin_carrier_hour=pl.format("{}-{}-{}", "origin", "carrier", hour),
        dest_hour=pl.format("{}-{}", "dest", hour),
    )


def rolling_late_rates(targets: pl.LazyFrame, history: pl.LazyFrame, zones: dict[str, str]) -> pl.LazyFrame:
    """The outcome histories of ``ROLLING_HISTORIES``: flights, late rate and mean arrival delay of the
    flight's route, carrier, flight number, origin by carrier by hour, destination by hour and plane over
    the days before."""
    keyed = _history_keys(history, zones)
    out = _history_keys(targets, zones)
    for key, name, days in ROLLING_HISTORIES:
        out = _rolling_outcomes(out, keyed, key, name, days)
    return out.drop("flight_number", "origin_carrier_hour", "dest_hour")


def previous_leg_features(targets: pl.LazyFrame, history: pl.LazyFrame) -> pl.LazyFrame:
    """The plane's previous departure from New York (its schedule is known; its departure only once it
    happened): the gap to it, its scheduled block time, whether it has left, its delay or how overdue it
    is, the slack left once the plane is back (gap less the round trip and the delay so far), and its
    arrival delay (once at the gate) and label (once known)."""
    legs = (
        history.filter(pl.col("tailnum").is_not_null())
        .select(
            "tailnum",
            _prev_sched=pl.col("sched_dep_at"),
            _prev_block=(pl.col("sched_arr_at") - pl.col("sched_dep_at")).dt.total_minutes(),
            _prev_dep_at="dep_at",
            _prev_dep_delay="dep_delay",
            _prev_arr_at="arr_at",
            _prev_arr_delay="arr_delay",
            _prev_known_at="outcome_known_at",
            _prev_late="late",
        )
        .sort("_prev_sched")
    )
    out = targets.sort("sched_dep_at").join_asof(
        legs,
        left_on="sched_dep_at",
        right_on="_prev_sched",
        by="tailnum",
        strategy="backward",
        allow_exact_matches=False,
        tolerance=timedelta(days=1),
        check_sortedness=False,
    )
    departed = pl.col("_prev_dep_at") <= pl.col("predict_at")
    overdue = (pl.col("predict_at") - pl.col("_prev_sched")).dt.total_minutes().clip(lower_bound=0)
    delay_so_far = pl.when(departed).then(pl.col("_prev_dep_delay")).otherwise(overdue)
    gap = (pl.col("sched_dep_at") - pl.col("_prev_sched")).dt.total_minutes()
    found = pl.col("_prev_sched").is_not_null()
    return out.with_columns(
        prev_leg_gap_minutes=gap.cast(pl.Int32),
        prev_leg_block_minutes=pl.col("_prev_block").cast(pl.Int32),
        prev_leg_departed=pl.when(found).then(departed.fill_null(False)),
        prev_leg_dep_delay=pl.when(departed).then(pl.col("_prev_dep_delay")).cast(pl.Int32),
        prev_leg_overdue_minutes=pl.when(found & ~departed.fill_null(False)).then(overdue).cast(pl.Int32),
        prev_leg_slack_minutes=(gap - 2 * pl.col("_prev_block") - delay_so_far).cast(pl.Int32),
        prev_leg_arr_delay=pl.when(pl.col("_prev_arr_at") <= pl.col("predict_at"))
        .then(pl.col("_prev_arr_delay"))
        .cast(pl.Int32),
        prev_leg_late=pl.when(pl.col("_prev_known_at") <= pl.col("predict_at")).then(pl.col("_prev_late")),
    ).drop(
        "_prev_sched",
        "_prev_block",
        "_prev_dep_at",
        "_prev_dep_delay",
        "_prev_arr_at",
        "_prev_arr_delay",
        "_prev_known_at",
        "_prev_late",
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


def rolling_features(flights: pl.LazyFrame, history: pl.LazyFrame, zones: dict[str, str]) -> pl.LazyFrame:
    """``ROLLING_FEATURES`` of ``flights`` by flight id: what ``flight_features`` computes for them from
    ``history``. They read only the days before each flight's date, so the live path computes them once
    for a day's flights and again only when a fact of an earlier day becomes known."""
    return rolling_late_rates(schedule_features(flights, zones), history, zones).select(
        "flight_id", *ROLLING_FEATURES
    )


def flight_features(
    flights: pl.LazyFrame,
    history: pl.LazyFrame,
    weather: pl.LazyFrame,
    planes: pl.LazyFrame,
    zones: dict[str, str],
    rolling: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """One row per flight in ``flights``: its features as of one hour before scheduled departure,
    and its label ``late``, one feature group at a time.

    ``flights`` and ``history`` are silver flights passed through ``with_outcomes``; ``history`` must
    cover the flights' dates and the ``HISTORY_LOOKBACK_DAYS`` before them. Where an outcome or a
    departure is not known (null ``late`` or ``dep_at``), it is simply not counted, which is how the
    leakage tests truncate history. ``rolling``, if given, is ``rolling_features`` of these flights over
    the same history, joined instead of computed again.
    """
    before_rolling = (
        schedule_features(flights, zones)
        .pipe(weather_features, weather)
        .pipe(plane_features, planes)
        .pipe(origin_congestion_features, history)
        .pipe(origin_today_features, history)
        .pipe(known_today_features, history)
    )
    with_rolling = (
        before_rolling.pipe(rolling_late_rates, history, zones)
        if rolling is None
        else before_rolling.join(rolling, on="flight_id", how="left")
    )
    return (
        with_rolling.pipe(plane_today_features, history)
        .pipe(previous_leg_features, history)
        .select("flight_id", "flight_date", "sched_dep_at", "predict_at", *FEATURE_COLUMNS, "late")
        .sort("flight_date", "sched_dep_at", "flight_id")
    )
