"""The contracts of the silver and gold tables, as pandera models: each value range and type is written
here once. The ``schema`` checks enforce them on what is written, and silver's quarantine rules are
derived from them (``lakehouse.lib.silver.contract_rules``), so a row that would break a contract is
quarantined with the rule it broke before it is ever written.
"""

from __future__ import annotations

from typing import Annotated, Any

import pandera.polars as pa
import polars as pl

UtcTime = Annotated[pl.Datetime, "us", "UTC"]

# How pandera names a check, and the ``pa.Field`` argument that makes it.
FIELD_ARGUMENTS = {
    "in_range": ("in_range", lambda s: {"min_value": s["min_value"], "max_value": s["max_value"]}),
    "greater_than_or_equal_to": ("ge", lambda s: s["min_value"]),
    "greater_than": ("gt", lambda s: s["min_value"]),
    "less_than_or_equal_to": ("le", lambda s: s["max_value"]),
    "less_than": ("lt", lambda s: s["max_value"]),
    "str_matches": ("str_matches", lambda s: s["pattern"]),
    "isin": ("isin", lambda s: s["allowed_values"]),
}


def field_like(model: type[pa.DataFrameModel], column: str, **overrides: Any):
    """A new ``pa.Field`` with the value checks of ``model``'s ``column``: a table derived from another
    (a feature from a silver column) takes its range from there instead of writing it again."""
    checks = model.to_schema().columns[column].checks
    arguments: dict[str, Any] = {"nullable": True}
    for check in checks:
        name, value = FIELD_ARGUMENTS[check.name]
        arguments[name] = value(check.statistics)
    return pa.Field(**(arguments | overrides))


def rate():
    """A fraction in [0, 1] (a new Field each time: a pandera Field binds to one column)."""
    return pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 1})


def code(length: int):
    """An upper-case code of ``length`` letters or digits (carrier, airport)."""
    return pa.Field(str_matches=rf"^[A-Z0-9]{{{length}}}$")


# --- silver -------------------------------------------------------------------------------------------


class _Lineage(pa.DataFrameModel):
    lineage_source_file: str = pa.Field(alias="_source_file")
    lineage_source_line: pl.Int64 = pa.Field(alias="_source_line", ge=1)
    lineage_run_id: str = pa.Field(alias="_run_id")
    lineage_loaded_at: UtcTime = pa.Field(alias="_loaded_at")


class SilverFlights(_Lineage):
    """One row per scheduled departure; times in UTC. Ranges are what is physically possible: a value
    outside is quarantined, not clipped."""

    flight_id: str = pa.Field(unique=True)
    flight_date: pl.Date
    carrier: str = code(2)
    flight: pl.Int32 = pa.Field(in_range={"min_value": 1, "max_value": 99_999})
    tailnum: str = pa.Field(nullable=True)
    origin: str = code(3)
    dest: str = code(3)
    sched_dep_at: UtcTime
    dep_at: UtcTime = pa.Field(nullable=True)
    sched_arr_at: UtcTime = pa.Field(nullable=True)
    arr_at: UtcTime = pa.Field(nullable=True)
    dep_delay: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": -180, "max_value": 2880})
    arr_delay: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": -180, "max_value": 2880})
    air_time: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": 1, "max_value": 1440})
    distance: pl.Int32 = pa.Field(in_range={"min_value": 1, "max_value": 12_500})
    cancelled: bool
    diverted: bool
    outcome_known_at: UtcTime  # when the label became a fact (lib/known_times.py)

    class Config:
        strict = True


class SilverWeather(_Lineage):
    """One hourly observation per airport, keyed on the UTC hour."""

    origin: str = code(3)
    observed_at: UtcTime  # the hour the observation is labelled with
    known_at: UtcTime  # when it was complete (lib/known_times.py)
    observation_date: pl.Date
    temp: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": -60, "max_value": 135})
    dewp: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": -80, "max_value": 100})
    humid: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 100})
    wind_dir: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 360})
    wind_speed: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 250})
    wind_gust: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 300})
    precip: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 15})
    pressure: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 850, "max_value": 1090})
    visib: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 100})

    class Config:
        strict = True
        unique = ["origin", "observed_at"]


