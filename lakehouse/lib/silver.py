"""From bronze strings to typed, clean silver rows, and every rejected row into quarantine with its rule.

Each cleaner returns a ``Cleaned`` pair built from one evaluation of its rules, so the invariant
``bronze rows = silver rows + quarantined rows`` holds by construction: a row either passes every
rule and is the first of its key, or it is quarantined with the first rule it broke and a detail
naming the column and value.
"""

from __future__ import annotations

import json
import zoneinfo
from dataclasses import dataclass

import polars as pl

from lakehouse.lib.contracts import (
    FLIGHTS_SOURCE_SCHEMA,
    MISSING,
    REFERENCE_KEYS,
    REFERENCE_SOURCE_SCHEMAS,
    WEATHER_SOURCE_SCHEMA,
)

UTC_TIME = pl.Datetime("us", "UTC")

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "source_table": pl.String(),
    "partition_date": pl.Date(),
    "rule": pl.String(),
    "detail": pl.String(),
    "source_file": pl.String(),
    "source_line": pl.Int64(),
    "raw": pl.String(),
    "run_id": pl.String(),
    "loaded_at": UTC_TIME,
}

FLIGHT_KEY = ["flight_date", "carrier", "flight", "origin"]
WEATHER_KEY = ["origin", "observed_at"]

# Physically possible ranges; a value outside is quarantined, not clipped.
FLIGHT_RANGES = {
    "dep_delay": (-180, 2880),
    "arr_delay": (-180, 2880),
    "air_time": (1, 1440),
    "distance": (1, 12_500),
    "flight": (1, 99_999),
}
WEATHER_RANGES = {
    "hour": (0, 23),
    "temp": (-60.0, 135.0),
    "dewp": (-80.0, 100.0),
    "humid": (0.0, 100.0),
    "wind_dir": (0, 360),
    "wind_speed": (0.0, 250.0),
    "wind_gust": (0.0, 300.0),
    "precip": (0.0, 15.0),
    "pressure": (850.0, 1090.0),
    "visib": (0.0, 100.0),
}
REFERENCE_RANGES = {
    "planes": {"year": (1903, 2100), "engines": (1, 8), "seats": (1, 1000), "speed": (30, 2500)},
    "airports": {"lat": (-90.0, 90.0), "lon": (-180.0, 180.0), "alt": (-1500, 30_000), "tz": (-12, 14)},
    "airlines": {},
}
REFERENCE_REQUIRED = {"planes": ["tailnum"], "airports": ["faa", "name"], "airlines": ["carrier", "name"]}
CLOCK_COLUMNS = ["dep_time", "sched_dep_time", "arr_time", "sched_arr_time"]


@dataclass(frozen=True)
class Rule:
    """A data rule: ``broken`` is true on rows that break it, ``detail`` says how, for a person."""

    name: str
    broken: pl.Expr
    detail: pl.Expr


# A column is taken as retyped by its source, not as holding a few bad values, when at least this many
# of a file's values are present and not one of them parses as the column's type.
RETYPED_MIN_VALUES = 10


class SchemaChangeError(ValueError):
    """A delivered file changed a column's type; its rows are not cleaned row by row into quarantine."""

    def __init__(self, changes: list[dict]):
        lines = [
            f"{c['source_file']}: column {c['column']} should be {c['expected']} but none of its "
            f"{c['present']} values parse (for example {', '.join(repr(v) for v in c['examples'])})"
            for c in changes
        ]
        super().__init__("a delivery changed a column's type:\n  " + "\n  ".join(lines))
        self.changes = changes


