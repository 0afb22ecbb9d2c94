import json
from datetime import UTC, date, datetime, timedelta

import pandera.polars as pa
import polars as pl
import pytest

from lakehouse.lib.bronze import read_flights_file, read_jsonl_file, reference_frame
from lakehouse.lib.contracts import FLIGHTS_SOURCE_SCHEMA, WEATHER_SOURCE_SCHEMA
from lakehouse.lib.silver import (
    QUARANTINE_SCHEMA,
    clean_flights,
    clean_reference,
    clean_weather,
    contract_rules,
)

HEADER = ",".join(FLIGHTS_SOURCE_SCHEMA)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ZONES = {
    "EWR": "America/New_York",
    "IAH": "America/Chicago",
    "LAX": "America/Los_Angeles",
    "JFK": "America/New_York",
    "LGA": "America/New_York",
}
AIRPORTS = pl.DataFrame({"faa": list(ZONES), "tzone": list(ZONES.values())})


def flight(**overrides: str) -> str:
    """A source CSV line: UA 1545 EWR to IAH on 1 January 2013, with some fields replaced."""
    values = dict(
        zip(
            FLIGHTS_SOURCE_SCHEMA,
            [
                "2013",
                "1",
                "1",
                "517",
                "515",
                "2",
                "830",
                "819",
                "11",
                "UA",
                "1545",
                "N14228",
                "EWR",
                "IAH",
                "227",
                "1400",
                "5",
                "15",
                "2013-01-01T10:00:00Z",
            ],
            strict=True,
        )
    )
    values.update(overrides)
    return ",".join(values.values())


def flights(*lines: str, day: date = date(2013, 1, 1)):
    content = "\n".join([HEADER, *lines]).encode() + b"\n"
    bronze = read_flights_file(content, "f.csv", day, NOW, "run-1")
    return bronze, clean_flights(bronze.lazy(), {"airports": AIRPORTS})


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_times_become_utc_from_local_clock_times():
    _, cleaned = flights(flight())
    row = cleaned.rows.row(0, named=True)
    assert row["flight_id"] == "2013-01-01-UA-1545-EWR"
    assert row["sched_dep_at"] == utc(2013, 1, 1, 10, 15)  # 05:15 in New York
    assert row["dep_at"] == utc(2013, 1, 1, 10, 17)
    assert row["sched_arr_at"] == utc(2013, 1, 1, 14, 19)  # 08:19 in Houston
    assert row["arr_at"] == utc(2013, 1, 1, 14, 30)
    assert not row["cancelled"] and not row["diverted"]


def test_arrival_after_midnight_lands_the_next_day():
    # Leaves 23:59 from New York (04:59 UTC next day), arrives 02:10 Los Angeles time.
    _, cleaned = flights(
        flight(
            sched_dep_time="2359",
            hour="23",
            minute="59",
            dep_time="2400",
            dep_delay="1",
            sched_arr_time="210",
            arr_time="215",
            arr_delay="5",
            dest="LAX",
            time_hour="2013-01-02T04:00:00Z",
        )
    )
    row = cleaned.rows.row(0, named=True)
    assert row["sched_dep_at"] == utc(2013, 1, 2, 4, 59)
    assert row["dep_at"] == utc(2013, 1, 2, 5, 0)
    assert row["sched_arr_at"] == utc(2013, 1, 2, 10, 10)
    assert row["arr_at"] == utc(2013, 1, 2, 10, 15)


def test_cancelled_and_diverted_flights_are_flagged():
    _, cleaned = flights(
        flight(flight="1", dep_time="NA", dep_delay="NA", arr_time="NA", arr_delay="NA", air_time="NA"),
        flight(flight="2", arr_time="NA", arr_delay="NA", air_time="NA"),
    )
    rows = {r["flight"]: r for r in cleaned.rows.iter_rows(named=True)}
    assert rows[1]["cancelled"] and rows[1]["dep_at"] is None and not rows[1]["diverted"]
    assert rows[2]["diverted"] and not rows[2]["cancelled"] and rows[2]["arr_at"] is None


