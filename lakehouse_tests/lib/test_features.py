"""Features count what they say: brute-force recounts on real days. (That they use nothing before it was
known is proven in ``test_leakage.py`` and ``test_known_times.py``.)"""

from datetime import date, timedelta

import polars as pl
import pytest

from lakehouse.lib.features import HISTORY_LOOKBACK_DAYS
from lakehouse_tests.real_silver import features_of, real_silver

FIRST, LAST = date(2013, 3, 4), date(2013, 3, 8)


@pytest.fixture(scope="module")
def silver():
    """Silver flights, weather, planes and zones for early March 2013 and the 29 days before it."""
    return real_silver(FIRST - timedelta(days=HISTORY_LOOKBACK_DAYS), LAST)


def features(silver, targets: pl.DataFrame, history: pl.DataFrame, weather: pl.DataFrame) -> pl.DataFrame:
    return features_of(silver, targets, history, weather)


@pytest.fixture(scope="module")
def sample(silver):
    targets = silver["flights"].filter(pl.col("flight_date").is_between(FIRST, LAST))
    full = features(silver, targets, silver["flights"], silver["weather"])
    return targets, full, full.sample(40, seed=7)


def test_rolling_features_match_a_brute_force_recount(silver, sample):
    _, _, chosen = sample
    history = silver["flights"]
    for row in chosen.iter_rows(named=True):
        at, day = row["predict_at"], row["flight_date"]
        flight = history.filter(pl.col("flight_id") == row["flight_id"]).row(0, named=True)
        window = history.filter(
            pl.col("flight_date").is_between(day - timedelta(days=28), day - timedelta(days=1))
            & (pl.col("outcome_known_at") <= at)
        )
        route = window.filter((pl.col("origin") == flight["origin"]) & (pl.col("dest") == flight["dest"]))
        assert row["route_flights_28d"] == route.height
        if route.height:
            assert row["route_late_rate_28d"] == pytest.approx(route["late"].mean())
        carrier = window.filter(pl.col("carrier") == flight["carrier"])
        assert row["carrier_flights_28d"] == carrier.height
        assert row["carrier_late_rate_28d"] == pytest.approx(carrier["late"].mean())
        same_number = (pl.col("carrier") == flight["carrier"]) & (pl.col("flight") == flight["flight"])
        week = history.filter(
            same_number & pl.col("flight_date").is_between(day - timedelta(days=7), day - timedelta(days=1))
        )
        labelled = week.filter(pl.col("outcome_known_at") <= at)
        assert row["flight_number_flights_7d"] == labelled.height
        if labelled.height:
            assert row["flight_number_late_rate_7d"] == pytest.approx(labelled["late"].mean())
        # A delay counts once the flight is at the gate, not when it is known to be late.
        landed = week.filter(pl.col("arr_at") <= at)
        if landed.height:
            assert row["flight_number_mean_arr_delay_7d"] == pytest.approx(landed["arr_delay"].mean())
        else:
            assert row["flight_number_mean_arr_delay_7d"] is None
        recent = history.filter(
            (pl.col("origin") == flight["origin"])
            & (pl.col("dep_at") > at - timedelta(hours=2))
            & (pl.col("dep_at") <= at)
        )
        assert row["origin_departures_2h"] == recent.height
        same_plane = history.filter(
            (pl.col("tailnum") == (flight["tailnum"] or "no such plane"))
            & (pl.col("flight_date") == day)
            & (pl.col("sched_dep_at") < flight["sched_dep_at"])
        )
        assert row["plane_flights_before_today"] == (same_plane.height if flight["tailnum"] else 0)
        today = history.filter(pl.col("flight_date") == day)
        overdue = today.filter(
            (pl.col("origin") == flight["origin"])
            & (pl.col("sched_dep_at") <= at)
            & (pl.col("dep_at").is_null() | (pl.col("dep_at") > at))
        )
        assert row["origin_overdue_now"] == overdue.height
        to_dest = today.filter((pl.col("dest") == flight["dest"]) & (pl.col("outcome_known_at") <= at))
        assert row["dest_flights_known_today"] == to_dest.height
        if to_dest.height:
            assert row["dest_late_rate_today"] == pytest.approx(to_dest["late"].mean())
        plane_left = today.filter(
            (pl.col("tailnum") == (flight["tailnum"] or "no such plane")) & (pl.col("dep_at") <= at)
        ).sort("dep_at")
        expected_last = plane_left["dep_delay"][-1] if plane_left.height else None
        assert row["plane_last_dep_delay"] == expected_last


def test_weather_is_the_latest_observation_before_prediction_within_the_lag(silver, sample):
    _, full, _ = sample
    assert full["weather_age_minutes"].drop_nulls().is_between(0, 180).all()
    assert full["weather_temp"].null_count() < full.height * 0.02


def test_every_flight_gets_one_row_and_the_label_follows_the_rule(silver, sample):
    targets, full, _ = sample
    assert full.height == targets.height and full["flight_id"].is_unique().all()
    expected = targets.select(
        "flight_id", expected=(pl.col("arr_delay") >= 15) | pl.col("cancelled") | pl.col("diverted")
    )
    joined = full.join(expected, on="flight_id")
    assert (joined["late"] == joined["expected"]).all()