def retyped_columns(
    checked: pl.DataFrame, parsed: dict[str, str], schema: dict[str, pl.DataType]
) -> list[dict]:
    """Per source file, the typed columns whose present values all failed to parse.

    ``parsed`` maps each source column to the column holding its parsed value. One bad value in a column
    is a bad row, for quarantine; every value of a column failing is a changed contract, for a person.
    """
    present = {c: ~_missing(c) for c in parsed}
    counts = checked.group_by("_source_file").agg(
        *(expr.sum().alias(f"{c}__present") for c, expr in present.items()),
        *((present[c] & pl.col(p).is_not_null()).sum().alias(f"{c}__parsed") for c, p in parsed.items()),
        *(_raw(c).filter(present[c]).head(3).alias(f"{c}__examples") for c in parsed),
    )
    changes = []
    for row in counts.sort("_source_file").iter_rows(named=True):
        for column in parsed:
            if row[f"{column}__present"] >= RETYPED_MIN_VALUES and row[f"{column}__parsed"] == 0:
                changes.append(
                    {
                        "source_file": row["_source_file"],
                        "column": column,
                        "expected": str(schema[column]),
                        "present": row[f"{column}__present"],
                        "examples": row[f"{column}__examples"],
                    }
                )
    return changes


def _refuse_retyped(checked: pl.DataFrame, schema: dict[str, pl.DataType], time_hour_as: str) -> None:
    parsed = {c: c for c, dtype in schema.items() if dtype != pl.String()} | {"time_hour": time_hour_as}
    changes = retyped_columns(checked, parsed, schema | {"time_hour": pl.Datetime("us", "UTC")})
    if changes:
        raise SchemaChangeError(changes)


@dataclass(frozen=True)
class Cleaned:
    """The two halves of a cleaned table: the rows that passed, and the quarantined ones."""

    rows: pl.DataFrame
    quarantine: pl.DataFrame


def _raw(column: str) -> pl.Expr:
    return pl.col(f"{column}__raw")


def _missing(column: str) -> pl.Expr:
    value = _raw(column).str.strip_chars()
    return value.is_null() | value.is_in([MISSING, ""])


def typed_columns(schema: dict[str, pl.DataType]) -> list[pl.Expr]:
    """Cast each raw string column to its type; missing and unparseable values become null."""
    return [
        pl.when(_missing(name))
        .then(None)
        .otherwise(_raw(name).str.strip_chars().cast(dtype, strict=False))
        .alias(name)
        for name, dtype in schema.items()
    ]


def type_rules(schema: dict[str, pl.DataType], required: list[str]) -> list[Rule]:
    """Required values present, every present value parses as its type."""
    rules = [Rule("missing_value", _missing(name), pl.lit(f"{name} is missing")) for name in required]
    rules += [
        Rule(
            "invalid_type",
            ~_missing(name) & pl.col(name).is_null(),
            pl.format(f"{name}={{}} is not {dtype}", _raw(name)),
        )
        for name, dtype in schema.items()
    ]
    return rules


def range_rules(ranges: dict[str, tuple[float, float]]) -> list[Rule]:
    return [
        Rule(
            "out_of_range",
            ~pl.col(name).is_between(low, high),
            pl.format(f"{name}={{}} outside [{low}, {high}]", pl.col(name)),
        )
        for name, (low, high) in ranges.items()
    ]


def first_broken_rule(frame: pl.LazyFrame, rules: list[Rule]) -> pl.LazyFrame:
    """Add ``_rule`` and ``_detail``: the first rule each row breaks, null where it breaks none."""
    return frame.with_columns(
        _rule=pl.coalesce([pl.when(rule.broken.fill_null(False)).then(pl.lit(rule.name)) for rule in rules]),
        _detail=pl.coalesce([pl.when(rule.broken.fill_null(False)).then(rule.detail) for rule in rules]),
    )


