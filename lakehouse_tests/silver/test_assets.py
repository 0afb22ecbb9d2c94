"""The bronze and silver assets on real landed days, real Delta tables and a real SQLite database."""

from dataclasses import replace
from datetime import date
from pathlib import Path

import polars as pl

from lakehouse import catalog
from lakehouse.defs.silver.assets import daily_silver_asset
from lakehouse.lib.silver import QUARANTINE_SCHEMA, Cleaned, clean_weather
from lakehouse.partitions import Chunking
from lakehouse.sources.replay import flights_path, weather_path
from lakehouse_tests.pipeline import TABLES, check_result, content_hash, ingest, materialize, rows_for

JAN1, JAN2, FEB12, NOV3 = date(2013, 1, 1), date(2013, 1, 2), date(2013, 2, 12), date(2013, 11, 3)


def source_lines(landed: Path, day: date) -> int:
    return len((landed / "landing" / flights_path(day)).read_text().splitlines()) - 1


def test_a_two_day_run_accounts_for_every_row(landed, resources, lake):
    result = ingest(resources, JAN1, JAN2)
    assert result.success
    for day in (JAN1, JAN2):
        bronze = rows_for(lake, "bronze/flights", "_landing_date", day)
        flights = rows_for(lake, "silver/flights", "flight_date", day)
        assert bronze.height == source_lines(landed, day)
        assert flights.height == bronze.height  # the real January days hold no bad flight
    for table, check in [
        ("silver/flights", "schema"),
        ("silver/flights", "unique_keys"),
        ("silver/flights", "row_conservation"),
        ("silver/weather", "row_conservation"),
        ("silver/planes", "row_conservation"),
    ]:
        assert check_result(result, table, check).passed, (table, check)
    references = check_result(result, "silver/flights", "referential_integrity")
    assert not references.passed  # real data: tails missing from planes, warned, not failed
    assert references.metadata["tailnum_not_in_planes_rows"].value > 0
    assert lake.scan("silver/planes").select(pl.len()).collect().item() == 3322


def test_running_twice_changes_no_table(resources, lake):
    ingest(resources, JAN1, JAN2)
    before = {t: content_hash(lake, t) for t in TABLES}
    bronze_version = lake.version("bronze/flights")
    result = ingest(resources, JAN1, JAN2)
    assert result.success
    assert {t: content_hash(lake, t) for t in TABLES} == before
    assert lake.version("bronze/flights") == bronze_version  # unchanged files are not reloaded


def test_silver_days_whose_bronze_is_unchanged_are_not_rewritten_unless_asked(resources, lake):
    ingest(resources, JAN1, JAN2)
    versions = {t.path: lake.version(t.path) for t in catalog.layer("silver")}
    again = ingest(resources, JAN1, JAN2)
    assert {t.path: lake.version(t.path) for t in catalog.layer("silver") if t.daily} == {
        t.path: versions[t.path] for t in catalog.layer("silver") if t.daily
    }
    flights = metadata_of(again, catalog.SILVER_FLIGHTS)
    assert (flights["days_cleaned"], flights["days_unchanged"], flights["dagster/row_count"]) == (0, 2, 0)
    assert check_result(again, "silver/flights", "schema").passed  # the kept rows are still checked
    assert check_result(again, "silver/flights", "row_conservation").passed

    # A corrected file of one day: that day alone is cleaned again.
    file = resources["sources"].landing_uri + "/" + flights_path(JAN2)
    content = Path(file).read_bytes()
    Path(file).write_bytes(content + content.split(b"\n")[1] + b"\n")  # its first row, delivered twice
    corrected = metadata_of(ingest(resources, JAN1, JAN2), catalog.SILVER_FLIGHTS)
    assert (corrected["days_cleaned"], corrected["days_unchanged"]) == (1, 1)

    rebuild = {"ops": {"silver__flights": {"config": {"rebuild": True}}}}
    rebuilt = metadata_of(ingest(resources, JAN1, JAN2, run_config=rebuild), catalog.SILVER_FLIGHTS)
    assert (rebuilt["days_cleaned"], rebuilt["days_unchanged"]) == (2, 0)
    assert lake.version(catalog.SILVER_FLIGHTS.path) > versions[catalog.SILVER_FLIGHTS.path]


def metadata_of(result, table) -> dict:
    """The metadata of the run's materialization of ``table`` (one event per day, the same metadata)."""
    events = [
        e for e in result.get_asset_materialization_events() if e.materialization.asset_key == table.key
    ]
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def test_impossible_wind_is_quarantined_and_rows_balance(resources, lake):
    result = ingest(resources, FEB12)
    quarantined = lake.scan("silver/quarantine").filter(pl.col("source_table") == "weather").collect()
    assert quarantined["rule"].to_list() == ["out_of_range"]
    assert "wind_speed=1048.36" in quarantined["detail"][0]
    assert quarantined["partition_date"][0] == FEB12
    conservation = check_result(result, "silver/weather", "row_conservation")
    assert conservation.passed
    assert conservation.metadata["quarantined_rows"].value == 1


