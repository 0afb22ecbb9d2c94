"""No feature uses a fact before it was known: proven by scrambling the future, on whole real days.

At each cut time (two of them on the days daylight saving starts and ends), every fact that was not yet
known at the cut is replaced by another value that would also be unknown then: departures after the cut
(or cancellations) become other later departures or cancellations, arrivals and their labels other later
arrivals, diversions or cancellations, weather observations complete after the cut other readings, and
the tail numbers of the days after the cut are shuffled. Every feature of every flight whose prediction
time is before the cut must stay as it was.

The test's notion of when a fact is known is written here from first principles, not imported from the
product: a wrong known-time in the product lets scrambled values into the features and fails the test.
The mutation check below proves it: each of eight deliberately leaky variants of the product is caught.
"""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from lakehouse.lib import features as product
from lakehouse.lib import known_times
from lakehouse.lib.features import FEATURE_COLUMNS, with_outcomes
from lakehouse_tests.real_silver import features_of, real_silver

# (cut, first day of the history, last day): the history covers the 29 days before the targets.
CUTS = [
    datetime(2013, 3, 8, 17, 0, tzinfo=UTC),  # noon on the day of the March snowstorm
    datetime(2013, 3, 10, 13, 20, tzinfo=UTC),  # the morning after clocks went forward
    datetime(2013, 3, 11, 0, 30, tzinfo=UTC),  # the evening of that day (the next UTC date)
    datetime(2013, 11, 1, 12, 0, tzinfo=UTC),
    datetime(2013, 11, 3, 15, 45, tzinfo=UTC),  # the morning after clocks went back
    datetime(2013, 11, 4, 22, 0, tzinfo=UTC),
]
WINDOWS = {3: (date(2013, 2, 6), date(2013, 3, 12)), 11: (date(2013, 10, 1), date(2013, 11, 5))}
LATE = 15
WEATHER_COMPLETE = timedelta(minutes=51)
NEW_YORK = "America/New_York"
ZONE = ZoneInfo(NEW_YORK)


def silver_for(cut: datetime) -> dict:
    return real_silver(*WINDOWS[cut.month])


def _minutes(expr: pl.Expr) -> pl.Expr:
    return pl.duration(minutes=expr)


def truly_known(flights: pl.DataFrame, cut: datetime) -> pl.DataFrame:
    """What an observer at ``cut`` knows of each flight, by this test's own rules: the departure once it
    happened, the arrival once it happened, and the label once the flight arrived on time or was not at
    the gate 15 minutes after its scheduled arrival (late, cancelled or diverted alike)."""
    departed = pl.col("dep_at").is_not_null() & (pl.col("dep_at") <= cut)
    arrived = pl.col("arr_at").is_not_null() & (pl.col("arr_at") <= cut)
    overdue = pl.col("sched_arr_at").is_not_null() & (pl.col("sched_arr_at") + _minutes(pl.lit(LATE)) <= cut)
    return flights.with_columns(
        _departed=departed,
        _arrived=arrived,
        _known_late=overdue & ~(arrived & (pl.col("arr_delay") < LATE)),
        _label_known=(arrived & (pl.col("arr_delay") < LATE)) | overdue,
    )


