"""The one code location: every asset, check, job and resource of the lakehouse.

Resources are configured here, once, from environment variables with local defaults under the
project's ``data/`` folder, checked when this module loads (``lakehouse.settings``); tests build
their own against a temporary folder.
"""

from __future__ import annotations

import dagster as dg

from lakehouse.automation import (
    follows_any_upstream,
    follows_champion,
    follows_new_features,
    follows_upstream,
)
from lakehouse.bronze import assets as bronze
from lakehouse.gold import assets as gold
from lakehouse.jobs import gold_job, ingest_job, lakehouse_job, retrain_job, score_job, train_job
from lakehouse.ml import assets as ml
from lakehouse.resources import LakeStorage, MlflowTracking, SourceSystems, Warehouse
from lakehouse.schedules import daily_scoring
from lakehouse.sensors import failed_runs, sensors_from_env
from lakehouse.settings import current, load_settings
from lakehouse.silver import assets as silver
from lakehouse.sources.assets import source_specs


def resources_from_env(env: dict[str, str] | None = None) -> dict[str, dg.ConfigurableResource]:
    """The resources for this deployment, from checked settings (``lakehouse.settings``)."""
    settings = current() if env is None else load_settings(env)
    return {
        "sources": SourceSystems(landing_uri=settings.landing_uri, database_path=settings.source_database),
        "lake": LakeStorage(root=settings.lake_uri),
        "warehouse": Warehouse(database=settings.warehouse_path),
        "mlflow": MlflowTracking(
            tracking_uri=settings.mlflow_tracking_uri, artifact_location=settings.mlflow_artifacts
        ),
    }


def with_automation(asset: dg.AssetsDefinition, condition: dg.AutomationCondition) -> dg.AssetsDefinition:
    return asset.map_asset_specs(lambda spec: spec.replace_attributes(automation_condition=condition))


# Project-wide automation, applied once here. Bronze and silver are built together by the ingestion
# runs the landing sensor starts; training is the retrain sensor's decision; gold and the rest follow
# their inputs. (Automating silver too would rebuild it right after the ingestion run built it.)
daily_followers = [gold.flight_features_table, gold.daily_airport_performance, gold.departures]
whole_history_followers = [
    gold.carrier_monthly_performance,
    gold.route_performance,
    gold.weather_delay_impact,
]

defs = dg.Definitions(
    assets=[
        *source_specs,
        bronze.flights,
        bronze.weather,
        bronze.planes,
        bronze.airports,
        bronze.airlines,
        silver.quarantine,
        silver.flights,
        silver.weather,
        silver.planes,
        silver.airports,
        silver.airlines,
        *(with_automation(asset, follows_upstream) for asset in daily_followers),
        *(with_automation(asset, follows_any_upstream) for asset in whole_history_followers),
        ml.delay_model,
        ml.promotions,
        with_automation(ml.predictions, follows_new_features),
        with_automation(ml.monitoring, follows_champion),
        failed_runs,
    ],
    jobs=[lakehouse_job, ingest_job, gold_job, train_job, retrain_job, score_job],
    sensors=[
        *sensors_from_env(),
        dg.AutomationConditionSensorDefinition(
            "automation_sensor",
            target=dg.AssetSelection.all(),
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=30,
        ),
    ],
    schedules=[daily_scoring],
    resources=resources_from_env(),
    # One process per run: a laptop has few cores and each step process costs seconds of imports.
    # On a cluster, swap in the k8s executor or launcher by configuration.
    executor=dg.in_process_executor,
)