class _ReferenceLineage(pa.DataFrameModel):
    lineage_source_line: pl.Int64 = pa.Field(alias="_source_line", ge=1)
    lineage_run_id: str = pa.Field(alias="_run_id")
    lineage_loaded_at: UtcTime = pa.Field(alias="_loaded_at")


class SilverPlanes(_ReferenceLineage):
    tailnum: str = pa.Field(unique=True)
    year: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": 1903, "max_value": 2100})
    type: str = pa.Field(nullable=True)
    manufacturer: str = pa.Field(nullable=True)
    model: str = pa.Field(nullable=True)
    engines: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": 1, "max_value": 8})
    seats: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": 1, "max_value": 1000})
    speed: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": 30, "max_value": 2500})
    engine: str = pa.Field(nullable=True)

    class Config:
        strict = True


class SilverAirports(_ReferenceLineage):
    faa: str = pa.Field(unique=True)
    name: str
    lat: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": -90, "max_value": 90})
    lon: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": -180, "max_value": 180})
    alt: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": -1500, "max_value": 30_000})
    tz: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": -12, "max_value": 14})
    dst: str = pa.Field(nullable=True)
    tzone: str = pa.Field(nullable=True)

    class Config:
        strict = True


class SilverAirlines(_ReferenceLineage):
    carrier: str = pa.Field(unique=True)
    name: str

    class Config:
        strict = True


# --- gold ---------------------------------------------------------------------------------------------


def mean_arr_delay():
    """A mean arrival delay over some flights: within the range of one flight's."""
    return field_like(SilverFlights, "arr_delay")


def weather(column: str):
    """A weather feature: the range of the silver column it comes from."""
    return field_like(SilverWeather, column)