def scrambled_flights(flights: pl.DataFrame, cut: datetime, rng: np.random.Generator) -> pl.DataFrame:
    """Every fact unknown at ``cut`` replaced by another that would also be unknown then."""
    frame = truly_known(flights, cut)
    n = frame.height
    cancel = rng.random(n) < 0.15
    divert = rng.random(n) < 0.1
    dep_after = rng.integers(1, 300, n)
    arr_after = rng.integers(1, 240, n)
    # A new departure: after the cut, and no earlier than 10 minutes before the schedule.
    earliest_departure = pl.max_horizontal(pl.lit(cut), pl.col("sched_dep_at") - timedelta(minutes=10))
    new_dep_at = earliest_departure + _minutes(pl.Series(dep_after))
    frame = frame.with_columns(
        _cancel=pl.Series(cancel) & ~pl.col("_departed") & ~(pl.col("_label_known") & ~pl.col("_known_late")),
        _divert=pl.Series(divert),
        _new_dep_at=new_dep_at,
        _arr_after=pl.Series(arr_after),
    )
    # Departures not yet made: cancelled, or made later than the cut.
    frame = frame.with_columns(
        cancelled=pl.when(pl.col("_departed")).then("cancelled").otherwise("_cancel"),
        dep_at=pl.when(pl.col("_departed"))
        .then("dep_at")
        .when(pl.col("_cancel"))
        .then(None)
        .otherwise("_new_dep_at"),
    ).with_columns(
        dep_delay=pl.when(pl.col("_departed"))
        .then("dep_delay")
        .otherwise((pl.col("dep_at") - pl.col("sched_dep_at")).dt.total_minutes().cast(pl.Int32)),
    )
    # Arrivals not yet made: a diversion, or an arrival after the cut, keeping a label already known.
    earliest = pl.max_horizontal(pl.lit(cut), pl.col("dep_at")) + _minutes(pl.col("_arr_after"))
    if_late = pl.max_horizontal(earliest, pl.col("sched_arr_at") + _minutes(pl.lit(LATE)))
    new_arr_at = pl.when(pl.col("_known_late")).then(if_late).otherwise(earliest)
    open_arrival = ~pl.col("_arrived")
    frame = frame.with_columns(
        diverted=pl.when(pl.col("_arrived"))
        .then("diverted")
        .when(pl.col("cancelled"))
        .then(False)
        .otherwise(pl.col("_divert") & (~pl.col("_label_known") | pl.col("_known_late"))),
    ).with_columns(
        arr_at=pl.when(~open_arrival)
        .then("arr_at")
        .when(pl.col("cancelled") | pl.col("diverted"))
        .then(None)
        .otherwise(new_arr_at),
        air_time=pl.when(~open_arrival)
        .then("air_time")
        .when(pl.col("cancelled") | pl.col("diverted"))
        .then(None)
        .otherwise(pl.col("_arr_after").cast(pl.Int32) + 30),
    )
    frame = frame.with_columns(
        arr_delay=pl.when(~open_arrival)
        .then("arr_delay")
        .otherwise((pl.col("arr_at") - pl.col("sched_arr_at")).dt.total_minutes().cast(pl.Int32))
    )
    # The schedule of the days after the cut's is not known yet: their tail numbers are shuffled.
    later_day = frame["sched_dep_at"].dt.convert_time_zone(NEW_YORK).dt.date() > cut.astimezone(ZONE).date()
    rows = later_day.arg_true()
    shuffled = frame["tailnum"].gather(rows).shuffle(seed=int(rng.integers(1 << 30)))
    frame = frame.with_columns(frame["tailnum"].scatter(rows, shuffled))
    scratch = [c for c in frame.columns if c.startswith("_") and c not in flights.columns]
    return frame.drop(scratch)


def scrambled_weather(weather: pl.DataFrame, cut: datetime, rng: np.random.Generator) -> pl.DataFrame:
    """Observations complete after ``cut`` (the row of hour H at H:51) read something else."""
    later = pl.col("observed_at") + WEATHER_COMPLETE > cut
    shift = pl.Series(rng.uniform(1, 5, weather.height))
    return weather.with_columns(
        *(
            pl.when(later).then(pl.col(c) + shift).otherwise(c)
            for c in ("temp", "dewp", "wind_speed", "pressure", "visib")
        ),
        pl.when(later).then((pl.col("wind_dir") + 40) % 360).otherwise("wind_dir").alias("wind_dir"),
        pl.when(later).then(pl.col("precip") + 0.05).otherwise("precip").alias("precip"),
    )


