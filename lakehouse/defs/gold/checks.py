"""The checks of the gold tables: contracts and completeness block, null rates warn."""

from datetime import date

import dagster as dg
import polars as pl

from lakehouse.catalog import LABEL_RATE, MATCHES_SILVER, NULL_RATES
from lakehouse.lib.features import FEATURE_COLUMNS
from lakehouse.metadata import markdown_table

# A day's late rate outside this range means the labels, not the airlines, went wrong. Real days come
# close to both ends: 83 % late in the 8 March 2013 snowstorm, under 3 % on quiet autumn days.
LABEL_RATE_RANGE = (0.005, 0.97)
# Most null a feature may be before it warns; the rest are the known gaps of the data.
DEFAULT_MAX_NULL_RATE = 0.05
MAX_NULL_RATES = {
    "weather_wind_gust": 1.0,  # reported only when gusting
    "weather_pressure": 0.25,
    "weather_wind_dir": 0.10,
    "plane_age": 0.25,  # planes missing from the reference table, or without a year
    "plane_seats": 0.20,
    "plane_engines": 0.20,
    "origin_mean_dep_delay_2h": 0.25,  # nothing left in the two hours before (early mornings)
    "plane_mean_dep_delay_today": 1.0,  # a plane's first flight of the day has no earlier departure
    "plane_last_dep_delay": 1.0,
    # Nothing has happened yet today for the first flights of the morning.
    "origin_mean_dep_delay_today": 0.30,
    "carrier_origin_mean_dep_delay_today": 0.60,
    "origin_late_rate_today": 0.35,
    "dest_late_rate_today": 0.90,
    # Histories: a new route, flight number or plane has none; yesterday's, none after a day off.
    **dict.fromkeys(
        [
            *(f"route_{m}_{d}" for m in ("late_rate", "mean_arr_delay") for d in ("28d", "1d")),
            "flight_number_late_rate_28d",
            "flight_number_mean_arr_delay_28d",
        ],
        0.10,
    ),
    **dict.fromkeys(["flight_number_late_rate_7d", "flight_number_mean_arr_delay_7d"], 0.15),
    **dict.fromkeys(["flight_number_late_rate_1d", "flight_number_mean_arr_delay_1d"], 0.40),
    **dict.fromkeys(["tail_late_rate_28d", "tail_mean_arr_delay_28d"], 0.10),
    **dict.fromkeys(["tail_late_rate_7d", "tail_mean_arr_delay_7d"], 0.35),
    # A plane's first departure from New York in two days has no previous leg.
    **dict.fromkeys([c for c in FEATURE_COLUMNS if c.startswith("prev_leg_")], 1.0),
}


def daily_rows(rows: dict[date, int]) -> pl.DataFrame:
    """Rows per day already counted (``partitions.rows_per_day``), as ``rows_by_date`` gives them."""
    return pl.DataFrame(
        {"flight_date": list(rows), "rows": list(rows.values())},
        schema={"flight_date": pl.Date, "rows": pl.Int64},
    )


def rows_by_date(frame: pl.DataFrame, rows: pl.Expr | None = None) -> pl.DataFrame:
    """Rows per day (or the sum of ``rows`` per day), as the ``matches_silver`` check compares them."""
    return frame.group_by("flight_date").agg(rows=(pl.len() if rows is None else rows).cast(pl.Int64))


def matches_silver_check(
    asset_key: dg.AssetKey, silver: pl.DataFrame, gold: pl.DataFrame
) -> dg.AssetCheckResult:
    """``silver`` and ``gold`` are frames of ``flight_date`` and ``rows``."""
    ledger = (
        silver.rename({"rows": "silver"})
        .join(gold.rename({"rows": "gold"}), on="flight_date", how="full", coalesce=True)
        .fill_null(0)
        .filter(pl.col("silver") != pl.col("gold"))
        .sort("flight_date")
    )
    return dg.AssetCheckResult(
        check_name=MATCHES_SILVER.name,
        asset_key=asset_key,
        passed=ledger.height == 0,
        description=f"{ledger.height} day(s) differ from silver"
        if ledger.height
        else "every day matches silver",
        metadata={
            "days_differing": ledger.height,
            "differences": dg.MetadataValue.md(markdown_table(ledger, 20)),
        },
    )


def label_rate_check(asset_key: dg.AssetKey, features: pl.DataFrame) -> dg.AssetCheckResult:
    low, high = LABEL_RATE_RANGE
    daily = features.group_by("flight_date").agg(late_rate=pl.col("late").mean()).sort("flight_date")
    outside = daily.filter(~pl.col("late_rate").is_between(low, high))
    overall = features["late"].mean() if features.height else None
    if outside.height:
        listed = ", ".join(f"{day} ({rate:.3f})" for day, rate in outside.head(5).iter_rows())
        more = f" and {outside.height - 5} more" if outside.height > 5 else ""
        description = f"{outside.height} day(s) with a late rate outside [{low}, {high}]: {listed}{more}"
    else:
        description = f"late rate {overall:.3f}" if overall is not None else "no flights"
    return dg.AssetCheckResult(
        check_name=LABEL_RATE.name,
        asset_key=asset_key,
        passed=outside.height == 0,
        description=description,
        metadata={
            "late_rate": overall if overall is not None else float("nan"),
            "days_outside": dg.MetadataValue.md(markdown_table(outside, 20)),
        },
    )


def null_rates_check(
    asset_key: dg.AssetKey, features: pl.DataFrame, columns: list[str]
) -> dg.AssetCheckResult:
    rates = features.select(pl.col(columns).null_count() / max(features.height, 1)).row(0, named=True)
    table = pl.DataFrame(
        {
            "feature": list(rates),
            "null_rate": list(rates.values()),
            "max_null_rate": [MAX_NULL_RATES.get(c, DEFAULT_MAX_NULL_RATE) for c in rates],
        }
    )
    offending = table.filter(pl.col("null_rate") > pl.col("max_null_rate"))
    return dg.AssetCheckResult(
        check_name=NULL_RATES.name,
        asset_key=asset_key,
        passed=offending.height == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"too many nulls in {', '.join(offending['feature'])}"
        if offending.height
        else "every feature within its null bound",
        metadata={
            "offending": dg.MetadataValue.md(markdown_table(offending, 40)),
            "null_rates": dg.MetadataValue.md(markdown_table(table.sort("null_rate", descending=True), 40)),
        },
    )
