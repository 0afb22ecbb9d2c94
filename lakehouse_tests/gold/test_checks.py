"""The gold checks fail on injected bad rows and show what failed."""

from datetime import date

import dagster as dg
import polars as pl

from lakehouse.defs.gold import checks

KEY = dg.AssetKey(["gold", "test"])


def test_label_rate_fails_on_implausible_days_and_lists_them():
    features = pl.DataFrame(
        {
            "flight_date": [date(2013, 1, 1)] * 4 + [date(2013, 1, 2)] * 2,
            "late": [True, False, False, False, True, True],
        }
    )
    result = checks.label_rate_check(KEY, features)
    assert not result.passed
    assert "2013-01-02" in result.metadata["days_outside"].value
    assert "2013-01-01" not in result.metadata["days_outside"].value


def test_null_rates_warn_with_the_offending_columns():
    features = pl.DataFrame(
        {"weather_temp": [None, None, 1.0], "weather_wind_gust": [None, None, None], "distance": [1, 2, 3]}
    )
    result = checks.null_rates_check(KEY, features, ["weather_temp", "weather_wind_gust", "distance"])
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert "weather_temp" in result.description and "wind_gust" not in result.description


def test_matches_silver_lists_the_days_that_differ():
    silver = pl.DataFrame({"flight_date": [date(2013, 1, 1), date(2013, 1, 2)], "rows": [10, 5]})
    gold = pl.DataFrame({"flight_date": [date(2013, 1, 1)], "rows": [10]})
    result = checks.matches_silver_check(KEY, silver, gold)
    assert not result.passed
    assert result.metadata["days_differing"].value == 1
    assert "2013-01-02" in result.metadata["differences"].value