def test_daylight_saving_end_keeps_both_repeated_hours(resources, lake):
    assert ingest(resources, NOV3).success
    weather = rows_for(lake, "silver/weather", "observation_date", NOV3)
    bronze = rows_for(lake, "bronze/weather", "_landing_date", NOV3)
    assert weather.height == bronze.height
    # 01:00 local happened twice: 05:00 and 06:00 UTC, both kept.
    repeated = weather.filter((pl.col("origin") == "EWR") & (pl.col("observed_at").dt.hour().is_in([5, 6])))
    assert repeated.height == 2


def test_a_corrected_redelivery_replaces_only_its_day(landed, resources, lake):
    ingest(resources, JAN1, JAN2)
    jan1 = content_hash(lake, "silver/flights"), rows_for(lake, "silver/flights", "flight_date", JAN1)
    file = landed / "landing" / flights_path(JAN2)
    header, first, *rest = file.read_text().splitlines()
    broken = first.split(",")
    broken[5] = "late"  # dep_delay
    file.write_text("\n".join([header, first, *rest[:-1], first, ",".join(broken)]) + "\n")

    result = ingest(resources, JAN2)
    assert result.success
    assert rows_for(lake, "silver/flights", "flight_date", JAN1).equals(jan1[1])
    quarantined = lake.scan("silver/quarantine").filter(pl.col("source_table") == "flights").collect()
    assert sorted(quarantined["rule"].to_list()) == ["duplicate_key", "invalid_type"]
    assert "dep_delay=late" in quarantined.filter(pl.col("rule") == "invalid_type")["detail"][0]
    assert check_result(result, "silver/flights", "row_conservation").passed
    assert rows_for(lake, "silver/flights", "flight_date", JAN2).height == len(rest) - 1 + 1


def test_a_day_without_its_file_is_loaded_empty_and_warned(landed, resources, lake):
    (landed / "landing" / weather_path(JAN2)).unlink()
    result = ingest(resources, JAN1, JAN2)
    assert result.success
    complete = check_result(result, "bronze/weather", "landing_complete")
    assert not complete.passed
    assert complete.metadata["missing_files"].value == ["weather/2013-01-02.jsonl"]
    assert rows_for(lake, "silver/weather", "observation_date", JAN2).height == 0


def test_a_new_silver_table_is_a_catalog_entry_and_its_transform(resources, lake):
    """A table the project does not have (the weather above freezing, say) needs only its entry and a
    transform: its asset, checks, quarantine slice and conservation ledger all follow from the entry."""

    def mild_weather(bronze: pl.LazyFrame, reads: dict) -> Cleaned:
        cleaned = clean_weather(bronze, reads)
        freezing = pl.col("temp") <= 32
        cold = cleaned.rows.filter(freezing).select(
            source_table=pl.lit("mild_weather"),
            partition_date="observation_date",
            rule=pl.lit("at_or_below_freezing"),
            detail=pl.format("temp={}", "temp"),
            source_file="_source_file",
            source_line="_source_line",
            raw=pl.lit("{}"),
            run_id="_run_id",
            loaded_at="_loaded_at",
        )
        mild = cleaned.rows.filter(~freezing | pl.col("temp").is_null())
        return Cleaned(mild, pl.concat([cleaned.quarantine, cold.cast(QUARANTINE_SCHEMA)]))

    entry = replace(
        catalog.SILVER_WEATHER,
        name="mild_weather",
        description="Observations above freezing.",
        transform=mild_weather,
    )
    asset = daily_silver_asset(entry)
    assert ingest(resources, JAN1).success
    result = materialize([asset], resources, JAN1)
    assert result.success
    mild = lake.scan(entry.path).collect()
    weather = lake.scan(catalog.SILVER_WEATHER.path).collect()
    assert 0 < mild.height < weather.height and (mild["temp"] > 32).all()
    for check in entry.checks:
        assert check_result(result, entry.path, check.name).passed or check.name == "referential_integrity"
    quarantined = lake.scan(catalog.SILVER_QUARANTINE.path).filter(pl.col("source_table") == entry.name)
    assert quarantined.select(pl.len()).collect().item() == weather.height - mild.height


def test_references_checked_in_chunks_count_each_missing_code_once(resources, lake):
    one_day_chunks = resources | {"chunking": Chunking(max_days=1)}
    result = ingest(one_day_chunks, JAN1, JAN2)
    flights = lake.scan(catalog.SILVER_FLIGHTS.path).collect()
    planes = lake.scan(catalog.SILVER_PLANES.path).collect()["tailnum"]
    missing = flights.filter(pl.col("tailnum").is_not_null() & ~pl.col("tailnum").is_in(planes.implode()))
    check = check_result(result, "silver/flights", "referential_integrity")
    assert check.metadata["tailnum_not_in_planes_values"].value == missing["tailnum"].n_unique() > 0
    assert check.metadata["tailnum_not_in_planes_rows"].value == missing.height
    examples = check.metadata["tailnum_examples"].value
    top = missing.group_by("tailnum").len().sort("len", "tailnum", descending=[True, False])["tailnum"][0]
    assert top in examples