class FlightFeatures(pa.DataFrameModel):
    """One row per scheduled flight: what was known an hour before departure, and the label."""

    flight_id: str = pa.Field(unique=True)
    flight_date: pl.Date
    sched_dep_at: UtcTime
    predict_at: UtcTime
    dep_hour: pl.Int8 = pa.Field(in_range={"min_value": 0, "max_value": 23})
    weekday: pl.Int8 = pa.Field(in_range={"min_value": 1, "max_value": 7})
    month: pl.Int8 = pa.Field(in_range={"min_value": 1, "max_value": 12})
    carrier: str
    origin: str
    dest: str
    distance: pl.Int32 = field_like(SilverFlights, "distance", nullable=False)
    sched_block_minutes: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": 1, "max_value": 24 * 60})
    weather_temp: pl.Float64 = weather("temp")
    weather_dewp: pl.Float64 = weather("dewp")
    weather_humid: pl.Float64 = weather("humid")
    weather_wind_dir: pl.Int32 = weather("wind_dir")
    weather_wind_speed: pl.Float64 = weather("wind_speed")
    weather_wind_gust: pl.Float64 = weather("wind_gust")
    weather_precip: pl.Float64 = weather("precip")
    weather_pressure: pl.Float64 = weather("pressure")
    weather_visib: pl.Float64 = weather("visib")
    weather_age_minutes: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 180})
    plane_known: bool
    plane_age: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": -1, "max_value": 120})
    plane_seats: pl.Int32 = field_like(SilverPlanes, "seats")
    plane_engines: pl.Int32 = field_like(SilverPlanes, "engines")
    origin_departures_2h: pl.Int32 = pa.Field(ge=0)
    origin_mean_dep_delay_2h: pl.Float64 = pa.Field(nullable=True)
    origin_delayed_departures_2h: pl.Int32 = pa.Field(ge=0)
    origin_scheduled_2h: pl.Int32 = pa.Field(ge=0)
    origin_scheduled_next_2h: pl.Int32 = pa.Field(ge=0)
    origin_departures_today: pl.Int32 = pa.Field(ge=0)
    origin_mean_dep_delay_today: pl.Float64 = pa.Field(nullable=True)
    origin_overdue_now: pl.Int32 = pa.Field(ge=0)
    carrier_origin_mean_dep_delay_today: pl.Float64 = pa.Field(nullable=True)
    origin_flights_known_today: pl.Int32 = pa.Field(ge=0)
    origin_late_rate_today: pl.Float64 = rate()
    dest_flights_known_today: pl.Int32 = pa.Field(ge=0)
    dest_late_rate_today: pl.Float64 = rate()
    route_flights_28d: pl.Int64 = pa.Field(ge=0)
    route_late_rate_28d: pl.Float64 = rate()
    route_mean_arr_delay_28d: pl.Float64 = mean_arr_delay()
    route_flights_7d: pl.Int64 = pa.Field(ge=0)
    route_late_rate_7d: pl.Float64 = rate()
    route_mean_arr_delay_7d: pl.Float64 = mean_arr_delay()
    route_flights_1d: pl.Int64 = pa.Field(ge=0)
    route_late_rate_1d: pl.Float64 = rate()
    route_mean_arr_delay_1d: pl.Float64 = mean_arr_delay()
    carrier_flights_28d: pl.Int64 = pa.Field(ge=0)
    carrier_late_rate_28d: pl.Float64 = rate()
    carrier_mean_arr_delay_28d: pl.Float64 = mean_arr_delay()
    flight_number_flights_28d: pl.Int64 = pa.Field(ge=0)
    flight_number_late_rate_28d: pl.Float64 = rate()
    flight_number_mean_arr_delay_28d: pl.Float64 = mean_arr_delay()
    flight_number_flights_7d: pl.Int64 = pa.Field(ge=0)
    flight_number_late_rate_7d: pl.Float64 = rate()
    flight_number_mean_arr_delay_7d: pl.Float64 = mean_arr_delay()
    flight_number_flights_1d: pl.Int64 = pa.Field(ge=0)
    flight_number_late_rate_1d: pl.Float64 = rate()
    flight_number_mean_arr_delay_1d: pl.Float64 = mean_arr_delay()
    origin_carrier_hour_flights_28d: pl.Int64 = pa.Field(ge=0)
    origin_carrier_hour_late_rate_28d: pl.Float64 = rate()
    origin_carrier_hour_mean_arr_delay_28d: pl.Float64 = mean_arr_delay()
    dest_hour_flights_28d: pl.Int64 = pa.Field(ge=0)
    dest_hour_late_rate_28d: pl.Float64 = rate()
    dest_hour_mean_arr_delay_28d: pl.Float64 = mean_arr_delay()
    tail_flights_28d: pl.Int64 = pa.Field(ge=0)
    tail_late_rate_28d: pl.Float64 = rate()
    tail_mean_arr_delay_28d: pl.Float64 = mean_arr_delay()
    carrier_flights_7d: pl.Int64 = pa.Field(ge=0)
    carrier_late_rate_7d: pl.Float64 = rate()
    carrier_mean_arr_delay_7d: pl.Float64 = mean_arr_delay()
    tail_flights_7d: pl.Int64 = pa.Field(ge=0)
    tail_late_rate_7d: pl.Float64 = rate()
    tail_mean_arr_delay_7d: pl.Float64 = mean_arr_delay()
    plane_flights_before_today: pl.Int32 = pa.Field(ge=0)
    plane_departed_today: pl.Int32 = pa.Field(ge=0)
    plane_mean_dep_delay_today: pl.Float64 = pa.Field(nullable=True)
    plane_last_dep_delay: pl.Int32 = field_like(SilverFlights, "dep_delay")
    prev_leg_gap_minutes: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": 1, "max_value": 24 * 60})
    prev_leg_block_minutes: pl.Int32 = pa.Field(
        nullable=True, in_range={"min_value": 1, "max_value": 24 * 60}
    )
    prev_leg_departed: bool = pa.Field(nullable=True)
    prev_leg_dep_delay: pl.Int32 = field_like(SilverFlights, "dep_delay")
    prev_leg_overdue_minutes: pl.Int32 = pa.Field(
        nullable=True, in_range={"min_value": 0, "max_value": 24 * 60}
    )
    prev_leg_slack_minutes: pl.Int32 = pa.Field(nullable=True)
    prev_leg_arr_delay: pl.Int32 = field_like(SilverFlights, "arr_delay")
    prev_leg_late: bool = pa.Field(nullable=True)
    late: bool

    class Config:
        strict = True


