"""The live path's pure part on real days, without a server: events in the order they became known, the
state they build (idempotent, in any order), and its vectors: as of the clock before the prediction time,
gold's row from the prediction time on."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from lakehouse.lib.features import FEATURE_COLUMNS, HISTORY_LOOKBACK_DAYS
from lakehouse.lib.live import EventError, OnlineFeatures, day_start, events_of, known_as_of
from lakehouse_tests.real_silver import features_of, real_silver

DAY = date(2013, 3, 8)
HORIZON = timedelta(hours=30)


@pytest.fixture(scope="module")
def silver():
    return real_silver(DAY - timedelta(days=HISTORY_LOOKBACK_DAYS), DAY)


@pytest.fixture(scope="module")
def day(silver):
    flights = silver["flights"].filter(pl.col("flight_date") == DAY)
    weather = silver["weather"].filter(pl.col("observation_date") == DAY)
    return flights, weather, events_of(flights, weather)


def before(silver, frame: str, column: str):
    return silver[frame].filter(pl.col(column) < DAY)


def replay(silver, events: pl.DataFrame, batch: int) -> tuple[OnlineFeatures, list[pl.DataFrame]]:
    """Apply ``events`` ``batch`` at a time, computing vectors after each batch like the worker."""
    online = OnlineFeatures(silver["planes"], silver["zones"])
    computed = []
    for chunk in events.iter_slices(batch):
        for row in chunk.iter_rows(named=True):
            online.apply(row["kind"], row["day"], row["at"], json.loads(row["payload"]))
        vectors = online.vectors(
            before(silver, "flights", "flight_date"),
            before(silver, "weather", "observation_date"),
            [],
            HORIZON,
        )
        computed.append(vectors.rows)
    return online, computed


def test_events_come_when_silver_says_each_fact_became_known(day):
    flights, weather, events = day
    assert events["at"].is_sorted()
    counts = dict(events.group_by("kind").len().iter_rows())
    assert counts == {
        "scheduled": flights.height,
        "weather": weather.height,
        "departed": flights["dep_at"].count(),
        "arrived": flights["arr_at"].count(),
        "outcome": flights.height,
    }
    first = flights.row(0, named=True)
    at = {
        kind: t
        for kind, t in events.filter(pl.col("event_id").str.ends_with(first["flight_id"]))
        .select("kind", "at")
        .iter_rows()
    }
    assert at["scheduled"] == datetime(2013, 3, 8, 5, tzinfo=UTC)  # midnight in New York (EST)
    assert at["departed"] == first["dep_at"] and at["outcome"] == first["outcome_known_at"]
    assert events.filter(pl.col("kind") == "weather")["at"].to_list() == sorted(weather["known_at"].to_list())


def test_the_schedule_comes_at_local_midnight_across_daylight_saving():
    assert day_start(date(2013, 3, 10)) == datetime(2013, 3, 10, 5, tzinfo=UTC)
    assert day_start(date(2013, 3, 11)) == datetime(2013, 3, 11, 4, tzinfo=UTC)
    assert day_start(date(2013, 11, 3)) == datetime(2013, 11, 3, 4, tzinfo=UTC)


def test_every_final_vector_of_a_day_is_its_gold_row(silver, day):
    flights, _, events = day
    _, computed = replay(silver, events, batch=500)
    final = pl.concat([rows.filter("final") for rows in computed if not rows.is_empty()])
    assert final["flight_id"].n_unique() == final.height == flights.height
    assert (final["as_of"] == final["predict_at"]).all()
    offline = features_of(silver, flights, silver["flights"])
    assert_frame_equal(
        final.select("flight_id", *FEATURE_COLUMNS).sort("flight_id"),
        offline.select("flight_id", *FEATURE_COLUMNS).sort("flight_id"),
    )


def test_a_vector_before_the_prediction_time_counts_only_what_the_clock_knows(silver, day):
    flights, _, events = day
    clock = datetime(2013, 3, 8, 14, 0, tzinfo=UTC)  # 9:00 in New York
    online, _ = replay(silver, events.filter(pl.col("at") <= clock), batch=10_000)
    rows = online.vectors(
        before(silver, "flights", "flight_date"), before(silver, "weather", "observation_date"), [], HORIZON,
        recompute_final=True,
    ).rows  # fmt: skip
    ahead = rows.filter(~pl.col("final"))
    assert ahead.height > 100 and (ahead["as_of"] == clock).all() and (ahead["predict_at"] >= clock).all()
    # Departures so far today, by the clock, not by each flight's later prediction time.
    departed = flights.filter(pl.col("dep_at") <= clock).group_by("origin").len()
    expected = dict(departed.iter_rows())
    for origin, count in ahead.group_by("origin").agg(pl.col("origin_departures_today").max()).iter_rows():
        assert count == expected[origin]
    # The same as the batch function on the history as it stood at the clock.
    masked, masked_weather = known_as_of(silver["flights"].lazy(), silver["weather"].lazy(), clock)
    offline = features_of(
        silver,
        flights.filter(pl.col("flight_id").is_in(ahead["flight_id"].implode())).with_columns(
            late=pl.lit(None, pl.Boolean)
        ),
        masked.collect(),
        masked_weather.collect(),
    )
    # Batch features are as of each flight's prediction time; with history cut at the clock they agree
    # except where time itself moves a feature (the schedule ahead, overdue flights, the weather's age).
    moving = {
        "origin_overdue_now", "weather_age_minutes", "prev_leg_overdue_minutes", "prev_leg_slack_minutes",
        "origin_scheduled_2h", "origin_scheduled_next_2h",
    }  # fmt: skip
    same = [c for c in FEATURE_COLUMNS if c not in moving]
    assert_frame_equal(
        ahead.select("flight_id", *same).sort("flight_id"),
        offline.select("flight_id", *same).sort("flight_id"),
    )


def test_facts_applied_twice_or_before_their_schedule_change_nothing(silver, day):
    _, _, events = day
    once, _ = replay(silver, events, batch=10_000)
    shuffled = pl.concat(
        [events.filter(pl.col("kind") != "scheduled"), events, events.sample(fraction=0.3, seed=1)]
    )
    twice, _ = replay(silver, shuffled, batch=10_000)
    assert_frame_equal(once.live_flights().sort("flight_id"), twice.live_flights().sort("flight_id"))
    assert_frame_equal(
        once.live_weather().sort("origin", "observed_at"), twice.live_weather().sort("origin", "observed_at")
    )


def test_a_bad_event_is_named(silver):
    online = OnlineFeatures(silver["planes"], silver["zones"])
    at = datetime(2013, 3, 8, tzinfo=UTC)
    with pytest.raises(EventError, match="unknown event kind 'landed'"):
        online.apply("landed", DAY, at, {"flight_id": "x"})
    with pytest.raises(EventError, match="departed event of 2013-03-08 has no field 'dep_delay'"):
        online.apply("departed", DAY, at, {"flight_id": "x", "dep_at": 1})