def test_unknown_destination_zone_keeps_delays_and_leaves_arrival_times_empty():
    _, cleaned = flights(flight(dest="XYZ"))
    row = cleaned.rows.row(0, named=True)
    assert row["sched_arr_at"] is None and row["arr_at"] is None and row["arr_delay"] == 11
    # Its label counts as known only at the cap: the end of the day after its date.
    assert row["outcome_known_at"] == datetime(2013, 1, 3, tzinfo=UTC)


def test_a_caribbean_destination_takes_its_zone_from_the_projects_reference_data():
    """airports.csv lists SJU without a zone; America/Puerto_Rico (UTC-4, no daylight saving) is ours."""
    _, cleaned = flights(flight(dest="SJU"))
    row = cleaned.rows.row(0, named=True)
    assert row["sched_arr_at"] is not None and row["arr_delay"] == 11
    assert row["arr_at"] - row["sched_arr_at"] == timedelta(minutes=11)


@pytest.mark.parametrize(
    ("overrides", "rule", "detail"),
    [
        ({"dep_delay": "abc"}, "invalid_type", "dep_delay=abc is not Int32"),
        ({"carrier": "NA"}, "missing_value", "carrier is missing"),
        ({"day": "2"}, "date_outside_file_day", "flight date 2013-01-02 in the file for 2013-01-01"),
        ({"sched_dep_time": "575", "minute": "75"}, "invalid_clock_time", "sched_dep_time=575"),
        ({"distance": "-5"}, "out_of_range", "distance=-5 outside"),
        ({"arr_delay": "99999"}, "out_of_range", "arr_delay=99999"),
        ({"time_hour": "yesterday"}, "invalid_type", "time_hour=yesterday"),
        ({"hour": "6"}, "inconsistent_schedule", "hour=6 minute=15 disagree"),
        ({"origin": "NEWARK"}, "invalid_code", "origin=NEWARK"),
    ],
)
def test_a_rule_breaking_row_is_quarantined_with_its_rule(overrides, rule, detail):
    bronze, cleaned = flights(flight(flight="1"), flight(flight="2", **overrides))
    assert cleaned.rows["flight"].to_list() == [1]
    quarantined = cleaned.quarantine.row(0, named=True)
    assert quarantined["rule"] == rule
    assert detail in quarantined["detail"]
    assert quarantined["source_line"] == 3
    assert json.loads(quarantined["raw"])["flight"] == "2"
    assert cleaned.rows.height + cleaned.quarantine.height == bronze.height


def test_duplicates_keep_the_first_row_and_quarantine_the_rest():
    _bronze, cleaned = flights(flight(), flight(dep_delay="3"), flight())
    assert cleaned.rows["dep_delay"].to_list() == [2]
    assert cleaned.quarantine["rule"].to_list() == ["duplicate_key", "duplicate_key"]
    assert cleaned.quarantine["source_line"].to_list() == [3, 4]
    assert cleaned.quarantine.schema == pl.Schema(QUARANTINE_SCHEMA)


def weather(*records: dict | str, day: date = date(2013, 11, 3)):
    base = {
        "origin": "EWR",
        "year": 2013,
        "month": 11,
        "day": 3,
        "hour": 1,
        "temp": 51.98,
        "dewp": 39.02,
        "humid": 61.15,
        "wind_dir": 310,
        "wind_speed": 6.9,
        "wind_gust": None,
        "precip": 0,
        "pressure": 1009.8,
        "visib": 10,
        "time_hour": "2013-11-03T05:00:00Z",
    }
    lines = [r if isinstance(r, str) else json.dumps(base | r) for r in records]
    bronze = read_jsonl_file("\n".join(lines).encode(), "w.jsonl", day, NOW, "run-1")
    return bronze, clean_weather(bronze.lazy())