class _Performance(pa.DataFrameModel):
    scheduled: pl.Int64 = pa.Field(gt=0)
    cancelled: pl.Int64 = pa.Field(ge=0)
    diverted: pl.Int64 = pa.Field(ge=0)
    on_time_rate: pl.Float64 = rate()
    cancellation_rate: pl.Float64 = rate()
    mean_dep_delay: pl.Float64 = pa.Field(nullable=True)
    median_dep_delay: pl.Float64 = pa.Field(nullable=True)
    p90_dep_delay: pl.Float64 = pa.Field(nullable=True)
    mean_arr_delay: pl.Float64 = pa.Field(nullable=True)
    median_arr_delay: pl.Float64 = pa.Field(nullable=True)
    p90_arr_delay: pl.Float64 = pa.Field(nullable=True)


class Departures(pa.DataFrameModel):
    """One row per scheduled flight: its outcome and the weather at the origin at its scheduled hour."""

    flight_id: str = pa.Field(unique=True)
    flight_date: pl.Date
    carrier: str
    origin: str
    dest: str
    sched_dep_at: UtcTime
    dep_delay: pl.Int32 = field_like(SilverFlights, "dep_delay")
    arr_delay: pl.Int32 = field_like(SilverFlights, "arr_delay")
    cancelled: bool
    diverted: bool
    visib: pl.Float64 = weather("visib")
    wind_speed: pl.Float64 = weather("wind_speed")
    precip: pl.Float64 = weather("precip")

    class Config:
        strict = True


class DailyAirportPerformance(_Performance):
    origin: str
    flight_date: pl.Date

    class Config:
        strict = True
        unique = ["origin", "flight_date"]


class CarrierMonthlyPerformance(_Performance):
    carrier: str
    month: pl.Date

    class Config:
        strict = True
        unique = ["carrier", "month"]


class RoutePerformance(_Performance):
    origin: str
    dest: str

    class Config:
        strict = True
        unique = ["origin", "dest"]


class WeatherDelayImpact(pa.DataFrameModel):
    condition: str = pa.Field(isin=["visibility", "wind", "precipitation"])
    band: str
    flights: pl.Int64 = pa.Field(gt=0)
    late_rate: pl.Float64 = rate()
    cancellation_rate: pl.Float64 = rate()
    mean_dep_delay: pl.Float64 = pa.Field(nullable=True)

    class Config:
        strict = True
        unique = ["condition", "band"]


# --- reading a contract -------------------------------------------------------------------------------

REFERENCE_MODELS: dict[str, type[pa.DataFrameModel]] = {
    "planes": SilverPlanes,
    "airports": SilverAirports,
    "airlines": SilverAirlines,
}


def value_checks(model: type[pa.DataFrameModel]) -> dict[str, list[pa.Check]]:
    """Each column's value checks (ranges, patterns, allowed values), by column name."""
    return {name: list(column.checks) for name, column in model.to_schema().columns.items() if column.checks}


def value_ranges(model: type[pa.DataFrameModel]) -> dict[str, tuple[float, float]]:
    """The columns with a closed range, as (low, high)."""
    return {
        name: (check.statistics["min_value"], check.statistics["max_value"])
        for name, checks in value_checks(model).items()
        for check in checks
        if check.name == "in_range"
    }


def required_columns(model: type[pa.DataFrameModel]) -> list[str]:
    """The columns that may not be null, lineage columns aside."""
    return [
        name
        for name, column in model.to_schema().columns.items()
        if not column.nullable and not name.startswith("_")
    ]


def unique_key(model: type[pa.DataFrameModel]) -> list[str]:
    """The model's key: its ``unique`` columns, or the one column declared unique."""
    schema = model.to_schema()
    if schema.unique:
        return list(schema.unique)
    return [name for name, column in schema.columns.items() if column.unique]
