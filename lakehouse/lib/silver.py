"""From bronze strings to typed, clean silver rows, and every rejected row into quarantine with its rule.

Each cleaner returns a ``Cleaned`` pair built from one evaluation of its rules, so the invariant
``bronze rows = silver rows + quarantined rows`` holds by construction: a row either passes every
rule and is the first of its key, or it is quarantined with the first rule it broke and a detail
naming the column and value.
"""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass

import pandera.polars as pa
import polars as pl

from lakehouse.lib.bronze import INVALID_ENCODING, MALFORMED_COLUMNS, MALFORMED_ROW
from lakehouse.lib.contracts import (
    FLIGHTS_SOURCE_SCHEMA,
    MISSING,
    REFERENCE_SOURCE_SCHEMAS,
    WEATHER_SOURCE_SCHEMA,
)
from lakehouse.lib.known_times import outcome_known_at, project_zones, weather_known_at
from lakehouse.lib.schemas import (
    REFERENCE_MODELS,
    SilverFlights,
    SilverWeather,
    required_columns,
    unique_key,
    value_checks,
    value_ranges,
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

# The one range silver checks that no silver column keeps: the source's hour of a weather record.
WEATHER_SOURCE_RANGES = {"hour": (0, 23)}
FLIGHT_REQUIRED = [
    "year", "month", "day", "carrier", "flight", "origin", "dest",
    "sched_dep_time", "sched_arr_time", "distance", "hour", "minute", "time_hour",
]  # fmt: skip
WEATHER_REQUIRED = ["origin", "year", "month", "day", "hour", "time_hour"]
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


def range_rules(ranges: Mapping[str, tuple[float, float]]) -> list[Rule]:
    return [
        Rule(
            "out_of_range",
            ~pl.col(name).is_between(low, high),
            pl.format(f"{name}={{}} outside [{low}, {high}]", pl.col(name)),
        )
        for name, (low, high) in ranges.items()
    ]


# pandera's one-sided bounds: the sign a value must satisfy, and when a value breaks it.
BOUNDS = {
    "greater_than_or_equal_to": (">=", lambda value, limit: value < limit),
    "greater_than": (">", lambda value, limit: value <= limit),
    "less_than_or_equal_to": ("<=", lambda value, limit: value > limit),
    "less_than": ("<", lambda value, limit: value >= limit),
}


def _check_rule(column: str, check: pa.Check) -> Rule:
    """A pandera value check of a contract as a quarantine rule on the same column."""
    value, stats = pl.col(column), check.statistics
    if check.name == "in_range":
        return range_rules({column: (stats["min_value"], stats["max_value"])})[0]
    if check.name == "str_matches":
        return Rule(
            "invalid_code",
            ~value.str.contains(stats["pattern"]),
            pl.concat_str(pl.lit(f"{column}="), value, pl.lit(f" does not match {stats['pattern']}")),
        )
    if check.name in BOUNDS:
        sign, breaks = BOUNDS[check.name]
        limit = stats.get("min_value", stats.get("max_value"))
        return Rule(
            "out_of_range", breaks(value, limit), pl.format(f"{column}={{}} is not {sign} {limit}", value)
        )
    if check.name == "isin":
        allowed = list(stats["allowed_values"])
        return Rule("not_allowed", ~value.is_in(allowed), pl.format(f"{column}={{}} not in {allowed}", value))
    raise ValueError(f"no quarantine rule for the {check.name} check of {column}")


def contract_rules(model: type[pa.DataFrameModel], columns: list[str]) -> list[Rule]:
    """The value checks of ``model`` on those of ``columns`` it declares, as quarantine rules: a row that
    would break the table's contract is quarantined before it is written, by the contract's own bounds."""
    checks = value_checks(model)
    return [_check_rule(column, check) for column in columns for check in checks.get(column, [])]


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


# A line bronze could not split into fields or decode is quarantined under the rule bronze gave it.
MALFORMED_RULES = [
    Rule(name, pl.col("_malformed") == name, pl.col("_malformed_detail"))
    for name in (INVALID_ENCODING, MALFORMED_ROW)
]


def _with_malformed(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Bronze with its malformed-line columns (null on tables loaded before bronze kept them)."""
    present = set(frame.collect_schema().names())
    return frame.with_columns(
        pl.lit(None, dtype).alias(name) for name, dtype in MALFORMED_COLUMNS.items() if name not in present
    )


def _timestamp_rule(source: str, parsed: str) -> Rule:
    return Rule(
        "invalid_type",
        ~_missing(source) & pl.col(parsed).is_null(),
        pl.format(f"{source}={{}} is not an ISO UTC timestamp", _raw(source)),
    )


def _date_rule(dated: str, what: str) -> Rule:
    return Rule(
        "date_outside_file_day",
        pl.col(dated) != pl.col("_landing_date"),
        pl.format(f"{what} date {{}} in the file for {{}}", pl.col(dated), pl.col("_landing_date")),
    )


def _clock_rule(column: str) -> Rule:
    return Rule(
        "invalid_clock_time",
        ~pl.col(column).is_between(0, 2400) | (pl.col(column) % 100 >= 60),
        pl.format(f"{column}={{}} is not an HHMM time", pl.col(column)),
    )


# The rules of a flights row, in the order they are judged: the first one a row breaks is its reason.
FLIGHT_RULES: list[Rule] = [
    *MALFORMED_RULES,
    *type_rules(FLIGHTS_SOURCE_SCHEMA, FLIGHT_REQUIRED),
    _timestamp_rule("time_hour", "sched_hour_at"),
    _date_rule("flight_date", "flight"),
    *(_clock_rule(c) for c in CLOCK_COLUMNS),
    *contract_rules(SilverFlights, list(FLIGHTS_SOURCE_SCHEMA)),
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


def _typed_flights(bronze: pl.LazyFrame) -> pl.LazyFrame:
    """Bronze's strings typed by the source contract, with the flight's date and scheduled UTC hour."""
    return (
        _rename_raw(_with_malformed(bronze), list(FLIGHTS_SOURCE_SCHEMA))
        .with_columns(typed_columns(FLIGHTS_SOURCE_SCHEMA))
        .with_columns(
            flight_date=pl.date("year", "month", "day"),
            sched_hour_at=pl.col("time_hour").str.to_datetime(
                "%Y-%m-%dT%H:%M:%SZ", strict=False, time_zone="UTC"
            ),
        )
    )


def _flight_times(rows: pl.LazyFrame, zones: Mapping[str, str]) -> pl.LazyFrame:
    """Scheduled and actual times in UTC, and the cancelled and diverted flags.

    Arrival clock times are local to the destination; an arrival earlier than the departure lands the
    next day. A destination of unknown zone keeps null arrival timestamps (its delays stay exact).
    """
    dest_zone = pl.col("dest").replace_strict(dict(zones), default=None, return_dtype=pl.String)
    arrival_local = pl.col("flight_date").cast(pl.Datetime("us")) + _clock("sched_arr_time")
    return (
        rows.with_columns(
            sched_dep_at=pl.col("sched_hour_at") + pl.duration(minutes=pl.col("minute")),
            _arr=_local_to_utc(arrival_local, dest_zone, sorted(set(zones.values()))),
        )
        .with_columns(
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
        .with_columns(outcome_known_at=outcome_known_at())
    )


def clean_flights(bronze: pl.LazyFrame, reads: Mapping[str, pl.LazyFrame | pl.DataFrame]) -> Cleaned:
    """Type, check, de-duplicate and timestamp one or more days of bronze flights.

    ``reads["airports"]`` (silver airports) gives each destination's time zone.
    """
    checked = (
        first_broken_rule(_typed_flights(bronze), FLIGHT_RULES)
        .with_columns(_landing_order=pl.col("_landing_date"))
        .collect()
    )
    _refuse_retyped(checked, FLIGHTS_SOURCE_SCHEMA, "sched_hour_at")
    # A malformed line is kept as delivered; any other row as the JSON of its fields.
    raw = pl.coalesce(pl.col("_raw_line"), _raw_json(list(FLIGHTS_SOURCE_SCHEMA)))
    rows, quarantine = _split(checked, FLIGHT_KEY, "flights", raw, pl.col("_landing_date"))
    zones = airport_zones(reads["airports"])
    return Cleaned(_flight_times(rows.lazy(), zones).select(SILVER_FLIGHTS_COLUMNS).collect(), quarantine)


SILVER_FLIGHTS_COLUMNS = [
    "flight_id", "flight_date", "carrier", "flight", "tailnum", "origin", "dest",
    "sched_dep_at", "dep_at", "sched_arr_at", "arr_at", "dep_delay", "arr_delay",
    "air_time", "distance", "cancelled", "diverted", "outcome_known_at",
    "_source_file", "_source_line", "_run_id", "_loaded_at",
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


WEATHER_RULES: list[Rule] = [
    *MALFORMED_RULES,
    Rule("malformed_json", pl.col("_parse_error").is_not_null(), pl.col("_parse_error")),
    *type_rules(WEATHER_SOURCE_SCHEMA, WEATHER_REQUIRED),
    _timestamp_rule("time_hour", "observed_at"),
    _date_rule("observation_date", "observation"),
    *contract_rules(SilverWeather, list(WEATHER_SOURCE_SCHEMA)),
    *range_rules(WEATHER_SOURCE_RANGES),
]


def _parsed_weather(bronze: pl.LazyFrame) -> pl.LazyFrame:
    """Each bronze line's JSON fields as raw strings, or the reason it does not parse, then typed."""
    columns = list(WEATHER_SOURCE_SCHEMA)
    frame = _with_malformed(bronze).collect()
    parsed = [_json_fields(raw) for raw in frame["_raw"]]
    fields = pl.DataFrame(
        [{f"{c}__raw": (p.get(c) if isinstance(p, dict) else None) for c in columns} for p in parsed],
        schema={f"{c}__raw": pl.String for c in columns},
    )
    parse_error = pl.Series("_parse_error", [None if isinstance(p, dict) else p for p in parsed], pl.String)
    return (
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


def clean_weather(bronze: pl.LazyFrame, reads: Mapping[str, pl.LazyFrame] | None = None) -> Cleaned:
    """Parse, type, check and de-duplicate one or more days of bronze weather (JSON lines).

    Observations are keyed on the UTC hour: the local hour repeats when daylight saving ends.
    Keys the schema does not know are ignored here and stay in bronze's ``_raw``.
    """
    checked = (
        first_broken_rule(_parsed_weather(bronze), WEATHER_RULES)
        .with_columns(_landing_order=pl.col("_landing_date"))
        .collect()
    )
    _refuse_retyped(checked, WEATHER_SOURCE_SCHEMA, "observed_at")
    # The delivered line is the raw record, parseable or not.
    rows, quarantine = _split(checked, WEATHER_KEY, "weather", pl.col("_raw"), pl.col("_landing_date"))
    return Cleaned(rows.with_columns(known_at=weather_known_at()).select(SILVER_WEATHER_COLUMNS), quarantine)


SILVER_WEATHER_COLUMNS = [
    "origin", "observed_at", "known_at", "observation_date", "temp", "dewp", "humid", "wind_dir",
    "wind_speed", "wind_gust", "precip", "pressure", "visib",
    "_source_file", "_source_line", "_run_id", "_loaded_at",
]  # fmt: skip

# Rules a reference table has beyond its contract's types and values.
REFERENCE_RULES: dict[str, list[Rule]] = {
    "airports": [
        Rule(
            "invalid_timezone",
            pl.col("tzone").is_not_null() & ~pl.col("tzone").is_in(sorted(zoneinfo.available_timezones())),
            pl.format("tzone={} is not an IANA time zone", pl.col("tzone")),
        )
    ]
}


def clean_reference(
    table: str, bronze: pl.LazyFrame, reads: Mapping[str, pl.LazyFrame] | None = None
) -> Cleaned:
    """Type, check and de-duplicate a reference table (planes, airports, airlines) on its key, by its
    source schema and its silver contract (``REFERENCE_MODELS``)."""
    schema, model = REFERENCE_SOURCE_SCHEMAS[table], REFERENCE_MODELS[table]
    columns = list(schema)
    typed = _rename_raw(bronze, columns).with_columns(typed_columns(schema))
    rules = [
        *type_rules(schema, required_columns(model)),
        *contract_rules(model, columns),
        *REFERENCE_RULES.get(table, []),
    ]
    checked = first_broken_rule(typed, rules).with_columns(_landing_order=pl.lit(0)).collect()
    rows, quarantine = _split(checked, unique_key(model), table, _raw_json(columns), pl.lit(None, pl.Date))
    return Cleaned(rows.select([*columns, "_source_line", "_run_id", "_loaded_at"]), quarantine)


def airport_zones(airports: pl.LazyFrame | pl.DataFrame) -> dict[str, str]:
    """FAA code to IANA time zone: the source's airports with a zone, and the project's own for the
    airports the source lists without one (``known_times.project_zones``)."""
    known = airports.lazy().filter(pl.col("tzone").is_not_null()).select("faa", "tzone").collect()
    return project_zones() | dict(zip(known["faa"], known["tzone"], strict=True))


# The flight ranges as (low, high), for the benchmarks' baselines that re-implement cleaning.
FLIGHT_RANGES = {c: r for c, r in value_ranges(SilverFlights).items() if c in FLIGHTS_SOURCE_SCHEMA}
