"""The pandas baseline's exact subset of bronze-to-gold, written in Polars the way this project writes
transforms (lazy scans, expressions, as-of joins), so the pandas comparison is like for like.

Step for step it does what ``benchmarks/pandas_baseline.py`` does and writes the same Parquet files:
type and rule the flights, de-duplicate, UTC times by destination zone, three marts, weather at
departure and 28-day late rates of the route, the carrier and the origin from outcomes known before
departure.

    python -m benchmarks.polars_subset --data /tmp/bench/n1 --state /tmp/polars --through 2013-12-30
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from benchmarks.cli import range_arguments
from lakehouse.lib.contracts import FLIGHTS_SOURCE_SCHEMA, MISSING, WEATHER_SOURCE_SCHEMA
from lakehouse.lib.silver import FLIGHT_RANGES
from lakehouse.sources.replay import flights_path, weather_path

UTC = pl.Datetime("us", "UTC")


def performance(frame: pl.LazyFrame, keys: list[str]) -> pl.LazyFrame:
    on_time = (pl.col("arr_delay") < 15) & ~pl.col("cancelled") & pl.col("arr_delay").is_not_null()
    return frame.group_by(keys).agg(
        scheduled=pl.len(),
        cancelled=pl.col("cancelled").sum(),
        on_time_rate=on_time.mean(),
        mean_dep_delay=pl.col("dep_delay").mean(),
        median_dep_delay=pl.col("dep_delay").median(),
        p90_dep_delay=pl.col("dep_delay").quantile(0.9, "linear"),
        mean_arr_delay=pl.col("arr_delay").mean(),
        median_arr_delay=pl.col("arr_delay").median(),
        p90_arr_delay=pl.col("arr_delay").quantile(0.9, "linear"),
    )


def late_rate(flights: pl.LazyFrame, key: str) -> pl.LazyFrame:
    """Each flight's 28-day late rate of its ``key``, from outcomes known before its departure."""
    rolled = (
        flights.filter(pl.col("known_at").is_not_null())
        .sort("known_at")
        .rolling("known_at", period="28d", group_by=key)
        .agg(late=pl.col("late").sum(), known=pl.len())
        .with_columns((pl.col("late") / pl.col("known")).alias(f"{key}_late_rate_28d"))
        .sort("known_at")
    )
    targets = flights.select("flight_id", key, "sched_dep_at").sort("sched_dep_at")
    return targets.join_asof(
        rolled.select(key, "known_at", f"{key}_late_rate_28d"),
        left_on="sched_dep_at",
        right_on="known_at",
        by=key,
        allow_exact_matches=False,
    ).select("flight_id", f"{key}_late_rate_28d")


def build(data: Path, state: Path, first: date, last: date) -> int:
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    landing = data / "landing"
    raw = pl.concat(
        [
            pl.scan_csv(landing / flights_path(d), infer_schema=False).with_columns(_day=pl.lit(d))
            for d in days
        ]
    )
    numeric = [c for c, t in FLIGHTS_SOURCE_SCHEMA.items() if t != pl.String()]
    typed = raw.with_columns(
        [pl.col(c).replace(MISSING, None).cast(pl.Int32, strict=False) for c in numeric]
    ).with_columns(flight_date=pl.date("year", "month", "day"))
    bad = pl.any_horizontal(pl.col("year", "month", "day", "flight", "sched_dep_time").is_null())
    bad = bad | (pl.col("flight_date") != pl.col("_day"))
    for column, (low, high) in FLIGHT_RANGES.items():
        bad = bad | (pl.col(column).is_not_null() & ~pl.col(column).is_between(low, high))
    flights = typed.filter(~bad).unique(["flight_date", "carrier", "flight", "origin"], keep="first")

    with sqlite3.connect(data / "sources" / "operational.sqlite") as connection:
        zones = dict(connection.execute("SELECT faa, tzone FROM airports WHERE tzone IS NOT NULL").fetchall())
    local_arrival = pl.col("flight_date").cast(pl.Datetime("us")) + pl.duration(
        hours=pl.col("sched_arr_time") // 100, minutes=pl.col("sched_arr_time") % 100
    )
    dest_zone = pl.col("dest").replace_strict(zones, default=None)
    arrival = pl.coalesce(
        [
            pl.when(dest_zone == zone).then(
                local_arrival.dt.replace_time_zone(
                    zone, ambiguous="null", non_existent="null"
                ).dt.convert_time_zone("UTC")
            )
            for zone in sorted(set(zones.values()))
        ]
    )
    flights = (
        flights.with_columns(
            sched_dep_at=pl.col("time_hour").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC")
            + pl.duration(minutes=pl.col("minute")),
            _arr=arrival,
        )
        .with_columns(
            sched_arr_at=pl.when(pl.col("_arr") < pl.col("sched_dep_at"))
            .then(pl.col("_arr") + pl.duration(days=1))
            .otherwise(pl.col("_arr")),
            cancelled=pl.col("dep_time").is_null() & pl.col("dep_delay").is_null(),
        )
        .with_columns(
            late=(pl.col("arr_delay") >= 15) | pl.col("cancelled") | pl.col("arr_delay").is_null(),
            known_at=pl.col("sched_arr_at") + pl.duration(minutes=pl.col("arr_delay").fill_null(0)),
            flight_id=pl.format("{}-{}-{}-{}", "flight_date", "carrier", "flight", "origin"),
            route=pl.format("{}-{}", "origin", "dest"),
            month=pl.col("flight_date").dt.strftime("%Y-%m"),
        )
        .drop("_arr", "_day")
        .collect()
        .lazy()
    )
    weather = (
        pl.concat([pl.scan_ndjson(landing / weather_path(d), schema=WEATHER_SOURCE_SCHEMA) for d in days])
        .with_columns(observed_at=pl.col("time_hour").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC"))
        .unique(["origin", "observed_at"], keep="first")
        .sort("observed_at")
    )

    state.mkdir(parents=True, exist_ok=True)
    flights.sink_parquet(state / "silver_flights.parquet")
    weather.sink_parquet(state / "silver_weather.parquet")
    performance(flights, ["origin", "flight_date"]).sink_parquet(state / "daily_airport_performance.parquet")
    performance(flights, ["carrier", "month"]).sink_parquet(state / "carrier_monthly_performance.parquet")
    performance(flights, ["origin", "dest"]).sink_parquet(state / "route_performance.parquet")

    features = (
        flights.select("flight_id", "origin", "sched_dep_at", "late")
        .sort("sched_dep_at")
        .join_asof(
            weather.select("origin", "observed_at", "temp", "wind_speed", "visib", "precip"),
            left_on="sched_dep_at",
            right_on="observed_at",
            by="origin",
            tolerance="3h",
        )
    )
    for key in ("route", "carrier", "origin"):
        features = features.join(late_rate(flights, key), on="flight_id", how="left")
    features.sink_parquet(state / "flight_features.parquet")
    return flights.select(pl.len()).collect().item()


def main() -> None:
    args = range_arguments(__doc__)
    print(f"{build(args.data, args.state, args.first, args.through):,} flights to gold (Polars, same subset)")


if __name__ == "__main__":
    main()
