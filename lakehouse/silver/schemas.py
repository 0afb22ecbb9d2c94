"""The contracts of the silver tables, as pandera models; the ``schema`` checks enforce them."""

from typing import Annotated

import pandera.polars as pa
import polars as pl

UtcTime = Annotated[pl.Datetime, "us", "UTC"]


class _Lineage(pa.DataFrameModel):
    lineage_source_file: str = pa.Field(alias="_source_file")
    lineage_source_line: pl.Int64 = pa.Field(alias="_source_line", ge=1)
    lineage_run_id: str = pa.Field(alias="_run_id")
    lineage_loaded_at: UtcTime = pa.Field(alias="_loaded_at")


class SilverFlights(_Lineage):
    """One row per scheduled departure; times in UTC."""

    flight_id: str = pa.Field(unique=True)
    flight_date: pl.Date
    carrier: str = pa.Field(str_matches=r"^[A-Z0-9]{2}$")
    flight: pl.Int32 = pa.Field(ge=1)
    tailnum: str = pa.Field(nullable=True)
    origin: str = pa.Field(str_length={"min_value": 3, "max_value": 3})
    dest: str = pa.Field(str_length={"min_value": 3, "max_value": 3})
    sched_dep_at: UtcTime
    dep_at: UtcTime = pa.Field(nullable=True)
    sched_arr_at: UtcTime = pa.Field(nullable=True)
    arr_at: UtcTime = pa.Field(nullable=True)
    dep_delay: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": -180, "max_value": 2880})
    arr_delay: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": -180, "max_value": 2880})
    air_time: pl.Int32 = pa.Field(nullable=True, gt=0)
    distance: pl.Int32 = pa.Field(gt=0)
    cancelled: bool
    diverted: bool

    class Config:
        strict = True


class SilverWeather(_Lineage):
    """One hourly observation per airport, keyed on the UTC hour."""

    origin: str = pa.Field(str_length={"min_value": 3, "max_value": 3})
    observed_at: UtcTime
    observation_date: pl.Date
    temp: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": -60, "max_value": 135})
    dewp: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": -80, "max_value": 100})
    humid: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 100})
    wind_dir: pl.Int32 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 360})
    wind_speed: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 250})
    wind_gust: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 300})
    precip: pl.Float64 = pa.Field(nullable=True, ge=0)
    pressure: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 850, "max_value": 1090})
    visib: pl.Float64 = pa.Field(nullable=True, ge=0)

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
    speed: pl.Int32 = pa.Field(nullable=True)
    engine: str = pa.Field(nullable=True)

    class Config:
        strict = True


class SilverAirports(_ReferenceLineage):
    faa: str = pa.Field(unique=True)
    name: str
    lat: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": -90, "max_value": 90})
    lon: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": -180, "max_value": 180})
    alt: pl.Int32 = pa.Field(nullable=True)
    tz: pl.Int32 = pa.Field(nullable=True)
    dst: str = pa.Field(nullable=True)
    tzone: str = pa.Field(nullable=True)

    class Config:
        strict = True


class SilverAirlines(_ReferenceLineage):
    carrier: str = pa.Field(unique=True)
    name: str

    class Config:
        strict = True


REFERENCE_MODELS = {"planes": SilverPlanes, "airports": SilverAirports, "airlines": SilverAirlines}
