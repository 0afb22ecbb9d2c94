"""Dagster and MLflow on PostgreSQL, for real: an embedded PostgreSQL 16 server (the ``pgserver`` wheel)
on a local socket, the project's instance file ``lakehouse/dagster_postgres.yaml`` with its address from
``DAGSTER_POSTGRES_URL``, and MLflow's tracking and registry in a second database of the same server.
An ingest, a tick of each sensor, the automation and a retrain run on it.
"""

import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from lakehouse.defs.automation.sensors import build_landing_sensor, build_retrain_sensor
from lakehouse.partitions import daily_partitions
from lakehouse.resources import MlflowTracking
from lakehouse.sources.replay import replay
from lakehouse_tests.conftest import resources_at
from lakehouse_tests.pipeline import GOLD_ASSETS, INGEST_ASSETS, ML_ASSETS, definitions, materialize

PROJECT = Path(__file__).resolve().parents[2]
FIRST, LAST = date(2013, 1, 1), date(2013, 1, 3)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """A PostgreSQL server of its own, with the databases ``dagster`` and ``mlflow``; stopped after."""
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    try:
        for database in ("dagster", "mlflow"):
            server.psql(f"CREATE DATABASE {database};")
        socket_dir = server.get_uri().split("host=")[1]
        # psycopg2 named: SQLAlchemy 2.1 would otherwise pick the psycopg (3) driver, not installed.
        yield lambda database: f"postgresql+psycopg2://postgres:@/{database}?host={socket_dir}"
    finally:
        server.cleanup()


@pytest.fixture
def instance(postgres, tmp_path, monkeypatch):
    """The project's PostgreSQL instance file in a fresh DAGSTER_HOME, its address from the environment."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "lakehouse" / "dagster_postgres.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", postgres("dagster"))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.wipe()
        yield instance


def tick(sensor: dg.SensorDefinition, instance, resources, cursor=None):
    return sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))


def test_ingest_sensors_automation_and_a_retrain_on_postgres(postgres, instance, tmp_path):
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    root = tmp_path / "data"
    resources = resources_at(root) | {
        "mlflow": MlflowTracking(
            tracking_uri=postgres("mlflow"), artifact_location=str(tmp_path / "mlflow-artifacts")
        )
    }
    for offset in range((LAST - FIRST).days + 1):
        day = FIRST + timedelta(days=offset)
        replay(str(root / "landing"), root / "sources" / "operational.sqlite", day, day)
    partitions = daily_partitions()

    # The landing sensor sees the three days; the ingest of them runs and is recorded in PostgreSQL.
    landing = tick(build_landing_sensor(partitions), instance, resources)
    [request] = landing.run_requests
    assert (
        request.tags["dagster/asset_partition_range_start"],
        request.tags["dagster/asset_partition_range_end"],
    ) == (
        str(FIRST),
        str(LAST),
    )
    baseline = dg.evaluate_automation_conditions(defs=definitions(), instance=instance)
    assert materialize(INGEST_ASSETS, resources, FIRST, LAST, instance=instance).success
    assert not tick(build_landing_sensor(partitions), instance, resources, landing.cursor).run_requests

    # The automation asks for gold on the new days, read from PostgreSQL's event log.
    after = dg.evaluate_automation_conditions(defs=definitions(), instance=instance, cursor=baseline.cursor)
    assert after.get_requested_partitions(dg.AssetKey(["gold", "flight_features"])) == {
        str(FIRST + timedelta(days=i)) for i in range(3)
    }
    assert materialize(GOLD_ASSETS, resources, FIRST, LAST, instance=instance).success

    # The retrain sensor calls for a first model; it trains and registers in MLflow on PostgreSQL.
    decision = tick(
        build_retrain_sensor(partitions, first_model_days=3), instance, {"mlflow": resources["mlflow"]}
    )
    [retrain] = decision.run_requests
    assert "no champion yet and 3 days" in retrain.tags["lakehouse/retrain_reason"]
    trained = dg.materialize(
        ML_ASSETS[:2],
        resources=resources,
        instance=instance,
        run_config={"ops": {"ml__delay_model": {"config": {"holdout_days": 1}}}},
    )
    assert trained.success
    assert str(resources["mlflow"].champion().version) == "1"
    assert resources["mlflow"].tracking_uri.startswith("postgresql+psycopg2://")
    runs = instance.get_runs()
    assert len(runs) == 3 and all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
    assert instance.get_latest_materialization_event(dg.AssetKey(["ml", "delay_model"])) is not None
