"""Online: the feature store's materialize step. The lake's history (each day's silver flights with their
label, and its weather; the planes and airport zones) is pushed to the online store, where the stream
worker reads it to compute live vectors with the functions that build ``gold/flight_features``."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl

from lakehouse.catalog import (
    FLIGHT_FEATURES,
    ONLINE_FEATURE_STORE,
    SILVER_AIRPORTS,
    SILVER_FLIGHTS,
    SILVER_PLANES,
    SILVER_WEATHER,
)
from lakehouse.lib.features import HISTORY_LOOKBACK_DAYS, with_outcomes
from lakehouse.lib.live import FLIGHT_SCHEMA, WEATHER_SCHEMA
from lakehouse.lib.silver import airport_zones
from lakehouse.metadata import markdown_table
from lakehouse.reads import feature_days, silver_flights
from lakehouse.resources import LakeStorage, OnlineRedis, Warehouse

# Follows gold once someone has put it to use (`make serve` materializes it first): a lakehouse without
# an online store is not asked to push to one.
follows_gold_once_used = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("follows gold once materialized")


@ONLINE_FEATURE_STORE.asset(
    deps=[
        FLIGHT_FEATURES.key,
        SILVER_FLIGHTS.key,
        SILVER_WEATHER.key,
        SILVER_PLANES.key,
        SILVER_AIRPORTS.key,
    ],
    automation_condition=follows_gold_once_used,
    code_version="1",
)
def feature_store(
    context: dg.AssetExecutionContext, lake: LakeStorage, warehouse: Warehouse, online: OnlineRedis
) -> dg.MaterializeResult:
    store = online.store()
    gold_days = feature_days(warehouse)
    if not gold_days:
        raise LookupError(f"{FLIGHT_FEATURES.path} holds no days yet: materialize it first")
    # The days gold holds and the history their features read: what a live day after them reads too.
    first, last = gold_days[0] - timedelta(days=HISTORY_LOOKBACK_DAYS), gold_days[-1]
    versions = {t.path: lake.version(t.path) for t in (SILVER_FLIGHTS, SILVER_WEATHER, SILVER_PLANES)}
    flights = with_outcomes(silver_flights(lake, first, last)).select(*FLIGHT_SCHEMA).collect()
    weather = (
        lake.scan(SILVER_WEATHER.path)
        .filter(pl.col("observation_date").is_between(first, last))
        .select(*WEATHER_SCHEMA)
        .collect()
    )
    weather_by_day = weather.partition_by("observation_date", as_dict=True)
    by_day = {
        day: (frame, weather_by_day.get((day,), weather.clear()))
        for (day,), frame in flights.partition_by("flight_date", as_dict=True).items()
    }
    written = store.put_history(by_day, versions)
    store.put_reference(
        lake.scan(SILVER_PLANES.path).collect(), airport_zones(lake.scan(SILVER_AIRPORTS.path))
    )
    held = store.pushed()
    context.log.info(f"pushed {len(by_day)} day(s), {flights.height:,} flights, to {store.url}")
    newest = max(held)
    per_day = pl.DataFrame({"day": list(held), "flights": [info["flights"] for info in held.values()]}).sort(
        "day", descending=True
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": flights.height,
            "dagster/uri": store.url,
            "days_pushed": len(by_day),
            "days_held": len(held),
            "first_day": str(min(held)),
            "newest_day": str(newest),
            "pushed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "bytes_pushed": dg.MetadataValue.int(written),
            "silver_versions": dg.MetadataValue.json(versions),
            "weather_rows": weather.height,
            "newest_days": dg.MetadataValue.md(markdown_table(per_day, 7, total=per_day.height)),
        }
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[feature_store])
