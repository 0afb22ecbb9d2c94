"""The one code location: every asset, check, job, schedule and sensor of the lakehouse, loaded from the
``lakehouse/defs/`` folder (one subfolder per layer), with the project-wide policy applied once here.

Nothing happens when this module is imported. The definitions are built when a Dagster tool loads them
(``dagster dev``, ``dagster job execute``, ``dg list defs``, ``dg check defs``, ``dg launch``) or a test
calls ``defs()``: then the settings are read and checked (``lakehouse.settings``), every problem at once,
and the resources are configured from them, with local defaults under the project's ``data/`` folder.
"""

from __future__ import annotations

import functools
from pathlib import Path

import dagster as dg

from lakehouse import catalog
from lakehouse.automation import (
    follows_any_upstream,
    follows_champion,
    follows_new_features,
    follows_upstream,
)
from lakehouse.partitions import Chunking
from lakehouse.resources import LakeStorage, MlflowTracking, OnlineRedis, SourceSystems, Warehouse
from lakehouse.settings import Settings, current, load_settings


def lake_storage_options(lake_uri: str) -> dict[str, str]:
    """deltalake options beyond what it reads from the environment (``AWS_ENDPOINT_URL``, credentials):
    on S3, commits by conditional put, which AWS and S3-compatible servers alike accept, so concurrent
    writers of one table never overwrite each other's commit (no DynamoDB lock needed)."""
    return {"aws_conditional_put": "etag"} if lake_uri.startswith(("s3://", "s3a://")) else {}


def resources_for(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resources of a deployment, from its checked settings."""
    return {
        "sources": SourceSystems(landing_uri=settings.landing_uri, database_path=settings.source_database),
        "lake": LakeStorage(root=settings.lake_uri, storage_options=lake_storage_options(settings.lake_uri)),
        "warehouse": Warehouse(database=settings.warehouse_path),
        "mlflow": MlflowTracking(
            tracking_uri=settings.mlflow_tracking_uri,
            artifact_location=settings.mlflow_artifacts,
            ui_url=settings.mlflow_ui_url,
        ),
        "chunking": Chunking(),
        "online": OnlineRedis(url=settings.redis_url),
    }


def resources_from_env(env: dict[str, str] | None = None) -> dict[str, dg.ConfigurableResource]:
    """The resources for the environment ``env`` (default: this process's), its settings checked."""
    return resources_for(current() if env is None else load_settings(env))


# Project-wide automation, applied once here. Bronze and silver are built together by the ingestion runs
# the landing sensor starts; training is the retrain sensor's decision; gold and the rest follow their
# inputs. (Automating silver too would rebuild it right after the ingestion run built it.)
AUTOMATION: dict[dg.AssetKey, dg.AutomationCondition] = {
    **{t.key: follows_upstream if t.daily else follows_any_upstream for t in catalog.layer("gold")},
    catalog.PREDICTIONS.key: follows_new_features,
    catalog.MONITORING.key: follows_champion,
}


def automated(spec: dg.AssetSpec) -> dg.AssetSpec:
    """``spec`` with the project's automation condition for its asset, if it has one."""
    condition = AUTOMATION.get(spec.key)
    return spec if condition is None else spec.replace_attributes(automation_condition=condition)


def backfill_policy(settings: Settings) -> dg.BackfillPolicy:
    """How a backfill of daily assets is split into runs: one run for the whole range, or (with
    ``LAKEHOUSE_BACKFILL_DAYS`` = K) runs of at most K days that the run queue starts side by side."""
    if settings.backfill_days:
        return dg.BackfillPolicy.multi_run(max_partitions_per_run=settings.backfill_days)
    return catalog.SINGLE_RUN


def deployed(asset: dg.AssetsDefinition, settings: Settings) -> dg.AssetsDefinition:
    """``asset`` with the project's automation conditions and, if it is daily, the deployment's backfill
    policy (the catalog declares every asset single-run)."""
    asset = asset.map_asset_specs(automated)
    if asset.partitions_def is None or not settings.backfill_days:
        return asset
    return asset.with_attributes(backfill_policy=backfill_policy(settings))


def with_policy(loaded: dg.Definitions, settings: Settings) -> dg.Definitions:
    """The loaded definitions with the automation conditions, the backfill policy, the resources and
    the executor."""
    return dg.Definitions(
        assets=[
            deployed(asset, settings) if isinstance(asset, dg.AssetsDefinition) else automated(asset)
            for asset in loaded.assets or []
        ],
        asset_checks=loaded.asset_checks,
        jobs=loaded.jobs,
        schedules=loaded.schedules,
        sensors=loaded.sensors,
        resources=resources_for(settings),
        # One process per run: a laptop has few cores and each step process costs seconds of imports.
        # On a cluster, swap in the k8s executor or launcher by configuration.
        executor=dg.in_process_executor,
    )


@functools.cache
def _definitions(settings: Settings) -> dg.Definitions:
    return with_policy(dg.load_from_defs_folder(path_within_project=Path(__file__).parent), settings)


@dg.definitions
def defs() -> dg.Definitions:
    # Built once per process and deployment: Dagster asks for the definitions again when it reconstructs a
    # job to run it, and each build loads the whole defs folder.
    return _definitions(current())  # current() first checks the settings, naming every problem at once
