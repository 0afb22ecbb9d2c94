"""The peer baseline: bronze-to-gold written the way a pandas user would write it, on the same landing
files, for the pandas comparison of ``make bench``.

It does a subset of what ``benchmarks/bare.py`` does with ``lakehouse.lib`` (Polars), so the comparison
favours pandas. It reads and types the day files, applies the type, range and day rules, and
de-duplicates on the natural keys. It computes UTC departure and arrival times with each destination's
zone. It builds the daily airport, monthly carrier and route marts. Its features are the weather at
departure (``merge_asof``) and 28-day route, carrier and origin late rates from outcomes known before
departure (``rolling('28D')`` and ``merge_asof``). Results go to Parquet files.

    python -m benchmarks.pandas_baseline --data /tmp/bench/n1 --state /tmp/pandas --through 2013-12-30
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from benchmarks.cli import range_arguments
from lakehouse.lib.contracts import FLIGHTS_SOURCE_SCHEMA
from lakehouse.lib.silver import FLIGHT_RANGES
from lakehouse.sources.replay import flights_path, weather_path

NUMERIC = [c for c, t in FLIGHTS_SOURCE_SCHEMA.items() if str(t) != "String"]


def _on_time(frame: pd.DataFrame) -> pd.Series:
    return (frame["arr_delay"] < 15) & ~frame["cancelled"] & frame["arr_delay"].notna()


def performance(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    frame = frame.assign(on_time=_on_time(frame))
    return frame.groupby(keys).agg(
        scheduled=("flight", "size"),
        cancelled=("cancelled", "sum"),
        on_time_rate=("on_time", "mean"),
        mean_dep_delay=("dep_delay", "mean"),
        median_dep_delay=("dep_delay", "median"),
        p90_dep_delay=("dep_delay", lambda s: s.quantile(0.9)),
        mean_arr_delay=("arr_delay", "mean"),
        median_arr_delay=("arr_delay", "median"),
        p90_arr_delay=("arr_delay", lambda s: s.quantile(0.9)),
    )


def late_rate(flights: pd.DataFrame, key: str) -> pd.DataFrame:
    """Each flight's 28-day late rate of its ``key``, from outcomes known before its departure."""
    known = flights.dropna(subset=["known_at"]).sort_values("known_at")
    rolled = (
        known.set_index("known_at")
        .groupby(key)["late"]
        .rolling("28D")
        .agg(["sum", "count"])
        .reset_index()
        .sort_values("known_at", kind="stable")  # ties keep time order: the last of them counts them all
    )
    rolled[f"{key}_late_rate_28d"] = rolled["sum"] / rolled["count"]
    targets = flights[["flight_id", key, "sched_dep_at"]].sort_values("sched_dep_at")
    merged = pd.merge_asof(
        targets,
        rolled[[key, "known_at", f"{key}_late_rate_28d"]],
        left_on="sched_dep_at",
        right_on="known_at",
        by=key,
        allow_exact_matches=False,
    )
    return merged[["flight_id", f"{key}_late_rate_28d"]]


def build(data: Path, state: Path, first: date, last: date) -> int:
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    landing = data / "landing"
    raw = pd.concat(
        [
            pd.read_csv(landing / flights_path(d), dtype=str, keep_default_na=False).assign(_day=d)
            for d in days
        ],
        ignore_index=True,
    )
    flights = raw.copy()
    for column in NUMERIC:
        flights[column] = pd.to_numeric(flights[column].replace("NA", None), errors="coerce")
    flights["flight_date"] = pd.to_datetime(flights[["year", "month", "day"]]).dt.date
    bad = flights[["year", "month", "day", "flight", "sched_dep_time"]].isna().any(axis=1)
    bad |= flights["flight_date"] != flights["_day"]
    for column, (low, high) in FLIGHT_RANGES.items():
        bad |= flights[column].notna() & ~flights[column].between(low, high)
    flights = flights[~bad].drop_duplicates(["flight_date", "carrier", "flight", "origin"])

    with sqlite3.connect(data / "sources" / "operational.sqlite") as connection:
        airports = pd.read_sql("SELECT faa, tzone FROM airports", connection)
    zones = dict(zip(airports["faa"], airports["tzone"], strict=True))
    flights["sched_dep_at"] = pd.to_datetime(flights["time_hour"], utc=True) + pd.to_timedelta(
        flights["minute"], unit="m"
    )
    local_arrival = pd.to_datetime(flights["flight_date"]) + pd.to_timedelta(
        (flights["sched_arr_time"] // 100) * 60 + flights["sched_arr_time"] % 100, unit="m"
    )
    flights["sched_arr_at"] = pd.Series(pd.NaT, index=flights.index, dtype="datetime64[us, UTC]")
    for dest, group in local_arrival.groupby(flights["dest"].map(zones)):
        flights.loc[group.index, "sched_arr_at"] = group.dt.tz_localize(
            dest, ambiguous="NaT", nonexistent="NaT"
        ).dt.tz_convert("UTC")
    next_day = flights["sched_arr_at"] < flights["sched_dep_at"]
    flights.loc[next_day, "sched_arr_at"] += pd.Timedelta(days=1)
    flights["cancelled"] = flights["dep_time"].isna() & flights["dep_delay"].isna()
    flights["late"] = (flights["arr_delay"] >= 15) | flights["cancelled"] | flights["arr_delay"].isna()
    flights["known_at"] = flights["sched_arr_at"] + pd.to_timedelta(flights["arr_delay"].fillna(0), unit="m")
    flights["flight_id"] = (
        flights["flight_date"].astype(str) + "-" + flights["carrier"] + "-" + flights["flight"].astype(str)
    ) + ("-" + flights["origin"])

    weather = pd.concat(
        [pd.read_json(landing / weather_path(d), lines=True) for d in days], ignore_index=True
    )
    weather["observed_at"] = pd.to_datetime(weather["time_hour"], utc=True)
    weather = weather.drop_duplicates(["origin", "observed_at"]).sort_values("observed_at")

    state.mkdir(parents=True, exist_ok=True)
    flights.drop(columns=["_day"]).to_parquet(state / "silver_flights.parquet")
    weather.to_parquet(state / "silver_weather.parquet")
    performance(flights, ["origin", "flight_date"]).to_parquet(state / "daily_airport_performance.parquet")
    flights["month"] = pd.to_datetime(flights["flight_date"]).dt.to_period("M").astype(str)
    performance(flights, ["carrier", "month"]).to_parquet(state / "carrier_monthly_performance.parquet")
    performance(flights, ["origin", "dest"]).to_parquet(state / "route_performance.parquet")

    flights["route"] = flights["origin"] + "-" + flights["dest"]
    features = pd.merge_asof(
        flights[["flight_id", "origin", "sched_dep_at", "late"]].sort_values("sched_dep_at"),
        weather[["origin", "observed_at", "temp", "wind_speed", "visib", "precip"]],
        left_on="sched_dep_at",
        right_on="observed_at",
        by="origin",
        tolerance=pd.Timedelta(hours=3),
    )
    for key in ("route", "carrier", "origin"):
        features = features.merge(late_rate(flights, key), on="flight_id", how="left")
    features.to_parquet(state / "flight_features.parquet")
    return len(flights)


def main() -> None:
    args = range_arguments(__doc__)
    print(f"{build(args.data, args.state, args.first, args.through):,} flights to gold (pandas)")


if __name__ == "__main__":
    main()