def with_known_times(flights: pl.DataFrame, weather: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Silver's derived columns recomputed by the product from (scrambled) facts: its known-times and the
    label."""
    flights = with_outcomes(
        flights.lazy().with_columns(outcome_known_at=known_times.outcome_known_at())
    ).collect()
    return flights, weather.with_columns(known_at=known_times.weather_known_at())


def changed_features(cut: datetime, seed: int = 7) -> pl.DataFrame:
    """Rows of flights predicted before ``cut`` whose features differ once the future is scrambled."""
    silver = silver_for(cut)
    rng = np.random.default_rng(seed)
    facts = silver["flights"].drop("late", "outcome_known_at")
    weather = silver["weather"].drop("known_at")
    before = with_known_times(facts, weather)
    after = with_known_times(scrambled_flights(facts, cut, rng), scrambled_weather(weather, cut, rng))
    local_day = cut.astimezone(ZONE).date()
    days = pl.col("flight_date").is_between(local_day - timedelta(days=1), local_day)
    predicted = pl.col("sched_dep_at") - product.PREDICTION_LEAD < cut

    def rows(flights: pl.DataFrame, weather: pl.DataFrame) -> pl.DataFrame:
        targets = flights.filter(days & predicted)
        return features_of(silver, targets, flights, weather).select("flight_id", *FEATURE_COLUMNS)

    original, again = rows(*before), rows(*after)
    assert original.height > 300, f"too few flights predicted before {cut} to prove anything"
    assert again.height == original.height
    joined = original.join(again, on="flight_id", suffix="_scrambled")
    differs = pl.any_horizontal(pl.col(c).ne_missing(pl.col(f"{c}_scrambled")) for c in FEATURE_COLUMNS)
    return joined.filter(differs)


def describe(changed: pl.DataFrame) -> str:
    columns = [c for c in FEATURE_COLUMNS if (changed[c].ne_missing(changed[f"{c}_scrambled"])).any()]
    return f"{changed.height} flight(s) changed, in {', '.join(columns)}"


@pytest.mark.parametrize("cut", CUTS, ids=lambda cut: cut.strftime("%Y-%m-%dT%H:%MZ"))
def test_scrambling_the_future_changes_no_feature_of_an_earlier_prediction(cut: datetime):
    changed = changed_features(cut)
    assert changed.is_empty(), describe(changed)


def test_the_scramble_really_changes_the_future():
    """The test is not vacuous: the facts after the cut differ, and flights predicted after it see them."""
    cut = CUTS[0]
    silver = silver_for(cut)
    facts = silver["flights"].drop("late", "outcome_known_at")
    scrambled = scrambled_flights(facts, cut, np.random.default_rng(7))
    later = facts["sched_dep_at"] > cut
    assert (facts.filter(later)["dep_delay"].ne_missing(scrambled.filter(later)["dep_delay"])).mean() > 0.9
    assert (facts["dep_delay"].filter(~later).ne_missing(scrambled["dep_delay"].filter(~later))).sum() > 0
    before = features_of(silver, *_targets_after(silver, cut, facts))
    after = features_of(silver, *_targets_after(silver, cut, scrambled))
    assert not before.select(FEATURE_COLUMNS).equals(after.select(FEATURE_COLUMNS))


def _targets_after(silver: dict, cut: datetime, facts: pl.DataFrame):
    flights, weather = with_known_times(facts, silver["weather"].drop("known_at"))
    targets = flights.filter(
        (pl.col("sched_dep_at") > cut + timedelta(hours=3)) & (pl.col("flight_date") == cut.date())
    )
    return targets, flights, weather


# --- the mutation check: eight leaky variants of the product, each must be caught -------------------------


def _leaky_weather_at_departure(original: Callable) -> Callable:
    def weather_features(targets, weather):
        at_departure = original(targets.with_columns(predict_at=pl.col("sched_dep_at")), weather)
        return at_departure.with_columns(predict_at=pl.col("sched_dep_at") - product.PREDICTION_LEAD)

    return weather_features


def _leaky_departures_at_schedule(original: Callable) -> Callable:
    return lambda history: original(history).with_columns(dep_at=pl.col("sched_dep_at"))


def _leaky_today_outcomes(original: Callable) -> Callable:
    return lambda targets, history: original(
        targets, history.with_columns(outcome_known_at=pl.col("sched_dep_at"))
    )


def _leaky_plane_by_schedule(original: Callable) -> Callable:
    return lambda targets, history: original(targets, history.with_columns(dep_at=pl.col("sched_dep_at")))


def _leaky_departure_hour(original: Callable) -> Callable:
    def schedule_features(flights, zones):
        actual = flights.select(
            "flight_id", _hour=pl.col("dep_at").dt.convert_time_zone(NEW_YORK).dt.hour().cast(pl.Int8)
        )
        return (
            original(flights, zones)
            .join(actual, on="flight_id", how="left")
            .with_columns(dep_hour=pl.coalesce("_hour", "dep_hour"))
            .drop("_hour")
        )

    return schedule_features


def _arrivals_at_schedule() -> pl.Expr:
    return (
        pl.when(known_times.late())
        .then(pl.col("sched_arr_at") + _minutes(pl.lit(LATE)))
        .otherwise(pl.col("sched_arr_at"))
    )


def _cancellations_at_day_start(original: Callable) -> Callable:
    start = (
        pl.col("flight_date")
        .cast(pl.Datetime("us"))
        .dt.replace_time_zone(NEW_YORK)
        .dt.convert_time_zone("UTC")
    )
    return lambda: pl.when(pl.col("cancelled")).then(start).otherwise(original())


LEAKY_VARIANTS = {
    "weather at the scheduled departure": (product, "weather_features", _leaky_weather_at_departure),
    "congestion by scheduled departure": (product, "departures_of", _leaky_departures_at_schedule),
    "today's outcomes known at departure": (product, "known_today_features", _leaky_today_outcomes),
    "weather known at its hour": (known_times, "weather_known_at", lambda _: lambda: pl.col("observed_at")),
    "the plane's last delay by schedule": (product, "plane_today_features", _leaky_plane_by_schedule),
    "arrivals known at the scheduled arrival": (
        known_times,
        "outcome_known_at",
        lambda _: _arrivals_at_schedule,
    ),
    "cancellations known at the start of the day": (
        known_times,
        "outcome_known_at",
        _cancellations_at_day_start,
    ),
    "the departure hour from the actual departure": (product, "schedule_features", _leaky_departure_hour),
}


@pytest.mark.parametrize("variant", list(LEAKY_VARIANTS))
def test_a_leaky_variant_of_the_features_is_caught(variant: str, monkeypatch: pytest.MonkeyPatch):
    module, name, leaky = LEAKY_VARIANTS[variant]
    monkeypatch.setattr(module, name, leaky(getattr(module, name)))
    assert any(not changed_features(cut).is_empty() for cut in CUTS), f"no cut caught: {variant}"
