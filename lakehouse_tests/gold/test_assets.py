"""Gold on real days: marts agree with an independent recomputation from silver, features cover every
flight, and a warehouse held by another process fails fast and clearly."""

import shutil
import subprocess
import sys
import time
from datetime import date, timedelta

import dagster as dg
import duckdb
import polars as pl
import pytest

from lakehouse.resources import Warehouse, WarehouseLockedError
from lakehouse_tests.conftest import resources_at
from lakehouse_tests.pipeline import GOLD_ASSETS, INGEST_ASSETS, check_result, materialize

JAN1, JAN2 = date(2013, 1, 1), date(2013, 1, 2)


@pytest.fixture(scope="module")
def resources(landed_once, tmp_path_factory):
    """One copy of the landed days for the module: building gold once serves every test here."""
    target = tmp_path_factory.mktemp("gold") / "data"
    shutil.copytree(landed_once, target)
    return resources_at(target)


@pytest.fixture(scope="module")
def built(resources):
    """Bronze, silver and gold for 1 and 2 January, in one run as `lakehouse_job` would."""
    result = materialize(INGEST_ASSETS + GOLD_ASSETS, resources, JAN1, JAN2)
    assert result.success
    silver = resources["lake"].scan("silver/flights").collect()
    with duckdb.connect(resources["warehouse"].database, read_only=True) as connection:
        tables = {
            name: connection.sql(f"SELECT * FROM gold.{name}").pl()
            for name in ("flight_features", "daily_airport_performance", "departures",
                         "carrier_monthly_performance", "route_performance", "weather_delay_impact")
        }  # fmt: skip
    return result, silver, tables


def test_daily_airport_performance_agrees_with_silver(built):
    result, silver, tables = built
    expected = (
        silver.group_by("origin", "flight_date")
        .agg(
            scheduled=pl.len(),
            cancelled=pl.col("cancelled").sum(),
            on_time_rate=((pl.col("arr_delay") < 15) & ~pl.col("cancelled") & ~pl.col("diverted")).mean(),
            median_arr_delay=pl.col("arr_delay").median(),
            p90_dep_delay=pl.col("dep_delay").quantile(0.9, interpolation="linear"),
        )
        .sort("flight_date", "origin")
    )
    mart = tables["daily_airport_performance"].sort("flight_date", "origin")
    assert mart.height == 6  # three airports, two days
    assert mart["scheduled"].to_list() == expected["scheduled"].to_list()
    assert mart["cancelled"].to_list() == expected["cancelled"].to_list()
    for column in ("on_time_rate", "median_arr_delay", "p90_dep_delay"):
        assert mart[column].to_list() == pytest.approx(expected[column].to_list()), column
    assert check_result(result, "gold/daily_airport_performance", "matches_silver").passed


def test_route_and_carrier_marts_agree_with_silver(built):
    _, silver, tables = built
    routes = silver.group_by("origin", "dest").agg(
        scheduled=pl.len(),
        mean_arr_delay=pl.col("arr_delay").mean(),
        median_dep_delay=pl.col("dep_delay").median(),
        p90_arr_delay=pl.col("arr_delay").quantile(0.9, interpolation="linear"),
    )
    joined = tables["route_performance"].join(routes, on=["origin", "dest"], suffix="_silver")
    assert joined.height == routes.height == tables["route_performance"].height
    assert (joined["scheduled"] == joined["scheduled_silver"]).all()
    for column in ("mean_arr_delay", "median_dep_delay", "p90_arr_delay"):
        assert joined[column].to_list() == pytest.approx(joined[f"{column}_silver"].to_list(), nan_ok=True), (
            column
        )
    carriers = tables["carrier_monthly_performance"]
    assert carriers["scheduled"].sum() == silver.height
    assert set(carriers["month"]) == {date(2013, 1, 1)}


