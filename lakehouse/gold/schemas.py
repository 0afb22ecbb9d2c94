"""The contracts of the gold tables, as pandera models; the ``schema`` checks enforce them."""

from typing import Annotated

import pandera.polars as pa
import polars as pl

UtcTime = Annotated[pl.Datetime, "us", "UTC"]


def rate():
    """A fraction in [0, 1] (a new Field each time: a pandera Field binds to one column)."""
    return pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 1})


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
    distance: pl.Int32 = pa.Field(gt=0)
    sched_block_minutes: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": 1, "max_value": 24 * 60})
    weather_temp: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": -60, "max_value": 135})
    weather_dewp: pl.Float64 = pa.Field(nullable=True)
    weather_humid: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 100})
    weather_wind_dir: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 360})
    weather_wind_speed: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 250})
    weather_wind_gust: pl.Float64 = pa.Field(nullable=True, ge=0)
    weather_precip: pl.Float64 = pa.Field(nullable=True, ge=0)
    weather_pressure: pl.Float64 = pa.Field(nullable=True)
    weather_visib: pl.Float64 = pa.Field(nullable=True, ge=0)
    weather_age_minutes: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 180})
    plane_known: bool
    plane_age: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": -1, "max_value": 120})
    plane_seats: pl.Int32 = pa.Field(nullable=True, gt=0)
    plane_engines: pl.Int32 = pa.Field(nullable=True, gt=0)
    origin_departures_2h: pl.Int32 = pa.Field(ge=0)
    origin_mean_dep_delay_2h: pl.Float64 = pa.Field(nullable=True)
    origin_scheduled_2h: pl.Int32 = pa.Field(ge=0)
    origin_departures_today: pl.Int32 = pa.Field(ge=0)
    origin_mean_dep_delay_today: pl.Float64 = pa.Field(nullable=True)
    origin_cancelled_today: pl.Int32 = pa.Field(ge=0)
    carrier_origin_mean_dep_delay_today: pl.Float64 = pa.Field(nullable=True)
    dest_flights_known_today: pl.Int32 = pa.Field(ge=0)
    dest_late_rate_today: pl.Float64 = rate()
    route_flights_28d: pl.Int64 = pa.Field(ge=0)
    route_late_rate_28d: pl.Float64 = rate()
    carrier_flights_28d: pl.Int64 = pa.Field(ge=0)
    carrier_late_rate_28d: pl.Float64 = rate()
    plane_flights_before_today: pl.Int32 = pa.Field(ge=0)
    plane_departed_today: pl.Int32 = pa.Field(ge=0)
    plane_mean_dep_delay_today: pl.Float64 = pa.Field(nullable=True)
    plane_last_dep_delay: pl.Int32 = pa.Field(nullable=True)
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
    dep_delay: pl.Int32 = pa.Field(nullable=True)
    arr_delay: pl.Int32 = pa.Field(nullable=True)
    cancelled: bool
    diverted: bool
    visib: pl.Float64 = pa.Field(nullable=True, ge=0)
    wind_speed: pl.Float64 = pa.Field(nullable=True, ge=0)
    precip: pl.Float64 = pa.Field(nullable=True, ge=0)

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
