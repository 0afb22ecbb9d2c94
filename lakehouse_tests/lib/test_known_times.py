"""Each known-time rule silver writes (``lakehouse.lib.known_times``), on real flights and weather."""

from datetime import date, timedelta

import polars as pl
import pytest

from lakehouse.lib.features import PREDICTION_LEAD
from lakehouse_tests.real_silver import features_of, real_silver

FIRST, LAST = date(2013, 2, 6), date(2013, 3, 12)


@pytest.fixture(scope="module")
def silver() -> dict:
    return real_silver(FIRST, LAST)


@pytest.fixture(scope="module")
def flights(silver) -> pl.DataFrame:
    return silver["flights"]


def test_an_hourly_observation_is_known_at_minute_51_of_its_hour(silver):
    weather = silver["weather"]
    assert (weather["known_at"] - weather["observed_at"] == timedelta(minutes=51)).all()


def test_a_flight_on_time_is_known_at_its_arrival(flights):
    on_time = flights.filter(~pl.col("late"))
    assert on_time.height > 10_000
    assert (on_time["outcome_known_at"] == on_time["arr_at"]).all()


def test_a_late_flight_is_known_late_15_minutes_after_its_scheduled_arrival(flights):
    late = flights.filter(pl.col("arr_delay") >= 15)
    assert late.height > 2_000
    assert (late["outcome_known_at"] == late["sched_arr_at"] + timedelta(minutes=15)).all()
    assert (late["outcome_known_at"] <= late["arr_at"]).all()


@pytest.mark.parametrize("kind", ["cancelled", "diverted"])
def test_a_cancelled_or_diverted_flight_is_known_late_15_minutes_after_its_scheduled_arrival(flights, kind):
    """Not at its scheduled departure, nor at the start of its day: when it was decided is not in the data."""
    rows = flights.filter(pl.col(kind))
    assert rows.height > 50
    assert (rows["outcome_known_at"] == rows["sched_arr_at"] + timedelta(minutes=15)).all()
    assert (rows["outcome_known_at"] > rows["sched_dep_at"]).all()


@pytest.mark.parametrize("airport, zone", [("SJU", "America/Puerto_Rico"), ("STT", "America/St_Thomas")])
def test_caribbean_arrivals_have_their_zone_and_are_known_at_the_gate(flights, silver, airport, zone):
    """airports.csv lists SJU, BQN, PSE and STT without a zone: the project's reference data gives it."""
    assert silver["zones"][airport] == zone
    rows = flights.filter((pl.col("dest") == airport) & ~pl.col("cancelled") & ~pl.col("diverted"))
    assert rows.height > 20
    assert rows["sched_arr_at"].null_count() == 0 and rows["arr_at"].null_count() == 0
    # In the airport's zone the flight lands after it left, a flight's time later (3 to 5 hours).
    block = (rows["sched_arr_at"] - rows["sched_dep_at"]).dt.total_minutes()
    assert block.is_between(150, 330).all(), block.describe()
    on_time = rows.filter(~pl.col("late"))
    assert (on_time["outcome_known_at"] == on_time["arr_at"]).all()


def test_every_flight_has_a_scheduled_block_time(silver, flights):
    targets = flights.filter(pl.col("flight_date") == date(2013, 3, 8))
    features = features_of(silver, targets, flights)
    assert features["sched_block_minutes"].null_count() == 0
    assert features["sched_block_minutes"].is_between(20, 12 * 60).all()


def test_an_overnight_arrival_lands_the_next_day_and_is_known_then(flights):
    overnight = flights.filter(
        (pl.col("sched_arr_at").dt.date() > pl.col("sched_dep_at").dt.date()) & ~pl.col("late")
    )
    assert overnight.height > 100
    assert (overnight["arr_at"] > overnight["sched_dep_at"]).all()
    assert (overnight["outcome_known_at"] == overnight["arr_at"]).all()


def test_nothing_is_known_later_than_the_end_of_the_day_after(flights):
    cap = (pl.col("flight_date") + pl.duration(days=2)).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    assert flights.filter(pl.col("outcome_known_at") > cap).is_empty()
    assert flights["outcome_known_at"].null_count() == 0


def test_the_planes_previous_leg_shows_only_what_had_happened(silver, flights):
    """The plane's earlier flight: its schedule always, its departure only once it left."""
    day = flights.filter(pl.col("flight_date") == date(2013, 3, 8))
    features = features_of(silver, day, flights).join(day.select("flight_id", "tailnum"), on="flight_id")
    legs = flights.filter(pl.col("tailnum").is_not_null()).sort("sched_dep_at")
    checked = {"departed": 0, "waiting": 0}
    for row in features.filter(pl.col("prev_leg_gap_minutes").is_not_null()).head(400).iter_rows(named=True):
        earlier = legs.filter(
            (pl.col("tailnum") == row["tailnum"]) & (pl.col("sched_dep_at") < row["sched_dep_at"])
        ).row(-1, named=True)
        assert row["prev_leg_gap_minutes"] == (row["sched_dep_at"] - earlier["sched_dep_at"]) // timedelta(
            minutes=1
        )
        left = earlier["dep_at"] is not None and earlier["dep_at"] <= row["predict_at"]
        assert row["prev_leg_departed"] == left
        if left:
            assert row["prev_leg_dep_delay"] == earlier["dep_delay"]
            checked["departed"] += 1
        else:
            assert row["prev_leg_dep_delay"] is None
            assert row["prev_leg_overdue_minutes"] == max(
                0, (row["predict_at"] - earlier["sched_dep_at"]) // timedelta(minutes=1)
            )
            checked["waiting"] += 1
        arrived = earlier["arr_at"] is not None and earlier["arr_at"] <= row["predict_at"]
        assert row["prev_leg_arr_delay"] == (earlier["arr_delay"] if arrived else None)
    assert min(checked.values()) > 5, checked


def test_flights_overdue_are_those_scheduled_and_not_yet_departed(silver, flights):
    day = flights.filter(pl.col("flight_date") == date(2013, 3, 8))
    features = features_of(silver, day, flights).sample(60, seed=3)
    for row in features.iter_rows(named=True):
        at = row["sched_dep_at"] - PREDICTION_LEAD
        due = day.filter(
            (pl.col("origin") == row["origin"])
            & (pl.col("sched_dep_at") <= at)
            & (pl.col("dep_at").is_null() | (pl.col("dep_at") > at))
        )
        assert row["origin_overdue_now"] == due.height, row["flight_id"]