def test_departures_copy_silver_with_the_latest_weather_before_each_departure(built, resources):
    result, silver, tables = built
    departures = tables["departures"].sort("flight_id")
    assert departures["flight_id"].to_list() == silver.sort("flight_id")["flight_id"].to_list()
    assert departures.select("dep_delay", "arr_delay", "cancelled").equals(
        silver.sort("flight_id").select("dep_delay", "arr_delay", "cancelled")
    )
    # Independently: every observation at the origin up to 3 hours before the scheduled hour, the latest.
    weather = resources["lake"].scan("silver/weather").collect()
    hour = pl.col("sched_dep_at").dt.truncate("1h")
    expected = (
        silver.select("flight_id", "origin", "sched_dep_at")
        .join(weather.select("origin", "observed_at", "visib", "wind_speed"), on="origin")
        .filter((pl.col("observed_at") <= hour) & (pl.col("observed_at") >= hour - timedelta(hours=3)))
        .sort("observed_at")
        .group_by("flight_id")
        .last()
    )
    joined = departures.join(expected, on="flight_id", how="left", suffix="_expected")
    assert joined["visib_expected"].null_count() < joined.height // 2  # most flights have weather
    assert joined["visib"].to_list() == joined["visib_expected"].to_list()
    assert joined["wind_speed"].to_list() == joined["wind_speed_expected"].to_list()
    for check in ("schema", "matches_silver"):
        assert check_result(result, "gold/departures", check).passed, check


def test_whole_history_marts_aggregate_departures_without_reading_the_lake(built, resources):
    """The marts are given the warehouse only, no lake: they rebuild from gold.departures alone."""
    _, silver, tables = built
    result = dg.materialize(GOLD_ASSETS[3:], resources={"warehouse": resources["warehouse"]})
    assert result.success
    with duckdb.connect(resources["warehouse"].database, read_only=True) as connection:
        routes = connection.sql("SELECT * FROM gold.route_performance").pl()
    assert routes.equals(tables["route_performance"])
    metadata = result.asset_materializations_for_node("gold__route_performance")[0].metadata
    assert metadata["departures_aggregated"].value == silver.height


def test_a_whole_history_mart_before_any_departures_says_what_to_build_first(tmp_path):
    warehouse = Warehouse(database=str(tmp_path / "warehouse.duckdb"))
    message = (
        r"gold\.departures does not exist in .*warehouse\.duckdb: materialize gold/departures for the days "
        r"to aggregate, then gold/route_performance"
    )
    with pytest.raises(dg.Failure, match=message):
        dg.materialize(GOLD_ASSETS[4:5], resources={"warehouse": warehouse})


def test_weather_bands_each_cover_every_flight(built):
    _, silver, tables = built
    impact = tables["weather_delay_impact"]
    per_condition = impact.group_by("condition").agg(pl.col("flights").sum())
    assert dict(per_condition.iter_rows()) == {
        c: silver.height for c in ("visibility", "wind", "precipitation")
    }


def test_features_cover_every_silver_flight_and_pass_their_checks(built):
    result, silver, tables = built
    features = tables["flight_features"]
    assert features.height == silver.height
    assert set(features["flight_id"]) == set(silver["flight_id"])
    for check in ("schema", "unique_keys", "matches_silver", "label_rate"):
        assert check_result(result, "gold/flight_features", check).passed, check
    # The first days of the data have no 28-day history yet: the check warns and names the columns.
    nulls = check_result(result, "gold/flight_features", "null_rates")
    assert not nulls.passed and "carrier_late_rate_28d" in nulls.description


def test_rebuilding_a_day_replaces_only_its_rows(built, resources):
    _, _, tables = built
    assert materialize(GOLD_ASSETS[:3], resources, JAN2).success
    for table in ("flight_features", "departures"):
        with duckdb.connect(resources["warehouse"].database, read_only=True) as connection:
            again = connection.sql(f"SELECT * FROM gold.{table}").pl()
        assert again.sort("flight_id").equals(tables[table].sort("flight_id")), table


@pytest.mark.slow
def test_a_warehouse_held_by_another_process_fails_fast_and_names_it(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(database)).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(database)!r}); print('held', flush=True); "
            "time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with (
            pytest.raises(WarehouseLockedError, match=r"warehouse\.duckdb is open in another process"),
            Warehouse(database=str(database), lock_timeout_seconds=0.5).get_connection(),
        ):
            pass
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()
