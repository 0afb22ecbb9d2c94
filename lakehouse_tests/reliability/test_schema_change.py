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


def test_a_retyped_column_fails_the_blocking_schema_check_and_writes_nothing(landed: Path, resources, lake):
    assert ingest(resources, JAN1).success
    file = landed / "landing" / flights_path(JAN2)
    frame = pl.read_csv(file, infer_schema=False)
    # The source starts sending delays as text with a unit: every value of the column fails its type.
    frame = frame.with_columns(pl.format("{} min", "dep_delay").alias("dep_delay"))
    file.write_text(frame.write_csv())
    before = lake.version("silver/flights")
    result = ingest(resources, JAN2, raise_on_error=False)
    assert not result.success
    schema = check_result(result, "silver/flights", "schema")
    assert not schema.passed
    assert "2013-01-02.csv: column dep_delay should be Int32 but none of its" in schema.description
    assert "(for example '" in schema.description and " min'" in schema.description
    failure = result.failure_data_for_node("silver__flights").error
    assert "column dep_delay should be Int32" in failure.message
    assert lake.version("silver/flights") == before
    assert rows_for(lake, "silver/flights", "flight_date", JAN2).height == 0
    quarantined = rows_for(lake, "silver/quarantine", "partition_date", JAN2)
    assert quarantined.filter(pl.col("source_table") == "flights").height == 0
    # The other assets of the run, weather among them, are not held back by the flights file.
    assert rows_for(lake, "silver/weather", "observation_date", JAN2).height > 0


def test_a_few_bad_values_in_a_column_are_rows_for_quarantine_not_a_changed_type(
    landed: Path, resources, lake
):
    file = landed / "landing" / flights_path(JAN2)
    frame = pl.read_csv(file, infer_schema=False).with_row_index()
    frame = frame.with_columns(
        dep_delay=pl.when(pl.col("index") < 3).then(pl.lit("late")).otherwise("dep_delay")
    ).drop("index")
    file.write_text(frame.write_csv())
    assert ingest(resources, JAN2).success
    quarantined = rows_for(lake, "silver/quarantine", "partition_date", JAN2)
    assert quarantined["rule"].to_list() == ["invalid_type"] * 3
    assert rows_for(lake, "silver/flights", "flight_date", JAN2).height == frame.height - 3