def test_repeated_local_hour_at_daylight_saving_end_is_two_observations():
    _, cleaned = weather({}, {"time_hour": "2013-11-03T06:00:00Z", "temp": 50.0})
    assert cleaned.quarantine.height == 0
    assert cleaned.rows["observed_at"].to_list() == [utc(2013, 11, 3, 5), utc(2013, 11, 3, 6)]
    assert set(cleaned.rows.columns) >= set(WEATHER_SOURCE_SCHEMA) - {
        "year",
        "month",
        "day",
        "hour",
        "time_hour",
    }


def test_weather_rules_quarantine_broken_and_impossible_records():
    bronze, cleaned = weather(
        {},
        "{not json",
        "[1, 2]",
        {"time_hour": "2013-11-03T07:00:00Z", "wind_speed": 1048.36},
        {"time_hour": "2013-11-03T08:00:00Z", "visib": "far"},
        {},
    )
    rules = dict(zip(cleaned.quarantine["source_line"], cleaned.quarantine["rule"], strict=True))
    assert rules == {
        2: "malformed_json",
        3: "malformed_json",
        4: "out_of_range",
        5: "invalid_type",
        6: "duplicate_key",
    }
    assert cleaned.quarantine.filter(pl.col("source_line") == 2)["raw"][0] == "{not json"
    assert cleaned.rows.height + cleaned.quarantine.height == bronze.height == 6


def test_reference_duplicates_and_bad_zones_are_quarantined():
    rows = [
        (1, "JFK", "John F Kennedy Intl", "40.6", "-73.8", "13", "-5", "A", "America/New_York"),
        (2, "JFK", "Kennedy again", "40.6", "-73.8", "13", "-5", "A", "America/New_York"),
        (3, "XXX", "Nowhere", "95.0", "0", "0", "0", "A", "Mars/Olympus"),
        (4, "YYY", "Elsewhere", "10", "0", "0", "0", "A", "Mars/Olympus"),
    ]
    columns = ["faa", "name", "lat", "lon", "alt", "tz", "dst", "tzone"]
    bronze = reference_frame(rows, columns, "airports", "sum", NOW, "run-1")
    cleaned = clean_reference("airports", bronze.lazy())
    assert cleaned.rows["faa"].to_list() == ["JFK"]
    assert cleaned.quarantine["rule"].to_list() == ["out_of_range", "invalid_timezone", "duplicate_key"]
    assert cleaned.quarantine["partition_date"].null_count() == 3


def test_every_kind_of_contract_check_becomes_a_quarantine_rule():
    class Contract(pa.DataFrameModel):
        low: pl.Int32 = pa.Field(ge=0)
        high: pl.Int32 = pa.Field(lt=5)
        code: str = pa.Field(str_matches=r"^[A-Z]{2}$")
        kind: str = pa.Field(isin=["a", "b"])
        span: pl.Int32 = pa.Field(in_range={"min_value": 1, "max_value": 3})

    rows = pl.DataFrame(
        {"low": [-1, 0], "high": [5, 4], "code": ["U", "UA"], "kind": ["c", "a"], "span": [9, 2]}
    )
    rules = contract_rules(Contract, list(rows.columns))
    found = rows.select(*(rule.broken.alias(str(i)) for i, rule in enumerate(rules)))
    assert [rule.name for rule in rules] == [
        "out_of_range",
        "out_of_range",
        "invalid_code",
        "not_allowed",
        "out_of_range",
    ]
    assert found.row(0) == (True,) * 5 and found.row(1) == (False,) * 5
    details = rows.head(1).select(*(rule.detail.alias(str(i)) for i, rule in enumerate(rules))).row(0)
    assert details == (
        "low=-1 is not >= 0",
        "high=5 is not < 5",
        "code=U does not match ^[A-Z]{2}$",
        "kind=c not in ['a', 'b']",
        "span=9 outside [1, 3]",
    )
