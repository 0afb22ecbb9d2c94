"""Schema change: a column added to a delivery is kept in bronze (schema merge) and ignored by silver,
whose contract is explicit; a removed column fails the day before anything is written."""

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from lakehouse.lib.bronze import LandingFileError
from lakehouse.sources.replay import flights_path
from lakehouse_tests.pipeline import check_result, ingest, rows_for

JAN1, JAN2 = date(2013, 1, 1), date(2013, 1, 2)


def test_an_added_column_is_kept_in_bronze_and_ignored_by_silver(landed: Path, resources, lake):
    assert ingest(resources, JAN1).success
    file = landed / "landing" / flights_path(JAN2)
    header, *rows = file.read_text().splitlines()
    file.write_text("\n".join([f"{header},gate", *(f"{row},B{i % 40}" for i, row in enumerate(rows))]) + "\n")
    result = ingest(resources, JAN2)
    assert result.success
    bronze = lake.scan("bronze/flights").collect()
    assert bronze.filter(pl.col("_landing_date") == JAN2)["gate"].null_count() == 0
    assert bronze.filter(pl.col("_landing_date") == JAN1)["gate"].null_count() == len(
        rows_for(lake, "bronze/flights", "_landing_date", JAN1)
    )
    assert "gate" not in lake.scan("silver/flights").collect_schema().names()
    assert rows_for(lake, "silver/flights", "flight_date", JAN2).height == len(rows)
    assert check_result(result, "silver/flights", "schema").passed
    assert check_result(result, "silver/flights", "row_conservation").passed


def test_a_removed_column_fails_the_day_and_writes_nothing(landed: Path, resources, lake):
    assert ingest(resources, JAN1).success
    versions = {t: lake.version(t) for t in ("bronze/flights", "silver/flights", "silver/quarantine")}
    file = landed / "landing" / flights_path(JAN2)
    lines = [",".join(line.split(",")[:-1]) for line in file.read_text().splitlines()]  # drop time_hour
    file.write_text("\n".join(lines) + "\n")
    with pytest.raises(LandingFileError, match=r"2013-01-02\.csv, line 1: missing column\(s\) time_hour"):
        ingest(resources, JAN2)
    assert {t: lake.version(t) for t in versions} == versions