def _split(
    checked: pl.DataFrame,
    key: list[str],
    source_table: str,
    raw: pl.Expr,
    partition_date: pl.Expr,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Passing rows that are first of their key stay; the rest go to quarantine with their rule."""
    ordered = checked.sort("_landing_order", "_source_line")
    passing = ordered["_rule"].is_null()
    first = pl.struct(key).is_first_distinct()
    duplicate = ordered.filter(passing).with_columns(_first=first)
    rows = duplicate.filter("_first")
    duplicates = duplicate.filter(~pl.col("_first")).with_columns(
        _rule=pl.lit("duplicate_key"),
        _detail=pl.lit(f"same {', '.join(key)} as an earlier row"),
    )
    rejected = pl.concat([ordered.filter(~passing), duplicates.drop("_first")], how="diagonal_relaxed")
    quarantine = rejected.select(
        source_table=pl.lit(source_table),
        partition_date=partition_date,
        rule="_rule",
        detail="_detail",
        source_file="_source_file",
        source_line="_source_line",
        raw=raw,
        run_id="_run_id",
        loaded_at="_loaded_at",
    ).cast(QUARANTINE_SCHEMA)
    return rows.drop("_first", "_rule", "_detail", "_landing_order"), quarantine


def _raw_json(columns: list[str]) -> pl.Expr:
    """The row as delivered, as a JSON object of the source's column names and strings."""
    return pl.struct([_raw(c).alias(c) for c in columns]).struct.json_encode()


def _rename_raw(frame: pl.LazyFrame, columns: list[str]) -> pl.LazyFrame:
    """Bronze column ``c`` becomes ``c__raw``; a column the delivery lacks becomes null."""
    present = set(frame.collect_schema().names())
    return frame.with_columns(
        [(pl.col(c) if c in present else pl.lit(None, pl.String)).alias(f"{c}__raw") for c in columns]
    )


def _local_to_utc(local: pl.Expr, zone: pl.Expr, zones: list[str]) -> pl.Expr:
    """Naive local times to UTC, where each row names its own IANA time zone."""
    return pl.coalesce(
        [
            pl.when(zone == name).then(
                local.dt.replace_time_zone(
                    name, ambiguous="earliest", non_existent="null"
                ).dt.convert_time_zone("UTC")
            )
            for name in zones
        ]
        + [pl.lit(None, UTC_TIME)]
    )


def _clock(column: str) -> pl.Expr:
    """An HHMM integer as a duration from midnight (2400 is the next midnight)."""
    return pl.duration(hours=pl.col(column) // 100, minutes=pl.col(column) % 100)


def clean_flights(bronze: pl.LazyFrame, airport_zones: dict[str, str]) -> Cleaned:
    """Type, check, de-duplicate and timestamp one or more days of bronze flights.

    ``airport_zones`` maps FAA codes to IANA zones: arrival clock times are local to the destination,
    so a flight to an airport of unknown zone keeps null arrival timestamps (its delays stay exact).
    """
    columns = list(FLIGHTS_SOURCE_SCHEMA)
    required = [
        "year",
        "month",
        "day",
        "carrier",
        "flight",
        "origin",
        "dest",
        "sched_dep_time",
        "sched_arr_time",
        "distance",
        "hour",
        "minute",
        "time_hour",
    ]
    typed = (
        _rename_raw(bronze, columns)
        .with_columns(typed_columns(FLIGHTS_SOURCE_SCHEMA))
        .with_columns(
            flight_date=pl.date("year", "month", "day"),
            sched_hour_at=pl.col("time_hour").str.to_datetime(
                "%Y-%m-%dT%H:%M:%SZ", strict=False, time_zone="UTC"
            ),
        )
    )
    rules = type_rules(FLIGHTS_SOURCE_SCHEMA, required)
    rules.append(
        Rule(
            "invalid_type",
            ~_missing("time_hour") & pl.col("sched_hour_at").is_null(),
            pl.format("time_hour={} is not an ISO UTC timestamp", _raw("time_hour")),
        )
    )
    rules.append(
        Rule(
            "date_outside_file_day",
            pl.col("flight_date") != pl.col("_landing_date"),
            pl.format("flight date {} in the file for {}", pl.col("flight_date"), pl.col("_landing_date")),
        )
    )
    rules += [
        Rule(
            "invalid_clock_time",
            ~pl.col(c).is_between(0, 2400) | (pl.col(c) % 100 >= 60),
            pl.format(f"{c}={{}} is not an HHMM time", pl.col(c)),
        )
        for c in CLOCK_COLUMNS
    ]
    rules += range_rules(FLIGHT_RANGES)
    rules += [
        Rule(
            "invalid_code",
            ~pl.col("carrier").str.contains(r"^[A-Z0-9]{2}$"),
            pl.format("carrier={} is not a two-character code", pl.col("carrier")),
        ),
        Rule(
            "invalid_code",
            ~pl.col("origin").str.contains(r"^[A-Z0-9]{3}$"),
            pl.format("origin={} is not a three-character code", pl.col("origin")),
        ),
        Rule(
            "invalid_code",
            ~pl.col("dest").str.contains(r"^[A-Z0-9]{3}$"),
            pl.format("dest={} is not a three-character code", pl.col("dest")),
        ),
        Rule(
            "inconsistent_schedule",
            pl.col("hour") * 100 + pl.col("minute") != pl.col("sched_dep_time"),
            pl.format(
                "hour={} minute={} disagree with sched_dep_time={}",
                pl.col("hour"),
                pl.col("minute"),
                pl.col("sched_dep_time"),
            ),
        ),
    ]
    checked = first_broken_rule(typed, rules).with_columns(_landing_order=pl.col("_landing_date")).collect()
    _refuse_retyped(checked, FLIGHTS_SOURCE_SCHEMA, "sched_hour_at")

    rows, quarantine = _split(checked, FLIGHT_KEY, "flights", _raw_json(columns), pl.col("_landing_date"))
    zones = sorted(set(airport_zones.values()))
    dest_zone = pl.col("dest").replace_strict(airport_zones, default=None, return_dtype=pl.String)
    sched_dep_at = pl.col("sched_hour_at") + pl.duration(minutes=pl.col("minute"))
    arrival_local = pl.col("flight_date").cast(pl.Datetime("us")) + _clock("sched_arr_time")
    arrival_same_day = _local_to_utc(arrival_local, dest_zone, zones)
    flights = (
        rows.lazy()
        .with_columns(sched_dep_at=sched_dep_at, _arr=arrival_same_day)
        .with_columns(
            # An arrival clock time earlier than the departure means the flight lands the next day.
            sched_arr_at=pl.when(pl.col("_arr") < pl.col("sched_dep_at"))
            .then(pl.col("_arr") + pl.duration(days=1))
            .otherwise(pl.col("_arr")),
            cancelled=pl.col("dep_time").is_null() & pl.col("dep_delay").is_null(),
        )
        .with_columns(
            dep_at=pl.col("sched_dep_at") + pl.duration(minutes=pl.col("dep_delay")),
            arr_at=pl.col("sched_arr_at") + pl.duration(minutes=pl.col("arr_delay")),
            diverted=~pl.col("cancelled") & pl.col("arr_delay").is_null(),
            flight_id=pl.format("{}-{}-{}-{}", "flight_date", "carrier", "flight", "origin"),
        )
    )
    return Cleaned(flights.select(SILVER_FLIGHTS_COLUMNS).collect(), quarantine)


SILVER_FLIGHTS_COLUMNS = [
    "flight_id", "flight_date", "carrier", "flight", "tailnum", "origin", "dest",
    "sched_dep_at", "dep_at", "sched_arr_at", "arr_at", "dep_delay", "arr_delay",
    "air_time", "distance", "cancelled", "diverted", "_source_file", "_source_line", "_run_id", "_loaded_at",
]  # fmt: skip


def _json_fields(raw: str | None) -> dict[str, str | None] | str:
    """A JSON object's values as strings (as CSV would carry them), or the reason it is not one."""
    try:
        record = json.loads(raw or "")
    except json.JSONDecodeError as error:
        return f"not valid JSON: {error.msg} at column {error.colno}"
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    return {
        key: None if value is None else value if isinstance(value, str) else json.dumps(value)
        for key, value in record.items()
    }


def clean_weather(bronze: pl.LazyFrame) -> Cleaned:
    """Parse, type, check and de-duplicate one or more days of bronze weather (JSON lines).

    Observations are keyed on the UTC hour: the local hour repeats when daylight saving ends.
    Keys the schema does not know are ignored here and stay in bronze's ``_raw``.
    """
    columns = list(WEATHER_SOURCE_SCHEMA)
    frame = bronze.collect()
    parsed = [_json_fields(raw) for raw in frame["_raw"]]
    fields = pl.DataFrame(
        [{f"{c}__raw": (p.get(c) if isinstance(p, dict) else None) for c in columns} for p in parsed],
        schema={f"{c}__raw": pl.String for c in columns},
    )
    parse_error = pl.Series("_parse_error", [None if isinstance(p, dict) else p for p in parsed], pl.String)
    typed = (
        pl.concat([frame, fields], how="horizontal")
        .with_columns(parse_error)
        .lazy()
        .with_columns(typed_columns(WEATHER_SOURCE_SCHEMA))
        .with_columns(
            observation_date=pl.date("year", "month", "day"),
            observed_at=pl.col("time_hour").str.to_datetime(
                "%Y-%m-%dT%H:%M:%SZ", strict=False, time_zone="UTC"
            ),
        )
    )
    rules = [Rule("malformed_json", pl.col("_parse_error").is_not_null(), pl.col("_parse_error"))]
    rules += type_rules(WEATHER_SOURCE_SCHEMA, ["origin", "year", "month", "day", "hour", "time_hour"])
    rules += [
        Rule(
            "invalid_type",
            ~_missing("time_hour") & pl.col("observed_at").is_null(),
            pl.format("time_hour={} is not an ISO UTC timestamp", _raw("time_hour")),
        ),
        Rule(
            "date_outside_file_day",
            pl.col("observation_date") != pl.col("_landing_date"),
            pl.format(
                "observation date {} in the file for {}", pl.col("observation_date"), pl.col("_landing_date")
            ),
        ),
        Rule(
            "invalid_code",
            ~pl.col("origin").str.contains(r"^[A-Z0-9]{3}$"),
            pl.format("origin={} is not a three-character code", pl.col("origin")),
        ),
    ]
    rules += range_rules(WEATHER_RANGES)
    checked = first_broken_rule(typed, rules).with_columns(_landing_order=pl.col("_landing_date")).collect()
    _refuse_retyped(checked, WEATHER_SOURCE_SCHEMA, "observed_at")
    # The delivered line is the raw record, parseable or not.
    rows, quarantine = _split(checked, WEATHER_KEY, "weather", pl.col("_raw"), pl.col("_landing_date"))
    return Cleaned(rows.select(SILVER_WEATHER_COLUMNS), quarantine)


SILVER_WEATHER_COLUMNS = [
    "origin", "observed_at", "observation_date", "temp", "dewp", "humid", "wind_dir", "wind_speed",
    "wind_gust", "precip", "pressure", "visib", "_source_file", "_source_line", "_run_id", "_loaded_at",
]  # fmt: skip


def clean_reference(table: str, bronze: pl.LazyFrame) -> Cleaned:
    """Type, check and de-duplicate a reference table (planes, airports, airlines) on its key."""
    schema = REFERENCE_SOURCE_SCHEMAS[table]
    columns = list(schema)
    typed = _rename_raw(bronze, columns).with_columns(typed_columns(schema))
    rules = type_rules(schema, REFERENCE_REQUIRED[table]) + range_rules(REFERENCE_RANGES[table])
    if table == "airports":
        known = sorted(zoneinfo.available_timezones())
        rules.append(
            Rule(
                "invalid_timezone",
                pl.col("tzone").is_not_null() & ~pl.col("tzone").is_in(known),
                pl.format("tzone={} is not an IANA time zone", pl.col("tzone")),
            )
        )
    checked = first_broken_rule(typed, rules).with_columns(_landing_order=pl.lit(0)).collect()
    rows, quarantine = _split(
        checked, REFERENCE_KEYS[table], table, _raw_json(columns), pl.lit(None, pl.Date)
    )
    return Cleaned(rows.select([*columns, "_source_line", "_run_id", "_loaded_at"]), quarantine)


def airport_zones(airports: pl.DataFrame) -> dict[str, str]:
    """FAA code to IANA time zone, for airports whose zone is known."""
    known = airports.filter(pl.col("tzone").is_not_null())
    return dict(zip(known["faa"], known["tzone"], strict=True))
