"""What each source delivers: column names and the types they are parsed with.

Bronze keeps every value as the string that arrived; these schemas are where silver turns them into
types. Writing them out (rather than inferring) matters for the real data: weather's ``visib`` looks
like an integer for thousands of rows before the first decimal appears.
"""

from __future__ import annotations

import polars as pl

FLIGHTS_SOURCE_SCHEMA: dict[str, pl.DataType] = {
    "year": pl.Int32(),
    "month": pl.Int32(),
    "day": pl.Int32(),
    "dep_time": pl.Int32(),
    "sched_dep_time": pl.Int32(),
    "dep_delay": pl.Int32(),
    "arr_time": pl.Int32(),
    "sched_arr_time": pl.Int32(),
    "arr_delay": pl.Int32(),
    "carrier": pl.String(),
    "flight": pl.Int32(),
    "tailnum": pl.String(),
    "origin": pl.String(),
    "dest": pl.String(),
    "air_time": pl.Int32(),
    "distance": pl.Int32(),
    "hour": pl.Int32(),
    "minute": pl.Int32(),
    "time_hour": pl.String(),
}

WEATHER_SOURCE_SCHEMA: dict[str, pl.DataType] = {
    "origin": pl.String(),
    "year": pl.Int32(),
    "month": pl.Int32(),
    "day": pl.Int32(),
    "hour": pl.Int32(),
    "temp": pl.Float64(),
    "dewp": pl.Float64(),
    "humid": pl.Float64(),
    "wind_dir": pl.Int32(),
    "wind_speed": pl.Float64(),
    "wind_gust": pl.Float64(),
    "precip": pl.Float64(),
    "pressure": pl.Float64(),
    "visib": pl.Float64(),
    "time_hour": pl.String(),
}

REFERENCE_SOURCE_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "planes": {
        "tailnum": pl.String(),
        "year": pl.Int32(),
        "type": pl.String(),
        "manufacturer": pl.String(),
        "model": pl.String(),
        "engines": pl.Int32(),
        "seats": pl.Int32(),
        "speed": pl.Int32(),
        "engine": pl.String(),
    },
    "airports": {
        "faa": pl.String(),
        "name": pl.String(),
        "lat": pl.Float64(),
        "lon": pl.Float64(),
        "alt": pl.Int32(),
        "tz": pl.Int32(),
        "dst": pl.String(),
        "tzone": pl.String(),
    },
    "airlines": {
        "carrier": pl.String(),
        "name": pl.String(),
    },
}


# How the source spells a missing value in its CSV files.
MISSING = "NA"
